"""The files of a sweep directory: manifest, point files, the merge.

::

    directory/
      manifest.json          the sweep's arguments and its point function's identity
      points/p⟨index⟩-⟨hash⟩.nc   one finished point each (written atomically)
      claims/                who computes which point (`.claims`)
      corrupt/               bad point files moved aside, with a warning naming each
      ⟨name⟩.nc              the merged dataset

* [`check_manifest`][jaxattn.sweeps.check_manifest] creates ``manifest.json`` (exclusively: the first of several concurrent
  processes wins) and reports which arguments differ from a stored one.
* [`write_point`][jaxattn.sweeps.write_point] stamps each point dataset with its record (attribute ``sweep_point``: its
  index and grid coordinates; ``sweep_function``: the hash of the point function's identity,
  [`jaxattn.sweeps.identity_hash`][jaxattn.sweeps.identity_hash]) and writes it atomically
  ([`jaxattn.io.atomic_write_netcdf`][jaxattn.io.atomic_write_netcdf]). [`point_file_problem`][jaxattn.sweeps.point_file_problem] reads a point file back and
  says what is wrong with it: missing, zero bytes, unreadable, no record, another point's record
  (a file copied over another), or another function's. So a point is only ever reused by the sweep
  and at the place it was computed for, even when ``manifest.json`` was deleted.
* [`move_aside`][jaxattn.sweeps.move_aside] moves a bad file to ``corrupt/`` with a warning; [`merge_points`][jaxattn.sweeps.merge_points] stacks
  the point files on the sweep's grid and seed axes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from ..io import atomic_write_netcdf, atomic_write_text

__all__ = [
    "CLAIMS",
    "CORRUPT",
    "MANIFEST",
    "POINTS",
    "SweepMismatchError",
    "check_manifest",
    "merge_points",
    "move_aside",
    "point_file_name",
    "point_file_problem",
    "point_record",
    "read_manifest",
    "write_point",
]

MANIFEST = "manifest.json"
POINTS = "points"
CLAIMS = "claims"
CORRUPT = "corrupt"
#: the attributes of a point file that record which point of which sweep it holds
POINT_ATTR, FUNCTION_ATTR = "sweep_point", "sweep_function"


class SweepMismatchError(ValueError):
    """The sweep directory holds a sweep with other arguments, or points of another point function."""


# --------------------------------------------------------------------------- manifest


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
            f"are in {Path(directory) / POINTS}: if you are sure this directory holds the sweep you "
            "are running, delete the manifest and the next run rewrites it from its arguments (each "
            "point file records the point function it was computed with, and a different one is "
            "refused); otherwise run the sweep in a new directory"
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

    - `ValueError`: an existing manifest is not valid JSON ([`read_manifest`][jaxattn.sweeps.read_manifest]).
    """
    old = read_manifest(directory)
    if old is None:
        atomic_write_text(json.dumps(manifest, indent=1, sort_keys=True), Path(directory) / MANIFEST,
                          exclusive=True)
        old = read_manifest(directory)
    return sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))


# --------------------------------------------------------------------------- point files


def point_file_name(index: int, point: Mapping[str, Any]) -> str:
    """The file name of a point: ``p⟨index⟩-⟨hash of the point's coordinates⟩.nc``.

    **Arguments:**

    - `index`: the point's number in the sweep.
    - `point`: its grid values and ``"seed"``.

    **Returns:**

    The file name (a str, no folder).
    """
    tag = hashlib.sha1(json.dumps(point, sort_keys=True).encode()).hexdigest()[:12]
    return f"p{index:06d}-{tag}.nc"


def write_point(ds: xr.Dataset, path: str | os.PathLike, index: int, point: Mapping[str, Any],
                function: str) -> Path:
    """Write one point's dataset atomically with its coordinates and record (module docstring).

    **Arguments:**

    - `ds`: the point's dataset.
    - `path`: the point file.
    - `index`: the point's number in the sweep.
    - `point`: the grid values and ``"seed"`` (they become scalar coordinates).
    - `function`: the [`jaxattn.sweeps.identity_hash`][jaxattn.sweeps.identity_hash] of the point function.

    **Returns:**

    The path written.
    """
    ds = ds.assign_coords(dict(point))
    ds.attrs[POINT_ATTR] = json.dumps({"index": index, "point": dict(point)}, sort_keys=True)
    ds.attrs[FUNCTION_ATTR] = function
    return atomic_write_netcdf(ds, path)


def point_record(ds: xr.Dataset) -> tuple[int, dict[str, Any], str] | None:
    """The record a point dataset carries ([`write_point`][jaxattn.sweeps.write_point]).

    **Arguments:**

    - `ds`: a point dataset.

    **Returns:**

    ``(index, coordinates, function hash)``, or None if it has no record.
    """
    try:
        record = json.loads(ds.attrs[POINT_ATTR])
        return int(record["index"]), dict(record["point"]), str(ds.attrs[FUNCTION_ATTR])
    except (KeyError, TypeError, ValueError):
        return None


def point_file_problem(path: str | os.PathLike, index: int | None = None, point: Mapping[str, Any] | None = None,
                       function: str | None = None) -> str | None:
    """``None`` if the point file at ``path`` loads and holds the expected point, else what is wrong.

    Problems: ``"missing"``, ``"zero bytes"``, unreadable (the backend's error), no point record,
    or a record ([`write_point`][jaxattn.sweeps.write_point]) whose index, coordinates or function hash differ from
    the expected ones (those given).

    **Arguments:**

    - `path`: a netCDF point file.
    - `index`: the expected point number; default None (not checked).
    - `point`: the expected grid values and seed; default None (not checked).
    - `function`: the expected identity hash of the point function; default None (not checked).

    **Returns:**

    None if the file is usable, else the problem (a str).
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return "zero bytes"
        ds = xr.load_dataset(path)
    except FileNotFoundError:
        return "missing"
    except Exception as err:  # noqa: BLE001 - any backend's error means "cannot be read"
        return f"{type(err).__name__}: {err}"
    record = point_record(ds)
    if record is None:
        return "it records no sweep point (not written by run_sweep, or by an older jaxattn)"
    got_index, got_point, got_function = record
    if function is not None and got_function != function:
        return (f"it was computed by another point function (identity hash {got_function}, this sweep's is "
                f"{function})")
    if index is not None and got_index != index or point is not None and (
            got_point != dict(point) or any(k not in ds.coords or ds.coords[k].item() != v for k, v in point.items())):
        return f"it holds point {got_index} {got_point}, not point {index} {dict(point or {})}"
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
    warnings.warn(f"point file {path} is unusable ({reason}); moved to {dest}; the point is recomputed",
                  UserWarning, stacklevel=3)
    return dest


def merge_points(
    files: Sequence[str | os.PathLike],
    points: Sequence[Mapping[str, Any]],
    grid: Mapping[str, Sequence[Any]],
    seeds: Sequence[int] | None,
) -> xr.Dataset:
    """Load the point files and stack them to dims ``(*grid, "seed", *point dims)``.

    The per-point record attribute is dropped (the function hash, equal in every file, is kept).

    **Arguments:**

    - `files`: the point files (netCDF), one per point.
    - `points`: ``points[i]`` holds the grid values and ``"seed"`` of ``files[i]``.
    - `grid`: the sweep's axes, name -> values (in the order of the result).
    - `seeds`: the seeds (the order of the ``seed`` axis); None: a sweep without seeds, no ``seed`` dim.

    **Returns:**

    One ``xarray.Dataset`` with dims ``(*grid, "seed", *point dims)``, reindexed to the order of
    ``grid`` and ``seeds`` (missing points NaN).
    """
    names = [*grid] + ([] if seeds is None else ["seed"])
    parts = []
    for i, (f, point) in enumerate(zip(files, points)):
        part = xr.load_dataset(f).drop_vars(names, errors="ignore").expand_dims(point=[i])
        part.attrs.pop(POINT_ATTR, None)
        for var in part.variables.values():  # the merge's dtypes (integers padded with NaN become float)
            var.encoding = {}
        parts.append(part.assign_coords({k: ("point", [v]) for k, v in point.items()}))
    point_dims = list(parts[0].dims)
    point_dims.remove("point")
    stacked = xr.concat(parts, dim="point", join="outer")
    if len(names) == 1:  # one axis: no multi-index to unstack
        stacked = stacked.swap_dims(point=names[0]).drop_vars("point")
    else:
        stacked = stacked.set_index(point=names).unstack("point")
    stacked = stacked.reindex({**grid, **({} if seeds is None else {"seed": list(seeds)})})
    return stacked.transpose(*names, *point_dims, ...)
