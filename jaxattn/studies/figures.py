"""Plot pieces shared by the paper reproductions (matplotlib through `jaxattn.plot.pyplot`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special as sp
from jaxtyping import ArrayLike

from .. import initial
from ..analysis import gamma_trajectory, mean_inner_product, min_inner_product
from ..fields import SelfAttention
from ..grad import value_and_grad_of
from ..plot import cell_edges, pyplot
from ..solve import simulate
from ..spectral import circle as C
from . import gradients as G

__all__ = [
    "fill_convex_polygon",
    "gradients_boundary_sensitivity",
    "gradients_example",
    "gradients_lifetime_study",
    "gradients_pde",
    "gradients_recover_beta",
]


def fill_convex_polygon(ax, vertices: ArrayLike, **kwargs):
    """Shade the convex polygon with the given 2-D vertices (any order) on ``ax``.

    The vertices are ordered by angle about their centroid; fewer than three (a point or a
    segment) draw nothing. ``kwargs`` go to ``ax.fill``. Returns the patches (or ``[]``).
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
# notebooks/gradients_studies.ipynb: runners and plots of the differentiable studies
# (physics in jaxattn.studies.gradients and jaxattn.analysis; these pick sizes, print tables, draw).
# ``fast=True`` (env JAXATTN_FAST=1) keeps the whole notebook under a minute.


def _markdown_table(headers, rows):
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for r in rows:
        print("| " + " | ".join(f"{v:.5g}" if isinstance(v, float) else str(v) for v in r) + " |")


def gradients_example(fast: bool):
    """All gradients of L = mean <x_i(T), x_j(T)> in one reverse pass, beta = 4, T = 5."""
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
    delta-close), then fit beta by Adam on the soft clustering time."""
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
    ensemble; evaluate K = I, the optimum K* and a rank-one K on held-out initial conditions."""
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
    """d P/d beta along t*(beta) for random tokens (large d tracks gamma, Thm 4.7) vs the gamma model."""
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
    """Circle PDE (USA, beta = 5): d|mu_3(T)|^2/dbeta by the adjoint vs the linear theory 2T gamma_3' L."""
    K, beta, k = 16, 5.0, 3
    c0 = C.mode_coefficients(K).at[k].set(1e-6)
    Ts = [0.1, 0.2] if fast else [0.05, 0.1, 0.2, 0.3, 0.4]
    I = lambda v: sp.iv(v, beta)  # noqa: E731
    gam = k**2 * I(k) / beta
    dgam = k**2 * (0.5 * (I(k - 1) + I(k + 1)) / beta - I(k) / beta**2)
    rows = []
    for T in Ts:
        L, g = G.circle_pde_value_and_grad(_mu3_sq, beta, c0, T, rtol=1e-12, atol=1e-20)
        rows.append([T, float(L), float(g.beta), 2 * T * dgam * 1e-12 * np.exp(2 * gam * T), float(g.t1)])
    _markdown_table(["T", "|mu_3(T)|^2", "d/dbeta (adjoint)", "d/dbeta (linear theory)", "d/dT (adjoint)"], rows)
    return rows
