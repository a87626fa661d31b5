"""Retraction after every step: every solver step of a field on a constrained manifold ends on it.

The exact flow preserves |x_i| (the tangent projection divides by |x|^2), but an explicit
Runge-Kutta step does not: plain Tsit5 at rtol 1e-6 drifts by ~7e-5. [`RetractingSolver`][jaxattn.RetractingSolver]
maps the end point of each accepted-or-rejected step back to the sphere (x -> x/|x|, a
retraction) and returns the inner solver's own error estimate unchanged, so error control still
measures the Runge-Kutta truncation error (the retraction only removes the normal component,
which is part of that error). Measured cost and drift: ``docs/solving.md``.

Gram-space fields (`jaxattn.manifolds.GRAM`, [`jaxattn.fields.GramSelfAttention`][jaxattn.GramSelfAttention]) carry
the same constraint as diag(G) = 1; their retraction G -> D^{-1/2} G D^{-1/2} (D = diag(G)) is the
image of x_i -> x_i / |x_i| on G = X X^T. Each manifold owns its retraction
([`jaxattn.manifolds.AbstractManifold.retract`][jaxattn.manifolds.AbstractManifold.retract]); the solver wraps its solver in
[`RetractingSolver`][jaxattn.RetractingSolver] where the manifold is ``constrained``.
"""

from __future__ import annotations

from collections.abc import Callable

import diffrax
import equinox as eqx
from jaxtyping import Array

from ..manifolds import retract_to_sphere
from ..solvers import AbstractStepWrapper


class RetractingSolver(AbstractStepWrapper):
    """Wrap any diffrax solver so each step ends on the sphere (x -> x/|x| per token), or on
    the constraint set of ``retract`` (e.g. [`retract_to_unit_diagonal`][jaxattn.manifolds.retract_to_unit_diagonal] for Gram matrices).

    The wrapped solver's error estimate is passed through unchanged (see the module
    docstring for why this keeps error control honest). First-same-as-last solvers reuse
    f(y1) of the unretracted end point; the mismatch is O(h * Lipschitz * drift), below
    the step's own error.

    **Arguments:**

    - `solver`: the diffrax solver to wrap (any ``diffrax.AbstractSolver``).
    - `retract`: the retraction ``x -> x`` applied to each step's end point (static); default
        [`retract_to_sphere`][jaxattn.manifolds.retract_to_sphere] (x_i -> x_i / |x_i|).
    """

    solver: diffrax.AbstractSolver
    retract: Callable[[Array], Array] = eqx.field(static=True, default=retract_to_sphere)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        """As [`AbstractDelegatingSolver.step`][jaxattn.solvers.AbstractDelegatingSolver.step], the end point retracted:
        ``(retract(y1), y_error, dense_info, solver_state, result)`` (the error estimate unchanged)."""
        y1, y_error, dense_info, solver_state, result = self.solver.step(
            terms, t0, t1, y0, args, solver_state, made_jump
        )
        return self.retract(y1), y_error, dense_info, solver_state, result
