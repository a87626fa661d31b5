"""Interaction energy of Geshkovski et al. 2023 (perspective) and its dissipation identities.

E_beta(X) = (1/(2 beta n^2)) sum_{i,j} exp(beta ⟨x_i, x_j⟩)      (eq. (3.5) at the empirical
measure; Remark 3.7). (USA) is exactly dX/dt = n grad E_beta (eq. (3.11)) and (SA) is
dx_i/dt = (n^2 / Z_i) grad_i E_beta, so along the flows (Remark 3.7)

    USA: dE/dt = (1/n)   sum_i |dx_i/dt|^2,
    SA : dE/dt = (1/n^2) sum_i Z_i |dx_i/dt|^2,     Z_i = sum_k exp(beta ⟨x_i, x_k⟩),

with the opposite sign for V = -I. E_beta lies in [e^{-beta}/(2 beta), e^{beta}/(2 beta)],
the maximum exactly at consensus. Computed in log space (finite for beta up to 1e3).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp
from jaxtyping import Array, ArrayLike, Float

from ..fields import AbstractField, SelfAttention, UnnormalisedSelfAttention, embed_angles
from .._validate import check_beta, is_concrete
from ._checks import check_tokens
from .clusters import pairwise_inner_products


def interaction_energy(x: Float[ArrayLike, "... n d"], beta, *, log: bool = False) -> Float[Array, "..."]:
    """The interaction energy E_beta(X) = (1/(2 beta n^2)) sum_ij exp(beta ⟨x_i, x_j⟩), Geshkovski et al.
    2023 (perspective) eq. (3.5) at the empirical measure (eq. (6.4) on angles, through
    [`circle_energy`][jaxattn.analysis.circle_energy]); computed in log space (a logsumexp).

    **Arguments:**

    - `x`: tokens, float (..., n, d) (any leading axes), finite.
    - `beta`: the inverse temperature, finite and > 0: a scalar, or an array broadcasting against the
        leading axes.
    - `log`: return log E_beta instead, finite wherever the inputs are; default False.

    **Returns:**

    E_beta (or log E_beta), float (...,).

    **Raises:**

    - `ValueError`: beta not finite or <= 0; ``x`` with too few axes or NaN/inf; (concrete values)
        E_beta itself beyond the float range (beta ⟨x_i, x_j⟩ above ~709, e.g. tokens far off the
        unit sphere or a huge beta, or beta below ~1e-308) instead of returning inf: pass ``log=True``.
    """
    x = check_tokens(x)
    beta = check_beta(beta, scalar=False)
    n = x.shape[-2]
    g = pairwise_inner_products(x)
    log_energy = logsumexp(beta * g, axis=(-2, -1)) - jnp.log(2 * beta * n**2)
    if log:
        return log_energy
    energy = jnp.exp(log_energy)
    if is_concrete(energy) and not bool(jnp.all(jnp.isfinite(energy))):
        worst = float(jnp.max(jnp.where(jnp.isfinite(log_energy), log_energy, jnp.inf)))
        raise ValueError(
            f"interaction_energy overflows {energy.dtype} (log E_beta = {worst:.4g} > "
            f"{float(np.log(np.finfo(energy.dtype).max)):.4g}): beta <x_i, x_j> is too large, or beta too small. "
            "Pass log=True for log E_beta, or check that the tokens lie on the unit sphere")
    return energy


def circle_energy(theta: Float[ArrayLike, "... n"], beta) -> Float[Array, "..."]:
    """The interaction energy on the circle, Geshkovski et al. 2023 (perspective) eq. (6.4):
    E_beta(theta) = (1/(2 beta n^2)) sum_ij exp(beta cos(theta_i - theta_j)).

    **Arguments:**

    - `theta`: angles, float (..., n).
    - `beta`: the inverse temperature, finite and > 0 (scalar or broadcasting).

    **Returns:**

    E_beta, float (...,).

    **Raises:**

    - `ValueError`: as [`interaction_energy`][jaxattn.analysis.interaction_energy].
    """
    return interaction_energy(embed_angles(theta), beta)


def energy_rate(field: AbstractField, x: Float[Array, "n d"], t=0.0) -> Float[Array, ""]:
    """dE_beta/dt predicted by the gradient-flow identities (module docstring; Geshkovski et al. 2023
    (perspective) eq. (3.11), Remark 3.7) for Q = K = I, V = +-I:

        USA: dE/dt = +-(1/n) sum_i |dx_i/dt|^2,   SA: dE/dt = +-(1/n^2) sum_i Z_i |dx_i/dt|^2

    (for USA with ``time_rescaled``, the rate in the field's own time t' = e^beta t: e^{-beta} times
    the USA rate).

    **Arguments:**

    - `field`: a [`SelfAttention`][jaxattn.SelfAttention] or
        [`UnnormalisedSelfAttention`][jaxattn.UnnormalisedSelfAttention] with Q = K = I and V = +-I (the
        identities do not hold otherwise; not checked).
    - `x`: tokens on the sphere, float (n, d).
    - `t`: the time; default 0.

    **Returns:**

    dE_beta/dt, a scalar (the sign of V's trace gives the sign).

    **Raises:**

    - `TypeError`: another field.
    """
    v = field.velocity(t, x)
    speed2 = jnp.sum(v * v, axis=-1)
    n = x.shape[0]
    sign = 1.0
    if field.V is not None:
        sign = jnp.sign(jnp.trace(field.V[0]))
    if isinstance(field, UnnormalisedSelfAttention):
        scale = jnp.exp(-field.beta) if field.time_rescaled else 1.0
        return sign * jnp.sum(speed2) / n / scale
    if isinstance(field, SelfAttention):
        z = jnp.sum(jnp.exp(field.beta * pairwise_inner_products(x)), axis=-1)
        return sign * jnp.sum(z * speed2) / n**2
    raise TypeError("energy_rate is defined for SelfAttention and UnnormalisedSelfAttention")
