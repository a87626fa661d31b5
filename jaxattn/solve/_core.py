"""One ``diffrax.diffeqsolve`` of a field: the step every ensemble strategy runs.

The static configuration of a solve (solver, controller, adjoint, saving, event, ...) travels as
one `SolveConfig`; a solve returns one `SolveOutput`.
"""

from __future__ import annotations

from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PyTree

from ..fields import AbstractField, AbstractStochasticField
from ._guard import NonFiniteGuard
from ._trajectory import SolverStats


class SolveConfig(eqx.Module):
    """Everything about a solve except the field and the data (x0, t0, t1, ts).

    Non-array leaves are static under ``eqx.filter_jit``, so one compilation serves every
    field parameter and initial condition of the same shapes.

    **Arguments:**

    - `solver`: the diffrax solver (wrapped by the solve in `NonFiniteGuard`).
    - `controller`: the diffrax step-size controller.
    - `adjoint`: the diffrax adjoint.
    - `dt0`: the initial step, or None (diffrax chooses); traced under a user's jit.
    - `max_steps`: the step budget, a positive int.
    - `stop_when`: ``f(x) -> bool`` on one configuration, or None.
    - `progress_meter`: the diffrax progress meter.
    - `saveat`: a user's ``diffrax.SaveAt``, or None (save at ``ts``).
    - `strategy`: the `AbstractStrategy` integrating the members (``solve/_ensemble.py``).
    - `traced`: whether the call runs under a user's jit/grad (failures then raise through
        ``equinox.error_if``).
    - `step_limit_advice`: the advice of a ``max_steps`` failure; default ``""``.
    - `nonfinite_causes`: the likely causes of a non-finite state; default ``""``.
    """

    solver: diffrax.AbstractSolver
    controller: diffrax.AbstractStepSizeController
    adjoint: diffrax.AbstractAdjoint
    dt0: float | Array | None  # traced under a user's jit
    max_steps: int
    stop_when: Callable[[Array], Array] | None
    progress_meter: diffrax.AbstractProgressMeter
    saveat: diffrax.SaveAt | None
    strategy: eqx.Module  # the AbstractStrategy integrating the members (solve/_ensemble.py)
    traced: bool  # called under a user's jit/grad: failures raise through eqx.error_if
    step_limit_advice: str = ""  # the messages of those failures (solve/_failure.py)
    nonfinite_causes: str = ""


class SolveOutput(eqx.Module):
    """What one solve returns (per member where the members took their own steps).

    **Attributes:**

    - `ts`: the save times (T,) (with a user's ``SaveAt``: diffrax's ``sol.ts``).
    - `xs`: the saved states (batch first), or what a user's ``SaveAt(fn=...)`` saved.
    - `t_last`: the time reached, shape () or (batch,).
    - `x_last`: the state at ``t_last`` (None with a user's ``SaveAt``).
    - `stats`: the solver's step counts (`SolverStats`).
    - `result`: diffrax's ``RESULTS`` (failures: ``solve/_failure.py``; after a non-finite state,
        `NonFiniteGuard`, ``t_last`` is when).
    """

    ts: Float[Array, " T"] | None  # None with a user's SaveAt
    xs: PyTree[Array]
    t_last: Float[Array, "*batch"]
    x_last: Array | None  # the state at t_last (None with a user's SaveAt)
    stats: SolverStats
    result: diffrax.RESULTS  # diffrax's outcome, per member where the members took their own steps
    # (failures: solve/_failure.py; after a non-finite state, NonFiniteGuard, t_last is when)

    @property
    def event_occurred(self) -> Bool[Array, "*batch"]:
        """Whether ``stop_when`` ended the solve, shape () or (batch,)."""
        return self.result == diffrax.RESULTS.event_occurred


def solve_one(config: SolveConfig, field: AbstractField, x0: Array, t0: Array, t1: Array, ts: Array,
              batched: bool) -> SolveOutput:
    """One ``diffrax.diffeqsolve`` of ``field`` (``throw=False``: the result carries the failure).

    With ``config.saveat=None`` the states at ``ts`` are saved (plus the final state, used to hold
    the state after an event) and retracted onto a constrained manifold; a user's ``diffrax.SaveAt``
    passes straight through.

    **Arguments:**

    - `config`: the static `SolveConfig`.
    - `field`: the [`AbstractField`][jaxattn.AbstractField] to integrate.
    - `x0`: one configuration, or an ensemble (batch first) when ``batched``.
    - `t0`: start time, a scalar.
    - `t1`: end time, a scalar.
    - `ts`: save times (T,).
    - `batched`: integrate the whole ensemble as one state (the vector field vmapped over members).

    **Returns:**

    The `SolveOutput`.
    """
    term = _terms(config, field, x0, t0, t1, batched)
    manifold = field.manifold
    fixed_steps = isinstance(config.controller, (diffrax.ConstantStepSize, diffrax.StepTo))
    # one wrapper: the retraction of a constrained manifold and the non-finite guard
    solver = NonFiniteGuard(config.solver, jnp.abs(t1 - t0), adaptive=not fixed_steps,
                            retract=manifold.retract if manifold.constrained else None)
    event = None
    if config.stop_when is not None:
        stop_when = config.stop_when
        if batched:
            def cond(t, y, args, **kwargs):
                return jnp.all(jax.vmap(stop_when)(y))
        else:
            def cond(t, y, args, **kwargs):
                return stop_when(y)
        event = diffrax.Event(cond)
    saveat = config.saveat
    sol = diffrax.diffeqsolve(
        term,
        solver,
        t0,
        t1,
        config.dt0,
        x0,
        saveat=diffrax.SaveAt(ts=ts, t1=True) if saveat is None else saveat,
        stepsize_controller=config.controller,
        adjoint=config.adjoint,
        event=event,
        max_steps=config.max_steps,
        throw=False,
        progress_meter=config.progress_meter,
    )
    stats = SolverStats(num_steps=sol.stats["num_steps"], num_accepted_steps=sol.stats["num_accepted_steps"],
                        num_rejected_steps=sol.stats["num_rejected_steps"])
    if saveat is not None:
        ts_out, xs, t_last = _custom_save_output(field, sol, batched)
        x_last = None
    else:
        xs, x_last, t_last = _saved_states(field, sol, ts, batched)
        ts_out = ts
    return SolveOutput(ts=ts_out, xs=xs, t_last=t_last, x_last=x_last, stats=stats, result=sol.result)


def _terms(config: SolveConfig, field: AbstractField, x0: Array, t0: Array, t1: Array, batched: bool):
    """The diffrax terms of ``field``: its velocity, and for a stochastic field (docs/normalisation.md, "Noise")
    the SDE dX = velocity dt + diffusion o dW (Stratonovich) driven by the field's Brownian motion of x0's shape
    (one path of the whole batch when ``batched``: independent members). An Itô solver followed by the
    retraction converges to the same process (the projected Euler-Maruyama scheme: ``fields/noisy.py``)."""
    rhs = jax.vmap(field.velocity, in_axes=(None, 0)) if batched else field.velocity
    if not isinstance(field, AbstractStochasticField):
        return diffrax.ODETerm(lambda t, y, args: rhs(t, y))
    drift = diffrax.ODETerm(lambda t, y, args: rhs(t, y))
    brownian = field.brownian_motion(t0, t1, x0.shape, x0.dtype, config.dt0)
    return diffrax.MultiTerm(drift, diffrax.ControlTerm(lambda t, y, args: field.diffusion(t, y), brownian))


def _saved_states(field, sol, ts, batched):
    """The states at ``ts`` (batch first), the state and the time reached, from ``SaveAt(ts=ts, t1=True)``.

    That gives the ts entries then the final state; after an event diffrax writes the final state
    into the first unreached slot and fills the rest with inf, and after a failure there is no
    final state. So: the last finite save is the time reached (on failure, a lower bound for it).
    """
    slots = jnp.arange(sol.ts.shape[0])
    last = jnp.max(jnp.where(jnp.isfinite(sol.ts), slots, 0))
    xs, x_last, t_last = sol.ys[:-1], sol.ys[last], sol.ts[last]
    if batched:  # diffrax saves (T, B, ...); put the batch first
        xs = jnp.moveaxis(xs, 0, 1)
    # save times after the event hold the state at the event
    reached = ts <= t_last
    manifold = field.manifold
    if batched:
        mask = reached.reshape((1, -1) + (1,) * manifold.event_ndim)
        xs = jnp.where(mask, xs, x_last[:, None])
    else:
        mask = reached.reshape((-1,) + (1,) * manifold.event_ndim)
        xs = jnp.where(mask, xs, x_last[None])
    if manifold.constrained:
        xs, x_last = manifold.retract(xs), manifold.retract(x_last)
    return xs, x_last, t_last


def _custom_save_output(field, sol, batched):
    """ts, ys and the time reached for a user's SaveAt (states retracted when saved as is)."""
    ts, ys = sol.ts, sol.ys
    t_last = jnp.max(jnp.where(jnp.isfinite(ts), ts, -jnp.inf))
    if batched:
        ys = jax.tree_util.tree_map(lambda a: jnp.moveaxis(a, 0, 1) if a.ndim > 1 else a, ys)
    # states saved as is (batch, T, n, d) / (T, n, d); not e.g. observables saved by a SaveAt(fn=...)
    manifold = field.manifold
    if manifold.constrained and eqx.is_array(ys) and ys.ndim == manifold.event_ndim + (2 if batched else 1):
        ys = jnp.where(jnp.isfinite(ys), manifold.retract(ys), ys)
    return ts, ys, t_last
