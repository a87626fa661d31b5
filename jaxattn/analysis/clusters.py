"""Cluster assignment and pairwise statistics.

Tolerances (documented defaults, all overridable):

* sphere: tokens i, j are *linked* when ⟨x_i, x_j⟩ >= 1 - delta, delta = 1e-3 by default
  (the phase-diagram threshold of the code of Geshkovski et al. 2023 (perspective); the paper's
  figures use 1e-2);
* R^d: linked when |x_i - x_j| <= tol, tol = 1e-3 by default (the clusters of Geshkovski et al.
  2023 (emergence) shrink like e^{-lambda_1 t} in the rescaled frame, so choose tol by the time scale);
* circle: clusters are the arcs between sorted gaps larger than ``gap`` (0.1 rad, the count used
  for Geshkovski et al. 2023 (perspective) Fig. 3; meaningful once clusters have formed, t >~ 10).

Clusters are the connected components of the link graph (single linkage), found by
min-label propagation inside ``jax.lax.while_loop`` so everything jit-compiles and vmaps
over ensembles and time.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from ..manifolds import SPHERE, AbstractManifold, Circle, Euclidean, Sphere, as_manifold
from ._checks import check_threshold, check_tokens

DEFAULT_DELTA = 1e-3
DEFAULT_TOL = 1e-3
DEFAULT_GAP = 0.1
SPHERE_DELTA_MEANING = "tokens are linked when <x_i, x_j> >= 1 - delta"


def pairwise_inner_products(x: Float[ArrayLike, "... n d"]) -> Float[Array, "... n n"]:
    """The Gram matrices G_ij = ⟨x_i, x_j⟩ (no input checks: a building block of the others).

    **Arguments:**

    - `x`: tokens, float (..., n, d).

    **Returns:**

    Float (..., n, n).
    """
    return jnp.einsum("...id,...jd->...ij", x, x)


def _off_diagonal(g):
    n = g.shape[-1]
    return jnp.where(jnp.eye(n, dtype=bool), jnp.nan, g)


def min_inner_product(x: Float[ArrayLike, "... n d"]) -> Float[Array, "..."]:
    """The smallest pairwise inner product min_{i != j} ⟨x_i, x_j⟩ (1 for a single token).

    **Arguments:**

    - `x`: tokens, float (..., n, d) (any leading axes), finite.

    **Returns:**

    Float (...,).

    **Raises:**

    - `ValueError`: ``x`` has fewer than 2 axes or (concrete values) NaN/inf entries.
    - `TypeError`: ``x`` is not real.
    """
    x = check_tokens(x)
    g = _off_diagonal(pairwise_inner_products(x))
    out = jnp.nanmin(g, axis=(-2, -1)) if x.shape[-2] > 1 else jnp.ones(x.shape[:-2], x.dtype)
    return out


def inner_product_statistics(x: Float[ArrayLike, "... n d"]) -> dict[str, Array]:
    """Mean, min, max and standard deviation of the off-diagonal inner products ⟨x_i, x_j⟩, i != j.

    **Arguments:**

    - `x`: tokens, float (..., n, d) (any leading axes), finite, n >= 2.

    **Returns:**

    A dict with ``"mean"``, ``"min"``, ``"max"``, ``"std"``, each float (...,).

    **Raises:**

    - `ValueError`: ``x`` has fewer than 2 axes or (concrete values) NaN/inf entries.
    - `TypeError`: ``x`` is not real.
    """
    x = check_tokens(x)
    g = _off_diagonal(pairwise_inner_products(x))
    return {
        "mean": jnp.nanmean(g, axis=(-2, -1)),
        "min": jnp.nanmin(g, axis=(-2, -1)),
        "max": jnp.nanmax(g, axis=(-2, -1)),
        "std": jnp.nanstd(g, axis=(-2, -1)),
    }


def clustered_pair_fraction(x: Float[ArrayLike, "... n d"], delta: float = DEFAULT_DELTA) -> Float[Array, "..."]:
    """The fraction of clustered pairs, #{(i, j), i != j : ⟨x_i, x_j⟩ >= 1 - delta} / (n (n - 1))
    (Geshkovski et al. 2023 (perspective), Figs 2-4).

    **Arguments:**

    - `x`: tokens, float (..., n, d) (any leading axes), finite.
    - `delta`: the closeness threshold, in (0, 2]; default [`DEFAULT_DELTA`][jaxattn.analysis.DEFAULT_DELTA] = 1e-3.

    **Returns:**

    Float (...,) in [0, 1] (0 for a single token).

    **Raises:**

    - `ValueError`: ``x`` has fewer than 2 axes or (concrete values) NaN/inf entries, or ``delta`` is
        outside (0, 2].
    - `TypeError`: ``x`` is not real.
    """
    x = check_tokens(x)
    return clustered_pair_fraction_of_gram(pairwise_inner_products(x), delta)


def clustered_pair_fraction_of_gram(g: Float[ArrayLike, "... n n"], delta: float = DEFAULT_DELTA) -> Float[Array, "..."]:
    """[`clustered_pair_fraction`][jaxattn.analysis.clustered_pair_fraction] from the Gram matrices
    G_ij = ⟨x_i, x_j⟩ (e.g. the states of [`jaxattn.fields.GramSelfAttention`][jaxattn.GramSelfAttention]):
    the fraction of i != j with G_ij >= 1 - delta.

    **Arguments:**

    - `g`: Gram matrices, float (..., n, n).
    - `delta`: the closeness threshold, in (0, 2]; default [`DEFAULT_DELTA`][jaxattn.analysis.DEFAULT_DELTA] = 1e-3.

    **Returns:**

    Float (...,) in [0, 1].

    **Raises:**

    - `ValueError`: ``delta`` outside (0, 2] (concrete values).
    """
    g = jnp.asarray(g)
    check_threshold("delta", delta, 2.0, SPHERE_DELTA_MEANING)
    n = g.shape[-1]
    close = (g >= 1 - delta) & ~jnp.eye(n, dtype=bool)
    return jnp.sum(close, axis=(-2, -1)) / max(n * (n - 1), 1)


def is_clustered(x: Float[ArrayLike, "... n d"], delta: float = DEFAULT_DELTA) -> Bool[Array, "..."]:
    """Whether the tokens form one cluster: every pair has ⟨x_i, x_j⟩ >= 1 - delta (e.g. the
    ``stop_when`` of [`jaxattn.simulate`][jaxattn.simulate]).

    **Arguments:**

    - `x`: tokens, float (..., n, d) (any leading axes), finite.
    - `delta`: the closeness threshold, in (0, 2]; default [`DEFAULT_DELTA`][jaxattn.analysis.DEFAULT_DELTA] = 1e-3.

    **Returns:**

    Bool (...,).

    **Raises:**

    - `ValueError`: ``x`` has fewer than 2 axes or (concrete values) NaN/inf entries, or ``delta`` is
        outside (0, 2].
    - `TypeError`: ``x`` is not real.
    """
    check_threshold("delta", delta, 2.0, SPHERE_DELTA_MEANING)
    return min_inner_product(x) >= 1 - delta


def _components(adjacency: Bool[Array, "n n"]) -> Int[Array, " n"]:
    """Connected-component labels: each token gets the smallest index in its component."""
    n = adjacency.shape[-1]
    big = jnp.int32(n)

    def step(labels):
        return jnp.min(jnp.where(adjacency, labels[None, :], big), axis=1)

    def cond(state):
        labels, previous = state
        return jnp.any(labels != previous)

    def body(state):
        labels, _ = state
        return step(labels), labels

    labels0 = jnp.arange(n, dtype=jnp.int32)
    labels, _ = jax.lax.while_loop(cond, body, (step(labels0), labels0))
    return labels


def _relabel(roots: Int[Array, " n"]) -> Int[Array, " n"]:
    """Map component roots to 0..k-1 in order of first appearance."""
    n = roots.shape[-1]
    is_root = roots == jnp.arange(n)
    rank = jnp.cumsum(is_root) - 1
    return rank[roots]


def cluster_labels(x: ArrayLike, *, manifold: AbstractManifold | str = SPHERE, delta: float = DEFAULT_DELTA,
                   tol: float = DEFAULT_TOL, gap: float = DEFAULT_GAP) -> Int[Array, "... n"]:
    """The cluster index 0..k-1 of each token: connected components of the link graph (single linkage;
    module docstring for the tolerances), numbered in order of first appearance. jit/vmap-able.

    **Arguments:**

    - `x`: (..., n, d) tokens on the sphere or in R^d, or (..., n) angles on the circle; finite.
    - `manifold`: where the tokens live: ``jaxattn.manifolds.SPHERE``
        (default), ``EUCLIDEAN``, ``CIRCLE`` or their names ``"sphere"``, ``"euclidean"``, ``"circle"``.
    - `delta`: the sphere's link threshold ⟨x_i, x_j⟩ >= 1 - delta, in (0, 2]; default 1e-3.
    - `tol`: the link distance in R^d, |x_i - x_j| <= tol, > 0; default 1e-3.
    - `gap`: the circle's cluster gap in radians, in (0, 2 pi]; default 0.1.

    **Returns:**

    Int (..., n).

    **Raises:**

    - `ValueError`: a manifold without a clustering rule (Gram), an unknown name, a threshold of the
        manifold outside its range, or ``x`` with too few axes or NaN/inf.
    - `TypeError`: ``x`` is not real.
    """
    m = as_manifold(manifold)
    rule = _CLUSTER_RULES.get(type(m))
    if rule is None:
        raise ValueError(f"clusters are defined on the sphere, in R^d and on the circle, got the manifold {m}")
    return rule(check_tokens(x, min_ndim=m.event_ndim), delta, tol, gap)


def _circle_clusters(x, delta, tol, gap):
    check_threshold("gap", gap, 2 * jnp.pi, "clusters are arcs between gaps larger than gap, in radians")
    return _circle_labels(x, gap)


def _sphere_clusters(x, delta, tol, gap):
    check_threshold("delta", delta, 2.0, SPHERE_DELTA_MEANING)
    return _components_of(pairwise_inner_products(x) >= 1 - delta)


def _euclidean_clusters(x, delta, tol, gap):
    check_threshold("tol", tol, np.inf, "tokens are linked when |x_i - x_j| <= tol")
    diff = x[..., :, None, :] - x[..., None, :, :]
    return _components_of(jnp.sum(diff * diff, axis=-1) <= tol**2)


#: the clustering rule of each manifold (module docstring)
_CLUSTER_RULES = {Circle: _circle_clusters, Sphere: _sphere_clusters, Euclidean: _euclidean_clusters}


def _components_of(adjacency: Array) -> Array:
    """Labels of the connected components of the (..., n, n) adjacency."""
    adjacency = adjacency | jnp.eye(adjacency.shape[-1], dtype=bool)  # every token is in its own cluster
    fn = lambda a: _relabel(_components(a))  # noqa: E731
    for _ in range(adjacency.ndim - 2):
        fn = jax.vmap(fn)
    return fn(adjacency)


def _circle_labels(theta: Float[Array, "... n"], gap: float) -> Int[Array, "... n"]:
    def one(th):
        th = jnp.mod(th, 2 * jnp.pi)
        order = jnp.argsort(th)
        s = th[order]
        gaps = jnp.diff(s, append=s[:1] + 2 * jnp.pi)  # gaps[k]: from s[k] to the next
        breaks = gaps > gap
        # start a new cluster after every break; the arc after the last break wraps around
        starts = jnp.concatenate([jnp.zeros(1, bool), breaks[:-1]])
        ids = jnp.cumsum(starts)
        any_break = jnp.any(breaks)
        # tokens before the first break join the cluster that wraps past 2 pi
        last_id = ids[-1]
        wrap = ~breaks[-1] & any_break
        ids = jnp.where(wrap & (ids == 0), last_id, ids)
        ids = _relabel_values(ids)
        return jnp.zeros_like(ids).at[order].set(ids)

    fn = one
    for _ in range(theta.ndim - 1):
        fn = jax.vmap(fn)
    return fn(theta)


def _relabel_values(ids: Int[Array, " n"]) -> Int[Array, " n"]:
    n = ids.shape[0]
    present = jnp.zeros(n + 1, bool).at[ids].set(True)
    rank = jnp.cumsum(present) - 1
    return rank[ids]


def count_clusters(x: ArrayLike, *, manifold: AbstractManifold | str = SPHERE, delta: float = DEFAULT_DELTA,
                   tol: float = DEFAULT_TOL, gap: float = DEFAULT_GAP) -> Int[Array, "..."]:
    """The number of clusters k (the connected components of [`cluster_labels`][jaxattn.analysis.cluster_labels]).

    **Arguments:**

    - `x`: (..., n, d) tokens or (..., n) angles, as for ``cluster_labels``.
    - `manifold`: ``SPHERE`` (default), ``EUCLIDEAN``, ``CIRCLE`` or their names.
    - `delta`: the sphere's link threshold, in (0, 2]; default 1e-3.
    - `tol`: the link distance in R^d, > 0; default 1e-3.
    - `gap`: the circle's cluster gap in radians, in (0, 2 pi]; default 0.1.

    **Returns:**

    Int (...,), >= 1.

    **Raises:**

    - `ValueError`: as [`cluster_labels`][jaxattn.analysis.cluster_labels].
    - `TypeError`: as [`cluster_labels`][jaxattn.analysis.cluster_labels].
    """
    labels = cluster_labels(x, manifold=manifold, delta=delta, tol=tol, gap=gap)
    return jnp.max(labels, axis=-1) + 1
