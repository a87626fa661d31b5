"""Causal attention with an ALiBi distance decay on the circle (the "lost in the middle" model).

Duerinckx, Geshkovski, Rossi, "Kinetic theory for Transformers and the lost-in-the-middle phenomenon"
(arXiv 2605.09213, 2026), eq. (gpt-dyn-alibi): N tokens theta_1..theta_N on the circle, token j
attends to the earlier tokens k < j (itself excluded) with purely positional weights, an ALiBi bias of
slope lambda / N per position,

    dtheta_j/dt = (1/Z_j) sum_{k<j} e^{-lambda (j - k)/N} w_beta'(theta_j - theta_k),
    Z_j = sum_{k<j} e^{-lambda (j - k)/N},   w_beta(theta) = e^{beta cos theta},
    w_beta'(theta) = -beta sin(theta) e^{beta cos theta}.

Content enters only through w_beta' (the weights are normalised over positions, not by a softmax of
the content); theta_1 has an empty sum and never moves; lambda = 0 is the plain causal mean and
lambda > 0 favours recent tokens. Note the factor beta in w_beta': this time is beta times the time of
the causal (USA) circle model with kernel -sin e^{beta cos}. The mean-field limit, the Volterra-Hardy
correlation profile and the U-shaped retrieval score are in [`jaxattn.analysis.lost_in_middle`][jaxattn.analysis.lost_in_middle].

Evaluated with the shared attention kernel ([`jaxattn.fields.attend`][jaxattn.fields.attend], "mean" normalisation): the
positional factor e^{-lambda(j-k)/N} = e^{-lambda j/N} e^{lambda k/N} splits into a row scale and an
extra key coordinate lambda k / N, and shifting the keys by one position turns the causal mask k <= j into
k < j.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._validate import Check, as_float_array, beta_rule, check_beta, enforce, xp
from ..manifolds import CIRCLE, Circle
from ._attention import attend
from ._base import AbstractField, parameter
from .circle import _angular_velocity, embed_angles


def decay_rule(lam) -> Check:
    """The ALiBi decay rate: finite and >= 0."""
    m = xp(lam)
    v = m.asarray(lam)
    return Check(~m.all(m.isfinite(v) & (v >= 0)),
                 "lam must be finite and >= 0 (the ALiBi decay rate per unit of relative position sigma = j/N; "
                 "0 is the plain causal mean){got}", lambda: str(v))


def check_decay(lam: float | ArrayLike) -> Array:
    """A scalar decay rate lambda >= 0 (`decay_rule`): a ValueError at once when concrete, an
    ``equinox.error_if`` on the returned value when traced (the same message)."""
    lam = as_float_array(lam, "lam")
    if lam.ndim != 0:
        raise ValueError(f"lam must be a scalar decay rate, got shape {lam.shape}")
    return enforce([decay_rule(lam)], lam)


def positional_weights(n: int, lam: Float[ArrayLike, ""]) -> Float[Array, "n n"]:
    """p_jk = e^{-lambda (j - k)/n} / Z_j for k < j, else 0 (row 1 is all zero: theta_1 sees nothing)."""
    j = jnp.arange(n)
    gap = (j[:, None] - j[None, :]).astype(jnp.result_type(lam, float))
    w = jnp.where(gap > 0, jnp.exp(-lam * gap / n), 0.0)
    z = jnp.sum(w, axis=1, keepdims=True)
    return w / jnp.where(z > 0, z, 1.0)


class AlibiCircleAttention(AbstractField):
    """Causal circle attention with ALiBi decay lambda >= 0 (Duerinckx, Geshkovski, Rossi 2026; module docstring).

        dtheta_j/dt = (1/Z_j) sum_{k<j} e^{-lambda (j-k)/N} (-beta) sin(theta_j - theta_k) e^{beta cos(theta_j - theta_k)}

    Args:
        beta: the kernel's inverse temperature > 0 (velocities scale like beta e^beta).
        lam: the decay rate lambda >= 0 per unit of relative position j/N.
        block_size: row blocks of the kernel (``attend``'s argument; None: its default).
    """

    beta: Float[Array, ""] = parameter(check=beta_rule, logit="scale")
    lam: Float[Array, ""] = parameter(check=decay_rule)
    block_size: int | None = eqx.field(static=True)

    manifold: ClassVar[Circle] = CIRCLE
    dim: ClassVar[None] = None
    num_tokens: ClassVar[None] = None

    def __init__(self, beta: float | ArrayLike, lam: float | ArrayLike = 1.0, *, block_size: int | None = None):
        self.beta = check_beta(beta)
        self.lam = check_decay(lam)
        self.block_size = block_size

    def attention_matrix(self, t, theta: Float[ArrayLike, " n"]) -> Float[Array, "1 n n"]:
        """The positional weights p_jk (each row j >= 2 sums to 1; row 1 is zero)."""
        return positional_weights(jnp.shape(theta)[0], self.lam)[None]

    def velocity(self, t, theta: Float[Array, " n"]) -> Float[Array, " n"]:
        n = theta.shape[0]
        if n == 1:
            return jnp.zeros_like(theta)
        dtype = jnp.result_type(theta.dtype, self.beta.dtype)
        x = embed_angles(theta).astype(dtype)
        pos = jnp.arange(n, dtype=dtype)
        queries = jnp.concatenate([self.beta * x[1:], jnp.ones((n - 1, 1), dtype)], axis=1)  # tokens 2..N
        keys = jnp.concatenate([x[:-1], (self.lam * pos[:-1] / n)[:, None]], axis=1)  # tokens 1..N-1
        # row r (token j = r + 2 in 1-based terms) sees keys 0..r, i.e. every k < j; "mean" divides by r + 1
        y = attend(queries, keys, x[:-1], normalisation="mean", causal=True, block_size=self.block_size)
        gaps = jnp.arange(1, n, dtype=dtype)
        z = jnp.cumsum(jnp.exp(-self.lam * gaps / n))  # Z_j for j = 2..N
        scale = gaps * jnp.exp(-self.lam * pos[1:] / n) / z  # count * e^{-lambda j/N} / Z_j
        v = self.beta * _angular_velocity(theta[1:], y * scale[:, None])
        return jnp.concatenate([jnp.zeros(1, v.dtype), v])
