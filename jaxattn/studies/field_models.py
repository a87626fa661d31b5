"""Data for the notebook "beyond the five papers" (``notebooks/beyond_five_papers.ipynb``, ``docs/beyond.md``).

One function per model of the field that jaxattn runs besides the five papers it started from; each returns
plain NumPy arrays (a dict) for one figure, at a size set by its arguments (the notebook's fast mode passes
smaller ones):

* [`sinkhorn_marginals`][jaxattn.studies.field_models.sinkhorn_marginals], [`sinkformer_energy`][jaxattn.studies.field_models.sinkformer_energy], [`sphere_phase_diagram`][jaxattn.studies.field_models.sphere_phase_diagram] — Sinkhorn attention
  (Sander, Ablin, Blondel, Peyre, AISTATS 2022): convergence of the marginals, the causal limit I, the
  transport functional along the flow, clustering with softmax and Sinkhorn attention over (t, beta);
* [`gaussian_rates`][jaxattn.studies.field_models.gaussian_rates] — the Gaussian covariance ODE (Castin et al., arXiv 2501.18322) against n tokens;
* [`lost_in_middle`][jaxattn.studies.field_models.lost_in_middle] — ALiBi decay (Duerinckx, Geshkovski, Rossi, arXiv 2605.09213): retrieval profiles,
  critical time, particles;
* [`long_context`][jaxattn.studies.field_models.long_context] — beta_n = gamma log n (Chen, Lin, Polyanskiy, Rigollet, arXiv 2510.05554);
* [`metastable_example`][jaxattn.studies.field_models.metastable_example], [`consensus_times`][jaxattn.studies.field_models.consensus_times], [`staircase`][jaxattn.studies.field_models.staircase] — dynamic metastability
  (Geshkovski, Koubbi, Polyanskiy, Rigollet, arXiv 2410.06833).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import initial
from ..analysis import clustered_pair_fraction, long_context as lc, lost_in_middle as lm
from ..analysis import sinkhorn_transport_cost, staircase as st
from ..fields import (
    AlibiCircleAttention,
    CircleSelfAttention,
    EuclideanSelfAttention,
    GaussianAttention,
    SelfAttention,
    Sinkhorn,
    attention_weights,
    embed_angles,
    empirical_gaussian_state,
    gaussian_moments,
    gaussian_state,
)
from ..solve import simulate

#: the start of the authors' worked example (n = 5, d = 2): five unit vectors
METASTABLE_START = np.array([[0.99806638, 0.06215705], [0.97712061, 0.21268594], [-0.24578194, 0.96932515],
                             [-0.97354734, 0.2284854], [-0.99892629, -0.04632772]])
#: the authors' staircase start theta_0 = 0.5 [0, L/2, 2L, 4L, 7L], L = log(2000)/sqrt(2000)
STAIRCASE_START = np.array([0.0, 0.042490, 0.169961, 0.339923, 0.594865])


def sinkhorn_marginals(key: jax.Array, n: int = 32, beta: float = 2.0,
                       iterations: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)) -> dict:
    """Column-sum error of Sinkhorn attention on n random unit tokens (logits beta ⟨x_i, x_j⟩) and distance to I
    of the causal Sinkhorn weights, against the number of iterations.

    **Arguments:**

    - `key`: a JAX PRNG key.
    - `n`: the number of tokens; default 32.
    - `beta`: the inverse temperature; default 2.
    - `iterations`: the numbers of Sinkhorn iterations; default 1, 2, 4, ..., 1024.

    **Returns:**

    A dict with ``iterations``, ``column_error`` and ``causal_error``.
    """
    x = initial.uniform_sphere(key, n, 3)
    logits = beta * x @ x.T
    col, causal = [], []
    for k in iterations:
        col.append(float(jnp.max(jnp.abs(attention_weights(logits, normalisation=Sinkhorn(k)).sum(0) - 1))))
        w = attention_weights(logits, normalisation=Sinkhorn(k), causal=True)
        causal.append(float(jnp.max(jnp.abs(w - jnp.eye(n)))))
    return {"iterations": np.asarray(iterations), "column_error": np.array(col), "causal_error": np.array(causal)}


def sinkformer_energy(key: jax.Array, n: int = 120, t1: float = 2.0, saves: int = 21, iterations: int = 100) -> dict:
    """OT_1(mu_t, mu_t) along the Sinkformer flow with V = B = [[0.6, 0.2], [0.2, 0.3]] (symmetric) from n Gaussian
    tokens, with its rate -2 mean |dx_i/dt|^2 (the gradient-flow identity) at each save.

    **Arguments:**

    - `key`: a JAX PRNG key.
    - `n`: the number of tokens; default 120.
    - `t1`: the final time; default 2.
    - `saves`: the number of save times; default 21.
    - `iterations`: the Sinkhorn iterations; default 100.

    **Returns:**

    A dict with ``t``, ``cost`` and ``rate``.
    """
    b = np.array([[0.6, 0.2], [0.2, 0.3]])
    it = Sinkhorn(iterations)
    field = EuclideanSelfAttention(np.eye(2), b, b, normalisation=it)
    x0 = jax.random.normal(key, (n, 2))
    traj = simulate(field, x0, t1, ts=saves, rtol=1e-9, atol=1e-9)
    cost = jax.jit(jax.vmap(lambda x: sinkhorn_transport_cost(x @ b @ x.T, it)))(traj.xs)
    speed = jax.vmap(lambda x: -2.0 * jnp.mean(jnp.sum(field(0.0, x) ** 2, axis=1)))(traj.xs)
    return {"t": np.asarray(traj.ts), "cost": np.asarray(cost), "rate": np.asarray(speed)}


def sphere_phase_diagram(key: jax.Array, betas: Sequence[float], ts: Sequence[float], *, n: int = 8, d: int = 3,
                         members: int = 32, iterations: int = 20, delta: float = 1e-3) -> dict:
    """P(⟨x_i, x_j⟩ >= 1 - delta) over (t, beta) for (SA) with softmax and with Sinkhorn attention (Q = K = V = I),
    ``members`` uniform starts per beta (the statistic of Geshkovski et al. 2023 (perspective) Fig. 2).

    **Arguments:**

    - `key`: a JAX PRNG key.
    - `betas`: the inverse temperatures.
    - `ts`: the save times.
    - `n`: the number of tokens; default 8.
    - `d`: the dimension; default 3.
    - `members`: the number of uniform starts; default 32.
    - `iterations`: the Sinkhorn iterations; default 20.
    - `delta`: the clustering threshold; default 1e-3.

    **Returns:**

    A dict with ``beta``, ``t``, ``softmax`` and ``sinkhorn`` (beta, t).
    """
    x0 = initial.uniform_sphere(key, n, d, batch=members)
    ts = np.asarray(ts, dtype=float)
    out = {}
    for name, norm in (("softmax", "softmax"), ("sinkhorn", Sinkhorn(iterations))):
        grid = np.zeros((len(betas), len(ts)))
        for i, beta in enumerate(betas):
            traj = simulate(SelfAttention(beta, normalisation=norm), x0, float(ts[-1]), ts=ts, rtol=1e-6, atol=1e-6)
            grid[i] = np.asarray(jnp.mean(clustered_pair_fraction(traj.xs, delta), axis=0))
        out[name] = grid
    return {"beta": np.asarray(betas, dtype=float), "t": ts, **out}


def gaussian_rates(key: jax.Array, sizes: Sequence[int] = (125, 500, 2000), seeds: int = 4, t1: float = 1.0,
                   saves: int = 11) -> dict:
    """Covariance of n tokens of softmax attention in R^2 (Q, K = -Q, V of ``tests/test_gaussian.py``, beta = 1/sqrt 2)
    against the Gaussian ODE started from their empirical moments: Sigma(t) for the last run, and the relative
    Frobenius error at t1 for each n, root mean square over ``seeds`` draws (O(n^{-1/2})).

    **Arguments:**

    - `key`: a JAX PRNG key.
    - `sizes`: the numbers of tokens n; default (125, 500, 2000).
    - `seeds`: the number of draws per n; default 4.
    - `t1`: the final time; default 1.
    - `saves`: the number of save times; default 11.

    **Returns:**

    A dict with ``t``, ``sizes``, ``error``, ``sigma_particles``, ``sigma_ode`` and ``sigma_exact``.
    """
    q = np.array([[0.9, 0.3], [-0.2, 0.7]])
    v = np.array([[1.0, 0.2], [0.2, 0.5]])
    m0, s0 = np.array([0.5, -0.2]), np.array([[1.0, 0.3], [0.3, 0.5]])
    beta = 2**-0.5
    ts = np.linspace(0.0, t1, saves)
    errors, keys = [], jax.random.split(key, len(sizes) * seeds).reshape(len(sizes), seeds, -1)
    for size, size_keys in zip(sizes, keys):
        err = []
        for k in size_keys:
            x0 = m0 + jax.random.normal(k, (size, 2)) @ np.linalg.cholesky(s0).T
            part = simulate(EuclideanSelfAttention(q, -q, v, beta=beta), x0, t1, ts=ts, rtol=1e-5, atol=1e-5)
            ode = simulate(GaussianAttention(q, -q, v, beta=beta), empirical_gaussian_state(x0), t1, ts=ts)
            s_part = np.asarray(gaussian_moments(empirical_gaussian_state(part.xs))[1])
            s_ode = np.asarray(gaussian_moments(ode.xs)[1])
            err.append(np.linalg.norm(s_part[-1] - s_ode[-1]) / np.linalg.norm(s_ode[-1]))
        errors.append(float(np.sqrt(np.mean(np.square(err)))))
    exact = simulate(GaussianAttention(q, -q, v, beta=beta), gaussian_state(m0, s0), t1, ts=ts, rtol=1e-10, atol=1e-10)
    return {"t": ts, "sizes": np.asarray(sizes), "error": np.array(errors), "sigma_particles": s_part,
            "sigma_ode": s_ode, "sigma_exact": np.asarray(gaussian_moments(exact.xs)[1])}


def lost_in_middle(beta: float = 1.0, lam: float = 1.0, times: Sequence[float] = (0.5, 1.0, 1.5, 2.0, 3.0),
                   betas: Sequence[float] = tuple(np.round(np.arange(0.2, 4.01, 0.2), 2)), n_particles: int = 64,
                   t_particles: float = 10.0) -> dict:
    """Retrieval profiles S_t(sigma_0) at ``times``, the critical time and the theorem's smallness bound over
    ``betas``, and the authors' particle demo (4 clusters of n/4 tokens, seed 17) of the causal ALiBi model.

    **Arguments:**

    - `beta`: the inverse temperature of the profiles; default 1.
    - `lam`: the ALiBi slope; default 1.
    - `times`: the times of the profiles; default (0.5, 1, 1.5, 2, 3).
    - `betas`: the inverse temperatures of the critical time and bound; default 0.2, 0.4, ..., 4.
    - `n_particles`: the number of tokens of the particle demo; default 64.
    - `t_particles`: the final time of the particle demo; default 10.

    **Returns:**

    A dict with ``sigma0``, ``times``, ``profiles``, ``t_crit``, ``betas``, ``t_crit_beta``, ``bound_beta``,
    ``particle_t`` and ``particle_theta``.
    """
    sigma0 = np.linspace(0.02, 0.98, 481)
    profiles = np.array([np.asarray(lm.retrieval_score(t, sigma0, beta, lam)) for t in times])
    tcrit = np.array([float(lm.critical_time(b, lam)) for b in betas])
    bound = np.array([float(lm.smallness_bound(b, lam)) for b in betas])
    rng = np.random.default_rng(17)
    theta0 = np.repeat(np.linspace(0.1, 1.9, 4) * np.pi, n_particles // 4) + rng.normal(0.0, 0.075, n_particles)
    traj = simulate(AlibiCircleAttention(beta, lam), theta0, t_particles, ts=51, rtol=1e-8, atol=1e-8)
    return {"sigma0": sigma0, "times": np.asarray(times), "profiles": profiles,
            "t_crit": float(lm.critical_time(beta, lam)), "betas": np.asarray(betas), "t_crit_beta": tcrit,
            "bound_beta": bound, "particle_t": np.asarray(traj.ts), "particle_theta": np.asarray(traj.xs)}


def long_context(rho: float = 0.5, gammas: Sequence[float] = (1.0, 1.5, 2.0, 2.5, 3.0),
                 ns: Sequence[float] = tuple(np.logspace(1, 12, 45))) -> dict:
    """⟨theta_i, theta_j⟩ after one layer at beta_n = gamma log n against n, for each gamma, with its limit.

    **Arguments:**

    - `rho`: the initial inner product; default 0.5.
    - `gammas`: the values of gamma; default (1, 1.5, 2, 2.5, 3).
    - `ns`: the context lengths n; default 45 log-spaced values in [10, 1e12].

    **Returns:**

    A dict with ``n``, ``gamma``, ``cos``, ``limit``, ``rho`` and ``gamma_c``.
    """
    ns = np.asarray(ns, dtype=float)
    cos = np.array([[float(lc.long_context_cosine(n, rho, g)) for n in ns] for g in gammas])
    limit = np.array([float(lc.long_context_limit(rho, g)) for g in gammas])
    return {"n": ns, "gamma": np.asarray(gammas), "cos": cos, "limit": limit, "rho": rho,
            "gamma_c": float(lc.critical_gamma(rho))}


def metastable_example(beta: float = 4.0, t1: float = 400.0, saves: int = 4001) -> dict:
    """The authors' worked example: (SA) on S^1, n = 5, from `METASTABLE_START`; energy, merge times, levels.

    **Arguments:**

    - `beta`: the inverse temperature; default 4.
    - `t1`: the final time; default 400.
    - `saves`: the number of save times; default 4001.

    **Returns:**

    A dict with ``t``, ``energy``, ``merge_times``, ``levels`` and ``theta``.
    """
    ts = np.linspace(0.0, t1, saves)
    traj = simulate(SelfAttention(beta), METASTABLE_START / np.linalg.norm(METASTABLE_START, axis=1, keepdims=True),
                    t1, ts=ts, rtol=1e-10, atol=1e-10)
    return {"t": ts, "energy": np.asarray(st.normalised_energy(traj.xs, beta)),
            "merge_times": np.asarray(st.merge_times(ts, traj.xs)),
            "levels": st.staircase_levels(METASTABLE_START).levels,
            "theta": np.arctan2(np.asarray(traj.xs)[..., 1], np.asarray(traj.xs)[..., 0])}


def consensus_times(betas: Sequence[float] = (3.0, 3.5, 4.0, 4.5, 5.0), t1: float = 2000.0,
                    saves: int = 20001) -> dict:
    """Time until all five tokens of the worked example are within 1 - 1e-4 of each other, against beta.

    **Arguments:**

    - `betas`: the inverse temperatures; default (3, 3.5, 4, 4.5, 5).
    - `t1`: the horizon; default 2000.
    - `saves`: the number of save times; default 20001.

    **Returns:**

    A dict with ``beta`` and ``time``.
    """
    theta0 = np.arctan2(METASTABLE_START[:, 1], METASTABLE_START[:, 0])
    ts = np.linspace(0.0, t1, saves)
    times = []
    for beta in betas:
        traj = simulate(CircleSelfAttention(beta), theta0, t1, ts=ts, rtol=1e-10, atol=1e-10)
        times.append(float(jnp.max(st.merge_times(ts, embed_angles(traj.xs)))))
    return {"beta": np.asarray(betas), "time": np.array(times)}


def staircase(betas: Sequence[float] = (500.0, 4000.0)) -> dict:
    """The glued staircase flow from `STAIRCASE_START` at each beta, with the closed-form levels.

    **Arguments:**

    - `betas`: the inverse temperatures; default (500, 4000).

    **Returns:**

    A dict with ``flows`` and ``levels``.
    """
    flows = {beta: st.staircase_flow(STAIRCASE_START, beta) for beta in betas}
    return {"flows": flows, "levels": st.staircase_levels(embed_angles(STAIRCASE_START)).levels}
