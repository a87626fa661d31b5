"""Self-attention dynamics in R^d without normalisation (Geshkovski et al. 2023 (emergence)).

Eq. (1.1)-(1.2) of Geshkovski et al. 2023 (emergence) (also Geshkovski et al. 2023 (perspective) eq. (7.1)):

    dx_i/dt = sum_j P_ij V x_j,    P_ij = exp(beta ⟨Q x_i, K x_j⟩) / sum_l exp(beta ⟨Q x_i, K x_l⟩).

Geshkovski et al. 2023 (emergence) has no beta (beta = 1); scaling the data by s is the same as beta = s^2.
Tokens grow like e^{t lambda_1(V)}, so the theorems are stated for the rescaled tokens
z_i = e^{-tV} x_i, Geshkovski et al. 2023 (emergence) eq. (3.1) / Geshkovski et al. 2023 (perspective) eq. (7.3):

    dz_i/dt = sum_j P_ij(t) V (z_j - z_i),    P computed from y_i = e^{tV} z_i,

a non-autonomous system with the same attention matrix P(t) as (1.1).
"""

from __future__ import annotations

from collections.abc import Sequence
import abc
from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.scipy.linalg as jsl
from jaxtyping import Array, ArrayLike, Float

from .._validate import as_finite_array, beta_rule, check_beta
from ..manifolds import EUCLIDEAN, Euclidean
from ._attention import Sinkhorn, attend, attention_weights, check_normalisation
from ._base import AbstractField, parameter


def _matrix(M, name: str, d: int | None = None, square: bool = False) -> Array:
    M = as_finite_array(M, name, 2, "a matrix")
    if square and M.shape[0] != M.shape[1]:
        raise ValueError(f"{name} must be square (d, d), got shape {M.shape}")
    if d is not None and M.shape[1] != d:
        raise ValueError(f"{name} acts on dimension {M.shape[1]} but V is {d} x {d}")
    return M


class AbstractEuclideanAttention(AbstractField):
    """Attention in R^d with parameters Q, K, V, beta (module docstring).

    Fields and ``__init__`` live here; a concrete class supplies [`tokens`][jaxattn.fields.AbstractEuclideanAttention.tokens] (the tokens the
    logits are computed from) and `velocity`. ``normalisation=jaxattn.fields.Sinkhorn(k)``
    replaces the row softmax P by doubly stochastic attention (Sander, Ablin, Blondel, Peyre,
    "Sinkformers", AISTATS 2022): rows and columns of P sum to 1 (rows exactly, columns after k
    Sinkhorn iterations; [`Sinkhorn`][jaxattn.Sinkhorn]).

    **Arguments:**

    - `Q`: the query matrix, finite, float (m, d).
    - `K`: the key matrix, finite, float (m, d) (the same m as ``Q``).
    - `V`: the value matrix, finite, float (d, d).
    - `beta`: the inverse temperature, a finite scalar > 0; default 1 (the paper's).
    - `causal`: token i attends to tokens j <= i only; default False.
    - `block_size`: the row block of the dense kernel (static); default None: automatic
        ([`jaxattn.fields.default_block_size`][jaxattn.fields.default_block_size]).
    - `normalisation`: ``"softmax"`` (default) or a [`Sinkhorn`][jaxattn.Sinkhorn] (doubly stochastic attention).

    **Raises:**

    - `ValueError`: a matrix that is not 2-d or has NaN/inf; V not square; Q or K acting on another
        dimension than V; Q and K with different numbers of rows; beta not a finite scalar > 0.
    - `TypeError`: a non-real value.
    """

    Q: Float[Array, "m d"] = parameter(logit="matrix")
    K: Float[Array, "m d"] = parameter(logit="matrix")
    V: Float[Array, "d d"]
    beta: Float[Array, ""] = parameter(check=beta_rule, logit="scale")
    causal: bool = eqx.field(static=True)
    block_size: int | None = eqx.field(static=True)
    normalisation: Literal["softmax"] | Sinkhorn = eqx.field(static=True)

    manifold: ClassVar[Euclidean] = EUCLIDEAN
    num_tokens: ClassVar[None] = None

    def __init__(self, Q: ArrayLike | Sequence, K: ArrayLike | Sequence, V: ArrayLike | Sequence, *, beta: float | ArrayLike = 1.0,
                 causal: bool = False, block_size: int | None = None,
                 normalisation: Literal["softmax"] | Sinkhorn | str = "softmax"):
        self.normalisation = check_normalisation(normalisation, ("softmax",))
        self.V = _matrix(V, "V", square=True)
        d = self.V.shape[0]
        self.Q = _matrix(Q, "Q", d)
        self.K = _matrix(K, "K", d)
        if self.Q.shape[0] != self.K.shape[0]:
            raise ValueError(f"Q and K must have the same number of rows; got {self.Q.shape}, {self.K.shape}")
        self.beta = check_beta(beta)
        self.causal = bool(causal)
        self.block_size = block_size

    @abc.abstractmethod
    def tokens(self, t: Float[ArrayLike, ""], x: Float[Array, "n d"]) -> Float[Array, "n d"]:
        """The tokens the attention logits are computed from at time t.

        **Arguments:**

        - `t`: the time, a scalar.
        - `x`: the state, float (n, d).

        **Returns:**

        The tokens, float (n, d): the state itself, or e^{tV} z in the rescaled frame.
        """

    @property
    def dim(self) -> int:
        """The token dimension d (the size of V)."""
        return self.V.shape[0]

    def attention_matrix(self, t, x: Float[Array, "n d"]) -> Float[Array, "1 n n"]:
        """P(t), Geshkovski et al. 2023 (emergence) eq. (1.2) (the same in the original and the rescaled frame):
        P_ij = exp(beta ⟨Q y_i, K y_j⟩) / sum_l exp(beta ⟨Q y_i, K y_l⟩), y = [`tokens`][jaxattn.fields.AbstractEuclideanAttention.tokens]``(t, x)``.

        **Arguments:**

        - `t`: the time, a scalar.
        - `x`: the state, float (n, d).

        **Returns:**

        Float (1, n, n) (one head), rows summing to 1.
        """
        y = self.tokens(t, x)
        return attention_weights(self.beta * (y @ self.Q.T) @ (y @ self.K.T).T, causal=self.causal,
                                 normalisation=self.normalisation)[None]

    def _attend(self, y, values):
        return attend(self.beta * (y @ self.Q.T), y @ self.K.T, values,
                      causal=self.causal, block_size=self.block_size, normalisation=self.normalisation)


class EuclideanSelfAttention(AbstractEuclideanAttention):
    """Geshkovski et al. 2023 (emergence) eq. (1.1): dx_i/dt = sum_j P_ij V x_j in R^d (no layer norm),
    P_ij = exp(beta ⟨Q x_i, K x_j⟩) / sum_l exp(beta ⟨Q x_i, K x_l⟩), eq. (1.2).

    The constructor takes the arguments of [`AbstractEuclideanAttention`][jaxattn.fields.AbstractEuclideanAttention].
    """

    def tokens(self, t, x: Float[Array, "n d"]) -> Float[Array, "n d"]:
        return x

    def velocity(self, t, x: Float[Array, "n d"]) -> Float[Array, "n d"]:
        return self._attend(x, x @ self.V.T)


class RescaledSelfAttention(AbstractEuclideanAttention):
    """Geshkovski et al. 2023 (emergence) eq. (3.1): rescaled tokens z = e^{-tV} x.

        dz_i/dt = sum_j P_ij V (z_j - z_i).

    Recover the original tokens with [`to_original`][jaxattn.fields.RescaledSelfAttention.to_original] (x(t) = e^{tV} z(t)).
    A non-autonomous field: P(t) is computed from y_i = e^{tV} z_i.

    The constructor takes the arguments of [`AbstractEuclideanAttention`][jaxattn.fields.AbstractEuclideanAttention].
    """

    def propagator(self, t) -> Float[Array, "d d"]:
        """The propagator e^{tV} (``jax.scipy.linalg.expm``: differentiable in t and V).

        **Arguments:**

        - `t`: the time, a scalar.

        **Returns:**

        Float (d, d).
        """
        return jsl.expm(t * self.V)

    def tokens(self, t, z: Float[Array, "n d"]) -> Float[Array, "n d"]:
        """The original tokens y = e^{tV} z, row by row.

        **Arguments:**

        - `t`: the time, a scalar.
        - `z`: rescaled tokens, float (n, d).

        **Returns:**

        Float (n, d).
        """
        return z @ self.propagator(t).T

    def velocity(self, t, z: Float[Array, "n d"]) -> Float[Array, "n d"]:
        """dz_i/dt = sum_j P_ij(t) V (z_j - z_i), eq. (3.1), P computed from y = e^{tV} z.

        **Arguments:**

        - `t`: the time, a scalar.
        - `z`: rescaled tokens, float (n, d).

        **Returns:**

        dz/dt, float (n, d).
        """
        y = self.tokens(t, z)
        # sum_j P_ij V (z_j - z_i) = (P Z V^T)_i - (Z V^T)_i because rows of P sum to 1
        zv = z @ self.V.T
        return self._attend(y, zv) - zv

    def to_original(self, ts: Float[Array, " T"], zs: Float[Array, "T n d"]) -> Float[Array, "T n d"]:
        """The original tokens x(t) = e^{tV} z(t) at each saved time.

        **Arguments:**

        - `ts`: the saved times, float (T,).
        - `zs`: the saved rescaled tokens, float (T, n, d) (a trajectory's ``xs``).

        **Returns:**

        Float (T, n, d).
        """
        return jax.vmap(self.tokens)(ts, zs)
