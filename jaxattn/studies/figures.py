"""Every plot of the studies (matplotlib through `jaxattn.plot.pyplot`); the data come from the
paper modules (`.paper_000` ... `.paper_004`, `.gradients`) and the notebooks call both.

Each ``plot_*`` function takes the dataset (or arrays) its study returns and draws one figure of a
paper, or one panel of it with ``ax=``; it returns the axes or the figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special as sp
import xarray as xr
from jaxtyping import ArrayLike

from .. import initial
from .._special import log_ive
from ..analysis import count_clusters, gamma_trajectory, mean_inner_product, min_inner_product
from ..fields import SelfAttention
from ..grad import value_and_grad_of
from ..layers import HardmaxTransformer, attracting_set, convex_hull_vertices
from ..plot import cell_edges, plot_attention, pyplot
from ..solve import simulate
from ..spectral import circle as C
from ..spectral import circle_pde_value_and_grad
from ..spectral.linear import dominant_mode, growth_rate, growth_rates
from . import gradients as G
from . import paper_004 as P4
from .paper_000 import Row, figure2_tokens

__all__ = [
    "fill_convex_polygon",
    "gradients_boundary_sensitivity",
    "gradients_example",
    "gradients_lifetime_study",
    "gradients_pde",
    "gradients_recover_beta",
    "plot_attention_matrices",
    "plot_circle_metastability",
    "plot_clusters_vs_beta",
    "plot_growth_rates",
    "plot_mode_amplitudes",
    "plot_paper000_fig2",
    "plot_paper004_fig2",
    "plot_paper004_fig3",
    "plot_paper004_fig4",
    "plot_paper004_fig5",
    "plot_phase_diagram",
    "plot_tokens",
]


def fill_convex_polygon(ax, vertices: ArrayLike, **kwargs):
    """Shade the convex polygon with the given 2-D vertices (any order) on ``ax``.

    The vertices are ordered by angle about their centroid; fewer than three (a point or a
    segment) draw nothing. ``kwargs`` go to ``ax.fill``. Returns the patches (or ``[]``).

    **Arguments:**

    - `ax`: a Matplotlib axes.
    - `vertices`: the vertices, (m, 2).
    - `kwargs`: keyword arguments of ``ax.fill``.

    **Returns:**

    The patches (or ``[]``).

    **Raises:**

    - `ValueError`: ``vertices`` is not (m, 2).
    """
    V = np.asarray(vertices, dtype=float)
    if V.ndim != 2 or V.shape[1] != 2:
        raise ValueError(f"vertices must be an (m, 2) array, got shape {V.shape}")
    if len(V) < 3:
        return []
    centre = V.mean(0)
    order = np.argsort(np.arctan2(*(V - centre).T[::-1]))
    return ax.fill(V[order, 0], V[order, 1], **kwargs)


# ----------------------------------------------------------------------------------------------
# paper 000 (Alcalde, Fantuzzi, Zuazua 2024)


def plot_paper000_fig2(rows: Sequence[Row] = ("A", "B", "C", "D"), layers: Sequence[int] = (0, 1, 2, 5, 30),
            alpha: float = 0.5, seed: int = 0):
    """Paper 000 Figure 2 (`.paper_000`): tokens of each row at the given layers (alpha, A = I).

    Colour: the first token each one attends to; gold stars: tokens with C_i(Z^k) = {i}
    (leaders, Definition 1.1). The last column shades conv(leader limits) and marks the
    computed attracting set S (red crosses, origin excluded). Returns the figure.

    **Arguments:**

    - `rows`: the rows of the figure; default all four.
    - `layers`: the layers shown; default (0, 1, 2, 5, 30).
    - `alpha`: the step of the layers; default 0.5.
    - `seed`: the seed of the random tokens; default 0.

    **Returns:**

    The Matplotlib figure.
    """
    plt = pyplot()
    K = max(layers)
    fig, axes = plt.subplots(len(rows), len(layers), figsize=(2.6 * len(layers), 2.6 * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        traj = HardmaxTransformer(alpha, num_layers=K).trajectory(figure2_tokens(row, seed))
        Z, leads = np.asarray(traj.tokens), np.asarray(traj.leads)
        for c, k in enumerate(layers):
            ax = axes[r, c]
            follow = [C[0] for C in traj.attention_sets(k)]
            ax.scatter(Z[k, :, 0], Z[k, :, 1], c=follow, cmap="tab10", vmin=0, vmax=9, s=25,
                       marker="o", edgecolors="k", linewidths=0.3)
            ax.scatter(Z[k, leads[k], 0], Z[k, leads[k], 1], marker="*", s=180, c="gold", edgecolors="k")
            if c == len(layers) - 1:
                V = convex_hull_vertices(Z[-1])
                fill_convex_polygon(ax, V, alpha=0.2, color="tab:blue")
                S = attracting_set(V)
                ax.scatter(S[:, 0], S[:, 1], marker="x", c="r", s=40)
            ax.set_xlim(-1.3, 1.3)
            ax.set_ylim(-1.3, 1.3)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"k = {k}")
            if c == 0:
                ax.set_ylabel(f"row {row}")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------
# paper 001 (Geshkovski, Letrouit, Polyanskiy, Rigollet 2023, clusters)


def plot_attention_matrices(ds: xr.Dataset, *, seed_index: int = 0, axes=None):
    """Heatmaps of the sorted P(t) at each saved time, rank in the title (Figs 3, 11).

    Rows are query tokens i and columns key tokens j, numbered from 1 in the order of x_i(0) (Thm
    2.1); one colour bar $P_{ij}$ in [0, 1] serves all panels. Returns the axes.

    **Arguments:**

    - `ds`: a dataset of `jaxattn.studies.paper_001.boolean_attention` (with ``P`` and ``rank``).
    - `seed_index`: which member; default 0.
    - `axes`: one Matplotlib axes per saved time; default None (a new figure).

    **Returns:**

    The axes.
    """
    plt = pyplot()
    times = ds.t.values
    if axes is None:
        _, axes = plt.subplots(1, len(times), figsize=(1.95 * len(times) + 0.7, 2.7), layout="constrained")
    axes = np.atleast_1d(axes)
    for k, (ax, t) in enumerate(zip(axes, times)):
        rank = int(ds["rank"].isel(seed=seed_index).sel(t=t))
        plot_attention(ds.P.isel(seed=seed_index).sel(t=t).values, ax, title=f"$t = {t:g}$, rank {rank}",
                       colorbar=False)
        if k:
            ax.set_ylabel("")
    axes[0].figure.colorbar(axes[0].images[0], ax=list(axes), label="$P_{ij}(t)$", shrink=0.85, pad=0.01)
    return axes


def plot_tokens(ds: xr.Dataset, *, seed_index: int = 0, hull: bool = True, ax=None, normal=None):
    """Tokens z_i(t) (2-D or 3-D) over time: grey paths from open grey circles (t = 0) to crimson dots
    (the last saved time), explained in a legend; the final convex hull (V = I) and, in 2-D, lines
    orthogonal to ``normal`` (e.g. the dual functional) through the final clusters. Axes are labelled
    $z_1$, $z_2$ ($z_3$); 2-D panels keep equal aspect. Returns the axes.

    **Arguments:**

    - `ds`: a dataset with tokens ``z`` (seed, t, token, dim), e.g. of `rescaled_trajectories`.
    - `seed_index`: which member; default 0.
    - `hull`: draw the final convex hull; default True.
    - `ax`: a Matplotlib axes (3-D for d = 3); default None (a new figure).
    - `normal`: a vector (2-D only); default None (no lines).

    **Returns:**

    The axes.
    """
    plt = pyplot()
    z = ds.z.isel(seed=seed_index).values
    d = z.shape[-1]
    if ax is None:
        fig = plt.figure(figsize=(5, 5))
        ax = fig.add_subplot(projection="3d" if d == 3 else None)
    for i in range(z.shape[1]):
        ax.plot(*z[:, i].T, color="0.6", lw=0.6)
    ax.scatter(*z[0].T, facecolors="none", edgecolors="0.45", s=10, lw=0.6, zorder=2, label="$z_i(0)$")
    ax.scatter(*z[-1].T, color="crimson", s=25, zorder=3, label=f"$z_i({float(ds.t[-1]):g})$")
    if hull and d in (2, 3):
        from scipy.spatial import ConvexHull

        try:
            h = ConvexHull(z[-1])
            for simplex in h.simplices:
                ax.plot(*z[-1][simplex].T, color="silver", lw=0.8)
        except Exception:  # degenerate (collinear) final states have no hull
            pass
    if normal is not None and d == 2:
        n = np.asarray(normal) / np.linalg.norm(normal)
        tangent = np.array([-n[1], n[0]])
        for c in np.unique(np.round(z[-1] @ n, 3)):
            line = c * n + np.outer(np.linspace(-10, 10, 2), tangent)
            ax.plot(*line.T, "k--", lw=0.8)
    labels = dict(xlabel="$z_1$", ylabel="$z_2$") | (dict(zlabel="$z_3$") if d == 3 else {})
    ax.set(**labels)
    if d == 2:
        ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(f"$n = {z.shape[1]}$ tokens $z_i(t)$, $t \\in [0, {float(ds.t[-1]):g}]$", fontsize=10)
    ax.legend(loc="best", fontsize=8, framealpha=0.8)
    return ax


# ----------------------------------------------------------------------------------------------
# paper 002 (Geshkovski, Letrouit, Polyanskiy, Rigollet 2023, perspective)


def plot_phase_diagram(ds: xr.Dataset, ax=None, *, curve: bool = True, title: str | None = None, **select):
    """Paper 002 Figs 2-4: ``probability`` over (t, beta) (colormap RdBu_r as the paper) with `t*(beta)`.

    Each cell is centred on its grid point (beta_k, t_l) and bounded by the midpoints to its
    neighbours; the outer cells end at the first and last grid values, so the image covers exactly
    [beta_0, beta_K] x [t_0, t_L] and nothing is drawn where no beta or t was sampled. The dashed
    curve is gamma_beta(t) = 1 - delta (eq. (4.11)) for the dataset's n and delta. ``select`` picks
    ``d``, ``kq``, ``value`` (default: the first of each); the title states n, d and delta (and the
    random (Q, K, V) ensembles of Fig 4 when not the identity) unless ``title`` is given.

    **Arguments:**

    - `ds`: the dataset of `jaxattn.studies.paper_002.phase_diagram`.
    - `ax`: a Matplotlib axes; default None (a new figure).
    - `curve`: draw the gamma curve; default True.
    - `title`: the title; default None (n, d, delta and the ensembles).
    - `select`: ``d``, ``kq``, ``value`` values of the panel.

    **Returns:**

    The axes.
    """
    plt = pyplot()
    ds = ds.sortby("beta")
    prob = ds.probability
    picked = {}
    for dim in ("d", "kq", "value"):
        if dim in prob.dims:
            prob = prob.sel({dim: select[dim]}) if dim in select else prob.isel({dim: 0})
        if dim in prob.coords:
            picked[dim] = prob.coords[dim].values.item()
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
    prob = prob.transpose("beta", "t")
    t_edges, b_edges = cell_edges(prob.t.values), cell_edges(prob.beta.values)
    mesh = ax.pcolormesh(t_edges, b_edges, prob.values, cmap="RdBu_r", vmin=0, vmax=1, shading="flat")
    ax.figure.colorbar(mesh, ax=ax, label=r"$P(\langle x_i, x_j\rangle \geq 1-\delta)$")
    if curve and "t_star" in ds:
        ax.plot(ds.t_star, ds.beta, "k--", lw=1.2, label=r"$\gamma_\beta(t) = 1-\delta$")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlim(t_edges[0], t_edges[-1])
    ax.set_ylim(b_edges[0], b_edges[-1])
    ax.set_xlabel("$t$")
    ax.set_ylabel(r"$\beta$")
    if title is None:
        n = ds.attrs.get("n", "?")
        d = picked.get("d", ds.attrs.get("d", "?"))
        title = f"SA on $S^{{d-1}}$: $n = {n}$, $d = {d}$"
        if "delta" in ds.attrs:
            title += rf", $\delta = {float(ds.attrs['delta']):g}$"
        ens = [f"{k} {picked[k]}" for k in ("kq", "value") if picked.get(k, "identity") != "identity"]
        if ens:
            title += "\n" + ", ".join(ens)
    ax.set_title(title, fontsize=10)
    return ax


def plot_circle_metastability(ds: xr.Dataset, ax=None):
    """Paper 002 Problem 2 (`.paper_002.circle_metastability`): mean cluster count against t (log axis)
    for each beta (over seeds and members).

    **Arguments:**

    - `ds`: the dataset of `circle_metastability`.
    - `ax`: a Matplotlib axes; default None (a new figure).

    **Returns:**

    The axes.
    """
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for beta in ds.beta.values:
        ax.plot(ds.t, ds.clusters.sel(beta=beta).mean([d for d in ("seed", "member") if d in ds.clusters.dims]), "o-", label=rf"$\beta={beta:g}$")
    ax.set_xscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel("mean number of clusters")
    members = ds.sizes.get("member", 1) * ds.sizes.get("seed", 1)
    ax.set_title(f"SA on $S^1$: $n = {ds.attrs.get('n', '?')}$, {members} runs per $\\beta$, "
                 f"gaps > {ds.attrs.get('gap', '?')} rad", fontsize=10)
    ax.legend()
    return ax


def plot_gamma_crossing_times(ds: xr.Dataset, ax=None):
    """Paper 002 Thm 4.6 (`.paper_002.crossing_times`): beta against `t*(beta)` (log t axis), the
    boundary `gamma_beta(t*) = 1 - delta` of eq. (4.11), titled with n and delta.

    **Arguments:**

    - `ds`: the dataset of `crossing_times`.
    - `ax`: a Matplotlib axes; default None (a new figure).

    **Returns:**

    The axes.
    """
    if ax is None:
        _, ax = pyplot().subplots(figsize=(5, 3.5))
    ax.semilogx(ds.t_star, ds.beta, "o-" if ds.sizes["beta"] <= 20 else "-")
    ax.set_xlabel(r"$t^*(\beta)$")
    ax.set_ylabel(r"$\beta$")
    ax.set_title(rf"$\gamma_\beta(t^*) = 1 - \delta$: $n = {ds.attrs.get('n', '?')}$, "
                 rf"$\delta = {float(ds.attrs.get('delta', float('nan'))):g}$", fontsize=10)
    return ax


# ----------------------------------------------------------------------------------------------
# paper 003 (Karagodin, Polyanskiy, Rigollet 2024)


def plot_paper003_fig3(summary: xr.Dataset, axes=None):
    """Paper 003 Fig. 3 ([`.paper_003.fig3_summary`][jaxattn.studies.paper_003.fig3_summary]): consumed fractions of the (strong) Renyi centres
    and cluster counts over time, mean with the band between the first and last quantile. Returns the axes.

    **Arguments:**

    - `summary`: the dataset of [`fig3_summary`][jaxattn.studies.paper_003.fig3_summary].
    - `axes`: Matplotlib axes for the panels; default None (a new figure).

    **Returns:**

    The axes.
    """
    if axes is None:
        _, axes = pyplot().subplots(1, 2, figsize=(9, 3.5))
    t = np.maximum(summary.t.values, 0.5)  # log axis: t = 0 drawn at 0.5
    lo, hi = summary["quantile"].values[0], summary["quantile"].values[-1]
    for ax, names in ((axes[0], (("renyi_ball", "Rényi"), ("strong_ball", "strong Rényi"))),
                      (axes[1], (("clusters", None),))):
        for key, label in names:
            line, = ax.semilogx(t, summary[f"{key}_mean"], "o-", label=label)
            band = summary[f"{key}_quantile"]
            ax.fill_between(t, band.sel(quantile=lo), band.sel(quantile=hi), color=line.get_color(), alpha=0.2)
    axes[0].set(xlabel="t (t = 0 drawn at 0.5)", ylabel="consumed fraction", ylim=(0, 1.02))
    axes[0].legend(title=f"mean, {lo:g}-{hi:g} quantiles", fontsize=8)
    axes[1].set(xlabel="t (t = 0 drawn at 0.5)", ylabel="clusters")
    a = summary.attrs
    axes[0].figure.suptitle(rf"causal SA on $S^1$: n = {a.get('n', '?')}, $\beta$ = {float(a.get('beta', 0)):g}, "
                            f"{summary.sizes['member']} runs")
    return axes


# ----------------------------------------------------------------------------------------------
# paper 004 (Bruno, Pasqualotto, Agazzi 2025)


def plot_growth_rates(ax, beta, kmax_plot=10):
    """gamma_k = k^2 I_k(beta)/beta at integer k (dots) and real order k (dashed), k_max marked.

    **Arguments:**

    - `ax`: a Matplotlib axes.
    - `beta`: the inverse temperature.
    - `kmax_plot`: the largest k shown; default 10.
    """
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


def plot_paper004_fig2(runs: dict):
    """Fig. 2. runs: beta -> (ts, xs, k, predicted positions, histogram time).

    **Arguments:**

    - `runs`: a dict beta -> ``(ts, xs, k, predicted positions, histogram time)``.

    **Returns:**

    The Matplotlib figure.
    """
    plt = pyplot()
    fig, axes = plt.subplots(len(runs), 3, figsize=(14, 3.6 * len(runs)), squeeze=False)
    for r, (beta, (ts, xs, k, pos, t_hist)) in enumerate(runs.items()):
        plot_growth_rates(axes[r, 0], beta)
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
                     rf"{int(count_clusters(xs[i], **P4.CLUSTER_COUNT))} here, "
                     rf"{int(count_clusters(xs[-1], **P4.CLUSTER_COUNT))} at t = {ts[-1]:.3g}", fontsize=9)
        ax.set_xlabel(r"$\theta$ mod $2\pi$")
    fig.tight_layout()
    return fig


def plot_clusters_vs_beta(betas, counts, kmax):
    """Final cluster counts against beta with the linear-theory k*(beta) and sqrt(2 beta).

    **Arguments:**

    - `betas`: the inverse temperatures.
    - `counts`: the final cluster counts, (len(betas), seeds).
    - `kmax`: the dominant modes, (len(betas),).

    **Returns:**

    The Matplotlib figure.
    """
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


def plot_paper004_fig3(beta, Ns, times, Ns_det=None, times_det=None):
    """Fig. 3: exit times against N (log scale) with the predicted slope 1/(2 gamma_max).

    **Arguments:**

    - `beta`: the inverse temperature.
    - `Ns`: the numbers of particles.
    - `times`: the particles' exit times, (len(Ns), runs).
    - `Ns_det`: the N of the deterministic PDE runs; default None (not drawn).
    - `times_det`: their exit times; default None.

    **Returns:**

    The Matplotlib figure.
    """
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


def plot_paper004_fig4(tr, every: int = 5):
    """Fig. 4: densities of a circle PDE trajectory at every ``every``-th saved time.

    **Arguments:**

    - `tr`: a [`DensityTrajectory`][jaxattn.spectral.DensityTrajectory].
    - `every`: draw every this many saved times; default 5.

    **Returns:**

    The Matplotlib figure.
    """
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


def plot_paper004_fig5(part: dict, pde: dict, beta: float = 5.0):
    """Fig. 5: W1 to delta_3 and to uniform (particles), the small-alpha curve shifted by ln 10/gamma_3.

    **Arguments:**

    - `part`: the particle results, a dict alpha -> ``figure5_particles`` output.
    - `pde`: the PDE results, a dict alpha -> ``figure5_pde`` output.
    - `beta`: the inverse temperature; default 5.

    **Returns:**

    The Matplotlib figure.
    """
    plt = pyplot()
    shift = P4.shift_time(10.0, beta)
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


def plot_mode_amplitudes(tr, n_eff: float, kmax_plot: int = 6):
    """|mu_k(t)| of the noise run on a log scale against the linear prediction |mu_k(0)| e^{gamma_k t}.

    **Arguments:**

    - `tr`: the [`DensityTrajectory`][jaxattn.spectral.DensityTrajectory] of the noise run.
    - `n_eff`: the effective number of particles of the noise.
    - `kmax_plot`: the largest mode shown; default 6.

    **Returns:**

    The Matplotlib figure.
    """
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


# ----------------------------------------------------------------------------------------------
# notebooks/gradients_studies.ipynb: runners and plots of the differentiable studies
# (physics in jaxattn.studies.gradients and jaxattn.analysis; these pick sizes, print tables, draw).
# ``fast=True`` (env JAXATTN_FAST=1) keeps the whole notebook under a minute.


def _markdown_table(headers, rows):
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for r in rows:
        print("| " + " | ".join(f"{v:.5g}" if isinstance(v, float) else str(v) for v in r) + " |")


def gradients_example(fast: bool):
    """All gradients of L = mean ⟨x_i(T), x_j(T)⟩ in one reverse pass, beta = 4, T = 5.

    **Arguments:**

    - `fast`: small sizes (the notebook's ``JAXATTN_FAST=1``).

    **Returns:**

    ``(value, grads)`` of [`value_and_grad_of`][jaxattn.value_and_grad_of].
    """
    n, d = (32, 3) if fast else (256, 3)
    x0 = initial.uniform_sphere(jax.random.PRNGKey(0), n, d)
    field = SelfAttention(4.0, Q=jnp.eye(d), K=jnp.eye(d), V=jnp.eye(d))
    value, g = value_and_grad_of(lambda tr: mean_inner_product(tr.final), field, x0, 5.0, ts=2,
                                 rtol=1e-8, atol=1e-8)
    print(f"L = {float(value):.6f}   dL/dbeta = {float(g.field.beta):.6f}   dL/dt1 = {float(g.t1):.6f}")
    print("dL/dV =\n", np.round(np.asarray(g.field.V[0]), 5))
    print("|dL/dx0| (Riemannian) per token, first 4:", np.round(np.linalg.norm(np.asarray(g.x0), axis=-1)[:4], 5))
    return value, g


def gradients_recover_beta(fast: bool, beta_true: float = 1.5):
    """Observe a clustering time at beta_true (hard: first of 3001 dense saves with all pairs
    delta-close), then fit beta by Adam on the soft clustering time.

    **Arguments:**

    - `fast`: small sizes (the notebook's ``JAXATTN_FAST=1``).
    - `beta_true`: the beta of the observation; default 1.5.

    **Returns:**

    ``(result, t_obs)``: the [`FitResult`][jaxattn.grad.FitResult] and the observed time.
    """
    n, d, delta, t_max = 8, 3, 1e-3, 30.0
    x0 = initial.uniform_sphere(jax.random.PRNGKey(3), n, d)
    tr = simulate(SelfAttention(beta_true), x0, t_max, ts=3001, rtol=1e-10, atol=1e-10)
    m = np.asarray(min_inner_product(tr.xs))
    t_obs = float(tr.ts[np.argmax(m >= 1 - delta)])
    res = G.fit_beta_to_clustering_time(t_obs, x0, t_max, beta_init=0.7, delta=delta,
                                        steps=40 if fast else 80, learning_rate=0.1)
    print(f"observed clustering time {t_obs:.3f} at beta_true = {beta_true}; "
          f"recovered beta = {float(res.params):.4f} (rel. error {abs(float(res.params) / beta_true - 1):.2e})")
    fig, ax = pyplot().subplots(1, 2, figsize=(9, 3))
    ax[0].semilogy(np.asarray(res.losses))
    ax[0].set_xlabel("Adam step")
    ax[0].set_ylabel(r"$((T_{\mathrm{soft}} - t_{\mathrm{obs}})/t_{\mathrm{obs}})^2$")
    ax[1].plot(np.asarray(res.history))
    ax[1].axhline(beta_true, color="k", ls="--", label=r"$\beta_{\mathrm{true}}$")
    ax[1].set_xlabel("Adam step")
    ax[1].set_ylabel(r"$\beta$")
    ax[1].legend()
    ax[0].set_title("loss", fontsize=10)
    ax[1].set_title(r"fitted $\beta$", fontsize=10)
    fig.tight_layout()
    return res, t_obs


def gradients_lifetime_study(fast: bool, beta: float = 2.0):
    """Maximise the mean soft time to one cluster over K (|K|_F = sqrt d, Q = V = I) on a training
    ensemble; evaluate K = I, the optimum K* and a rank-one K on held-out initial conditions.

    **Arguments:**

    - `fast`: small sizes (the notebook's ``JAXATTN_FAST=1``).
    - `beta`: the inverse temperature; default 2.

    **Returns:**

    ``(result, rows)``: the [`FitResult`][jaxattn.grad.FitResult] and the rows of the printed table.
    """
    n, d, t_max = 8, 3, 40.0
    batch, held, steps = (4, 6, 6) if fast else (8, 32, 60)
    x_train = initial.uniform_sphere(jax.random.PRNGKey(7), n, d, batch=batch)
    x_test = initial.uniform_sphere(jax.random.PRNGKey(8), n, d, batch=held)
    res = G.maximise_metastable_lifetime(x_train, beta, t_max, steps=steps, learning_rate=0.1)
    K_star = np.asarray(res.params)
    w, U = np.linalg.eigh(0.5 * (K_star + K_star.T))
    e = U[:, -1]
    candidates = {"K = I": np.eye(d), "K* (optimised)": K_star, "rank one sqrt(d) e e^T": np.sqrt(d) * np.outer(e, e)}
    rows = []
    for name, K in candidates.items():
        T = G.clustering_time_surrogate(SelfAttention(beta, K=jnp.asarray(K)), x_test, t_max, rtol=1e-7,
                                        atol=1e-7)
        T = np.asarray(T)
        rows.append([name, float(T.mean()), float(np.median(T)), int(np.sum(T > 0.99 * t_max))])
    print(f"SA, n = {n}, d = {d}, beta = {beta}, horizon {t_max}; train {batch}, held-out {held} initial conditions")
    _markdown_table(["key matrix", "mean T_soft (held-out)", "median", f"# not clustered by {t_max}"], rows)
    print("eigenvalues of the symmetric part of K*:", np.round(w, 3),
          "  |antisymmetric part|_F:", round(float(np.linalg.norm(0.5 * (K_star - K_star.T))), 3))
    fig, ax = pyplot().subplots(figsize=(4.5, 3))
    ax.plot(-np.asarray(res.losses))
    ax.set_xlabel("Adam step")
    ax.set_ylabel(r"mean $T_{\mathrm{soft}}$ (train)")
    ax.set_title(rf"SA, $n = {n}$, $d = {d}$, $\beta = {beta:g}$: lifetime over $K$", fontsize=10)
    fig.tight_layout()
    return res, rows


def gradients_boundary_sensitivity(fast: bool):
    """d P/d beta along `t*(beta)` for random tokens (large d tracks gamma, Thm 4.7) vs the gamma model.

    **Arguments:**

    - `fast`: small sizes (the notebook's ``JAXATTN_FAST=1``).

    **Returns:**

    The `jaxattn.studies.gradients.BoundarySensitivity`.
    """
    n, delta = 8, 1e-2
    d, batch, betas = (32, 2, [1.0, 2.5, 4.0]) if fast else (256, 8, list(np.linspace(0.5, 6.0, 12)))
    res = G.clustering_sensitivity_along_boundary(betas, n, d, key=jax.random.PRNGKey(1), batch=batch, delta=delta)
    rows = [[float(b), float(t), float(dt), float(p), float(dp), float(dg)] for b, t, dt, p, dp, dg in
            zip(res.betas, res.t_star, res.dt_star, res.p_particles, res.dp_particles, res.dp_gamma)]
    print(f"SA, n = {n}, d = {d}, {batch} random initial conditions, delta = {delta}, tau = delta/4")
    _markdown_table(["beta", "t*(beta)", "dt*/dbeta", "P particles", "dP/dbeta particles", "dP/dbeta gamma model"], rows)
    # the phase diagram of the gamma model with the boundary (full mode only: two more compilations)
    fig, ax = pyplot().subplots(1, 2, figsize=(10, 3.5))
    if not fast:
        bgrid = np.linspace(0.2, 6.0, 30)
        tgrid = np.linspace(0.0, 12.0, 61)
        gam = np.stack([np.asarray(gamma_trajectory(b, n, jnp.asarray(tgrid))) for b in bgrid])
        ax[0].pcolormesh(cell_edges(bgrid), cell_edges(tgrid), (gam >= 1 - delta).T.astype(float),
                         shading="flat", cmap="Greys")
    ax[0].plot(res.betas, res.t_star, "r.-", label=r"$t^*(\beta)$")
    ax[0].set_xlabel(r"$\beta$")
    ax[0].set_ylabel("$t$")
    ax[0].set_ylim(0, 12)
    ax[0].legend()
    ax[0].set_title(rf"$\gamma_\beta(t) \geq 1 - \delta$ (black), $n = {n}$, $d = {d}$", fontsize=10)
    ax[1].plot(res.betas, res.dp_particles, "o-", label="particles (autodiff)")
    ax[1].plot(res.betas, res.dp_gamma, "s--", label=r"$\gamma$ model: $\partial_\beta \gamma / (4 \tau)$")
    ax[1].set_xlabel(r"$\beta$")
    ax[1].set_ylabel(r"$dP/d\beta$ on the boundary")
    ax[1].legend()
    fig.tight_layout()
    return res


def _mu3_sq(mu):  # module level, so every T reuses one compilation
    return jnp.abs(mu[-1, 3]) ** 2


def gradients_pde(fast: bool):
    """Circle PDE (USA, beta = 5): d|mu_3(T)|^2/dbeta by the adjoint vs the linear theory 2T gamma_3' L.

    **Arguments:**

    - `fast`: small sizes (the notebook's ``JAXATTN_FAST=1``).

    **Returns:**

    The rows of the printed table.
    """
    K, beta, k = 16, 5.0, 3
    c0 = C.mode_coefficients(K).at[k].set(1e-6)
    Ts = [0.1, 0.2] if fast else [0.05, 0.1, 0.2, 0.3, 0.4]
    I = lambda v: sp.iv(v, beta)  # noqa: E731
    gam = k**2 * I(k) / beta
    dgam = k**2 * (0.5 * (I(k - 1) + I(k + 1)) / beta - I(k) / beta**2)
    rows = []
    for T in Ts:
        L, g = circle_pde_value_and_grad(_mu3_sq, beta, c0, T, rtol=1e-12, atol=1e-20)
        rows.append([T, float(L), float(g.beta), 2 * T * dgam * 1e-12 * np.exp(2 * gam * T), float(g.t1)])
    _markdown_table(["T", "|mu_3(T)|^2", "d/dbeta (adjoint)", "d/dbeta (linear theory)", "d/dT (adjoint)"], rows)
    return rows
