"""The interpretable hardmax sentiment classifier of paper 000 §6.2.

For a review with token ids x_1..x_n (n = 128):

1. encoder: Z^0 = X E, i.e. z_i^0 = E[x_i] with a trainable embedding E in R^{W x d};
2. transformer: Z^K = K layers of eq. (1.1) with A = I and one trainable alpha > 0
   shared by all layers (alpha = softplus(alpha_raw), so it stays positive; the authors'
   ``clamp(0)`` was a no-op);
3. decoder: zbar = mean_i z_i^K and yhat = sigmoid(w . zbar + v); the decision line is
   H(z) = w . z + v = 0.

Training uses the softmax similarity (2.6) at tau = 1e-3 (``mode="softmax"``); leaders,
figures and the hardmax accuracy use the hardmax layer (``mode="hardmax"``).

Padding
-------
Reviews shorter than n words are padded at the end with ``<pad>`` (id 0). The paper does
*not* mask it (Alcalde, Fantuzzi, Zuazua 2024, §6.1-6.2: the n = 128 rows of X, padding
included, enter eq. (1.1) and the average token zbar = (1/n) (Z^K)^T 1), so ``<pad>`` is
a token like any other: it attracts words, becomes a leader, and its final position is
averaged into the prediction. ``mask_padding=True`` (the default here) applies a
key-padding mask instead, in both modes and everywhere the model is used:

* attention: the keys j with x_j = ``<pad>`` are removed from C_i(Z^k) in (1.1b) and
  from the softmax (2.6) (weight exactly 0); the tie tolerance uses the largest score of
  the real tokens; queries at padded positions attend to the real tokens like the rest,
  but
* pooling: zbar is the mean of the final tokens at the real positions only, and
* leaders: a ``<pad>`` token is never a leader (it is never in any C_i).

The real tokens' trajectories and the logit are then exactly those of the review without
its padding (invariant to appending ``<pad>``), and ``<pad>`` never shows up as a leader.
``mask_padding=False`` reproduces the paper's unmasked model. A review made only of
``<pad>`` has no real token; it is then evaluated unmasked (its tokens are identical, do
not move, and the logit is H(E[<pad>])).
"""

from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray

from .._validate import check_positive
from ..layers import DEFAULT_TIE_RTOL, HardmaxTrajectory, hardmax_layers, hardmax_trajectory, softmax_layers
from .data import PAD_ID

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
    mask_padding: bool = eqx.field(static=True, default=True)

    def __init__(self, vocab_size: int, dim: int, *, key: PRNGKeyArray, num_layers: int = 8, tau: float = 1e-3,
                 tie_rtol: float | None = None, dtype=None, init_scale: float = 1.0, mask_padding: bool = True):
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
        if not isinstance(mask_padding, (bool, np.bool_)):
            raise TypeError(f"mask_padding must be True (mask <pad>) or False (the paper's unmasked model), "
                            f"got {mask_padding!r}")
        self.mask_padding = bool(mask_padding)

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

    def padding_mask(self, ids: Int[Array, " n"]) -> Bool[Array, " n"] | None:
        """Real-token mask ``ids != <pad>`` (all True for an all-pad review); None if ``mask_padding`` is off."""
        if not self.mask_padding:
            return None
        real = jnp.asarray(ids) != PAD_ID
        return real | ~jnp.any(real)

    def transform(self, Z0: Float[Array, "n d"], mode: Mode | str = "softmax",
                  mask: Bool[Array, " n"] | None = None) -> Float[Array, "n d"]:
        """Z^K from Z^0 with the softmax (tau) or hardmax layer; ``mask`` marks the keys that may be attended
        (None: all, the paper's model; see the module docstring)."""
        if mode == "softmax":
            if mask is None:
                return softmax_layers(self.alpha, None, jnp.asarray(self.tau, Z0.dtype), Z0, self.num_layers, False)
            return masked_softmax_layers(self.alpha, jnp.asarray(self.tau, Z0.dtype), Z0, mask, self.num_layers)
        if mode == "hardmax":
            if mask is None:
                return hardmax_layers(self.alpha, None, Z0, self.num_layers, self.tie_rtol)
            return masked_hardmax_layers(self.alpha, Z0, mask, self.num_layers, self.tie_rtol)
        raise ValueError(f"mode must be 'softmax' or 'hardmax', got {mode!r}")

    def decision(self, z: Float[Array, "... d"]) -> Float[Array, "..."]:
        """H(z) = w . z + v (positive side = positive review)."""
        return z @ self.weight + self.bias

    @staticmethod
    def pool(ZK: Float[Array, "n d"], mask: Bool[Array, " n"] | None = None) -> Float[Array, " d"]:
        """The average token zbar: the mean of Z^K over the real positions (all positions if ``mask`` is None)."""
        if mask is None:
            return jnp.mean(ZK, axis=0)
        w = mask.astype(ZK.dtype)
        return (w @ ZK) / jnp.sum(w)

    def logit(self, ids: Int[Array, " n"], mode: Mode | str = "softmax") -> Float[Array, ""]:
        """H(mean token of Z^K) for one review; the probability of 'positive' is its sigmoid."""
        mask = self.padding_mask(ids)
        ZK = self.transform(self.encode(ids), mode, mask)
        return self.decision(self.pool(ZK, mask))

    def __call__(self, ids: Int[Array, " n"], mode: Mode | str = "softmax") -> Float[Array, ""]:
        """Probability that the review is positive."""
        return jax.nn.sigmoid(self.logit(ids, mode))

    def hardmax_trajectory(self, ids: Int[Array, " n"], store_attention: bool = True) -> HardmaxTrajectory:
        """Hardmax trajectory Z^0..Z^K with the leaders (copies of a word count once; ``<pad>`` never leads when
        ``mask_padding``)."""
        mask = self.padding_mask(ids)
        if mask is None:
            return hardmax_trajectory(self.alpha, None, self.encode(ids), self.num_layers, self.tie_rtol,
                                      store_attention)
        return masked_hardmax_trajectory(self.alpha, self.encode(ids), mask, self.num_layers, self.tie_rtol,
                                         store_attention)


# ------------------------------------------------------------------- key-padding-masked layers (A = I)
#
# The layers of jaxattn.layers.hardmax with the keys outside ``mask`` removed: C_i(Z) of eq. (1.1b) is taken
# over the real tokens only, and the softmax (2.6) gives them weight exactly 0. ``mask`` must have at least one
# True entry (SentimentClassifier.padding_mask guarantees it). With mask all True these are the unmasked layers.


def _layer(Z, Lam, h):
    """Eq. (1.1a): Z + h (Lambda Z - Z), h = alpha/(1+alpha) (a leader, Lambda row = e_i, stays bit-exactly)."""
    return Z + h * (Lam @ Z - Z)


def masked_hardmax_attention(Z: Float[Array, "n d"], mask: Bool[Array, " n"],
                             tie_rtol: float = DEFAULT_TIE_RTOL) -> tuple[Float[Array, "n n"], Bool[Array, "n n"]]:
    """(Lambda, C mask) of eqs. (2.3), (1.1b) with A = I over the keys j with ``mask[j]``.

    j is in C_i iff mask[j] and <z_i, z_j> >= max_{l: mask[l]} <z_i, z_l> - tol, with
    tol = tie_rtol * max_{l: mask[l]} |z_l|^2 (the real tokens' largest score).
    """
    G = Z @ Z.T
    neg = jnp.asarray(-jnp.inf, G.dtype)
    tol = tie_rtol * jnp.max(jnp.where(mask, jnp.diagonal(G), neg))
    Gm = jnp.where(mask[None, :], G, neg)
    rowmax = jnp.max(Gm, axis=-1, keepdims=True)
    C = (Gm >= rowmax - tol) & mask[None, :]
    Lam = C / jnp.sum(C, axis=-1, keepdims=True).astype(Z.dtype)
    return Lam.astype(Z.dtype), C


def masked_softmax_attention(Z: Float[Array, "n d"], mask: Bool[Array, " n"],
                             tau: Float[ArrayLike, ""]) -> Float[Array, "n n"]:
    """Softmax similarity (2.6) with A = I over the keys j with ``mask[j]`` (the others get weight 0)."""
    G = (Z @ Z.T) / tau
    return jax.nn.softmax(jnp.where(mask[None, :], G, -jnp.inf), axis=-1)


@eqx.filter_jit
def masked_hardmax_layers(alpha: Float[ArrayLike, ""], Z: Float[Array, "n d"], mask: Bool[Array, " n"],
                          num_layers: int, tie_rtol: float = DEFAULT_TIE_RTOL) -> Float[Array, "n d"]:
    """Z^K from Z^0: ``num_layers`` hardmax layers (1.1a) attending only to the keys in ``mask``."""
    h = alpha / (1 + alpha)

    def body(Zk, _):
        Lam, _ = masked_hardmax_attention(Zk, mask, tie_rtol)
        return _layer(Zk, Lam, h), None

    ZK, _ = jax.lax.scan(body, Z, None, length=num_layers)
    return ZK


@eqx.filter_jit
def masked_softmax_layers(alpha: Float[ArrayLike, ""], tau: Float[ArrayLike, ""], Z: Float[Array, "n d"],
                          mask: Bool[Array, " n"], num_layers: int) -> Float[Array, "n d"]:
    """Z^K from Z^0: ``num_layers`` softmax layers (1.1a)+(2.6) attending only to the keys in ``mask``."""
    h = alpha / (1 + alpha)

    def body(Zk, _):
        return _layer(Zk, masked_softmax_attention(Zk, mask, tau), h), None

    ZK, _ = jax.lax.scan(body, Z, None, length=num_layers)
    return ZK


@eqx.filter_jit
def masked_hardmax_trajectory(alpha: Float[ArrayLike, ""], Z0: Float[Array, "n d"], mask: Bool[Array, " n"],
                              num_layers: int, tie_rtol: float = DEFAULT_TIE_RTOL,
                              store_attention: bool = True) -> HardmaxTrajectory:
    """Layers Z^0..Z^K, attention sets and leaders of the masked hardmax model.

    Leaders as in :func:`jaxattn.layers.hardmax_trajectory` (C_i within the copies of i),
    restricted to the real tokens: a masked position is never a leader.
    """
    h = alpha / (1 + alpha)
    copies = jnp.all(Z0[:, None, :] == Z0[None, :, :], axis=-1)

    def observe(Zk):
        Lam, C = masked_hardmax_attention(Zk, mask, tie_rtol)
        leads = ~jnp.any(C & ~copies, axis=-1) & mask
        return Lam, C, leads

    def body(Zk, _):
        Lam, C, leads = observe(Zk)
        return _layer(Zk, Lam, h), (Zk, C if store_attention else None, leads)

    ZK, (Zs, Cs, leads) = jax.lax.scan(body, Z0, None, length=num_layers)
    _, CK, leadsK = observe(ZK)
    tokens = jnp.concatenate([Zs, ZK[None]], axis=0)
    attention = jnp.concatenate([Cs, CK[None]], axis=0) if store_attention else None
    leads = jnp.concatenate([leads, leadsK[None]], axis=0)
    leader_layer = jnp.where(jnp.any(leads, axis=0), jnp.argmax(leads, axis=0), -1)
    first_copy = jnp.argmax(copies, axis=-1)
    return HardmaxTrajectory(tokens, attention, leads, leader_layer, first_copy)
