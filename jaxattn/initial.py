"""Initial conditions, all keyed by a JAX PRNG key.

Every sampler takes ``batch=None`` (one configuration) or an int (an ensemble with a
leading batch axis) and a ``dtype`` (float64 by default; pass ``jnp.float32`` to opt in to
single precision, see `jaxattn._config`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray


def _shape(batch: int | None, *event: int) -> tuple[int, ...]:
    for name, v in zip(("n", "d"), event):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if batch is None:
        return event
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be None or a positive int, got {batch!r}")
    return (batch, *event)


def _dtype(dtype):
    return jnp.result_type(float) if dtype is None else jnp.dtype(dtype)


def project_to_sphere(x: Float[ArrayLike, "... d"]) -> Float[Array, "... d"]:
    """Normalise each token to unit length (x -> x / |x|); zero vectors are an error."""
    x = jnp.asarray(x)
    norms = jnp.linalg.norm(x, axis=-1, keepdims=True)
    if not isinstance(norms, jax.core.Tracer) and bool(jnp.any(norms == 0)):
        raise ValueError("cannot project a zero vector onto the sphere")
    return x / norms


def uniform_sphere(key: PRNGKeyArray, n: int, d: int, *, batch: int | None = None, dtype=None) -> Array:
    """n i.i.d. tokens uniform on S^{d-1} (normalised Gaussians); shape (n, d) or (batch, n, d)."""
    shape = _shape(batch, n, d)
    if d < 2:
        raise ValueError("the sphere S^(d-1) needs d >= 2")
    return project_to_sphere(jax.random.normal(key, shape, dtype=_dtype(dtype)))


def uniform_circle(key: PRNGKeyArray, n: int, *, batch: int | None = None, dtype=None) -> Array:
    """n i.i.d. uniform angles in [-pi, pi); shape (n,) or (batch, n)."""
    shape = _shape(batch, n)
    return jax.random.uniform(key, shape, dtype=_dtype(dtype), minval=-jnp.pi, maxval=jnp.pi)


def uniform_cube(key: PRNGKeyArray, n: int, d: int, *, low: float = -1.0, high: float = 1.0,
                 batch: int | None = None, dtype=None) -> Array:
    """n i.i.d. tokens uniform in [low, high]^d (paper 001 uses [-5, 5]^d)."""
    if not high > low:
        raise ValueError(f"need high > low, got low = {low}, high = {high}")
    shape = _shape(batch, n, d)
    return jax.random.uniform(key, shape, dtype=_dtype(dtype), minval=low, maxval=high)


def orthogonal_frame(n: int, d: int, *, dtype=None) -> Array:
    """x_i = e_i, i = 1..n (requires d >= n): the orthogonal initialisation of paper 002 Thm 4.6."""
    _shape(None, n, d)
    if d < n:
        raise ValueError(f"an orthogonal frame of n = {n} tokens needs d >= n, got d = {d}")
    return jnp.eye(n, d, dtype=_dtype(dtype))


def perturb(key: PRNGKeyArray, x: ArrayLike, scale: float, *, on_sphere: bool | None = None) -> Array:
    """x + scale * N(0, I), re-projected onto the sphere when x is on it (or ``on_sphere``)."""
    x = jnp.asarray(x)
    if not scale >= 0:
        raise ValueError(f"scale must be >= 0, got {scale}")
    y = x + scale * jax.random.normal(key, x.shape, dtype=x.dtype)
    if on_sphere is None:
        on_sphere = x.ndim >= 2 and bool(jnp.allclose(jnp.linalg.norm(x, axis=-1), 1.0, atol=1e-9))
    return project_to_sphere(y) if on_sphere else y
