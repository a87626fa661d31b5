"""Ensembles: how a batch of initial conditions is integrated, chunked and sharded.

``x0`` of shape (batch, n, d) (or (batch, n) on the circle) is an ensemble. Strategies:

* ``"batched"``: the whole batch is one state with a shared step whose error norm is the **max
  over members** of each member's RMS error (:func:`ensemble_max_norm`), so no member is less
  accurate than it would be alone;
* ``"vmap"``: ``jax.vmap`` of the whole adaptive solve, each member with its own steps (a vmapped
  while-loop runs until its slowest member is done);
* ``"map"``: the members one after another inside one compiled program (``jax.lax.map``), each
  with its own steps and no padding to the slowest member;
* ``"auto"`` (default): "map" on a CPU when n >= :data:`AUTO_MAP_MIN_TOKENS`, otherwise
  "batched" (and always "batched" on GPU/TPU, where one wide vectorised step is what the
  hardware wants; not yet measured on a device: ``python -m benchmarks.device`` does). The
  backend is read from x0 (:func:`backend_of`: the platform of its devices, or
  ``jax.default_backend()`` for traced and host arrays).

All three agree with a loop over members (vmap and map to 1e-12, batched to the solver
tolerance). The measurement behind "auto" is in ``docs/ensembles.md``.

An ensemble larger than a memory budget is solved in equal chunks (:func:`solve_chunked`), and
:func:`shard_ensemble` places the member axis on the devices of a mesh. Both pad the batch with
copies of member 0 (:func:`pad_members`): the max-over-members error norm of a batched solve is
unchanged by duplicates, and one compilation serves every chunk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Array, Float

from .._validate import enforce
from ..fields import AbstractField
from ._core import SolveConfig, SolveOutput, solve_one
from ._failure import failure_checks, is_failure

Ensemble = Literal["auto", "batched", "vmap", "map"]

#: ``ensemble="auto"`` uses "map" on a CPU from this many tokens on (``docs/ensembles.md``)
AUTO_MAP_MIN_TOKENS = 128

#: default byte budget of one ensemble solve before it is chunked
DEFAULT_MAX_MEMORY = 2 * 1024**3


def backend_of(x) -> str:
    """The platform ("cpu", "gpu", "tpu") that ``x`` lives on: the devices of a concrete
    ``jax.Array`` (committed with ``jax.device_put`` or sharded), else (a tracer inside
    ``jit``, a NumPy array, a list) ``jax.default_backend()``, where JAX will place it."""
    if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer):
        platforms = {device.platform for device in x.devices()}
        if len(platforms) == 1:
            return platforms.pop()
    return jax.default_backend()


def resolve_ensemble(ensemble: str, n: int, backend: str | None = None) -> str:
    """The strategy ``ensemble="auto"`` stands for at n tokens on ``backend`` (default
    ``jax.default_backend()``; ``simulate`` passes :func:`backend_of` its x0)."""
    if ensemble != "auto":
        return ensemble
    backend = jax.default_backend() if backend is None else backend
    return "map" if backend == "cpu" and n >= AUTO_MAP_MIN_TOKENS else "batched"


def ensemble_max_norm(y: Array) -> Array:
    """max over ensemble members (leading axis) of each member's RMS norm."""
    return jnp.max(jax.vmap(optx.rms_norm)(y))


def ensemble_bytes_per_member(n: int, d: int, num_saves: int, itemsize: int = 8) -> int:
    """Estimated peak bytes of one ensemble member: the saved states (T n d), ~10
    Runge-Kutta stage buffers (n d) and the attention working set (n * min(n, 1024))."""
    return itemsize * (num_saves * n * d + 10 * n * d + 4 * n * min(n, 1024))


def pad_members(x0: Array, multiple: int) -> Array:
    """Pad the leading (member) axis of x0 to a multiple of ``multiple`` with copies of member 0."""
    pad = (-x0.shape[0]) % multiple
    if not pad:
        return x0
    return jnp.concatenate([x0, jnp.broadcast_to(x0[:1], (pad, *x0.shape[1:]))], axis=0)


@eqx.filter_jit
def solve_jit(config: SolveConfig, field: AbstractField, x0: Array, t0: Array, t1: Array,
              ts: Array) -> SolveOutput:
    """The compiled solve of one configuration (``config.mode == "single"``) or an ensemble."""
    if config.mode in ("vmap", "map"):
        def one(x):
            return solve_one(config, field, x, t0, t1, ts, batched=False)

        out = jax.vmap(one)(x0) if config.mode == "vmap" else jax.lax.map(one, x0)
        if config.saveat is None:  # the requested save times, shared by every member
            out = dataclasses.replace(out, ts=ts)
    else:
        out = solve_one(config, field, x0, t0, t1, ts, batched=config.mode == "batched")
    if config.traced:  # the host cannot read the result: the same failures through equinox.error_if
        xs = enforce(failure_checks(out.result, label="jaxattn.simulate", step_limit_advice=config.step_limit_advice,
                                    nonfinite_causes=config.nonfinite_causes), out.xs)
        out = dataclasses.replace(out, xs=xs)
    return out


def solve_chunked(chunk: int, config: SolveConfig, field: AbstractField, x0: Array, t0: Array,
                  t1: Array, ts: Array) -> SolveOutput:
    """An ensemble solved in equal chunks of ``chunk`` members (the last padded with copies of
    member 0, so one compilation serves all), the outputs concatenated. Chunks take their own
    shared steps (batched mode), so the results differ from one solve at the solver tolerance.

    With ``stop_when`` in batched mode the event keeps its unchunked meaning, *the condition holds
    for every member of the whole ensemble* (:func:`_global_event`); with vmap/map every member
    stops on its own, chunked or not.
    """
    batch = x0.shape[0]
    padded = pad_members(x0, chunk)
    chunks = [padded[i:i + chunk] for i in range(0, padded.shape[0], chunk)]
    if config.stop_when is not None and config.mode == "batched":
        if config.traced:
            raise ValueError(
                "stop_when on a batched ensemble above max_memory needs host-side control between the "
                "chunks and cannot run under jax.jit/grad/vmap: pass max_memory=None (one solve), "
                "ensemble='map' (members stop on their own), or call simulate outside jit")
        parts = _global_event(config, field, chunks, t0, t1, ts)
    else:
        parts = [solve_jit(config, field, c, t0, t1, ts) for c in chunks]
    return _join(parts, chunk, batch)


def _join(parts: list[SolveOutput], chunk: int, batch: int) -> SolveOutput:
    def join(*leaves):  # per-member values: scalars in batched mode, (chunk,) in vmap/map mode
        return jnp.concatenate([jnp.broadcast_to(a, (chunk, *a.shape[1:]) if a.ndim else (chunk,))
                                for a in leaves])[:batch]

    joined = jax.tree_util.tree_map(join, *[dataclasses.replace(p, ts=None) for p in parts])
    return dataclasses.replace(joined, ts=parts[0].ts)  # the save times are shared


def _global_event(config: SolveConfig, field: AbstractField, chunks: list[Array], t0: Array, t1: Array,
                  ts: Array) -> list[SolveOutput]:
    """Chunked batched solves that stop where ``stop_when`` first holds for *all* members.

    Each chunk is solved with the event (it stops where its own members all satisfy it); the latest
    of those times T is the earliest the whole ensemble can; the chunks that stopped before T are
    continued to T without the event (saves after T hold the state at T, as unchunked). If the
    condition then holds for every member at T the solve ends there; if a chunk's condition no
    longer holds (it is not monotone), every chunk is solved on from T with the event and the
    search repeats. Without any event the chunks end at t1, exactly as unchunked.
    """
    free = dataclasses.replace(config, stop_when=None)
    check = jax.jit(jax.vmap(config.stop_when))
    parts = [solve_jit(config, field, c, t0, t1, ts) for c in chunks]
    while True:
        if any(bool(jnp.any(is_failure(p.result))) for p in parts):
            return parts  # the failure is reported for the whole ensemble
        T = max(p.t_last for p in parts)
        parts = [p if not bool(p.t_last < T) else _merge(p, solve_jit(
            free, field, p.x_last, p.t_last, T, jnp.clip(ts, p.t_last, T)), ts) for p in parts]
        if bool(T >= t1):  # some chunk never met the condition: no event, every chunk at t1
            return [_with_result(p, diffrax.RESULTS.successful) for p in parts]
        if all(bool(jnp.all(check(p.x_last))) for p in parts):
            return [_with_result(p, diffrax.RESULTS.event_occurred) for p in parts]
        parts = [_merge(p, solve_jit(config, field, p.x_last, T, t1, jnp.clip(ts, T, t1)), ts) for p in parts]


def _with_result(out: SolveOutput, item) -> SolveOutput:
    """``out`` with every member's result set to ``item``."""
    everywhere = jnp.ones(jnp.shape(out.result._value), dtype=bool)
    return dataclasses.replace(out, result=diffrax.RESULTS.where(everywhere, item, out.result))


def _merge(before: SolveOutput, after: SolveOutput, ts: Array) -> SolveOutput:
    """``before`` up to its ``t_last``, continued by ``after`` (a solve from there) at the later saves."""
    later = (ts > before.t_last).reshape((1, -1) + (1,) * (before.xs.ndim - 2))
    stats = jax.tree_util.tree_map(jnp.add, before.stats, after.stats)
    return dataclasses.replace(after, ts=before.ts, xs=jnp.where(later, after.xs, before.xs), stats=stats)


# --------------------------------------------------------------------------- devices


def ensemble_mesh(devices: Sequence[jax.Device] | None = None) -> jax.sharding.Mesh:
    """A one-axis mesh named ``"batch"`` over ``devices`` (default: this process's devices,
    ``jax.local_devices()``, which are all devices unless ``jax.distributed`` runs several
    processes; a mesh over every process's devices: ``jaxattn.studies.solve_global_ensemble``)."""
    devices = list(jax.local_devices() if devices is None else devices)
    return jax.sharding.Mesh(np.array(devices), ("batch",))


def shard_ensemble(x0: Float[Array, "batch ..."],
                   mesh: jax.sharding.Mesh | None = None) -> tuple[Float[Array, "padded ..."], int]:
    """Place the leading (ensemble) axis of ``x0`` on the devices of ``mesh``.

    Returns ``(x0_sharded, batch)``: when the batch size is not a multiple of the device
    count, x0 is padded with copies of its first member (:func:`pad_members`; the
    max-over-members error norm of the batched solve is unchanged by duplicates) and
    ``batch`` is the original size to slice the results back to.
    """
    x0 = jnp.asarray(x0)
    if x0.ndim < 2:
        raise ValueError(f"an ensemble needs a leading batch axis, got shape {x0.shape}")
    mesh = ensemble_mesh() if mesh is None else mesh
    count = mesh.devices.size
    batch = x0.shape[0]
    x0 = pad_members(x0, count)
    if count == 1:
        return x0, batch
    spec = jax.sharding.PartitionSpec("batch", *([None] * (x0.ndim - 1)))
    return jax.device_put(x0, jax.sharding.NamedSharding(mesh, spec)), batch
