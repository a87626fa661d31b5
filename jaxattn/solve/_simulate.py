"""``simulate``: integrate a particle field with diffrax, for one configuration or an ensemble.

``simulate`` is a thin layer over `diffrax.diffeqsolve`: any diffrax solver, step-size
controller, adjoint and ``SaveAt`` pass straight through. What it adds:

* **Defaults**: ``Tsit5`` with ``PIDController(rtol=1e-6, atol=1e-6)``, the cheapest accurate
  choice in every measured configuration (measured in ``docs/solving.md``, section "Default solver").
  Pass ``rtol`` / ``atol`` or a controller for other accuracies.
  For (SA)/(USA) on the sphere or the circle without a causal mask, Tsit5 runs inside the cluster
  collapse ([`jaxattn.solvers.CollapsingSolver`][jaxattn.solvers.CollapsingSolver]): long
  metastable solves cost 10-25x less (``benchmarks/longtime.py``).
* **Tokens stay on the sphere**: on the sphere every solver is wrapped in
  [`RetractingSolver`][jaxattn.RetractingSolver] (x -> x/|x| after each step, error estimate
  unchanged); saved states between step end points come from the inner solver's dense
  interpolant and are retracted too (Gram fields: to diag(G) = 1). The drift then stays at round-off: <= 1e-9 over T = 50 for
  SA and USA with V = -I, beta = 4 (a test), at less cost than tightening the tolerance of a plain
  solve (measured in ``docs/solving.md``, section "Tokens stay on the sphere").
* **Ensembles**: ``x0`` with a leading batch axis is an ensemble, integrated by an
  [`AbstractEnsemble`][jaxattn.solve.AbstractEnsemble] of `jaxattn.solve._ensemble` (the strategies
  ``Batched``, ``Vmap``, ``Map`` or their names; "auto" picks by the measurement in
  ``docs/ensembles.md``; wrappers ``Chunked``, ``Sharded``) and chunked past a memory budget.
* **Clear failures**: hitting ``max_steps`` raises [`SolverStepLimitError`][jaxattn.SolverStepLimitError] naming
  the time reached; a state that turns NaN/inf stops the solve at once
  ([`NonFiniteGuard`][jaxattn.solve.NonFiniteGuard]) and raises [`NonFiniteStateError`][jaxattn.NonFiniteStateError] naming the
  time and the likely cause. Bad inputs raise ``ValueError``/``TypeError`` before solving. Inside
  ``jax.jit``/``jax.grad``/``jax.vmap`` (where the host cannot see values) the same checks run on
  the traced values through ``equinox.error_if``: a ``RuntimeError`` (``JaxRuntimeError`` under
  ``jax.jit``, ``EquinoxRuntimeError`` under ``eqx.filter_jit``) whose text is the eager message.
* **Stop on an event**: ``stop_when(x) -> bool`` (one configuration) ends the solve when
  it becomes true; an ensemble stops when it is true for every member, whatever the strategy
  (chunked or not; ``docs/ensembles.md``), and every member reports that time.
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

from .._validate import check_save_times, enforce, is_concrete, positive_rule, time_rules, tolerance_rules
from ..fields import AbstractField, AbstractStochasticField
from ..solvers import default_solver
from ._core import SolveConfig
from ._failure import NonFiniteStateError as NonFiniteStateError
from ._failure import SolverStepLimitError as SolverStepLimitError
from ._failure import raise_failure
from ._observe import observable_structure, observables_saveat, observe_saved, unflatten_observables
from ._ensemble import (
    DEFAULT_MAX_MEMORY,
    AbstractEnsemble,
    AbstractStrategy,
    Batched,
    Chunked,
    GlobalSharded,
    Sharded,
    SINGLE,
    backend_of,
    ensemble_bytes_per_member,
    ensemble_max_norm,
    resolve_ensemble,
)
from ._trajectory import Trajectory

DEFAULT_RTOL = 1e-6
DEFAULT_ATOL = 1e-6
DEFAULT_MAX_STEPS = 65536
DEFAULT_NUM_SAVES = 101


def check_initial_tokens(field: AbstractField, x0: Array) -> None:
    """Host-side checks of concrete initial tokens: finite, and on the field's manifold
    ([`jaxattn.manifolds.AbstractManifold.configuration_checks`][jaxattn.manifolds.AbstractManifold.configuration_checks]: the unit sphere to
    [`SPHERE_TOLERANCE`][jaxattn.fields.SPHERE_TOLERANCE], a Gram matrix).

    An array sharded over several processes (``jax.distributed``) is checked by each process
    on the members it holds.

    **Arguments:**

    - `field`: the [`AbstractField`][jaxattn.AbstractField] whose manifold the tokens must lie on.
    - `x0`: concrete initial tokens, one configuration or an ensemble (leading batch axes).

    **Raises:**

    - `ValueError`: if an entry is NaN/inf or the tokens are off the manifold (the message names the
        largest deviation and the fix, e.g. ``jaxattn.initial.project_to_sphere``).
    """
    if isinstance(x0, jax.Array) and not x0.is_fully_addressable:
        x0_host = np.concatenate([np.asarray(shard.data) for shard in x0.addressable_shards])
    else:
        x0_host = np.asarray(x0)
    enforce(field.manifold.configuration_checks(x0_host), None)


def simulate(
    field: object,  # an AbstractField: checked below, with its own TypeError (tests/test_errors.py)
    x0: ArrayLike,
    t1: Real[ArrayLike, "..."],  # a scalar: checked below, with its own ValueError naming the shape
    *,
    t0: Real[ArrayLike, "..."] = 0.0,
    ts: int | ArrayLike | None = None,
    solver: diffrax.AbstractSolver | None = None,
    stepsize_controller: diffrax.AbstractStepSizeController | None = None,
    rtol: Real[ArrayLike, ""] = DEFAULT_RTOL,  # an array too: one compilation serves every tolerance
    atol: Real[ArrayLike, ""] = DEFAULT_ATOL,
    dt0: Real[ArrayLike, ""] | None = None,
    adjoint: diffrax.AbstractAdjoint | None = None,
    max_steps: int | np.integer = DEFAULT_MAX_STEPS,
    saveat: diffrax.SaveAt | None = None,
    ensemble: object = "auto",  # a name or an AbstractEnsemble: checked below, with its own ValueError
    stop_when: Callable[[Array], Array] | None = None,
    progress_bar: bool = False,
    max_memory: object = DEFAULT_MAX_MEMORY,  # an int or None: checked below, with its own TypeError
) -> Trajectory:
    """Integrate ``field`` from ``x0`` at ``t0`` to ``t1``: dx/dt = field(t, x), x(t0) = x0.

    The particle system of a field, e.g. (SA) on the sphere, dx_i/dt = P_{x_i}(sum_j e^{beta <Q x_i,
    K x_j>} V x_j / Z_i) with Z_i = sum_j e^{beta ⟨Q x_i, K x_j⟩} (Geshkovski, Letrouit, Polyanskiy,
    Rigollet, "A mathematical perspective on Transformers", 2023, eqs. (2.3)-(2.5); eq. (2.6) for
    Q = K = V = I); each field's docstring gives its equation. One ``diffrax.diffeqsolve`` (module
    docstring: defaults, retraction, ensembles, failures).

    **Arguments:**

    - `field`: the particle field, an [`AbstractField`][jaxattn.AbstractField]
        (``jaxattn.SelfAttention(beta)``, ...).
    - `x0`: the initial configuration, of the field's manifold's shape: (n, d) tokens ((n,) angles on
        the circle, (n, n) for a Gram field), or an ensemble with a leading batch axis (batch >= 1).
        Real floating point (integers are converted); float64 by default, float32 an explicit opt-in
        (its dtype sets the precision of the whole solve; float16/bfloat16 are refused). Finite, and
        on the manifold: sphere tokens with | |x_i| - 1 | <= 1e-6 (normalise with
        ``jaxattn.initial.project_to_sphere``).
    - `t1`: the final time, a real scalar, finite and > t0.
    - `t0`: the initial time, a real scalar; default 0. The span t1 - t0 must hold at least 1024
        distinct times of x0's dtype (`jaxattn._validate.time_rules`).
    - `ts`: the save times: None (default) for [`DEFAULT_NUM_SAVES`][jaxattn.solve.DEFAULT_NUM_SAVES] = 101
        evenly spaced times in [t0, t1], an int >= 2 for that many, or a finite, non-decreasing 1-d
        array inside [t0, t1].
    - `solver`: any diffrax solver. Default ([`default_solver`][jaxattn.solvers.default_solver]):
        ``diffrax.Tsit5()``, inside the cluster collapse for (SA)/(USA) on the sphere or the circle
        without a causal mask, unless the ensemble shares one step ("batched"): tokens closer than
        10 max(rtol, atol) merge and move as one particle (exact, since coincident tokens stay
        coincident, and the metastable phase no longer runs at the explicit stability limit;
        ``docs/solving.md``). Pass ``diffrax.Tsit5()`` for the solve without merges; for long
        ensembles ``ensemble="map"`` or ``"vmap"`` gets the collapse. A noisy field
        ([`NoisyField`][jaxattn.NoisyField]) defaults to ``diffrax.Heun()`` with fixed steps ``dt0``.
    - `stepsize_controller`: any diffrax controller; default ``PIDController(rtol, atol)``. In a
        one-state (batched) ensemble a PID controller's default RMS norm is replaced by the max over
        members of each member's RMS norm ([`ensemble_max_norm`][jaxattn.solve.ensemble_max_norm]).
    - `rtol`: relative tolerance of the default controller; default 1e-6; finite, >= 0, not both zero
        with atol (an array too: one compilation serves every tolerance).
    - `atol`: absolute tolerance of the default controller; default 1e-6; same rule.
    - `dt0`: the initial step, finite and > 0; default None (diffrax chooses; required for
        ``ConstantStepSize``).
    - `adjoint`: the diffrax adjoint used by ``jax.grad``; default ``RecursiveCheckpointAdjoint()``
        (``BacksolveAdjoint`` warns: clustering dynamics contract forwards, so the backward solve is
        exponentially unstable; ``docs/gradients.md``).
    - `max_steps`: the step budget, a positive int; default [`DEFAULT_MAX_STEPS`][jaxattn.solve.DEFAULT_MAX_STEPS] = 65536.
    - `saveat`: a ``diffrax.SaveAt`` passed straight through instead of ``ts`` (then
        ``Trajectory.ts``/``xs`` are diffrax's ``sol.ts``/``sol.ys``, batch axis first, with unreached
        slots inf as diffrax leaves them; states saved as is are retracted onto the manifold); default None.
    - `ensemble`: how an ensemble is integrated: ``"auto"`` (default: ``"map"`` on a CPU for n >= 128,
        else ``"batched"``, and ``"batched"`` with ``stop_when``; the backend is x0's platform, or
        ``jax.default_backend()`` for traced/host arrays), ``"batched"`` (one state, shared step),
        ``"vmap"`` (own steps, run in lockstep), ``"map"`` (own steps, members one after another), or any
        [`AbstractEnsemble`][jaxattn.solve.AbstractEnsemble] (``Batched()``, ``Chunked(Map(), 16)``,
        ``Sharded(Batched(), mesh)``, ...); the measurement behind ``"auto"``: ``docs/ensembles.md``.
        Ignored for one configuration.
    - `stop_when`: optional ``f(x) -> bool`` on one configuration; the solve stops at the end of the
        first step where it is true (e.g. ``lambda x: jaxattn.analysis.is_clustered(x, 1e-3)``); an
        ensemble stops where it is true for every member, whatever the strategy (per-member strategies
        and chunks need host control for that: outside ``jax.jit`` only). Not with ``saveat``.
    - `progress_bar`: show a tqdm progress bar (adds a host callback per step); default False.
    - `max_memory`: byte budget of an ensemble, a positive int or None; default
        [`DEFAULT_MAX_MEMORY`][jaxattn.solve.DEFAULT_MAX_MEMORY] = 2 GiB. When the estimate
        [`ensemble_bytes_per_member`][jaxattn.solve.ensemble_bytes_per_member] x batch exceeds it, the
        ensemble is solved in equal chunks (padded with copies of member 0, so one compilation serves
        all) and the trajectories are concatenated. Chunks have their own shared steps, so results
        differ from one unchunked solve at the solver tolerance. None disables chunking.

    **Returns:**

    A [`Trajectory`][jaxattn.Trajectory]: ``ts`` (T,), ``xs`` ``(T, *event)`` or ``(batch, T, *event)``,
    ``t_final`` (the time reached: t1, or the stopping time), ``stats`` (solver step counts),
    ``field`` and ``event_occurred``.

    **Raises:**

    - `TypeError`: ``field`` is not an ``AbstractField``; ``x0`` is not a real floating (or integer)
        array or has fewer than 32 bits; ``t0``/``t1`` is not a real number; ``max_memory`` is not a
        positive int or None.
    - `ValueError`: a bad shape of ``x0``, ``t0``/``t1`` (not scalars) or ``ts``; non-finite or
        off-manifold ``x0``; t1 <= t0 or a span not resolved by x0's dtype; a bad ``ensemble`` name,
        ``max_steps``, ``dt0``, ``rtol``/``atol`` or field parameter (e.g. beta <= 0); ``ts`` together
        with ``saveat``, or ``stop_when`` with ``saveat``; ``stop_when`` with per-member steps or chunks
        under ``jax.jit``.
    - [`SolverStepLimitError`][jaxattn.SolverStepLimitError]: the solver used up ``max_steps`` before t1
        (the message names the time reached and what to do).
    - [`NonFiniteStateError`][jaxattn.NonFiniteStateError]: the state became NaN/inf (the solve stops
        there; the message names the time and the likely causes).
    - `RuntimeError`: any other diffrax failure. Under ``jax.jit``/``grad``/``vmap`` every check on
        traced values raises the same message through ``equinox.error_if`` (a ``RuntimeError``:
        ``JaxRuntimeError`` under ``jax.jit``, ``EquinoxRuntimeError`` under ``eqx.filter_jit``).
    """
    if not isinstance(field, AbstractField):
        raise TypeError(f"field must be a jaxattn field (an AbstractField), got {type(field).__name__}")
    auto_chunk = not isinstance(ensemble, AbstractEnsemble) or isinstance(ensemble, AbstractStrategy)
    x0 = _as_tokens(x0)
    is_ensemble, shape = _as_ensemble_info(field, x0)
    field.check_shape(shape)
    if isinstance(field, AbstractStochasticField) and isinstance(ensemble, str) and ensemble == "auto":
        ensemble = "batched"  # one Brownian motion of the ensemble's shape (_sde_defaults)
    ensemble = resolve_ensemble(ensemble, shape[0], backend_of(x0), stop_when)  # a bad name raises here
    ensemble = ensemble if is_ensemble else SINGLE
    t0, t1 = _as_time(t0, "t0"), _as_time(t1, "t1")
    concrete = is_concrete(field, x0, t0, t1, ts, dt0, rtol, atol)
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
    max_steps = int(max_steps)
    if max_memory is not None and (isinstance(max_memory, bool) or not isinstance(max_memory, (int, np.integer))
                                   or max_memory < 1):
        raise TypeError(f"max_memory must be a positive int number of bytes (e.g. 2 * 1024**3 for 2 GiB) or None, "
                        f"got {max_memory!r}")
    dtype = x0.dtype
    stochastic = isinstance(field, AbstractStochasticField)
    if stochastic:
        solver, stepsize_controller = _sde_defaults(field, solver, stepsize_controller, dt0, ensemble, is_ensemble)
    if solver is None:  # the field's default (jaxattn.solvers.default_solver), after the ensemble strategy
        event_ndim = field.manifold.event_ndim
        solver = default_solver(field, rtol, atol, shared_step=is_ensemble and ensemble.strategy.one_state,
                                forward_mode=isinstance(adjoint, (diffrax.ForwardMode, diffrax.DirectAdjoint)),
                                num_tokens=x0.shape[x0.ndim - event_ndim] if x0.ndim >= event_ndim else None)
    controller = (diffrax.PIDController(rtol=rtol, atol=atol) if stepsize_controller is None
                  else stepsize_controller)
    # every argument rule once, raised here on the host or attached to x0 where traced (equinox.error_if)
    if is_concrete(x0):  # host-side numpy checks (sharded arrays: the members this process holds)
        check_initial_tokens(field, x0)
    else:
        x0 = enforce(field.manifold.configuration_checks(x0), x0, prefix=_WHERE)
    x0 = enforce([*time_rules(t0, t1, dtype), *_controller_rules(controller)], x0, prefix=_WHERE)
    if dt0 is not None:  # on dt0 itself: under jit it runs before diffrax's own check
        dt0 = enforce([positive_rule(dt0, "dt0", " (the solve runs forwards from t0 to t1)")], dt0, prefix=_WHERE)
    t0a = jnp.asarray(t0, dtype=dtype)
    t1a = jnp.asarray(t1, dtype=dtype)
    ts = _save_times(ts, saveat, stop_when, t0a, t1a, dtype)
    if is_ensemble and ensemble.strategy.one_state and isinstance(controller, diffrax.PIDController):
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
        saveat=saveat, strategy=ensemble.strategy, traced=not concrete,
        step_limit_advice=STEP_LIMIT_ADVICE,
        nonfinite_causes=nonfinite_causes(field, dtype) if not concrete else "",
    )
    field = _cast_floats(field, dtype)
    x0 = enforce(field.parameter_checks(), x0, prefix=_WHERE)
    if is_ensemble and auto_chunk and max_memory is not None and saveat is None and not stochastic:
        per_member = ensemble_bytes_per_member(shape[0], math.prod(shape[1:]), ts.shape[0],
                                               jnp.dtype(dtype).itemsize)
        chunk = max(1, int(max_memory // per_member))
        if chunk < x0.shape[0]:
            ensemble = Chunked(ensemble, chunk)
    out = ensemble.run(config, field, x0, t0a, t1a, ts)
    if concrete:
        raise_failure(out.result, label="jaxattn.simulate", t0=float(t0), t1=float(t1), t_reached=out.t_last,
                      num_steps=out.stats["num_steps"], max_steps=max_steps, dtype=dtype,
                      step_limit_advice=STEP_LIMIT_ADVICE, nonfinite_causes=lambda: nonfinite_causes(field, dtype))
    return Trajectory(ts=out.ts, xs=out.xs, t_final=out.t_last, stats=out.stats, field=field,
                      event_occurred=out.result == diffrax.RESULTS.event_occurred)


def _sde_defaults(field, solver, controller, dt0, ensemble, is_ensemble):
    """The solver and controller of a stochastic field (Heun, the Stratonovich default, with fixed steps dt0),
    and its rules: dt0 given, one batched state for an ensemble (one Brownian motion of the ensemble's shape:
    independent members; per-member strategies would share one path), an SDE solver."""
    if dt0 is None:
        raise ValueError("a noisy field (jaxattn.fields.NoisyField) is integrated with fixed steps: pass dt0 "
                         "(e.g. dt0=0.01)")
    if is_ensemble and not (isinstance(ensemble, AbstractStrategy) and ensemble.one_state):
        raise ValueError("a noisy ensemble is integrated as one batched state (its members then get independent "
                         "Brownian motions): pass ensemble='batched' (or leave 'auto')")
    solver = diffrax.Heun() if solver is None else solver
    if not isinstance(solver, (diffrax.AbstractItoSolver, diffrax.AbstractStratonovichSolver)):
        raise ValueError(f"diffrax.{type(solver).__name__} is not an SDE solver: use a Stratonovich solver "
                         "(diffrax.Heun, the default, EulerHeun, Midpoint) or an Itô solver (diffrax.Euler: with the "
                         "retraction, the projected Euler-Maruyama scheme)")
    return solver, diffrax.ConstantStepSize() if controller is None else controller


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


#: the prefix of the messages raised from inside a traced solve (where no traceback points to simulate)
_WHERE = "jaxattn.simulate: "

#: what the max_steps error recommends
STEP_LIMIT_ADVICE = ("Increase max_steps, loosen rtol/atol, or shorten t1. A stiff field (USA at large beta, whose "
                     "clusters contract at rate ~e^beta and cap explicit steps) takes far fewer steps with an implicit "
                     "solver: solver=diffrax.Kvaerno3() (USA at beta = 12, n = 16, T = 3: 797 steps against 99358 "
                     "for Tsit5, 15x less CPU; docs/solving.md); time_rescaled=True only rescales time and takes the "
                     "same steps.")


def _as_time(t, name: str):
    """A real scalar time (Python number or 0-d array; traced values stay traced)."""
    shape = np.shape(t) if not isinstance(t, jax.Array) else t.shape
    if shape != ():
        raise ValueError(f"{name} must be a scalar time, got shape {shape}: pass e.g. float({name}[0])")
    if isinstance(t, (bool, np.bool_)) or not np.issubdtype(np.result_type(t), np.number) or np.iscomplexobj(t):
        raise TypeError(f"{name} must be a real number, got {t!r}")
    return t


def _controller_rules(controller) -> list:
    """The tolerance rules of a PID controller, also one wrapped by another controller (``.controller``)."""
    while controller is not None and not isinstance(controller, diffrax.PIDController):
        controller = getattr(controller, "controller", None)
    return [] if controller is None else tolerance_rules(controller.rtol, controller.atol)


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
    return check_save_times(ts, t0=t0, t1=t1, dtype=dtype, where=_WHERE)


def _cast_floats(tree, dtype):
    def cast(leaf):
        if eqx.is_array(leaf) and jnp.issubdtype(leaf.dtype, jnp.floating):
            return leaf.astype(dtype)
        return leaf

    return jax.tree_util.tree_map(cast, tree)


def nonfinite_causes(field: AbstractField, dtype) -> str:
    """The likely causes of a non-finite state, most specific first (the text of
    [`NonFiniteStateError`][jaxattn.NonFiniteStateError]).

    **Arguments:**

    - `field`: the [`AbstractField`][jaxattn.AbstractField] that was integrated (its
        ``logit_scale()`` bounds the attention logits).
    - `dtype`: the dtype of the solve (float32 or float64).

    **Returns:**

    One sentence (str): logits beyond the dtype's range first where the field's bound shows it, then
    the general causes.
    """
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

    [`simulate`][jaxattn.simulate] integrates ``x0`` as one state (``ensemble=Sharded(Batched(), mesh)``:
    the member axis on the devices of ``mesh``). ``in_solve=True`` evaluates ``observe`` inside the solve
    (diffrax ``SaveAt(ts=ts, fn=...)``, `jaxattn.solve._observe`) on the interpolated, retracted states,
    so no state is saved and memory is O(batch x observables x T); ``in_solve=False`` evaluates it on the
    saved states afterwards. The two give the same numbers to round-off.

    **Arguments:**

    - `field`: the [`AbstractField`][jaxattn.AbstractField] to integrate.
    - `x0`: the ensemble, shape (batch, n, d) (or (batch, n) angles, (batch, n, n) Gram matrices),
        batch >= 1; the rules of ``simulate``'s x0.
    - `t1`: the final time (> t0, which ``simulate_kwargs`` may set; default 0).
    - `ts`: the save times, as ``simulate``'s ``ts`` (None, a count >= 2 or an array inside [t0, t1]).
    - `observe`: ``observe(t, x)``, called at each save time t (a scalar) on the states x (batch, ...)
        there; returns an array or a dict of arrays whose **leading axis is the member axis**.
    - `mesh`: a one-axis ``jax.sharding.Mesh`` (axis ``"batch"``) for the member axis; default None:
        this process's devices ([`ensemble_mesh`][jaxattn.solve.ensemble_mesh]).
    - `in_solve`: evaluate ``observe`` inside the solve (True) or on the saved states (False, default).
    - `simulate_kwargs`: further keyword arguments of ``simulate`` (``rtol``, ``solver``, ``max_steps``,
        ``t0``, ...); ``ensemble`` may only be ``"batched"``; with ``in_solve=True`` neither ``saveat``
        nor ``stop_when``.

    **Returns:**

    A dict of name to NumPy array of shape (batch, T, ...) (one array returned by ``observe`` is named
    ``"value"``; padding members dropped), plus ``"num_steps"``: the solver steps taken.

    **Raises:**

    - `ValueError`: ``ensemble`` other than ``"batched"``, ``saveat``/``stop_when`` with ``in_solve=True``,
        an observable without the member axis, and every error of ``simulate``.
    - `TypeError`: ``field`` is not an ``AbstractField`` (and ``simulate``'s type errors).
    """
    return _observed_solve(field, x0, t1, ts, observe, in_solve, Sharded(Batched(), mesh), simulate_kwargs,
                           "solve_ensemble")


def solve_global_ensemble(
    field: AbstractField,
    x0_local: Array,
    t1: float,
    *,
    ts,
    observe: Callable[[Array, Array], Mapping[str, Array] | Array],
    in_solve: bool = False,
    **simulate_kwargs,
) -> dict[str, np.ndarray]:
    """[`solve_ensemble`][jaxattn.solve.solve_ensemble] of one ensemble sharded over the devices of **every** process
    (``jax.distributed``; ``ensemble=GlobalSharded(Batched())``).

    Every process calls this with its own members ``x0_local`` (shape (b_k, n, d); the sizes may
    differ); the global ensemble is their concatenation in process order, integrated as one batched
    state (one SPMD program over all processes, whose shared step is the same as a one-process solve
    of the whole ensemble). The observables, ``observe(t, x)`` as for [`solve_ensemble`][jaxattn.solve.solve_ensemble], reach
    every process as NumPy arrays of length ``sum_k b_k`` (padding dropped), with ``num_steps``.
    ``in_solve=True`` gathers only the observables; ``in_solve=False`` gathers the saved states first.
    With one process this is [`solve_ensemble`][jaxattn.solve.solve_ensemble] over the local devices.

    **Arguments:**

    - `field`: the [`AbstractField`][jaxattn.AbstractField] to integrate (the same on every process).
    - `x0_local`: this process's members, shape (b_k, n, d) (or (b_k, n), (b_k, n, n)); every process
        passes members of one configuration shape.
    - `t1`: the final time (> t0).
    - `ts`: the save times, as ``simulate``'s ``ts``.
    - `observe`: ``observe(t, x)`` as for [`solve_ensemble`][jaxattn.solve.solve_ensemble] (member axis first).
    - `in_solve`: evaluate ``observe`` inside the solve (True) or on the saved states (False, default).
    - `simulate_kwargs`: further keyword arguments of ``simulate``; ``ensemble`` may only be ``"batched"``.

    **Returns:**

    On every process, a dict of name to NumPy array of shape (sum_k b_k, T, ...) (padding dropped),
    plus ``"num_steps"``.

    **Raises:**

    - `ValueError`: as [`solve_ensemble`][jaxattn.solve.solve_ensemble], and when the processes pass
        members of different shapes.
    - `TypeError`: as [`solve_ensemble`][jaxattn.solve.solve_ensemble].
    """
    return _observed_solve(field, x0_local, t1, ts, observe, in_solve, GlobalSharded(Batched()), simulate_kwargs,
                           "solve_global_ensemble")


def _observed_solve(field, x0, t1, ts, observe, in_solve: bool, ensemble: AbstractEnsemble, kwargs: dict,
                    name: str) -> dict[str, np.ndarray]:
    """The observables of one batched ensemble solve by ``ensemble`` (a placement of ``Batched()``)."""
    if str(kwargs.get("ensemble", "batched")) != "batched":
        raise ValueError(f"{name} integrates the ensemble as one batched state")
    if not isinstance(field, AbstractField):
        raise TypeError(f"field must be a jaxattn field (an AbstractField), got {type(field).__name__}")
    kwargs = dict(kwargs, ensemble=ensemble)
    x0 = _as_tokens(x0)
    if in_solve:
        for key in ("saveat", "stop_when"):
            if kwargs.get(key) is not None:
                raise ValueError(f"{name}(in_solve=True) builds its own SaveAt; {key} cannot be combined")
        ts = _save_times(ts, None, None, kwargs.get("t0", 0.0), t1, x0.dtype)
        structure = observable_structure(observe, x0)
        kwargs["saveat"] = observables_saveat(observe, ts, structure, manifold=field.manifold, batched=True)
        traj = simulate(field, x0, t1, **kwargs)
        out = unflatten_observables(traj.xs, structure)
    else:
        traj = simulate(field, x0, t1, ts=ts, **kwargs)
        out = observe_saved(observe, traj.ts, traj.xs)
    out["num_steps"] = np.asarray(traj.stats["num_steps"])
    return out
