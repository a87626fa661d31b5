"""Limit polytope and attracting set of the hardmax dynamics (paper 000, NumPy).

Alcalde, Fantuzzi, Zuazua 2024, Theorem 1.1: every token of the hardmax layers
(`jaxattn.layers.hardmax`) converges to a point of a finite set S on the boundary of
the polytope K = conv(leader limits); leaders reach the vertices of K in finitely many
layers and the other points of S are A-projections of the origin onto faces of K,

    S = { x in K : max_l ⟨A (v_l - x), x⟩ = 0 }                              (4.1)

[`convex_hull_vertices`][jaxattn.layers.convex_hull_vertices] finds the vertices of K by a linear-programming extreme-point
test (not qhull: K is often lower-dimensional) and [`attracting_set`][jaxattn.layers.attracting_set] enumerates S from
the KKT system (4.24) of Lemma 4.4. The origin satisfies (4.1) whenever 0 is in K but is
never the limit of a nonzero token (norms do not decrease, Lemma 3.2), so it is excluded
unless asked for (Remark 1.3: it belongs to S only when a token starts at 0).

These are host-side NumPy/SciPy computations on final configurations, not JAX code.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from jaxtyping import ArrayLike

from .hardmax import _check_A

__all__ = ["attracting_set", "cluster_points", "convex_hull_vertices", "in_convex_hull"]


def cluster_points(points: ArrayLike, tol: float = 1e-7) -> tuple[np.ndarray, np.ndarray]:
    """Group points closer than ``tol`` (greedy, in order: a point joins the first group whose
    representative is within ``tol``, else starts a new one).

    **Arguments:**

    - `points`: float (m, d).
    - `tol`: the Euclidean distance below which two points are one, >= 0; default 1e-7.

    **Returns:**

    ``(representatives, labels)``: float (c, d), the first point of each group, and int (m,), the
    group index of every point (NumPy).

    **Raises:**

    - `ValueError`: ``points`` is not 2-d.
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


def in_convex_hull(points: ArrayLike | Sequence[Sequence[float]], x: ArrayLike | Sequence[float]) -> bool:
    """Whether x is in conv(points): feasibility of the linear program {lambda >= 0, sum lambda = 1,
    P^T lambda = x} (SciPy's HiGHS).

    **Arguments:**

    - `points`: float (m, d), the points P.
    - `x`: float (d,).

    **Returns:**

    True when the program is feasible (bool).
    """
    from scipy.optimize import linprog

    P = np.asarray(points, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    m = len(P)
    A_eq = np.vstack([P.T, np.ones((1, m))])
    b_eq = np.concatenate([x, [1.0]])
    res = linprog(np.zeros(m), A_eq=A_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    return res.status == 0


def convex_hull_vertices(points: ArrayLike, tol: float = 1e-7) -> np.ndarray:
    """Vertices (extreme points) of conv(points), by an LP extreme-point test: the polytope K of
    Alcalde, Fantuzzi, Zuazua 2024, Theorem 1.1, from the leaders' limits.

    Points within ``tol`` are merged first ([`cluster_points`][jaxattn.layers.cluster_points]); a
    representative is a vertex iff it is not in the convex hull of the other representatives. Works
    when the hull is lower-dimensional (where qhull fails).

    **Arguments:**

    - `points`: float (m, d).
    - `tol`: merging distance, >= 0; default 1e-7.

    **Returns:**

    The vertices, a float (v, d) NumPy array.

    **Raises:**

    - `ValueError`: ``points`` is not 2-d.
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

    S = {x in K : max_l ⟨A (v_l - x), x⟩ = 0}; each point is x = sum_{j in J} beta_j v_j with beta_j > 0 solving
    the KKT system (4.24) of Lemma 4.4, ``[[M_J, 1], [1^T, 0]] [beta; lambda] = [0; 1]`` with
    M_J = (⟨A v_i, v_j⟩), kept if max_l ⟨A v_l, x⟩ <= ⟨A x, x⟩ (to ``rtol``). Only affinely
    independent J (|J| <= d + 1) are enumerated; by Caratheodory that loses no point.
    The vertices themselves are in S (|J| = 1). Alcalde, Fantuzzi, Zuazua 2024, Theorem 1.1.

    **Arguments:**

    - `vertices`: float (m, d), the vertices v_l of K ([`convex_hull_vertices`][jaxattn.layers.convex_hull_vertices]).
    - `A`: the symmetric positive definite (d, d) attention matrix; default None: the identity.
    - `exclude_origin`: drop the origin, which satisfies (4.1) whenever 0 is in K but is never the
        limit of a nonzero token (module docstring); default True. With False it is included when 0 is
        in K.
    - `rtol`: relative tolerance of the test max_l ⟨A v_l, x⟩ <= ⟨A x, x⟩ (times max_l ⟨A v_l, v_l⟩);
        default 1e-9.
    - `max_vertices`: the largest m accepted (the enumeration is combinatorial in m); default 24.

    **Returns:**

    The points of S, a float (s, d) NumPy array (points within round-off merged).

    **Raises:**

    - `ValueError`: ``vertices`` is not 2-d; more than ``max_vertices`` vertices (pass a larger value
        if you accept the cost); ``A`` of the wrong size, not symmetric or not positive definite.
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
