"""Wendel's theorem (Geshkovski et al. 2023, Thm 4.5): the probability that n uniform points of
S^{d-1} lie in an open hemisphere, exactly and by Monte Carlo with a linear-programming test."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

__all__ = ["hemisphere_margin", "in_open_hemisphere", "wendel_monte_carlo", "wendel_probability"]


def wendel_probability(n: int, d: int) -> float:
    """P(n i.i.d. uniform points of S^{d-1} lie in an open hemisphere) = 2^{-(n-1)} sum_{k<d} C(n-1, k).

    **Arguments:**

    - `n`: the number of points, int >= 1.
    - `d`: the dimension, int >= 1.

    **Returns:**

    The probability, a float.

    **Raises:**

    - `ValueError`: n < 1 or d < 1.
    """
    if n < 1 or d < 1:
        raise ValueError("need n, d >= 1")
    return math.fsum(math.comb(n - 1, k) for k in range(min(d, n))) / 2 ** (n - 1)


def hemisphere_margin(x: np.ndarray) -> float:
    """max_{|w|_inf <= 1} min_i ⟨x_i, w⟩ by linear programming.

    > 0 exactly when all points lie in an open hemisphere {⟨x, w⟩ > 0}.

    **Arguments:**

    - `x`: the points (rows), a NumPy array (n, d).

    **Returns:**

    The margin, a float.

    **Raises:**

    - `RuntimeError`: the linear program fails.
    """
    from scipy.optimize import linprog

    x = np.asarray(x, dtype=float)
    n, d = x.shape
    # variables (w, s): maximise s subject to s - <x_i, w> <= 0, -1 <= w <= 1, s <= 1
    c = np.zeros(d + 1)
    c[-1] = -1.0
    a_ub = np.hstack([-x, np.ones((n, 1))])
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(n), bounds=[(-1, 1)] * d + [(None, 1)], method="highs")
    if res.status != 0:  # pragma: no cover - the LP is always feasible and bounded
        raise RuntimeError(f"hemisphere LP failed: {res.message}")
    return float(-res.fun)


def in_open_hemisphere(x: np.ndarray, tol: float = 1e-9) -> bool:
    """True when the points x_i (rows) lie in an open hemisphere (LP margin > tol).

    **Arguments:**

    - `x`: the points (rows), a NumPy array (n, d).
    - `tol`: the least margin; default 1e-9.

    **Returns:**

    A bool.
    """
    return hemisphere_margin(x) > tol


def wendel_monte_carlo(n: int, d: int, draws: int, seed: int = 0) -> xr.Dataset:
    """Monte Carlo of Wendel's probability with the LP hemisphere test (Thm 4.5).

    **Arguments:**

    - `n`: the number of points, int >= 1.
    - `d`: the dimension, int >= 1.
    - `draws`: the number of Monte Carlo draws.
    - `seed`: the seed; default 0.

    **Returns:**

    An ``xarray.Dataset`` with ``estimate``, ``exact`` and ``stderr`` (the binomial standard error).
    """
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(draws):
        g = rng.standard_normal((n, d))
        hits += in_open_hemisphere(g / np.linalg.norm(g, axis=1, keepdims=True))
    p = hits / draws
    exact = wendel_probability(n, d)
    return xr.Dataset({"estimate": p, "exact": exact,
                       "stderr": math.sqrt(max(exact * (1 - exact), 1e-300) / draws)},
                      attrs=dict(n=n, d=d, draws=draws, seed=seed, paper="002 Thm 4.5"))
