"""Parameter sweeps: grids x seeds of jit-compiled ensemble solves, saved point by point.

A *sweep* is the outer product of a parameter grid (``{"beta": [...], "d": [...],
"ensemble": ["identity", "ginibre"]}``) and a list of random seeds. Each *point*
(one parameter combination and one seed) calls a user function

    fn(seed=..., **params) -> xarray.Dataset

which typically draws an ensemble of initial conditions x0 of shape (batch, n, d) from
``jax.random.PRNGKey(seed)``, solves it as **one** batched state with
:func:`jaxattn.simulate` (see :func:`solve_ensemble`, which also shards it over devices)
and reduces the trajectories to observables on a time grid (dims such as ``t`` and
``member``). The engine adds the grid coordinates and ``seed`` and returns one
:class:`xarray.Dataset` with named dims ``(*grid, seed, *point dims)`` and the sweep's
parameters in ``attrs``.

Storage and resumption (the design is "one file per finished point plus a final merge";
the file operations are :mod:`jaxattn.io.netcdf`):

* ``directory/manifest.json`` records the sweep's arguments (name, grid, seeds, attrs,
  the function's qualified name). Re-running with *different* arguments in the same
  directory raises ``ValueError`` instead of mixing results.
* Each finished point is written to ``directory/points/p<index>-<hash>.nc`` through a
  temporary file in the same directory, ``fsync`` and :func:`os.replace`, which is atomic
  on POSIX: a point file either exists complete or not at all. A sweep killed at any
  moment (SIGINT, SIGKILL, power loss) loses at most the point being computed.
* Restarting with the same arguments skips every point whose file exists, recomputes
  none of them, and ends with the same merged dataset as an uninterrupted run (the point
  functions are deterministic given the seed). Stale temporary files are removed.
* When all points exist they are merged into ``directory/<name>.nc`` (atomically too),
  which is loaded and returned.
* One process per directory: an advisory ``fcntl`` lock on ``directory/.lock`` (released by
  the kernel when the process dies, so a killed sweep never blocks its restart) makes a
  second concurrent run of the same directory fail with ``RuntimeError``.

Devices: :func:`solve_ensemble` places the ensemble axis of x0 on a one-axis
:class:`jax.sharding.Mesh` over all visible devices with a
``NamedSharding(mesh, PartitionSpec("batch"))``; ``simulate``'s jit-compiled batched solve
then runs SPMD-partitioned (XLA inserts the cross-device max of the per-member error
norm). A batch that is not a multiple of the device count is padded with copies of its
first member, which leaves the max-over-members error norm, hence every step, unchanged,
and the copies are dropped afterwards: results equal the one-device run.

Progress: a ``tqdm`` bar over points (with an ETA) unless ``progress=False``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..io import atomic_write_netcdf, check_manifest, lock_directory, merge_points, netcdf_attr
from ..solve import ensemble_mesh, shard_ensemble, solve_ensemble

__all__ = [
    "SweepMismatchError",
    "ensemble_mesh",
    "run_sweep",
    "shard_ensemble",
    "solve_ensemble",
    "sweep_points",
]

POINTS = "points"

Scalar = int | float | str | bool


class SweepMismatchError(ValueError):
    """The sweep directory holds a sweep with different arguments."""


# --------------------------------------------------------------------------- points


def _check_value(name: str, value: Any) -> Scalar:
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(
            f"grid values must be ints, floats or strings (name matrix ensembles by a string); "
            f"{name!r} has {value!r} of type {type(value).__name__}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"grid value {name}={value} is not finite")
    return value


def _normalise_grid(grid: Mapping[str, Sequence[Any]]) -> dict[str, list[Scalar]]:
    if not isinstance(grid, Mapping):
        raise TypeError(f"grid must be a mapping name -> list of values, got {type(grid).__name__}")
    out: dict[str, list[Scalar]] = {}
    for name, values in grid.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"grid names must be identifiers, got {name!r}")
        if name == "seed":
            raise ValueError("'seed' is reserved for the seeds axis; pass seeds=...")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | np.ndarray):
            values = [values]
        values = [_check_value(name, v) for v in values]
        if not values:
            raise ValueError(f"grid axis {name!r} is empty")
        if len(set(values)) != len(values):
            raise ValueError(f"grid axis {name!r} has repeated values {values}")
        out[name] = values
    return out


def _normalise_seeds(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ValueError(f"seeds as a count must be >= 1, got {seeds}")
        return list(range(int(seeds)))
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list of distinct ints, got {seeds}")
    return seeds


def sweep_points(grid: Mapping[str, Sequence[Any]], seeds: int | Sequence[int]) -> list[dict[str, Scalar]]:
    """All points of a sweep in execution order (grid axes in order, then the seed)."""
    grid = _normalise_grid(grid)
    seeds = _normalise_seeds(seeds)
    names = list(grid)
    return [
        {**dict(zip(names, combo)), "seed": seed}
        for combo in itertools.product(*grid.values())
        for seed in seeds
    ]


def _point_file(index: int, point: Mapping[str, Scalar]) -> str:
    tag = hashlib.sha1(json.dumps(point, sort_keys=True).encode()).hexdigest()[:12]
    return f"p{index:06d}-{tag}.nc"


def _check_point_dataset(ds: Any, point: Mapping[str, Scalar], allow_nan: bool) -> xr.Dataset:
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"the point function must return an xarray.Dataset, got {type(ds).__name__} at {point}")
    clash = [k for k in point if k in ds.dims or k in ds.coords]
    if clash:
        raise ValueError(f"the point dataset already uses the sweep names {clash} as dims/coords")
    if not allow_nan:
        for name, var in ds.data_vars.items():
            if np.issubdtype(var.dtype, np.floating) and not np.all(np.isfinite(var.values)):
                raise ValueError(
                    f"observable {name!r} has NaN/inf at point {point}; fix the solve or pass allow_nan=True"
                )
    return ds


# --------------------------------------------------------------------------- the engine


def run_sweep(
    fn: Callable[..., xr.Dataset],
    grid: Mapping[str, Sequence[Any]],
    *,
    directory: str | os.PathLike,
    seeds: int | Sequence[int] = (0,),
    name: str = "sweep",
    attrs: Mapping[str, Any] | None = None,
    progress: bool = True,
    allow_nan: bool = False,
) -> xr.Dataset:
    """Run ``fn`` over ``grid`` x ``seeds``, saving each point as it finishes; resume if interrupted.

    Args:
        fn: ``fn(seed=int, **params) -> xarray.Dataset`` for one point (deterministic given
            its arguments). Its dims (e.g. ``t``, ``member``) are kept.
        grid: ``{name: [values]}``; values are ints, floats or strings (name random-matrix
            ensembles by strings). The outer product is swept, axes in the given order.
        directory: where points, the manifest and the merged ``<name>.nc`` are written.
        seeds: an int (``range(seeds)``) or a list of distinct ints; becomes dim ``seed``.
        name: the sweep's name (file name of the merged dataset, progress-bar label).
        attrs: extra parameters stored in the dataset's attributes (and the manifest).
        progress: show a tqdm bar over points with an ETA.
        allow_nan: accept NaN/inf observables (default: raise ``ValueError``).

    Returns:
        The merged dataset, dims ``(*grid, "seed", *point dims)``. Its ``attrs`` hold
        ``sweep_name``, ``sweep_grid`` and ``sweep_seeds`` (JSON) and ``attrs``.

    Raises:
        SweepMismatchError: ``directory`` holds a sweep started with other arguments.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    grid = _normalise_grid(grid)
    seeds = _normalise_seeds(seeds)
    attrs = dict(attrs or {})
    directory = Path(directory)
    points_dir = directory / POINTS
    points_dir.mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": name,
        "grid": grid,
        "seeds": seeds,
        "attrs": json.loads(json.dumps(attrs, sort_keys=True, default=str)),
        "function": f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}",
    }
    lock = lock_directory(directory)
    try:
        diff = check_manifest(directory, manifest)
        if diff:
            raise SweepMismatchError(
                f"{directory} holds a sweep with different {diff}; use a new directory "
                "(or delete this one) to start a different sweep"
            )
        return _run_locked(fn, grid, seeds, attrs, directory, points_dir, name, progress, allow_nan)
    finally:
        lock.close()


def _run_locked(fn, grid, seeds, attrs, directory, points_dir, name, progress, allow_nan):
    for stale in points_dir.glob(".*.tmp"):
        stale.unlink(missing_ok=True)

    points = sweep_points(grid, seeds)
    files = [points_dir / _point_file(i, p) for i, p in enumerate(points)]
    todo = [i for i, f in enumerate(files) if not f.exists()]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(points), initial=len(points) - len(todo), desc=name, unit="point",
                   dynamic_ncols=True)
    try:
        for i in todo:
            point = points[i]
            params = {k: v for k, v in point.items() if k != "seed"}
            if bar is not None:
                bar.set_postfix_str(", ".join(f"{k}={v}" for k, v in point.items()), refresh=False)
            ds = _check_point_dataset(fn(seed=point["seed"], **params), point, allow_nan)
            ds = ds.assign_coords({k: v for k, v in point.items()})
            atomic_write_netcdf(ds, files[i])
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    merged = merge_points(files, points, grid, seeds)
    merged.attrs.update({k: netcdf_attr(v) for k, v in attrs.items()})
    merged.attrs.update(
        sweep_name=name,
        sweep_grid=json.dumps(grid),
        sweep_seeds=json.dumps(seeds),
    )
    out = directory / f"{name}.nc"
    atomic_write_netcdf(merged, out)
    return xr.load_dataset(out)


def timed(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a point function to add its wall time (seconds) as the variable ``wall_time``.

    Timing varies between runs, so do not use it in sweeps whose results are compared.
    """

    def wrapper(**kwargs):
        start = time.perf_counter()
        ds = fn(**kwargs)
        return ds.assign(wall_time=time.perf_counter() - start)

    wrapper.__qualname__ = getattr(fn, "__qualname__", "timed")
    wrapper.__module__ = getattr(fn, "__module__", __name__)
    return wrapper
