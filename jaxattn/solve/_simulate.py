"""``simulate``: integrate a particle field with diffrax, for one configuration or an ensemble.

``simulate`` is a thin layer over :func:`diffrax.diffeqsolve`: any diffrax solver, step-size
controller, adjoint and ``SaveAt`` pass straight through. What it adds:

* **Defaults**: ``Tsit5`` with ``PIDController(rtol=1e-6, atol=1e-6)``, the cheapest accurate
  choice in every measured configuration (21-32 steps for T = 10 against 100 for RK4 at
  h = 0.1; ``docs/solving.md``). Pass ``rtol`` / ``atol`` or a controller for other accuracies.
* **Tokens stay on the sphere**: on the sphere every solver is wrapped in
  :class:`~jaxattn.solve.RetractingSolver` (x -> x/|x| after each step, error estimate
  unchanged); saved states between step end points come from the inner solver's dense
  interpolant and are retracted too (Gram fields: to diag(G) = 1). The drift then stays at round-off: <= 1e-9 over T = 50 for
  SA and USA with V = -I, beta = 4 (a test); the retraction is 3-5x cheaper than tightening the
  tolerance of a plain solve (``docs/solving.md``).
* **Ensembles**: ``x0`` with a leading batch axis is an ensemble, integrated by one of the
  strategies of :mod:`jaxattn.solve._ensemble` ("batched", "vmap", "map"; "auto" picks by the
  measurement in ``docs/ensembles.md``) and chunked past a memory budget.
* **Clear failures**: hitting ``max_steps`` raises :class:`SolverStepLimitError` naming
  the time reached; a state that turns NaN/inf stops the solve at once
  (:class:`~jaxattn.solve.NonFiniteGuard`) and raises :class:`NonFiniteStateError` naming the
  time and the likely cause. Bad inputs raise ``ValueError``/``TypeError`` before solving. Inside
  ``jax.jit``/``jax.grad``/``jax.vmap`` (where the host cannot see values) the same checks run on
  the traced values through ``equinox.error_if``: a ``RuntimeError`` (``JaxRuntimeError`` under
  ``jax.jit``, ``EquinoxRuntimeError`` under ``eqx.filter_jit``) whose text is the eager message.
* **Stop on an event**: ``stop_when(x) -> bool`` (one configuration) ends the solve when
  it becomes true (for an ensemble in batched mode: when it is true for every member, also when
  the ensemble is chunked under ``max_memory``; with vmap/map each member stops on its own).
  Saved times after the event hold the state at the event; ``Trajectory.t_final`` is the
  time reached. The condition is checked at the end of each step, so ``t_final`` is the
  end of the first step where it holds (accurate to one step size).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Array, ArrayLike, Real

from .._validate import enforce, is_concrete
from ..fields import AbstractField
from ._core import SolveConfig, SolveOutput
from ._observe import observable_structure, observables_saveat, unflatten_observables
from ._ensemble import (
    DEFAULT_MAX_MEMORY,
    Ensemble,
    backend_of,
    ensemble_bytes_per_member,
    ensemble_max_norm,
    resolve_ensemble,
    shard_ensemble,
    solve_chunked,
    solve_jit,
)
from ._trajectory import Trajectory

DEFAULT_RTOL = 1e-6
DEFAULT_ATOL = 1e-6
DEFAULT_MAX_STEPS = 65536
DEFAULT_NUM_SAVES = 101


class SolverStepLimitError(RuntimeError):
    """The solver used up ``max_steps`` before reaching ``t1``."""


class NonFiniteStateError(FloatingPointError):
    """The state became NaN/inf during the solve; ``t`` is when and ``num_steps`` the steps taken
    (the solve stops there at once, see :class:`~jaxattn.solve.NonFiniteGuard`)."""

    def __init__(self, message: str, t: float, num_steps: int):
        super().__init__(message)
        self.t = t
        self.num_steps = num_steps


def check_initial_tokens(field: AbstractField, x0: Array) -> None:
    """Host-side checks of concrete initial tokens: finite, and on the field's manifold
    (:meth:`jaxattn.manifolds.AbstractManifold.configuration_checks`: the unit sphere, a Gram matrix).

    An array sharded over several processes (``jax.distributed``) is checked by each process
    on the members it holds."""
    if isinstance(x0, jax.Array) and not x0.is_fully_addressable:
        x0_host = np.concatenate([np.asarray(shard.data) for shard in x0.addressable_shards])
    else:
        x0_host = np.asarray(x0)
    enforce(field.manifold.configuration_checks(x0_host), None)


def simulate(
    field: object,  # an AbstractField: checked below, with its own TypeError (tests/test_errors.py)
    x0: ArrayLike,
    t1: Real[ArrayLike, ""],
    *,
    t0: Real[ArrayLike, ""] = 0.0,
    ts: int | ArrayLike | None = None,
    solver: diffrax.AbstractSolver | None = None,
    stepsize_controller: diffrax.AbstractStepSizeController | None = None,
    rtol: Real[ArrayLike, ""] = DEFAULT_RTOL,  # an array too: one compilation serves every tolerance
    atol: Real[ArrayLike, ""] = DEFAULT_ATOL,
    dt0: Real[ArrayLike, ""] | None = None,
    adjoint: diffrax.AbstractAdjoint | None = None,
    max_steps: int | np.integer = DEFAULT_MAX_STEPS,
    saveat: diffrax.SaveAt | None = None,
    ensemble: Ensemble | str = "auto",  # checked below, with its own ValueError naming the choices
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
        rtol: relative tolerance of the default controller.
        atol: absolute tolerance of the default controller.
        dt0: initial step (None lets diffrax choose; required for ``ConstantStepSize``).
        adjoint: diffrax adjoint for ``jax.grad`` (default recursive checkpointing;
            ``BacksolveAdjoint`` warns: it is unstable for clustering dynamics).
        max_steps: step budget; exceeding it raises :class:`SolverStepLimitError`.
        saveat: a ``diffrax.SaveAt`` passed straight through instead of ``ts`` (then
            ``Trajectory.ts``/``xs`` are diffrax's ``sol.ts``/``sol.ys``, batch axis first,
            with unreached slots inf as diffrax leaves them; states saved as is are retracted
            to the sphere).
        ensemble: "auto" (default: "map" on a CPU for n >= 128, else "batched"; the backend is
            x0's platform, or ``jax.default_backend()`` for traced/host arrays), "batched"
            (one state, shared step), "vmap" (own steps, run in lockstep) or "map" (own
            steps, members one after another); see ``docs/ensembles.md`` for the measurement.
        stop_when: optional ``f(x) -> bool`` on one configuration; the solve stops when it
            becomes true (e.g. ``lambda x: jaxattn.analysis.is_clustered(x, 1e-3)``).
        progress_bar: show a tqdm progress bar (adds a host callback per step).
        max_memory: byte budget for an ensemble: when the estimate
            :func:`~jaxattn.solve.ensemble_bytes_per_member` x batch exceeds it, the ensemble is
            solved in equal chunks (padded with copies of member 0, so one compilation serves all)
            and the trajectories are concatenated. Chunks have their own shared steps, so results
            differ from one unchunked solve at the solver tolerance. None disables chunking.
    """
    if not isinstance(field, AbstractField):
        raise TypeError(f"field must be a jaxattn field (an AbstractField), got {type(field).__name__}")
    if ensemble not in ("auto", "batched", "vmap", "map"):
        raise ValueError(f"ensemble must be 'auto', 'batched', 'vmap' or 'map', got {ensemble!r}")
    x0 = _as_tokens(x0)
    is_ensemble, shape = _as_ensemble_info(field, x0)
    field.check_shape(shape)
    ensemble = resolve_ensemble(ensemble, shape[0], backend_of(x0))
    concrete = is_concrete(field, x0, t0, t1, ts, dt0)
    if is_concrete(x0):  # host-side numpy checks (also valid while tracing a user's jit)
        check_initial_tokens(field, x0)
    _check_times(t0, t1)
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
    max_steps = int(max_steps)
    _check_dt0(dt0)
    dtype = x0.dtype
    ts = _save_times(ts, saveat, stop_when, t0, t1, dtype)
    solver = diffrax.Tsit5() if solver is None else solver
    controller = (diffrax.PIDController(rtol=rtol, atol=atol) if stepsize_controller is None
                  else stepsize_controller)
    if isinstance(controller, diffrax.PIDController):
        _check_tolerances(controller.rtol, controller.atol)
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
    config = SolveConfig(
        solver=solver, controller=controller, adjoint=adjoint, dt0=dt0, max_steps=max_steps,
        stop_when=stop_when,
        progress_meter=diffrax.TqdmProgressMeter() if progress_bar else diffrax.NoProgressMeter(),
        saveat=saveat, mode=ensemble if is_ensemble else "single", traced=not concrete,
    )
    field = _cast_floats(field, dtype)
    x0 = enforce(field.parameter_checks(), x0, prefix="jaxattn.simulate: ")  # host, or traced: eqx.error_if
    t0a = jnp.asarray(t0, dtype=dtype)
    t1a = jnp.asarray(t1, dtype=dtype)
    if not concrete:  # the same checks on traced values, inside the user's jit/grad/vmap
        x0, t0a, t1a, ts, dt0 = _traced_checks(field, x0, t0a, t1a, ts, t0, t1, dt0, saveat is None)
        if dt0 is not None:
            config = eqx.tree_at(lambda c: c.dt0, config, dt0)
    chunk = x0.shape[0]
    if is_ensemble and max_memory is not None and saveat is None:
        per_member = ensemble_bytes_per_member(shape[0], math.prod(shape[1:]), ts.shape[0],
                                               jnp.dtype(dtype).itemsize)
        chunk = max(1, int(max_memory // per_member))
    if is_ensemble and chunk < x0.shape[0]:
        out = solve_chunked(chunk, config, field, x0, t0a, t1a, ts)
    else:
        out = solve_jit(config, field, x0, t0a, t1a, ts)
    if concrete:
        _raise_failures(out, max_steps, t0, t1, field, dtype)
    return Trajectory(ts=out.ts, xs=out.xs, t_final=out.t_last, stats=out.stats, field=field,
                      event_occurred=out.event_occurred)


def _as_tokens(x0) -> Array:
    try:
        x0 = jnp.asarray(x0)
    except TypeError as exc:
        raise TypeError(f"x0 must be an array of token positions, got {type(x0).__name__}") from exc
    if not jnp.issubdtype(x0.dtype, jnp.floating):
        if jnp.issubdtype(x0.dtype, jnp.integer):
            return x0.astype(jnp.result_type(float))
        raise TypeError(f"x0 must be real floating point, got dtype {x0.dtype}")
    if jnp.finfo(x0.dtype).bits < 32:
        raise TypeError(
            f"x0 has dtype {x0.dtype}, which jaxattn does not integrate: its {jnp.finfo(x0.dtype).eps:.2g} "
            "resolution cannot hold tokens on the sphere to 1e-6 nor meet the default tolerances. "
            "Pass float64 (the default) or float32: x0.astype(jnp.float32)."
        )
    return x0


def _check_dt0(dt0) -> None:
    if dt0 is not None and is_concrete(dt0):
        value = float(dt0)
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"dt0 must be finite and > 0 (the solve runs forwards from t0 to t1), got {dt0!r}")


def _check_tolerances(rtol, atol) -> None:
    """Finite, >= 0 and not both zero (a pure relative or absolute tolerance is fine)."""
    if not is_concrete(rtol, atol):
        return
    r, a = np.asarray(rtol, dtype=float), np.asarray(atol, dtype=float)
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(a)) and np.all(r >= 0) and np.all(a >= 0)
            and np.all((r > 0) | (a > 0))):
        raise ValueError(
            f"rtol and atol must be finite, >= 0 and not both zero, got rtol = {rtol!r}, atol = {atol!r} "
            f"(defaults rtol = {DEFAULT_RTOL}, atol = {DEFAULT_ATOL})"
        )


#: the eager checks' messages, reused by their traced twins (``equinox.error_if``)
_MSG_T_FINITE = "t0 and t1 must be finite"
_MSG_T_ORDER = "t1 must be greater than t0"


def _traced_checks(field, x0, t0a, t1a, ts, t0, t1, dt0, check_ts: bool):
    """The eager argument checks as ``equinox.error_if`` on traced values (attached to x0, so they
    run before the solve inside the user's jit/grad/vmap; the message reaches the user as the text
    of the runtime error)."""
    def fail(pred, message):
        nonlocal x0
        x0 = eqx.error_if(x0, pred, f"jaxattn.simulate: {message}")

    if not is_concrete(x0):
        x0 = enforce(field.manifold.configuration_checks(x0), x0, prefix="jaxattn.simulate: ")
    if not is_concrete(t0, t1):
        fail(~(jnp.isfinite(t0a) & jnp.isfinite(t1a)), f"t1 must be finite ({_MSG_T_FINITE})")
        fail(~(t1a > t0a), f"{_MSG_T_ORDER}")
    if check_ts and not is_concrete(ts, t0, t1):
        fail(~jnp.all(jnp.isfinite(ts)), "ts must be finite (NaN or inf save times)")
        fail(jnp.any(jnp.diff(ts) < 0) | (ts[0] < t0a) | (ts[-1] > t1a),
             "ts must be non-decreasing and inside [t0, t1]")
    if dt0 is not None and not is_concrete(dt0):  # on dt0 itself: it runs before diffrax's own check
        dt0 = eqx.error_if(dt0, ~(jnp.isfinite(dt0) & (dt0 > 0)),
                           "jaxattn.simulate: dt0 must be finite and > 0 (the solve runs forwards from t0 to t1)")
    return x0, t0a, t1a, ts, dt0


def _as_ensemble_info(field: AbstractField, x0: Array) -> tuple[bool, tuple[int, ...]]:
    """(is x0 an ensemble, the shape of one configuration)."""
    k = field.event_ndim
    if x0.ndim == k:
        return False, x0.shape
    if x0.ndim == k + 1:
        if x0.shape[0] < 1:
            raise ValueError("an ensemble needs at least one member (batch >= 1)")
        return True, x0.shape[1:]
    what = "(n,) angles or (batch, n)" if k == 1 else "(n, d) or an ensemble (batch, n, d)"
    raise ValueError(f"x0 must have shape {what}; got shape {x0.shape}")


def _check_times(t0, t1) -> None:
    for name, value in (("t0", t0), ("t1", t1)):
        if is_concrete(value) and not np.isfinite(float(value)):
            raise ValueError(f"{name} must be finite, got {value}")
    if is_concrete(t0, t1) and not float(t1) > float(t0):
        raise ValueError(f"{_MSG_T_ORDER}; got t0 = {t0}, t1 = {t1}")


def _save_times(ts, saveat, stop_when, t0, t1, dtype) -> Array:
    """The save times as an array (a one-entry placeholder when a user's ``saveat`` is used)."""
    if saveat is not None:
        if ts is not None:
            raise ValueError("pass either ts or saveat, not both")
        if stop_when is not None:
            raise ValueError("stop_when needs the default saving (ts); it cannot be combined with saveat")
        return jnp.zeros(1, dtype=dtype)  # unused placeholder
    if ts is None or isinstance(ts, (int, np.integer)):
        num = DEFAULT_NUM_SAVES if ts is None else int(ts)
        if num < 2:
            raise ValueError(f"ts as a count must be >= 2, got {num}")
        return jnp.linspace(t0, t1, num, dtype=dtype)
    ts = jnp.asarray(ts, dtype=dtype)
    if ts.ndim != 1 or ts.shape[0] < 1:
        raise ValueError(f"ts must be a 1-d array of save times, got shape {ts.shape}")
    if is_concrete(ts, t0, t1):
        tsn = np.asarray(ts)
        if not np.all(np.isfinite(tsn)):
            raise ValueError(f"ts must be finite, got {int(np.sum(~np.isfinite(tsn)))} NaN or inf save times")
        if np.any(np.diff(tsn) < 0) or tsn[0] < float(t0) or tsn[-1] > float(t1):
            raise ValueError(f"ts must be non-decreasing and inside [t0, t1] = [{t0}, {t1}]")
    return ts


def _cast_floats(tree, dtype):
    def cast(leaf):
        if eqx.is_array(leaf) and jnp.issubdtype(leaf.dtype, jnp.floating):
            return leaf.astype(dtype)
        return leaf

    return jax.tree_util.tree_map(cast, tree)


def _raise_failures(out: SolveOutput, max_steps: int, t0, t1, field: AbstractField, dtype) -> None:
    """Host-side errors for a solve that did not reach t1."""
    span = float(t1) - float(t0)
    if bool(jnp.any(out.nonfinite)):
        t = float(jnp.min(jnp.where(out.nonfinite, out.t_last, jnp.inf)))
        t = float(t0) + round((t - float(t0)) / span, 9) * span  # the guard's null step is <= 1e-12 span
        steps = int(jnp.max(out.stats["num_steps"]))
        raise NonFiniteStateError(
            f"jaxattn.simulate: the state became non-finite at t = {t:.6g} (after {steps} solver steps; "
            f"the solve stopped there). {nonfinite_causes(field, dtype)}", t, steps)
    if bool(jnp.any(out.failed)):
        reached = float(jnp.min(jnp.where(out.failed, out.t_last, jnp.inf)))
        raise SolverStepLimitError(
            f"the solver took max_steps = {max_steps} steps and stopped after t = {reached:.6g} "
            "(the last save time it reached) "
            f"before t1 = {float(t1):.6g}. Increase max_steps, loosen rtol/atol, or shorten t1 "
            "(stiff cases: USA at large beta is stiff; use time_rescaled=True or an implicit solver)."
        )
    if bool(jnp.any(out.other_failure)):
        raise RuntimeError(
            "the diffrax solve failed before t1 (neither max_steps nor a non-finite state: e.g. an "
            "implicit solver's nonlinear solve diverged); check the solver, the field's parameters "
            "and the initial condition"
        )


def nonfinite_causes(field: AbstractField, dtype) -> str:
    """The likely causes of a non-finite state, most specific first."""
    big = float(jnp.finfo(dtype).max)
    name = jnp.dtype(dtype).name
    causes = []
    scale = field.logit_scale()
    if scale is not None:
        if not scale < big / 4:
            causes.append(
                f"the attention logits beta <Q x_i, K x_j> reach {scale:.3g}, beyond the {name} range "
                f"({big:.3g}): they overflow. Lower beta or the scale of Q, K"
                + ("" if jnp.finfo(dtype).bits >= 64 else ", or integrate in float64"))
    causes.append(f"likely causes: overflowing attention logits (beta |Q x| |K y| beyond {big:.3g}, the "
                  f"{name} maximum), a beta too large for {name}, or NaN/inf parameters of the field")
    return "; ".join(causes) + "."


def solve_ensemble(
    field: AbstractField,
    x0: Array,
    t1: float,
    *,
    ts,
    observe: Callable[[Array, Array], Mapping[str, Array] | Array],
    mesh: jax.sharding.Mesh | None = None,
    in_solve: bool = False,
    **simulate_kwargs,
) -> dict[str, np.ndarray]:
    """Batched, device-sharded ensemble solve reduced to observables (as NumPy arrays).

    ``x0`` is (batch, n, d) (or (batch, n) angles); it is sharded with
    :func:`~jaxattn.solve.shard_ensemble` and integrated by :func:`simulate` as one state.
    ``observe(ts, xs)`` receives the saved times (T,) and the states (batch, T, ...) and
    returns an array or a dict of arrays whose **leading axis is the member axis**
    (padding members are sliced off afterwards). Extra keyword arguments go to
    ``simulate`` (``rtol``, ``solver``, ``max_steps``, ...).

    ``in_solve=True`` evaluates the observables inside the solve instead (diffrax
    ``SaveAt(ts=ts, fn=...)``, :mod:`jaxattn.solve._observe`): ``observe(t, x)`` is called at
    each save time t (a scalar) on the states x (batch, ...) there and returns member-first
    arrays, stacked to (batch, T, ...); no state is saved, so memory is O(batch x observables
    x T). An observable that is pointwise in time (the same function of each saved state, e.g.
    ``clustered_pair_fraction(xs, delta)``) gives the same numbers either way (to round-off).
    """
    if "ensemble" in simulate_kwargs and simulate_kwargs["ensemble"] != "batched":
        raise ValueError("solve_ensemble integrates the ensemble as one batched state")
    x0s, batch = shard_ensemble(x0, mesh)
    if in_solve:
        return _solve_ensemble_in_solve(field, x0s, batch, t1, ts, observe, simulate_kwargs)
    traj = simulate(field, x0s, t1, ts=ts, **simulate_kwargs)
    obs = observe(traj.ts, traj.xs)
    single = not isinstance(obs, Mapping)
    obs = {"value": obs} if single else dict(obs)
    out = {}
    for key, value in obs.items():
        value = np.asarray(value)
        if value.ndim == 0 or value.shape[0] != x0s.shape[0]:
            raise ValueError(
                f"observe must return arrays with the member axis first (length {x0s.shape[0]}); "
                f"{key!r} has shape {value.shape}"
            )
        out[key] = value[:batch]
    out["num_steps"] = np.asarray(traj.stats["num_steps"])
    return out


# ------------------------------------------------------------ observables inside the solve (issue 12)


def _solve_ensemble_in_solve(field, x0s, batch, t1, ts, observe, simulate_kwargs) -> dict[str, np.ndarray]:
    """:func:`solve_ensemble` with ``in_solve=True``: one batched solve saving
    ``observe(t, x)`` at ``ts`` through :func:`~jaxattn.solve._observe.observables_saveat`."""
    if not isinstance(field, AbstractField):
        raise TypeError(f"field must be a jaxattn field (an AbstractField), got {type(field).__name__}")
    for key in ("saveat", "stop_when"):
        if simulate_kwargs.get(key) is not None:
            raise ValueError(f"solve_ensemble(in_solve=True) builds its own SaveAt; {key} cannot be combined")
    x0s = _as_tokens(x0s)
    t0 = simulate_kwargs.get("t0", 0.0)
    ts = _save_times(ts, None, None, t0, t1, x0s.dtype)
    structure = observable_structure(observe, x0s)
    saveat = observables_saveat(observe, ts, structure, manifold=field.manifold, batched=True)
    kwargs = dict(simulate_kwargs, ensemble="batched", saveat=saveat)
    traj = simulate(field, x0s, t1, **kwargs)
    out = {key: value[:batch] for key, value in unflatten_observables(traj.xs, structure).items()}
    out["num_steps"] = np.asarray(traj.stats["num_steps"])
    return out
