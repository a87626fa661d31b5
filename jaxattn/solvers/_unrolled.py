"""Explicit Runge-Kutta methods with their stages written out: the same tableaux as diffrax's Tsit5
and Bosh3, the same steps and results, without the stage loop.

diffrax's ``AbstractERK`` runs the stages of a step as a loop over a buffer holding every stage
(one ``dynamic_update_slice`` per stage; under the default adjoint a checkpointed loop), so XLA
cannot fuse a stage's linear combination into the right-hand side that consumes it. Here each
stage is a Python statement: Y_i = y_0 + h sum_{j<i} a_ij f_j, f_i = F(t_0 + c_i h, Y_i), written
out for the tableau, so a step compiles to straight-line code (first same as last: f_s of one step
is the next step's f_0). For small right-hand sides evaluated on large batched states (the paper
002 phase diagram: 128 Gram matrices of 32 x 32 per state) that loop is a large share of a step;
``docs/solving.md`` has the measurement.

Tableaux (Butcher coefficients, error weights, dense output) are diffrax's own
(``diffrax.Tsit5.tableau`` and its interpolation: Tsitouras 2011; ``diffrax.Bosh3.tableau`` with
cubic Hermite interpolation: Bogacki & Shampine 1989), so these solvers reproduce diffrax's
solutions to round-off.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar

import diffrax
import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import jax.tree_util as jtu


def _combine(y0, h, coefs, fs):
    """y0 + h sum_j coefs[j] fs[j] over pytrees, skipping zero coefficients."""
    terms = [(float(c), f) for c, f in zip(coefs, fs) if c != 0]

    def leaf(y, *f):
        return y + h * sum(c * fj for (c, _), fj in zip(terms, f))

    return jtu.tree_map(leaf, y0, *[f for _, f in terms])


class AbstractUnrolledERK(diffrax.AbstractAdaptiveSolver):
    """An explicit, first-same-as-last Runge-Kutta method of a diffrax ``ButcherTableau`` whose last
    stage is the solution (a_s = b), with every stage written out (module docstring)."""

    tableau: eqx.AbstractClassVar[diffrax.ButcherTableau]
    term_structure: ClassVar = diffrax.AbstractTerm

    @abc.abstractmethod
    def _dense_info(self, y0, y1, ks) -> dict:
        """The keyword arguments of ``interpolation_cls`` besides t0, t1."""

    def init(self, terms, t0, t1, y0, args):
        return jnp.array(True), jtu.tree_map(jnp.zeros_like, y0)

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        first, f0 = solver_state
        f0 = jax.lax.cond(eqxi.unvmap_any(first | made_jump), lambda: terms.vf(t0, y0, args), lambda: f0)
        h = terms.contr(t0, t1)
        tab = self.tableau
        fs = [f0]
        for a, c in zip(tab.a_lower, tab.c):
            fs.append(terms.vf(t0 + float(c) * h, _combine(y0, h, a, fs), args))
        # first same as last: the last stage is evaluated at the solution y1 = y0 + h sum_j b_j f_j
        y1 = _combine(y0, h, tab.b_sol, fs)
        y_error = _combine(jtu.tree_map(jnp.zeros_like, y0), h, tab.b_error, fs)
        ks = [jtu.tree_map(lambda f: h * f, f) for f in fs]
        return y1, y_error, self._dense_info(y0, y1, ks), (jnp.array(False), fs[-1]), diffrax.RESULTS.successful


class UnrolledTsit5(AbstractUnrolledERK):
    """diffrax's ``Tsit5`` (Tsitouras 2011, order 5(4), 7 stages, FSAL, fourth-order dense output) with its
    stages written out."""

    tableau: ClassVar[diffrax.ButcherTableau] = diffrax.Tsit5.tableau
    interpolation_cls: ClassVar[Callable] = diffrax.Tsit5.interpolation_cls

    def order(self, terms):
        return 5

    def _dense_info(self, y0, y1, ks):
        return dict(y0=y0, y1=y1, k=jtu.tree_map(lambda *k: jnp.stack(k), *ks))


class UnrolledBosh3(AbstractUnrolledERK):
    """diffrax's ``Bosh3`` (Bogacki-Shampine 3(2), 4 stages, FSAL, cubic Hermite dense output) with its stages
    written out."""

    tableau: ClassVar[diffrax.ButcherTableau] = diffrax.Bosh3.tableau
    interpolation_cls: ClassVar[Callable] = diffrax.ThirdOrderHermitePolynomialInterpolation

    def order(self, terms):
        return 3

    def _dense_info(self, y0, y1, ks):
        return dict(y0=y0, y1=y1, k0=ks[0], k1=ks[-1])
