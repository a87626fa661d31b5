"""Pure-attention hardmax transformer as a discrete dynamical system (paper 000).

Alcalde, Fantuzzi, Zuazua, *Clustering in pure-attention hardmax transformers and its
role in sentiment analysis* (arXiv 2407.01602; SIAM J. Math. Data Sci. 2025). Equation
numbers below are the paper's.

The model
---------
Tokens z_1..z_n in R^d are the rows of Z. One layer is, eq. (1.1a),

    z_i^{k+1} = z_i^k + alpha/(1+alpha) * (1/|C_i(Z^k)|) * sum_{j in C_i(Z^k)} (z_j^k - z_i^k),

with the attention set, eq. (1.1b),

    C_i(Z) = { j in [n] : <A z_i, z_j> = max_l <A z_i, z_l> }     (j = i included),

A symmetric positive definite (Assumption 2.1(i)), value matrix V = alpha I with
alpha > 0 (Assumption 2.1(ii)) and the scalar normalisation N(Z) = Z / (1 + alpha),
eq. (2.4). Equivalently Z^{k+1} = (I + alpha Lambda(Z^k)) Z^k / (1 + alpha) with the
row-stochastic hardmax matrix Lambda_ij = 1/|C_i| on C_i, eq. (2.3). We evaluate the
form (1.1a), Z + h (Lambda Z - Z) with h = alpha/(1+alpha): a leader (Lambda row = e_i)
then stays *bit-exactly* in place, as Lemma 5.1(ii) says it should.

The layers are a ``jax.lax.scan``: this is a map, not an ODE (the hardmax ODE is not
well-posed, paper §1.3), so it does not go through diffrax.

Ties
----
Ties are averaged over *all* maximisers (never ``argmax``, which picks one). In floating
point an exact ``==`` creates false leaders (a follower one ulp past its leader) and
breaks true ones; scores within

    tol = tie_rtol * max_i <A z_i, z_i>       (default tie_rtol = 1e-14, float64)

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
polytope K = conv(leader limits); leaders reach the vertices of K in finitely many
layers and the other points of S are A-projections of the origin onto faces of K.
:func:`convex_hull_vertices` finds vertices by a linear-programming extreme-point test
(not qhull: K is often lower-dimensional) and :func:`attracting_set` enumerates S from
the KKT system (4.24) of Lemma 4.4. The origin satisfies (4.1) whenever 0 is in K but is
never the limit of a nonzero token (norms do not decrease, Lemma 3.2), so it is excluded
unless asked for (Remark 1.3: it belongs to S only when a token starts at 0).

The softmax variant, eq. (2.6), replaces Lambda by softmax(<A z_i, z_j>/tau) and tends
to the hardmax layer as tau -> 0 away from near-ties.
"""

from __future__ import annotations

import itertools
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from .._validate import is_concrete

__all__ = [
    "DEFAULT_TIE_RTOL",
    "HardmaxTransformer",
    "SoftmaxTransformer",
    "HardmaxTrajectory",
    "gram_matrix",
    "hardmax_attention",
    "softmax_attention",
    "attention_sets",
    "cluster_points",
    "in_convex_hull",
    "convex_hull_vertices",
    "attracting_set",
    "figure2_tokens",
]

#: default relative tie tolerance (times max_i <A z_i, z_i>) for float64
DEFAULT_TIE_RTOL = 1e-14


# ----------------------------------------------------------------------------- checks


def _check_alpha(alpha) -> Array:
    if isinstance(alpha, (bool, np.bool_)):
        raise TypeError("alpha must be a positive real number, got a bool")
    a = jnp.asarray(alpha)
    if not jnp.issubdtype(a.dtype, jnp.floating):
        a = a.astype(jnp.result_type(float))
    if a.shape != ():
        raise ValueError(f"alpha must be a scalar (V = alpha I, Assumption 2.1(ii)); got shape {a.shape}")
    if is_concrete(a):
        v = float(a)
        if not np.isfinite(v) or v <= 0:
            raise ValueError(
                f"alpha must be finite and > 0 (it is the step size h = alpha/(1+alpha) in (0, 1)); got {v}. "
                "Pass a positive alpha, e.g. 0.5; to train it use a positive parametrisation such as softplus."
            )
    return a


def _check_A(A, d: int | None = None) -> Array | None:
    """Validate A as symmetric positive definite (Assumption 2.1(i))."""
    if A is None:
        return None
    A = jnp.asarray(A)
    if not jnp.issubdtype(A.dtype, jnp.floating):
        A = A.astype(jnp.result_type(float))
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square (d, d) matrix, got shape {A.shape}")
    if d is not None and A.shape[0] != d:
        raise ValueError(f"A is {A.shape[0]} x {A.shape[0]} but the tokens live in R^{d}; pass a {d} x {d} matrix")
    if is_concrete(A):
        An = np.asarray(A, dtype=np.float64)
        if not np.all(np.isfinite(An)):
            raise ValueError("A contains NaN or inf; pass a finite symmetric positive definite matrix")
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
    if isinstance(Z, (list, tuple)):
        Z = np.asarray(Z, dtype=float)
    Z = jnp.asarray(Z)
    if not jnp.issubdtype(Z.dtype, jnp.floating):
        Z = Z.astype(jnp.result_type(float))
    if Z.ndim != 2:
        raise ValueError(
            f"{name} must be an (n, d) array of n tokens in R^d, got shape {Z.shape}; "
            "use jax.vmap for a batch of configurations and reshape 1-D tokens to (n, 1)"
        )
    if Z.shape[0] < 1 or Z.shape[1] < 1:
        raise ValueError(f"{name} must have at least one token and d >= 1, got shape {Z.shape}")
    if d is not None and Z.shape[1] != d:
        raise ValueError(f"{name} has tokens in R^{Z.shape[1]} but A is {d} x {d}")
    if is_concrete(Z):
        if not bool(jnp.all(jnp.isfinite(Z))):
            raise ValueError(f"{name} contains NaN or inf; the hardmax dynamics need finite tokens")
    else:
        Z = eqx.error_if(Z, ~jnp.all(jnp.isfinite(Z)), f"{name} contains NaN or inf")
    return Z


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
    """Score matrix G_ij = <A z_i, z_j> of eq. (1.1b) (A = None means the identity)."""
    ZA = Z if A is None else Z @ A
    return ZA @ Z.T


def hardmax_attention(
    Z: Float[Array, "n d"],
    A: Float[Array, "d d"] | None = None,
    tie_rtol: float = DEFAULT_TIE_RTOL,
) -> tuple[Float[Array, "n n"], Bool[Array, "n n"]]:
    """Hardmax similarity matrix Lambda, eq. (2.3), and the attention-set mask C, eq. (1.1b).

    ``mask[i, j]`` is True iff j is in C_i(Z): <A z_i, z_j> is within
    ``tie_rtol * max_l <A z_l, z_l>`` of the row maximum (the self-index included).
    Lambda is the mask divided by its row sums, so ties are averaged. The mask is built
    from comparisons, so gradients treat it as constant (the a.e. derivative).
    """
    G = gram_matrix(Z, A)
    tol = tie_rtol * jnp.max(jnp.diagonal(G))
    rowmax = jnp.max(G, axis=-1, keepdims=True)
    mask = G >= rowmax - tol
    Lam = mask / jnp.sum(mask, axis=-1, keepdims=True).astype(Z.dtype)
    return Lam.astype(Z.dtype), mask


def softmax_attention(
    Z: Float[Array, "n d"], A: Float[Array, "d d"] | None = None, tau: float | Array = 1.0
) -> Float[Array, "n n"]:
    """Softmax similarity matrix of eq. (2.6): softmax_j(<A z_i, z_j> / tau) (max-subtracted)."""
    return jax.nn.softmax(gram_matrix(Z, A) / tau, axis=-1)


def _layer(Z, Lam, h):
    """Eq. (1.1a) with the row-stochastic Lambda: Z + h (Lambda Z - Z), h = alpha/(1+alpha)."""
    return Z + h * (Lam @ Z - Z)


def attention_sets(mask: Bool[ArrayLike, "n n"]) -> list[tuple[int, ...]]:
    """The sets C_i (0-based index tuples) from an attention mask."""
    m = np.asarray(mask)
    return [tuple(int(j) for j in np.flatnonzero(row)) for row in m]


# --------------------------------------------------------------------------- modules


class HardmaxTrajectory(eqx.Module):
    """Output of :meth:`HardmaxTransformer.trajectory`.

    Attributes:
        tokens: (K+1, n, d) configurations Z^0..Z^K.
        attention: (K+1, n, n) masks of C_i(Z^k) for k = 0..K (None if not stored).
        leads: (K+1, n) whether token i leads at layer k (C_i(Z^k) within i's copies).
        leader_layer: (n,) first layer k <= K at which token i leads, -1 if never.
        first_copy: (n,) smallest index j with z_j^0 == z_i^0 (the copy class of i).
    """

    tokens: Float[Array, "K1 n d"]
    attention: Bool[Array, "K1 n n"] | None
    leads: Bool[Array, "K1 n"]
    leader_layer: Int[Array, " n"]
    first_copy: Int[Array, " n"]

    @property
    def final(self) -> Float[Array, "n d"]:
        return self.tokens[-1]

    @property
    def is_leader(self) -> Bool[Array, " n"]:
        """Leader (by layer K) per token; all copies of a leading word are marked."""
        return self.leader_layer >= 0

    @property
    def num_leaders(self) -> Int[Array, ""]:
        """Number of distinct leaders (copies counted once) determined by layer K."""
        return jnp.sum(self.is_leader & (self.first_copy == jnp.arange(self.first_copy.shape[-1])), axis=-1)

    @property
    def num_initial_leaders(self) -> Int[Array, ""]:
        """Number of distinct leaders determined at layer 0 (Table 1's m_0)."""
        own = self.first_copy == jnp.arange(self.first_copy.shape[-1])
        return jnp.sum((self.leader_layer == 0) & own, axis=-1)

    def leader_indices(self) -> np.ndarray:
        """0-based indices of the distinct leaders (first copy of each), eager only."""
        own = np.asarray(self.first_copy) == np.arange(self.first_copy.shape[-1])
        return np.flatnonzero(np.asarray(self.is_leader) & own)

    def attention_sets(self, k: int) -> list[tuple[int, ...]]:
        """C_i(Z^k) for all i, as 0-based index tuples."""
        return attention_sets(self.attention[k])


class HardmaxTransformer(eqx.Module):
    """K identical pure-attention hardmax layers, eq. (1.1) (Assumption 2.1, weight sharing).

    Args:
        alpha: the value-matrix scale, V = alpha I, alpha > 0; h = alpha/(1+alpha) is the
            step size.
        A: symmetric positive definite (d, d) attention matrix; ``None`` is the identity
            (and faster). Validated on construction.
        num_layers: depth K (K updates take Z^0 to Z^K).
        tie_rtol: relative tie tolerance (see the module docstring); 0 = exact ties.

    Calling the module maps Z^0 (n, d) to Z^K; :meth:`trajectory` also returns every
    layer, the attention sets and the leaders. ``jax.jit``, ``jax.vmap`` and ``jax.grad``
    (with respect to alpha, A and Z^0; the a.e. gradient with frozen attention sets) go
    through.
    """

    alpha: Float[Array, ""]
    A: Float[Array, "d d"] | None
    num_layers: int = eqx.field(static=True)
    tie_rtol: float = eqx.field(static=True)

    def __init__(self, alpha: float | ArrayLike = 0.5, A: ArrayLike | None = None, *,
                 num_layers: int = 8, tie_rtol: float = DEFAULT_TIE_RTOL):
        self.alpha = _check_alpha(alpha)
        self.A = _check_A(A)
        self.num_layers = _check_layers(num_layers)
        self.tie_rtol = _check_tie_rtol(tie_rtol)

    @property
    def step_size(self) -> Array:
        """h = alpha / (1 + alpha)."""
        return self.alpha / (1 + self.alpha)

    def _check(self, Z):
        return _check_tokens(Z, None if self.A is None else self.A.shape[0])

    def attention(self, Z: Float[ArrayLike, "n d"]) -> tuple[Float[Array, "n n"], Bool[Array, "n n"]]:
        """(Lambda, mask of C) at configuration Z, eqs. (2.3) and (1.1b)."""
        return hardmax_attention(self._check(Z), self.A, self.tie_rtol)

    def step(self, Z: Float[ArrayLike, "n d"]) -> Float[Array, "n d"]:
        """One layer, eq. (1.1a)."""
        Z = self._check(Z)
        Lam, _ = hardmax_attention(Z, self.A, self.tie_rtol)
        return _layer(Z, Lam, self.step_size)

    def __call__(self, Z: Float[ArrayLike, "n d"]) -> Float[Array, "n d"]:
        """Z^K from Z^0 (K = ``num_layers`` layers of eq. (1.1a), a ``lax.scan``)."""
        return _hardmax_final(self.alpha, self.A, self._check(Z), self.num_layers, self.tie_rtol)

    def trajectory(self, Z: Float[ArrayLike, "n d"], *, store_attention: bool = True) -> HardmaxTrajectory:
        """All layers Z^0..Z^K, the attention sets C_i(Z^k) and the leaders (Definition 1.1).

        ``store_attention=False`` leaves ``attention`` as None, which saves (K+1) n^2
        booleans per configuration (large batches of long reviews).
        """
        return _hardmax_trajectory(self.alpha, self.A, self._check(Z), self.num_layers, self.tie_rtol,
                                   bool(store_attention))


# The scans are jitted once per shape (and static K, tie_rtol), so eager calls are cheap
# and calls under an outer jit/vmap/grad simply inline them.


@eqx.filter_jit
def _hardmax_final(alpha, A, Z, num_layers, tie_rtol):
    h = alpha / (1 + alpha)

    def body(Zk, _):
        Lam, _ = hardmax_attention(Zk, A, tie_rtol)
        return _layer(Zk, Lam, h), None

    ZK, _ = jax.lax.scan(body, Z, None, length=num_layers)
    return ZK


@eqx.filter_jit
def _hardmax_trajectory(alpha, A, Z0, num_layers, tie_rtol, store_attention):
    h = alpha / (1 + alpha)
    copies = jnp.all(Z0[:, None, :] == Z0[None, :, :], axis=-1)

    def observe(Zk):
        Lam, mask = hardmax_attention(Zk, A, tie_rtol)
        leads = ~jnp.any(mask & ~copies, axis=-1)
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
def _softmax_run(alpha, A, tau, Z, num_layers, keep_all):
    h = alpha / (1 + alpha)

    def body(Zk, _):
        return _layer(Zk, softmax_attention(Zk, A, tau), h), (Zk if keep_all else None)

    ZK, Zs = jax.lax.scan(body, Z, None, length=num_layers)
    return jnp.concatenate([Zs, ZK[None]], axis=0) if keep_all else ZK


class SoftmaxTransformer(eqx.Module):
    """K layers of eq. (1.1a) with the softmax similarity (2.6) at temperature tau.

    The smooth surrogate the paper trains with (tau = 1e-3); it tends to
    :class:`HardmaxTransformer` as tau -> 0 for configurations without near-ties (the
    error is of order exp(-gap/tau), gap = distance between the two largest scores).
    """

    alpha: Float[Array, ""]
    A: Float[Array, "d d"] | None
    tau: Float[Array, ""]
    num_layers: int = eqx.field(static=True)

    def __init__(self, alpha: float | ArrayLike = 0.5, A: ArrayLike | None = None, *,
                 tau: float | ArrayLike = 1e-3, num_layers: int = 8):
        self.alpha = _check_alpha(alpha)
        self.A = _check_A(A)
        t = jnp.asarray(tau, dtype=jnp.result_type(float))
        if is_concrete(t) and (t.shape != () or not np.isfinite(float(t)) or float(t) <= 0):
            raise ValueError(f"tau must be a finite scalar > 0 (tau -> 0 is the hardmax limit), got {tau!r}")
        self.tau = t
        self.num_layers = _check_layers(num_layers)

    def attention(self, Z: Float[ArrayLike, "n d"]) -> Float[Array, "n n"]:
        Z = _check_tokens(Z, None if self.A is None else self.A.shape[0])
        return softmax_attention(Z, self.A, self.tau)

    def __call__(self, Z: Float[ArrayLike, "n d"]) -> Float[Array, "n d"]:
        """Z^K from Z^0 with the softmax similarity (2.6)."""
        Z = _check_tokens(Z, None if self.A is None else self.A.shape[0])
        return _softmax_run(self.alpha, self.A, self.tau, Z, self.num_layers, False)

    def trajectory(self, Z: Float[ArrayLike, "n d"]) -> Float[Array, "K1 n d"]:
        """All layers Z^0..Z^K, shape (K+1, n, d)."""
        Z = _check_tokens(Z, None if self.A is None else self.A.shape[0])
        return _softmax_run(self.alpha, self.A, self.tau, Z, self.num_layers, True)


# ------------------------------------------------------------------ polytope and S (numpy)


def cluster_points(points: ArrayLike, tol: float = 1e-7) -> tuple[np.ndarray, np.ndarray]:
    """Group points closer than ``tol`` (greedy, in order).

    Returns (representatives (c, d), labels (m,)): the first point of each group and the
    group index of every point.
    """
    P = np.asarray(points, dtype=np.float64)
    if P.ndim != 2:
        raise ValueError(f"points must be an (m, d) array, got shape {P.shape}")
    reps: list[np.ndarray] = []
    labels = np.empty(len(P), dtype=int)
    for i, p in enumerate(P):
        for c, r in enumerate(reps):
            if np.linalg.norm(p - r) <= tol:
                labels[i] = c
                break
        else:
            labels[i] = len(reps)
            reps.append(p)
    return (np.array(reps) if reps else np.zeros((0, P.shape[1]))), labels


def in_convex_hull(points: ArrayLike, x: ArrayLike) -> bool:
    """Whether x is in conv(points): LP feasibility {lambda >= 0, sum lambda = 1, P^T lambda = x} (HiGHS)."""
    from scipy.optimize import linprog

    P = np.asarray(points, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    m = len(P)
    A_eq = np.vstack([P.T, np.ones((1, m))])
    b_eq = np.concatenate([x, [1.0]])
    res = linprog(np.zeros(m), A_eq=A_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    return res.status == 0


def convex_hull_vertices(points: ArrayLike, tol: float = 1e-7) -> np.ndarray:
    """Vertices (extreme points) of conv(points), by an LP extreme-point test.

    Points within ``tol`` are merged first; a representative is a vertex iff it is not in
    the convex hull of the other representatives. Works when the hull is lower-dimensional
    (where qhull fails). Returns a (v, d) array.
    """
    reps, _ = cluster_points(points, tol)
    if len(reps) <= 1:
        return reps
    keep = [i for i in range(len(reps)) if not in_convex_hull(np.delete(reps, i, axis=0), reps[i])]
    return reps[keep]


def attracting_set(
    vertices: ArrayLike,
    A: ArrayLike | None = None,
    *,
    exclude_origin: bool = True,
    rtol: float = 1e-9,
    max_vertices: int = 24,
) -> np.ndarray:
    """The finite attracting set S of eq. (4.1) for the polytope with the given vertices.

    S = {x in K : max_l <A (v_l - x), x> = 0}; each point is x = sum_{j in J} beta_j v_j with beta_j > 0 solving
    the KKT system (4.24) of Lemma 4.4, [[M_J, 1], [1^T, 0]] [beta; lambda] = [0; 1] with
    M_J = (<A v_i, v_j>), kept if max_l <A v_l, x> <= <A x, x> (to ``rtol``). Only affinely
    independent J (|J| <= d + 1) are enumerated; by Caratheodory that loses no point.
    The vertices themselves are in S (|J| = 1). The origin is dropped unless
    ``exclude_origin=False`` (see the module docstring).

    Raises ValueError for more than ``max_vertices`` vertices (the enumeration is
    combinatorial); pass a larger value if you accept the cost.
    """
    V = np.asarray(vertices, dtype=np.float64)
    if V.ndim != 2:
        raise ValueError(f"vertices must be an (m, d) array, got shape {V.shape}")
    m, d = V.shape
    if m > max_vertices:
        raise ValueError(f"{m} vertices > max_vertices = {max_vertices}; the enumeration of S is "
                         "combinatorial in m; raise max_vertices if you accept the cost")
    An = np.eye(d) if A is None else np.asarray(_check_A(A, d), dtype=np.float64)
    GV = V @ An @ V.T
    scale = max(float(np.max(np.diag(GV))), 1e-300) if m else 1.0
    found: list[np.ndarray] = []
    for r in range(1, min(m, d + 1) + 1):
        combos = np.array(list(itertools.combinations(range(m), r)), dtype=int)
        if r > 1:
            diffs = V[combos[:, 1:]] - V[combos[:, :1]]  # (c, r-1, d)
            sv = np.linalg.svd(diffs, compute_uv=False)
            ok = sv[:, -1] > 1e-10 * np.maximum(sv[:, 0], 1e-300)
            combos = combos[ok]
        if len(combos) == 0:
            continue
        M = GV[combos[:, :, None], combos[:, None, :]]  # (c, r, r)
        K = np.zeros((len(combos), r + 1, r + 1))
        K[:, :r, :r] = M
        K[:, :r, r] = 1.0
        K[:, r, :r] = 1.0
        rhs = np.zeros((len(combos), r + 1))
        rhs[:, r] = 1.0
        sol = np.linalg.solve(K, rhs[..., None])[..., 0]
        beta = sol[:, :r]
        good = np.all(beta > 1e-12, axis=1)
        X = np.einsum("cr,crd->cd", beta[good], V[combos[good]])
        for x in X:
            xAx = x @ An @ x
            if np.max(V @ An @ x) <= xAx + rtol * scale:
                found.append(x)
    S, _ = cluster_points(np.array(found) if found else np.zeros((0, d)), tol=1e-9 * max(1.0, np.sqrt(scale)))
    if exclude_origin and len(S):
        S = S[np.linalg.norm(S, axis=1) > 1e-12 * max(1.0, np.sqrt(scale))]
    elif not exclude_origin and not any(np.linalg.norm(s) <= 1e-12 for s in S) and in_convex_hull(V, np.zeros(d)):
        S = np.vstack([S, np.zeros((1, d))])
    return S


# ------------------------------------------------------------------------ Figure 2 data


def figure2_tokens(row: Literal["A", "B", "C", "D"], seed: int = 0) -> np.ndarray:
    """Initial tokens of the paper's Figure 2 rows (from the authors' ``dynamics.ipynb``).

    Rows A, C and D add uniform random tokens (seeded here; the authors set no seed),
    row B is fully deterministic. Use alpha = 0.5, A = I and 30 layers as in the paper.
    """
    rng = np.random.default_rng(seed)
    if row == "A":  # triangular polytope
        fixed = [(1, 1), (0.5, -0.5), (-1, -1), (0.3, -0.2), (0.1, -0.2)]
        rand = np.vstack([rng.uniform(0, 1, (2, 2)), rng.uniform(-1, 0, (2, 2))])
    elif row == "B":  # emerging leader
        fixed = [(1, 1 / 3), (-1 / 12, 1 / 12), (-1, -1), (0, 1 / 4), (-0.3, -0.7), (-0.6, -0.9),
                 (0.8, 0.1), (0.6, 0.15)]
        rand = np.zeros((0, 2))
    elif row == "C":  # square polytope
        fixed = [(1, 1), (1, -1), (-1, -1), (-1, 1)]
        rand = rng.uniform(-0.5, 0.5, (6, 2))
    elif row == "D":  # non-leader clusters
        fixed = [(1, 1), (1, -1), (-1, -1), (-1, 1), (-0.5, 0), (0.5, 0)]
        rand = rng.uniform(-0.5, 0.5, (4, 2))
    else:
        raise ValueError(f"row must be one of 'A', 'B', 'C', 'D', got {row!r}")
    return np.vstack([np.asarray(fixed, dtype=np.float64), rand])
