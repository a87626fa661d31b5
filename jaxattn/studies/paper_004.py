r"""Experiments of Bruno, Pasqualotto, Agazzi, *Emergence of meta-stable clustering in mean-field
transformer models* (ICLR 2025; paper 004): the data of Figs. 2-5 (the plots: [`.figures`][jaxattn.studies.figures]).

Used by ``notebooks/paper_004_*.ipynb``; every function takes sizes as arguments so the notebooks can
run a fast mode (``JAXATTN_FAST=1``) and the paper's sizes. Conventions: USA on S^1 in the time of
eq. (10), rates gamma_k = k^2 I_k(beta)/beta (the paper's Fig. 2 plots gamma_k / pi:
``docs/spectral.md``, erratum 1).

Particles are the library's particle path: [`jaxattn.simulate`][jaxattn.simulate] with `circle_field`, a
[`jaxattn.CircleSelfAttention`][jaxattn.CircleSelfAttention] (USA: ``unnormalised=True``, the (1/N) sum of eq. (10); SA: the
softmax normalisation) with the Bessel-Fourier evaluator at ``default_band(beta)`` modes, exact to
round-off against the dense sum. Densities are [`jaxattn.spectral`][jaxattn.spectral] solves.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import diffrax
import jax
import jax.numpy as jnp

from .._validate import check_model
from ..analysis import count_clusters
from ..fields import CircleSelfAttention
from ..manifolds import CIRCLE
from ..solve import simulate
from ..spectral import bridge as B
from ..spectral import circle as C
from ..spectral.linear import dominant_mode, growth_rate

__all__ = [
    "CLUSTER_COUNT",
    "circle_field",
    "clusters_vs_beta",
    "default_band",
    "exit_times",
    "exit_times_fourier",
    "figure2_run",
    "figure4_run",
    "figure5_pde",
    "figure5_particles",
    "predicted_positions",
    "shift_time",
    "total_variation",
]

TWO_PI = 2 * math.pi


# ----------------------------------------------------------------------------- particles


def default_band(beta: float) -> int:
    """Kernel band L = 15 sqrt(beta) + 10: l W_l / max(l W_l) < 1e-16 beyond it (``docs/spectral.md``).

    **Arguments:**

    - `beta`: the inverse temperature.

    **Returns:**

    L, an int.
    """
    return int(15 * math.sqrt(float(beta)) + 10)


def circle_field(beta: float, model: str = "usa", modes: int | None = None) -> CircleSelfAttention:
    """The particle field of paper 004 on S^1: USA (eq. (10)) or SA, V = I, Fourier evaluator with
    ``modes`` (default `default_band`) Bessel modes ([`jaxattn.fields.fourier_circle_velocity`][jaxattn.fields.fourier_circle_velocity]).

    **Arguments:**

    - `beta`: the inverse temperature.
    - `model`: "usa" (default) or "sa".
    - `modes`: the number of Bessel modes; default None (`default_band`).

    **Returns:**

    A [`CircleSelfAttention`][jaxattn.CircleSelfAttention].
    """
    model = check_model(model)
    return CircleSelfAttention(beta, unnormalised=model == "usa", evaluator="fourier",
                               modes=default_band(beta) if modes is None else int(modes))


def _angles(theta0, beta, ts, *, model: str = "usa", modes: int | None = None, rtol: float, atol: float):
    """Angles at the save times ``ts`` (unwrapped; (T, N), or (B, T, N) for a batch of starts)."""
    ts = jnp.asarray(ts, dtype=jnp.result_type(float))
    return simulate(circle_field(beta, model, modes), theta0, float(ts[-1]), t0=float(ts[0]), ts=ts,
                    rtol=rtol, atol=atol).xs


#: how paper 004's figures count clusters ([`jaxattn.analysis.count_clusters`][jaxattn.analysis.count_clusters]): arcs separated by
#: gaps > 0.3 rad holding >= 5% of the particles (``docs/spectral.md``, "Paper 004 studies": counting
#: every group is noisy)
CLUSTER_COUNT = dict(manifold=CIRCLE, gap=0.3, min_mass=0.05)


def predicted_positions(theta0, k: int) -> np.ndarray:
    """Linear-theory cluster positions theta_j = (2 pi j - arg mu_k(0))/k mod 2pi: the maxima of the
    growing mode mu_k(0) e^{gamma_k t} e^{ik theta} (paper 004 Thm 4.2).

    **Arguments:**

    - `theta0`: the initial angles, (N,).
    - `k`: the growing mode, int >= 1.

    **Returns:**

    The k predicted positions in [0, 2 pi), a NumPy array (k,).
    """
    mu = complex(B.fourier_moments(jnp.asarray(theta0), k)[k])
    return np.mod((TWO_PI * np.arange(k) - np.angle(mu)) / k, TWO_PI)


def figure2_run(beta: float, N: int, T: float, seed: int, n_save: int = 121):
    """One particle run from N iid uniform angles: (ts, thetas (T, N), k_max, predicted positions).

    **Arguments:**

    - `beta`: the inverse temperature.
    - `N`: the number of particles.
    - `T`: the final time.
    - `seed`: the seed of the start.
    - `n_save`: the number of save times; default 121.

    **Returns:**

    ``(ts, thetas, k_max, predicted)``: NumPy arrays (T,), (T, N), an int and (k_max,).
    """
    th0 = jax.random.uniform(jax.random.PRNGKey(seed), (N,)) * TWO_PI
    ts = jnp.linspace(0.0, T, n_save)
    xs = _angles(th0, beta, ts, rtol=1e-7, atol=1e-7)
    k = dominant_mode(beta)
    return np.asarray(ts), np.asarray(xs), k, predicted_positions(th0, k)


def clusters_vs_beta(betas, N: int, seeds: int, exit_factor: float = 2.5):
    """Final cluster counts against beta (Fig. 2 summary): iid uniform starts, run to exit_factor x the
    predicted exit time ln(0.5 sqrt N)/gamma_max. Returns counts (len(betas), seeds) and k_max(beta).

    **Arguments:**

    - `betas`: the inverse temperatures.
    - `N`: the number of particles.
    - `seeds`: the number of starts per beta.
    - `exit_factor`: the horizon in units of the predicted exit time; default 2.5.

    **Returns:**

    ``(counts, k_max)``: NumPy arrays (len(betas), seeds) and (len(betas),).
    """
    counts = np.zeros((len(betas), seeds), int)
    L = default_band(max(betas))  # one band for all beta: one compiled solver
    for i, beta in enumerate(betas):
        k = dominant_mode(beta)
        T = exit_factor * math.log(0.5 * math.sqrt(N)) / float(growth_rate(beta, k))
        th0 = jax.random.uniform(jax.random.PRNGKey(1000 + i), (seeds, N)) * TWO_PI
        xs = _angles(th0, beta, jnp.array([0.0, T]), modes=L, rtol=1e-7, atol=1e-7)[:, -1]
        counts[i] = np.asarray(count_clusters(xs, **CLUSTER_COUNT))
    return counts, np.asarray(dominant_mode(np.asarray(betas, float)))


def total_variation(theta, bins: int = 100):
    """1/2 sum_b |n_b/N - 1/bins| (the paper's Fig. 3 statistic).

    **Arguments:**

    - `theta`: angles in [0, 2 pi), (..., N).
    - `bins`: the number of bins; default 100.

    **Returns:**

    The TV distance, float (...).
    """
    return 0.5 * jnp.sum(jnp.abs(B.histogram(theta, bins) - 1.0 / bins), axis=-1)


def exit_times(beta: float, Ns, runs: int, threshold: float = 0.3, T: float = 6.0, n_save: int = 301, seed: int = 0):
    """Fig. 3: first time the 100-bin TV distance to uniform exceeds ``threshold``, for ``runs`` iid starts per N.
    Returns an array (len(Ns), runs) (NaN if not exited by T).

    **Arguments:**

    - `beta`: the inverse temperature.
    - `Ns`: the numbers of particles.
    - `runs`: the number of starts per N.
    - `threshold`: the TV distance of an exit; default 0.3.
    - `T`: the horizon; default 6.
    - `n_save`: the number of save times; default 301.
    - `seed`: the seed; default 0.

    **Returns:**

    The exit times, a NumPy array (len(Ns), runs) (NaN if not exited by T).
    """
    field = circle_field(beta)
    ts = jnp.linspace(0.0, T, n_save)
    saveat = diffrax.SaveAt(ts=ts, fn=lambda t, y, args: total_variation(y))
    out = np.full((len(Ns), runs), np.nan)
    for i, N in enumerate(Ns):
        th0 = jax.random.uniform(jax.random.PRNGKey(seed + 7919 * i), (runs, N)) * TWO_PI
        tv = np.asarray(simulate(field, th0, T, saveat=saveat, rtol=1e-6, atol=1e-6, max_steps=100_000).xs)  # (runs, T)
        for r in range(runs):
            j = np.flatnonzero(tv[r] > threshold)
            if j.size and j[0] > 0:
                a, b = j[0] - 1, j[0]
                out[i, r] = float(np.interp(threshold, tv[r, [a, b]], np.asarray(ts)[[a, b]]))
    return out


def figure5_particles(alpha: float, beta: float = 5.0, N: int = 3000, T: float = 1.0, n_save: int = 101, n_uniform: int = 1 << 14):
    """Fig. 5 (particles): quantile samples of f^alpha = 1/(2pi) + alpha cos 3 theta, W1 to delta_3 (clusters at
    0, 2pi/3, 4pi/3) and to the uniform measure over time. N divisible by 3 keeps the C_3 symmetry exact.

    **Arguments:**

    - `alpha`: the amplitude of the initial perturbation.
    - `beta`: the inverse temperature; default 5.
    - `N`: the number of particles, divisible by 3; default 3000.
    - `T`: the final time; default 1.
    - `n_save`: the number of save times; default 101.
    - `n_uniform`: the size of the uniform reference sample; default 2^14.

    **Returns:**

    ``(ts, w1_clusters, w1_uniform)``: NumPy arrays (n_save,).

    **Raises:**

    - `ValueError`: N is not divisible by 3.
    """
    if N % 3:
        raise ValueError("N must be divisible by 3 (exact C_3 symmetry of the quantile sample)")
    c0 = C.mode_coefficients(16, cos={3: alpha})
    th0 = B.quantile_sample(c0, N)
    ts = jnp.linspace(0.0, T, n_save)
    xs = _angles(th0, beta, ts, rtol=1e-9, atol=1e-9)
    uni = (jnp.arange(n_uniform) + 0.5) * (TWO_PI / n_uniform)
    w_clu = np.asarray(B.w1_circle(xs, B.cluster_measure(3)))
    w_uni = np.asarray(B.w1_circle(xs, uni))
    return np.asarray(ts), w_clu, w_uni


# ----------------------------------------------------------------------------- densities


def figure4_run(beta: float = 5.0, T: float = 0.5, K: int = 128, sigma: float = 0.01, M: int = 9999, seed: int = 0,
                n_save: int = 51, k_noise: int = 32):
    """Fig. 4: PDE from the uniform density + white noise of std sigma on M cells, specified in Fourier space with
    the same statistics, E|mu_k(0)|^2 = 4 pi^2 sigma^2/M = 1/N_eff (``docs/spectral.md``), for k <= k_noise.
    Modes above ~3 sqrt(2 beta) have gamma_k ~ 0 and never matter; noise up to K/2 would put second-order
    products into the monitored tail at once, so the default is k_noise = 32.

    **Arguments:**

    - `beta`: the inverse temperature; default 5.
    - `T`: the final time; default 0.5.
    - `K`: the number of modes; default 128.
    - `sigma`: the grid noise's standard deviation; default 0.01.
    - `M`: the number of grid cells; default 9999.
    - `seed`: the seed; default 0.
    - `n_save`: the number of save times; default 51.
    - `k_noise`: the largest noisy mode; default 32.

    **Returns:**

    ``(trajectory, n_eff, warnings)``: the [`DensityTrajectory`][jaxattn.spectral.DensityTrajectory], N_eff and the
    messages of the warnings raised by the solve.
    """
    n_eff = M / (4 * math.pi**2 * sigma**2)
    c0 = C.noise_coefficients(jax.random.PRNGKey(seed), K, n_eff, k_noise=k_noise)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        tr = C.solve_circle(c0, beta, T, n_save=n_save)
    return tr, n_eff, [str(x.message) for x in w]


def figure5_pde(alpha: float, beta: float = 5.0, K: int = 96, T: float = 0.3, n_save: int = 61, tail_tol: float = 1e-6):
    """Fig. 5 (spectral, valid only while resolved): W1(rho_t, delta_3) from the PDE density.

    **Arguments:**

    - `alpha`: the amplitude of the initial perturbation.
    - `beta`: the inverse temperature; default 5.
    - `K`: the number of modes; default 96.
    - `T`: the final time; default 0.3.
    - `n_save`: the number of save times; default 61.
    - `tail_tol`: the resolution threshold of the spectral tail; default 1e-6.

    **Returns:**

    ``(ts, w1, t_lost)``: the resolved save times, W1(rho_t, delta_3) there, and the time resolution was lost.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        tr = C.solve_circle(C.mode_coefficients(K, cos={3: alpha}), beta, T, n_save=n_save, tail_tol=tail_tol)
    w = np.array([float(B.w1_circle(B.discretize_density(c, 8192), B.cluster_measure(3))) for c in tr.coeffs])
    return np.asarray(tr.ts), w, tr.t_lost


def shift_time(alpha_ratio: float = 10.0, beta: float = 5.0) -> float:
    """ln(alpha_ratio)/gamma_3: the predicted time shift between f^alpha curves (0.12382 for beta = 5).

    **Arguments:**

    - `alpha_ratio`: the ratio of the two amplitudes; default 10.
    - `beta`: the inverse temperature; default 5.

    **Returns:**

    The time shift, a float.
    """
    return math.log(alpha_ratio) / float(growth_rate(beta, 3))


def exit_times_fourier(beta: float, Ns, delta: float = 0.05, K: int = 24, T: float = 8.0):
    """Deterministic Fig. 3: PDE runs with |mu_kmax(0)| = N^{-1/2}; time at which |mu_kmax| = delta.
    Predicted: ln(delta sqrt N)/gamma_max + O(delta) (paper 004 §4.2).

    **Arguments:**

    - `beta`: the inverse temperature.
    - `Ns`: the numbers of particles N.
    - `delta`: the exit level of |mu_kmax|; default 0.05.
    - `K`: the number of modes; default 24.
    - `T`: the horizon; default 8.

    **Returns:**

    The exit times, a NumPy array (len(Ns),) (NaN where |mu_kmax| starts at or above delta).
    """
    k = dominant_mode(beta)
    out = []
    for N in Ns:
        c0 = C.mode_coefficients(K, cos={k: 1 / (math.sqrt(N) * math.pi)})
        tr = C.solve_circle(c0, beta, ts=jnp.linspace(0.0, T, 801))
        amp = np.abs(np.asarray(tr.coeffs[:, k]))
        i = int(np.argmax(amp >= delta))
        out.append(float(np.interp(delta, amp[i - 1 : i + 1], np.asarray(tr.ts[i - 1 : i + 1]))) if i > 0 else np.nan)
    return np.asarray(out)


