"""The papers' authors' scheme, for comparisons: forward Euler on the attention output, then renormalisation.

Geshkovski et al. (2023, code ``phase-diagrams.py``) and Karagodin, Polyanskiy, Rigollet (2024, the
first author's notebook) integrate (SA) and its causal variant with a fixed step h:

    x_i <- (x_i + h y_i) / |x_i + h y_i|,    y_i = sum_j A_ij V x_j,
    A_ij = e^{beta ⟨Q x_i, K x_j⟩} / Z_i  (row-normalised over the attended j <= i if causal; / n for USA)

The increment is **not** projected on the tangent space, so every step also shrinks the tangential
move by 1/|x_i + h y_i|: a first-order method whose time is stretched by ~ 1 + h ⟨x_i, y_i⟩
(``docs/errata.md``). It is the baseline of the studies (`.paper_002.euler_bias`,
[`.paper_003.numpy_euler_causal_circle`][jaxattn.studies.paper_003.numpy_euler_causal_circle]) and of ``benchmarks/causal_statistics.py``; the
library's integrator is the adaptive projected solve of [`jaxattn.simulate`][jaxattn.simulate]. Plain NumPy in
float64 (the authors' language), one call per ensemble: the benchmarks time it as the authors ran it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from jaxtyping import ArrayLike

__all__ = ["euler_renormalise"]


def euler_renormalise(beta: float, x0: ArrayLike, h: float, steps: int | Sequence[int] | np.ndarray, *,
                      Q: ArrayLike | None = None,
                      K: ArrayLike | None = None, V: ArrayLike | None = None, unnormalised: bool = False,
                      causal: bool = False) -> np.ndarray:
    """Iterate the authors' step x <- normalise(x + h A V x) (module docstring) from ``x0``.

    **Arguments:**

    - `beta`: the inverse temperature, float.
    - `x0`: unit tokens, float (..., n, d) (any leading ensemble axes).
    - `h`: the fixed step, finite float > 0.
    - `steps`: an int N (save after 0, 1, ..., N steps) or the non-decreasing step counts >= 0 at
        which to save (save time k h).
    - `Q`: a (d, d) matrix; default None (the identity); logits beta ⟨Q x_i, K x_j⟩.
    - `K`: a (d, d) matrix; default None (the identity).
    - `V`: a (d, d) matrix; default None (the identity).
    - `unnormalised`: USA (A = e^{logits} / n) instead of SA (softmax rows); default False.
    - `causal`: token i attends to j <= i only (the causal mask of paper 003); default False.

    **Returns:**

    The saved states stacked on axis 0, a NumPy array (number of saves, ..., n, d).

    **Raises:**

    - `ValueError`: ``x0`` not of shape (..., n, d), ``causal`` with ``unnormalised``, an invalid ``h`` or ``steps``.
    """
    x = np.array(x0, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"x0 must be (..., n, d) tokens, got shape {x.shape}")
    if unnormalised and causal:
        raise ValueError("the causal scheme of paper 003 normalises the attention rows: pass unnormalised=False")
    if not (np.isfinite(h) and h > 0):
        raise ValueError(f"h must be a finite step > 0, got {h!r}")
    save = np.arange(int(steps) + 1) if np.ndim(steps) == 0 else np.asarray(steps, dtype=int)
    if save.ndim != 1 or save.size == 0 or save[0] < 0 or np.any(np.diff(save) < 0):
        raise ValueError(f"steps must be an int >= 0 or non-decreasing step counts >= 0, got {steps!r}")
    n, d = x.shape[-2:]
    qk = None if Q is None and K is None else (np.eye(d) if Q is None else np.asarray(Q, float)).T @ (
        np.eye(d) if K is None else np.asarray(K, float))
    vt = None if V is None else np.asarray(V, float).T
    mask = np.tril(np.ones((n, n), dtype=bool)) if causal else None

    w = np.empty((*x.shape[:-1], n))  # one (..., n, n) buffer for every step: no allocation per step

    def step(x, w=w):
        np.matmul(x if qk is None else x @ qk, np.swapaxes(x, -1, -2), out=w)
        if qk is None and not unnormalised:  # <x_i, x_j> <= 1 = <x_i, x_i>: shift by the row maximum beta
            w -= 1.0
        elif not unnormalised:
            w -= w.max(axis=-1, keepdims=True)
        w *= beta
        np.exp(w, out=w)
        if mask is not None:
            w *= mask
        w /= n if unnormalised else w.sum(axis=-1, keepdims=True)
        y = x + h * (w @ (x if vt is None else x @ vt))
        y /= np.linalg.norm(y, axis=-1, keepdims=True)
        return y

    out = np.empty((len(save), *x.shape))
    done = 0
    for k, target in enumerate(save):
        while done < target:
            x = step(x)
            done += 1
        out[k] = x
    return out
