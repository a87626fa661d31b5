"""Per-point claims: one process computes a point, any number of processes share a sweep directory.

A process computes a point only while it holds the point's *claim*, a file ``<key>.<generation>``
in the sweep's ``claims/`` folder:

* [`claim`][jaxattn.sweeps.claim] creates generation 0 of a free point exclusively (`os.link` of a complete
  temporary file, [`jaxattn.io.atomic_write_text`][jaxattn.io.atomic_write_text] with ``exclusive=True``: exactly one of
  several processes wins, also on NFS, and a claim file never exists without its owner record);
* the owner renews it ([`Claim.renew`][jaxattn.sweeps.Claim.renew], the file's modification time is the heartbeat;
  `Heartbeat` does so from a thread) while it computes, and releases it when done;
* a claim whose owner is dead (same host and boot, pid gone), whose heartbeat is older than the
  expiry, that was released, or that records no owner (an empty or unreadable file, e.g. left by
  a writer killed or out of disk while creating it; a warning names it) is taken over by creating
  the next generation, again exclusively, so exactly one process wins every takeover and N
  processes with no coordinator can share one directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import warnings
from pathlib import Path

from ..io import BOOT, HOST, atomic_write_text, process_alive

__all__ = ["Claim", "Heartbeat", "claim"]


@dataclasses.dataclass
class Claim:
    """A point held by this process: the claim file ``<key>.<generation>`` it created.

    The file's modification time is the heartbeat; its content records the owner
    (host, boot id, pid, time). Made by [`claim`][jaxattn.sweeps.claim].

    **Arguments:**

    - `path`: the claim file ``claims/⟨key⟩.⟨generation⟩``.
    """

    path: Path

    @property
    def _next(self) -> Path:
        key, gen = self.path.name.rsplit(".", 1)
        return self.path.with_name(f"{key}.{int(gen) + 1}")

    def lost(self) -> bool:
        """Whether another process has taken this claim over (its heartbeat was too old).

        **Returns:**

        True when the next generation of the claim file exists.
        """
        return self._next.exists()

    def renew(self) -> bool:
        """Refresh the heartbeat (the claim file's modification time).

        **Returns:**

        False if the claim was taken over (or its file removed), else True.
        """
        try:
            os.utime(self.path)
        except FileNotFoundError:
            return False
        return not self.lost()

    def release(self) -> None:
        """Give the claim up: its heartbeat is set to the epoch, so anyone may take it at once."""
        try:
            os.utime(self.path, (0, 0))
        except FileNotFoundError:
            pass


def _owner(path: Path) -> dict | None:
    """The owner record of a claim file, ``None`` if it records none (empty or unreadable)."""
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else None


def _stale(path: Path, expiry: float) -> bool:
    """Whether the claim file at ``path`` may be taken over."""
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:  # removed by a cleanup: the point is finished or free
        return True
    if time.time() - mtime > expiry:
        return True
    owner = _owner(path)
    if owner is None:  # claims are created complete: this one was not made by claim(), or its writer failed
        warnings.warn(f"claim file {path} records no owner (it is empty or unreadable, e.g. its writer was "
                      "killed or ran out of disk while creating it); taking its point over",
                      UserWarning, stacklevel=4)
        return True
    if owner.get("host") == HOST and owner.get("boot") == BOOT and owner["pid"] != os.getpid():
        return not process_alive(owner["pid"])
    return False


def claim(claims: str | os.PathLike, key: str, expiry: float) -> Claim | None:
    """Try to take the point ``key``: returns a [`Claim`][jaxattn.sweeps.Claim], or ``None`` if another live process holds it.

    The claim files are ``claims/<key>.0``, ``<key>.1``, ...; the highest generation is the
    current one. A free point is taken by creating generation 0; a stale one (owner dead on this
    host, heartbeat older than ``expiry`` seconds, released, or no owner recorded) by creating the
    next generation. Each file is created exclusively and complete (module docstring).

    **Arguments:**

    - `claims`: the folder of claim files (it must exist).
    - `key`: the point's name (a file-name-safe string).
    - `expiry`: seconds after which a heartbeat is stale, > 0.

    **Returns:**

    The [`Claim`][jaxattn.sweeps.Claim], or None if another live process holds the point.
    """
    claims = Path(claims)
    gen = 0
    while (claims / f"{key}.{gen}").exists():
        gen += 1
    if gen > 0 and not _stale(claims / f"{key}.{gen - 1}", expiry):
        return None
    path = claims / f"{key}.{gen}"
    owner = json.dumps({"host": HOST, "boot": BOOT, "pid": os.getpid(), "time": time.time()})
    if atomic_write_text(owner, path, exclusive=True) is None:
        return None
    return Claim(path)


class Heartbeat:
    """A daemon thread that renews the claims in ``held`` every ``interval`` seconds until ``stop``.

    **Arguments:**

    - `interval`: seconds between renewals, > 0.
    """

    def __init__(self, interval: float):
        self.held: list[Claim] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(interval,), daemon=True,
                                        name="jaxattn-sweep-heartbeat")
        self._thread.start()

    def _beat(self, interval: float) -> None:
        while not self._stop.wait(interval):
            for held in list(self.held):
                held.renew()

    def stop(self) -> None:
        """End the thread (after its current round of renewals)."""
        self._stop.set()
        self._thread.join()
