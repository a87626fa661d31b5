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
    """Normalise each token to unit length: x_i -> x_i / |x_i| (onto S^{d-1}).

    **Arguments:**

    - `x`: tokens, float (..., d); no zero row.

    **Returns:**

    x / |x| along the last axis, float (..., d).

    **Raises:**

    - `ValueError`: a token is the zero vector (checked on concrete values; a traced zero row gives NaN).
    """
    x = jnp.asarray(x)
    norms = jnp.linalg.norm(x, axis=-1, keepdims=True)
    if not isinstance(norms, jax.core.Tracer) and bool(jnp.any(norms == 0)):
        raise ValueError("cannot project a zero vector onto the sphere")
    return x / norms


def uniform_sphere(key: PRNGKeyArray, n: int, d: int, *, batch: int | None = None, dtype=None) -> Array:
    """n i.i.d. tokens uniform on S^{d-1}: normalised standard Gaussians x_i = g_i / |g_i|.

    **Arguments:**

    - `key`: a JAX PRNG key.
    - `n`: number of tokens, a positive int.
    - `d`: ambient dimension, an int >= 2.
    - `batch`: None (default) for one configuration, or a positive int for an ensemble.
    - `dtype`: float dtype; default None: float64 (``jnp.float32`` opts in to single precision).

    **Returns:**

    Tokens of shape (n, d), or (batch, n, d), each of unit norm.

    **Raises:**

    - `ValueError`: ``n``, ``batch`` not positive ints, or ``d`` < 2.
    """
    shape = _shape(batch, n, d)
    if d < 2:
        raise ValueError("the sphere S^(d-1) needs d >= 2")
    return project_to_sphere(jax.random.normal(key, shape, dtype=_dtype(dtype)))


def uniform_circle(key: PRNGKeyArray, n: int, *, batch: int | None = None, dtype=None) -> Array:
    """n i.i.d. angles uniform on S^1, in [-pi, pi).

    **Arguments:**

    - `key`: a JAX PRNG key.
    - `n`: number of tokens, a positive int.
    - `batch`: None (default) for one configuration, or a positive int for an ensemble.
    - `dtype`: float dtype; default None: float64.

    **Returns:**

    Angles (radians) of shape (n,), or (batch, n).

    **Raises:**

    - `ValueError`: ``n`` or ``batch`` is not a positive int.
    """
    shape = _shape(batch, n)
    return jax.random.uniform(key, shape, dtype=_dtype(dtype), minval=-jnp.pi, maxval=jnp.pi)


def uniform_cube(key: PRNGKeyArray, n: int, d: int, *, low: float = -1.0, high: float = 1.0,
                 batch: int | None = None, dtype=None) -> Array:
    """n i.i.d. tokens uniform in the cube [low, high]^d (the unconstrained dynamics in R^d of
    Geshkovski et al. 2023 (emergence) are started from [-5, 5]^d in the paper-001 study).

    **Arguments:**

    - `key`: a JAX PRNG key.
    - `n`: number of tokens, a positive int.
    - `d`: dimension, a positive int.
    - `low`: lower bound of every coordinate; default -1.
    - `high`: upper bound, > low; default 1.
    - `batch`: None (default) for one configuration, or a positive int for an ensemble.
    - `dtype`: float dtype; default None: float64.

    **Returns:**

    Tokens of shape (n, d), or (batch, n, d).

    **Raises:**

    - `ValueError`: ``high`` <= ``low``, or ``n``, ``d``, ``batch`` not positive ints.
    """
    if not high > low:
        raise ValueError(f"need high > low, got low = {low}, high = {high}")
    shape = _shape(batch, n, d)
    return jax.random.uniform(key, shape, dtype=_dtype(dtype), minval=low, maxval=high)


def orthogonal_frame(n: int, d: int, *, dtype=None) -> Array:
    """The orthogonal frame x_i = e_i, i = 1..n: the orthogonal initialisation of Geshkovski et al. 2023
    (perspective), Theorem 4.6 (all pairwise inner products 0, so ⟨x_i(t), x_j(t)⟩ = gamma_beta(t) for
    every pair).

    **Arguments:**

    - `n`: number of tokens, a positive int.
    - `d`: dimension, an int >= n.
    - `dtype`: float dtype; default None: float64.

    **Returns:**

    The (n, d) matrix of the first n standard basis vectors (deterministic).

    **Raises:**

    - `ValueError`: ``d`` < ``n``, or ``n``, ``d`` not positive ints.
    """
    _shape(None, n, d)
    if d < n:
        raise ValueError(f"an orthogonal frame of n = {n} tokens needs d >= n, got d = {d}")
    return jnp.eye(n, d, dtype=_dtype(dtype))


def perturb(key: PRNGKeyArray, x: ArrayLike, scale: float, *, on_sphere: bool | None = None) -> Array:
    """A Gaussian perturbation x + scale g, g ~ N(0, I), re-projected onto the sphere when x is on it.

    **Arguments:**

    - `key`: a JAX PRNG key.
    - `x`: tokens, float (..., d) (or angles), any leading axes.
    - `scale`: the standard deviation, >= 0.
    - `on_sphere`: project the result onto the sphere (x_i -> x_i / |x_i|); default None: when every
        token of ``x`` has unit norm (to 1e-9) and ``x`` has at least 2 axes.

    **Returns:**

    The perturbed tokens, the shape and dtype of ``x``.

    **Raises:**

    - `ValueError`: ``scale`` < 0 (or NaN), or a perturbed token is exactly zero when projecting.
    """
    x = jnp.asarray(x)
    if not scale >= 0:
        raise ValueError(f"scale must be >= 0, got {scale}")
    y = x + scale * jax.random.normal(key, x.shape, dtype=x.dtype)
    if on_sphere is None:
        on_sphere = x.ndim >= 2 and bool(jnp.allclose(jnp.linalg.norm(x, axis=-1), 1.0, atol=1e-9))
    return project_to_sphere(y) if on_sphere else y
