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

from ..fields import AbstractField
from ._guard import NonFiniteGuard
from ._retract import RetractingSolver
from ._trajectory import SolverStats


class SolveConfig(eqx.Module):
    """Everything about a solve except the field and the data (x0, t0, t1, ts).

    Non-array leaves are static under ``eqx.filter_jit``, so one compilation serves every
    field parameter and initial condition of the same shapes.
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
    """What one solve returns (per member where the members took their own steps)."""

    ts: Float[Array, " T"] | None  # None with a user's SaveAt
    xs: PyTree[Array]
    t_last: Float[Array, "*batch"]
    x_last: Array | None  # the state at t_last (None with a user's SaveAt)
    stats: SolverStats
    result: diffrax.RESULTS  # diffrax's outcome, per member where the members took their own steps
    # (failures: solve/_failure.py; after a non-finite state, NonFiniteGuard, t_last is when)

    @property
    def event_occurred(self) -> Bool[Array, "*batch"]:
        return self.result == diffrax.RESULTS.event_occurred


def solve_one(config: SolveConfig, field: AbstractField, x0: Array, t0: Array, t1: Array, ts: Array,
              batched: bool) -> SolveOutput:
    """One diffeqsolve: x0 is a single configuration, or an ensemble when ``batched``.

    With ``config.saveat=None`` the states at ``ts`` are saved (plus the final state, used to hold
    the state after an event); a user's ``diffrax.SaveAt`` passes straight through.
    """
    rhs = jax.vmap(field.velocity, in_axes=(None, 0)) if batched else field.velocity
    term = diffrax.ODETerm(lambda t, y, args: rhs(t, y))
    manifold = field.manifold
    solver = RetractingSolver(config.solver, manifold.retract) if manifold.constrained else config.solver
    fixed_steps = isinstance(config.controller, (diffrax.ConstantStepSize, diffrax.StepTo))
    solver = NonFiniteGuard(solver, jnp.abs(t1 - t0), adaptive=not fixed_steps)
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
