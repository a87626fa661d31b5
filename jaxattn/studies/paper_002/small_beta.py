"""beta = 0 and small beta (Geshkovski et al. 2023, Thms 5.1-5.2): consensus from random starts.

beta = 0 (eq. (5.1)): [`jaxattn.SelfAttention`][jaxattn.SelfAttention] requires beta > 0, so the beta = 0 model is run as
[`jaxattn.Kuramoto`][jaxattn.Kuramoto] on the circle (exactly (6.1) at beta = 0) and as SA with beta = 1e-12 in
d >= 3 (the field is analytic in beta and differs from (5.1) by O(beta)).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ... import initial
from ...analysis import count_clusters
from ...fields import CircleSelfAttention, Kuramoto, SelfAttention
from ...manifolds import CIRCLE
from ...solve import solve_ensemble

__all__ = ["antipodal_configuration", "small_beta_consensus"]


def antipodal_configuration(n: int, d: int) -> np.ndarray:
    """n - 1 tokens at e_1 and one at -e_1: stationary for (5.1) but unstable (Thm 5.1, [FL19]).

    **Arguments:**

    - `n`: the number of tokens.
    - `d`: the dimension.

    **Returns:**

    The tokens, a NumPy array (n, d).
    """
    x = np.zeros((n, d))
    x[:, 0] = 1.0
    x[-1, 0] = -1.0
    return x


def small_beta_consensus(betas: Sequence[float], *, n: int = 32, d: int = 2, batch: int = 200,
                         t1: float = 200.0, seed: int = 0, delta: float = 1e-3) -> xr.Dataset:
    """Fraction of random starts ending in one cluster (Geshkovski et al. 2023, Thms 5.1-5.2).

    beta = 0 runs (5.1): on the circle [`jaxattn.Kuramoto`][jaxattn.Kuramoto] (K = 1, omega = 0, which
    *is* (6.1) at beta = 0); in d >= 3 SA at beta = 1e-12 (SelfAttention needs beta > 0;
    the O(beta) difference is far below the tolerances). beta > 0 runs (SA).

    **Arguments:**

    - `betas`: the inverse temperatures, floats >= 0.
    - `n`: the number of tokens; default 32.
    - `d`: the dimension; default 2.
    - `batch`: the number of uniform random starts per beta; default 200.
    - `t1`: the final time; default 200.
    - `seed`: the seed of the starts; default 0.
    - `delta`: one cluster means every inner product >= 1 - delta at t1; default 1e-3.

    **Returns:**

    An ``xarray.Dataset`` over (beta, member): ``one_cluster``, ``min_inner``, and ``fraction`` over beta.
    """
    key = jax.random.PRNGKey(seed)
    rows = []
    for beta in betas:
        if d == 2:
            field = Kuramoto() if beta == 0 else CircleSelfAttention(beta)
            x0 = initial.uniform_circle(key, n, batch=batch)

            def observe(t, th):
                return {"one_cluster": count_clusters(th, manifold=CIRCLE, gap=0.1) == 1,
                        "min_inner": jnp.min(jnp.cos(th[:, :, None] - th[:, None, :]), (-2, -1))}
        else:
            field = SelfAttention(1e-12 if beta == 0 else beta)
            x0 = initial.uniform_sphere(key, n, d, batch=batch)

            def observe(t, xs):
                g = jnp.einsum("bid,bjd->bij", xs, xs)
                return {"one_cluster": jnp.min(g, (-2, -1)) >= 1 - delta, "min_inner": jnp.min(g, (-2, -1))}

        obs = solve_ensemble(field, x0, t1, ts=jnp.array([0.0, t1]), observe=observe, rtol=1e-8, atol=1e-8,
                             max_steps=2**20)
        rows.append(xr.Dataset({"one_cluster": ("member", obs["one_cluster"][:, -1].astype(bool)),
                                "min_inner": ("member", obs["min_inner"][:, -1])}))
    ds = xr.concat(rows, dim=xr.DataArray(list(map(float, betas)), dims="beta", name="beta"))
    ds["fraction"] = ds.one_cluster.mean("member")
    ds.attrs.update(n=n, d=d, batch=batch, t1=t1, seed=seed, paper="002 Thm 5.1-5.2")
    return ds
