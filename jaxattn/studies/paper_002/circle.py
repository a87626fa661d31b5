"""Meta-stability on the circle (Geshkovski et al. 2023, Fig 3 and Problem 2): cluster counts of (SA)
in angle form over time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ... import initial
from ...analysis import clustered_pair_fraction, count_clusters
from ...fields import CircleSelfAttention
from ...manifolds import CIRCLE
from ...solve import observe_saved, simulate, solve_ensemble
from ...sweeps import AbstractPoint, run_sweep

__all__ = ["CircleMetastabilityPoint", "circle_metastability"]


def circle_metastability(
    betas: Sequence[float] | np.ndarray,
    ts: Sequence[float] | np.ndarray,
    *,
    n: int = 32,
    batch: int = 200,
    seed: int = 0,
    gap: float = 0.1,
    delta: float = 1e-2,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    solver=None,
    x0=None,
    ensemble: str = "vmap",
    directory=None,
    progress: bool = False,
) -> xr.Dataset:
    """Cluster counts of (SA) on the circle over time (Geshkovski et al. 2023, Fig 3, Problem 2).

    ``batch`` uniform initial angle sets per beta are integrated as one ensemble of
    [`jaxattn.CircleSelfAttention`][jaxattn.CircleSelfAttention] (angle form of (SA) on S^1). Expected (200 runs):
    beta = 4 -> 2 clusters in 174/200 runs at t = 30; beta = 9 -> 3 clusters in 146/200; mean counts
    decrease in t. Tolerances from the work-precision study (``python -m benchmarks.causal_statistics
    --circle``: n = 32, beta = 4 and 9, 64 draws each, t up to 300): Tsit5 at rtol = atol = 1e-5 (the
    default) reproduces the mean cluster counts and clustered-pair fractions of an rtol 1e-10 reference
    exactly (as does 1e-4; 1e-3 is off by 0.016 clusters; the authors' Euler h = 0.05 by 0.047). The
    costs of these tolerances and of the three ensemble strategies are measured in
    ``benchmarks/README.md`` ("Circle metastability sweep", "Ensemble strategy per workload"): members
    merge at different times and a shared step must resolve all of them, so "vmap" is the default.

    **Arguments:**

    - `betas`: the inverse temperatures, floats > 0.
    - `ts`: the save times, non-decreasing, from 0.
    - `n`: the number of tokens; default 32.
    - `batch`: the number of initial angle sets per beta; default 200.
    - `seed`: the seed of the uniform initial angles; default 0.
    - `gap`: the least circular gap (radians) that separates two clusters; default 0.1.
    - `delta`: the threshold of ``pair_fraction``; default 1e-2.
    - `rtol`: relative tolerance; default 1e-5.
    - `atol`: absolute tolerance; default 1e-5.
    - `solver`: any diffrax solver; default None (Tsit5).
    - `x0`: (batch, n) initial angles instead of the seed's draws (the same draws for several
        integrators, as in ``benchmarks/causal_statistics.py --circle``); default None.
    - `ensemble`: "vmap" (default: every member its own steps, run in lockstep), "map", or "batched"
        (one shared step, through [`jaxattn.solve.solve_ensemble`][jaxattn.solve.solve_ensemble], sharded over devices).
    - `directory`: run each beta as a point of a resumable sweep ([`jaxattn.sweeps`][jaxattn.sweeps]; the merged
        ``directory/circle.nc``, what ``jaxattn sweep circle`` writes), the same draws for every beta;
        the result is the same as without; default None.
    - `progress`: show the sweep's progress bar; default False.

    **Returns:**

    An ``xarray.Dataset`` over (beta, member, t): ``clusters`` (the number of arcs separated by circular
    gaps > ``gap`` rad) and ``pair_fraction`` (ordered pairs with cos(theta_i - theta_j) >= 1 - delta,
    the d = 2 phase-diagram value).

    **Raises:**

    - `ValueError`: an unknown ``ensemble``, or ``x0`` not of shape (batch, n).
    """
    if directory is not None:
        point = CircleMetastabilityPoint(ts=tuple(float(t) for t in np.asarray(ts, dtype=float)), n=n, batch=batch,
                                         gap=gap, delta=delta, rtol=rtol, atol=atol, solver=solver,
                                         x0=None if x0 is None else np.asarray(x0), ensemble=ensemble)
        ds = run_sweep(point, {"beta": [float(b) for b in betas]}, seeds=[seed], directory=directory, name="circle",
                       attrs=dict(n=n, batch=batch, gap=gap, delta=delta, model="SA on S^1",
                                  paper="002 Fig 3, Problem 2"), progress=progress)
        return ds.isel(seed=0)
    if ensemble not in ("vmap", "map", "batched"):
        raise ValueError(f"ensemble must be 'vmap', 'map' or 'batched', got {ensemble!r}")
    ts = np.asarray(ts, dtype=float)
    out = []
    if x0 is None:
        x0 = initial.uniform_circle(jax.random.PRNGKey(seed), n, batch=batch)
    elif jnp.shape(x0) != (batch, n):
        raise ValueError(f"x0 must be (batch, n) = ({batch}, {n}) initial angles, got shape {jnp.shape(x0)}")
    for beta in betas:
        def observe(t, th):
            x = jnp.stack([jnp.cos(th), jnp.sin(th)], -1)
            return {"clusters": count_clusters(th, manifold=CIRCLE, gap=gap),
                    "pair_fraction": clustered_pair_fraction(x, delta)}

        if ensemble == "batched":
            obs = solve_ensemble(CircleSelfAttention(beta), x0, float(ts[-1]), ts=jnp.asarray(ts),
                                 observe=observe, rtol=rtol, atol=atol, max_steps=2**20, solver=solver)
        else:
            traj = simulate(CircleSelfAttention(beta), x0, float(ts[-1]), ts=jnp.asarray(ts), rtol=rtol, atol=atol,
                            max_steps=2**20, solver=solver, ensemble=ensemble)
            obs = observe_saved(observe, traj.ts, traj.xs)
        out.append(xr.Dataset({"clusters": (("member", "t"), obs["clusters"]),
                               "pair_fraction": (("member", "t"), obs["pair_fraction"])},
                              coords={"t": ts}))
    ds = xr.concat(out, dim=xr.DataArray(list(map(float, betas)), dims="beta", name="beta"))
    ds.attrs.update(n=n, batch=batch, seed=seed, gap=gap, delta=delta, model="SA on S^1",
                    paper="002 Fig 3, Problem 2")
    return ds




class CircleMetastabilityPoint(AbstractPoint):
    """One beta of `circle_metastability` (the seed draws the angles): a sweep point.

    **Arguments:**

    - `ts`: the save times, a tuple of floats.
    - `n`: the number of tokens.
    - `batch`: the number of initial angle sets.
    - `gap`: the least circular gap of two clusters (radians).
    - `delta`: the threshold of ``pair_fraction``.
    - `rtol`: relative tolerance.
    - `atol`: absolute tolerance.
    - `solver`: a diffrax solver, or None (Tsit5).
    - `x0`: (batch, n) initial angles, or None (the seed's draws).
    - `ensemble`: "vmap", "map" or "batched".
    """

    identity_name: ClassVar[str] = "jaxattn.studies.paper_002.circle_metastability"
    identity_version: ClassVar[int] = 1
    ts: tuple[float, ...]
    n: int
    batch: int
    gap: float
    delta: float
    rtol: float
    atol: float
    solver: object
    x0: object
    ensemble: str

    def __call__(self, seed: int, beta: float) -> xr.Dataset:
        """`circle_metastability` at one beta.

        **Arguments:**

        - `seed`: the seed of the initial angles.
        - `beta`: the inverse temperature.

        **Returns:**

        The ``xarray.Dataset`` over (member, t), without the beta axis and the attributes.
        """
        ds = circle_metastability([beta], self.ts, n=self.n, batch=self.batch, seed=seed, gap=self.gap,
                                  delta=self.delta, rtol=self.rtol, atol=self.atol, solver=self.solver, x0=self.x0,
                                  ensemble=self.ensemble)
        return ds.isel(beta=0, drop=True).drop_attrs()
