"""Random attention weights: the (Q, K, V) ensembles of the random-weight experiments, and weights re-drawn
every ``period`` time units.

The logits are beta <Q x_i, K x_j> = beta x_i^T B x_j with B = Q^T K. Ensembles of B (``kq``):

* ``"identity"``: B = I;
* ``"ginibre"``: B = G_1 G_2 / sqrt(d), a product of Gaussian matrices (Q = G_1^T d^{-1/4}, K = G_2 d^{-1/4});
* ``"goe"``: B = (G + G^T) / sqrt(2), the Gaussian orthogonal ensemble (Q = I, K = B);
* ``"gpt2"``: B = 0.02 G, the GPT-2 initialisation scale (Q = I, K = B);

and of the value matrix V (``value``): ``"identity"``; ``"wishart"`` V = G G^T / sqrt(d) (positive
semidefinite); ``"qk"`` / ``"minus_qk"`` V = +-B / normV with normV = sqrt(d) (ginibre), sqrt(d + 1) (goe),
1 (gpt2, identity) (V = Q^T K is the gradient-flow case); ``"ginibre"`` V = G / sqrt(d); ``"gpt2"`` V = 0.02 G
(G: independent standard Gaussian d x d matrices). These are the ensembles of Geshkovski, Letrouit,
Polyanskiy, Rigollet 2023 (perspective) Fig. 4 (identity, ginibre, goe; the authors' code ``randomKQ``,
``randomV``) and of the simuformer simulator of Karagodin, Ge, Polyanskiy, Rigollet 2025 (also ``gpt2``).
Matrices act on column vectors, eq. (2.3); a row-vector code applies V^T.

[`RandomWeights`][jaxattn.fields.RandomWeights] holds a PRNG key instead of matrices: its H heads of (Q, K, V) are a deterministic
function of (key, draw number), drawn where they are used (inside the vector field, re-drawn every
``redraw_period`` time units), so an ensemble of any horizon costs no memory for them and a solve stays one
``diffeqsolve``. The heads' values are divided by H: the heads are averaged, as in the simuformer simulator.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, PRNGKeyArray

KQ_ENSEMBLES = ("identity", "ginibre", "goe", "gpt2")
VALUE_ENSEMBLES = ("identity", "wishart", "qk", "minus_qk", "ginibre", "gpt2")

#: the scale of the GPT-2 initialisation N(0, 0.02^2)
GPT2_SCALE = 0.02


def check_ensembles(kq: str, value: str) -> None:
    """ValueError unless ``kq`` and ``value`` name ensembles of [`KQ_ENSEMBLES`][jaxattn.fields.KQ_ENSEMBLES], [`VALUE_ENSEMBLES`][jaxattn.fields.VALUE_ENSEMBLES]."""
    if kq not in KQ_ENSEMBLES:
        raise ValueError(f"kq must be one of {KQ_ENSEMBLES}, got {kq!r}")
    if value not in VALUE_ENSEMBLES:
        raise ValueError(f"value must be one of {VALUE_ENSEMBLES}, got {value!r}")


def random_attention_matrices(key: PRNGKeyArray, d: int, kq: str = "identity",
                              value: str = "identity") -> tuple[Array, Array, Array]:
    """One draw (Q, K, V), each (d, d), from the ensembles ``kq`` and ``value`` (module docstring)."""
    check_ensembles(kq, value)
    k1, k2, k3 = jax.random.split(key, 3)
    eye = jnp.eye(d)
    if kq == "identity":
        Q, K, B, norm = eye, eye, eye, 1.0
    elif kq == "ginibre":
        G1 = jax.random.normal(k1, (d, d))
        G2 = jax.random.normal(k2, (d, d))
        Q, K = G1.T / d**0.25, G2 / d**0.25
        B, norm = G1 @ G2 / math.sqrt(d), math.sqrt(d)
    elif kq == "goe":
        G = jax.random.normal(k1, (d, d))
        B = (G + G.T) / math.sqrt(2.0)
        Q, K, norm = eye, B, math.sqrt(d + 1.0)
    else:
        B = GPT2_SCALE * jax.random.normal(k1, (d, d))
        Q, K, norm = eye, B, 1.0
    G3 = jax.random.normal(k3, (d, d))
    V = {
        "identity": eye,
        "wishart": G3 @ G3.T / math.sqrt(d),
        "qk": B / norm,
        "minus_qk": -B / norm,
        "ginibre": G3 / math.sqrt(d),
        "gpt2": GPT2_SCALE * G3,
    }[value]
    return Q, K, V


class RandomWeights(eqx.Module):
    """H heads of random (Q, K, V) from the ensembles ``kq`` and ``value`` (module docstring), drawn from a key.

    Draw number p ([`draw`][jaxattn.fields.RandomWeights.draw]) uses ``jax.random.fold_in(key, p)``; a field re-draws every
    ``redraw_period`` time units by drawing number floor(t / redraw_period) at time t
    ([`jaxattn.fields.PreLNAttention`][jaxattn.PreLNAttention] and the other normalisation schemes).

    Args:
        key: a PRNG key (``jax.random.PRNGKey(seed)``).
        dim: the token dimension d.
        heads: the number of heads H (the values are divided by H: the heads are averaged).
        kq, value: the ensembles ([`KQ_ENSEMBLES`][jaxattn.fields.KQ_ENSEMBLES], [`VALUE_ENSEMBLES`][jaxattn.fields.VALUE_ENSEMBLES]).
    """

    key: PRNGKeyArray
    dim: int = eqx.field(static=True)
    heads: int = eqx.field(static=True)
    kq: str = eqx.field(static=True)
    value: str = eqx.field(static=True)

    def __init__(self, key: PRNGKeyArray, dim: int, *, heads: int = 1, kq: str = "ginibre", value: str = "identity"):
        check_ensembles(kq, value)
        for name, k in (("dim", dim), ("heads", heads)):
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
                raise ValueError(f"{name} must be a positive int, got {k!r}")
        self.key = jnp.asarray(key)
        self.dim, self.heads, self.kq, self.value = int(dim), int(heads), kq, value

    def draw(self, index: ArrayLike = 0) -> tuple[Array, Array, Array]:
        """The heads (Q, K, V / H), each (H, d, d), of draw number ``index``."""
        keys = jax.random.split(jax.random.fold_in(self.key, index), self.heads)
        Q, K, V = jax.vmap(lambda k: random_attention_matrices(k, self.dim, self.kq, self.value))(keys)
        return Q, K, V / self.heads
