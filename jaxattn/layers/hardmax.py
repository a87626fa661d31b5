"""Pure-attention hardmax transformer as a discrete dynamical system (paper 000).

Alcalde, Fantuzzi, Zuazua, *Clustering in pure-attention hardmax transformers and its
role in sentiment analysis* (arXiv 2407.01602, 2024; SIAM J. Math. Data Sci. 2025).
Equation numbers below are the paper's.

The model
---------
Tokens z_1..z_n in R^d are the rows of Z. One layer is, eq. (1.1a),

    z_i^{k+1} = z_i^k + alpha/(1+alpha) * (1/|C_i(Z^k)|) * sum_{j in C_i(Z^k)} (z_j^k - z_i^k),

with the attention set, eq. (1.1b),

    C_i(Z) = { j in [n] : ⟨A z_i, z_j⟩ = max_l ⟨A z_i, z_l⟩ }     (j = i included),

A symmetric positive definite (Assumption 2.1(i)), value matrix V = alpha I with
alpha > 0 (Assumption 2.1(ii)) and the scalar normalisation N(Z) = Z / (1 + alpha),
eq. (2.4). Equivalently Z^{k+1} = (I + alpha Lambda(Z^k)) Z^k / (1 + alpha) with the
row-stochastic hardmax matrix Lambda_ij = 1/|C_i| on C_i, eq. (2.3). We evaluate the
form (1.1a), Z + h (Lambda Z - Z) with h = alpha/(1+alpha): a leader (Lambda row = e_i)
then stays *bit-exactly* in place, as Lemma 5.1(ii) says it should.

The layers are a ``jax.lax.scan``: this is a map, not an ODE (the hardmax ODE is not
well-posed, paper §1.3), so it does not go through diffrax. The modules check their
arguments; the functions [`hardmax_layers`][jaxattn.layers.hardmax_layers], [`hardmax_trajectory`][jaxattn.layers.hardmax_trajectory] and
[`softmax_layers`][jaxattn.layers.softmax_layers] are the unchecked scans behind them, for models that build their own
tokens (e.g. `jaxattn.sentiment.SentimentClassifier`).

Ties
----
Ties are averaged over *all* maximisers (never ``argmax``, which picks one). In floating
point an exact ``==`` creates false leaders (a follower one ulp past its leader) and
breaks true ones; scores within

    tol = tie_rtol * max_i ⟨A z_i, z_i⟩       (default tie_rtol = 1e-14, float64)

of the row maximum count as tied. ``tie_rtol = 0`` is the exact mode of the authors'
code. In float32 use about 1e-6. A larger tolerance changes the dynamics (near-ties pull
leaders), so keep it small.

Leaders
-------
Definition 1.1: z_i is a leader if C_i(Z^k) = {i} at some layer k; it is then frozen
(Lemma 5.1(ii)). Real text has duplicate tokens (repeated words, padding), which the
theorem excludes: identical tokens have identical attention sets forever, and under the
literal definition no copy of a leading word would be a leader. Convention used here:
token i leads at layer k if every index in C_i(Z^k) is a *copy* of i (z_j^0 = z_i^0
bit-exactly). For distinct inputs this is exactly Definition 1.1. ``leader_layer[i]`` is
the first such k in 0..K (-1 if none); leader *counts* (``num_leaders``) count distinct
initial tokens, i.e. each repeated word once.

Limit polytope and attracting set
---------------------------------
Theorem 1.1: every token converges to a point of a finite set S on the boundary of the
polytope conv(leader limits); `jaxattn.layers.polytope` computes its vertices and S.

The softmax variant, eq. (2.6), replaces Lambda by softmax(⟨A z_i, z_j⟩/tau) and tends
to the hardmax layer as tau -> 0 away from near-ties.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from .._validate import as_float_array, check_finite, check_positive, enforce, finite_rule, is_concrete

__all__ = [
    "DEFAULT_TIE_RTOL",
    "HardmaxTransformer",
    "SoftmaxTransformer",
    "HardmaxTrajectory",
    "attention_sets",
    "gram_matrix",
    "hardmax_attention",
    "hardmax_layers",
    "hardmax_trajectory",
    "softmax_attention",
    "softmax_layers",
]

#: default relative tie tolerance (times max_i <A z_i, z_i>) for float64
DEFAULT_TIE_RTOL = 1e-14

#: (n, d) tokens as the transformers' methods accept them: annotated wide, because ``_check_tokens``
#: raises its own ValueError for another rank (with the vmap/reshape advice), a dimension or NaN
Tokens = Float[ArrayLike, "..."]


# ----------------------------------------------------------------------------- checks


def _check_scalar(name: str, value, dtype=None) -> Array:
    """A finite scalar > 0 (alpha of Assumption 2.1(ii), the temperature tau of (2.6))."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a positive real number, got a bool")
    a = as_float_array(value, name) if dtype is None else jnp.asarray(value, dtype=dtype)
    if a.shape != ():
        raise ValueError(f"{name} must be a scalar, got shape {a.shape}")
    check_positive(name, a)
    return a


def _check_A(A, d: int | None = None) -> Array | None:
    """Validate A as symmetric positive definite (Assumption 2.1(i))."""
    if A is None:
        return None
    A = as_float_array(A, "A")
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square (d, d) matrix, got shape {A.shape}")
    if d is not None and A.shape[0] != d:
        raise ValueError(f"A is {A.shape[0]} x {A.shape[0]} but the tokens live in R^{d}; pass a {d} x {d} matrix")
    check_finite(A, "A")
    if is_concrete(A):
        An = np.asarray(A, dtype=np.float64)
        scale = max(np.max(np.abs(An)), 1e-300)
        asym = np.max(np.abs(An - An.T))
        if asym > 1e-12 * scale:
            raise ValueError(
                f"A must be symmetric (Assumption 2.1(i)); max |A - A^T| = {asym:.3g}. "
                "Only the symmetric part of a bilinear score matters for ties in the paper's theory; "
                "pass (A + A.T) / 2 if that is what you mean (non-symmetric A is an open problem, paper §7)."
            )
        lam_min = np.linalg.eigvalsh(0.5 * (An + An.T))[0]
        if lam_min <= 0:
            raise ValueError(
                f"A must be positive definite (Assumption 2.1(i)); its smallest eigenvalue is {lam_min:.3g}. "
                "Use e.g. A = B.T @ B + eps * I with B invertible, or A = I (the sentiment model's choice)."
            )
    return A


def _check_tokens(Z, d: int | None = None, name: str = "Z") -> Array:
    Z = as_float_array(Z, name)
    if Z.ndim != 2:
        raise ValueError(
            f"{name} must be an (n, d) array of n tokens in R^d, got shape {Z.shape}; "
            "use jax.vmap for a batch of configurations and reshape 1-D tokens to (n, 1)"
        )
    if Z.shape[0] < 1 or Z.shape[1] < 1:
        raise ValueError(f"{name} must have at least one token and d >= 1, got shape {Z.shape}")
    if d is not None and Z.shape[1] != d:
        raise ValueError(f"{name} has tokens in R^{Z.shape[1]} but A is {d} x {d}")
    return enforce([finite_rule(Z, name)], Z)


def _check_tie_rtol(tie_rtol) -> float:
    t = float(tie_rtol)
    if not np.isfinite(t) or t < 0:
        raise ValueError(f"tie_rtol must be >= 0 (0 = exact ties), got {tie_rtol}")
    return t


def _check_layers(num_layers) -> int:
    if isinstance(num_layers, bool) or int(num_layers) != num_layers or num_layers < 0:
        raise ValueError(f"num_layers must be a non-negative integer (the depth K), got {num_layers!r}")
    return int(num_layers)


# ----------------------------------------------------------------------- attention maps


def gram_matrix(Z: Float[Array, "n d"], A: Float[Array, "d d"] | None = None) -> Float[Array, "n n"]:
    """The score matrix G_ij = ⟨A z_i, z_j⟩ of eq. (1.1b) (Alcalde, Fantuzzi, Zuazua 2024).

    **Arguments:**

    - `Z`: tokens, float (n, d).
    - `A`: the attention matrix, float (d, d); default None: the identity.

    **Returns:**

    G = Z A Z^T, float (n, n).
    """
    ZA = Z if A is None else Z @ A
    return ZA @ Z.T


def hardmax_attention(
    Z: Float[Array, "n d"],
    A: Float[Array, "d d"] | None = None,
    tie_rtol: float = DEFAULT_TIE_RTOL,
    key_mask: Bool[Array, " n"] | None = None,
) -> tuple[Float[Array, "n n"], Bool[Array, "n n"]]:
    """The hardmax similarity matrix Lambda, eq. (2.3), and the attention-set mask C, eq. (1.1b)
    (Alcalde, Fantuzzi, Zuazua 2024).

    ``mask[i, j]`` is True iff j is in C_i(Z): ⟨A z_i, z_j⟩ is within
    ``tie_rtol * max_l ⟨A z_l, z_l⟩`` of the row maximum (the self-index included).
    Lambda is the mask divided by its row sums, so ties are averaged. The mask is built
    from comparisons, so gradients treat it as constant (the a.e. derivative).

    **Arguments:**

    - `Z`: tokens, float (n, d).
    - `A`: the symmetric positive definite attention matrix, float (d, d); default None: the identity.
    - `tie_rtol`: relative tie tolerance, >= 0 (module docstring); default
        [`DEFAULT_TIE_RTOL`][jaxattn.layers.DEFAULT_TIE_RTOL] = 1e-14; 0 = exact ties.
    - `key_mask`: bool (n,) restricting the keys: only j with ``key_mask[j]`` can be in C_i, and the
        row maximum and the tie scale are taken over those keys (e.g. a review's real words, not its
        padding; at least one entry must be True); default None: every key, eq. (1.1b) as written.

    **Returns:**

    ``(Lambda, mask)``: the row-stochastic float (n, n) matrix and the bool (n, n) mask of the C_i.
    No argument checks (the transformers validate).
    """
    G = gram_matrix(Z, A)
    if key_mask is None:
        tol = tie_rtol * jnp.max(jnp.diagonal(G))
        mask = G >= jnp.max(G, axis=-1, keepdims=True) - tol
    else:
        neg = jnp.asarray(-jnp.inf, G.dtype)
        tol = tie_rtol * jnp.max(jnp.where(key_mask, jnp.diagonal(G), neg))
        G = jnp.where(key_mask[None, :], G, neg)
        mask = (G >= jnp.max(G, axis=-1, keepdims=True) - tol) & key_mask[None, :]
    Lam = mask / jnp.sum(mask, axis=-1, keepdims=True).astype(Z.dtype)
    return Lam.astype(Z.dtype), mask


def softmax_attention(
    Z: Float[Array, "n d"], A: Float[Array, "d d"] | None = None, tau: float | Array = 1.0,
    key_mask: Bool[Array, " n"] | None = None,
) -> Float[Array, "n n"]:
    """The softmax similarity matrix of eq. (2.6) (Alcalde, Fantuzzi, Zuazua 2024):
    softmax_j(⟨A z_i, z_j⟩ / tau), max-subtracted.

    **Arguments:**

    - `Z`: tokens, float (n, d).
    - `A`: the attention matrix, float (d, d); default None: the identity.
    - `tau`: the temperature, > 0; default 1.
    - `key_mask`: bool (n,); keys j outside it get weight exactly 0 (at least one entry True);
        default None: every key.

    **Returns:**

    The row-stochastic float (n, n) matrix. No argument checks.
    """
    logits = gram_matrix(Z, A) / tau
    if key_mask is not None:
        logits = jnp.where(key_mask[None, :], logits, -jnp.inf)
    return jax.nn.softmax(logits, axis=-1)


def _layer(Z, Lam, h):
    """Eq. (1.1a) with the row-stochastic Lambda: Z + h (Lambda Z - Z), h = alpha/(1+alpha)."""
    return Z + h * (Lam @ Z - Z)


def attention_sets(mask: Bool[ArrayLike, "n n"]) -> list[tuple[int, ...]]:
    """The attention sets C_i of eq. (1.1b) as index tuples, from an attention mask.

    **Arguments:**

    - `mask`: bool (n, n), ``mask[i, j]`` True iff j is in C_i (as
        [`hardmax_attention`][jaxattn.layers.hardmax_attention] returns).

    **Returns:**

    A list of n tuples of 0-based indices (host NumPy; eager only).
    """
    m = np.asarray(mask)
    return [tuple(int(j) for j in np.flatnonzero(row)) for row in m]


# --------------------------------------------------------------------------- modules


class HardmaxTrajectory(eqx.Module):
    """Output of [`HardmaxTransformer.trajectory`][jaxattn.layers.HardmaxTransformer.trajectory]: the layers of
    eq. (1.1a), the attention sets (1.1b) and the leaders (Definition 1.1) of Alcalde, Fantuzzi, Zuazua
    2024.

    **Attributes:**

    - `tokens`: float (K+1, n, d), the configurations Z^0..Z^K.
    - `attention`: bool (K+1, n, n), the masks of C_i(Z^k) for k = 0..K (None if not stored).
    - `leads`: bool (K+1, n), whether token i leads at layer k (C_i(Z^k) within i's copies).
    - `leader_layer`: int (n,), the first layer k <= K at which token i leads, -1 if never.
    - `first_copy`: int (n,), the smallest index j with z_j^0 == z_i^0 (the copy class of i).
    """

    tokens: Float[Array, "K1 n d"]
    attention: Bool[Array, "K1 n n"] | None
    leads: Bool[Array, "K1 n"]
    leader_layer: Int[Array, " n"]
    first_copy: Int[Array, " n"]

    @property
    def final(self) -> Float[Array, "n d"]:
        """The last configuration Z^K, float (n, d)."""
        return self.tokens[-1]

    @property
    def is_leader(self) -> Bool[Array, " n"]:
        """Leader (by layer K) per token, bool (n,); all copies of a leading word are marked."""
        return self.leader_layer >= 0

    @property
    def num_leaders(self) -> Int[Array, ""]:
        """Number of distinct leaders (copies counted once) determined by layer K, an int scalar."""
        return jnp.sum(self.is_leader & (self.first_copy == jnp.arange(self.first_copy.shape[-1])), axis=-1)

    @property
    def num_initial_leaders(self) -> Int[Array, ""]:
        """Number of distinct leaders determined at layer 0 (Table 1's m_0), an int scalar."""
        own = self.first_copy == jnp.arange(self.first_copy.shape[-1])
        return jnp.sum((self.leader_layer == 0) & own, axis=-1)

    def leader_indices(self) -> np.ndarray:
        """The distinct leaders (Definition 1.1; the first copy of each).

        **Returns:**

        Their 0-based indices, a NumPy int array (eager only).
        """
        own = np.asarray(self.first_copy) == np.arange(self.first_copy.shape[-1])
        return np.flatnonzero(np.asarray(self.is_leader) & own)

    def attention_sets(self, k: int) -> list[tuple[int, ...]]:
        """The attention sets C_i(Z^k), eq. (1.1b), at layer k.

        **Arguments:**

        - `k`: the layer, 0 <= k <= K (the masks must have been stored: ``store_attention=True``).

        **Returns:**

        A list of n tuples of 0-based indices.
        """
        return attention_sets(self.attention[k])


class HardmaxTransformer(eqx.Module):
    """K identical pure-attention hardmax layers, eq. (1.1) of Alcalde, Fantuzzi, Zuazua, "Clustering in
    pure-attention hardmax transformers and its role in sentiment analysis", 2024 (Assumption 2.1,
    weight sharing):

        z_i^{k+1} = z_i^k + alpha/(1+alpha) (1/|C_i(Z^k)|) sum_{j in C_i(Z^k)} (z_j^k - z_i^k).

    Calling the module maps Z^0 (n, d) to Z^K; [`trajectory`][jaxattn.layers.HardmaxTransformer.trajectory]
    also returns every layer, the attention sets and the leaders. ``jax.jit``, ``jax.vmap`` and
    ``jax.grad`` (with respect to alpha, A and Z^0; the a.e. gradient with frozen attention sets) go
    through.

    **Arguments:**

    - `alpha`: the value-matrix scale, V = alpha I, a finite scalar > 0 (Assumption 2.1(ii));
        h = alpha/(1+alpha) is the step size; default 0.5.
    - `A`: the symmetric positive definite (d, d) attention matrix (Assumption 2.1(i)); default
        None: the identity (and faster).
    - `num_layers`: the depth K, a non-negative int (K updates take Z^0 to Z^K); default 8.
    - `tie_rtol`: relative tie tolerance, finite and >= 0 (module docstring); default
        [`DEFAULT_TIE_RTOL`][jaxattn.layers.DEFAULT_TIE_RTOL] = 1e-14 (float64; about 1e-6 in float32);
        0 = exact ties.

    **Raises:**

    - `TypeError`: ``alpha`` is a bool or not real-valued.
    - `ValueError`: ``alpha`` not a finite scalar > 0; ``A`` not square, not finite, not symmetric or
        not positive definite; ``num_layers`` not a non-negative integer; ``tie_rtol`` < 0.
    """

    alpha: Float[Array, ""]
    A: Float[Array, "d d"] | None
    num_layers: int = eqx.field(static=True)
    tie_rtol: float = eqx.field(static=True)

    def __init__(self, alpha: float | ArrayLike = 0.5, A: ArrayLike | None = None, *,
                 num_layers: int = 8, tie_rtol: float = DEFAULT_TIE_RTOL):
        self.alpha = _check_scalar("alpha", alpha)
        self.A = _check_A(A)
        self.num_layers = _check_layers(num_layers)
        self.tie_rtol = _check_tie_rtol(tie_rtol)

    @property
    def step_size(self) -> Array:
        """The step size h = alpha / (1 + alpha) of eq. (1.1a), a scalar array."""
        return self.alpha / (1 + self.alpha)

    def _check(self, Z):
        return _check_tokens(Z, None if self.A is None else self.A.shape[0])

    def attention(self, Z: Tokens) -> tuple[Float[Array, "n n"], Bool[Array, "n n"]]:
        """The hardmax similarity Lambda and the attention sets at configuration Z, eqs. (2.3) and (1.1b).

        **Arguments:**

        - `Z`: tokens, float (n, d), finite, d matching ``A``.

        **Returns:**

        ``(Lambda, mask)``: float (n, n) row-stochastic, bool (n, n) (as
        [`hardmax_attention`][jaxattn.layers.hardmax_attention]).

        **Raises:**

        - `ValueError`: ``Z`` is not (n, d) with n, d >= 1, its d does not match ``A``, or it has
            NaN/inf (traced values: through ``equinox.error_if``).
        """
        return hardmax_attention(self._check(Z), self.A, self.tie_rtol)

    def step(self, Z: Tokens) -> Float[Array, "n d"]:
        """One layer, eq. (1.1a): Z + h (Lambda(Z) Z - Z).

        **Arguments:**

        - `Z`: tokens, float (n, d), finite, d matching ``A``.

        **Returns:**

        The next configuration, float (n, d).

        **Raises:**

        - `ValueError`: ``Z`` is not (n, d) with n, d >= 1, its d does not match ``A``, or it has
            NaN/inf (traced values: through ``equinox.error_if``).
        """
        Z = self._check(Z)
        Lam, _ = hardmax_attention(Z, self.A, self.tie_rtol)
        return _layer(Z, Lam, self.step_size)

    def __call__(self, Z: Tokens) -> Float[Array, "n d"]:
        """Z^K from Z^0: K = ``num_layers`` layers of eq. (1.1a) (a ``lax.scan``).

        **Arguments:**

        - `Z`: tokens, float (n, d), finite, d matching ``A``.

        **Returns:**

        Z^K, float (n, d).

        **Raises:**

        - `ValueError`: ``Z`` is not (n, d) with n, d >= 1, its d does not match ``A``, or it has
            NaN/inf (traced values: through ``equinox.error_if``).
        """
        return hardmax_layers(self.alpha, self.A, self._check(Z), self.num_layers, self.tie_rtol)

    def trajectory(self, Z: Tokens, *, store_attention: bool = True) -> HardmaxTrajectory:
        """All layers Z^0..Z^K, the attention sets C_i(Z^k) and the leaders (Definition 1.1).

        **Arguments:**

        - `Z`: tokens, float (n, d), finite, d matching ``A``.
        - `store_attention`: keep the masks of every layer; default True. False leaves ``attention``
            as None, which saves (K+1) n^2 booleans per configuration (large batches of long reviews).

        **Returns:**

        A [`HardmaxTrajectory`][jaxattn.layers.HardmaxTrajectory].

        **Raises:**

        - `ValueError`: ``Z`` is not (n, d) with n, d >= 1, its d does not match ``A``, or it has
            NaN/inf (traced values: through ``equinox.error_if``).
        """
        return hardmax_trajectory(self.alpha, self.A, self._check(Z), self.num_layers, self.tie_rtol,
                                  bool(store_attention))


# The scans are jitted once per shape (and static K, tie_rtol), so eager calls are cheap
# and calls under an outer jit/vmap/grad simply inline them.


@eqx.filter_jit
def hardmax_layers(alpha: Float[ArrayLike, ""], A: Float[Array, "d d"] | None, Z: Float[Array, "n d"],
                   num_layers: int, tie_rtol: float = DEFAULT_TIE_RTOL,
                   key_mask: Bool[Array, " n"] | None = None) -> Float[Array, "n d"]:
    """Z^K from Z^0: ``num_layers`` hardmax layers of eq. (1.1a) of Alcalde, Fantuzzi, Zuazua 2024 in a
    ``lax.scan``. No argument checks ([`HardmaxTransformer`][jaxattn.HardmaxTransformer] validates and
    then calls this).

    **Arguments:**

    - `alpha`: the value-matrix scale, a scalar > 0.
    - `A`: the attention matrix, float (d, d), or None (the identity).
    - `Z`: tokens Z^0, float (n, d).
    - `num_layers`: the depth K, an int >= 0 (static).
    - `tie_rtol`: relative tie tolerance, >= 0 (static); default 1e-14.
    - `key_mask`: bool (n,), the keys attended to ([`hardmax_attention`][jaxattn.layers.hardmax_attention]);
        default None: every key.

    **Returns:**

    Z^K, float (n, d).
    """
    h = alpha / (1 + alpha)

    def body(Zk, _):
        Lam, _ = hardmax_attention(Zk, A, tie_rtol, key_mask)
        return _layer(Zk, Lam, h), None

    ZK, _ = jax.lax.scan(body, Z, None, length=num_layers)
    return ZK


@eqx.filter_jit
def hardmax_trajectory(alpha: Float[ArrayLike, ""], A: Float[Array, "d d"] | None, Z0: Float[Array, "n d"],
                       num_layers: int, tie_rtol: float = DEFAULT_TIE_RTOL,
                       store_attention: bool = True, key_mask: Bool[Array, " n"] | None = None) -> HardmaxTrajectory:
    """Layers Z^0..Z^K of eq. (1.1a), the attention sets (1.1b) and the leaders (Definition 1.1) of
    Alcalde, Fantuzzi, Zuazua 2024. No argument checks
    ([`HardmaxTransformer.trajectory`][jaxattn.layers.HardmaxTransformer.trajectory] validates and then calls this).

    **Arguments:**

    - `alpha`: the value-matrix scale, a scalar > 0.
    - `A`: the attention matrix, float (d, d), or None (the identity).
    - `Z0`: tokens Z^0, float (n, d).
    - `num_layers`: the depth K, an int >= 0 (static).
    - `tie_rtol`: relative tie tolerance, >= 0 (static); default 1e-14.
    - `store_attention`: keep every layer's mask (static); default True.
    - `key_mask`: bool (n,): the layers attend only to those keys and a position outside it is never
        a leader; default None: every key.

    **Returns:**

    A [`HardmaxTrajectory`][jaxattn.layers.HardmaxTrajectory].
    """
    h = alpha / (1 + alpha)
    copies = jnp.all(Z0[:, None, :] == Z0[None, :, :], axis=-1)

    def observe(Zk):
        Lam, mask = hardmax_attention(Zk, A, tie_rtol, key_mask)
        leads = ~jnp.any(mask & ~copies, axis=-1)
        if key_mask is not None:
            leads = leads & key_mask
        return Lam, mask, leads

    def body(Zk, _):
        Lam, mask, leads = observe(Zk)
        return _layer(Zk, Lam, h), (Zk, mask if store_attention else None, leads)

    ZK, (Zs, masks, leads) = jax.lax.scan(body, Z0, None, length=num_layers)
    _, maskK, leadsK = observe(ZK)
    tokens = jnp.concatenate([Zs, ZK[None]], axis=0)
    attention = jnp.concatenate([masks, maskK[None]], axis=0) if store_attention else None
    leads = jnp.concatenate([leads, leadsK[None]], axis=0)
    leader_layer = jnp.where(jnp.any(leads, axis=0), jnp.argmax(leads, axis=0), -1)
    first_copy = jnp.argmax(copies, axis=-1)
    return HardmaxTrajectory(tokens, attention, leads, leader_layer, first_copy)


@eqx.filter_jit
def softmax_layers(alpha: Float[ArrayLike, ""], A: Float[Array, "d d"] | None, tau: Float[ArrayLike, ""],
                   Z: Float[Array, "n d"], num_layers: int,
                   keep_all: bool = False,
                   key_mask: Bool[Array, " n"] | None = None) -> Float[Array, "n d"] | Float[Array, "K1 n d"]:
    """Layers of eq. (1.1a) with the softmax similarity (2.6) at temperature tau (Alcalde, Fantuzzi,
    Zuazua 2024). No argument checks ([`SoftmaxTransformer`][jaxattn.SoftmaxTransformer] validates and
    then calls this).

    **Arguments:**

    - `alpha`: the value-matrix scale, a scalar > 0.
    - `A`: the attention matrix, float (d, d), or None (the identity).
    - `tau`: the temperature, a scalar > 0.
    - `Z`: tokens Z^0, float (n, d).
    - `num_layers`: the depth K, an int >= 0 (static).
    - `keep_all`: return every layer (static); default False.
    - `key_mask`: bool (n,), the keys attended to ([`softmax_attention`][jaxattn.layers.softmax_attention]);
        default None: every key.

    **Returns:**

    Z^K, float (n, d), or all layers Z^0..Z^K, float (K+1, n, d), when ``keep_all``.
    """
    h = alpha / (1 + alpha)

    def body(Zk, _):
        return _layer(Zk, softmax_attention(Zk, A, tau, key_mask), h), (Zk if keep_all else None)

    ZK, Zs = jax.lax.scan(body, Z, None, length=num_layers)
    return jnp.concatenate([Zs, ZK[None]], axis=0) if keep_all else ZK


class SoftmaxTransformer(eqx.Module):
    """K layers of eq. (1.1a) with the softmax similarity (2.6) at temperature tau (Alcalde, Fantuzzi,
    Zuazua 2024): z_i^{k+1} = z_i^k + alpha/(1+alpha) sum_j softmax_j(⟨A z_i, z_j⟩ / tau) (z_j^k - z_i^k).

    The smooth surrogate the paper trains with (tau = 1e-3); it tends to
    [`HardmaxTransformer`][jaxattn.HardmaxTransformer] as tau -> 0 for configurations without near-ties (the
    error is of order exp(-gap/tau), gap = distance between the two largest scores).

    **Arguments:**

    - `alpha`: the value-matrix scale, a finite scalar > 0; default 0.5.
    - `A`: the symmetric positive definite (d, d) attention matrix; default None: the identity.
    - `tau`: the temperature, a finite scalar > 0; default 1e-3.
    - `num_layers`: the depth K, a non-negative int; default 8.

    **Raises:**

    - `TypeError`: ``alpha`` or ``tau`` is a bool or not real-valued.
    - `ValueError`: ``alpha``/``tau`` not a finite scalar > 0; ``A`` not square, finite, symmetric and
        positive definite; ``num_layers`` not a non-negative integer.
    """

    alpha: Float[Array, ""]
    A: Float[Array, "d d"] | None
    tau: Float[Array, ""]
    num_layers: int = eqx.field(static=True)

    def __init__(self, alpha: float | ArrayLike = 0.5, A: ArrayLike | None = None, *,
                 tau: float | ArrayLike = 1e-3, num_layers: int = 8):
        self.alpha = _check_scalar("alpha", alpha)
        self.A = _check_A(A)
        self.tau = _check_scalar("tau", tau, jnp.result_type(float))
        self.num_layers = _check_layers(num_layers)

    def attention(self, Z: Tokens) -> Float[Array, "n n"]:
        """The softmax similarity matrix (2.6) at configuration Z.

        **Arguments:**

        - `Z`: tokens, float (n, d), finite, d matching ``A``.

        **Returns:**

        Float (n, n), row-stochastic.

        **Raises:**

        - `ValueError`: ``Z`` is not (n, d) with n, d >= 1, its d does not match ``A``, or it has
            NaN/inf (traced values: through ``equinox.error_if``).
        """
        Z = _check_tokens(Z, None if self.A is None else self.A.shape[0])
        return softmax_attention(Z, self.A, self.tau)

    def __call__(self, Z: Tokens) -> Float[Array, "n d"]:
        """Z^K from Z^0 with the softmax similarity (2.6).

        **Arguments:**

        - `Z`: tokens, float (n, d), finite, d matching ``A``.

        **Returns:**

        Z^K, float (n, d).

        **Raises:**

        - `ValueError`: ``Z`` is not (n, d) with n, d >= 1, its d does not match ``A``, or it has
            NaN/inf (traced values: through ``equinox.error_if``).
        """
        Z = _check_tokens(Z, None if self.A is None else self.A.shape[0])
        return softmax_layers(self.alpha, self.A, self.tau, Z, self.num_layers, False)

    def trajectory(self, Z: Tokens) -> Float[Array, "K1 n d"]:
        """All layers Z^0..Z^K with the softmax similarity (2.6).

        **Arguments:**

        - `Z`: tokens, float (n, d), finite, d matching ``A``.

        **Returns:**

        Float (K+1, n, d).

        **Raises:**

        - `ValueError`: ``Z`` is not (n, d) with n, d >= 1, its d does not match ``A``, or it has
            NaN/inf (traced values: through ``equinox.error_if``).
        """
        Z = _check_tokens(Z, None if self.A is None else self.A.shape[0])
        return softmax_layers(self.alpha, self.A, self.tau, Z, self.num_layers, True)
