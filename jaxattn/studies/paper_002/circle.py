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
    rtol: float = 1e-7,
    atol: float = 1e-7,
) -> xr.Dataset:
    """Cluster counts of (SA) on the circle over time (Geshkovski et al. 2023, Fig 3, Problem 2).

    ``batch`` uniform initial angle sets per beta are integrated as one batched state of
    :class:`jaxattn.CircleSelfAttention` (angle form of (SA) on S^1). Returns per member
    and time: ``clusters`` (number of arcs separated by circular gaps > ``gap`` rad) and
    ``pair_fraction`` (ordered pairs with cos(theta_i - theta_j) >= 1 - delta, the d = 2
    phase-diagram value). Expected (200 runs): beta = 4 -> 2 clusters in
    174/200 runs at t = 30; beta = 9 -> 3 clusters in 146/200; mean counts decrease in t.
    """
    ts = np.asarray(ts, dtype=float)
    out = []
    x0 = initial.uniform_circle(jax.random.PRNGKey(seed), n, batch=batch)
    for beta in betas:
        def observe(ts_, th):
            x = jnp.stack([jnp.cos(th), jnp.sin(th)], -1)
            return {"clusters": count_clusters(th, manifold="circle", gap=gap),
                    "pair_fraction": clustered_pair_fraction(x, delta)}

        obs = solve_ensemble(CircleSelfAttention(beta), x0, float(ts[-1]), ts=jnp.asarray(ts),
                             observe=observe, rtol=rtol, atol=atol, max_steps=2**20)
        out.append(xr.Dataset({"clusters": (("member", "t"), obs["clusters"]),
                               "pair_fraction": (("member", "t"), obs["pair_fraction"])},
                              coords={"t": ts}))
    ds = xr.concat(out, dim=xr.DataArray(list(map(float, betas)), dims="beta", name="beta"))
    ds.attrs.update(n=n, batch=batch, seed=seed, gap=gap, delta=delta, model="SA on S^1",
                    paper="002 Fig 3, Problem 2")
    return ds


def plot_circle_metastability(ds: xr.Dataset, ax=None):
    """Mean cluster count against t (log axis) for each beta."""
    from ...plot import pyplot

    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for beta in ds.beta.values:
        ax.plot(ds.t, ds.clusters.sel(beta=beta).mean("member"), "o-", label=rf"$\beta={beta:g}$")
    ax.set_xscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel("mean number of clusters")
    ax.legend()
    return ax
