"""Stop a solve at once when its state becomes non-finite, instead of shrinking the step to max_steps.

diffrax rejects a step whose error estimate is NaN/inf and retries with a smaller step: right when a
too-large trial step overflows, hopeless when the vector field is already non-finite at the current
state (overflowing attention logits, float32 overflow of beta ⟨Qx, Ky⟩, a NaN parameter), where every
retry fails again and the solve spins until ``max_steps`` (65,536 steps before this guard). A trial
step of size dt still gives a non-finite end point when dt <= [`COLLAPSE`][jaxattn.solve.COLLAPSE] x (t1 - t0) only if
the field itself is non-finite there (an explicit step of that size moves the state by a relative
1e-12 of a whole-span step), so [`NonFiniteGuard`][jaxattn.solve.NonFiniteGuard] then accepts a null step and returns
``RESULTS.nonfinite``: diffrax ends the solve at the time reached, which ``simulate`` reports.
A non-finite step size (e.g. diffrax's initial-step heuristic on a NaN field) trips it at once.
With a fixed-step controller (``ConstantStepSize``, ``StepTo``) no step is ever retried, so there any
non-finite end point ends the solve.
"""

from __future__ import annotations

from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..solvers import AbstractStepWrapper

#: a non-finite trial step shorter than this fraction of the integration span ends the solve
COLLAPSE = 1e-12


def tree_all_finite(tree) -> Array:
    """Whether every entry of every array leaf of ``tree`` is finite.

    **Arguments:**

    - `tree`: a PyTree of arrays (an empty tree is finite).

    **Returns:**

    A boolean scalar array.
    """
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


class NonFiniteGuard(AbstractStepWrapper):
    """Wrap any diffrax solver so that a non-finite state ends the solve with ``RESULTS.nonfinite``.

    ``span`` is |t1 - t0| of the solve: a step whose end point is non-finite although it is shorter
    than ``COLLAPSE * span`` (or whose size is not finite) is turned into an accepted null step
    (y1 = y0, zero error) with the failure result, so the solve stops where the state broke down.
    Healthy steps pass through unchanged (one ``isfinite`` reduction per step). With ``retract`` the
    end point of every step is retracted first ([`RetractingSolver`][jaxattn.RetractingSolver]'s job, in the
    same wrapper).

    **Arguments:**

    - `solver`: the diffrax solver to wrap (any ``diffrax.AbstractSolver``).
    - `span`: |t1 - t0| of the solve, a positive scalar array.
    - `adaptive`: False for a fixed-step controller (``ConstantStepSize``, ``StepTo``), where no retry can
        follow a non-finite step, so any non-finite end point ends the solve; default True.
    - `retract`: the manifold's retraction ``x -> x`` applied to every end point first (static), or None
        (default) for an unconstrained manifold.
    """

    solver: diffrax.AbstractSolver
    span: Float[Array, ""]
    adaptive: bool = True  # False for fixed steps: no retry can follow a non-finite step
    # the manifold's retraction applied to the end point first (as [`RetractingSolver`][jaxattn.RetractingSolver] does), so that
    # a constrained solve nests one wrapper, not two (diffrax reads solver attributes one level deep)
    retract: Callable[[Array], Array] | None = eqx.field(static=True, default=None)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        """As [`AbstractDelegatingSolver.step`][jaxattn.solvers.AbstractDelegatingSolver.step], the end point retracted
        first; a collapsed non-finite step returns y1 = y0, a zero error and ``result = RESULTS.nonfinite``."""
        y1, y_error, dense_info, solver_state, result = self.solver.step(
            terms, t0, t1, y0, args, solver_state, made_jump
        )
        if self.retract is not None:
            y1 = self.retract(y1)
        dt = t1 - t0
        collapsed = ~jnp.isfinite(dt) | (jnp.abs(dt) <= COLLAPSE * self.span) | (not self.adaptive)
        broken = collapsed & ~tree_all_finite(y1)
        keep = lambda new, old: jnp.where(broken, old, new)  # noqa: E731
        y1 = jax.tree_util.tree_map(keep, y1, y0)
        if y_error is not None:
            y_error = jax.tree_util.tree_map(lambda e: jnp.where(broken, jnp.zeros_like(e), e), y_error)
        # the interpolant of the null step: its non-finite stages zeroed (y(t) = y0 on the step)
        dense_info = jax.tree_util.tree_map(
            lambda a: jnp.where(broken & ~jnp.isfinite(a), jnp.zeros_like(a), a), dense_info)
        result = diffrax.RESULTS.where(broken, diffrax.RESULTS.nonfinite, result)
        return y1, y_error, dense_info, solver_state, result
