"""Parameter sweeps: grids x seeds of jit-compiled ensemble solves, saved point by point.

A *sweep* is the outer product of a parameter grid (``{"beta": [...], "d": [...],
"ensemble": ["identity", "ginibre"]}``) and a list of random seeds. Each *point*
(one parameter combination and one seed) calls a user function

    fn(seed=..., **params) -> xarray.Dataset

which typically draws an ensemble of initial conditions x0 of shape (batch, n, d) from
``jax.random.PRNGKey(seed)``, solves it as **one** batched state with
[`jaxattn.simulate`][jaxattn.simulate] (see [`solve_ensemble`][jaxattn.solve.solve_ensemble], which also shards it over devices)
and reduces the trajectories to observables on a time grid (dims such as ``t`` and
``member``). The engine adds the grid coordinates and ``seed`` and returns one
`xarray.Dataset` with named dims ``(*grid, seed, *point dims)`` and the sweep's
parameters in ``attrs``.

Storage and resumption (the design is "one file per finished point plus one final merge";
the file operations are `jaxattn.io.netcdf`; running on many processes: ``docs/scaling.md``):

* ``directory/manifest.json`` records the sweep's arguments (name, grid, seeds, attrs and
  the point function's [`function_identity`][jaxattn.studies.function_identity]: qualified name, source and bytecode
  hashes, bound arguments). Re-running with *different* arguments or another function in
  the same directory raises [`SweepMismatchError`][jaxattn.studies.SweepMismatchError] instead of mixing results; a
  corrupt manifest raises ``ValueError`` naming the file and the fix.
* Each finished point is written to ``directory/points/p<index>-<hash>.nc`` through a
  temporary file in the same directory, ``fsync`` and `os.replace`, which is atomic
  on POSIX: a point file either exists complete or not at all. A sweep killed at any
  moment (SIGINT, SIGKILL, power loss) loses at most the points being computed.
* **Per-point claims.** A process computes a point only after creating its claim file
  ``directory/claims/p<index>.<generation>`` with ``O_CREAT | O_EXCL`` (exactly one process
  wins); a heartbeat thread renews the claim while the point is computed. A claim whose
  owner died on this host is taken over at once, one on another host when its heartbeat
  is older than ``claim_expiry`` (by creating the next generation, again exclusively). So
  any number of processes with no coordinator (shells, a SLURM job array) can run the same
  call on one directory: nothing is computed twice or lost, and the points are merged once
  (by the holder of the ``merge`` claim). Under ``jax.distributed`` the processes take
  their shares first and process 0 merges after a barrier.
* Restarting with the same arguments skips every point whose file exists, recomputes
  none of them, and ends with the same merged dataset as an uninterrupted run (the point
  functions are deterministic given the seed). A zero-byte or unreadable point file is
  moved to ``directory/corrupt/`` with a warning and its point recomputed. Temporary files
  of dead writers are removed.
* When all points exist they are merged into ``directory/<name>.nc`` (atomically too),
  which is loaded and returned by every process.

Devices: [`solve_ensemble`][jaxattn.solve.solve_ensemble] places the ensemble axis of x0 on a one-axis
`jax.sharding.Mesh` over this process's devices with a
``NamedSharding(mesh, PartitionSpec("batch"))``; ``simulate``'s jit-compiled batched solve
then runs SPMD-partitioned (XLA inserts the cross-device max of the per-member error
norm). A batch that is not a multiple of the device count is padded with copies of its
first member, which leaves the max-over-members error norm, hence every step, unchanged,
and the copies are dropped afterwards: results equal the one-device run.
[`solve_global_ensemble`][jaxattn.studies.solve_global_ensemble] shards one ensemble over the devices of every process.

Progress: a ``tqdm`` bar over points (with an ETA) unless ``progress=False``.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import itertools
import json
import math
import os
import re
import threading
import time
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import xarray as xr

from ..io import (
    Claim,
    atomic_write_netcdf,
    atomic_write_text,
    check_manifest,
    claim,
    merge_points,
    move_aside,
    netcdf_attr,
    point_file_problem,
    read_manifest,
    remove_stale_temporaries,
)
from ..solve import ensemble_mesh, shard_ensemble, solve_ensemble

__all__ = [
    "SweepMismatchError",
    "ensemble_mesh",
    "function_identity",
    "run_sweep",
    "shard_ensemble",
    "solve_ensemble",
    "solve_global_ensemble",
    "sweep_points",
]

POINTS = "points"
CLAIMS = "claims"

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


# --------------------------------------------------------------------------- function identity

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _code_digest(code: types.CodeType, h: Any) -> None:
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    h.update(repr(code.co_varnames).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_digest(const, h)
        else:
            h.update(repr(const).encode())


def _stable(value: Any, depth: int = 0) -> Any:
    """A JSON value that identifies ``value`` across processes (no memory addresses)."""
    if depth > 6:
        return "..."
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, np.generic):
        return _stable(value.item(), depth)
    if isinstance(value, (list, tuple)):
        return [_stable(v, depth + 1) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _stable(v, depth + 1) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (np.ndarray, jax.Array)):
        arr = np.asarray(value)
        return {"array": hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()[:16],
                "shape": list(arr.shape), "dtype": str(arr.dtype)}
    if callable(value) and (isinstance(value, (types.FunctionType, functools.partial, types.MethodType))):
        return function_identity(value, _depth=depth + 1)
    leaves, treedef = jax.tree_util.tree_flatten(value)
    if not (len(leaves) == 1 and leaves[0] is value):  # a pytree (an equinox module): its leaves
        return {"tree": _ADDRESS.sub("", str(treedef)), "leaves": [_stable(v, depth + 1) for v in leaves]}
    return _ADDRESS.sub("", repr(value))


def _check_sweep_name(name: Any) -> None:
    """``name`` becomes ``directory/<name>.nc``: a plain file name, so the merged dataset stays in the directory."""
    seps = [sep for sep in (os.sep, os.altsep, "/") if sep]
    if not isinstance(name, str) or not name.strip() or name in (".", "..") or any(sep in name for sep in seps):
        raise ValueError(f"name must be a plain file name without path separators (the merged dataset is "
                         f"directory/<name>.nc, inside the sweep directory), got {name!r}")


def function_identity(fn: Callable[..., Any], *, _depth: int = 0) -> dict[str, Any]:
    """A stable identity of a point function, recorded in the sweep's manifest.

    ``{"qualname", "source", "code", "bound"}``: the module-qualified name; a hash of the
    source text (``None`` where there is none, e.g. functions typed at a prompt); a hash of
    the bytecode, names and constants (two lambdas on one line differ here); and the bound
    values: a `functools.partial`'s arguments, a closure's cell values, defaults, a
    bound method's instance. Arrays enter by a hash of their bytes, other objects by their
    ``repr`` with memory addresses removed, so the identity is equal in every process that
    builds the same function and differs when the function or its bound values differ.
    Module-level globals the function reads are not part of it.
    """
    bound: dict[str, Any] = {}
    while isinstance(fn, functools.partial):
        bound.setdefault("args", []).extend(_stable(list(fn.args), _depth))
        bound.setdefault("keywords", {}).update(_stable(dict(fn.keywords), _depth))
        fn = fn.func
    if isinstance(fn, types.MethodType):
        bound["self"] = _stable(fn.__self__, _depth + 1)
        fn = fn.__func__
    qualname = f"{getattr(fn, '__module__', None) or '?'}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
    code = getattr(fn, "__code__", None)
    if code is None:  # a callable object: its class, its repr and its attributes (two objects may share a repr)
        code = getattr(getattr(type(fn), "__call__", None), "__code__", None)
        bound["object"] = _ADDRESS.sub("", repr(fn))
        if getattr(fn, "__dict__", None):
            bound["state"] = _stable(dict(vars(fn)), _depth + 1)
    source = None
    try:
        source = hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()[:16]
    except (OSError, TypeError):
        pass
    code_hash = None
    if code is not None:
        h = hashlib.sha256()
        _code_digest(code, h)
        code_hash = h.hexdigest()[:16]
    closure = getattr(fn, "__closure__", None)
    if closure and code is not None:
        cells = {}
        for var, cell in zip(code.co_freevars, closure):
            try:
                cells[var] = _stable(cell.cell_contents, _depth + 1)
            except ValueError:  # an empty cell
                cells[var] = None
        bound["closure"] = cells
    if getattr(fn, "__defaults__", None):
        bound["defaults"] = _stable(list(fn.__defaults__), _depth + 1)
    if getattr(fn, "__kwdefaults__", None):
        bound["kwdefaults"] = _stable(dict(fn.__kwdefaults__), _depth + 1)
    return {"qualname": qualname, "source": source, "code": code_hash, "bound": bound}


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

    Args:
        fn: ``fn(seed=int, **params) -> xarray.Dataset`` for one point (deterministic given
            its arguments). Its dims (e.g. ``t``, ``member``) are kept. Its identity
            ([`function_identity`][jaxattn.studies.function_identity]) is part of the manifest.
        grid: ``{name: [values]}``; values are ints, floats or strings (name random-matrix
            ensembles by strings). The outer product is swept, axes in the given order.
        directory: where points, the manifest and the merged ``<name>.nc`` are written.
        seeds: an int (``range(seeds)``) or a list of distinct ints; becomes dim ``seed``.
        name: the sweep's name (file name of the merged dataset, progress-bar label).
        attrs: extra parameters stored in the dataset's attributes (and the manifest).
        progress: show a tqdm bar over points with an ETA.
        allow_nan: accept NaN/inf observables (default: raise ``ValueError``).
        claim_expiry: seconds without a heartbeat after which another process takes a
            point over (claims are renewed every ``claim_expiry / 4`` s while a point is
            computed; a claim whose owner died on this host is taken over at once). Keep it
            well above the clock skew between machines sharing the directory.
        poll_interval: seconds between looks at the directory while waiting for points
            that other processes are computing.

    Returns:
        The merged dataset, dims ``(*grid, "seed", *point dims)``. Its ``attrs`` hold
        ``sweep_name``, ``sweep_grid`` and ``sweep_seeds`` (JSON) and ``attrs``.

    Raises:
        SweepMismatchError: ``directory`` holds a sweep started with other arguments or
            another point function (also point files of another function, without a manifest).
        ValueError: ``directory/manifest.json`` is corrupt (the message says what to do); ``name``
            is not a plain file name; a point file holds another point (copied over it).
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if not (claim_expiry > 0 and poll_interval > 0):
        raise ValueError(f"claim_expiry and poll_interval must be > 0, got {claim_expiry}, {poll_interval}")
    _check_sweep_name(name)
    grid = _normalise_grid(grid)
    seeds = _normalise_seeds(seeds)
    attrs = dict(attrs or {})
    directory = Path(directory)
    points_dir = directory / POINTS
    (directory / CLAIMS).mkdir(parents=True, exist_ok=True)
    points_dir.mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": name,
        "grid": grid,
        "seeds": seeds,
        "attrs": json.loads(json.dumps(attrs, sort_keys=True, default=str)),
        "function": function_identity(fn),
    }
    _upgrade_legacy_manifest(directory, manifest)
    diff = check_manifest(directory, manifest)
    if diff:
        raise SweepMismatchError(
            f"{directory} holds a sweep with different {diff}; use a new directory "
            "(or delete this one) to start a different sweep"
        )
    for folder in (directory, points_dir):
        remove_stale_temporaries(folder, claim_expiry)
    sweep = _Sweep(fn, grid, seeds, attrs, directory, name, allow_nan, claim_expiry, poll_interval)
    sweep.identity = hashlib.sha256(json.dumps(manifest["function"], sort_keys=True).encode()).hexdigest()[:16]
    return sweep.run(progress)


def _upgrade_legacy_manifest(directory: Path, manifest: dict) -> None:
    """Manifests before per-point claims stored the function as ``"module.qualname"``."""
    old = read_manifest(directory)
    if old is not None and isinstance(old.get("function"), str):
        if old["function"] == manifest["function"]["qualname"]:
            atomic_write_text(json.dumps({**old, "function": manifest["function"]}, indent=1, sort_keys=True),
                              directory / "manifest.json")


class _Heartbeat:
    """A daemon thread that renews the claims this call holds every ``interval`` seconds."""

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
        self._stop.set()
        self._thread.join()


class _Sweep:
    def __init__(self, fn, grid, seeds, attrs, directory, name, allow_nan, expiry, poll):
        self.fn, self.grid, self.seeds, self.attrs = fn, grid, seeds, attrs
        self.directory, self.name, self.allow_nan = directory, name, allow_nan
        self.expiry, self.poll = expiry, poll
        self.claims = directory / CLAIMS
        self.points = sweep_points(grid, seeds)
        self.files = [directory / POINTS / _point_file(i, p) for i, p in enumerate(self.points)]
        self.out = directory / f"{name}.nc"
        self.bar = None
        self.identity = None  # a hash of the point function's identity, recorded in every point file

    def _check_points_belong(self) -> None:
        """Stored points computed by another point function (their files record its identity) are refused,
        also when the manifest that would have said so was deleted."""
        for f in self.files:
            if not f.exists() or f.stat().st_size == 0:
                continue
            try:
                with xr.open_dataset(f) as ds:
                    recorded = ds.attrs.get("sweep_function")
            except Exception:  # noqa: BLE001 - an unreadable file is recomputed by the merge
                continue
            if recorded is not None and recorded != self.identity:
                raise SweepMismatchError(
                    f"{f} was computed by another point function than this one (its identity {recorded} != "
                    f"{self.identity}); use a new directory (or delete this one) to start a different sweep")

    # a point is done when its file exists and is not empty (zero-byte files are redone; a
    # truncated file is found when the merge reads it, see _merge)
    def _done(self, i: int) -> bool:
        try:
            return self.files[i].stat().st_size > 0
        except FileNotFoundError:
            return False

    def run(self, progress: bool) -> xr.Dataset:
        self._check_points_belong()
        if all(self._done(i) for i in range(len(self.files))) and point_file_problem(self.out) is None:
            return xr.load_dataset(self.out)  # finished before
        processes, rank = jax.process_count(), jax.process_index()
        order = list(range(rank, len(self.points), processes))
        order += [i for i in range(len(self.points)) if i % processes != rank]
        heartbeat = _Heartbeat(self.expiry / 4)
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

    def _work(self, order: list[int], heartbeat: _Heartbeat) -> None:
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

    def _compute_claimed(self, i: int, heartbeat: _Heartbeat, redo: bool = False) -> bool:
        held = claim(self.claims, f"p{i:06d}", self.expiry)
        if held is None:
            return False
        heartbeat.held.append(held)
        try:
            problem = point_file_problem(self.files[i]) if self.files[i].exists() else "missing"
            if problem is None:
                return False  # finished by another process between our look and our claim
            if problem != "missing":
                move_aside(self.files[i], problem, self.directory)
            point = self.points[i]
            params = {k: v for k, v in point.items() if k != "seed"}
            if self.bar is not None:
                self.bar.set_postfix_str(", ".join(f"{k}={v}" for k, v in point.items()), refresh=False)
            ds = _check_point_dataset(self.fn(seed=point["seed"], **params), point, self.allow_nan)
            ds = ds.assign_coords({k: v for k, v in point.items()})
            if self.identity is not None:
                ds = ds.assign_attrs(sweep_function=self.identity)
            atomic_write_netcdf(ds, self.files[i])
            if self.bar is not None:
                self.bar.update(1)
            return True
        finally:
            heartbeat.held.remove(held)
            held.release()

    def _merge_once(self, order: list[int], heartbeat: _Heartbeat) -> None:
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
            if self.out.exists() and all(self._done(i) for i in range(len(self.files))):
                return

    def _merge(self, order: list[int], heartbeat: _Heartbeat) -> None:
        if self.out.exists() and point_file_problem(self.out) is None and all(
                self._done(i) for i in range(len(self.files))):
            return  # merged by another process just before we claimed
        while True:  # recompute any point whose file does not load, then merge
            bad = [i for i in order if point_file_problem(self.files[i]) is not None]
            if not bad:
                break
            for i in bad:  # under the point's claim: moved aside, recomputed (or done by another)
                while point_file_problem(self.files[i]) is not None and not self._compute_claimed(i, heartbeat):
                    time.sleep(self.poll)
        merged = merge_points(self.files, self.points, self.grid, self.seeds)
        merged.attrs.update({k: netcdf_attr(v) for k, v in self.attrs.items()})
        merged.attrs.update(
            sweep_name=self.name,
            sweep_grid=json.dumps(self.grid),
            sweep_seeds=json.dumps(self.seeds),
        )
        atomic_write_netcdf(merged, self.out)
        for stale in self.claims.glob("p*.*"):  # every point is done: their claims are history
            stale.unlink(missing_ok=True)


# --------------------------------------------------------------------------- one ensemble, all processes


def solve_global_ensemble(
    field: Any,
    x0_local: Any,
    t1: float,
    *,
    ts: Any,
    observe: Callable[[Any, Any], Mapping[str, Any] | Any],
    **simulate_kwargs: Any,
) -> dict[str, np.ndarray]:
    """One ensemble sharded over the devices of **every** process (``jax.distributed``).

    Every process calls this with its own members ``x0_local`` (shape (b_k, n, d); the
    sizes may differ); the global ensemble is their concatenation in process order. Each
    part is padded with copies of its first member to a common multiple of the local device
    count (duplicates leave the max-over-members error norm, hence every step, unchanged),
    assembled with `jax.make_array_from_process_local_data` on a one-axis mesh over
    ``jax.devices()`` ordered by process, and integrated by [`jaxattn.simulate`][jaxattn.simulate] as one
    batched state: one SPMD program over all processes, whose shared step is the same as
    a one-process solve of the whole ensemble. ``observe(ts, xs)`` returns arrays with the
    member axis first; they are gathered to every process (padding dropped) as NumPy
    arrays of length ``sum_k b_k``, with ``num_steps``. With one process this is
    [`solve_ensemble`][jaxattn.solve.solve_ensemble] over the local devices.
    """
    from jax.experimental import multihost_utils

    from ..solve import simulate

    if simulate_kwargs.get("ensemble", "batched") != "batched":
        raise ValueError("solve_global_ensemble integrates the ensemble as one batched state")
    simulate_kwargs["ensemble"] = "batched"
    local = np.asarray(x0_local)
    if local.ndim < 2 or local.shape[0] < 1:
        raise ValueError(f"x0_local needs a leading member axis with >= 1 member, got shape {local.shape}")
    processes, rank = jax.process_count(), jax.process_index()
    sizes = np.asarray(multihost_utils.process_allgather(np.array([local.shape[0]]))).reshape(-1)
    shapes = multihost_utils.process_allgather(np.array(local.shape[1:]))
    if not np.all(np.asarray(shapes).reshape(processes, -1) == np.array(local.shape[1:])):
        raise ValueError(f"every process must pass members of one shape; this one has {local.shape[1:]}, "
                         f"all: {np.asarray(shapes).reshape(processes, -1).tolist()}")
    per_device = -(-int(sizes.max()) // jax.local_device_count())
    per_process = per_device * jax.local_device_count()
    padded = np.concatenate([local, np.repeat(local[:1], per_process - local.shape[0], axis=0)])
    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    mesh = jax.sharding.Mesh(np.array(devices), ("batch",))
    spec = jax.sharding.PartitionSpec("batch", *([None] * (local.ndim - 1)))
    x0 = jax.make_array_from_process_local_data(jax.sharding.NamedSharding(mesh, spec), padded,
                                                (processes * per_process, *local.shape[1:]))
    traj = simulate(field, x0, t1, ts=ts, **simulate_kwargs)
    obs = observe(traj.ts, traj.xs)
    single = not isinstance(obs, Mapping)
    obs = {"value": obs} if single else dict(obs)
    keep = np.concatenate([np.arange(k * per_process, k * per_process + int(sizes[k])) for k in range(processes)])
    out = {}
    for key, value in obs.items():
        if getattr(value, "ndim", 0) == 0 or value.shape[0] != processes * per_process:
            raise ValueError(f"observe must return arrays with the member axis first (length "
                             f"{processes * per_process}); {key!r} has shape {getattr(value, 'shape', ())}")
        full = np.asarray(multihost_utils.process_allgather(value, tiled=True))
        out[key] = full[keep]
    steps = traj.stats["num_steps"]
    out["num_steps"] = np.asarray(steps.addressable_data(0) if isinstance(steps, jax.Array) else steps)
    return out


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
