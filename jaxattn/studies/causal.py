r"""Drivers for the experiments of paper 003 (causal attention): Figs 1-3 and Conjecture 1.

* [`fig1_runs`][jaxattn.studies.causal.fig1_runs] — d = 3, n = 32, beta = 9, Q = K = I, the five V of Fig. 1, T = 5000 with
  adaptive steps (sphere retraction keeps max | |x| - 1 | at round-off).
* [`causal_statistics`][jaxattn.studies.causal.causal_statistics] — the Fig. 2/3 statistics: many runs of (CSA-2d) (n = 200, beta = 64,
  Q = K = V = I) integrated ``chunk`` runs per compiled call, each with its own adaptive steps
  (``ensemble="map"``), sparse save times,
  Rényi / strong Rényi centres at t = 0 (delta = 4 beta^{-1/2}), consumed fractions (both
  definitions of [`jaxattn.analysis.renyi.consumed_fraction`][jaxattn.analysis.consumed_fraction]) and cluster counts over time.
* [`numpy_euler_causal_circle`][jaxattn.studies.causal.numpy_euler_causal_circle] — a faithful NumPy re-implementation of the first author's
  scheme (explicit Euler on the unprojected attention output, then renormalisation, step 0.05,
  as in the authors' notebook), the baseline of ``benchmarks/causal_statistics.py``.
* [`conjecture1_runs`][jaxattn.studies.causal.conjecture1_runs] — V = diag(3, 2, 1) with Q = K = I or random non-symmetric Q, K.

Why float64: inter-cluster drift speeds are 1e-4..1e-8, so in float32 the increment h v of a
step falls below one ulp of theta ~ 1 (1.2e-7) and the meta-stable drift freezes.
"""

from __future__ import annotations

import math

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jaxtyping import Array, ArrayLike, Float, Real
from tqdm.auto import tqdm

from .. import initial
from ..analysis import renyi
from ..fields import CircleSelfAttention, SelfAttention
from ..io import describe
from ..solve import simulate

#: the five value matrices of Fig. 1 (a)-(e)
FIG1_VALUES = {
    "a": (1.0, 1.0, 1.0),
    "b": (1.0, 1.0, 0.0),
    "c": (1.0, 0.0, 0.0),
    "d": (-1.0, -1.0, -3.0),
    "e": (-1.0, -3.0, -3.0),
}
#: Fig. 2 snapshot times
FIG2_TIMES = (0.0, 5.0, 10.0, 75.0, 150.0, 500.0)


def norm_drift(xs) -> float:
    """max_k | |x_k| - 1 | over everything in xs (..., d)."""
    return float(jnp.max(jnp.abs(jnp.linalg.norm(xs, axis=-1) - 1.0)))


def fig1_runs(key, *, n: int = 32, beta: float = 9.0, t1: float = 5000.0, num_saves: int = 501,
              rtol: float = 1e-8, atol: float = 1e-10, panels=tuple(FIG1_VALUES)) -> dict:
    """Fig. 1: one CSA run per panel from the same uniform initial tokens; returns {panel: Trajectory}."""
    x0 = initial.uniform_sphere(key, n, 3)
    ts = jnp.linspace(0.0, t1, num_saves)
    out = {}
    for p in panels:
        field = SelfAttention(beta, V=jnp.diag(jnp.asarray(FIG1_VALUES[p])), causal=True)
        out[p] = simulate(field, x0, t1, ts=ts, rtol=rtol, atol=atol, max_steps=10**6)
    return out


def causal_statistics(key, runs: int, *, n: int = 200, beta: float = 64.0, ts=(0, 1, 2, 5, 10, 20, 50, 75, 100, 150, 200, 300, 500),
                      chunk: int = 250, evaluator: str = "dense", rtol: float = 1e-4, atol: float = 1e-4,
                      ensemble: str = "map", solver=None, theta0: Float[ArrayLike, "runs n"] | None = None,
                      delta: float | None = None, gap: float = renyi.DEFAULT_CAUSAL_GAP,
                      return_angles: bool = False, progress: bool = False, precision: str = "float64") -> xr.Dataset:
    """Fig. 2-3 statistics over ``runs`` independent runs (uniform i.i.d. angles).

    Returns an ``xarray.Dataset`` with coordinates ``member`` (the run) and ``t`` (the save
    times), every variable with CF attributes ([`jaxattn.io.cf`][jaxattn.io.cf]): per run and time
    (member, t): ``renyi_ball``, ``strong_ball``, ``renyi_cluster``, ``strong_cluster`` (consumed
    fractions) and ``clusters``; per run: ``num_renyi``, ``num_strong``, ``steps`` (solver steps;
    for ``ensemble="batched"`` the chunk's shared count) and optionally ``angles`` (member, t,
    token). ``out["renyi_ball"]`` reads as the dict it replaced did; ``out["t"]`` holds the
    times (``ts`` before). Summaries: [`summarise`][jaxattn.studies.causal.summarise].
    ``progress=True`` shows a tqdm bar over the chunks. ``theta0`` (runs, n) replaces the
    key's uniform draws (same draws for several integrators, as in the work-precision study);
    ``solver`` is any diffrax solver.

    Runs are solved ``chunk`` at a time with [`jaxattn.simulate`][jaxattn.simulate]. Defaults from the
    work-precision study of issue 12 (``python -m benchmarks.causal_statistics --work-precision``,
    benchmarks/README.md, 24 runs, one core): **Bosh3, rtol = atol = 1e-4** — error of the mean
    consumed fractions 8e-4 against a Tsit5 rtol 1e-10 reference (the authors' Euler h = 0.05:
    1.7e-2) at 0.084 CPU-s per run (Tsit5 rtol 1e-6: 0.133; Euler h = 0.05: 1.62). Steps do not
    drop below ~180 as rtol loosens: inside a cluster dtheta_k/dt contracts at rate ~1, so the
    explicit solvers are stability-limited (dt <~ 2.5 for Bosh3 over t in [0, 500]) and cheaper
    stages per step win (Bosh3 3, Tsit5 6). ``ensemble="map"`` gives every run its own adaptive
    steps (a shared step must resolve every member's merge events; measured in the same study).
    ``evaluator="dense"`` is the faster field at n = 200 (the block lower-triangular kernel of
    `jaxattn.fields.circle.causal_circle_velocity`; the Fourier path's n M blocks cost more).
    """
    if runs < 1 or chunk < 1:
        raise ValueError("runs and chunk must be positive")
    if theta0 is not None:
        theta0 = jnp.asarray(theta0, dtype=precision)
        if theta0.shape != (runs, n):
            raise ValueError(f"theta0 must hold the initial angles of every run, shape (runs, n) = ({runs}, {n}), "
                             f"got {theta0.shape}")
    ts = jnp.asarray(ts, dtype=precision)
    t1 = float(ts[-1])
    delta = float(renyi.default_delta(beta)) if delta is None else float(delta)
    field = CircleSelfAttention(beta, causal=True, evaluator=evaluator)
    beta_ = float(beta)
    stats = lambda thetas: _fig3_statistics_jit(thetas, beta_, delta=delta, gap=gap)  # noqa: E731

    keys = jax.random.split(key, -(-runs // chunk))
    parts, steps, angles = [], [], []
    done = 0
    for k in tqdm(keys, desc="causal statistics (chunks)", unit="chunk", disable=not progress):
        b = min(chunk, runs - done)
        x0 = (initial.uniform_circle(k, n, batch=b) if theta0 is None else theta0[done:done + b]).astype(precision)
        traj = simulate(field, x0, t1, ts=ts, solver=diffrax.Bosh3() if solver is None else solver,
                        rtol=jnp.asarray(rtol, precision), atol=jnp.asarray(atol, precision), max_steps=10**6,
                        ensemble=ensemble)
        parts.append(jax.tree_util.tree_map(np.asarray, stats(traj.xs.astype(jnp.float64))))
        steps.append(np.broadcast_to(np.asarray(traj.stats["num_steps"]), (b,)))
        if return_angles:
            angles.append(np.asarray(traj.xs))
        done += b
    out = {key_: np.concatenate([p[key_] for p in parts]) for key_ in parts[0]}
    data = {key_: (("member", "t")[:value.ndim], value) for key_, value in out.items()}
    data["steps"] = ("member", np.concatenate(steps))
    if return_angles:
        data["angles"] = (("member", "t", "token"), np.concatenate(angles))
    return describe(xr.Dataset(data, coords={"member": np.arange(runs), "t": np.asarray(ts)},
                      attrs=dict(n=n, beta=beta, runs=runs, rtol=rtol, atol=atol, delta=delta, gap=gap,
                                 evaluator=evaluator, ensemble=ensemble, model="causal SA on S^1 (CSA-2d)",
                                 paper="Karagodin, Polyanskiy, Rigollet 2024, Figs 2-3")))


def fig3_statistics(thetas: Float[ArrayLike, "runs T n"], beta: float, *, delta: float | None = None,
                    gap: float = renyi.DEFAULT_CAUSAL_GAP) -> dict[str, Array]:
    """The Fig. 3 statistics of angles ``thetas`` (runs, T, n) saved at T times, the first t = 0.

    Rényi / strong Rényi centres of the t = 0 angles (delta = 4 beta^{-1/2} by default), the
    consumed fractions of both definitions of [`jaxattn.analysis.renyi.consumed_fraction`][jaxattn.analysis.consumed_fraction]
    (``*_ball``: within beta^{-1/2} of a centre; ``*_cluster``: in a centre's cluster, circular
    gaps > ``gap``), per run and time (runs, T), cluster counts (runs, T) and the numbers of
    centres (runs,). Shared by [`causal_statistics`][jaxattn.studies.causal.causal_statistics] and the NumPy baseline of
    ``benchmarks/causal_statistics.py`` (the same statistic of either integrator's angles).
    """
    thetas = jnp.asarray(thetas)
    delta = 4.0 / math.sqrt(beta) if delta is None else delta  # renyi.default_delta, as a Python float
    radius = 1.0 / math.sqrt(beta)
    r = renyi.renyi_centres(thetas[:, 0], delta)
    s = renyi.strong_renyi_centres(thetas[:, 0], delta)
    return dict(
        renyi_ball=renyi.consumed_fraction(thetas, r, radius=radius),
        strong_ball=renyi.consumed_fraction(thetas, s, radius=radius),
        renyi_cluster=renyi.consumed_fraction(thetas, r, definition="cluster", gap=gap),
        strong_cluster=renyi.consumed_fraction(thetas, s, definition="cluster", gap=gap),
        clusters=renyi.cluster_count_series(thetas, gap=gap),
        num_renyi=jnp.sum(r, axis=-1),
        num_strong=jnp.sum(s, axis=-1),
    )


#: compiled once per (shape, beta, delta, gap): a jit built inside causal_statistics recompiled on every
#: call, 0.13 CPU-s per run at 8 runs (more than the Bosh3 solve itself, issue 12)
_fig3_statistics_jit = jax.jit(fig3_statistics, static_argnames=("beta", "delta", "gap"))


def summarise(values: Real[ArrayLike, "runs T"] | xr.DataArray, quantiles=(0.1, 0.9)) -> dict:
    """Mean and quantiles over runs (axis 0) of a (runs, T) statistic."""
    values = np.asarray(values, dtype=float)
    return {"mean": values.mean(axis=0), **{f"q{int(100 * q)}": np.quantile(values, q, axis=0) for q in quantiles}}


def numpy_euler_causal_circle(theta0: np.ndarray, beta: float, ts, *, h: float = 0.05, causal: bool = True) -> np.ndarray:
    """The author's scheme in NumPy: X <- normalize(X + h W X), W = rownorm(tril(exp(beta(X X^T - 1)))).

    ``theta0``: (runs, n) angles. Returns angles at the save times ``ts`` (multiples of h), shape
    (runs, T, n). Explicit Euler on the unprojected attention output then renormalisation agrees
    with projected Euler to first order; the e^{-beta} shift is valid for Q = K = I.
    ``causal=False`` drops the mask: the same scheme for (SA) on the circle (Geshkovski et al.
    2023, Fig. 3), the baseline of the circle metastability sweep.
    """
    theta0 = np.atleast_2d(np.asarray(theta0, dtype=float))
    ts = np.asarray(ts, dtype=float)
    save_steps = np.rint(ts / h).astype(int)
    if np.any(np.abs(save_steps * h - ts) > 1e-9) or np.any(np.diff(save_steps) < 0):
        raise ValueError("save times must be non-decreasing multiples of h")
    X = np.stack([np.cos(theta0), np.sin(theta0)], axis=-1)  # (runs, n, 2)
    n = X.shape[1]
    mask = np.tril(np.ones((n, n), dtype=bool)) if causal else np.ones((n, n), dtype=bool)
    out = np.empty((X.shape[0], len(ts), n))
    step = 0
    for i, target in enumerate(save_steps):
        while step < target:
            W = np.exp(beta * (X @ X.transpose(0, 2, 1) - 1.0))
            W *= mask
            W /= W.sum(axis=-1, keepdims=True)
            X = X + h * (W @ X)
            X /= np.linalg.norm(X, axis=-1, keepdims=True)
            step += 1
        out[:, i] = np.arctan2(X[..., 1], X[..., 0])
    return out


def conjecture1_runs(key, runs: int, *, beta: float = 1.0, n: int = 32, t1: float = 1000.0,
                     random_qk: bool = True, rtol: float = 1e-8, atol: float = 1e-10) -> dict:
    """Conjecture 1 exploration: V = diag(3, 2, 1); Q = K = I or Q, K with i.i.d. N(0, 1) entries.

    Returns per run ``off_axis`` = max_k (1 - |<x_k(t1), e1>|) (0 when every token is at +-e1),
    and the Q, K used. Conjecture 1 predicts off_axis -> 0; with random non-symmetric Q, K a
    reference exploration found stable equilibria off +-e1 in 4 of 10 runs (``docs/paper_003.md``, erratum 7).
    """
    V = jnp.diag(jnp.asarray([3.0, 2.0, 1.0]))
    off, qs, ks = [], [], []
    for k in jax.random.split(key, runs):
        k1, k2, k3 = jax.random.split(k, 3)
        x0 = initial.uniform_sphere(k1, n, 3)
        if random_qk:
            Q, K = jax.random.normal(k2, (3, 3)), jax.random.normal(k3, (3, 3))
        else:
            Q = K = jnp.eye(3)
        traj = simulate(SelfAttention(beta, Q, K, V, causal=True), x0, t1, ts=2, rtol=rtol, atol=atol,
                        max_steps=10**6)
        xT = traj.final
        off.append(float(jnp.max(1.0 - jnp.abs(xT[:, 0]))))
        qs.append(np.asarray(Q))
        ks.append(np.asarray(K))
    return {"off_axis": np.asarray(off), "Q": np.stack(qs), "K": np.stack(ks)}
