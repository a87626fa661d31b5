"""Strict saddles of the circle energy (Geshkovski et al. 2023, Prop 6.1 and Appendix C)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float

from ...analysis import circle_energy

__all__ = ["beta_one", "circle_hessian", "circle_hessian_analytic"]


def circle_hessian(theta: Float[ArrayLike, " n"], beta: float) -> np.ndarray:
    """Hessian of the circle energy (6.4) by automatic differentiation.

    **Arguments:**

    - `theta`: angles, float (n,).
    - `beta`: the inverse temperature.

    **Returns:**

    The Hessian, a NumPy array (n, n).
    """
    return np.asarray(_circle_hessian(jnp.asarray(theta, float), jnp.asarray(beta, float)))


@jax.jit
def _circle_hessian(theta, beta):
    return jax.hessian(lambda th: circle_energy(th, beta))(theta)


def circle_hessian_analytic(theta, beta: float) -> np.ndarray:
    """Appendix C: d^2E/dtheta_i dtheta_j = g(theta_i - theta_j)/n^2 (i != j), diagonal
    -sum_{m != i} g(theta_i - theta_m)/n^2, g(x) = (cos x - beta sin^2 x) e^{beta cos x}.

    **Arguments:**

    - `theta`: angles, float (n,).
    - `beta`: the inverse temperature.

    **Returns:**

    The Hessian, a NumPy array (n, n).
    """
    theta = np.asarray(theta, float)
    n = theta.size
    diff = theta[:, None] - theta[None, :]
    g = (np.cos(diff) - beta * np.sin(diff) ** 2) * np.exp(beta * np.cos(diff))
    np.fill_diagonal(g, 0.0)
    return (g - np.diag(g.sum(1))) / n**2


def beta_one(n: int) -> float:
    """Sufficient beta for Prop 6.1 on the circle: (n - 1) tau_beta < pi, i.e.
    beta > cos(pi/(n-1)) / sin^2(pi/(n-1)) (an upper bound for beta_1(n): ``docs/errata.md``).

    tau_beta in [0, pi) solves beta sin^2 tau = cos tau: it is [`jaxattn.analysis.tau_star`][jaxattn.analysis.tau_star], the
    maximiser of the circle interaction h(x) = e^{beta (cos x - 1)} sin x.

    **Arguments:**

    - `n`: the number of tokens, int >= 3.

    **Returns:**

    The sufficient beta, a float.
    """
    if n < 4:
        return 0.0
    a = math.pi / (n - 1)
    return math.cos(a) / math.sin(a) ** 2
