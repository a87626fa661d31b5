"""The Lyapunov functional of Sinkhorn (doubly stochastic) attention: an entropic transport cost.

For the empirical measure mu = (1/n) sum_i delta_{x_i} and logits C_ij = <Q x_i, K x_j> (any scale beta
folded in), the entropic self-transport cost with cost -C and regularisation 1 is

    OT_1(mu, mu) = min_pi  int -C dpi + KL(pi | mu x mu) = int f dmu + int g dmu,

f, g the optimal dual potentials (at the optimum int int e^{f + g + C} dmu dmu = 1). The Sinkhorn
weights P_ij = e^{C_ij + u_i + v_j} of [`jaxattn.fields.sinkhorn_potentials`][jaxattn.fields.sinkhorn_potentials] (rows and columns
summing to 1) are n pi_ij, so f_i + g_j = u_i + v_j + log n and

    OT_1(mu, mu) = log n + mean(u) + mean(v).

When B = Q^T K is symmetric and V = B, the Sinkformer dynamics dx_i/dt = sum_j P_ij V x_j is the
Wasserstein gradient descent of (1/2) OT_1 (Sander, Ablin, Blondel, Peyre, "Sinkformers", AISTATS 2022,
§4): dx_i/dt = -(n/2) grad_{x_i} OT_1 (envelope theorem: the derivative at fixed optimal potentials),
hence

    d/dt OT_1(mu_t, mu_t) = -2 (1/n) sum_i |dx_i/dt|^2 <= 0,

which ``tests/test_sinkhorn.py`` checks (the identity to 1e-6 and the monotone decrease along a solve).
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ..fields import Sinkhorn, sinkhorn_potentials


def sinkhorn_transport_cost(logits: Float[ArrayLike, "rows cols"], normalisation: Sinkhorn = Sinkhorn(200)
                            ) -> Float[Array, ""]:
    """OT_1(mu, mu) = log n + mean(u) + mean(v) for square logits C_ij = <Q x_i, K x_j> (module docstring).

    Differentiable in the logits (through the unrolled Sinkhorn steps). Exact at convergence of the
    iterations: pass enough (``Sinkhorn(k)``) for the column sums of the weights to be 1 to the accuracy
    needed (their error decays geometrically in k).
    """
    logits = jnp.asarray(logits)
    if logits.ndim != 2 or logits.shape[0] != logits.shape[1]:
        raise ValueError(f"logits must be a square (n, n) matrix of one measure with itself, got shape {logits.shape}")
    if not isinstance(normalisation, Sinkhorn):
        raise TypeError(f"normalisation must be a jaxattn.fields.Sinkhorn(iterations), got {normalisation!r}")
    u, v = sinkhorn_potentials(logits, normalisation)
    return jnp.log(logits.shape[0]) + jnp.mean(u) + jnp.mean(v)
