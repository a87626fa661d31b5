"""Attention matrices P(t) along trajectories."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array

from ..fields import AbstractField
from ._checks import check_tokens


def attention_matrix(field: AbstractField, x: Array, t=0.0) -> Array:
    """The attention weights P_ij of ``field`` at state(s) ``x`` (e.g. P_ij = e^{beta ⟨Q x_i, K x_j⟩} / Z_i,
    Geshkovski et al. 2023 (perspective) eq. (2.5); each field's ``attention_matrix`` gives its own).

    **Arguments:**

    - `field`: a field with an ``attention_matrix(t, x)`` method (the attention fields of
        [`jaxattn.fields`][jaxattn.fields]).
    - `x`: one configuration ((n, d) tokens or (n,) angles), or with extra leading axes (time,
        ensemble); finite floating point (integers are converted).
    - `t`: the time, a scalar or broadcasting against those leading axes (the rescaled field of
        Geshkovski et al. 2023 (emergence) depends on t); default 0.

    **Returns:**

    Float (..., n, n), or (..., H, n, n) for a multi-head field (H > 1).

    **Raises:**

    - `TypeError`: the field has no attention matrix (e.g. ``Kuramoto``), or ``x`` is not real.
    - `ValueError`: ``x`` has too few axes or (concrete values) NaN/inf entries.
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
    """The attention matrix P(t) at every saved time of a trajectory ([`attention_matrix`][jaxattn.analysis.attention_matrix]).

    **Arguments:**

    - `trajectory`: a [`jaxattn.Trajectory`][jaxattn.Trajectory] (ensembles included) of a field with an
        attention matrix.

    **Returns:**

    Float ([B,] T, n, n), or ([B,] T, H, n, n) for a multi-head field.
    """
    ts = trajectory.ts
    if trajectory.is_ensemble:
        ts = jnp.broadcast_to(ts, trajectory.xs.shape[: 2])
    return attention_matrix(trajectory.field, trajectory.xs, ts)
