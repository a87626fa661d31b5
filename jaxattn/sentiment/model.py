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
not move, and the logit is ``H(E[<pad>])``).
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
    """Encoder + K shared hardmax/softmax layers (A = I) + mean token + linear decoder.

    **Arguments:**

    - `vocab_size`: the number of words W (row 0 is ``<pad>``), int >= 2.
    - `dim`: the embedding dimension d, int >= 1.
    - `key`: a JAX PRNG key (E ~ N(0, init_scale^2), alpha ~ U(0.05, 1), (w, v) as ``torch.nn.Linear``).
    - `num_layers`: the number of layers K, int >= 0; default 8.
    - `tau`: the softmax temperature of training, float > 0; default 1e-3.
    - `tie_rtol`: the relative tie tolerance of the hardmax layer; default None (the layer's default in
        float64, 1e-6 otherwise).
    - `dtype`: the parameters' dtype; default None (float64).
    - `init_scale`: the standard deviation of the initial embedding; default 1.
    - `mask_padding`: mask ``<pad>`` keys, pool over the real tokens only (module docstring); default True.
        False is the paper's unmasked model.

    **Raises:**

    - `ValueError`: vocab_size < 2, dim < 1, num_layers < 0 or tau <= 0.
    - `TypeError`: ``mask_padding`` is not a bool.
    """

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
        """The embedding dimension d."""
        return self.embedding.shape[1]

    @property
    def alpha(self) -> Float[Array, ""]:
        """alpha = softplus(alpha_raw) > 0."""
        return jax.nn.softplus(self.alpha_raw)

    def encode(self, ids: Int[Array, " n"]) -> Float[Array, "n d"]:
        """Z^0 = X E (an embedding lookup).

        **Arguments:**

        - `ids`: token ids, int (n,).

        **Returns:**

        Z^0, float (n, d).
        """
        return self.embedding[ids]

    def padding_mask(self, ids: Int[Array, " n"]) -> Bool[Array, " n"] | None:
        """Real-token mask ``ids != <pad>`` (all True for an all-pad review); None if ``mask_padding`` is off.

        **Arguments:**

        - `ids`: token ids, int (n,).

        **Returns:**

        Bool (n,), or None.
        """
        if not self.mask_padding:
            return None
        real = jnp.asarray(ids) != PAD_ID
        return real | ~jnp.any(real)

    def transform(self, Z0: Float[Array, "n d"], mode: Mode | str = "softmax",
                  mask: Bool[Array, " n"] | None = None) -> Float[Array, "n d"]:
        """Z^K from Z^0 with the softmax (tau) or hardmax layer; ``mask`` marks the keys that may be attended
        (None: all, the paper's model; see the module docstring).

        **Arguments:**

        - `Z0`: the initial tokens, float (n, d).
        - `mode`: "softmax" (default) or "hardmax".
        - `mask`: the keys that may be attended, bool (n,); default None (all).

        **Returns:**

        Z^K, float (n, d).

        **Raises:**

        - `ValueError`: ``mode`` is neither "softmax" nor "hardmax".
        """
        if mode == "softmax":
            return softmax_layers(self.alpha, None, jnp.asarray(self.tau, Z0.dtype), Z0, self.num_layers, False,
                                  key_mask=mask)
        if mode == "hardmax":
            return hardmax_layers(self.alpha, None, Z0, self.num_layers, self.tie_rtol, key_mask=mask)
        raise ValueError(f"mode must be 'softmax' or 'hardmax', got {mode!r}")

    def decision(self, z: Float[Array, "... d"]) -> Float[Array, "..."]:
        """H(z) = w . z + v (positive side = positive review).

        **Arguments:**

        - `z`: points, float (..., d).

        **Returns:**

        H(z), float (...).
        """
        return z @ self.weight + self.bias

    @staticmethod
    def pool(ZK: Float[Array, "n d"], mask: Bool[Array, " n"] | None = None) -> Float[Array, " d"]:
        """The average token zbar: the mean of Z^K over the real positions (all positions if ``mask`` is None).

        **Arguments:**

        - `ZK`: the final tokens, float (n, d).
        - `mask`: the real positions, bool (n,); default None (all).

        **Returns:**

        zbar, float (d,).
        """
        if mask is None:
            return jnp.mean(ZK, axis=0)
        w = mask.astype(ZK.dtype)
        return (w @ ZK) / jnp.sum(w)

    def logit(self, ids: Int[Array, " n"], mode: Mode | str = "softmax") -> Float[Array, ""]:
        """H(mean token of Z^K) for one review; the probability of 'positive' is its sigmoid.

        **Arguments:**

        - `ids`: token ids of one review, int (n,).
        - `mode`: "softmax" (default) or "hardmax".

        **Returns:**

        The logit, a float scalar.
        """
        mask = self.padding_mask(ids)
        ZK = self.transform(self.encode(ids), mode, mask)
        return self.decision(self.pool(ZK, mask))

    def __call__(self, ids: Int[Array, " n"], mode: Mode | str = "softmax") -> Float[Array, ""]:
        """Probability that the review is positive.

        **Arguments:**

        - `ids`: token ids of one review, int (n,).
        - `mode`: "softmax" (default) or "hardmax".

        **Returns:**

        sigmoid of the ``logit``, a float scalar in (0, 1).
        """
        return jax.nn.sigmoid(self.logit(ids, mode))

    def hardmax_trajectory(self, ids: Int[Array, " n"], store_attention: bool = True) -> HardmaxTrajectory:
        """Hardmax trajectory Z^0..Z^K with the leaders (copies of a word count once; ``<pad>`` never leads when
        ``mask_padding``).

        **Arguments:**

        - `ids`: token ids of one review, int (n,).
        - `store_attention`: keep the attention matrices of every layer; default True.

        **Returns:**

        A [`HardmaxTrajectory`][jaxattn.layers.HardmaxTrajectory].
        """
        return hardmax_trajectory(self.alpha, None, self.encode(ids), self.num_layers, self.tie_rtol,
                                  store_attention, key_mask=self.padding_mask(ids))
