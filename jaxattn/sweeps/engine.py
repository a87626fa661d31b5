"""The sweep engine: grids x seeds of point functions, saved point by point, resumable, shared by processes.

A *sweep* is the outer product of a parameter grid (``{"beta": [...], "d": [...],
"ensemble": ["identity", "ginibre"]}``) and a list of random seeds. Each *point*
(one parameter combination and one seed) calls a point function

    fn(seed=..., **params) -> xarray.Dataset

which typically draws an ensemble of initial conditions x0 of shape (batch, n, d) from
``jax.random.PRNGKey(seed)``, solves it as **one** batched state
([`jaxattn.solve.solve_ensemble`][jaxattn.solve.solve_ensemble], which also shards it over devices) and reduces the
trajectories to observables on a time grid (dims such as ``t`` and ``member``). The engine adds
the grid coordinates and ``seed`` and returns one `xarray.Dataset` with named dims
``(*grid, seed, *point dims)`` and the sweep's parameters in ``attrs``.

Storage and resumption (one file per finished point plus one final merge; the files are
`.storage`, the claims `.claims`, the point function's identity `.identity`;
running on many processes: ``docs/scaling.md``):

* ``directory/manifest.json`` records the sweep's arguments and the point function's identity.
  Re-running with *different* arguments or another function in the same directory raises
  [`SweepMismatchError`][jaxattn.sweeps.SweepMismatchError] instead of mixing results; a corrupt manifest raises ``ValueError``
  naming the file and the fix.
* Each finished point is written to ``directory/points/p<index>-<hash>.nc`` atomically, stamped
  with its index, coordinates and the point function's identity hash, which are checked whenever
  the file is reused: a point file is only ever reused for its own point of its own sweep. A sweep
  killed at any moment (SIGINT, SIGKILL, power loss) loses at most the points being computed.
* **Per-point claims.** A process computes a point only while it holds the point's claim; any
  number of processes with no coordinator (shells, a SLURM job array) can run the same call on
  one directory: nothing is computed twice or lost, and the points are merged once (by the holder
  of the ``merge`` claim). Under ``jax.distributed`` the processes take their shares first and
  process 0 merges after a barrier.
* Restarting with the same arguments skips every point whose file holds it, recomputes none of
  them, and ends with the same merged dataset as an uninterrupted run (the point functions are
  deterministic given the seed). A zero-byte, unreadable or misplaced point file is moved to
  ``directory/corrupt/`` with a warning and its point recomputed. Temporary files of dead writers
  are removed.
* When all points exist they are merged into ``directory/<name>.nc`` (atomically too), which is
  loaded and returned by every process.

Progress: a ``tqdm`` bar over points (with an ETA) unless ``progress=False``.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import xarray as xr

from ..io import atomic_write_netcdf, netcdf_attr, remove_stale_temporaries
from .claims import Heartbeat, claim
from .identity import function_identity, identity_hash
from .storage import (
    CLAIMS,
    POINTS,
    SweepMismatchError,
    check_manifest,
    merge_points,
    move_aside,
    point_file_name,
    point_file_problem,
    read_manifest,
    write_point,
)

__all__ = ["run_sweep", "sweep_points"]

Scalar = int | float | str | bool
#: the storage layout this engine writes (recorded in the manifest): 2 = point files carry their record
FORMAT = 2
#: a sweep's name is a plain file name: it names ``directory/<name>.nc``
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


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


def _normalise_seeds(seeds: int | Sequence[int] | None) -> list[int] | None:
    if seeds is None:
        return None
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ValueError(f"seeds as a count must be >= 1, got {seeds}")
        return list(range(int(seeds)))
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list of distinct ints, got {seeds}")
    return seeds


def sweep_points(grid: Mapping[str, Sequence[Any]], seeds: int | Sequence[int] | None) -> list[dict[str, Scalar]]:
    """All points of a sweep in execution order (grid axes in order, then the seed).

    **Arguments:**

    - `grid`: ``{name: [values]}``, the sweep's axes.
    - `seeds`: an int (``range(seeds)``), a list of ints, or None (no seed).

    **Returns:**

    A list of dicts, one per point: its grid values and ``"seed"`` (none if ``seeds=None``).
    """
    grid = _normalise_grid(grid)
    seeds = _normalise_seeds(seeds)
    names = list(grid)
    combos = [dict(zip(names, combo)) for combo in itertools.product(*grid.values())]
    if seeds is None:
        return combos
    return [{**combo, "seed": seed} for combo in combos for seed in seeds]


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


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(f"name must be a plain file name (letters, digits and _ . + -, starting with a letter "
                         f"or digit), not a path: it names directory/<name>.nc; got {name!r}")
    return name


# --------------------------------------------------------------------------- the engine


def run_sweep(
    fn: Callable[..., xr.Dataset],
    grid: Mapping[str, Sequence[Any]],
    *,
    directory: str | os.PathLike,
    seeds: int | Sequence[int] | None = (0,),
    name: str = "sweep",
    attrs: Mapping[str, Any] | None = None,
    progress: bool = True,
    allow_nan: bool = False,
    claim_expiry: float = 300.0,
    poll_interval: float = 1.0,
) -> xr.Dataset:
    """Run ``fn`` over ``grid`` x ``seeds``, saving each point as it finishes; resume if interrupted.

    Any number of processes may run the same call on the same directory at the same time
    (several shells, a SLURM job array, the processes of a ``jax.distributed`` job): each
    point is computed by one of them, taken with a claim file (``docs/scaling.md``), and the
    points are merged once. Under ``jax.distributed`` (``jax.process_count() > 1``) process
    ``k`` takes points ``k, k + P, ...`` first and helps with the rest when done; after a
    barrier process 0 merges and every process returns the merged dataset.

    **Arguments:**

    - `fn`: ``fn(seed=int, **params) -> xarray.Dataset`` for one point (deterministic given
        its arguments; ``fn(**params)`` when ``seeds=None``). Its dims (e.g. ``t``,
        ``member``) are kept. Its identity
        ([`jaxattn.sweeps.function_identity`][jaxattn.sweeps.function_identity]; an [`jaxattn.sweeps.AbstractPoint`][jaxattn.sweeps.AbstractPoint]
        declares it) is recorded in the manifest and in every point file.
    - `grid`: ``{name: [values]}``; values are ints, floats or strings (name random-matrix
        ensembles by strings). The outer product is swept, axes in the given order.
    - `directory`: where points, the manifest and the merged ``⟨name⟩.nc`` are written.
    - `seeds`: an int (``range(seeds)``) or a list of distinct ints; becomes dim ``seed``.
        ``None``: a deterministic sweep without a seed axis.
    - `name`: the sweep's name: a plain file name (no path) for the merged dataset, and the
        progress bar's label.
    - `attrs`: extra parameters stored in the dataset's attributes (and the manifest).
    - `progress`: show a tqdm bar over points with an ETA.
    - `allow_nan`: accept NaN/inf observables (default: raise ``ValueError``).
    - `claim_expiry`: seconds without a heartbeat after which another process takes a
        point over (claims are renewed every ``claim_expiry / 4`` s while a point is
        computed; a claim whose owner died on this host is taken over at once). Keep it
        well above the clock skew between machines sharing the directory.
    - `poll_interval`: seconds between looks at the directory while waiting for points
        that other processes are computing.

    **Returns:**

    The merged dataset, dims ``(*grid, "seed", *point dims)`` (no ``seed`` if ``seeds=None``). Its ``attrs`` hold
    ``sweep_name``, ``sweep_grid`` and ``sweep_seeds`` (JSON), ``sweep_function`` (the
    identity hash) and ``attrs``.

    **Raises:**

    - `SweepMismatchError`: ``directory`` holds a sweep started with other arguments or
        another point function, or (its manifest deleted) points of another point function.
    - `ValueError`: ``directory/manifest.json`` is corrupt (the message says what to do), or
        ``name`` is not a plain file name.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if not (claim_expiry > 0 and poll_interval > 0):
        raise ValueError(f"claim_expiry and poll_interval must be > 0, got {claim_expiry}, {poll_interval}")
    name = _check_name(name)
    grid = _normalise_grid(grid)
    seeds = _normalise_seeds(seeds)
    if not grid and seeds is None:
        raise ValueError("a sweep needs a grid axis or seeds")
    attrs = dict(attrs or {})
    directory = Path(directory)
    points_dir = directory / POINTS
    (directory / CLAIMS).mkdir(parents=True, exist_ok=True)
    points_dir.mkdir(parents=True, exist_ok=True)
    identity = function_identity(fn)
    manifest = {
        "format": FORMAT,
        "name": name,
        "grid": grid,
        "seeds": seeds,
        "attrs": json.loads(json.dumps(attrs, sort_keys=True, default=str)),
        "function": identity,
    }
    function = identity_hash(identity)
    fresh = read_manifest(directory) is None
    diff = check_manifest(directory, manifest)
    if "format" in diff:
        raise SweepMismatchError(f"{directory} holds a sweep written by an older jaxattn, whose point files do not "
                                 "record what they hold; run the sweep in a new directory")
    if diff:
        raise SweepMismatchError(
            f"{directory} holds a sweep with different {', '.join(diff)}; use a new directory "
            "(or delete this one) to start a different sweep"
        )
    if fresh:
        _check_foreign_points(points_dir, function)
    for folder in (directory, points_dir, directory / CLAIMS):
        remove_stale_temporaries(folder, claim_expiry)
    sweep = _Sweep(fn, grid, seeds, attrs, directory, name, function, allow_nan, claim_expiry, poll_interval)
    return sweep.run(progress)


def _check_foreign_points(points_dir: Path, function: str) -> None:
    """A directory without a manifest must not hold points of another point function (or none recorded)."""
    foreign = []
    for f in sorted(points_dir.glob("p*.nc")):
        problem = point_file_problem(f, function=function)
        if problem is not None and ("point function" in problem or "records no" in problem):
            foreign.append(f"{f.name}: {problem}")
    if foreign:
        raise SweepMismatchError(
            f"{points_dir.parent} has no manifest.json but {len(foreign)} point file(s) that this sweep did not "
            f"compute (first: {foreign[0]}); run the sweep in a new directory, or move {points_dir} away")


class _Sweep:
    def __init__(self, fn, grid, seeds, attrs, directory, name, function, allow_nan, expiry, poll):
        self.fn, self.grid, self.seeds, self.attrs = fn, grid, seeds, attrs
        self.directory, self.name, self.function, self.allow_nan = directory, name, function, allow_nan
        self.expiry, self.poll = expiry, poll
        self.claims = directory / CLAIMS
        self.points = sweep_points(grid, seeds)
        self.files = [directory / POINTS / point_file_name(i, p) for i, p in enumerate(self.points)]
        self.out = directory / f"{name}.nc"
        self.bar = None

    # a point is done when its file exists and is not empty (zero-byte files are redone; a
    # truncated, misplaced or foreign file is found when it is read: under its claim, or by _merge)
    def _done(self, i: int) -> bool:
        try:
            return self.files[i].stat().st_size > 0
        except FileNotFoundError:
            return False

    def _problem(self, i: int) -> str | None:
        return point_file_problem(self.files[i], i, self.points[i], self.function)

    def _merged_is_current(self) -> bool:
        if not all(self._done(i) for i in range(len(self.files))):
            return False
        try:
            with xr.open_dataset(self.out) as merged:
                return merged.attrs.get("sweep_function") == self.function
        except Exception:  # noqa: BLE001 - missing or unreadable: merge again
            return False

    def run(self, progress: bool) -> xr.Dataset:
        if self._merged_is_current():
            return xr.load_dataset(self.out)  # finished before
        processes, rank = jax.process_count(), jax.process_index()
        order = list(range(rank, len(self.points), processes))
        order += [i for i in range(len(self.points)) if i % processes != rank]
        heartbeat = Heartbeat(self.expiry / 4)
        if progress:
            from tqdm.auto import tqdm

            done = sum(self._done(i) for i in range(len(self.files)))
            self.bar = tqdm(total=len(self.points), initial=done, desc=self.name, unit="point",
                            dynamic_ncols=True)
        try:
            self._work(order, heartbeat)
            if processes > 1:
                from jax.experimental import multihost_utils

                multihost_utils.sync_global_devices(f"jaxattn sweep {self.name}: points done")
                if rank == 0:
                    self._merge_once(order, heartbeat)
                multihost_utils.sync_global_devices(f"jaxattn sweep {self.name}: merged")
            else:
                self._merge_once(order, heartbeat)
        finally:
            heartbeat.stop()
            if self.bar is not None:
                self.bar.close()
        return xr.load_dataset(self.out)

    def _work(self, order: list[int], heartbeat: Heartbeat) -> None:
        """Compute every point not done, claiming each; wait for those others are computing."""
        while True:
            remaining = [i for i in order if not self._done(i)]
            if not remaining:
                return
            progressed = False
            for i in remaining:
                if not self._done(i) and self._compute_claimed(i, heartbeat):
                    progressed = True
            if not progressed:
                time.sleep(self.poll)

    def _compute_claimed(self, i: int, heartbeat: Heartbeat) -> bool:
        held = claim(self.claims, f"p{i:06d}", self.expiry)
        if held is None:
            return False
        heartbeat.held.append(held)
        try:
            problem = self._problem(i)
            if problem is None:
                return False  # finished by another process between our look and our claim
            if problem != "missing":
                move_aside(self.files[i], problem, self.directory)
            point = self.points[i]
            if self.bar is not None:
                self.bar.set_postfix_str(", ".join(f"{k}={v}" for k, v in point.items()), refresh=False)
            ds = _check_point_dataset(self.fn(**point), point, self.allow_nan)
            write_point(ds, self.files[i], i, point, self.function)
            if self.bar is not None:
                self.bar.update(1)
            return True
        finally:
            heartbeat.held.remove(held)
            held.release()

    def _merge_once(self, order: list[int], heartbeat: Heartbeat) -> None:
        """One process merges (the holder of the ``merge`` claim); the others wait for its file."""
        while True:
            held = claim(self.claims, "merge", self.expiry)
            if held is not None:
                heartbeat.held.append(held)
                try:
                    self._merge(order, heartbeat)
                finally:
                    heartbeat.held.remove(held)
                    held.release()
                return
            time.sleep(self.poll)
            if self._merged_is_current():
                return

    def _merge(self, order: list[int], heartbeat: Heartbeat) -> None:
        if self._merged_is_current():
            return  # merged by another process just before we claimed
        while True:  # recompute any point whose file does not hold its point, then merge
            bad = [i for i in order if self._problem(i) is not None]
            if not bad:
                break
            for i in bad:  # under the point's claim: moved aside, recomputed (or done by another)
                while self._problem(i) is not None and not self._compute_claimed(i, heartbeat):
                    time.sleep(self.poll)
        merged = merge_points(self.files, self.points, self.grid, self.seeds)
        merged.attrs.update({k: netcdf_attr(v) for k, v in self.attrs.items()})
        merged.attrs.update(
            sweep_name=self.name,
            sweep_grid=json.dumps(self.grid),
            sweep_seeds=json.dumps(self.seeds),
            sweep_function=self.function,
        )
        atomic_write_netcdf(merged, self.out)
        for stale in self.claims.glob("p*.*"):  # every point is done: their claims are history
            stale.unlink(missing_ok=True)
