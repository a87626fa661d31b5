"""The authors' scheme of Geshkovski et al. (2023) (code ``phase-diagrams.py``): forward Euler with a
fixed step h on the *unprojected* attention output followed by renormalisation. It stretches time by
~ 1 + h e^beta/(e^beta + n - 1) (``docs/errata.md``): `euler_renormalise` reproduces it for
comparison only; the library default is an adaptive projected solve.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jaxtyping import Array

from ...analysis import gamma_crossing_time

__all__ = ["euler_bias", "euler_renormalise"]


@eqx.filter_jit
def euler_renormalise(beta, x0: Array, h: float, num_steps: int, *, Q=None, K=None, V=None,
                      unnormalised: bool = False) -> Array:
    """The authors' scheme (``phase-diagrams.py``): x <- normalise(x + h A V x), h fixed.

    A is the (softmax, or /n for USA) attention matrix; the increment is **not** projected
    on the tangent space, so each step also shrinks the tangential move by 1/|x + h y|:
    a first-order method whose time is stretched by ~1 + h <x_i, y_i> (``docs/errata.md``).
    ``x0`` is (..., n, d); returns the states after 0, 1, ..., num_steps steps, stacked on
    axis 0 (times k h). For comparisons only; not the library's integrator.
    """
    d = x0.shape[-1]
    Q = jnp.eye(d) if Q is None else Q
    K = jnp.eye(d) if K is None else K
    V = jnp.eye(d) if V is None else V

    def one(x):
        logits = beta * (x @ Q.T) @ (x @ K.T).T
        if unnormalised:
            a = jnp.exp(logits) / x.shape[0]
        else:
            a = jax.nn.softmax(logits, axis=-1)
        y = x + h * (a @ (x @ V.T))
        return y / jnp.linalg.norm(y, axis=-1, keepdims=True)

    step = one
    for _ in range(x0.ndim - 2):
        step = jax.vmap(step)

    def body(x, _):
        x = step(x)
        return x, x

    _, xs = jax.lax.scan(body, x0, None, length=num_steps)
    return jnp.concatenate([x0[None], xs], axis=0)


def euler_bias(beta: float, n: int, *, h: float = 0.1, delta: float = 1e-2) -> xr.Dataset:
    """Time stretch of the authors' Euler scheme on the exact one-parameter family of Thm 4.6.

    With orthogonal initial tokens x_i = e_i (d = n) every scheme that is equivariant
    under permutations keeps all pairwise inner products equal, so the Euler-renormalise
    iterates and the exact flow gamma_beta(t) are directly comparable. Returns the Euler
    crossing time of 1 - delta, the exact t* (eq. (4.11)) and their ratio; the predicted
    stretch is ~1 + h e^beta / (e^beta + n - 1) (1.08 at beta = 5, n = 32; ``docs/errata.md``).
    """
    t_exact = float(gamma_crossing_time(beta, n, delta))
    steps = int(math.ceil(1.5 * t_exact / h)) + 10
    x0 = jnp.eye(n)
    xs = euler_renormalise(jnp.asarray(beta), x0, h, steps)
    g = np.asarray(jnp.sum(xs[:, 0] * xs[:, 1], -1))  # <x_1, x_2> after k steps
    k = int(np.argmax(g >= 1 - delta))
    if g[k] < 1 - delta:
        raise RuntimeError("the Euler iterates did not cross 1 - delta; increase the horizon")
    # linear interpolation between the bracketing steps
    t_euler = h * (k - 1 + (1 - delta - g[k - 1]) / (g[k] - g[k - 1]))
    predicted = 1 + h * math.exp(beta) / (math.exp(beta) + n - 1)
    return xr.Dataset({"t_euler": t_euler, "t_exact": t_exact, "ratio": t_euler / t_exact,
                       "predicted_ratio": predicted},
                      attrs=dict(beta=beta, n=n, h=h, delta=delta, paper="002 authors' scheme, Figs 2-4"))
