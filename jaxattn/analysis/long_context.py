"""Long context: one attention layer with beta_n = gamma log n on equiangular tokens, and its three regimes.

Chen, Lin, Polyanskiy, Rigollet, "Critical attention scaling in long-context transformers" (ICLR 2026,
arXiv 2510.05554), as stated in Rigollet, "The mean-field dynamics of transformers" (arXiv 2512.01868,
2025, §5.3, Theorem long-context-phase-transition). n unit tokens with <x_i, x_j> = rho in (0, 1) for
i != j pass through one softmax attention layer with inverse temperature beta_n = gamma log n,

    ATT(x_i) = sum_j A_ij x_j,   A_ij = n^{gamma <x_i, x_j>} / sum_k n^{gamma <x_i, x_k>}   (j = i included),

and the outputs are renormalised, theta_i = ATT(x_i)/|ATT(x_i)| (pre-LN). With r = n^{-gamma(1 - rho)},
a = 1/(1 + (n - 1) r) (the self weight), b = r a (every other weight) and c = a - b, the exact finite-n
cosine is (derived by expanding sum_j A_ij x_j over the equiangular Gram matrix)

    <theta_i, theta_j> = [c^2 rho + 2 c b (1 + (n-1) rho) + b^2 n (1 + (n-1) rho)]
                         / [c^2 + 2 c b (1 + (n-1) rho) + b^2 n (1 + (n-1) rho)],

and with s = n r = n^{1 - gamma(1 - rho)} it tends to rho (1 + s)^2 / (1 + 2 s rho + s^2 rho), hence the
three regimes around the critical gamma_c = 1/(1 - rho):

* gamma < gamma_c (s -> inf): collapse, <theta_i, theta_j> -> 1, with 1 - cos ~ n^{-2(1 - gamma(1 - rho))};
* gamma = gamma_c (s = 1): <theta_i, theta_j> -> 4 rho/(1 + 3 rho), at rate O(1/n);
* gamma > gamma_c (s -> 0): the layer is the identity, <theta_i, theta_j> -> rho, with cos - rho ~
  n^{-(gamma(1 - rho) - 1)}.

``tests/test_long_context.py`` checks the formula against the one attention kernel on explicit
equiangular vectors, the limits and the exponents.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._validate import Check, enforce, interval_rule, xp


def _check_rho(rho):
    """rho in (0, 1): a ValueError at once when concrete, an ``equinox.error_if`` on the returned value when traced."""
    return enforce([interval_rule(rho, "rho", 0.0, 1.0, meaning=" (the common inner product of the equiangular tokens)")],
                   jnp.asarray(rho, dtype=float))


def critical_gamma(rho: Float[ArrayLike, "..."]) -> Float[Array, "..."]:
    """gamma_c = 1 / (1 - rho): the scale beta_n = gamma log n at which one layer neither collapses nor is the identity."""
    return 1.0 / (1.0 - _check_rho(rho))


def long_context_cosine(n: Float[ArrayLike, "..."], rho: Float[ArrayLike, "..."], gamma: Float[ArrayLike, "..."]
                        ) -> Float[Array, "..."]:
    """<theta_i, theta_j> after one layer at beta_n = gamma log n from equiangular tokens (exact, module docstring).

    ``n`` may be a float (n = 1e15 is fine): everything is computed from r = n^{-gamma(1 - rho)} in log space.

    Args:
        n: the number of tokens, >= 2.
        rho: the common inner product of the inputs, in (0, 1).
        gamma: the scale of beta_n = gamma log n.

    Returns:
        the cosine between two outputs (broadcast over the arguments).
    """
    rho = _check_rho(rho)
    m = xp(n)
    n = enforce([Check(~m.all(m.asarray(n) >= 2), "n must be >= 2 tokens{got}", lambda: str(n))],
                jnp.asarray(n, dtype=float))
    gamma = jnp.asarray(gamma, dtype=float)
    r = jnp.exp(-gamma * (1.0 - rho) * jnp.log(n))
    a = 1.0 / (1.0 + (n - 1.0) * r)
    b = r * a
    c = a - b
    shared = 2.0 * c * b * (1.0 + (n - 1.0) * rho) + b**2 * n * (1.0 + (n - 1.0) * rho)
    return (c**2 * rho + shared) / (c**2 + shared)


def long_context_limit(rho: Float[ArrayLike, "..."], gamma: Float[ArrayLike, "..."]) -> Float[Array, "..."]:
    """lim_{n -> inf} <theta_i, theta_j>: 1 (gamma < gamma_c), 4 rho/(1 + 3 rho) (gamma = gamma_c), rho (gamma > gamma_c).

    gamma = gamma_c is recognised to a relative 1e-12."""
    rho = jnp.asarray(rho, dtype=float)
    gamma = jnp.asarray(gamma, dtype=float)
    gc = critical_gamma(rho)
    critical = jnp.abs(gamma - gc) <= 1e-12 * gc
    return jnp.where(critical, 4.0 * rho / (1.0 + 3.0 * rho), jnp.where(gamma < gc, 1.0, rho))


def long_context_exponent(rho: Float[ArrayLike, "..."], gamma: Float[ArrayLike, "..."]) -> Float[Array, "..."]:
    """p with |<theta_i, theta_j> - limit| ~ n^{-p}: 2(1 - gamma(1 - rho)) below gamma_c, 1 at it,
    gamma(1 - rho) - 1 above."""
    rho = jnp.asarray(rho, dtype=float)
    gamma = jnp.asarray(gamma, dtype=float)
    gc = critical_gamma(rho)
    critical = jnp.abs(gamma - gc) <= 1e-12 * gc
    e = gamma * (1.0 - rho)
    return jnp.where(critical, 1.0, jnp.where(gamma < gc, 2.0 * (1.0 - e), e - 1.0))
