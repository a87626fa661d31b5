"""netCDF files written atomically, and the clean-up of what dead writers left.

Every file is written through a temporary file in the same directory, ``fsync`` and
`os.replace` (atomic on POSIX), so a file either exists complete or not at all. The
temporary file's name holds its writer (host, pid), so that [`remove_stale_temporaries`][jaxattn.io.remove_stale_temporaries]
removes only files whose writer is dead or that are older than an expiry. [`HOST`][jaxattn.io.HOST],
[`BOOT`][jaxattn.io.BOOT] and [`process_alive`][jaxattn.io.process_alive] tell whether a writer (or any process recorded by host,
boot and pid, such as the owner of a sweep's claim, [`jaxattn.sweeps`][jaxattn.sweeps]) is still running.

The sweep storage built on these writes (point files, manifest, claims, merge) is
[`jaxattn.sweeps`][jaxattn.sweeps] (``docs/sweeps.md``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._provenance import write_error
from .cf import describe, stamp

__all__ = [
    "BOOT",
    "HOST",
    "atomic_write_netcdf",
    "atomic_write_text",
    "netcdf_attr",
    "netcdf_engine",
    "process_alive",
    "remove_stale_temporaries",
]

#: this machine's name, recorded in claims and temporary file names
HOST = socket.gethostname().replace(".", "_") or "host"


def _boot_id() -> str:
    try:  # distinguishes two machines (or two boots) that share a host name
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:  # pragma: no cover - non-Linux
        return ""


BOOT = _boot_id()


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine is running.

    **Arguments:**

    - `pid`: a process id of this machine.

    **Returns:**

    False when no such process exists; True when it runs or when that cannot be told (no permission).
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{HOST}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def netcdf_engine() -> str:
    """The netCDF backend to write with: netCDF4 (preferred), h5netcdf, else scipy (netCDF3).

    **Returns:**

    The xarray engine name: ``"netcdf4"``, ``"h5netcdf"`` or ``"scipy"``.

    **Raises:**

    - `ImportError`: none of the three packages is installed.
    """
    for module, engine in (("netCDF4", "netcdf4"), ("h5netcdf", "h5netcdf"), ("scipy", "scipy")):
        try:
            __import__(module)
            return engine
        except ImportError:  # pragma: no cover - depends on the environment
            continue
    raise ImportError("writing sweeps needs netCDF4, h5netcdf or scipy")  # pragma: no cover


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def _staged(path: Path):
    """A temporary name beside ``path`` for the caller to write and move into place; the temporary
    is removed if it is left over, and the directory entry is synced after a success."""
    tmp = _tmp_name(path)
    try:
        yield tmp
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_directory(path.parent)


def atomic_write_netcdf(ds: xr.Dataset, path: str | os.PathLike, *, source: str | None = None) -> Path:
    """Write ``ds`` to ``path`` atomically: temporary file, fsync, `os.replace`.

    The variables get their CF attributes (``long_name``, ``units``, ``description``) from
    [`jaxattn.io.cf.describe`][jaxattn.io.describe] where the writer left them out, and the file the attributes that say
    what made it ([`jaxattn.io.cf.stamp`][jaxattn.io.stamp], with ``source``). The file either exists
    complete or not at all; parent folders are created.

    **Arguments:**

    - `ds`: the ``xarray.Dataset`` to write (not changed).
    - `path`: the file, ending in ``.nc``.
    - `source`: what made the data, for the ``source`` attribute; default None: the dataset's
        ``title``, else ``"jaxattn"``.

    **Returns:**

    The path written (a ``pathlib.Path``).

    **Raises:**

    - `ValueError`: ``path`` does not end in ``.nc``.
    - `OSError`: the file could not be written; the message names it and the cause (a full disk).
    """
    path = Path(path)
    if path.suffix.lower() != ".nc":
        raise ValueError(f"netCDF files end in .nc, got {path.name!r}")
    ds = stamp(describe(ds), source=source)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _staged(path) as tmp:
            ds.to_netcdf(tmp, engine=netcdf_engine())
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        raise write_error(path, err) from err
    return path


def atomic_write_text(text: str, path: str | os.PathLike, *, exclusive: bool = False) -> Path | None:
    """Write ``text`` to ``path`` atomically: temporary file beside it, fsync, ``os.replace`` (as
    [`atomic_write_netcdf`][jaxattn.io.atomic_write_netcdf]).

    **Arguments:**

    - `text`: the content.
    - `path`: the file (its folder must exist).
    - `exclusive`: create the file only if ``path`` does not exist yet, with its full content from
      the moment it appears (`os.link` of the synced temporary file: exactly one of several
      concurrent writers wins, also on NFS); default False.

    **Returns:**

    The path written (a ``pathlib.Path``), or None when ``exclusive`` and ``path`` existed.
    """
    path = Path(path)
    with _staged(path) as tmp:
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            try:
                os.link(tmp, path)  # atomic create-if-absent with the full content
            except FileExistsError:
                return None
        else:
            os.replace(tmp, path)
    return path


def remove_stale_temporaries(directory: str | os.PathLike, expiry: float) -> list[Path]:
    """Remove the temporary files ``.<name>.<host>.<pid>.<token>.tmp`` of dead writers.

    A temporary file is stale when its writer ran on this host (same boot) and its pid is
    gone, or when it is older than ``expiry`` seconds (a writer on another host). Files of
    live writers are left alone, so concurrent sweeps never pull a file from under each other.

    **Arguments:**

    - `directory`: the folder to clean (not recursive).
    - `expiry`: the age in seconds beyond which any temporary file is stale, >= 0.

    **Returns:**

    The removed paths (a list of ``pathlib.Path``).
    """
    removed = []
    now = time.time()
    for tmp in Path(directory).glob(".*.tmp"):
        parts = tmp.name.split(".")
        try:
            host, pid = parts[-4], int(parts[-3])
        except (IndexError, ValueError):
            host, pid = "", -1
        try:
            age = now - tmp.stat().st_mtime
        except FileNotFoundError:
            continue
        dead = host == HOST and pid > 0 and pid != os.getpid() and not process_alive(pid)
        if dead or age > expiry:
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def netcdf_attr(value: Any) -> Any:
    """An attribute value netCDF accepts.

    **Arguments:**

    - `value`: any value (a bool, list, dict, None, ... is not a netCDF attribute).

    **Returns:**

    Strings and numbers (not bools) as they are, anything else as sorted-key JSON text.
    """
    if isinstance(value, (str, int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return value
    return json.dumps(value, sort_keys=True, default=str)
