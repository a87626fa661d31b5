"""netCDF storage of sweeps: atomic point files, the manifest, per-point claims, the merge.

The sweep engine ([`jaxattn.studies.run_sweep`][jaxattn.studies.run_sweep], design in ``docs/sweeps.md`` and
``docs/scaling.md``) keeps one file per finished point and merges them once at the end. The
rules it relies on live here:

* every file is written through a temporary file in the same directory, ``fsync`` and
  `os.replace` (atomic on POSIX), so a file either exists complete or not at all; the
  temporary file's name holds its writer (host, pid), so that [`remove_stale_temporaries`][jaxattn.io.remove_stale_temporaries]
  removes only files whose writer is dead or that are older than an expiry;
* ``manifest.json`` records a sweep's arguments; [`check_manifest`][jaxattn.io.check_manifest] creates it (atomically,
  first writer wins) on the first run and reports which arguments differ on a later one;
* [`claim`][jaxattn.io.claim] takes a point for one process with an ``O_CREAT | O_EXCL`` claim file; the owner
  renews it ([`Claim.renew`][jaxattn.io.Claim.renew]) while it computes; a claim whose owner is dead (same host, pid
  gone) or whose heartbeat is older than its expiry is taken over by creating the next
  generation of the claim, again with ``O_EXCL``, so exactly one process wins every takeover
  and N processes with no coordinator can share one directory;
* [`point_file_problem`][jaxattn.io.point_file_problem] tells a readable point file from a zero-byte or truncated one and
  [`move_aside`][jaxattn.io.move_aside] moves a bad one to ``directory/corrupt/`` with a warning;
* [`merge_points`][jaxattn.io.merge_points] stacks the point datasets on the sweep's grid and seed axes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._provenance import write_error
from .cf import describe, stamp

__all__ = [
    "Claim",
    "atomic_write_netcdf",
    "atomic_write_text",
    "check_manifest",
    "claim",
    "merge_points",
    "move_aside",
    "netcdf_attr",
    "netcdf_engine",
    "point_file_problem",
    "read_manifest",
    "remove_stale_temporaries",
]

MANIFEST = "manifest.json"
CORRUPT = "corrupt"

#: this machine's name, recorded in claims and temporary file names
HOST = socket.gethostname().replace(".", "_") or "host"


def _boot_id() -> str:
    try:  # distinguishes two machines (or two boots) that share a host name
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:  # pragma: no cover - non-Linux
        return ""


BOOT = _boot_id()


def _pid_alive(pid: int) -> bool:
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


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` to ``path`` atomically: temporary file beside it, fsync, ``os.replace`` (as
    [`atomic_write_netcdf`][jaxattn.io.atomic_write_netcdf]).

    **Arguments:**

    - `text`: the content.
    - `path`: the file (its folder must exist).

    **Returns:**

    The path written (a ``pathlib.Path``).
    """
    return _write_text(text, Path(path), exclusive=False)


def _write_text(text: str, path: Path, exclusive: bool) -> Path:
    """Write through a temporary file; ``exclusive``: only if ``path`` is absent (``os.link``)."""
    with _staged(path) as tmp:
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            try:
                os.link(tmp, path)  # atomic create-if-absent with the full content
            except FileExistsError:
                pass
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
        dead = host == HOST and pid > 0 and pid != os.getpid() and not _pid_alive(pid)
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


def read_manifest(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The sweep arguments stored in ``directory/manifest.json``.

    **Arguments:**

    - `directory`: the sweep's folder.

    **Returns:**

    The manifest (a dict), or None if there is none.

    **Raises:**

    - `ValueError`: the file is not a JSON object (names the file and what to do).
    """
    path = Path(directory) / MANIFEST
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        old = json.loads(text)
        if not isinstance(old, dict):
            raise ValueError(f"expected a JSON object, got {type(old).__name__}")
    except ValueError as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}). It records the arguments of the sweep whose points "
            f"are in {Path(directory) / 'points'}: if you are sure this directory holds the sweep you "
            "are running, delete the manifest and the next run rewrites it from its arguments; "
            "otherwise run the sweep in a new directory"
        ) from None
    return old


def check_manifest(directory: str | os.PathLike, manifest: Mapping[str, Any]) -> list[str]:
    """Compare ``manifest`` with ``directory/manifest.json``, creating it if absent.

    Creation is atomic and exclusive (the first of several concurrent processes wins and the
    others compare against its manifest).

    **Arguments:**

    - `directory`: the sweep's folder (it must exist).
    - `manifest`: this run's sweep arguments, JSON-serialisable.

    **Returns:**

    The sorted keys whose values differ (empty when the directory holds the same sweep or none yet).

    **Raises:**

    - `ValueError`: an existing manifest is not valid JSON ([`read_manifest`][jaxattn.io.read_manifest]).
    """
    old = read_manifest(directory)
    if old is None:
        _write_text(json.dumps(manifest, indent=1, sort_keys=True), Path(directory) / MANIFEST,
                    exclusive=True)
        old = read_manifest(directory)
    return sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))


# --------------------------------------------------------------------------- claims


@dataclasses.dataclass
class Claim:
    """A point held by this process: the claim file ``<key>.<generation>`` it created.

    The file's modification time is the heartbeat; its content records the owner
    (host, boot id, pid, time). Made by [`claim`][jaxattn.io.claim].

    **Arguments:**

    - `path`: the claim file ``claims/<key>.<generation>``.
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


#: seconds a claim file may stay empty or unreadable while its owner writes it (it writes a few bytes right
#: after creating it); after that the owner died between the two (a kill, a full disk) and the point is free
CLAIM_WRITE_GRACE = 10.0


def _stale(path: Path, expiry: float) -> bool:
    """Whether the claim file at ``path`` may be taken over."""
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:  # removed by a cleanup: the point is finished or free
        return True
    if time.time() - mtime > expiry:
        return True
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):  # being written right now (alive), or its writer died before writing it
        return time.time() - mtime > CLAIM_WRITE_GRACE
    if owner.get("host") == HOST and owner.get("boot") == BOOT and owner.get("pid") != os.getpid():
        return not _pid_alive(int(owner.get("pid", -1)))
    return False


def claim(claims: str | os.PathLike, key: str, expiry: float) -> Claim | None:
    """Try to take the point ``key`` for this process.

    The claim files are ``claims/<key>.0``, ``<key>.1``, ...; the highest generation is
    the current one. A free point is taken by creating generation 0; a stale one (owner dead
    on this host, or heartbeat older than ``expiry`` seconds, or released) by creating the
    next generation. Both use ``O_CREAT | O_EXCL``, which exactly one process wins, also on
    NFS v3+ and Lustre.

    **Arguments:**

    - `claims`: the folder of claim files (it must exist).
    - `key`: the point's name (a file-name-safe string).
    - `expiry`: seconds after which a heartbeat is stale, > 0.

    **Returns:**

    The [`Claim`][jaxattn.io.Claim], or None if another live process holds the point.
    """
    claims = Path(claims)
    gen = 0
    while (claims / f"{key}.{gen}").exists():
        gen += 1
    if gen > 0 and not _stale(claims / f"{key}.{gen - 1}", expiry):
        return None
    path = claims / f"{key}.{gen}"
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w") as fh:
        json.dump({"host": HOST, "boot": BOOT, "pid": os.getpid(), "time": time.time()}, fh)
    return Claim(path)


# --------------------------------------------------------------------------- point files


def point_file_problem(path: str | os.PathLike) -> str | None:
    """What is wrong with the point file at ``path``, if anything.

    **Arguments:**

    - `path`: a netCDF point file.

    **Returns:**

    None if it loads, else the problem: ``"zero bytes"``, ``"missing"``, or the reader's error.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return "zero bytes"
        xr.load_dataset(path).close()
    except FileNotFoundError:
        return "missing"
    except Exception as err:  # noqa: BLE001 - any backend's error means "cannot be read"
        return f"{type(err).__name__}: {err}"
    return None


def move_aside(path: str | os.PathLike, reason: str, directory: str | os.PathLike) -> Path | None:
    """Move a bad file to ``directory/corrupt/`` (with a time stamp) and warn with its name.

    **Arguments:**

    - `path`: the bad file.
    - `reason`: what is wrong with it (shown in the warning).
    - `directory`: the sweep's folder (``corrupt/`` is created in it).

    **Returns:**

    The new path, or None when another process moved the file first.
    """
    path = Path(path)
    dest_dir = Path(directory) / CORRUPT
    dest_dir.mkdir(exist_ok=True)
    dest = dest_dir / f"{path.name}.{time.strftime('%Y%m%dT%H%M%S')}.{uuid.uuid4().hex[:6]}"
    try:
        os.replace(path, dest)
    except FileNotFoundError:  # another process moved it first
        return None
    warnings.warn(f"point file {path} is unreadable ({reason}); moved to {dest}; the point is recomputed",
                  UserWarning, stacklevel=3)
    return dest


def merge_points(
    files: Sequence[str | os.PathLike],
    points: Sequence[Mapping[str, Any]],
    grid: Mapping[str, Sequence[Any]],
    seeds: Sequence[int],
) -> xr.Dataset:
    """Load the point files and stack them to dims ``(*grid, "seed", *point dims)``.

    **Arguments:**

    - `files`: the point files (netCDF), one per point.
    - `points`: ``points[i]`` holds the grid values and ``"seed"`` of ``files[i]``.
    - `grid`: the sweep's axes, name -> values (in the order of the result).
    - `seeds`: the seeds (the order of the ``seed`` axis).

    **Returns:**

    One ``xarray.Dataset`` with dims ``(*grid, "seed", *point dims)``, reindexed to the order of
    ``grid`` and ``seeds`` (missing points NaN).

    **Raises:**

    - `ValueError`: a file's scalar coordinates hold another point than ``points[i]`` (a point file copied or
        moved over another's).
    """
    names = [*grid, "seed"]
    parts = []
    for i, (f, point) in enumerate(zip(files, points)):
        part = xr.load_dataset(f)
        held = {k: part[k].values.item() for k in point if k in part.coords and part[k].ndim == 0}
        if any(held[k] != v for k, v in point.items() if k in held):
            raise ValueError(f"the point file {f} holds the point {held}, not {dict(point)}: it was copied or moved "
                             "over another point's file. Delete it (the sweep recomputes it)")
        part.attrs.pop("sweep_function", None)  # the point's own record (see jaxattn.studies.run_sweep)
        part = part.drop_vars(names, errors="ignore").expand_dims(point=[i])
        parts.append(part.assign_coords({k: ("point", [v]) for k, v in point.items()}))
    point_dims = list(parts[0].dims)
    point_dims.remove("point")
    stacked = xr.concat(parts, dim="point", join="outer")
    stacked = stacked.set_index(point=names).unstack("point")
    stacked = stacked.reindex({**grid, "seed": list(seeds)})
    return stacked.transpose(*names, *point_dims, ...)
