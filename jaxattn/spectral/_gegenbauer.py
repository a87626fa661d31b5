"""Orthogonal-polynomial helpers of [`jaxattn.spectral`][jaxattn.spectral]: harmonic dimensions, Gauss-Jacobi rules, Gegenbauer tables."""

from __future__ import annotations

import math

import numpy as np
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._validate import check_dim


def harmonic_dimension(n: int, d: int) -> int:
    """Z_n^d = (2n+d-2)(n+d-3)! / (n!(d-2)!), the number of degree-n spherical harmonics on S^{d-1}.

    **Arguments:**

    - `n`: the degree, int >= 0.
    - `d`: the ambient dimension, int >= 2 (S^1 has Z_n^2 = 2 for n >= 1).

    **Returns:**

    Z_n^d, an int.
    """
    d = check_dim(d)
    if n == 0:
        return 1
    if d == 2:
        return 2
    return (2 * n + d - 2) * math.factorial(n + d - 3) // (math.factorial(n) * math.factorial(d - 2))


def sphere_weight_nodes(d: int, n_quad: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Jacobi nodes u_i and weights w_i for the probability weight c_d (1-u^2)^{(d-3)/2} on [-1,1].

    This is the law of u = ⟨x, e⟩ for x uniform on S^{d-1}; sum_i w_i = 1, and the rule is exact
    for polynomials of degree <= 2 n_quad - 1.
    """
    from scipy.special import roots_jacobi

    a = (d - 3) / 2
    u, w = roots_jacobi(n_quad, a, a)
    return np.asarray(u), np.asarray(w / w.sum())


def gegenbauer_table(nmax: int, d: int, u: ArrayLike) -> tuple[Float[Array, "{nmax+1} *u"], Float[Array, "{nmax+1} *u"]]:
    """Normalised Gegenbauer polynomials P_n(u) (P_n(1) = 1) and derivatives P_n'(u), n = 0..nmax.

    Three-term recurrence with alpha = (d-2)/2:
        P_{n+1} = ((2n + 2 alpha) u P_n - n P_{n-1}) / (n + 2 alpha),   P_0 = 1, P_1 = u.
    d = 2 gives Chebyshev T_n, d = 3 Legendre P_n.
    """
    u = jnp.asarray(u, dtype=jnp.result_type(float))
    a2 = d - 2.0
    P = [jnp.ones_like(u), u]
    dP = [jnp.zeros_like(u), jnp.ones_like(u)]
    for n in range(1, nmax):
        c = 1.0 / (n + a2)
        P.append(((2 * n + a2) * u * P[n] - n * P[n - 1]) * c)
        dP.append(((2 * n + a2) * (P[n] + u * dP[n]) - n * dP[n - 1]) * c)
    return jnp.stack(P[: nmax + 1]), jnp.stack(dP[: nmax + 1])
