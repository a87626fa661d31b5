"""Meta-stability on the circle (Geshkovski et al. 2023, Fig 3 and Problem 2): cluster counts of (SA)
in angle form over time."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ... import initial
from ...analysis import clustered_pair_fraction, count_clusters
from ...fields import CircleSelfAttention
from ...manifolds import CIRCLE
from ...solve import observe_saved, simulate
from ..sweep import solve_ensemble

__all__ = ["circle_metastability", "plot_circle_metastability"]


def circle_metastability(
    betas: Sequence[float],
    ts: Sequence[float],
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
) -> xr.Dataset:
    """Cluster counts of (SA) on the circle over time (Geshkovski et al. 2023, Fig 3, Problem 2).

    ``batch`` uniform initial angle sets per beta are integrated as one ensemble of
    [`jaxattn.CircleSelfAttention`][jaxattn.CircleSelfAttention] (angle form of (SA) on S^1). Returns per member
    and time: ``clusters`` (number of arcs separated by circular gaps > ``gap`` rad) and
    ``pair_fraction`` (ordered pairs with cos(theta_i - theta_j) >= 1 - delta, the d = 2
    phase-diagram value). Expected (200 runs): beta = 4 -> 2 clusters in
    174/200 runs at t = 30; beta = 9 -> 3 clusters in 146/200; mean counts decrease in t.
    Tolerances from the work-precision study of issue 12 (``python -m benchmarks.causal_statistics
    --circle``, benchmarks/README.md: n = 32, beta = 4 and 9, 64 draws each, t up to 300, one core):
    Tsit5 at rtol = atol = 1e-5 (the default) reproduces the mean cluster counts and clustered-pair
    fractions of an rtol 1e-10 reference exactly (as does 1e-4; 1e-3 is off by 0.016 clusters) at
    8.5 CPU-ms per member, against 17.8 at the former 1e-7 and 31 for the authors' Euler h = 0.05
    (0.047 clusters off). ``ensemble``: "vmap" (default: every member its own steps, run in
    lockstep) measured 4.2 CPU-ms per member against 16 for one shared step per 128 members
    ("batched", through [`jaxattn.studies.sweep.solve_ensemble`][jaxattn.solve.solve_ensemble], sharded over devices) and 6.7
    for "map" (``python -m benchmarks.ensembles --workload circle``, 192 members, rtol 1e-7, one core):
    members merge at different times and a shared step must resolve all of them.
    ``solver``: any diffrax solver (default Tsit5); ``x0``: (batch, n) initial angles instead of
    the seed's draws (the same draws for several integrators, as in
    ``benchmarks/causal_statistics.py --circle``).
    """
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


def plot_circle_metastability(ds: xr.Dataset, ax=None):
    """Mean cluster count against t (log axis) for each beta; the title states n, delta and the runs per beta."""
    from ...plot import parameter_title, pyplot

    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for beta in ds.beta.values:
        ax.plot(ds.t, ds.clusters.sel(beta=beta).mean("member"), "o-", label=rf"$\beta={beta:g}$")
    ax.set_xscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel("mean number of clusters")
    ax.legend()
    ax.set_title(parameter_title("SA on $S^1$", n=ds.attrs["n"], delta=ds.attrs["delta"], runs=ds.sizes["member"]),
                 fontsize=10)
    return ax
