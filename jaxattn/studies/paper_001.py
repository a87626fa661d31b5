"""Reproductions of paper 001 (Geshkovski, Letrouit, Polyanskiy, Rigollet, "The emergence of
clusters in self-attention dynamics", arXiv 2305.05465): the limit geometries of Table 1
and the figures of §11, as datasets (the plots: [`.figures`][jaxattn.studies.figures]).

Dynamics: the unnormalised R^d system (1.1) and its rescaled form (3.1),
z_i = e^{-tV} x_i, dz_i/dt = sum_j P_ij(t) V (z_j - z_i), with P computed from e^{tV} z
([`jaxattn.RescaledSelfAttention`][jaxattn.RescaledSelfAttention]). Initial tokens are i.i.d. U([-5, 5]^d) (§11.1).
Ensembles of seeds are solved as one batched state (adaptive Tsit5, max-over-members
error control) instead of the paper's step-0.1 scheme, which the authors' code reduces to
forward Euler (their "RK4" routine takes one Euler step: ``docs/errata.md``).

Errata and corrections relied on (also listed in ``docs/errata.md``):

* Fig 6's V is **not** symmetric, despite its caption; for non-normal V the hyperplanes
  of Thm 4.2 are level sets of the **dual functional** phi_1^* (the left eigenvector
  psi_1 normalised by psi_1^T phi_1 = 1), not planes orthogonal to phi_1 (the caption's
  "perpendicular to phi_1" and §9's "orthonormal basis of eigenvectors" hold only for
  normal V). `dual_basis` returns the rows of Phi^{-1}.
* Def 4.1: the positivity condition is ⟨Q phi_1, K phi_1⟩ > 0 (printed ``<., K.>``).
* (8.1): the exponent is e^{2t} (printed e^{2ct}).
* Fig 13: the eigenvalues are {1.078, 0.099 +- 0.082 i} (printed "1 - 0.08i").
* Table 1 "parnormal" means paranormal (Def 5.1).
* Lemma 7.7 for x_1: the index range is j in {2, ..., n}.
* Thm 2.1's class P is stated up to a permutation of rows; with tokens sorted by x(0)
  rows *and* columns are permuted consistently.
* "QtK > 0" means symmetric positive definite (A = (Q^T K)^{1/2}, (8.2)).
* §3.1 leaves T unstated; the Fig 12 code integrates the *uncoupled* flow dx_i = V x_i and
  overflows for V = W W^T in d = 80: here V is normalised to lambda_1(V) = 1 and the
  coupled rescaled dynamics are used.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import initial
from ..manifolds import EUCLIDEAN
from ..analysis import cluster_labels
from ..fields import EuclideanSelfAttention, RescaledSelfAttention
from ..layers import vertex_mask
from ..solve import simulate

__all__ = [
    "FIG6_V",
    "FIG7A_V",
    "FIG8_V",
    "FIG13_V",
    "FIG14_V",
    "boolean_attention",
    "cluster_centres",
    "dual_basis",
    "fitted_normal",
    "is_good_triple",
    "origin_collapse",
    "polytope_summary",
    "rescaled_trajectories",
    "spectral_coordinates",
]

#: exact value matrices of the authors' figure scripts
FIG6_V = np.array([[0.64709742, 0.81911926], [0.61210449, 0.63263484]])
FIG7A_V = np.array([[0.92761287, 0.94333073, 0.3827744], [0.94333073, 0.59991396, 0.47825472],
                    [0.3827744, 0.47825472, 0.46668605]])
FIG8_V = np.diag([1.0, 1.0, -0.5])
FIG13_V = np.array([[0.18608476, 0.34391026, 0.13905949], [0.35244288, 0.6694859, 0.39992145],
                    [0.46685606, 0.17094454, 0.42092308]])
FIG14_V = np.array([[0.2362413, 0.0599536, 0.40506019], [0.81321448, 0.49948705, 0.33754772],
                    [0.2160645, 0.38505272, 0.14588075]])


# ----------------------------------------------------------------------------- spectra


def dual_basis(V) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenvalues (by decreasing modulus, the paper's order), right eigenvectors Phi
    (columns) and the dual basis Phi^{-1} (rows `phi_k^*`, so `phi_k^*(x) = (Phi^{-1} x)_k`).

    phi_1 is normalised to unit length with a non-negative sum of entries (for a real top
    eigenvalue); then `phi_1^*(phi_1) = 1`.

    **Arguments:**

    - `V`: the value matrix, (d, d).

    **Returns:**

    ``(eigenvalues, Phi, Phi_inv)``: NumPy arrays (d,), (d, d), (d, d).
    """
    V = np.asarray(V, dtype=float)
    lam, phi = np.linalg.eig(V)
    order = np.lexsort((-lam.real, -np.abs(lam)))
    lam, phi = lam[order], phi[:, order]
    if abs(lam[0].imag) < 1e-12:
        v = phi[:, 0].real
        v = v / np.linalg.norm(v)
        phi[:, 0] = v * (1.0 if v.sum() >= 0 else -1.0)
    return lam, phi, np.linalg.inv(phi)


def is_good_triple(Q, K, V, tol: float = 1e-9) -> bool:
    """Def 4.1: lambda_1(V) real, > 0, simple and strictly dominant in modulus, and
    ⟨Q phi_1, K phi_1⟩ > 0.

    **Arguments:**

    - `Q`: the query matrix, (d, d).
    - `K`: the key matrix, (d, d).
    - `V`: the value matrix, (d, d).
    - `tol`: the tolerance of the conditions; default 1e-9.

    **Returns:**

    A bool.
    """
    lam, phi, _ = dual_basis(V)
    if abs(lam[0].imag) > tol or lam[0].real <= tol:
        return False
    if len(lam) > 1 and abs(lam[1]) >= abs(lam[0]) - tol:
        return False
    v = phi[:, 0].real
    return float((np.asarray(Q) @ v) @ (np.asarray(K) @ v)) > tol


def spectral_coordinates(z, V) -> np.ndarray:
    """`phi_k^*(z_i)`: coordinates of tokens in V's eigenbasis (complex for complex pairs).

    **Arguments:**

    - `z`: tokens, (..., n, d).
    - `V`: the value matrix, (d, d).

    **Returns:**

    The coordinates, a NumPy array (..., n, d).
    """
    _, _, dual = dual_basis(V)
    return np.einsum("kd,...d->...k", dual, np.asarray(z))


def fitted_normal(points) -> np.ndarray:
    """Unit normal of the best-fitting hyperplane through ``points`` (rows): last right
    singular vector of the centred points, sign fixed by a non-negative sum.

    **Arguments:**

    - `points`: points (rows), (m, d).

    **Returns:**

    The unit normal, a NumPy array (d,).
    """
    p = np.asarray(points, float)
    _, _, vt = np.linalg.svd(p - p.mean(0))
    v = vt[-1]
    return v * (1.0 if v.sum() >= 0 else -1.0)


# ----------------------------------------------------------------------------- trajectories


def rescaled_trajectories(
    V,
    *,
    n: int = 40,
    t1: float = 15.0,
    ts=None,
    seeds: Sequence[int] = (0,),
    Q=None,
    K=None,
    low: float = -5.0,
    high: float = 5.0,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int = 2**18,
) -> xr.Dataset:
    """Rescaled dynamics (3.1) from U([low, high]^d) tokens, one member per seed.

    Returns ``z`` (seed, t, token, dim) and the attention matrices ``P`` (seed, t, token,
    token2) (identical in both frames), with Q = K = I unless given.

    **Arguments:**

    - `V`: the value matrix, (d, d).
    - `n`: the number of tokens; default 40.
    - `t1`: the final time; default 15.
    - `ts`: the save times; default None (16 uniform times in [0, t1]).
    - `seeds`: one member per seed; default (0,).
    - `Q`: the query matrix; default None (I).
    - `K`: the key matrix; default None (I).
    - `low`: the lower bound of the uniform start; default -5.
    - `high`: the upper bound of the uniform start; default 5.
    - `rtol`: relative tolerance; default 1e-8.
    - `atol`: absolute tolerance; default 1e-10.
    - `max_steps`: the step budget; default 2**18.

    **Returns:**

    An ``xarray.Dataset`` with ``z`` and ``P`` (above).
    """
    V = jnp.asarray(V, float)
    d = V.shape[0]
    Q = jnp.eye(d) if Q is None else jnp.asarray(Q, float)
    K = Q if K is None else jnp.asarray(K, float)
    field = RescaledSelfAttention(Q, K, V)
    x0 = jnp.stack([initial.uniform_cube(jax.random.PRNGKey(s), n, d, low=low, high=high) for s in seeds])
    ts = jnp.linspace(0.0, t1, 16) if ts is None else jnp.asarray(ts, float)
    traj = simulate(field, x0, t1, ts=ts, rtol=rtol, atol=atol, max_steps=max_steps)
    from ..analysis import trajectory_attention

    P = trajectory_attention(traj)
    return xr.Dataset(
        {"z": (("seed", "t", "token", "dim"), np.asarray(traj.xs)),
         "P": (("seed", "t", "token", "token2"), np.asarray(P))},
        coords={"seed": list(seeds), "t": np.asarray(traj.ts)},
        attrs=dict(n=n, d=d, V=np.asarray(V).ravel().tolist(), init=f"U[{low},{high}]^d",
                   model="rescaled (3.1)", paper="001"),
    )


# ----------------------------------------------------------------------------- Thm 3.1 (V = I)


def cluster_centres(z, tol: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """(centres, labels) of the single-linkage clusters of ``z`` (n, d) at distance ``tol``.

    **Arguments:**

    - `z`: tokens, (n, d).
    - `tol`: the single-linkage distance; default 1e-3.

    **Returns:**

    ``(centres, labels)``: NumPy arrays (k, d) and (n,).
    """
    labels = np.asarray(cluster_labels(jnp.asarray(z), manifold=EUCLIDEAN, tol=tol))
    centres = np.stack([np.asarray(z)[labels == k].mean(0) for k in range(labels.max() + 1)])
    return centres, labels


def polytope_summary(z_final, P_final, *, A=None, tol: float = 1e-3) -> dict:
    """Checks of Thm 3.1 / 8.1 (V = I) on a final rescaled state.

    Returns the cluster count and max radius, whether every centre is a vertex of
    conv(centres) (or 0), the S-membership defect max_w | |Aw|^2 - max_j ⟨Aw, Av_j⟩ |
    (leaders attend to themselves; 0 on the set S of Thm 8.1), and whether each token's
    argmax attention lies in its own cluster.

    **Arguments:**

    - `z_final`: the final rescaled tokens, (n, d).
    - `P_final`: the final attention matrix, (n, n).
    - `A`: the matrix of the S-membership test; default None (I).
    - `tol`: the clustering distance; default 1e-3.

    **Returns:**

    A dict with ``clusters``, ``radius``, ``all_vertices``, ``S_defect`` and ``argmax_in_cluster``.
    """
    centres, labels = cluster_centres(z_final, tol)
    A = np.eye(centres.shape[1]) if A is None else np.asarray(A)
    radius = max(float(np.max(np.linalg.norm(np.asarray(z_final)[labels == k] - c, axis=1)))
                 for k, c in enumerate(centres))
    vertex = vertex_mask(centres) | (np.linalg.norm(centres, axis=1) < tol)
    ac = centres @ A.T
    gram = ac @ ac.T
    defect = float(np.max(np.abs(np.diag(gram) - gram.max(1))))
    argmax = np.asarray(P_final).argmax(1)
    return {"clusters": len(centres), "radius": radius, "all_vertices": bool(vertex.all()),
            "S_defect": defect, "argmax_in_cluster": bool(np.all(labels[argmax] == labels))}


# ----------------------------------------------------------------------------- Thm 8.5 (V = -I)


def origin_collapse(*, n: int = 40, d: int = 3, ts=(0.0, 10.0, 100.0), seed: int = 0) -> xr.Dataset:
    """Thm 8.5 / Remark 8.6: original dynamics (1.1) with V = -I, Q = K = I collapse to 0.

    Returns max_i |x_i(t)|, sqrt(t) max_i |x_i| (the empirical t^{-1/2} law:
    ~1.82 for seed 0), max |P - 1/n| and the Lyapunov function L = sum_ij e^{⟨x_i, x_j⟩}
    (Lemma 8.9, non-increasing, -> n^2).

    **Arguments:**

    - `n`: the number of tokens; default 40.
    - `d`: the dimension; default 3.
    - `ts`: the save times; default (0, 10, 100).
    - `seed`: the seed of the start; default 0.

    **Returns:**

    An ``xarray.Dataset`` over t with ``max_norm``, ``sqrt_t_max_norm``, ``attention_defect`` and ``lyapunov``.
    """
    field = EuclideanSelfAttention(jnp.eye(d), jnp.eye(d), -jnp.eye(d))
    x0 = initial.uniform_cube(jax.random.PRNGKey(seed), n, d, low=-5.0, high=5.0)
    ts = jnp.asarray(ts, float)
    traj = simulate(field, x0, float(ts[-1]), ts=ts, rtol=1e-9, atol=1e-11, max_steps=2**18)
    xs = np.asarray(traj.xs)
    norms = np.linalg.norm(xs, axis=-1).max(-1)
    from ..analysis import trajectory_attention

    P = np.asarray(trajectory_attention(traj))
    gram = np.einsum("tid,tjd->tij", xs, xs)
    return xr.Dataset(
        {"max_norm": ("t", norms), "sqrt_t_max_norm": ("t", np.sqrt(np.asarray(ts)) * norms),
         "attention_defect": ("t", np.abs(P - 1.0 / n).max((-2, -1))),
         "lyapunov": ("t", np.exp(gram).sum((-2, -1)))},
        coords={"t": np.asarray(ts)}, attrs=dict(n=n, d=d, seed=seed, paper="001 Thm 8.5"),
    )


# ----------------------------------------------------------------------------- Thm 2.1 (d = 1)


def boolean_attention(*, n: int = 40, ts=(0.0, 1.0, 2.0, 4.0, 6.0), seeds: Sequence[int] = (0,),
                      d: int = 1, V=None, rank_tol: float = 1e-8) -> xr.Dataset:
    """Thm 2.1 (d = 1, Q = K = V = 1) and its higher-d analogue (Figs 3, 11, 12).

    Solves the rescaled dynamics from U[-5, 5]^d, sorts tokens by x(0) (first
    coordinate) and permutes rows and columns of P(t) consistently. Returns the sorted
    ``P``, per time and seed: ``row_max_defect`` = max_i (1 - max_j P_ij), ``leaders`` =
    number of distinct argmax columns, ``rank`` (numerical, tolerance ``rank_tol``
    relative to the largest singular value), and the off-leader mass
    ``log_off_mass`` = log sum_{j != argmax} P_ij computed in log space (its -log grows
    like e^{lambda_1 t}: doubly exponential convergence).

    **Arguments:**

    - `n`: the number of tokens; default 40.
    - `ts`: the save times; default (0, 1, 2, 4, 6).
    - `seeds`: one member per seed; default (0,).
    - `d`: the dimension; default 1.
    - `V`: the value matrix; default None (I).
    - `rank_tol`: the relative tolerance of the numerical rank; default 1e-8.

    **Returns:**

    An ``xarray.Dataset`` over (seed, t) with ``P``, ``row_max_defect``, ``leaders``, ``rank`` and ``log_off_mass``.
    """
    V = np.eye(d) if V is None else np.asarray(V, float)
    field = RescaledSelfAttention(jnp.eye(d), jnp.eye(d), jnp.asarray(V))
    x0 = jnp.stack([initial.uniform_cube(jax.random.PRNGKey(s), n, d, low=-5.0, high=5.0) for s in seeds])
    ts = jnp.asarray(ts, float)
    traj = simulate(field, x0, float(ts[-1]), ts=ts, rtol=1e-9, atol=1e-11, max_steps=2**18)
    zs = np.asarray(traj.xs)
    Vj = jnp.asarray(V)
    # logits in the original frame y = e^{tV} z, sorted by the initial first coordinate
    out = {k: [] for k in ("P", "row_max_defect", "leaders", "rank", "log_off_mass", "order")}
    for s in range(len(seeds)):
        order = np.argsort(zs[s, 0, :, 0])
        ys = np.asarray(jax.vmap(lambda t, z: z @ jax.scipy.linalg.expm(t * Vj).T)(ts, jnp.asarray(zs[s])))
        ys = ys[:, order]
        logits = np.einsum("tid,tjd->tij", ys, ys)
        logp = logits - np.max(logits, -1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
        P = np.exp(logp)
        top = P.argmax(-1)
        masked = np.where(np.arange(n)[None, None, :] == top[..., None], -np.inf, logp)
        mx = masked.max(-1, keepdims=True)
        off = (mx + np.log(np.exp(masked - mx).sum(-1, keepdims=True)))[..., 0]
        sv = np.linalg.svd(P, compute_uv=False)
        out["P"].append(P)
        out["row_max_defect"].append((1 - P.max(-1)).max(-1))
        out["leaders"].append(np.array([len(np.unique(r)) for r in top]))
        out["rank"].append((sv > rank_tol * sv[:, :1]).sum(-1))
        out["log_off_mass"].append(off)
        out["order"].append(order)
    return xr.Dataset(
        {"P": (("seed", "t", "token", "token2"), np.stack(out["P"])),
         "row_max_defect": (("seed", "t"), np.stack(out["row_max_defect"])),
         "leaders": (("seed", "t"), np.stack(out["leaders"])),
         "rank": (("seed", "t"), np.stack(out["rank"])),
         "log_off_mass": (("seed", "t", "token"), np.stack(out["log_off_mass"])),
         "z_sorted": (("seed", "t", "token", "dim"),
                      np.stack([zs[s][:, o] for s, o in enumerate(out["order"])]))},
        coords={"seed": list(seeds), "t": np.asarray(ts)},
        attrs=dict(n=n, d=d, paper="001 Thm 2.1, Figs 3, 11, 12"),
    )


