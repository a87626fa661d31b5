"""Attention matrices P(t) along trajectories."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array

from ..fields import AbstractField
from ._checks import check_tokens


def attention_matrix(field: AbstractField, x: Array, t=0.0) -> Array:
    """Attention weights of ``field`` at state(s) ``x``.

    ``x`` is one configuration or has extra leading axes (time, ensemble); ``t`` is a
    scalar or broadcasts against those axes (the rescaled field of paper 001 depends on t).
    Returns (..., n, n), or (..., H, n, n) for a multi-head field (H > 1).
    """
    if not hasattr(field, "attention_matrix"):
        raise TypeError(f"{type(field).__name__} has no attention matrix")
    x = check_tokens(x, min_ndim=field.event_ndim)
    extra = x.ndim - field.event_ndim
    t = jnp.broadcast_to(jnp.asarray(t, dtype=x.dtype), x.shape[:extra])

    def one(ti, xi):
        p = field.attention_matrix(ti, xi)
        return p[0] if p.shape[0] == 1 else p

    fn = one
    for _ in range(extra):
        fn = jax.vmap(fn)
    return fn(t, x)


def trajectory_attention(trajectory) -> Array:
    """P(t) at every saved time of a [`jaxattn.Trajectory`][jaxattn.Trajectory] (ensembles included)."""
    ts = trajectory.ts
    if trajectory.is_ensemble:
        ts = jnp.broadcast_to(ts, trajectory.xs.shape[: 2])
    return attention_matrix(trajectory.field, trajectory.xs, ts)
