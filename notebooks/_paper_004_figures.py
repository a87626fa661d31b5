"""Plot helpers for notebooks/paper_004_*.ipynb (paper 004: metastable clustering in mean-field transformers).

Data come from :mod:`jaxattn.spectral._paper004`; rates are the true gamma_k = k^2 I_k(beta)/beta
(the paper's Fig. 2 plots gamma_k / pi, digest 004 §0.1).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from jaxattn import _special as _bessel
from jaxattn.spectral import linear as L
from jaxattn.spectral import _paper004 as P


def rates_panel(ax, beta, kmax_plot=10):
    k = np.arange(kmax_plot + 1)
    g = np.asarray(L.growth_rates(beta, kmax_plot))
    kc = np.linspace(0.0, kmax_plot, 200)
    gc = kc**2 * np.exp(np.asarray(_bessel.log_ive(kc, beta)) + beta) / beta  # real order nu = k
    ax.plot(kc, gc, "--", color="gray")
    ax.plot(k, g, "o")
    km = L.dominant_mode(beta)
    ax.axvline(km, color="r", ls=":", label=f"$k_{{max}} = {km}$")
    ax.set_xlabel("k")
    ax.set_ylabel(r"$\gamma_k = k^2 I_k(\beta)/\beta$")
    ax.set_title(rf"$\beta = {beta}$")
    ax.legend()


def figure2(runs: dict):
    """runs: beta -> (ts, xs, k, predicted positions, histogram time)."""
    fig, axes = plt.subplots(len(runs), 3, figsize=(14, 3.6 * len(runs)), squeeze=False)
    for r, (beta, (ts, xs, k, pos, t_hist)) in enumerate(runs.items()):
        rates_panel(axes[r, 0], beta)
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
                     rf"{P.cluster_count(xs[i])} here, {P.cluster_count(xs[-1])} at t = {ts[-1]:.3g}", fontsize=9)
        ax.set_xlabel(r"$\theta$ mod $2\pi$")
    fig.tight_layout()
    return fig


def clusters_vs_beta(betas, counts, kmax):
    fig, ax = plt.subplots(figsize=(6, 4))
    for j in range(counts.shape[1]):
        ax.plot(np.asarray(betas) + 0.05 * (j - counts.shape[1] / 2), counts[:, j], "o", alpha=0.6, color="C0")
    bb = np.linspace(min(betas), max(betas), 400)
    ax.step(bb, L.dominant_mode(bb), where="post", color="r", label=r"$k^*(\beta)$ (linear theory)")
    ax.plot(bb, np.sqrt(2 * bb), ":", color="gray", label=r"$\sqrt{2\beta}$ (not $\sqrt{\beta}$)")
    ax.set_xlabel(r"$\beta$")
    ax.set_ylabel("number of clusters")
    ax.legend()
    return fig


def figure3(beta, Ns, times, Ns_det=None, times_det=None):
    fig, ax = plt.subplots(figsize=(6, 4))
    m, s = np.nanmean(times, axis=1), np.nanstd(times, axis=1)
    ax.errorbar(Ns, m, yerr=s, fmt="o", capsize=3, label="particles (mean, sd)")
    g = float(L.growth_rate(beta, L.dominant_mode(beta)))
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


def figure4(tr, every: int = 5):
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


def figure5(part: dict, pde: dict, beta: float = 5.0):
    shift = P.shift_time(10.0, beta)
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


def phases(tr, n_eff: float, kmax_plot: int = 6):
    """|mu_k(t)| of the noise run on a log scale against the linear prediction |mu_k(0)| e^{gamma_k t}."""
    ts = np.asarray(tr.ts)
    c = np.abs(np.asarray(tr.coeffs))
    g = np.asarray(L.growth_rates(tr.beta, kmax_plot))
    km = L.dominant_mode(tr.beta)
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
