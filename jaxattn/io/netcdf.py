"""netCDF storage of sweeps: atomic point files, the manifest, the directory lock, the merge.

The sweep engine (:func:`jaxattn.studies.run_sweep`, design in ``docs/sweeps.md``) keeps
one file per finished point and merges them at the end. The rules it relies on live here:

* every file is written through a temporary file in the same directory, ``fsync`` and
  :func:`os.replace` (atomic on POSIX), so a file either exists complete or not at all;
* ``manifest.json`` records a sweep's arguments; :func:`check_manifest` writes it on the
  first run and reports which arguments differ on a later one;
* an advisory ``fcntl`` lock on ``directory/.lock`` (:func:`lock_directory`) admits one
  process per directory and is released by the kernel when the process dies;
* :func:`merge_points` stacks the point datasets on the sweep's grid and seed axes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "atomic_write_netcdf",
    "atomic_write_text",
    "check_manifest",
    "lock_directory",
    "merge_points",
    "netcdf_attr",
    "netcdf_engine",
]

MANIFEST = "manifest.json"


def netcdf_engine() -> str:
    """The netCDF backend to write with: netCDF4 (preferred), h5netcdf, else scipy (netCDF3)."""
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


def atomic_write_netcdf(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to ``path`` atomically: temporary file, fsync, :func:`os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        ds.to_netcdf(tmp, engine=netcdf_engine())
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_directory(path.parent)
    return path


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` to ``path`` atomically (as :func:`atomic_write_netcdf`)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_directory(path.parent)
    return path


def netcdf_attr(value: Any) -> Any:
    """An attribute value netCDF accepts: strings and numbers as they are, anything else as JSON text."""
    if isinstance(value, (str, int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def check_manifest(directory: str | os.PathLike, manifest: Mapping[str, Any]) -> list[str]:
    """Compare ``manifest`` with ``directory/manifest.json``, writing it (atomically) if absent.

    Returns the sorted keys whose values differ (empty when the directory holds the same
    sweep or none yet).
    """
    path = Path(directory) / MANIFEST
    if not path.exists():
        atomic_write_text(json.dumps(manifest, indent=1, sort_keys=True), path)
        return []
    old = json.loads(path.read_text())
    return sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))


def lock_directory(directory: str | os.PathLike):
    """Take the advisory lock ``directory/.lock``; close the returned handle to release it.

    Raises:
        RuntimeError: another process holds the lock.
    """
    handle = open(Path(directory) / ".lock", "a")
    try:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # pragma: no cover - non-POSIX: no cross-process guard
        pass
    except OSError:
        handle.close()
        raise RuntimeError(f"another process is running the sweep in {directory}") from None
    return handle


def merge_points(
    files: Sequence[str | os.PathLike],
    points: Sequence[Mapping[str, Any]],
    grid: Mapping[str, Sequence[Any]],
    seeds: Sequence[int],
) -> xr.Dataset:
    """Load the point files and stack them to dims ``(*grid, "seed", *point dims)``.

    ``points[i]`` holds the grid values and ``"seed"`` of ``files[i]``; the result is
    reindexed to the order of ``grid`` and ``seeds``.
    """
    names = [*grid, "seed"]
    parts = []
    for i, (f, point) in enumerate(zip(files, points)):
        part = xr.load_dataset(f).drop_vars(names, errors="ignore").expand_dims(point=[i])
        parts.append(part.assign_coords({k: ("point", [v]) for k, v in point.items()}))
    point_dims = list(parts[0].dims)
    point_dims.remove("point")
    stacked = xr.concat(parts, dim="point", join="outer")
    stacked = stacked.set_index(point=names).unstack("point")
    stacked = stacked.reindex({**grid, "seed": list(seeds)})
    return stacked.transpose(*names, *point_dims, ...)
