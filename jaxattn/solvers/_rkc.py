r"""Second-order Runge-Kutta-Chebyshev (RKC2): an explicit solver whose stability interval grows
like the square of its stage count.

Sommeijer, Shampine & Verwer, "RKC: an explicit solver for parabolic PDEs", J. Comput. Appl. Math.
88 (1997) 315-326, eqs. (2.2)-(2.6) (after van der Houwen & Sommeijer 1980). With s >= 2 stages,
damping eps (2/13), w0 = 1 + eps/s^2, w1 = T_s'(w0)/T_s''(w0) (T_j the Chebyshev polynomials of
the first kind) and b_j = T_j''(w0)/T_j'(w0)^2 (j >= 2, b_0 = b_1 = b_2), one step of size h is

    Y_0 = y_n,   Y_1 = Y_0 + mu~_1 h F_0,
    Y_j = (1 - mu_j - nu_j) Y_0 + mu_j Y_{j-1} + nu_j Y_{j-2} + mu~_j h F(t_n + c_{j-1} h, Y_{j-1})
          + gamma~_j h F_0,                                                     j = 2..s,
    y_{n+1} = Y_s,

    mu~_1 = b_1 w1,  mu_j = 2 b_j w0 / b_{j-1},  nu_j = -b_j / b_{j-2},  mu~_j = 2 b_j w1 / b_{j-1},
    gamma~_j = -(1 - b_{j-1} T_{j-1}(w0)) mu~_j,  c_j = w1 T_j''(w0)/T_j'(w0) (c_1 = mu~_1, c_s = 1).

It is second order for every s, and its stability region contains the real interval
[-beta(s), 0] with beta(s) ~ (2/3)(1 - 2 eps/15) s^2 ~ 0.65 s^2: a step of size h is stable for
a Jacobian whose eigenvalues are real (or near the negative real axis) with modulus <= rho once
s = 1 + floor(sqrt(1 + 1.54 h rho)) (the RKC code's rule). The cost of a stable step grows like
sqrt(h rho) right-hand sides instead of h rho, so a solve whose steps an explicit Runge-Kutta
method must keep below ~3/rho for stability (the metastable phase of self-attention, where a token
contracts onto its cluster at rate ~1) can take steps of the size its accuracy allows.

Error estimate (the RKC code's, eq. (2.9) of the paper): est = (12 (y_n - y_{n+1}) + 6 h (F_n +
F_{n+1})) / 15, O(h^3); F_{n+1} is reused as the next step's F_0 (first same as last), so a step
of s stages costs s right-hand sides. Dense output: the cubic Hermite interpolant of (y, hF) at
both ends.

The spectral radius rho of the Jacobian is given (``spectral_radius``: a number, or a callable
(t, y) -> number) or estimated by the RKC code's nonlinear power iteration: finite differences
J v ~ (F(y + e v) - F(y)) / e, warm-started from the previous eigenvector, every
``estimate_every`` accepted steps, multiplied by ``safety``.

The stage loop has a traced length (s changes from step to step), so the solve runs forward only:
reverse-mode differentiation through an RKC2 solve is not supported (use the default solver for
gradients).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import diffrax
import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
from jaxtyping import Array, ArrayLike, PyTree

#: damping of the Chebyshev polynomial (the RKC code's eps = 2/13)
DEFAULT_DAMPING = 2.0 / 13.0

_State = tuple  # (first step, F_0, rho, eigenvector, accepted steps since the last estimate)


def _axpy(*pairs):
    """sum_k a_k x_k over pytrees x_k with scalar coefficients a_k."""
    coefs, trees = pairs[0::2], pairs[1::2]
    return jtu.tree_map(lambda *leaves: sum(c * leaf for c, leaf in zip(coefs, leaves)), *trees)


def _norm(tree) -> Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in jtu.tree_leaves(tree)))


def stability_bound(stages: int | ArrayLike, damping: float = DEFAULT_DAMPING) -> Array:
    """beta(s) = (w0 + 1) T_s''(w0) / T_s'(w0): the real stability interval [-beta(s), 0] of the
    s-stage damped method (Verwer, Hundsdorfer & Sommeijer 1990, eq. (2.7)); ~0.65 s^2."""
    s = jnp.asarray(stages)
    w0 = 1.0 + damping / s**2
    _, dT, ddT = _chebyshev(w0, s)
    return (w0 + 1.0) * ddT / dT


def _chebyshev(w0, s):
    """T_s(w0), T_s'(w0), T_s''(w0) by the three-term recurrences (s >= 1, traced)."""
    def body(_, c):
        T1, T0, dT1, dT0, ddT1, ddT0 = c
        T2 = 2 * w0 * T1 - T0
        return T2, T1, 2 * T1 + 2 * w0 * dT1 - dT0, dT1, 4 * dT1 + 2 * w0 * ddT1 - ddT0, ddT1

    one, zero = jnp.ones_like(w0), jnp.zeros_like(w0)
    T, _, dT, _, ddT, _ = jax.lax.fori_loop(1, s, body, (w0, one, one, zero, zero, zero))
    return T, dT, ddT


class RKC2(diffrax.AbstractAdaptiveSolver):
    r"""Damped second-order Runge-Kutta-Chebyshev method (module docstring) as a diffrax solver.

    For ODEs whose Jacobian has eigenvalues on or near the negative real axis: the causal
    self-attention of Karagodin et al. 2024 (a lower-triangular Jacobian, so real eigenvalues) and
    the metastable phase of (SA). Adaptive (use it with ``diffrax.PIDController``); the number of
    stages s of each step follows the step size h and the spectral radius rho,
    s = 1 + floor(sqrt(1 + 1.54 h rho)), between 2 and ``max_stages`` (a step that would need more
    is rejected with an infinite error estimate, so the controller shrinks it).

    Args:
        spectral_radius: rho, a number (a bound on the Jacobian's spectral radius along the
            solution), or a callable ``(t, y) -> rho``, or None (default) to estimate it by power
            iteration every ``estimate_every`` accepted steps.
        damping: eps of the damped Chebyshev polynomial (2/13 as in the RKC code).
        max_stages: the most stages one step may take.
        safety: the power-iteration estimate is multiplied by this (the RKC code's 1.2).
        estimate_every: accepted steps between two power iterations.
        power_iterations: the most iterations of one estimate (it stops at 1% agreement).
    """

    spectral_radius: float | Array | Callable | None = None
    damping: float = eqx.field(static=True, default=DEFAULT_DAMPING)
    max_stages: int = eqx.field(static=True, default=256)
    safety: float = eqx.field(static=True, default=1.2)
    estimate_every: int = eqx.field(static=True, default=25)
    power_iterations: int = eqx.field(static=True, default=20)

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar[Callable[..., diffrax.ThirdOrderHermitePolynomialInterpolation]] = (
        diffrax.ThirdOrderHermitePolynomialInterpolation)

    def order(self, terms):
        return 2

    def error_order(self, terms):
        return 3  # the estimate is O(h^3): the controller's exponent is 1/3

    def init(self, terms, t0, t1, y0, args) -> _State:
        f0 = jtu.tree_map(jnp.zeros_like, y0)
        # a fixed, generic start vector (not orthogonal to the dominant eigenvector in practice)
        leaves, tree = jtu.tree_flatten(y0)
        v = jtu.tree_unflatten(tree, [jnp.cos(1.0 + jnp.arange(leaf.size, dtype=leaf.dtype) * 0.7548776662466927)
                                      .reshape(leaf.shape) for leaf in leaves])
        dtype = jnp.result_type(*leaves)
        return jnp.array(True), f0, jnp.zeros((), dtype), v, jnp.zeros((), jnp.int32)

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def _estimate(self, terms, t0, y0, f0, args, v):
        """(rho, eigenvector): nonlinear power iteration on J(y0) by finite differences (RKC)."""
        dtype = jnp.result_type(*jtu.tree_leaves(y0))
        eps = jnp.sqrt(jnp.finfo(dtype).eps)
        ynorm = _norm(y0)

        def apply(v):  # J v ~ (F(y0 + e v) - F(y0)) / e with |e v| = sqrt(eps) (1 + |y0|)
            e = eps * (1.0 + ynorm) / jnp.maximum(_norm(v), jnp.finfo(dtype).tiny)
            return _axpy(1.0 / e, terms.vf(t0, _axpy(1.0, y0, e, v), args), -1.0 / e, f0)

        def cond(c):
            i, _, rho, rho_old = c
            return (i < self.power_iterations) & ((i < 2) | (jnp.abs(rho - rho_old) > 0.01 * rho))

        def body(c):
            i, v, rho, _ = c
            jv = apply(v)
            new = _norm(jv) / jnp.maximum(_norm(v), jnp.finfo(dtype).tiny)
            jv_norm = _norm(jv)
            v = jtu.tree_map(lambda a, b: jnp.where(jv_norm > 0, a / jnp.maximum(jv_norm, jnp.finfo(dtype).tiny), b),
                             jv, v)
            return i + 1, v, new, rho

        _, v, rho, _ = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), v, jnp.zeros((), dtype),
                                                       jnp.zeros((), dtype)))
        return self.safety * rho, v

    def step(self, terms, t0, t1, y0, args, solver_state: _State, made_jump):
        first, f0, rho, v, count = solver_state
        h = t1 - t0
        f0 = jax.lax.cond(eqxi.unvmap_any(first | made_jump), lambda: terms.vf(t0, y0, args), lambda: f0)
        if self.spectral_radius is None:
            rho, v = jax.lax.cond(eqxi.unvmap_any(first | (count >= self.estimate_every)),
                                  lambda: self._estimate(terms, t0, y0, f0, args, v), lambda: (rho, v))
            count = jnp.where(first | (count >= self.estimate_every), 0, count)
        elif callable(self.spectral_radius):
            rho = jnp.asarray(self.spectral_radius(t0, y0), rho.dtype)
        else:
            rho = jnp.asarray(self.spectral_radius, rho.dtype)
        dtype = rho.dtype
        needed = 1 + jnp.floor(jnp.sqrt(1.0 + 1.54 * jnp.abs(h) * rho))
        s = jnp.clip(needed, 2, self.max_stages).astype(jnp.int32)
        sf = s.astype(dtype)
        w0 = 1.0 + self.damping / sf**2
        _, dTs, ddTs = _chebyshev(w0, s)
        w1 = dTs / ddTs
        b = 1.0 / (4.0 * w0**2)  # b_0 = b_1 = b_2
        hf0 = jtu.tree_map(lambda f: h * f, f0)
        mu1 = b * w1
        y1 = _axpy(1.0, y0, mu1, hf0)

        def body(j, c):
            Yjm1, Yjm2, T1, T0, dT1, dT0, ddT1, ddT0, b1, b0, cjm1 = c
            T2 = 2 * w0 * T1 - T0
            dT2 = 2 * T1 + 2 * w0 * dT1 - dT0
            ddT2 = 4 * dT1 + 2 * w0 * ddT1 - ddT0
            bj = ddT2 / dT2**2
            mu, nu, mut = 2 * bj * w0 / b1, -bj / b0, 2 * bj * w1 / b1
            gamt = -(1.0 - b1 * T1) * mut
            fj = terms.vf(t0 + cjm1 * h, Yjm1, args)
            Yj = _axpy(1.0 - mu - nu, y0, mu, Yjm1, nu, Yjm2, mut * h, fj, gamt, hf0)
            return Yj, Yjm1, T2, T1, dT2, dT1, ddT2, ddT1, bj, b1, w1 * ddT2 / dT2

        one, zero = jnp.ones((), dtype), jnp.zeros((), dtype)
        out = jax.lax.fori_loop(2, s + 1, body, (y1, y0, w0, one, one, zero, zero, zero, b, b, mu1))
        ys = out[0]
        f1 = terms.vf(t1, ys, args)
        hf1 = jtu.tree_map(lambda f: h * f, f1)
        y_error = _axpy(0.8, y0, -0.8, ys, 0.4, hf0, 0.4, hf1)
        too_stiff = needed > self.max_stages
        y_error = jtu.tree_map(lambda e: jnp.where(too_stiff, jnp.inf, e), y_error)
        dense_info = dict(y0=y0, y1=ys, k0=hf0, k1=hf1)
        state = (jnp.array(False), f1, rho, v, count + 1)
        return ys, y_error, dense_info, state, diffrax.RESULTS.successful
