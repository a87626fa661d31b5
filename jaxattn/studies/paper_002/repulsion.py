"""Repulsive dynamics V = -I (Geshkovski et al. 2023, §7.1): long-time states against the sharp
(universally optimal) configurations of Cohn and Kumar (2007), the global minimisers of E_beta
(Thm 7.2 is printed with the direction reversed: ``docs/errata.md``)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ... import initial
from ...analysis import interaction_energy
from ...fields import UnnormalisedSelfAttention
from ...solve import simulate

__all__ = ["repulsive_configuration", "sharp_configuration"]


def sharp_configuration(name: str, *, n: int | None = None, d: int | None = None) -> np.ndarray:
    """Known sharp (universally optimal) configurations: ``polygon`` (n points, d = 2),
    ``simplex`` (n = d + 1), ``cross`` (cross-polytope, n = 2d), ``icosahedron`` (n = 12, d = 3).

    **Arguments:**

    - `name`: "polygon", "simplex", "cross" or "icosahedron".
    - `n`: the number of points of ``polygon``; default None.
    - `d`: the dimension of ``simplex`` and ``cross``; default None.

    **Returns:**

    Unit vectors, a NumPy array (n, d).

    **Raises:**

    - `ValueError`: an unknown name.
    """
    if name == "polygon":
        a = 2 * np.pi * np.arange(n) / n
        return np.stack([np.cos(a), np.sin(a)], 1)
    if name == "simplex":
        e = np.eye(d + 1) - 1.0 / (d + 1)
        u, s, vt = np.linalg.svd(e)
        x = e @ vt[:d].T
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    if name == "cross":
        return np.concatenate([np.eye(d), -np.eye(d)])
    if name == "icosahedron":
        p = (1 + math.sqrt(5)) / 2
        pts = []
        for a in (-1, 1):
            for b in (-p, p):
                pts += [(0, a, b), (a, b, 0), (b, 0, a)]
        x = np.array(pts, float)
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    raise ValueError(f"unknown configuration {name!r}")


def repulsive_configuration(n: int, d: int, *, beta: float = 1.0, t1: float = 2000.0, seeds=(0,),
                            rtol: float = 1e-10, atol: float = 1e-10) -> xr.Dataset:
    """Long-time state of the repulsive dynamics V = -I (Geshkovski et al. 2023, §7.1).

    Time-rescaled USA (weights e^{beta(⟨x_i, x_j⟩ - 1)}/n) with V = -I: a gradient *descent*
    of E_beta on (S^{d-1})^n. Returns the final configurations, their energies and sorted
    Gram matrices; compare with `sharp_configuration` and [`jaxattn.analysis.interaction_energy`][jaxattn.analysis.interaction_energy].

    **Arguments:**

    - `n`: the number of tokens.
    - `d`: the dimension.
    - `beta`: the inverse temperature; default 1.
    - `t1`: the final time; default 2000.
    - `seeds`: the seeds of the uniform initial tokens; default (0,).
    - `rtol`: relative tolerance; default 1e-10.
    - `atol`: absolute tolerance; default 1e-10.

    **Returns:**

    An ``xarray.Dataset`` over (seed, t): ``x`` (tokens), ``energy`` and ``gram`` (sorted Gram matrices).
    """
    field = UnnormalisedSelfAttention(beta, V=-jnp.eye(d), time_rescaled=True)
    x0 = jnp.stack([initial.uniform_sphere(jax.random.PRNGKey(s), n, d) for s in seeds])
    traj = simulate(field, x0, t1, ts=jnp.array([0.0, t1 / 2, t1]), rtol=rtol, atol=atol,
                    max_steps=2**20)
    xs = np.asarray(traj.xs)
    energy = np.asarray(interaction_energy(traj.xs, beta))
    gram = np.einsum("stid,stjd->stij", xs, xs)
    return xr.Dataset(
        {"x": (("seed", "t", "token", "dim"), xs), "energy": (("seed", "t"), energy),
         "gram": (("seed", "t", "token", "token2"), gram)},
        coords={"seed": list(seeds), "t": np.asarray(traj.ts)},
        attrs=dict(n=n, d=d, beta=beta, model="USA time-rescaled, V = -I", paper="002 §7.1"),
    )
