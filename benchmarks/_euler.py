"""The authors' scheme compiled by XLA: x <- normalise(x + h A x), A the (causal) softmax attention of
Q = K = V = I, as one ``fori_loop`` per save interval that keeps only the states at the save times.

The NumPy form of the same step (the authors' language) is :func:`jaxattn.studies.causal.numpy_euler_causal_circle`
(circle) and ``benchmarks.longtime.numpy_euler``; this is the stronger baseline of the issue's ratios ("the
XLA-compiled Euler"): the same arithmetic without Python in the loop.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


@functools.partial(jax.jit, static_argnames=("steps", "causal"))
def _euler_steps(x, beta, h, steps: int, causal: bool):
    n = x.shape[-2]
    mask = jnp.tril(jnp.ones((n, n), bool)) if causal else None

    def step(_, x):
        logits = beta * (jnp.einsum("bid,bjd->bij", x, x) - 1.0)  # <= 0 off the diagonal: no row maximum needed
        w = jnp.exp(logits)
        if mask is not None:
            w = jnp.where(mask, w, 0.0)
        y = x + h * jnp.einsum("bij,bjd->bid", w, x) / jnp.sum(w, axis=-1, keepdims=True)
        return y / jnp.linalg.norm(y, axis=-1, keepdims=True)

    return jax.lax.fori_loop(0, steps, step, x)


def xla_euler(x0, beta: float, ts, h: float, *, causal: bool = False, angles: bool = False) -> np.ndarray:
    """States at the save times ``ts`` (multiples of h) of the compiled Euler scheme from ``x0``: (batch, n, d)
    tokens, or (batch, n) angles with ``angles`` (then angles are returned); (batch, T, ...)."""
    x = jnp.asarray(x0, jnp.float64)
    if angles:
        x = jnp.stack([jnp.cos(x), jnp.sin(x)], -1)
    out, done = [], 0
    for t in np.asarray(ts, float):
        k = int(round(t / h))
        if abs(k * h - t) > 1e-9 or k < done:
            raise ValueError(f"save times must be non-decreasing multiples of h = {h}, got {t}")
        if k > done:
            x = _euler_steps(x, beta, h, k - done, causal)
            done = k
        out.append(x)
    xs = jnp.stack(out, 1)
    return np.asarray(jnp.arctan2(xs[..., 1], xs[..., 0]) if angles else xs)
