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

import abc
from collections.abc import Callable

import diffrax
import equinox as eqx
from jaxtyping import Array

from ..manifolds import retract_to_sphere


class AbstractDelegatingSolver(diffrax.AbstractWrappedSolver):
    """A diffrax solver wrapper that delegates everything but `step` to ``solver``.

    diffrax treats a wrapper as its wrapped solver (``isinstance(wrapper, diffrax.AbstractImplicitSolver)``
    looks one level inside) and then reads and rewrites that solver's attributes on the wrapper:
    ``root_finder`` and ``root_find_max_steps`` (implicit solvers: the root finder takes the step-size
    controller's tolerances), ``scan_kind`` (Runge-Kutta stage loops: ``ForwardMode``/``DirectAdjoint`` set
    it for forward-mode autodiff), ``tableau``, ... Every attribute the wrapper does not define is
    therefore read from ``solver`` (so ``eqx.tree_at`` on it rewrites the wrapped solver's leaf). Because
    diffrax looks only one level deep, solves never nest two wrappers: [`NonFiniteGuard`][jaxattn.solve.NonFiniteGuard] takes the
    retraction itself.
    """

    solver: eqx.AbstractVar[diffrax.AbstractSolver]

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "solver":  # not yet set (construction), or a Python protocol
            raise AttributeError(name)
        return getattr(self.solver, name)

    @property
    def term_structure(self):
        """The wrapped solver's ``term_structure``."""
        return self.solver.term_structure

    @property
    def interpolation_cls(self):  # pyright: ignore
        """The wrapped solver's ``interpolation_cls`` (the dense output of a step)."""
        return self.solver.interpolation_cls

    @property
    def term_compatible_contr_kwargs(self):
        """The wrapped solver's ``term_compatible_contr_kwargs``."""
        return self.solver.term_compatible_contr_kwargs

    def order(self, terms):
        """The wrapped solver's order.

        **Arguments:**

        - `terms`: the ``diffrax`` terms of the equation.

        **Returns:**

        ``solver.order(terms)``.
        """
        return self.solver.order(terms)

    def strong_order(self, terms):
        """The wrapped solver's strong order (SDEs).

        **Arguments:**

        - `terms`: the ``diffrax`` terms of the equation.

        **Returns:**

        ``solver.strong_order(terms)``.
        """
        return self.solver.strong_order(terms)

    def error_order(self, terms):
        """The order of the wrapped solver's error estimate (the PID controller reads it).

        **Arguments:**

        - `terms`: the ``diffrax`` terms of the equation.

        **Returns:**

        ``solver.error_order(terms)``.
        """
        return self.solver.error_order(terms)

    def init(self, terms, t0, t1, y0, args):
        """The wrapped solver's initial state.

        **Arguments:**

        - `terms`: the ``diffrax`` terms of the equation.
        - `t0`: start time of the solve.
        - `t1`: end time of the solve.
        - `y0`: the initial state.
        - `args`: the ``args`` of the solve.

        **Returns:**

        ``solver.init(terms, t0, t1, y0, args)``.
        """
        return self.solver.init(terms, t0, t1, y0, args)

    def func(self, terms, t0, y0, args):
        """The vector field as the wrapped solver evaluates it.

        **Arguments:**

        - `terms`: the ``diffrax`` terms of the equation.
        - `t0`: the time.
        - `y0`: the state.
        - `args`: the ``args`` of the solve.

        **Returns:**

        ``solver.func(terms, t0, y0, args)``.
        """
        return self.solver.func(terms, t0, y0, args)

    @abc.abstractmethod
    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        """One step of ``solver``, modified.

        **Arguments:**

        As ``diffrax.AbstractSolver.step``:

        - `terms`: the ``diffrax`` terms of the equation.
        - `t0`: start of the step.
        - `t1`: end of the step.
        - `y0`: the state at t0.
        - `args`: the ``args`` of the solve.
        - `solver_state`: the wrapped solver's state.
        - `made_jump`: whether the step follows a jump in the vector field.

        **Returns:**

        ``(y1, y_error, dense_info, solver_state, result)`` as diffrax expects.
        """


class RetractingSolver(AbstractDelegatingSolver):
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
        """One step of the wrapped solver, its end point retracted (the error estimate unchanged).

        **Arguments:**

        As ``diffrax.AbstractSolver.step``:

        - `terms`: the ``diffrax`` terms of the equation.
        - `t0`: start of the step.
        - `t1`: end of the step.
        - `y0`: the state at t0.
        - `args`: the ``args`` of the solve.
        - `solver_state`: the wrapped solver's state.
        - `made_jump`: whether the step follows a jump in the vector field.

        **Returns:**

        ``(retract(y1), y_error, dense_info, solver_state, result)``.
        """
        y1, y_error, dense_info, solver_state, result = self.solver.step(
            terms, t0, t1, y0, args, solver_state, made_jump
        )
        return self.retract(y1), y_error, dense_info, solver_state, result
