"""Weighted (SA) on the circle: collapsed clusters as weighted particles, optionally in the pairing clock.

When tokens have collapsed into clusters of sizes m_1..m_k at angles theta_1..theta_k, (SA) on S^1
(Geshkovski et al. 2023 (perspective) eq. (6.1), SA form, Q = K = V = I) moves each cluster as one particle
with weights proportional to the sizes:

    dtheta_i/dt = sum_j m_j e^{beta cos(theta_j - theta_i)} sin(theta_j - theta_i) / sum_j m_j e^{beta cos(theta_j - theta_i)}

(j = i included in the denominator). This is the dynamics of the "modified" flow of Geshkovski, Koubbi,
Polyanskiy, Rigollet ("Dynamic metastability in the self-attention model", arXiv 2410.06833, 2024, §6), where
particles closer than a collision radius are glued into one (``jaxattn.analysis.staircase.staircase_flow``).

With ``clock=True`` time runs in the pairing theorem's clock (Rigollet, arXiv 2512.01868, Theorem
agazzi_merge, after Bruno, Pasqualotto, Agazzi, arXiv 2509.25040): dt = e^{beta(1 - rho*)} ds with
rho* = max_{i != j} cos(theta_i - theta_j) the closest pair, so that

    dtheta_i/ds = sum_j m_j e^{beta(cos(theta_j - theta_i) - rho*)} sin(theta_j - theta_i) / sum_j m_j e^{beta(cos(theta_j - theta_i) - 1)},

every exponent <= 0 off the diagonal: the closest pair moves at speed O(1) and every other pair is
exponentially slower, for any beta (beta = 4000 is fine; the physical time e^{beta(1 - rho*)} is not
representable there). The terms are summed pair by pair (no cancellation against the self term), so even
the exponentially small velocities are accurate to round-off.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jax.scipy.special import logsumexp
from jaxtyping import Array, ArrayLike, Float

from .._validate import as_finite_array, beta_rule, check_beta, enforce, positive_rule
from ..manifolds import CIRCLE, Circle
from ._base import AbstractField, parameter


def _masses_rule(masses):
    return positive_rule(masses, "masses", " (cluster sizes)")


class WeightedCircleAttention(AbstractField):
    """(SA) on S^1 for weighted particles (cluster sizes ``masses``), in physical time or the pairing clock.

    Args:
        beta: inverse temperature > 0.
        masses: (k,) positive weights m_j (cluster sizes); fixes the number of particles.
        clock: integrate in the pairing clock dt = e^{beta(1 - rho*)} ds (module docstring).
    """

    beta: Float[Array, ""] = parameter(check=beta_rule, logit="scale")
    masses: Float[Array, " k"] = parameter(check=_masses_rule, per_token="masses")
    clock: bool = eqx.field(static=True)

    manifold: ClassVar[Circle] = CIRCLE
    dim: ClassVar[None] = None

    def __init__(self, beta: float | ArrayLike, masses: ArrayLike | Sequence, *, clock: bool = False):
        self.beta = check_beta(beta)
        masses = as_finite_array(masses, "masses", 1, "a 1-d array of k >= 1 positive cluster sizes")
        self.masses = enforce([_masses_rule(masses)], masses)
        self.clock = bool(clock)

    @property
    def num_tokens(self) -> int:
        return self.masses.shape[0]

    def velocity(self, t, theta: Float[Array, " k"]) -> Float[Array, " k"]:
        d = theta[None, :] - theta[:, None]  # theta_j - theta_i
        c = jnp.cos(d)
        k = theta.shape[0]
        log_m = jnp.log(self.masses)[None, :]
        log_den = logsumexp(self.beta * (c - 1.0) + log_m, axis=1)
        off = ~jnp.eye(k, dtype=bool)
        if self.clock and k > 1:
            shift = jnp.max(jnp.where(off, c, -jnp.inf))
        else:
            shift = jnp.asarray(1.0, theta.dtype)
        w = jnp.where(off, jnp.exp(self.beta * (c - shift) + log_m - log_den[:, None]), 0.0)
        return jnp.sum(w * jnp.sin(d), axis=1)
