"""``simulate``: integrate a particle field with diffrax, for one configuration or an ensemble.

``simulate`` is a thin layer over :func:`diffrax.diffeqsolve`: any diffrax solver, step-size
controller, adjoint and ``SaveAt`` pass straight through. What it adds:

* **Defaults** (measured, ecosystem report §3): ``Tsit5`` with
  ``PIDController(rtol=1e-6, atol=1e-6)`` was the cheapest accurate choice in every
  configuration (21-32 steps for T = 10 against 100 for RK4 at h = 0.1). Pass ``rtol`` /
  ``atol`` or a controller for other accuracies.
* **Tokens stay on the sphere.** The exact flow preserves |x_i| (the projection divides by
  |x|^2), but an explicit Runge-Kutta step does not: plain Tsit5 at rtol 1e-6 drifts by
  ~7e-5. On the sphere every solver is wrapped in :class:`RetractingSolver`, which maps
  the end point of each accepted-or-rejected step back to the sphere (x -> x/|x|, a
  retraction) and returns the inner solver's own error estimate unchanged, so error
  control still measures the Runge-Kutta truncation error (the retraction only removes
  the normal component, which is part of that error). Saved states between step end
  points come from the inner solver's dense interpolant and are retracted too. The drift
  then stays at round-off: <= 1e-9 over T = 50 for SA and USA with V = -I, beta = 4 (a
  test). Measured alternative (``benchmarks/sphere_retraction.py``, n = 32): the plain
  solve drifts 2e-6 at rtol 1e-6 and needs rtol ~1e-10 to stay near 1e-10, i.e. 129 vs
  27 steps (SA) and 325 vs 84 steps (USA): the retraction is 3-5x cheaper.
* **Ensembles.** ``x0`` of shape (batch, n, d) (or (batch, n) on the circle) is an
  ensemble. ``ensemble="batched"`` integrates the whole batch as one state with a shared
  step whose error norm is the **max over members** of each member's RMS error, so no
  member is less accurate than it would be alone. ``ensemble="vmap"`` vmaps the whole
  adaptive solve, each member with its own steps (a vmapped while-loop runs until its
  slowest member is done). ``ensemble="map"`` solves the members one after another inside
  one compiled program (``jax.lax.map``), each with its own steps and no padding to the
  slowest member. All three agree with a loop over members (vmap and map to 1e-12, batched
  to the solver tolerance). ``ensemble="auto"`` (default) follows the measurement below:
  "map" on a CPU when n >= ``AUTO_MAP_MIN_TOKENS`` (128), otherwise "batched" (and always
  "batched" on GPU/TPU, where one wide vectorised step is what the hardware wants).

  Measured (``python -m benchmarks --only ensembles``; SA on S^2, beta = 9, T = 10, CPU ms
  per member on one core, batched / vmap / map):

  ====  ========  ===================  ===================
  n     batch     ms per member        fastest
  ====  ========  ===================  ===================
  32    16        0.91 / 1.14 / 1.24   batched
  32    128-512   0.75-0.92 / 0.88-1.1 / 1.06-1.1   batched
  32    2048      2.29 / 2.92 / 2.11   map
  256   16        39 / 32 / 22         map
  256   128       63 / 74 / 43         map
  256   512       72 / 65 / 34         map
  ====  ========  ===================  ===================

  At n = 256 a shared step costs more than the members' own steps (34 vs 26 steps) and a
  wide batch falls out of cache, so map is 1.4-1.9x faster; paper 003's Fig. 3 runs
  (n = 200, beta = 64, T = 500) take 216 steps alone but 468 shared in a batch of 32 (3x).
  At n = 32 the per-step work is too small for that to matter and batching amortises the
  loop overhead. The threshold 128 lies between the measured sizes.
* **Clear failures.** Hitting ``max_steps`` raises :class:`SolverStepLimitError` naming
  the time reached; inside ``jax.jit``/``jax.grad`` (where the host cannot see values) it
  raises through ``equinox.error_if`` instead. Bad inputs raise ``ValueError``/``TypeError``.
* **Stop on an event.** ``stop_when(x) -> bool`` (one configuration) ends the solve when
  it becomes true (for an ensemble in batched mode: when it is true for every member;
  with vmap/map each member stops on its own).
  Saved times after the event hold the state at the event; ``Trajectory.t_final`` is the
  time reached. The condition is checked at the end of each step, so ``t_final`` is the
  end of the first step where it holds (accurate to one step size).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Literal

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Array, ArrayLike, Float

from ._validate import is_concrete
from .fields._base import SPHERE_TOLERANCE, AbstractField

Ensemble = Literal["auto", "batched", "vmap", "map"]

#: ``ensemble="auto"`` uses "map" on a CPU from this many tokens on (see the module docs)
AUTO_MAP_MIN_TOKENS = 128


def resolve_ensemble(ensemble: str, n: int) -> str:
    """The strategy ``ensemble="auto"`` stands for at n tokens on the default backend."""
    if ensemble != "auto":
        return ensemble
    return "map" if jax.default_backend() == "cpu" and n >= AUTO_MAP_MIN_TOKENS else "batched"

DEFAULT_RTOL = 1e-6
DEFAULT_ATOL = 1e-6
DEFAULT_MAX_STEPS = 65536
DEFAULT_NUM_SAVES = 101


DEFAULT_MAX_MEMORY = 2 * 1024**3


def ensemble_bytes_per_member(n: int, d: int, num_saves: int, itemsize: int = 8) -> int:
    """Estimated peak bytes of one ensemble member: the saved states (T n d), ~10
    Runge-Kutta stage buffers (n d) and the attention working set (n * min(n, 1024))."""
    return itemsize * (num_saves * n * d + 10 * n * d + 4 * n * min(n, 1024))


def _simulate_in_chunks(chunk: int, field, x0, t1, **kwargs) -> Trajectory:
    batch = x0.shape[0]
    num_chunks = -(-batch // chunk)
    pad = num_chunks * chunk - batch
    padded = jnp.concatenate([x0, jnp.broadcast_to(x0[:1], (pad, *x0.shape[1:]))]) if pad else x0
    parts = [simulate(field, padded[i * chunk:(i + 1) * chunk], t1, max_memory=None, **kwargs)
             for i in range(num_chunks)]

    def join(leaves):  # per-member values: scalars in batched mode, (chunk,) in vmap mode
        return jnp.concatenate([jnp.broadcast_to(a, (chunk,)) for a in leaves])[:batch]

    first = parts[0]
    return Trajectory(
        ts=first.ts,
        xs=jnp.concatenate([p.xs for p in parts])[:batch],
        t_final=join([p.t_final for p in parts]),
        stats={k: join([p.stats[k] for p in parts]) for k in first.stats},
        field=first.field,
        event_occurred=join([p.event_occurred for p in parts]),
    )


class SolverStepLimitError(RuntimeError):
    """The solver used up ``max_steps`` before reaching ``t1``."""


def retract_to_sphere(x: Array) -> Array:
    """x -> x / |x| along the last axis."""
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


class RetractingSolver(diffrax.AbstractWrappedSolver):
    """Wrap any diffrax solver so each step ends on the sphere (x -> x/|x| per token).

    The wrapped solver's error estimate is passed through unchanged (see the module
    docstring for why this keeps error control honest). First-same-as-last solvers reuse
    f(y1) of the unretracted end point; the mismatch is O(h * Lipschitz * drift), below
    the step's own error.
    """

    solver: diffrax.AbstractSolver

    @property
    def term_structure(self):
        return self.solver.term_structure

    @property
    def interpolation_cls(self):  # pyright: ignore
        return self.solver.interpolation_cls

    @property
    def term_compatible_contr_kwargs(self):
        return self.solver.term_compatible_contr_kwargs

    def order(self, terms):
        return self.solver.order(terms)

    def strong_order(self, terms):
        return self.solver.strong_order(terms)

    def error_order(self, terms):
        return self.solver.error_order(terms)

    def init(self, terms, t0, t1, y0, args):
        return self.solver.init(terms, t0, t1, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        y1, y_error, dense_info, solver_state, result = self.solver.step(
            terms, t0, t1, y0, args, solver_state, made_jump
        )
        return retract_to_sphere(y1), y_error, dense_info, solver_state, result

    def func(self, terms, t0, y0, args):
        return self.solver.func(terms, t0, y0, args)


def ensemble_max_norm(y: Array) -> Array:
    """max over ensemble members (leading axis) of each member's RMS norm."""
    return jnp.max(jax.vmap(optx.rms_norm)(y))


class Trajectory(eqx.Module):
    """Result of :func:`simulate`.

    * ``ts``: (T,) saved times;
    * ``xs``: (T, n, d) states ((T, n) angles on the circle); an ensemble has a leading
      batch axis, (B, T, n, d);
    * ``t_final``: time reached (t1, or the event time with ``stop_when``); shape () or (B,);
    * ``stats``: diffrax's solver statistics (``num_steps``, ``num_accepted_steps``,
      ``num_rejected_steps``; per member in vmap mode);
    * ``field``: the field that was integrated.
    """

    ts: Float[Array, " T"]
    xs: Array
    t_final: Array
    stats: dict
    field: AbstractField
    event_occurred: Array

    @property
    def final(self) -> Array:
        """The last saved state(s): xs[..., -1, :, :]."""
        return self.xs[..., -1, :, :] if self.field.event_ndim == 2 else self.xs[..., -1, :]

    @property
    def is_ensemble(self) -> bool:
        return self.xs.ndim == self.field.event_ndim + 2


def _default_controller(rtol, atol):
    return diffrax.PIDController(rtol=rtol, atol=atol)


def _solve_one(field, x0, t0, t1, ts, solver, controller, adjoint, dt0, max_steps, stop_when,
               progress_meter, batched, saveat):
    """One diffeqsolve: x0 is a single configuration, or an ensemble when ``batched``.

    With ``saveat=None`` the states at ``ts`` are saved (plus the final state, used to hold
    the state after an event); a user's ``diffrax.SaveAt`` passes straight through.
    """
    if batched:
        rhs = jax.vmap(field.velocity, in_axes=(None, 0))
    else:
        rhs = field.velocity
    term = diffrax.ODETerm(lambda t, y, args: rhs(t, y))
    if field.manifold == "sphere":
        solver = RetractingSolver(solver)
    event = None
    if stop_when is not None:
        if batched:
            def cond(t, y, args, **kwargs):
                return jnp.all(jax.vmap(stop_when)(y))
        else:
            def cond(t, y, args, **kwargs):
                return stop_when(y)
        event = diffrax.Event(cond)
    sol = diffrax.diffeqsolve(
        term,
        solver,
        t0,
        t1,
        dt0,
        x0,
        saveat=diffrax.SaveAt(ts=ts, t1=True) if saveat is None else saveat,
        stepsize_controller=controller,
        adjoint=adjoint,
        event=event,
        max_steps=max_steps,
        throw=False,
        progress_meter=progress_meter,
    )
    failed = sol.result == diffrax.RESULTS.max_steps_reached
    other_failure = (sol.result != diffrax.RESULTS.successful) & (
        sol.result != diffrax.RESULTS.event_occurred
    ) & ~failed
    event_occurred = sol.result == diffrax.RESULTS.event_occurred
    stats = {k: sol.stats[k] for k in ("num_steps", "num_accepted_steps", "num_rejected_steps")}
    if saveat is not None:
        return _custom_save_output(field, sol, batched), stats, failed, other_failure, event_occurred
    # SaveAt(ts=ts, t1=True) gives the ts entries then the final state; after an event
    # diffrax writes the final state into the first unreached slot and fills the rest
    # with inf, and after a failure there is no final state. So: the last finite save is
    # the time reached (on failure, a lower bound for it).
    slots = jnp.arange(sol.ts.shape[0])
    last = jnp.max(jnp.where(jnp.isfinite(sol.ts), slots, 0))
    xs, x_last, t_last = sol.ys[:-1], sol.ys[last], sol.ts[last]
    if batched:  # diffrax saves (T, B, ...); put the batch first
        xs = jnp.moveaxis(xs, 0, 1)
    # save times after the event hold the state at the event
    reached = ts <= t_last
    if batched:
        mask = reached.reshape((1, -1) + (1,) * field.event_ndim)
        xs = jnp.where(mask, xs, x_last[:, None])
    else:
        mask = reached.reshape((-1,) + (1,) * field.event_ndim)
        xs = jnp.where(mask, xs, x_last[None])
    if field.manifold == "sphere":
        xs = retract_to_sphere(xs)
    return (ts, xs, t_last), stats, failed, other_failure, event_occurred


def _custom_save_output(field, sol, batched):
    """ts, ys and the time reached for a user's SaveAt (states retracted when saved as is)."""
    ts, ys = sol.ts, sol.ys
    t_last = jnp.max(jnp.where(jnp.isfinite(ts), ts, -jnp.inf))
    if batched:
        ys = jax.tree_util.tree_map(lambda a: jnp.moveaxis(a, 0, 1) if a.ndim > 1 else a, ys)
    if field.manifold == "sphere" and eqx.is_array(ys) and ys.ndim >= 3:  # states saved as is
        ys = jnp.where(jnp.isfinite(ys), retract_to_sphere(ys), ys)
    return ts, ys, t_last


@eqx.filter_jit
def _simulate_jit(field, x0, t0, t1, ts, solver, controller, adjoint, dt0, max_steps, stop_when,
                  progress_meter, ensemble, traced, saveat):
    if ensemble in ("vmap", "map"):
        def one(x):
            return _solve_one(field, x, t0, t1, ts, solver, controller, adjoint, dt0, max_steps,
                              stop_when, progress_meter, False, saveat)

        out = jax.vmap(one)(x0) if ensemble == "vmap" else jax.lax.map(one, x0)
    else:
        out = _solve_one(field, x0, t0, t1, ts, solver, controller, adjoint, dt0, max_steps,
                         stop_when, progress_meter, ensemble == "batched", saveat)
    (ts_out, xs, t_last), stats, failed, other_failure, event_occurred = out
    if saveat is None:  # the requested save times, shared by every member in every mode
        ts_out = ts
    if traced:
        xs = eqx.error_if(
            xs, jnp.any(failed),
            "jaxattn.simulate: the solver reached max_steps before t1. Increase max_steps, "
            "loosen rtol/atol, or shorten t1 (outside jit the error names the time reached).",
        )
        xs = eqx.error_if(xs, jnp.any(other_failure),
                          "jaxattn.simulate: the diffrax solve failed (non-finite values or step size collapse)")
    return ts_out, xs, t_last, stats, failed, other_failure, event_occurred


def check_initial_tokens(field: AbstractField, x0: Array) -> None:
    """Host-side checks of concrete initial tokens: finite, and on the sphere for sphere fields."""
    x0_host = np.asarray(x0)
    if not np.all(np.isfinite(x0_host)):
        raise ValueError("x0 contains NaN or inf; pass finite initial tokens")
    if field.manifold == "sphere":
        drift = float(np.max(np.abs(np.linalg.norm(x0_host, axis=-1) - 1.0)))
        if drift > SPHERE_TOLERANCE:
            raise ValueError(
                f"x0 is off the unit sphere: max | |x_i| - 1 | = {drift:.3g} > {SPHERE_TOLERANCE}. "
                "Normalise it first with jaxattn.initial.project_to_sphere(x0)."
            )


def _as_ensemble_info(field: AbstractField, x0: Array) -> tuple[bool, tuple[int, ...]]:
    k = field.event_ndim
    if x0.ndim == k:
        return False, x0.shape
    if x0.ndim == k + 1:
        if x0.shape[0] < 1:
            raise ValueError("an ensemble needs at least one member (batch >= 1)")
        return True, x0.shape[1:]
    what = "(n,) angles or (batch, n)" if k == 1 else "(n, d) or an ensemble (batch, n, d)"
    raise ValueError(f"x0 must have shape {what}; got shape {x0.shape}")


def _cast_floats(tree, dtype):
    def cast(leaf):
        if eqx.is_array(leaf) and jnp.issubdtype(leaf.dtype, jnp.floating):
            return leaf.astype(dtype)
        return leaf

    return jax.tree_util.tree_map(cast, tree)


def simulate(
    field: AbstractField,
    x0: ArrayLike,
    t1: float,
    *,
    t0: float = 0.0,
    ts: int | ArrayLike | None = None,
    solver: diffrax.AbstractSolver | None = None,
    stepsize_controller: diffrax.AbstractStepSizeController | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    dt0: float | None = None,
    adjoint: diffrax.AbstractAdjoint | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    saveat: diffrax.SaveAt | None = None,
    ensemble: Ensemble = "auto",
    stop_when: Callable[[Array], Array] | None = None,
    progress_bar: bool = False,
    max_memory: int | None = DEFAULT_MAX_MEMORY,
) -> Trajectory:
    """Integrate ``field`` from ``x0`` at ``t0`` to ``t1``.

    Args:
        field: a particle field (``jaxattn.SelfAttention(beta)``, ...).
        x0: one configuration (n, d) ((n,) angles on the circle) or an ensemble with a
            leading batch axis. Sphere tokens must have |x_i| = 1 (to 1e-6): normalise
            with ``jaxattn.initial.project_to_sphere``. Its dtype sets the precision
            (float64 by default; float32 is an explicit opt-in, see ``jaxattn._config``).
        t1: final time (> t0).
        ts: save times: None for 101 evenly spaced times in [t0, t1], an int for that many,
            or an increasing array inside [t0, t1].
        solver: any diffrax solver (default ``diffrax.Tsit5()``).
        stepsize_controller: any diffrax controller (default
            ``PIDController(rtol, atol)``; in batched mode a PID controller's default RMS
            norm is replaced by the max over members of each member's RMS norm).
        rtol, atol: tolerances of the default controller.
        dt0: initial step (None lets diffrax choose; required for ``ConstantStepSize``).
        adjoint: diffrax adjoint for ``jax.grad`` (default recursive checkpointing;
            ``BacksolveAdjoint`` warns: it is unstable for clustering dynamics).
        max_steps: step budget; exceeding it raises :class:`SolverStepLimitError`.
        saveat: a ``diffrax.SaveAt`` passed straight through instead of ``ts`` (then
            ``Trajectory.ts``/``xs`` are diffrax's ``sol.ts``/``sol.ys``, batch axis first,
            with unreached slots inf as diffrax leaves them; states saved as is are retracted
            to the sphere).
        ensemble: "auto" (default: "map" on a CPU for n >= 128, else "batched"), "batched"
            (one state, shared step), "vmap" (own steps, run in lockstep) or "map" (own
            steps, members one after another); see the module docs for the measurement.
        stop_when: optional ``f(x) -> bool`` on one configuration; the solve stops when it
            becomes true (e.g. ``lambda x: jaxattn.analysis.is_clustered(x, 1e-3)``).
        progress_bar: show a tqdm progress bar (adds a host callback per step).
        max_memory: byte budget for an ensemble: when the estimate
            :func:`ensemble_bytes_per_member` x batch exceeds it, the ensemble is solved in
            equal chunks (padded with copies of member 0, so one compilation serves all) and
            the trajectories are concatenated. Chunks have their own shared steps, so results
            differ from one unchunked solve at the solver tolerance. None disables chunking.
    """
    if not isinstance(field, AbstractField):
        raise TypeError(f"field must be a jaxattn field (an AbstractField), got {type(field).__name__}")
    if ensemble not in ("auto", "batched", "vmap", "map"):
        raise ValueError(f"ensemble must be 'auto', 'batched', 'vmap' or 'map', got {ensemble!r}")
    try:
        x0 = jnp.asarray(x0)
    except TypeError as exc:
        raise TypeError(f"x0 must be an array of token positions, got {type(x0).__name__}") from exc
    if not jnp.issubdtype(x0.dtype, jnp.floating):
        if jnp.issubdtype(x0.dtype, jnp.integer):
            x0 = x0.astype(jnp.result_type(float))
        else:
            raise TypeError(f"x0 must be real floating point, got dtype {x0.dtype}")
    is_ensemble, shape = _as_ensemble_info(field, x0)
    field.check_shape(shape)
    ensemble = resolve_ensemble(ensemble, shape[0])
    concrete = is_concrete(field, x0, t0, t1, ts)
    if is_concrete(x0):  # host-side numpy checks (also valid while tracing a user's jit)
        check_initial_tokens(field, x0)
    for name, value in (("t0", t0), ("t1", t1)):
        if is_concrete(value) and not np.isfinite(float(value)):
            raise ValueError(f"{name} must be finite, got {value}")
    if is_concrete(t0, t1) and not float(t1) > float(t0):
        raise ValueError(f"t1 must be greater than t0; got t0 = {t0}, t1 = {t1}")
    if not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
    dtype = x0.dtype
    if saveat is not None:
        if ts is not None:
            raise ValueError("pass either ts or saveat, not both")
        if stop_when is not None:
            raise ValueError("stop_when needs the default saving (ts); it cannot be combined with saveat")
        ts = jnp.zeros(1, dtype=dtype)  # unused placeholder
    elif ts is None or isinstance(ts, (int, np.integer)):
        num = DEFAULT_NUM_SAVES if ts is None else int(ts)
        if num < 2:
            raise ValueError(f"ts as a count must be >= 2, got {num}")
        ts = jnp.linspace(t0, t1, num, dtype=dtype)
    else:
        ts = jnp.asarray(ts, dtype=dtype)
        if ts.ndim != 1 or ts.shape[0] < 1:
            raise ValueError(f"ts must be a 1-d array of save times, got shape {ts.shape}")
        if is_concrete(ts, t0, t1):
            tsn = np.asarray(ts)
            if np.any(np.diff(tsn) < 0) or tsn[0] < float(t0) or tsn[-1] > float(t1):
                raise ValueError(f"ts must be non-decreasing and inside [t0, t1] = [{t0}, {t1}]")
    solver = diffrax.Tsit5() if solver is None else solver
    controller = _default_controller(rtol, atol) if stepsize_controller is None else stepsize_controller
    if is_ensemble and ensemble == "batched" and isinstance(controller, diffrax.PIDController):
        if controller.norm is optx.rms_norm:
            controller = eqx.tree_at(lambda c: c.norm, controller, ensemble_max_norm)
    adjoint = diffrax.RecursiveCheckpointAdjoint() if adjoint is None else adjoint
    if isinstance(adjoint, diffrax.BacksolveAdjoint):
        warnings.warn(
            "BacksolveAdjoint integrates the dynamics backwards in time; clustering dynamics "
            "contract forwards, so the backward solve is exponentially unstable (measured 158x "
            "wrong at beta = 9, T = 10). Use the default RecursiveCheckpointAdjoint.",
            stacklevel=2,
        )
    progress_meter = diffrax.TqdmProgressMeter() if progress_bar else diffrax.NoProgressMeter()
    if is_ensemble and max_memory is not None and saveat is None:
        per_member = ensemble_bytes_per_member(shape[0], 1 if len(shape) == 1 else shape[1], ts.shape[0],
                                               jnp.dtype(dtype).itemsize)
        chunk = max(1, int(max_memory // per_member))
        if chunk < x0.shape[0]:
            return _simulate_in_chunks(
                chunk, field, x0, t1, t0=t0, ts=ts, solver=solver, stepsize_controller=stepsize_controller,
                rtol=rtol, atol=atol, dt0=dt0, adjoint=adjoint, max_steps=max_steps, ensemble=ensemble,
                stop_when=stop_when, progress_bar=progress_bar)
    field = _cast_floats(field, dtype)
    t0a = jnp.asarray(t0, dtype=dtype)
    t1a = jnp.asarray(t1, dtype=dtype)
    mode = ensemble if is_ensemble else "single"
    ts, xs, t_last, stats, failed, other_failure, event_occurred = _simulate_jit(
        field, x0, t0a, t1a, ts, solver, controller, adjoint, dt0, max_steps, stop_when,
        progress_meter, mode, not concrete, saveat,
    )
    if concrete:
        if bool(jnp.any(failed)):
            reached = float(jnp.min(jnp.where(failed, t_last, jnp.inf)))
            raise SolverStepLimitError(
                f"the solver took max_steps = {max_steps} steps and stopped after t = {reached:.6g} "
                "(the last save time it reached) "
                f"before t1 = {float(t1):.6g}. Increase max_steps, loosen rtol/atol, or shorten t1 "
                "(stiff cases: USA at large beta is stiff; use time_rescaled=True or an implicit solver)."
            )
        if bool(jnp.any(other_failure)):
            raise RuntimeError(
                "the diffrax solve failed before t1 (non-finite values or a collapsed step size); "
                "check the field's parameters and the initial condition"
            )
    return Trajectory(ts=ts, xs=xs, t_final=t_last, stats=stats, field=field,
                      event_occurred=event_occurred)
