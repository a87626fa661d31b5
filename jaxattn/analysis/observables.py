r"""Smooth (differentiable) surrogate observables of particle configurations and trajectories.

Cluster statistics such as [`jaxattn.analysis.clustered_pair_fraction`][jaxattn.analysis.clustered_pair_fraction] are step functions of
the inner products ⟨x_i, x_j⟩, so their gradients are zero or undefined (see ``docs/gradients.md``).
This module gives smooth surrogates that converge to them as a width ``tau`` -> 0, plus the scalar
reduction of Theorem 4.6 in `jaxattn.analysis.gamma`, so that everything here can go through
``jax.grad`` (with respect to beta, Q, K, V, x0 and t1 when composed with [`jaxattn.simulate`][jaxattn.simulate]).

Configurations are (..., n, d) arrays of tokens (sphere or R^d); for circle angles use
``jaxattn.fields.embed_angles`` first. Pair averages run over the n(n - 1) ordered pairs i != j.

Surrogates (s(z) = 1 / (1 + e^{-z}) is the logistic sigmoid)

* mean inner product   m(X) = (1/(n(n-1))) sum_{i != j} ⟨x_i, x_j⟩;
* soft clustered fraction
      p_tau(X) = (1/(n(n-1))) sum_{i != j} s((⟨x_i, x_j⟩ - (1 - delta)) / tau)
  -> fraction of delta-close pairs (Geshkovski et al. 2023 (perspective), Figs 2-4) as tau -> 0;
* soft minimum inner product  m_tau(X) = -tau log( (1/(n(n-1))) sum_{i != j} e^{-⟨x_i, x_j⟩/tau} ),
  with min <= m_tau <= min + tau log(n(n-1));
* smooth maximum pair distance  D_p(X) = (mean_{i != j} (1 - ⟨x_i, x_j⟩)^p)^{1/p} (in log form);
* soft time to cluster  T_soft = \int_{t_0}^{t_end} s((log D_p(X(t)) - log delta) / w) dt (trapezoid
  rule on the saved times): the time spent before all pairs are delta-close, which tends to the
  clustering time ``t* = inf{t : min_{i != j} <x_i, x_j> >= 1 - delta}`` (capped at t_end) as w -> 0,
  p -> infinity;
* the interaction energy E_beta (Geshkovski et al. 2023 (perspective), eq. (3.5)) is [`jaxattn.analysis.interaction_energy`][jaxattn.analysis.interaction_energy]
  (already smooth).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._validate import check_positive, enforce, pair_delta_rule
from .clusters import DEFAULT_DELTA, pairwise_inner_products
from ._checks import check_threshold, check_tokens

__all__ = [
    "log_soft_max_pair_distance",
    "mean_inner_product",
    "soft_clustered_fraction",
    "soft_min_inner_product",
    "soft_time_to_cluster",
]


# ----------------------------------------------------------------------------------------------
# input checks


def _check_config(x) -> Array:
    x = check_tokens(x)
    if x.shape[-2] < 2:
        raise ValueError(f"pair statistics need n >= 2 tokens, got n = {x.shape[-2]}")
    return x


def _check_delta(delta) -> None:
    enforce([pair_delta_rule(delta)], None)


def _pair_values(x: Array) -> Array:
    """Off-diagonal Gram entries as a (..., n(n-1)) array."""
    n = x.shape[-2]
    g = pairwise_inner_products(x)
    iu, ju = np.nonzero(~np.eye(n, dtype=bool))
    return g[..., iu, ju]


# ----------------------------------------------------------------------------------------------
# configuration observables


def mean_inner_product(x: Float[ArrayLike, "... n d"]) -> Float[Array, "..."]:
    r"""The mean inner product m(X) = (1/(n(n-1))) sum_{i != j} ⟨x_i, x_j⟩ (= (n |xbar|^2 - 1)/(n - 1) on
    the sphere), smooth in X.

    **Arguments:**

    - `x`: tokens, float (..., n, d) (sphere or R^d; any leading axes), finite, n >= 2.

    **Returns:**

    Float (...,).

    **Raises:**

    - `ValueError`: ``x`` with fewer than 2 axes, n < 2 tokens, or (concrete values) NaN/inf.
    - `TypeError`: ``x`` is not real.
    """
    x = _check_config(x)
    n = x.shape[-2]
    s = jnp.sum(x, axis=-2)
    total = jnp.sum(s * s, axis=-1) - jnp.sum(x * x, axis=(-2, -1))
    return total / (n * (n - 1))


def soft_clustered_fraction(
    x: Float[ArrayLike, "... n d"], delta: float = DEFAULT_DELTA, tau: float | None = None
) -> Float[Array, "..."]:
    r"""p_tau(X) = mean_{i != j} s((⟨x_i, x_j⟩ - (1 - delta)) / tau), the smooth delta-close pair fraction.

    As tau -> 0 this is [`jaxattn.analysis.clustered_pair_fraction`][jaxattn.analysis.clustered_pair_fraction]
    (Geshkovski et al. 2023 (perspective), Figs 2-4), pointwise except at pairs exactly at the threshold.

    **Arguments:**

    - `x`: tokens, float (..., n, d) (sphere or R^d; any leading axes), finite, n >= 2.
    - `delta`: the closeness threshold ⟨x_i, x_j⟩ >= 1 - delta, in (0, 2]; default 1e-3.
    - `tau`: the width of the sigmoid, finite and > 0; default None: delta / 4.

    **Returns:**

    Float (...,) in (0, 1).

    **Raises:**

    - `ValueError`: ``x`` with fewer than 2 axes, n < 2 tokens, or (concrete values) NaN/inf, ``delta`` outside (0, 2], ``tau`` not finite or <= 0.
    - `TypeError`: ``x`` is not real.
    """
    x = _check_config(x)
    _check_delta(delta)
    tau = delta / 4 if tau is None else tau
    check_positive("tau", tau)
    g = _pair_values(x)
    return jnp.mean(jax.nn.sigmoid((g - (1 - delta)) / tau), axis=-1)


def soft_min_inner_product(x: Float[ArrayLike, "... n d"], tau: float = 1e-3) -> Float[Array, "..."]:
    r"""The soft minimum inner product m_tau(X) = -tau log mean_{i != j} exp(-⟨x_i, x_j⟩/tau), in
    [min, min + tau log(n(n-1))] (min = min_{i != j} ⟨x_i, x_j⟩).

    **Arguments:**

    - `x`: tokens, float (..., n, d) (sphere or R^d; any leading axes), finite, n >= 2.
    - `tau`: the softening width, finite and > 0; default 1e-3.

    **Returns:**

    Float (...,).

    **Raises:**

    - `ValueError`: ``x`` with fewer than 2 axes, n < 2 tokens, or (concrete values) NaN/inf, ``tau`` not finite or <= 0.
    - `TypeError`: ``x`` is not real.
    """
    x = _check_config(x)
    check_positive("tau", tau)
    g = _pair_values(x)
    N = g.shape[-1]
    return -tau * (jax.nn.logsumexp(-g / tau, axis=-1) - math.log(N))


def log_soft_max_pair_distance(x: Float[ArrayLike, "... n d"], power: float = 32.0) -> Float[Array, "..."]:
    r"""log D_p(X), D_p = (mean_{i != j} (1 - ⟨x_i, x_j⟩)^p)^{1/p}: a smooth max of 1 - ⟨x_i, x_j⟩.

    N^{-1/p} max <= D_p <= max over the N = n(n-1) pairs, a bound on the *ratio*, so the error in
    log D_p is at most log(N)/p at every scale (0.2 for n = 8, p = 32) - unlike a soft minimum of
    ⟨x_i, x_j⟩, whose additive error swamps 1 - ⟨x_i, x_j⟩ once tokens are close. 1 - ⟨x_i, x_j⟩ is
    floored at 1e-30 (round-off at consensus).

    **Arguments:**

    - `x`: tokens, float (..., n, d) (sphere or R^d; any leading axes), finite, n >= 2.
    - `power`: the exponent p of the power mean, finite and > 0; default 32.

    **Returns:**

    log D_p, float (...,).

    **Raises:**

    - `ValueError`: ``x`` with fewer than 2 axes, n < 2 tokens, or (concrete values) NaN/inf, ``power`` not finite or <= 0.
    - `TypeError`: ``x`` is not real.
    """
    x = _check_config(x)
    check_positive("power", power)
    g = _pair_values(x)
    log_dist = jnp.log(jnp.maximum(1.0 - g, 1e-30))
    N = g.shape[-1]
    return (jax.nn.logsumexp(power * log_dist, axis=-1) - math.log(N)) / power


def soft_time_to_cluster(
    xs: Float[ArrayLike, "... T n d"],
    ts: Float[ArrayLike, " _T"],  # T = len(ts) >= 2: checked below, with its own ValueError
    delta: float = DEFAULT_DELTA,
    width: float = 0.1,
    power: float = 32.0,
) -> Float[Array, "..."]:
    r"""T_soft = \int s((log D_p(X(t)) - log delta) / width) dt over the saved times (trapezoid rule).

    D_p is the smooth maximum of 1 - ⟨x_i, x_j⟩ ([`log_soft_max_pair_distance`][jaxattn.analysis.log_soft_max_pair_distance]), so the integrand
    is ~1 while some pair is farther than delta and ~0 once all pairs are delta-close: ``T_soft ~ t*``, the
    first time min_{i != j} ⟨x_i, x_j⟩ >= 1 - delta (capped at the last saved time). Working with
    log(1 - ⟨x_i, x_j⟩) makes the smoothing scale-free: near consensus 1 - ⟨x_i, x_j⟩ decays like
    e^{-lambda t}, so the sigmoid has width ``width``/lambda in time and is symmetric about ``t*``, and the
    integrand really goes to 0 after clustering (a sigmoid in ⟨x_i, x_j⟩ itself would not: it saturates
    at ⟨x_i, x_j⟩ = 1). Errors: O(log(N)/(p lambda)) from the soft max (D_p underestimates the max
    distance by at most a factor N^{1/p}), O(dt) from the trapezoid rule at the crossing.
    Its gradient is ``-(d log D / d theta)(t*) / (d log D / dt)(t*)``: the sensitivity of the clustering
    time. A trajectory that never clusters gives t_end - t_0 and a zero gradient: choose the horizon
    so that the crossing is inside it.

    **Arguments:**

    - `xs`: saved tokens, float (..., T, n, d) (e.g. a [`jaxattn.Trajectory`][jaxattn.Trajectory]'s ``xs``),
        finite, n >= 2.
    - `ts`: the saved times, float (T,), T >= 2.
    - `delta`: the closeness threshold, in (0, 2]; default 1e-3.
    - `width`: the sigmoid's width in log distance, finite and > 0; default 0.1.
    - `power`: the exponent p of the smooth maximum, finite and > 0; default 32.

    **Returns:**

    T_soft, float (...,), in [0, t_end - t_0].

    **Raises:**

    - `ValueError`: ``xs`` not (..., T, n, d) with T = len(ts) >= 2 and n >= 2, NaN/inf values,
        ``delta`` outside (0, 2], ``width`` or ``power`` not finite or <= 0.
    - `TypeError`: ``xs`` is not real.
    """
    xs = _check_config(xs)
    ts = jnp.asarray(ts, dtype=xs.dtype)
    if xs.ndim < 3 or ts.ndim != 1 or xs.shape[-3] != ts.shape[0] or ts.shape[0] < 2:
        raise ValueError(f"need xs of shape (..., T, n, d) with T = len(ts) >= 2; got xs {xs.shape}, ts {ts.shape}")
    _check_delta(delta)
    check_positive("width", width)
    u = log_soft_max_pair_distance(xs, power)
    f = jax.nn.sigmoid((u - jnp.log(delta)) / width)
    dt = jnp.diff(ts)
    return jnp.sum(0.5 * (f[..., 1:] + f[..., :-1]) * dt, axis=-1)
