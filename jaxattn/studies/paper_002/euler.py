"""The time stretch of the authors' scheme of Geshkovski et al. (2023) (code ``phase-diagrams.py``):
forward Euler with a fixed step h on the *unprojected* attention output followed by renormalisation
([`jaxattn.studies.euler.euler_renormalise`][jaxattn.studies.euler.euler_renormalise]) stretches time by ~ 1 + h e^beta/(e^beta + n - 1)
(``docs/errata.md``); the library default is an adaptive projected solve.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from ...analysis import gamma_crossing_time
from ..euler import euler_renormalise

__all__ = ["euler_bias"]


def euler_bias(beta: float, n: int, *, h: float = 0.1, delta: float = 1e-2) -> xr.Dataset:
    """Time stretch of the authors' Euler scheme on the exact one-parameter family of Thm 4.6.

    With orthogonal initial tokens x_i = e_i (d = n) every scheme that is equivariant
    under permutations keeps all pairwise inner products equal, so the Euler-renormalise
    iterates and the exact flow gamma_beta(t) are directly comparable. Returns the Euler
    crossing time of 1 - delta, the exact t* (eq. (4.11)) and their ratio; the predicted
    stretch is ~1 + h e^beta / (e^beta + n - 1) (1.08 at beta = 5, n = 32; ``docs/errata.md``).

    **Arguments:**

    - `beta`: the inverse temperature, float > 0.
    - `n`: the number of tokens (and the dimension d = n).
    - `h`: the Euler step; default 0.1.
    - `delta`: the crossing threshold 1 - delta of the inner products; default 1e-2.

    **Returns:**

    An ``xarray.Dataset`` with ``t_euler``, ``t_exact``, ``ratio`` and ``predicted_ratio``.

    **Raises:**

    - `RuntimeError`: the Euler iterates do not cross 1 - delta within the horizon.
    """
    t_exact = float(gamma_crossing_time(beta, n, delta))
    steps = int(math.ceil(1.5 * t_exact / h)) + 10
    xs = euler_renormalise(beta, np.eye(n), h, steps)
    g = np.sum(xs[:, 0] * xs[:, 1], -1)  # <x_1, x_2> after k steps
    k = int(np.argmax(g >= 1 - delta))
    if g[k] < 1 - delta:
        raise RuntimeError("the Euler iterates did not cross 1 - delta; increase the horizon")
    # linear interpolation between the bracketing steps
    t_euler = h * (k - 1 + (1 - delta - g[k - 1]) / (g[k] - g[k - 1]))
    predicted = 1 + h * math.exp(beta) / (math.exp(beta) + n - 1)
    return xr.Dataset({"t_euler": t_euler, "t_exact": t_exact, "ratio": t_euler / t_exact,
                       "predicted_ratio": predicted},
                      attrs=dict(beta=beta, n=n, h=h, delta=delta, paper="002 authors' scheme, Figs 2-4"))
