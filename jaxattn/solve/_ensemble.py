"""Ensembles: the strategies behind ``simulate(ensemble=...)``, chunking and device sharding.

``x0`` of shape (batch, n, d) (or (batch, n) on the circle) is an ensemble. Everything that integrates
one is an [`AbstractEnsemble`][jaxattn.solve.AbstractEnsemble] with one method, [`run`][jaxattn.solve.AbstractEnsemble.run] (the ensemble's
`SolveOutput` from the solve's static configuration, the field and the
data), so a new way is one class:

* the strategies ([`AbstractStrategy`][jaxattn.solve.AbstractStrategy]), one compiled solve each (`solve_jit`):
  [`Batched`][jaxattn.solve.Batched] (the whole batch is one state with a shared step whose error norm is the max over
  members of each member's RMS error, [`ensemble_max_norm`][jaxattn.solve.ensemble_max_norm], so no member is less accurate than it
  would be alone), [`Vmap`][jaxattn.solve.Vmap] (``jax.vmap`` of the whole adaptive solve, each member with its own
  steps; a vmapped while-loop runs until its slowest member is done), [`Map`][jaxattn.solve.Map] (the members one after
  another inside one compiled program, ``jax.lax.map``, each with its own steps and no padding to the
  slowest member); [`Single`][jaxattn.solve.Single] is one configuration;
* [`Chunked`][jaxattn.solve.Chunked] (``inner``, ``chunk``): the members in equal chunks of ``chunk``, the last padded with
  copies of member 0 (`pad_members`: the max-over-members error norm of a batched solve is unchanged
  by duplicates, and one compilation serves every chunk); ``simulate`` wraps its strategy in it when the
  estimate [`ensemble_bytes_per_member`][jaxattn.solve.ensemble_bytes_per_member] x batch exceeds ``max_memory``;
* [`Sharded`][jaxattn.solve.Sharded] (``inner``, ``mesh``): the member axis placed on the devices of a one-axis mesh
  (this process's devices by default), padded to a multiple of the device count;
* [`GlobalSharded`][jaxattn.solve.GlobalSharded] (``inner``): one ensemble over the devices of every process of a
  ``jax.distributed`` job, each process passing its own members (``solve_global_ensemble``).

The strings ``"batched"``, ``"vmap"``, ``"map"`` name the strategies; ``"auto"`` (default) is "map" on a
CPU when n >= [`AUTO_MAP_MIN_TOKENS`][jaxattn.solve.AUTO_MAP_MIN_TOKENS], otherwise "batched" (and always "batched" on GPU/TPU, where
one wide vectorised step is what the hardware wants; ``python -m benchmarks.device`` measures it), and
"batched" whenever ``stop_when`` is given (below). The backend is read from x0 ([`backend_of`][jaxattn.solve.backend_of]).
All strategies agree with a loop over members (vmap and map to 1e-12, batched to the solver tolerance).

**stop_when has one meaning for every strategy**: the ensemble stops at the end of the first step at
which the condition holds for *every* member; every member reports that time as ``t_final``, and saves
after it hold each member's state there. A one-state strategy (batched) has that as one event; with
per-member steps (vmap, map) and in chunks, [`stop_together`][jaxattn.solve.stop_together] solves each part with its own event,
continues the parts that stopped earlier to the latest of those times T without the event, and ends there
if the condition holds for every member at T (if it no longer does, the condition is not monotone, the
search resumes from T). That needs host control between the phases, so under ``jax.jit`` it is refused
(a one-state ``"batched"`` solve does it in one compiled program).
"""

from __future__ import annotations

import abc
import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

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
    """The platform that ``x`` lives on (what ``ensemble="auto"`` decides by).

    **Arguments:**

    - `x`: any array-like: a concrete ``jax.Array`` (committed with ``jax.device_put`` or sharded),
        a tracer inside ``jit``, a NumPy array or a list.

    **Returns:**

    ``"cpu"``, ``"gpu"`` or ``"tpu"``: the platform of the devices of a concrete ``jax.Array`` when they
    share one, else ``jax.default_backend()`` (where JAX will place ``x``).
    """
    if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer):
        platforms = {device.platform for device in x.devices()}
        if len(platforms) == 1:
            return platforms.pop()
    return jax.default_backend()


def resolve_ensemble(ensemble: "str | AbstractEnsemble", n: int, backend: str | None = None,
                     stop_when: object = None) -> "AbstractEnsemble":
    """The ensemble object ``simulate(ensemble=...)`` uses.

    ``"auto"`` is [`Map`][jaxattn.solve.Map] on a CPU for n >= [`AUTO_MAP_MIN_TOKENS`][jaxattn.solve.AUTO_MAP_MIN_TOKENS]
    tokens without ``stop_when``, [`Batched`][jaxattn.solve.Batched] otherwise (the rule of the module docstring,
    measured in ``docs/ensembles.md``).

    **Arguments:**

    - `ensemble`: an [`AbstractEnsemble`][jaxattn.solve.AbstractEnsemble] (returned as given), a strategy
        name ``"batched"``, ``"vmap"``, ``"map"``, or ``"auto"``.
    - `n`: the number of tokens of one configuration (int >= 1).
    - `backend`: the platform ``"cpu"``/``"gpu"``/``"tpu"``; default None: ``jax.default_backend()``
        (``simulate`` passes [`backend_of`][jaxattn.solve.backend_of] of its x0).
    - `stop_when`: the solve's stopping condition or None (default); with one, ``"auto"`` is always
        ``"batched"`` (one event for the whole ensemble).

    **Returns:**

    The [`AbstractEnsemble`][jaxattn.solve.AbstractEnsemble] to run.

    **Raises:**

    - `ValueError`: if ``ensemble`` is neither an ``AbstractEnsemble`` nor one of the four names.
    """
    if isinstance(ensemble, AbstractEnsemble):
        return ensemble
    if ensemble == "auto":
        backend = jax.default_backend() if backend is None else backend
        per_member = backend == "cpu" and n >= AUTO_MAP_MIN_TOKENS and stop_when is None
        return Map() if per_member else Batched()
    if isinstance(ensemble, str) and ensemble in STRATEGIES:
        return STRATEGIES[ensemble]
    raise ValueError(f"ensemble must be 'auto', 'batched', 'vmap', 'map' or a jaxattn.solve.AbstractEnsemble "
                     f"(e.g. Chunked(Map(), 16)), got {ensemble!r}")


def ensemble_max_norm(y: Array) -> Array:
    """The error norm of a batched solve: the max over members of each member's RMS norm.

    ||y|| = max_b sqrt(mean(y_b^2)), used as the PID controller's ``norm`` so that a shared step is
    accepted only when every member meets the tolerance it would meet alone.

    **Arguments:**

    - `y`: array of shape (batch, ...): the members along the leading axis (floating dtype).

    **Returns:**

    A scalar array (same floating dtype): the largest member RMS norm.
    """
    return jnp.max(jax.vmap(optx.rms_norm)(y))


def ensemble_bytes_per_member(n: int, d: int, num_saves: int, itemsize: int = 8) -> int:
    """Estimated peak bytes of one ensemble member (``simulate`` chunks the ensemble above ``max_memory``).

    bytes = itemsize (T n d + 10 n d + 4 n min(n, 1024)): the saved states, ~10 Runge-Kutta stage
    buffers and the attention working set (rows blocked at 1024).

    **Arguments:**

    - `n`: number of tokens (int >= 1).
    - `d`: dimension of a token (int >= 1; 1 on the circle).
    - `num_saves`: number of saved times T (int >= 0).
    - `itemsize`: bytes per number; default 8 (float64).

    **Returns:**

    The estimate in bytes (int).
    """
    return itemsize * (num_saves * n * d + 10 * n * d + 4 * n * min(n, 1024))


def pad_members(x0: Array, multiple: int) -> Array:
    """Pad the leading (member) axis of x0 to a multiple of ``multiple`` with copies of member 0.

    Duplicates leave the max-over-members error norm of a batched solve, hence every step, unchanged.

    **Arguments:**

    - `x0`: array of shape (batch, ...), batch >= 1.
    - `multiple`: int >= 1.

    **Returns:**

    ``x0`` itself when batch is already a multiple, else an array of shape (ceil(batch / multiple) *
    multiple, ...) whose first batch members are ``x0``.
    """
    pad = (-x0.shape[0]) % multiple
    if not pad:
        return x0
    return jnp.concatenate([x0, jnp.broadcast_to(x0[:1], (pad, *x0.shape[1:]))], axis=0)


@eqx.filter_jit
def solve_jit(config: SolveConfig, field: AbstractField, x0: Array, t0: Array, t1: Array,
              ts: Array) -> SolveOutput:
    """The compiled solve of ``x0`` by ``config.strategy`` (``equinox.filter_jit``: one compilation per shape).

    **Arguments:**

    - `config`: the static `SolveConfig` (solver, controller, strategy, ...).
    - `field`: the [`AbstractField`][jaxattn.AbstractField] to integrate.
    - `x0`: the initial states, shape ``(batch, *event)`` for an ensemble or ``(*event)`` for ``Single``.
    - `t0`: start time, a scalar or one per member (batch,).
    - `t1`: end time, a scalar.
    - `ts`: save times, shape (T,) shared or (batch, T) per member, within [t0, t1].

    **Returns:**

    The `SolveOutput` of the members (batch first). Under a user's ``jit`` (``config.traced``) a
    failed solve raises through ``equinox.error_if`` (`jaxattn.solve._failure.failure_checks`).
    """
    out = config.strategy.integrate(functools.partial(_solve_member, config, field, t1), x0, t0, ts)
    if not config.strategy.one_state and config.saveat is None:  # the requested save times
        out = dataclasses.replace(out, ts=ts if ts.ndim == 1 else out.ts[0])
    if config.traced:  # the host cannot read the result: the same failures through equinox.error_if
        xs = enforce(failure_checks(out.result, label="jaxattn.simulate", step_limit_advice=config.step_limit_advice,
                                    nonfinite_causes=config.nonfinite_causes), out.xs)
        out = dataclasses.replace(out, xs=xs)
    return out


def _solve_member(config, field, t1, x, t0, ts, batched):
    return solve_one(config, field, x, t0, t1, ts, batched=batched)


# --------------------------------------------------------------------------- the interface


class AbstractEnsemble(eqx.Module):
    """A way to integrate an ensemble (module docstring): one method, [`run`][jaxattn.solve.AbstractEnsemble.run]."""

    @abc.abstractmethod
    def run(self, config: SolveConfig, field: AbstractField, x0: Array, t0: Array, t1: Array,
            ts: Array) -> SolveOutput:
        """Integrate the members of ``x0``.

        **Arguments:**

        - `config`: the solve's static `SolveConfig`; its ``strategy`` is set by the ensemble.
        - `field`: the [`AbstractField`][jaxattn.AbstractField] to integrate.
        - `x0`: the members, shape ``(batch, *event)`` (event: (n, d), (n,) on the circle, (n, n) for Gram).
        - `t0`: start time, a scalar or one per member (batch,).
        - `t1`: end time, a scalar.
        - `ts`: save times, shape (T,) shared or (batch, T) per member.

        **Returns:**

        The `SolveOutput` of all members (batch first), as one solve of the whole ensemble would give.

        **Raises:**

        - `ValueError`: ``config.stop_when`` with per-member steps or chunks under ``jax.jit``
            ([`stop_together`][jaxattn.solve.stop_together]); for [`GlobalSharded`][jaxattn.solve.GlobalSharded],
            processes passing members of different shapes.
        """

    @property
    @abc.abstractmethod
    def strategy(self) -> AbstractStrategy:
        """The [`AbstractStrategy`][jaxattn.solve.AbstractStrategy] that integrates the members inside the
        compiled solve (the strategy itself, or the one a wrapper wraps)."""


class AbstractStrategy(AbstractEnsemble):
    """How the members of an ensemble are integrated inside one compiled solve (module docstring): a new
    strategy is one final subclass with [`integrate`][jaxattn.solve.AbstractStrategy.integrate].

    ``name`` (class variable) is the string ``simulate(ensemble=...)`` accepts for it; ``one_state``
    (class variable) is True when all members form one diffrax state sharing every step (then a PID
    controller's norm is the max over members, and ``stop_when`` holding for all members is one event).
    """

    name: eqx.AbstractClassVar[str]
    one_state: eqx.AbstractClassVar[bool]

    @abc.abstractmethod
    def integrate(self, solve: Callable[..., Any], x0: Array, t0: Array, ts: Array) -> Any:
        """Integrate the members of ``x0`` inside one compiled solve.

        **Arguments:**

        - `solve`: ``solve(x, t0, ts, batched) -> SolveOutput``: one ``diffeqsolve`` of ``x`` (one
            configuration, or the whole batch as one state when ``batched``) from ``t0`` saving at ``ts``.
        - `x0`: the members, shape ``(batch, *event)``.
        - `t0`: start time, a scalar (shared) or shape (batch,) (per member).
        - `ts`: save times, shape (T,) (shared) or (batch, T) (per member).

        **Returns:**

        The `SolveOutput` of the members, batch first (per-member leaves of shape (batch, ...)).
        """

    @property
    def strategy(self) -> "AbstractStrategy":
        """The strategy itself."""
        return self

    def run(self, config, field, x0, t0, t1, ts):
        if config.strategy is not self:
            config = dataclasses.replace(config, strategy=self)
        if config.stop_when is not None and not self.one_state:
            return _join(stop_together(config, field, [x0], t0, t1, ts), x0.shape[0], x0.shape[0])
        return solve_jit(config, field, x0, t0, t1, ts)

    def __str__(self) -> str:
        return self.name


class Single(AbstractStrategy):
    """One configuration (not an ensemble)."""

    name: ClassVar[str] = "single"
    one_state: ClassVar[bool] = True

    def integrate(self, solve, x0, t0, ts):
        return solve(x0, t0, ts, False)


class Batched(AbstractStrategy):
    """The whole ensemble as one state: one shared step for every member."""

    name: ClassVar[str] = "batched"
    one_state: ClassVar[bool] = True

    def integrate(self, solve, x0, t0, ts):
        return solve(x0, t0, ts, True)


def _member_axes(x0, t0, ts):
    """vmap axes of (x, t0, ts): t0 and ts are shared, or per member (one more axis than shared)."""
    return 0, 0 if t0.ndim else None, 0 if ts.ndim == 2 else None


class Vmap(AbstractStrategy):
    """``jax.vmap`` of the whole solve: each member takes its own steps, in lockstep."""

    name: ClassVar[str] = "vmap"
    one_state: ClassVar[bool] = False

    def integrate(self, solve, x0, t0, ts):
        return jax.vmap(lambda x, a, s: solve(x, a, s, False), in_axes=_member_axes(x0, t0, ts))(x0, t0, ts)


class Map(AbstractStrategy):
    """``jax.lax.map`` over the members: each takes its own steps, one after another."""

    name: ClassVar[str] = "map"
    one_state: ClassVar[bool] = False

    def integrate(self, solve, x0, t0, ts):
        _, t_axis, ts_axis = _member_axes(x0, t0, ts)
        per_member = (x0, t0 if t_axis == 0 else None, ts if ts_axis == 0 else None)

        def one(args):
            x, a, s = args
            return solve(x, t0 if a is None else a, ts if s is None else s, False)

        return jax.lax.map(one, per_member)


#: the strategy of one configuration
SINGLE = Single()

#: the strategies by the names ``simulate(ensemble=...)`` accepts (``"auto"`` chooses among them)
STRATEGIES: dict[str, AbstractStrategy] = {s.name: s for s in (Batched(), Vmap(), Map())}


class Chunked(AbstractEnsemble):
    """The members in equal chunks of ``chunk``, each integrated by ``inner`` (module docstring).

    The last chunk is padded with copies of member 0 (`pad_members`), so one compilation serves every
    chunk; the padding is dropped from the output. Chunks of a batched solve take their own shared steps,
    so results differ from one solve of the whole ensemble at the solver tolerance. ``simulate`` wraps
    its strategy in it when [`ensemble_bytes_per_member`][jaxattn.solve.ensemble_bytes_per_member] x batch
    exceeds ``max_memory``.

    **Arguments:**

    - `inner`: the [`AbstractEnsemble`][jaxattn.solve.AbstractEnsemble] that integrates each chunk.
    - `chunk`: members per chunk (int >= 1, static).
    """

    inner: AbstractEnsemble
    chunk: int = eqx.field(static=True)

    @property
    def strategy(self) -> AbstractStrategy:
        return self.inner.strategy

    def run(self, config, field, x0, t0, t1, ts):
        batch = x0.shape[0]
        padded = pad_members(x0, self.chunk)
        chunks = [padded[i:i + self.chunk] for i in range(0, padded.shape[0], self.chunk)]
        if config.stop_when is not None:
            parts = stop_together(dataclasses.replace(config, strategy=self.strategy), field, chunks, t0, t1, ts)
        else:
            parts = [self.inner.run(config, field, c, t0, t1, ts) for c in chunks]
        return _join(parts, self.chunk, batch)


class Sharded(AbstractEnsemble):
    """The member axis on the devices of ``mesh``, integrated by ``inner``.

    The members are padded to a multiple of the device count with copies of member 0
    ([`shard_ensemble`][jaxattn.solve.shard_ensemble]); the padding is dropped from the output.

    **Arguments:**

    - `inner`: the [`AbstractEnsemble`][jaxattn.solve.AbstractEnsemble] that integrates the sharded members.
    - `mesh`: a one-axis ``jax.sharding.Mesh`` with axis ``"batch"`` (static); default None:
        [`ensemble_mesh`][jaxattn.solve.ensemble_mesh]``()``, this process's devices.
    """

    inner: AbstractEnsemble
    mesh: jax.sharding.Mesh | None = eqx.field(static=True, default=None)

    @property
    def strategy(self) -> AbstractStrategy:
        return self.inner.strategy

    def run(self, config, field, x0, t0, t1, ts):
        x0s, batch = shard_ensemble(x0, self.mesh)
        return _take_members(self.inner.run(config, field, x0s, t0, t1, ts), x0s.shape[0], np.arange(batch))


class GlobalSharded(AbstractEnsemble):
    """One ensemble over the devices of **every** process of a ``jax.distributed`` job, integrated by ``inner``.

    Each process passes its own members (its ``x0``, shape (b_k, ...); the sizes may differ); the global
    ensemble is their concatenation in process order. Each part is padded with copies of its first member
    to a common multiple of the local device count (duplicates leave the max-over-members error norm,
    hence every step, unchanged), assembled with `jax.make_array_from_process_local_data` on a
    one-axis mesh over ``jax.devices()`` ordered by process, and integrated as one SPMD program. The
    per-member outputs reach every process (``process_allgather``), padding dropped. With one process this
    is [`Sharded`][jaxattn.solve.Sharded] over the local devices. Its [`run`][jaxattn.solve.AbstractEnsemble.run]
    raises ``ValueError`` when the processes pass members of different shapes.

    **Arguments:**

    - `inner`: the [`AbstractEnsemble`][jaxattn.solve.AbstractEnsemble] that integrates the global ensemble.
    """

    inner: AbstractEnsemble

    @property
    def strategy(self) -> AbstractStrategy:
        return self.inner.strategy

    def run(self, config, field, x0, t0, t1, ts):
        from jax.experimental import multihost_utils

        local = np.asarray(x0)
        processes = jax.process_count()
        sizes = np.asarray(multihost_utils.process_allgather(np.array([local.shape[0]]))).reshape(-1)
        shapes = np.asarray(multihost_utils.process_allgather(np.array(local.shape[1:]))).reshape(processes, -1)
        if not np.all(shapes == np.array(local.shape[1:])):
            raise ValueError(f"every process must pass members of one shape; this one has {local.shape[1:]}, "
                             f"all: {shapes.tolist()}")
        per_process = -(-int(sizes.max()) // jax.local_device_count()) * jax.local_device_count()
        padded = np.asarray(pad_members(jnp.asarray(local), per_process))[:per_process]
        devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
        mesh = jax.sharding.Mesh(np.array(devices), ("batch",))
        spec = jax.sharding.PartitionSpec("batch", *([None] * (local.ndim - 1)))
        size = processes * per_process
        x0_global = jax.make_array_from_process_local_data(jax.sharding.NamedSharding(mesh, spec), padded,
                                                           (size, *local.shape[1:]))
        out = self.inner.run(config, field, x0_global, t0, t1, ts)
        keep = np.concatenate([np.arange(k * per_process, k * per_process + int(sizes[k])) for k in range(processes)])
        return _take_members(out, size, keep, gather=True)


def _take_members(out: SolveOutput, size: int, keep, gather: bool = False) -> SolveOutput:
    """The members ``keep`` of every per-member leaf (leading axis ``size``) of ``out``; ``ts`` as is. With
    ``gather`` the arrays may span several processes: each is gathered to every process first (a replicated
    scalar: this process's copy)."""
    def take(leaf):
        if not eqx.is_array(leaf):
            return leaf
        if gather and isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            if leaf.ndim == 0 or leaf.shape[0] != size:
                return jnp.asarray(leaf.addressable_data(0))
            from jax.experimental import multihost_utils

            leaf = jnp.asarray(multihost_utils.process_allgather(leaf, tiled=True))
        return leaf[keep] if leaf.ndim and leaf.shape[0] == size else leaf

    return dataclasses.replace(jax.tree_util.tree_map(take, dataclasses.replace(out, ts=None)), ts=out.ts)


def _join(parts: list[SolveOutput], chunk: int, batch: int) -> SolveOutput:
    def join(*leaves):  # per-member values: scalars in batched mode, (chunk,) in vmap/map mode
        return jnp.concatenate([jnp.broadcast_to(a, (chunk, *a.shape[1:]) if a.ndim else (chunk,))
                                for a in leaves])[:batch]

    joined = jax.tree_util.tree_map(join, *[dataclasses.replace(p, ts=None) for p in parts])
    return dataclasses.replace(joined, ts=parts[0].ts)  # the save times are shared


def stop_together(config: SolveConfig, field: AbstractField, parts: list[Array], t0: Array, t1: Array,
                  ts: Array) -> list[SolveOutput]:
    """Solves of the ``parts`` of an ensemble (``config.strategy``) that stop where ``config.stop_when``
    first holds for *every* member (the module docstring's meaning, for any strategy).

    Each part is solved with the event (a one-state part stops where its members all satisfy it, a
    member of a per-member part where it does); the latest of those times T is the earliest the whole
    ensemble can stop; what stopped before T is continued to T without the event (saves after T hold the
    state at T). If the condition then holds for every member at T the solve ends there; if it no longer
    does (it is not monotone), every part is solved on from T with the event and the search repeats.
    Without any event every part ends at t1, exactly as an unchunked solve without ``stop_when``.

    **Arguments:**

    - `config`: the solve's static `SolveConfig`, with ``stop_when`` set and ``strategy`` the strategy of
        each part.
    - `field`: the [`AbstractField`][jaxattn.AbstractField] to integrate.
    - `parts`: the parts of the ensemble, each of shape ``(b_k, *event)``.
    - `t0`: start time, a scalar or one per member.
    - `t1`: end time, a scalar.
    - `ts`: save times, shape (T,) shared.

    **Returns:**

    One `SolveOutput` per part, every member ending at the same time with result ``event_occurred`` (or
    ``successful`` at t1 when some member never met the condition; a failure is returned as it came).

    **Raises:**

    - `ValueError`: under ``jax.jit``/``grad``/``vmap`` (``config.traced``), where the host cannot
        control the phases; pass ``ensemble="batched"`` with ``max_memory=None`` there.
    """
    if config.traced:
        raise ValueError(
            "stop_when on an ensemble solved in parts (chunks under max_memory) or with per-member steps "
            f"(ensemble='{config.strategy.name}') needs host-side control between the phases and cannot run "
            "under jax.jit/grad/vmap: pass ensemble='batched' with max_memory=None (one solve), or call "
            "simulate outside jit")
    free = dataclasses.replace(config, stop_when=None)
    check = jax.jit(jax.vmap(config.stop_when))
    outs = [solve_jit(config, field, x, t0, t1, ts) for x in parts]
    while True:
        if any(bool(jnp.any(is_failure(p.result))) for p in outs):
            return outs  # the failure is reported for the whole ensemble
        T = jnp.max(jnp.stack([jnp.max(p.t_last) for p in outs]))
        outs = [_continue(free, field, p, T, ts) if bool(jnp.any(p.t_last < T)) else p for p in outs]
        if bool(T >= t1):  # some member never met the condition: no event, every member at t1
            return [_with_result(p, diffrax.RESULTS.successful) for p in outs]
        if all(bool(jnp.all(check(p.x_last))) for p in outs):
            return [_with_result(p, diffrax.RESULTS.event_occurred) for p in outs]
        outs = [_continue(config, field, p, t1, ts) for p in outs]


def _continue(config: SolveConfig, field: AbstractField, before: SolveOutput, end: Array, ts: Array) -> SolveOutput:
    """``before`` continued from each member's ``t_last`` to ``end`` (saves between them from the continuation)."""
    start = before.t_last
    ts_from = jnp.clip(ts, start[..., None] if start.ndim else start, end)
    return _merge(before, solve_jit(config, field, before.x_last, start, end, ts_from), ts)


def _with_result(out: SolveOutput, item) -> SolveOutput:
    """``out`` with every member's result set to ``item``."""
    result = jax.tree_util.tree_map(lambda value: jnp.full_like(value, item._value), out.result)
    return dataclasses.replace(out, result=result)


def _merge(before: SolveOutput, after: SolveOutput, ts: Array) -> SolveOutput:
    """``before`` up to its ``t_last``, continued by ``after`` (a solve from there) at the later saves."""
    t_last = before.t_last
    later = ts[None, :] > (t_last[:, None] if t_last.ndim else t_last)  # (1 or B, T)
    later = later.reshape(later.shape + (1,) * (before.xs.ndim - 2))
    stats = jax.tree_util.tree_map(jnp.add, before.stats, after.stats)
    return dataclasses.replace(after, ts=before.ts, xs=jnp.where(later, after.xs, before.xs), stats=stats)


# --------------------------------------------------------------------------- devices


def ensemble_mesh(devices: Sequence[jax.Device] | None = None) -> jax.sharding.Mesh:
    """A one-axis mesh named ``"batch"`` for the member axis of an ensemble.

    **Arguments:**

    - `devices`: the devices, in mesh order; default None: this process's devices,
        ``jax.local_devices()``, which are all devices unless ``jax.distributed`` runs several processes
        (a mesh over every process's devices: [`solve_global_ensemble`][jaxattn.solve.solve_global_ensemble]).

    **Returns:**

    A ``jax.sharding.Mesh`` of shape (len(devices),) with axis name ``"batch"``.
    """
    devices = list(jax.local_devices() if devices is None else devices)
    return jax.sharding.Mesh(np.array(devices), ("batch",))


def shard_ensemble(x0: Float[Array, "batch ..."],
                   mesh: jax.sharding.Mesh | None = None) -> tuple[Float[Array, "padded ..."], int]:
    """Place the leading (ensemble) axis of ``x0`` on the devices of ``mesh``.

    When the batch size is not a multiple of the device count, x0 is padded with copies of its first
    member (`pad_members`; the max-over-members error norm of the batched solve is unchanged by
    duplicates).

    **Arguments:**

    - `x0`: the ensemble, shape (batch, ...) with at least 2 axes.
    - `mesh`: a one-axis mesh with axis ``"batch"``; default None: [`ensemble_mesh`][jaxattn.solve.ensemble_mesh]``()``.

    **Returns:**

    ``(x0_sharded, batch)``: the padded ensemble, shape (padded, ...) (placed with a ``NamedSharding``
    when the mesh has more than one device), and the original batch size to slice the results back to.

    **Raises:**

    - `ValueError`: if ``x0`` has fewer than 2 axes (no batch axis).
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
