"""The interpretable hardmax sentiment classifier of paper 000 §6.2.

For a review with token ids x_1..x_n (n = 128):

1. encoder: Z^0 = X E, i.e. z_i^0 = E[x_i] with a trainable embedding E in R^{W x d};
2. transformer: Z^K = K layers of eq. (1.1) with A = I and one trainable alpha > 0
   shared by all layers (alpha = softplus(alpha_raw), so it stays positive; the authors'
   ``clamp(0)`` was a no-op);
3. decoder: zbar = mean_i z_i^K and yhat = sigmoid(w . zbar + v); the decision line is
   H(z) = w . z + v = 0.

Training uses the softmax similarity (2.6) at tau = 1e-3 (``mode="softmax"``); leaders,
figures and the hardmax accuracy use the hardmax layer (``mode="hardmax"``). No padding
mask: ``<pad>`` tokens attend and are averaged, as in the paper.
"""

from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._validate import check_positive
from ..layers import DEFAULT_TIE_RTOL, HardmaxTrajectory, hardmax_layers, hardmax_trajectory, softmax_layers

Mode = Literal["softmax", "hardmax"]  # methods take `Mode | str` and raise their own ValueError for other strings


def _inverse_softplus(y: float) -> float:
    import math

    return y + math.log(-math.expm1(-y))


class SentimentClassifier(eqx.Module):
    """Encoder + K shared hardmax/softmax layers (A = I) + mean token + linear decoder."""

    embedding: Float[Array, "W d"]
    alpha_raw: Float[Array, ""]
    weight: Float[Array, " d"]
    bias: Float[Array, ""]
    num_layers: int = eqx.field(static=True)
    tau: float = eqx.field(static=True)
    tie_rtol: float = eqx.field(static=True)

    def __init__(self, vocab_size: int, dim: int, *, key: PRNGKeyArray, num_layers: int = 8, tau: float = 1e-3,
                 tie_rtol: float | None = None, dtype=None, init_scale: float = 1.0):
        if vocab_size < 2 or dim < 1:
            raise ValueError(f"need vocab_size >= 2 and dim >= 1, got {vocab_size}, {dim}")
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        check_positive("tau", tau)
        dtype = dtype or jnp.result_type(float)
        k1, k2, k3, k4 = jax.random.split(key, 4)
        # the authors' initialisation: E ~ N(0, 1) (init_scale = 1), alpha ~ U(0, 1), torch.nn.Linear for (w, v)
        self.embedding = init_scale * jax.random.normal(k1, (vocab_size, dim), dtype)
        alpha0 = float(jax.random.uniform(k2, (), minval=0.05, maxval=1.0))
        self.alpha_raw = jnp.asarray(_inverse_softplus(alpha0), dtype)
        bound = 1.0 / dim ** 0.5
        self.weight = jax.random.uniform(k3, (dim,), dtype, -bound, bound)
        self.bias = jax.random.uniform(k4, (), dtype, -bound, bound)
        self.num_layers = int(num_layers)
        self.tau = float(tau)
        if tie_rtol is None:  # relative tie tolerance of the hardmax evaluation (see jaxattn.layers.hardmax)
            tie_rtol = DEFAULT_TIE_RTOL if jnp.dtype(dtype) == jnp.float64 else 1e-6
        self.tie_rtol = float(tie_rtol)

    @property
    def dim(self) -> int:
        return self.embedding.shape[1]

    @property
    def alpha(self) -> Float[Array, ""]:
        """alpha = softplus(alpha_raw) > 0."""
        return jax.nn.softplus(self.alpha_raw)

    def encode(self, ids: Int[Array, " n"]) -> Float[Array, "n d"]:
        """Z^0 = X E (an embedding lookup)."""
        return self.embedding[ids]

    def transform(self, Z0: Float[Array, "n d"], mode: Mode | str = "softmax") -> Float[Array, "n d"]:
        """Z^K from Z^0 with the softmax (tau) or hardmax layer."""
        if mode == "softmax":
            return softmax_layers(self.alpha, None, jnp.asarray(self.tau, Z0.dtype), Z0, self.num_layers, False)
        if mode == "hardmax":
            return hardmax_layers(self.alpha, None, Z0, self.num_layers, self.tie_rtol)
        raise ValueError(f"mode must be 'softmax' or 'hardmax', got {mode!r}")

    def decision(self, z: Float[Array, "... d"]) -> Float[Array, "..."]:
        """H(z) = w . z + v (positive side = positive review)."""
        return z @ self.weight + self.bias

    def logit(self, ids: Int[Array, " n"], mode: Mode | str = "softmax") -> Float[Array, ""]:
        """H(mean token of Z^K) for one review; the probability of 'positive' is its sigmoid."""
        ZK = self.transform(self.encode(ids), mode)
        return self.decision(jnp.mean(ZK, axis=0))

    def __call__(self, ids: Int[Array, " n"], mode: Mode | str = "softmax") -> Float[Array, ""]:
        """Probability that the review is positive."""
        return jax.nn.sigmoid(self.logit(ids, mode))

    def hardmax_trajectory(self, ids: Int[Array, " n"], store_attention: bool = True) -> HardmaxTrajectory:
        """Hardmax trajectory Z^0..Z^K with the leaders (copies of a word count once)."""
        return hardmax_trajectory(self.alpha, None, self.encode(ids), self.num_layers, self.tie_rtol,
                                  store_attention)
