"""Retraction to the sphere: every solver step of a sphere field ends on the sphere.

The exact flow preserves |x_i| (the tangent projection divides by |x|^2), but an explicit
Runge-Kutta step does not: plain Tsit5 at rtol 1e-6 drifts by ~7e-5. :class:`RetractingSolver`
maps the end point of each accepted-or-rejected step back to the sphere (x -> x/|x|, a
retraction) and returns the inner solver's own error estimate unchanged, so error control still
measures the Runge-Kutta truncation error (the retraction only removes the normal component,
which is part of that error). Measured cost and drift: ``docs/solving.md``.
"""

from __future__ import annotations

import abc

import diffrax
import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float


def retract_to_sphere(x: Float[Array, "*batch d"]) -> Float[Array, "*batch d"]:
    """x -> x / |x| along the last axis."""
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


class AbstractDelegatingSolver(diffrax.AbstractWrappedSolver):
    """A diffrax solver wrapper that delegates everything but :meth:`step` to ``solver``."""

    solver: eqx.AbstractVar[diffrax.AbstractSolver]

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

    def func(self, terms, t0, y0, args):
        return self.solver.func(terms, t0, y0, args)

    @abc.abstractmethod
    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        """One step of ``solver``, modified."""


class RetractingSolver(AbstractDelegatingSolver):
    """Wrap any diffrax solver so each step ends on the sphere (x -> x/|x| per token).

    The wrapped solver's error estimate is passed through unchanged (see the module
    docstring for why this keeps error control honest). First-same-as-last solvers reuse
    f(y1) of the unretracted end point; the mismatch is O(h * Lipschitz * drift), below
    the step's own error.
    """

    solver: diffrax.AbstractSolver

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        y1, y_error, dense_info, solver_state, result = self.solver.step(
            terms, t0, t1, y0, args, solver_state, made_jump
        )
        return retract_to_sphere(y1), y_error, dense_info, solver_state, result
