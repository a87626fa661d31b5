"""Solver wrappers that delegate to the solver they wrap.

diffrax treats a wrapper as the solver inside it and reads that solver's attributes on the wrapper,
so every wrapper the library nests in a solve (the retraction and the non-finite guard of
`jaxattn.solve`, the cluster collapse of this package) shares one base that forwards them.
"""

from __future__ import annotations

import abc

import diffrax
import equinox as eqx


class AbstractDelegatingSolver(diffrax.AbstractWrappedSolver):
    """A diffrax solver wrapper that delegates everything but `init` and `step` to ``solver``.

    diffrax treats a wrapper as its wrapped solver (``isinstance(wrapper, diffrax.AbstractImplicitSolver)``
    looks one level inside) and then reads and rewrites that solver's attributes on the wrapper:
    ``root_finder`` and ``root_find_max_steps`` (implicit solvers: the root finder takes the step-size
    controller's tolerances), ``scan_kind`` (Runge-Kutta stage loops: ``ForwardMode``/``DirectAdjoint`` set
    it for forward-mode autodiff), ``tableau``, ... Every attribute the wrapper does not define is
    therefore read from ``solver`` (so ``eqx.tree_at`` on it rewrites the wrapped solver's leaf). Because
    diffrax looks only one level deep, solves never nest two wrappers: [`NonFiniteGuard`][jaxattn.solve.NonFiniteGuard] takes the
    retraction itself, and a wrapper passed to ``simulate`` as ``solver`` (a second level) gets diffrax's
    rewrites on its wrapped solver from the solve (``reach_wrapped`` in ``jaxattn/solve/_core.py``). Subclasses: [`AbstractStepWrapper`][jaxattn.solvers.AbstractStepWrapper] (the wrapped solver's state,
    a modified step: the retraction, the non-finite guard) and [`CollapsingSolver`][jaxattn.solvers.CollapsingSolver] (its own state).
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
    def init(self, terms, t0, t1, y0, args):
        """The solver state at the start of a solve.

        **Arguments:**

        - `terms`: the ``diffrax`` terms of the equation.
        - `t0`: start time of the solve.
        - `t1`: end time of the solve.
        - `y0`: the initial state.
        - `args`: the ``args`` of the solve.

        **Returns:**

        The state ``step`` receives as ``solver_state``.
        """

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


class AbstractStepWrapper(AbstractDelegatingSolver):
    """A [`AbstractDelegatingSolver`][jaxattn.solvers.AbstractDelegatingSolver] that keeps the wrapped solver's state
    (``init`` delegates) and modifies only its ``step``."""

    def init(self, terms, t0, t1, y0, args):
        """As [`AbstractDelegatingSolver.init`][jaxattn.solvers.AbstractDelegatingSolver.init]: the wrapped solver's own
        state, ``solver.init(terms, t0, t1, y0, args)``.
        """
        return self.solver.init(terms, t0, t1, y0, args)
