r"""Experiments of Bruno, Pasqualotto, Agazzi, *Emergence of meta-stable clustering in mean-field
transformer models* (ICLR 2025; paper 004): data functions and their plots.

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

from .._special import log_ive
from .._validate import check_model
from ..fields import CircleSelfAttention
from ..plot import pyplot
from ..solve import simulate
from ..spectral import bridge as B
from ..spectral import circle as C
from ..spectral.linear import dominant_mode, growth_rate, growth_rates

__all__ = [
    "circle_field",
    "cluster_count",
    "clusters_vs_beta",
    "default_band",
    "exit_times",
    "exit_times_fourier",
    "figure2_run",
    "figure4_run",
    "figure5_pde",
    "figure5_particles",
    "plot_clusters_vs_beta",
    "plot_figure2",
    "plot_figure3",
    "plot_figure4",
    "plot_figure5",
    "plot_phases",
    "plot_rates",
    "predicted_positions",
    "shift_time",
    "total_variation",
]

TWO_PI = 2 * math.pi


# ----------------------------------------------------------------------------- particles


def default_band(beta: float) -> int:
    """Kernel band L = 15 sqrt(beta) + 10: l W_l / max(l W_l) < 1e-16 beyond it (``docs/spectral.md``)."""
    return int(15 * math.sqrt(float(beta)) + 10)


def circle_field(beta: float, model: str = "usa", modes: int | None = None) -> CircleSelfAttention:
    """The particle field of paper 004 on S^1: USA (eq. (10)) or SA, V = I, Fourier evaluator with
    ``modes`` (default `default_band`) Bessel modes ([`jaxattn.fields.fourier_circle_velocity`][jaxattn.fields.fourier_circle_velocity])."""
    model = check_model(model)
    return CircleSelfAttention(beta, unnormalised=model == "usa", evaluator="fourier",
                               modes=default_band(beta) if modes is None else int(modes))


def _angles(theta0, beta, ts, *, model: str = "usa", modes: int | None = None, rtol: float, atol: float):
    """Angles at the save times ``ts`` (unwrapped; (T, N), or (B, T, N) for a batch of starts)."""
    ts = jnp.asarray(ts, dtype=jnp.result_type(float))
    return simulate(circle_field(beta, model, modes), theta0, float(ts[-1]), t0=float(ts[0]), ts=ts,
                    rtol=rtol, atol=atol).xs


def cluster_count(theta, min_mass: float = 0.05, gap: float = 0.3) -> int:
    """Number of groups of mass >= min_mass, groups being maximal arcs without a gap > ``gap`` rad
    (the thresholds of ``docs/spectral.md``, "Paper 004 studies": counting all groups is noisy)."""
    t = np.sort(np.mod(np.asarray(theta), TWO_PI))
    n = t.size
    gaps = np.diff(np.concatenate([t, [t[0] + TWO_PI]]))
    cuts = np.flatnonzero(gaps > gap)
    if cuts.size == 0:
        return 1 if n else 0
    # groups between consecutive cuts (circularly)
    sizes = np.diff(np.concatenate([cuts, [cuts[0] + n]]))
    return int(np.sum(sizes / n >= min_mass))


def predicted_positions(theta0, k: int) -> np.ndarray:
    """Linear-theory cluster positions theta_j = (2 pi j - arg mu_k(0))/k mod 2pi: the maxima of the
    growing mode mu_k(0) e^{gamma_k t} e^{ik theta} (paper 004 Thm 4.2)."""
    mu = complex(B.fourier_moments(jnp.asarray(theta0), k)[k])
    return np.mod((TWO_PI * np.arange(k) - np.angle(mu)) / k, TWO_PI)


def figure2_run(beta: float, N: int, T: float, seed: int, n_save: int = 121):
    """One particle run from N iid uniform angles: (ts, thetas (T, N), k_max, predicted positions)."""
    th0 = jax.random.uniform(jax.random.PRNGKey(seed), (N,)) * TWO_PI
    ts = jnp.linspace(0.0, T, n_save)
    xs = _angles(th0, beta, ts, rtol=1e-7, atol=1e-7)
    k = dominant_mode(beta)
    return np.asarray(ts), np.asarray(xs), k, predicted_positions(th0, k)


def clusters_vs_beta(betas, N: int, seeds: int, exit_factor: float = 2.5):
    """Final cluster counts against beta (Fig. 2 summary): iid uniform starts, run to exit_factor x the
    predicted exit time ln(0.5 sqrt N)/gamma_max. Returns counts (len(betas), seeds) and k_max(beta)."""
    counts = np.zeros((len(betas), seeds), int)
    L = default_band(max(betas))  # one band for all beta: one compiled solver
    for i, beta in enumerate(betas):
        k = dominant_mode(beta)
        T = exit_factor * math.log(0.5 * math.sqrt(N)) / float(growth_rate(beta, k))
        th0 = jax.random.uniform(jax.random.PRNGKey(1000 + i), (seeds, N)) * TWO_PI
        xs = _angles(th0, beta, jnp.array([0.0, T]), modes=L, rtol=1e-7, atol=1e-7)[:, -1]
        counts[i] = [cluster_count(x) for x in np.asarray(xs)]
    return counts, np.asarray(dominant_mode(np.asarray(betas, float)))


def total_variation(theta, bins: int = 100):
    """1/2 sum_b |n_b/N - 1/bins| (the paper's Fig. 3 statistic)."""
    return 0.5 * jnp.sum(jnp.abs(B.histogram(theta, bins) - 1.0 / bins), axis=-1)


def exit_times(beta: float, Ns, runs: int, threshold: float = 0.3, T: float = 6.0, n_save: int = 301, seed: int = 0):
    """Fig. 3: first time the 100-bin TV distance to uniform exceeds ``threshold``, for ``runs`` iid starts per N.
    Returns an array (len(Ns), runs) (NaN if not exited by T)."""
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
    0, 2pi/3, 4pi/3) and to the uniform measure over time. N divisible by 3 keeps the C_3 symmetry exact."""
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
    products into the monitored tail at once, so the default is k_noise = 32."""
    n_eff = M / (4 * math.pi**2 * sigma**2)
    c0 = C.noise_coefficients(jax.random.PRNGKey(seed), K, n_eff, k_noise=k_noise)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        tr = C.solve_circle(c0, beta, T, n_save=n_save)
    return tr, n_eff, [str(x.message) for x in w]


def figure5_pde(alpha: float, beta: float = 5.0, K: int = 96, T: float = 0.3, n_save: int = 61, tail_tol: float = 1e-6):
    """Fig. 5 (spectral, valid only while resolved): W1(rho_t, delta_3) from the PDE density."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        tr = C.solve_circle(C.mode_coefficients(K, cos={3: alpha}), beta, T, n_save=n_save, tail_tol=tail_tol)
    w = np.array([float(B.w1_circle(B.discretize_density(c, 8192), B.cluster_measure(3))) for c in tr.coeffs])
    return np.asarray(tr.ts), w, tr.t_lost


def shift_time(alpha_ratio: float = 10.0, beta: float = 5.0) -> float:
    """ln(alpha_ratio)/gamma_3: the predicted time shift between f^alpha curves (0.12382 for beta = 5)."""
    return math.log(alpha_ratio) / float(growth_rate(beta, 3))


def exit_times_fourier(beta: float, Ns, delta: float = 0.05, K: int = 24, T: float = 8.0):
    """Deterministic Fig. 3: PDE runs with |mu_kmax(0)| = N^{-1/2}; time at which |mu_kmax| = delta.
    Predicted: ln(delta sqrt N)/gamma_max + O(delta) (paper 004 §4.2)."""
    k = dominant_mode(beta)
    out = []
    for N in Ns:
        c0 = C.mode_coefficients(K, cos={k: 1 / (math.sqrt(N) * math.pi)})
        tr = C.solve_circle(c0, beta, ts=jnp.linspace(0.0, T, 801))
        amp = np.abs(np.asarray(tr.coeffs[:, k]))
        i = int(np.argmax(amp >= delta))
        out.append(float(np.interp(delta, amp[i - 1 : i + 1], np.asarray(tr.ts[i - 1 : i + 1]))) if i > 0 else np.nan)
    return np.asarray(out)


# ----------------------------------------------------------------------------- plots


def plot_rates(ax, beta, kmax_plot=10):
    """gamma_k = k^2 I_k(beta)/beta at integer k (dots) and real order k (dashed), k_max marked."""
    k = np.arange(kmax_plot + 1)
    g = np.asarray(growth_rates(beta, kmax_plot))
    kc = np.linspace(0.0, kmax_plot, 200)
    gc = kc**2 * np.exp(np.asarray(log_ive(kc, beta)) + beta) / beta  # real order nu = k
    ax.plot(kc, gc, "--", color="gray")
    ax.plot(k, g, "o")
    km = dominant_mode(beta)
    ax.axvline(km, color="r", ls=":", label=f"$k_{{max}} = {km}$")
    ax.set_xlabel("k")
    ax.set_ylabel(r"$\gamma_k = k^2 I_k(\beta)/\beta$")
    ax.set_title(rf"$\beta = {beta}$")
    ax.legend()


def plot_figure2(runs: dict):
    """Fig. 2. runs: beta -> (ts, xs, k, predicted positions, histogram time)."""
    plt = pyplot()
    fig, axes = plt.subplots(len(runs), 3, figsize=(14, 3.6 * len(runs)), squeeze=False)
    for r, (beta, (ts, xs, k, pos, t_hist)) in enumerate(runs.items()):
        plot_rates(axes[r, 0], beta)
        ax = axes[r, 1]
        step = max(1, xs.shape[1] // 400)
        ax.plot(ts, xs[:, ::step], lw=0.3, alpha=0.4, color="k")
        for p in pos:
            ax.axhline(p, color="r", ls="--")
        ax.set_ylim(0, 2 * np.pi)
        ax.set_xlabel("t")
        ax.set_ylabel(r"$\theta_i(t)$ (unwrapped)")
        ax.set_title("trajectories; red: linear-theory cluster positions")
        ax = axes[r, 2]
        i = int(np.argmin(np.abs(ts - t_hist)))
        ax.hist(np.mod(xs[i], 2 * np.pi), bins=100, density=True)
        ax.set_title(rf"t = {ts[i]:.3g}; clusters (mass $\geq$ 5%, gaps > 0.3): "
                     rf"{cluster_count(xs[i])} here, {cluster_count(xs[-1])} at t = {ts[-1]:.3g}", fontsize=9)
        ax.set_xlabel(r"$\theta$ mod $2\pi$")
    fig.tight_layout()
    return fig


def plot_clusters_vs_beta(betas, counts, kmax):
    """Final cluster counts against beta with the linear-theory k*(beta) and sqrt(2 beta)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for j in range(counts.shape[1]):
        ax.plot(np.asarray(betas) + 0.05 * (j - counts.shape[1] / 2), counts[:, j], "o", alpha=0.6, color="C0")
    bb = np.linspace(min(betas), max(betas), 400)
    ax.step(bb, dominant_mode(bb), where="post", color="r", label=r"$k^*(\beta)$ (linear theory)")
    ax.plot(bb, np.sqrt(2 * bb), ":", color="gray", label=r"$\sqrt{2\beta}$ (not $\sqrt{\beta}$)")
    ax.set_xlabel(r"$\beta$")
    ax.set_ylabel("number of clusters")
    ax.legend()
    return fig


def plot_figure3(beta, Ns, times, Ns_det=None, times_det=None):
    """Fig. 3: exit times against N (log scale) with the predicted slope 1/(2 gamma_max)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    m, s = np.nanmean(times, axis=1), np.nanstd(times, axis=1)
    ax.errorbar(Ns, m, yerr=s, fmt="o", capsize=3, label="particles (mean, sd)")
    g = float(growth_rate(beta, dominant_mode(beta)))
    slope = 1 / (2 * g)
    c = np.mean(m - slope * np.log(Ns))
    NN = np.geomspace(min(Ns), max(Ns), 50)
    ax.plot(NN, c + slope * np.log(NN), "r--", label=rf"slope $1/(2\gamma_{{max}})$ = {slope:.3f}")
    if Ns_det is not None:
        ax.plot(Ns_det, times_det, "s", mfc="none", label="Fourier PDE, $|\\hat\\mu_{k^*}(0)| = N^{-1/2}$")
    fit = np.polyfit(np.log(Ns), m, 1)[0]
    ax.set_xscale("log")
    ax.set_xlabel("N")
    ax.set_ylabel("exit time")
    ax.set_title(rf"$\beta = {beta}$: fitted slope {fit:.3f} vs {slope:.3f}")
    ax.legend()
    return fig


def plot_figure4(tr, every: int = 5):
    """Fig. 4: densities of a circle PDE trajectory at every ``every``-th saved time."""
    plt = pyplot()
    theta, rho = tr.density(512)
    ts = np.asarray(tr.ts)
    fig, ax = plt.subplots(figsize=(7, 4))
    for i in range(0, len(ts), every):
        ax.plot(theta, rho[i], label=f"t = {ts[i]:.3f}")
    ax.plot(theta, rho[-1], "k", label=f"t = {ts[-1]:.3f} (last resolved)")
    ax.set_xlabel(r"$\theta$")
    ax.set_ylabel(r"$\rho(t, \theta)$")
    lost = "never" if not np.isfinite(tr.t_lost) else f"t = {tr.t_lost:.3f}"
    ax.set_title(rf"$\beta = {tr.beta}$, uniform + white noise; resolution lost at {lost}")
    ax.legend(fontsize=7)
    return fig


def plot_figure5(part: dict, pde: dict, beta: float = 5.0):
    """Fig. 5: W1 to delta_3 and to uniform (particles), the small-alpha curve shifted by ln 10/gamma_3."""
    plt = pyplot()
    shift = shift_time(10.0, beta)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for alpha, (ts, wc, wu) in part.items():
        axes[0].plot(ts, wu, label=rf"$W_1(\mu_t, \mu_\infty)$, $\alpha = {alpha}$")
        axes[0].plot(ts, wc, "--", label=rf"$W_1(\mu_t, \delta_3)$, $\alpha = {alpha}$")
        sh = shift if alpha == min(part) else 0.0
        axes[1].plot(ts - sh, wc, label=rf"$\alpha = {alpha}$, shifted by {sh:.4f}")
    for alpha, (ts, w, t_lost) in pde.items():
        sh = shift if alpha == min(pde) else 0.0
        axes[1].plot(ts - sh, w, ":", lw=2, label=rf"spectral PDE, $\alpha = {alpha}$ (resolved part)")
    axes[0].axhline(np.pi / 6, color="gray", lw=0.5)
    axes[0].set_xlabel("t")
    axes[0].legend(fontsize=7)
    axes[0].set_title("particles, quantile samples of $f^\\alpha$")
    axes[1].set_xlabel(r"t (small-$\alpha$ curve shifted by $\ln 10/\gamma_3$)")
    axes[1].set_ylabel(r"$W_1(\mu_t, \delta_3)$")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_phases(tr, n_eff: float, kmax_plot: int = 6):
    """|mu_k(t)| of the noise run on a log scale against the linear prediction |mu_k(0)| e^{gamma_k t}."""
    plt = pyplot()
    ts = np.asarray(tr.ts)
    c = np.abs(np.asarray(tr.coeffs))
    g = np.asarray(growth_rates(tr.beta, kmax_plot))
    km = dominant_mode(tr.beta)
    fig, ax = plt.subplots(figsize=(7, 4))
    for k in range(1, kmax_plot + 1):
        (line,) = ax.semilogy(ts, c[:, k], label=f"k = {k}")
        ax.semilogy(ts, c[0, k] * np.exp(g[k] * ts), "--", color=line.get_color(), lw=0.8)
    T1 = math.log(n_eff**0.25 / 0.585) / g[km]  # ||rho_0||_{H^-1} ~ (0.3427/N)^{1/2}: T1 = ln(N^{-1/4}/||rho0||)/gamma
    ax.axvline(T1, color="gray", ls=":", label=r"end of linear phase $T_1$")
    ax.set_ylim(1e-5, 2)
    ax.set_xlabel("t")
    ax.set_ylabel(r"$|\hat\mu_k(t)|$")
    ax.set_title("linear phase (dashed: $e^{\\gamma_k t}$), quasi-linear exit, then clustering")
    ax.legend(fontsize=7)
    return fig
