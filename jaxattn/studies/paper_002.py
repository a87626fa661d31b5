"""Reproductions of paper 002 (Geshkovski, Letrouit, Polyanskiy, Rigollet, "A mathematical
perspective on transformers", December 2023 version): figures 2-4 and the checkable
statements of §§4-7. Every function returns an :class:`xarray.Dataset` (or plain numbers
for closed forms); ``plot_*`` helpers draw them with matplotlib.

Conventions and errata relied on (digest 002):

* (SA) is eq. (2.6) with the softmax partition function (2.4), (USA) replaces Z_i by n.
* Thm 4.6: the **SA** equation is (4.8) and the **USA** equation (4.9) carries a factor
  **2/n** that the OCR'd paper omits (derived and checked in the digest, §2.4).
* Phase diagrams (Figs 2-4) plot the fraction of ordered pairs i != j with
  <x_i, x_j> >= 1 - delta, delta = 1e-2 (the caption's value; the authors' code used
  0.999), averaged over realisations ("2^10", OCR "210").
* The overlay curve (4.11) is gamma_beta(t) = 1 - delta for the figure's n and delta
  (the authors' notebook used n = 128 and delta = 1e-3: rebuilt here with the figure's).
* Thm 7.2 (Cohn-Kumar) is printed with the logical direction reversed: sharp
  configurations *are* global minimisers of the repulsive energy (used in T26-T27).
* Prop 6.1: beta_1(n) is an *upper* bound ("<~ C n^2"; OCR ">").
* beta = 0 (Thm 5.1, eq. (5.1)): :class:`jaxattn.SelfAttention` requires beta > 0, so the
  beta = 0 model is run as :class:`jaxattn.Kuramoto` on the circle (exactly (6.1) at
  beta = 0) and as SA with beta = 1e-12 in d >= 3 (the field is analytic in beta and
  differs from (5.1) by O(beta)).
* The authors' scheme (code ``phase-diagrams.py``) is forward Euler with h = 0.1 on the
  *unprojected* attention output followed by renormalisation. It stretches time by
  ~ 1 + h e^beta/(e^beta + n - 1) (digest P3b): :func:`euler_renormalise` reproduces it
  for comparison only; the library default is an adaptive projected solve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jaxtyping import Array, Float

from .. import initial
from ..analysis import circle_energy, clustered_pair_fraction, count_clusters
from ..fields import CircleSelfAttention, Kuramoto, SelfAttention, UnnormalisedSelfAttention
from ..solve import simulate
from .sweep import run_sweep, solve_ensemble

__all__ = [
    "KQ_ENSEMBLES",
    "VALUE_ENSEMBLES",
    "antipodal_configuration",
    "beta_one",
    "circle_hessian",
    "circle_hessian_analytic",
    "circle_metastability",
    "crossing_time",
    "euler_renormalise",
    "euler_bias",
    "gamma_curve",
    "gamma_rhs",
    "hemisphere_margin",
    "in_open_hemisphere",
    "phase_diagram",
    "plot_circle_metastability",
    "plot_phase_diagram",
    "random_matrices",
    "repulsive_configuration",
    "sharp_configuration",
    "sharp_energy",
    "small_beta_consensus",
    "tau_beta",
    "wendel_monte_carlo",
    "wendel_probability",
]

# ----------------------------------------------------------------------------- random Q, K, V

KQ_ENSEMBLES = ("identity", "ginibre", "goe")
VALUE_ENSEMBLES = ("identity", "wishart", "qk", "minus_qk", "ginibre")


def random_matrices(key, d: int, kq: str = "identity", value: str = "identity"):
    """(Q, K, V) for the random ensembles of paper 002 Fig. 4 (digest §3.4, authors' code).

    The logits are beta <Q x_i, K x_j> = beta x_i^T B x_j with B = Q^T K:

    * ``kq="identity"``: B = I;
    * ``kq="ginibre"``: B = G_1 G_2 / sqrt(d) (code ``randomKQ=1``; Q = G_1^T d^{-1/4},
      K = G_2 d^{-1/4}), entries of variance ~1 so ||B||_op ~ 2 sqrt(d);
    * ``kq="goe"``: B = (G + G^T)/sqrt(2) (code ``randomKQ=3``; Q = I, K = B).

    and the value matrix

    * ``"identity"``: V = I; ``"wishart"``: V = G G^T / sqrt(d) (code ``randomV=1``,
      positive semidefinite: the "V > 0" panel);
    * ``"qk"`` / ``"minus_qk"``: V = +-B / normV with normV = sqrt(d) (ginibre) or
      sqrt(d + 1) (goe) (code ``randomV=2/3``; V = Q^T K is the "gradient flow" case);
    * ``"ginibre"``: V = G / sqrt(d) (spectral radius ~1).

    Matrices act on column vectors as in eq. (2.3); the authors' row-vector code applies
    V^T, which differs only for non-symmetric V. One draw per call: sweeps draw one set
    per (beta, seed) point (the code's ``noanneal=1``) and average over seeds.
    """
    if kq not in KQ_ENSEMBLES:
        raise ValueError(f"kq must be one of {KQ_ENSEMBLES}, got {kq!r}")
    if value not in VALUE_ENSEMBLES:
        raise ValueError(f"value must be one of {VALUE_ENSEMBLES}, got {value!r}")
    k1, k2, k3 = jax.random.split(key, 3)
    eye = jnp.eye(d)
    if kq == "identity":
        Q, K, B, norm = eye, eye, eye, 1.0
    elif kq == "ginibre":
        G1 = jax.random.normal(k1, (d, d))
        G2 = jax.random.normal(k2, (d, d))
        Q, K = G1.T / d**0.25, G2 / d**0.25
        B, norm = G1 @ G2 / math.sqrt(d), math.sqrt(d)
    else:
        G = jax.random.normal(k1, (d, d))
        B = (G + G.T) / math.sqrt(2.0)
        Q, K, norm = eye, B, math.sqrt(d + 1.0)
    G3 = jax.random.normal(k3, (d, d))
    V = {
        "identity": eye,
        "wishart": G3 @ G3.T / math.sqrt(d),
        "qk": B / norm,
        "minus_qk": -B / norm,
        "ginibre": G3 / math.sqrt(d),
    }[value]
    return Q, K, V


# ----------------------------------------------------------------------------- phase diagrams


def _phase_point(seed: int, beta: float, d: int, kq: str, value: str, *, n: int, batch: int,
                 delta: float, ts: np.ndarray, rtol: float, atol: float) -> xr.Dataset:
    key = jax.random.PRNGKey(seed)
    kx, km = jax.random.split(key)
    x0 = initial.uniform_sphere(kx, n, d, batch=batch)
    if kq == "identity" and value == "identity":
        field = SelfAttention(beta)
    else:
        Q, K, V = random_matrices(km, d, kq, value)
        field = SelfAttention(beta, Q, K, V)

    def observe(ts, xs):
        return {"pair_fraction": clustered_pair_fraction(xs, delta)}

    obs = solve_ensemble(field, x0, float(ts[-1]), ts=jnp.asarray(ts), observe=observe,
                         rtol=rtol, atol=atol)
    return xr.Dataset(
        {"pair_fraction": (("member", "t"), obs["pair_fraction"]),
         "num_steps": ((), int(obs["num_steps"]))},
        coords={"t": ts},
    )


def phase_diagram(
    betas: Sequence[float],
    ts: Sequence[float] | np.ndarray,
    *,
    directory,
    n: int = 32,
    d: int | Sequence[int] = 128,
    kq: str | Sequence[str] = "identity",
    value: str | Sequence[str] = "identity",
    delta: float = 1e-2,
    batch: int = 128,
    seeds: int | Sequence[int] = 1,
    rtol: float = 1e-6,
    atol: float = 1e-6,
    progress: bool = True,
) -> xr.Dataset:
    """Paper 002 Figs 2-4: P(<x_i(t), x_j(t)> >= 1 - delta) over (beta, t).

    Each (beta, d, kq, value, seed) point integrates ``batch`` i.i.d. uniform initial
    sequences on S^{d-1} as one batched (SA) solve (Tsit5, max-over-members error
    control, sharded over devices) and stores the per-member fraction of clustered
    ordered pairs on the time grid ``ts``. The returned dataset adds

    * ``probability`` (beta, d, kq, value, t): the mean over seeds and members (the
      plotted quantity);
    * ``t_star`` (beta): the crossing time of the gamma curve (4.11) for this n, delta.

    Figures: Fig 2 is d in {128, 512, 1024}; Fig 3 is d = 2; Fig 4 is d = 128 with
    (kq, value) in {(ginibre, ginibre), (goe, wishart), (ginibre, qk), (goe, qk)}. The
    paper used n = 32, delta = 1e-2, t in [0, 30], beta in [0.1, 9] and 2^10 realisations.
    """
    ts = np.asarray(ts, dtype=float)
    if ts.ndim != 1 or ts.size < 2 or np.any(np.diff(ts) <= 0) or ts[0] < 0:
        raise ValueError("ts must be an increasing 1-d grid of times >= 0 with at least 2 entries")
    if not 0 < delta < 2:
        raise ValueError(f"delta must be in (0, 2), got {delta}")
    as_list = lambda v: list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v]  # noqa: E731
    grid = {"beta": [float(b) for b in betas], "d": [int(x) for x in as_list(d)],
            "kq": as_list(kq), "value": as_list(value)}
    fn = partial(_phase_point, n=n, batch=batch, delta=delta, ts=ts, rtol=rtol, atol=atol)
    fn.__qualname__ = "phase_diagram_point"  # type: ignore[attr-defined]
    fn.__module__ = __name__  # type: ignore[attr-defined]
    attrs = dict(n=n, delta=delta, batch=batch, rtol=rtol, atol=atol, model="SA",
                 ts=ts.tolist(), init="uniform on S^{d-1}", solver="Tsit5 + sphere retraction",
                 paper="002 Figs 2-4")
    ds = run_sweep(fn, grid, directory=directory, seeds=seeds, name="phase_diagram", attrs=attrs,
                   progress=progress)
    ds["probability"] = ds.pair_fraction.mean(("seed", "member"))
    ds["t_star"] = ("beta", [crossing_time(b, n, delta) for b in ds.beta.values])
    return ds


def plot_phase_diagram(ds: xr.Dataset, ax=None, *, curve: bool = True, **select):
    """pcolormesh of ``probability`` over (t, beta) (colormap RdBu_r as the paper) with t*(beta)."""
    from ..plot import _pyplot

    plt = _pyplot()
    prob = ds.probability
    for dim in ("d", "kq", "value"):
        if dim in prob.dims:
            prob = prob.sel({dim: select[dim]}) if dim in select else prob.isel({dim: 0})
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4))
    mesh = ax.pcolormesh(prob.t, prob.beta, prob.transpose("beta", "t"), cmap="RdBu_r", vmin=0, vmax=1,
                         shading="nearest")
    plt.colorbar(mesh, ax=ax, label=r"$P(\langle x_i, x_j\rangle \geq 1-\delta)$")
    if curve and "t_star" in ds:
        ax.plot(ds.t_star, ds.beta, "k--", lw=1.2, label=r"$\gamma_\beta(t) = 1-\delta$")
        ax.set_xlim(float(prob.t[0]), float(prob.t[-1]))
        ax.legend(loc="lower right")
    ax.set_xlabel("t")
    ax.set_ylabel(r"$\beta$")
    return ax


# ----------------------------------------------------------------------------- gamma ODE (Thm 4.6)


def gamma_rhs(gamma, beta, n: int, model: str = "SA"):
    """Right-hand side of paper 002 eq. (4.8) (SA) or (4.9) (USA, with its 2/n factor).

    SA : gamma' = 2 e^{beta gamma}(1 - gamma)((n-1) gamma + 1) / (e^beta + (n-1) e^{beta gamma})
    USA: gamma' = (2/n) e^{beta gamma}(1 - gamma)((n-1) gamma + 1)
    """
    xp = jnp if isinstance(gamma, jax.Array) else np
    core = (1 - gamma) * ((n - 1) * gamma + 1)
    if model == "SA":
        # divided by e^{beta gamma}: 2 core / (e^{beta (1 - gamma)} + n - 1), overflow-free
        return 2 * core / (xp.exp(beta * (1 - gamma)) + (n - 1))
    if model == "USA":
        return 2 / n * xp.exp(beta * gamma) * core
    raise ValueError(f"model must be 'SA' or 'USA', got {model!r}")


def gamma_curve(beta: float, n: int, ts, *, model: str = "SA", rtol: float = 1e-10,
                atol: float = 1e-12) -> np.ndarray:
    """gamma_beta(t) at times ``ts`` (Thm 4.6): pairwise inner product under orthogonal init.

    Integrated with diffrax (Tsit5 for SA; the implicit Kvaerno5 for USA, whose rate near
    gamma = 1 is 2 e^beta: stiff, digest P3). gamma(0) = 0.
    """
    if model not in ("SA", "USA"):
        raise ValueError(f"model must be 'SA' or 'USA', got {model!r}")
    ts = jnp.asarray(ts, dtype=float)
    return np.asarray(_gamma_solve(jnp.asarray(beta, float), jnp.asarray(n, float), ts, model, rtol, atol))


@partial(jax.jit, static_argnames=("model", "rtol", "atol"))
def _gamma_solve(beta, n, ts, model, rtol, atol):
    term = diffrax.ODETerm(lambda t, g, args: gamma_rhs(g, beta, n, model))
    sol = diffrax.diffeqsolve(
        term, diffrax.Kvaerno5() if model == "USA" else diffrax.Tsit5(), 0.0, ts[-1], None,
        jnp.asarray(0.0), saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol), max_steps=1_000_000,
    )
    return sol.ys


def crossing_time(beta: float, n: int, delta: float = 1e-2, *, model: str = "SA") -> float:
    """t*(beta): the time gamma_beta reaches 1 - delta, the phase-transition curve (4.11).

    The gamma ODE is autonomous and gamma' > 0 on [0, 1), so
    t* = integral_0^{1-delta} d gamma / gamma'(gamma) (a quadrature, independent of any
    time stepper). Digest table (n = 32, delta = 1e-2, SA): t*(1) = 4.1145,
    t*(5) = 8.3879, t*(9) = 177.57.
    """
    from scipy.integrate import quad

    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    value, err = quad(lambda g: 1.0 / gamma_rhs(g, beta, n, model), 0.0, 1.0 - delta,
                      epsabs=0.0, epsrel=1e-12, limit=200)
    return float(value)


# ----------------------------------------------------------------------------- circle (Fig 3, T21-T22)


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
    """Cluster counts of (SA) on the circle over time (paper 002 Fig 3, Problem 2; digest T21-T22).

    ``batch`` uniform initial angle sets per beta are integrated as one batched state of
    :class:`jaxattn.CircleSelfAttention` (angle form of (SA) on S^1). Returns per member
    and time: ``clusters`` (number of arcs separated by circular gaps > ``gap`` rad) and
    ``pair_fraction`` (ordered pairs with cos(theta_i - theta_j) >= 1 - delta, the d = 2
    phase-diagram value). Digest calibration (200 runs): beta = 4 -> 2 clusters in
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
    from ..plot import _pyplot

    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for beta in ds.beta.values:
        ax.plot(ds.t, ds.clusters.sel(beta=beta).mean("member"), "o-", label=rf"$\beta={beta:g}$")
    ax.set_xscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel("mean number of clusters")
    ax.legend()
    return ax


# ----------------------------------------------------------------------------- Wendel (Thm 4.5, T16)


def wendel_probability(n: int, d: int) -> float:
    """P(n i.i.d. uniform points of S^{d-1} lie in an open hemisphere) = 2^{-(n-1)} sum_{k<d} C(n-1, k)."""
    if n < 1 or d < 1:
        raise ValueError("need n, d >= 1")
    return math.fsum(math.comb(n - 1, k) for k in range(min(d, n))) / 2 ** (n - 1)


def hemisphere_margin(x: np.ndarray) -> float:
    """max_{|w|_inf <= 1} min_i <x_i, w> by linear programming (digest P13).

    > 0 exactly when all points lie in an open hemisphere {<x, w> > 0}.
    """
    from scipy.optimize import linprog

    x = np.asarray(x, dtype=float)
    n, d = x.shape
    # variables (w, s): maximise s subject to s - <x_i, w> <= 0, -1 <= w <= 1, s <= 1
    c = np.zeros(d + 1)
    c[-1] = -1.0
    a_ub = np.hstack([-x, np.ones((n, 1))])
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(n), bounds=[(-1, 1)] * d + [(None, 1)], method="highs")
    if res.status != 0:  # pragma: no cover - the LP is always feasible and bounded
        raise RuntimeError(f"hemisphere LP failed: {res.message}")
    return float(-res.fun)


def in_open_hemisphere(x: np.ndarray, tol: float = 1e-9) -> bool:
    """True when the points x_i (rows) lie in an open hemisphere (LP margin > tol)."""
    return hemisphere_margin(x) > tol


def wendel_monte_carlo(n: int, d: int, draws: int, seed: int = 0) -> xr.Dataset:
    """Monte Carlo of Wendel's probability with the LP hemisphere test (digest T16)."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(draws):
        g = rng.standard_normal((n, d))
        hits += in_open_hemisphere(g / np.linalg.norm(g, axis=1, keepdims=True))
    p = hits / draws
    exact = wendel_probability(n, d)
    return xr.Dataset({"estimate": p, "exact": exact,
                       "stderr": math.sqrt(max(exact * (1 - exact), 1e-300) / draws)},
                      attrs=dict(n=n, d=d, draws=draws, seed=seed, paper="002 Thm 4.5"))


# ----------------------------------------------------------------------------- repulsion (§7.1, T26-T27)


def sharp_configuration(name: str, *, n: int | None = None, d: int | None = None) -> np.ndarray:
    """Known sharp (universally optimal) configurations: ``polygon`` (n points, d = 2),
    ``simplex`` (n = d + 1), ``cross`` (cross-polytope, n = 2d), ``icosahedron`` (n = 12, d = 3)."""
    if name == "polygon":
        a = 2 * np.pi * np.arange(n) / n
        return np.stack([np.cos(a), np.sin(a)], 1)
    if name == "simplex":
        e = np.eye(d + 1) - 1.0 / (d + 1)
        u, s, vt = np.linalg.svd(e)
        x = e @ vt[:d].T
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    if name == "cross":
        return np.concatenate([np.eye(d), -np.eye(d)])
    if name == "icosahedron":
        p = (1 + math.sqrt(5)) / 2
        pts = []
        for a in (-1, 1):
            for b in (-p, p):
                pts += [(0, a, b), (a, b, 0), (b, 0, a)]
        x = np.array(pts, float)
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    raise ValueError(f"unknown configuration {name!r}")


def sharp_energy(x: np.ndarray, beta: float) -> float:
    """E_beta(X) = (1/(2 beta n^2)) sum_ij e^{beta <x_i, x_j>} (paper 002 §1.15 normalisation)."""
    g = np.asarray(x) @ np.asarray(x).T
    return float(np.exp(beta * g).sum() / (2 * beta * g.shape[0] ** 2))


def repulsive_configuration(n: int, d: int, *, beta: float = 1.0, t1: float = 2000.0, seeds=(0,),
                            rtol: float = 1e-10, atol: float = 1e-10) -> xr.Dataset:
    """Long-time state of the repulsive dynamics V = -I (paper 002 §7.1; digest T26-T27).

    Time-rescaled USA (weights e^{beta(<x_i, x_j> - 1)}/n) with V = -I: a gradient *descent*
    of E_beta on (S^{d-1})^n. Returns the final configurations, their energies and sorted
    Gram matrices; compare with :func:`sharp_configuration` and :func:`sharp_energy`.
    """
    field = UnnormalisedSelfAttention(beta, V=-jnp.eye(d), time_rescaled=True)
    x0 = jnp.stack([initial.uniform_sphere(jax.random.PRNGKey(s), n, d) for s in seeds])
    traj = simulate(field, x0, t1, ts=jnp.array([0.0, t1 / 2, t1]), rtol=rtol, atol=atol,
                    max_steps=2**20)
    xs = np.asarray(traj.xs)
    energy = np.array([[sharp_energy(x, beta) for x in member] for member in xs])
    gram = np.einsum("stid,stjd->stij", xs, xs)
    return xr.Dataset(
        {"x": (("seed", "t", "token", "dim"), xs), "energy": (("seed", "t"), energy),
         "gram": (("seed", "t", "token", "token2"), gram)},
        coords={"seed": list(seeds), "t": np.asarray(traj.ts)},
        attrs=dict(n=n, d=d, beta=beta, model="USA time-rescaled, V = -I", paper="002 §7.1"),
    )


# ----------------------------------------------------------------------------- beta = 0, small beta


def antipodal_configuration(n: int, d: int) -> np.ndarray:
    """n - 1 tokens at e_1 and one at -e_1: stationary for (5.1) but unstable (Thm 5.1, [FL19])."""
    x = np.zeros((n, d))
    x[:, 0] = 1.0
    x[-1, 0] = -1.0
    return x


def small_beta_consensus(betas: Sequence[float], *, n: int = 32, d: int = 2, batch: int = 200,
                         t1: float = 200.0, seed: int = 0, delta: float = 1e-3) -> xr.Dataset:
    """Fraction of random starts ending in one cluster (paper 002 Thm 5.1 / 5.2; digest T23-T24).

    beta = 0 runs (5.1): on the circle :class:`jaxattn.Kuramoto` (K = 1, omega = 0, which
    *is* (6.1) at beta = 0); in d >= 3 SA at beta = 1e-12 (SelfAttention needs beta > 0;
    the O(beta) difference is far below the tolerances). beta > 0 runs (SA).
    """
    key = jax.random.PRNGKey(seed)
    rows = []
    for beta in betas:
        if d == 2:
            field = Kuramoto() if beta == 0 else CircleSelfAttention(beta)
            x0 = initial.uniform_circle(key, n, batch=batch)

            def observe(ts, th):
                return {"one_cluster": count_clusters(th[:, -1], manifold="circle", gap=0.1) == 1,
                        "min_inner": jnp.min(jnp.cos(th[:, -1, :, None] - th[:, -1, None, :]), (-2, -1))}
        else:
            field = SelfAttention(1e-12 if beta == 0 else beta)
            x0 = initial.uniform_sphere(key, n, d, batch=batch)

            def observe(ts, xs):
                g = jnp.einsum("bid,bjd->bij", xs[:, -1], xs[:, -1])
                return {"one_cluster": jnp.min(g, (-2, -1)) >= 1 - delta, "min_inner": jnp.min(g, (-2, -1))}

        obs = solve_ensemble(field, x0, t1, ts=jnp.array([0.0, t1]), observe=observe, rtol=1e-8, atol=1e-8,
                             max_steps=2**20)
        rows.append(xr.Dataset({"one_cluster": ("member", obs["one_cluster"].astype(bool)),
                                "min_inner": ("member", obs["min_inner"])}))
    ds = xr.concat(rows, dim=xr.DataArray(list(map(float, betas)), dims="beta", name="beta"))
    ds["fraction"] = ds.one_cluster.mean("member")
    ds.attrs.update(n=n, d=d, batch=batch, t1=t1, seed=seed, paper="002 Thm 5.1-5.2")
    return ds


# ----------------------------------------------------------------------------- strict saddles (Prop 6.1)


def circle_hessian(theta: Float[Array, " n"], beta: float) -> np.ndarray:
    """Hessian of the circle energy (6.4) by automatic differentiation."""
    return np.asarray(_circle_hessian(jnp.asarray(theta, float), jnp.asarray(beta, float)))


@jax.jit
def _circle_hessian(theta, beta):
    return jax.hessian(lambda th: circle_energy(th, beta))(theta)


def circle_hessian_analytic(theta, beta: float) -> np.ndarray:
    """Appendix C: d^2E/dtheta_i dtheta_j = g(theta_i - theta_j)/n^2 (i != j), diagonal
    -sum_{m != i} g(theta_i - theta_m)/n^2, g(x) = (cos x - beta sin^2 x) e^{beta cos x}."""
    theta = np.asarray(theta, float)
    n = theta.size
    diff = theta[:, None] - theta[None, :]
    g = (np.cos(diff) - beta * np.sin(diff) ** 2) * np.exp(beta * np.cos(diff))
    np.fill_diagonal(g, 0.0)
    return (g - np.diag(g.sum(1))) / n**2


def tau_beta(beta: float) -> float:
    """tau_beta in [0, pi): beta sin^2 tau = cos tau, i.e. cos tau = (sqrt(1 + 4 beta^2) - 1)/(2 beta)."""
    return math.acos((math.sqrt(1 + 4 * beta**2) - 1) / (2 * beta))


def beta_one(n: int) -> float:
    """Sufficient beta for Prop 6.1 on the circle: (n - 1) tau_beta < pi, i.e.
    beta > cos(pi/(n-1)) / sin^2(pi/(n-1)) (an upper bound for beta_1(n); OCR '>' erratum)."""
    if n < 4:
        return 0.0
    a = math.pi / (n - 1)
    return math.cos(a) / math.sin(a) ** 2


# ----------------------------------------------------------------------------- authors' scheme (T19)


@eqx.filter_jit
def euler_renormalise(beta, x0: Array, h: float, num_steps: int, *, Q=None, K=None, V=None,
                      unnormalised: bool = False) -> Array:
    """The authors' scheme (``phase-diagrams.py``): x <- normalise(x + h A V x), h fixed.

    A is the (softmax, or /n for USA) attention matrix; the increment is **not** projected
    on the tangent space, so each step also shrinks the tangential move by 1/|x + h y|:
    a first-order method whose time is stretched by ~1 + h <x_i, y_i> (digest P3b).
    ``x0`` is (..., n, d); returns the states after 0, 1, ..., num_steps steps, stacked on
    axis 0 (times k h). For comparisons only; not the library's integrator.
    """
    d = x0.shape[-1]
    Q = jnp.eye(d) if Q is None else Q
    K = jnp.eye(d) if K is None else K
    V = jnp.eye(d) if V is None else V

    def one(x):
        logits = beta * (x @ Q.T) @ (x @ K.T).T
        if unnormalised:
            a = jnp.exp(logits) / x.shape[0]
        else:
            a = jax.nn.softmax(logits, axis=-1)
        y = x + h * (a @ (x @ V.T))
        return y / jnp.linalg.norm(y, axis=-1, keepdims=True)

    step = one
    for _ in range(x0.ndim - 2):
        step = jax.vmap(step)

    def body(x, _):
        x = step(x)
        return x, x

    _, xs = jax.lax.scan(body, x0, None, length=num_steps)
    return jnp.concatenate([x0[None], xs], axis=0)


def euler_bias(beta: float, n: int, *, h: float = 0.1, delta: float = 1e-2) -> xr.Dataset:
    """Time stretch of the authors' Euler scheme on the exact one-parameter family of Thm 4.6.

    With orthogonal initial tokens x_i = e_i (d = n) every scheme that is equivariant
    under permutations keeps all pairwise inner products equal, so the Euler-renormalise
    iterates and the exact flow gamma_beta(t) are directly comparable. Returns the Euler
    crossing time of 1 - delta, the exact t* (quadrature) and their ratio; the predicted
    stretch is ~1 + h e^beta / (e^beta + n - 1) (digest P3b: 1.08 at beta = 5, n = 32).
    """
    t_exact = crossing_time(beta, n, delta)
    steps = int(math.ceil(1.5 * t_exact / h)) + 10
    x0 = jnp.eye(n)
    xs = euler_renormalise(jnp.asarray(beta), x0, h, steps)
    g = np.asarray(jnp.sum(xs[:, 0] * xs[:, 1], -1))  # <x_1, x_2> after k steps
    k = int(np.argmax(g >= 1 - delta))
    if g[k] < 1 - delta:
        raise RuntimeError("the Euler iterates did not cross 1 - delta; increase the horizon")
    # linear interpolation between the bracketing steps
    t_euler = h * (k - 1 + (1 - delta - g[k - 1]) / (g[k] - g[k - 1]))
    predicted = 1 + h * math.exp(beta) / (math.exp(beta) + n - 1)
    return xr.Dataset({"t_euler": t_euler, "t_exact": t_exact, "ratio": t_euler / t_exact,
                       "predicted_ratio": predicted},
                      attrs=dict(beta=beta, n=n, h=h, delta=delta, paper="002 digest T19 / P3b"))
