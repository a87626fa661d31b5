r"""Drivers for the experiments of paper 003 (causal attention): Figs 1-3 and Conjecture 1.

* [`fig1_runs`][jaxattn.studies.paper_003.fig1_runs] — d = 3, n = 32, beta = 9, Q = K = I, the five V of Fig. 1, T = 5000 with
  adaptive steps (sphere retraction keeps max | |x| - 1 | at round-off).
* [`causal_statistics`][jaxattn.studies.paper_003.causal_statistics] — the Fig. 2/3 statistics: many runs of (CSA-2d) (n = 200, beta = 64,
  Q = K = V = I) integrated ``chunk`` runs per compiled call, each with its own adaptive steps
  (``ensemble="map"``), sparse save times,
  Rényi / strong Rényi centres at t = 0 (delta = 4 beta^{-1/2}), consumed fractions (both
  definitions of [`jaxattn.analysis.renyi.consumed_fraction`][jaxattn.analysis.consumed_fraction]) and cluster counts over time.
* [`numpy_euler_causal_circle`][jaxattn.studies.paper_003.numpy_euler_causal_circle] — the first author's scheme on angles (explicit Euler on the
  unprojected attention output, then renormalisation, step 0.05, as in the authors' notebook:
  [`jaxattn.studies.euler.euler_renormalise`][jaxattn.studies.euler.euler_renormalise]), the baseline of ``benchmarks/causal_statistics.py``.
* [`conjecture1_runs`][jaxattn.studies.paper_003.conjecture1_runs] — V = diag(3, 2, 1) with Q = K = I or random non-symmetric Q, K.

Why float64: inter-cluster drift speeds are 1e-4..1e-8, so in float32 the increment h v of a
step falls below one ulp of theta ~ 1 (1.2e-7) and the meta-stable drift freezes.
"""

from __future__ import annotations

import math
from typing import ClassVar

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
from ..sweeps import AbstractPoint, run_sweep
from .euler import euler_renormalise

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
#: Fig. 3 save times (the figure's axis, cut at the final time)
FIG3_TIMES = (0, 1, 2, 5, 10, 20, 50, 75, 100, 150, 200, 300, 500)
#: the per-run statistics of Fig. 3 (`causal_statistics`) that `fig3_summary` summarises
FIG3_STATISTICS = ("renyi_ball", "strong_ball", "renyi_cluster", "strong_cluster", "clusters")


def norm_drift(xs) -> float:
    """max_k | |x_k| - 1 | over everything in xs (..., d).

    **Arguments:**

    - `xs`: points, (..., d).

    **Returns:**

    The drift, a float.
    """
    return float(jnp.max(jnp.abs(jnp.linalg.norm(xs, axis=-1) - 1.0)))


def fig1_runs(key, *, n: int = 32, beta: float = 9.0, t1: float = 5000.0, num_saves: int = 501,
              rtol: float = 1e-8, atol: float = 1e-10, panels=tuple(FIG1_VALUES)) -> dict:
    """Fig. 1: one CSA run per panel from the same uniform initial tokens; returns {panel: Trajectory}.

    **Arguments:**

    - `key`: a JAX PRNG key (the uniform initial tokens).
    - `n`: the number of tokens; default 32.
    - `beta`: the inverse temperature; default 9.
    - `t1`: the final time; default 5000.
    - `num_saves`: the number of save times; default 501.
    - `rtol`: relative tolerance; default 1e-8.
    - `atol`: absolute tolerance; default 1e-10.
    - `panels`: the panels, keys of `FIG1_VALUES`; default all.

    **Returns:**

    A dict panel -> [`Trajectory`][jaxattn.Trajectory].
    """
    x0 = initial.uniform_sphere(key, n, 3)
    ts = jnp.linspace(0.0, t1, num_saves)
    out = {}
    for p in panels:
        field = SelfAttention(beta, V=jnp.diag(jnp.asarray(FIG1_VALUES[p])), causal=True)
        out[p] = simulate(field, x0, t1, ts=ts, rtol=rtol, atol=atol, max_steps=10**6)
    return out


def causal_statistics(key, runs: int, *, n: int = 200, beta: float = 64.0, ts=FIG3_TIMES,
                      chunk: int = 250, evaluator: str = "dense", rtol: float = 1e-4, atol: float = 1e-4,
                      ensemble: str = "map", solver=None, theta0: Float[ArrayLike, "runs n"] | None = None,
                      delta: float | None = None, gap: float = renyi.DEFAULT_CAUSAL_GAP,
                      return_angles: bool = False, progress: bool = False, precision: str = "float64",
                      directory=None) -> xr.Dataset:
    """Fig. 2-3 statistics over ``runs`` independent runs (uniform i.i.d. angles).

    Runs are solved ``chunk`` at a time with [`jaxattn.simulate`][jaxattn.simulate]. Defaults from the
    work-precision study (``python -m benchmarks.causal_statistics --work-precision``, 24 runs; its
    costs are in benchmarks/README.md, "Causal Fig. 3 statistic"): **Bosh3, rtol = atol = 1e-4** — error
    of the mean consumed fractions 8e-4 against a Tsit5 rtol 1e-10 reference (the authors' Euler
    h = 0.05: 1.7e-2), the cheapest setting of that accuracy. Steps do not drop below ~180 as rtol loosens: inside a cluster dtheta_k/dt contracts at rate ~1, so the
    explicit solvers are stability-limited (dt <~ 2.5 for Bosh3 over t in [0, 500]) and cheaper
    stages per step win (Bosh3 3, Tsit5 6). ``ensemble="map"`` gives every run its own adaptive
    steps (a shared step must resolve every member's merge events; measured in the same study).
    ``evaluator="dense"`` is the faster field at n = 200 (the block lower-triangular kernel of
    `jaxattn.fields.circle.causal_circle_velocity`; the Fourier path's n M blocks cost more).

    **Arguments:**

    - `key`: a JAX PRNG key (the uniform initial angles of every chunk).
    - `runs`: the number of runs, int >= 1.
    - `n`: the number of tokens; default 200.
    - `beta`: the inverse temperature; default 64.
    - `ts`: the save times, the first 0; default `FIG3_TIMES`.
    - `chunk`: runs per solve, int >= 1; default 250.
    - `evaluator`: the circle field's evaluator, "dense" (default) or "fourier".
    - `rtol`: relative tolerance; default 1e-4.
    - `atol`: absolute tolerance; default 1e-4.
    - `ensemble`: "map" (default), "vmap" or "batched" (see [`jaxattn.simulate`][jaxattn.simulate]).
    - `solver`: any diffrax solver; default None (Bosh3).
    - `theta0`: initial angles (runs, n) replacing the key's uniform draws (same draws for several
        integrators, as in the work-precision study); default None.
    - `delta`: the Rényi radius of the centres; default None (4 beta^{-1/2}).
    - `gap`: the circular gap that separates clusters; default ``renyi.DEFAULT_CAUSAL_GAP``.
    - `return_angles`: also return the angles (member, t, token); default False.
    - `progress`: show a tqdm bar over the chunks; default False.
    - `precision`: "float64" (default) or "float32".
    - `directory`: each chunk is a point of a resumable sweep ([`jaxattn.sweeps`][jaxattn.sweeps], what
        ``jaxattn causal fig3`` runs); the result is the same as without; default None.

    **Returns:**

    An ``xarray.Dataset`` with coordinates ``member`` (the run) and ``t`` (the save times), every variable
    with CF attributes ([`jaxattn.io.cf`][jaxattn.io.cf]): per run and time (member, t): ``renyi_ball``,
    ``strong_ball``, ``renyi_cluster``, ``strong_cluster`` (consumed fractions) and ``clusters``; per run:
    ``num_renyi``, ``num_strong``, ``steps`` (solver steps; for ``ensemble="batched"`` the chunk's shared
    count) and optionally ``angles`` (member, t, token). Summaries: [`summarise`][jaxattn.studies.paper_003.summarise],
    [`fig3_summary`][jaxattn.studies.paper_003.fig3_summary].

    **Raises:**

    - `ValueError`: ``runs`` or ``chunk`` < 1, or ``theta0`` not of shape (runs, n).
    """
    if runs < 1 or chunk < 1:
        raise ValueError("runs and chunk must be positive")
    if theta0 is not None:
        theta0 = np.asarray(theta0, dtype=precision)
        if theta0.shape != (runs, n):
            raise ValueError(f"theta0 must hold the initial angles of every run, shape (runs, n) = ({runs}, {n}), "
                             f"got {theta0.shape}")
    ts = tuple(float(t) for t in np.asarray(ts, dtype=float))
    delta = float(renyi.default_delta(beta)) if delta is None else float(delta)
    point = CausalChunkPoint(key=key, runs=runs, chunk=chunk, n=n, beta=float(beta), ts=ts,
        evaluator=evaluator, rtol=rtol, atol=atol, ensemble=ensemble, solver=solver, theta0=theta0, delta=delta,
        gap=gap, return_angles=return_angles, precision=precision)
    chunks = list(range(-(-runs // chunk)))
    attrs = dict(n=n, beta=beta, runs=runs, rtol=rtol, atol=atol, delta=delta, gap=gap, evaluator=evaluator,
                 ensemble=ensemble, model="causal SA on S^1 (CSA-2d)",
                 paper="Karagodin, Polyanskiy, Rigollet 2024, Figs 2-3")
    if directory is None:
        parts = [point(chunk=i) for i in tqdm(chunks, desc="causal statistics (chunks)", unit="chunk",
                                              disable=not progress)]
        ds = xr.concat(parts, dim="member")
    else:  # one sweep point per chunk; the last chunk may be shorter (padded with NaN in the merge)
        merged = run_sweep(point, {"chunk": chunks}, seeds=None, directory=directory, name="causal_statistics",
                           attrs={k: v for k, v in attrs.items() if not hasattr(v, "shape")}, progress=progress)
        flat = merged.stack(run=("chunk", "member"))
        keep = flat["chunk"].values * chunk + flat["member"].values < runs
        ds = flat.isel(run=keep).drop_vars(["run", "chunk", "member"]).rename(run="member")
        ds = ds.transpose("member", ...)
    for name in ("clusters", "num_renyi", "num_strong", "steps"):  # counts (the merge's NaN padding made them float)
        ds[name] = ds[name].astype(np.int64)
    ds = ds.assign_coords(member=np.arange(runs), t=np.asarray(ts))
    ds.attrs = attrs
    return describe(ds)


class CausalChunkPoint(AbstractPoint):
    """Chunk ``chunk`` of [`causal_statistics`][jaxattn.studies.paper_003.causal_statistics] (runs ``chunk * size ...``): one sweep point.

    Its runs are the uniform draws of ``jax.random.split(key, number of chunks)[chunk]`` (or the rows
    of ``theta0``), so a resumed computation equals an uninterrupted one, chunk by chunk.

    **Arguments:**

    - `key`: the PRNG key of the whole computation.
    - `runs`: the total number of runs.
    - `chunk`: runs per chunk.
    - `n`: the number of tokens.
    - `beta`: the inverse temperature.
    - `ts`: the save times, a tuple.
    - `evaluator`: "dense" or "fourier".
    - `rtol`: relative tolerance.
    - `atol`: absolute tolerance.
    - `ensemble`: "map", "vmap" or "batched".
    - `solver`: a diffrax solver, or None.
    - `theta0`: initial angles (runs, n), or None.
    - `delta`: the Rényi radius.
    - `gap`: the circular gap that separates clusters.
    - `return_angles`: also return the angles.
    - `precision`: "float64" (default) or "float32".
    """

    identity_name: ClassVar[str] = "jaxattn.studies.paper_003.causal_statistics"
    identity_version: ClassVar[int] = 1
    key: object
    runs: int
    chunk: int
    n: int
    beta: float
    ts: tuple[float, ...]
    evaluator: str
    rtol: object
    atol: object
    ensemble: str
    solver: object
    theta0: object
    delta: float
    gap: float
    return_angles: bool
    precision: str = "float64"

    def __call__(self, chunk: int) -> xr.Dataset:
        """The statistics of one chunk of runs.

        **Arguments:**

        - `chunk`: the index of the chunk.

        **Returns:**

        The ``xarray.Dataset`` of [`causal_statistics`][jaxattn.studies.paper_003.causal_statistics] for the chunk's runs.
        """
        keys = jax.random.split(self.key, -(-self.runs // self.chunk))
        start = chunk * self.chunk
        b = min(self.chunk, self.runs - start)
        x0 = (initial.uniform_circle(keys[chunk], self.n, batch=b) if self.theta0 is None else jnp.asarray(
            self.theta0[start:start + b])).astype(self.precision)
        ts = jnp.asarray(self.ts, dtype=self.precision)
        field = CircleSelfAttention(self.beta, causal=True, evaluator=self.evaluator)
        traj = simulate(field, x0, float(ts[-1]), ts=ts, solver=diffrax.Bosh3() if self.solver is None else self.solver,
                        rtol=jnp.asarray(self.rtol, self.precision), atol=jnp.asarray(self.atol, self.precision),
                        max_steps=10**6, ensemble=self.ensemble)
        stats = _fig3_statistics_jit(traj.xs.astype(jnp.float64), self.beta, delta=self.delta, gap=self.gap)
        data = {name: (("member", "t")[:np.ndim(value)], np.asarray(value)) for name, value in stats.items()}
        data["steps"] = ("member", np.broadcast_to(np.asarray(traj.stats["num_steps"]), (b,)))
        if self.return_angles:
            data["angles"] = (("member", "t", "token"), np.asarray(traj.xs))
        return xr.Dataset(data, coords={"member": np.arange(b), "t": np.asarray(self.ts)})


def fig3_statistics(thetas: Float[ArrayLike, "runs T n"], beta: float, *, delta: float | None = None,
                    gap: float = renyi.DEFAULT_CAUSAL_GAP) -> dict[str, Array]:
    """The Fig. 3 statistics of angles ``thetas`` (runs, T, n) saved at T times, the first t = 0.

    Rényi / strong Rényi centres of the t = 0 angles (delta = 4 beta^{-1/2} by default), the
    consumed fractions of both definitions of [`jaxattn.analysis.renyi.consumed_fraction`][jaxattn.analysis.consumed_fraction]
    (``*_ball``: within beta^{-1/2} of a centre; ``*_cluster``: in a centre's cluster, circular
    gaps > ``gap``), per run and time (runs, T), cluster counts (runs, T) and the numbers of
    centres (runs,). Shared by [`causal_statistics`][jaxattn.studies.paper_003.causal_statistics] and the NumPy baseline of
    ``benchmarks/causal_statistics.py`` (the same statistic of either integrator's angles).

    **Arguments:**

    - `thetas`: angles, float (runs, T, n), the first save at t = 0.
    - `beta`: the inverse temperature.
    - `delta`: the Rényi radius; default None (4 beta^{-1/2}).
    - `gap`: the circular gap that separates clusters; default ``renyi.DEFAULT_CAUSAL_GAP``.

    **Returns:**

    A dict of arrays: the four consumed fractions and ``clusters`` (runs, T), ``num_renyi`` and ``num_strong`` (runs,).
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
#: call, 0.13 CPU-s per run at 8 runs (more than the Bosh3 solve itself)
_fig3_statistics_jit = jax.jit(fig3_statistics, static_argnames=("beta", "delta", "gap"))


def summarise(values: Real[ArrayLike, "runs T"] | xr.DataArray, quantiles=(0.1, 0.9)) -> dict:
    """Mean and quantiles over runs (axis 0) of a (runs, T) statistic: ``{"mean", "q10", "q90"}`` by default.

    **Arguments:**

    - `values`: a statistic, (runs, T).
    - `quantiles`: the quantiles; default (0.1, 0.9).

    **Returns:**

    A dict: ``"mean"`` and one key per quantile (``"q10"`` for 0.1), arrays (T,).
    """
    values = np.asarray(values, dtype=float)
    return {"mean": values.mean(axis=0), **{_quantile_key(q): np.quantile(values, q, axis=0) for q in quantiles}}


def fig3_summary(stats: xr.Dataset, quantiles: tuple[float, ...] = (0.1, 0.9)) -> xr.Dataset:
    """Fig. 3: per time the mean and the ``quantiles`` over runs of each statistic of `FIG3_STATISTICS`.

    ``stats`` is [`causal_statistics`][jaxattn.studies.paper_003.causal_statistics]' dataset. Returns ``<statistic>_mean`` (t) and
    ``<statistic>_quantile`` (quantile, t), the per-run ``num_renyi``, ``num_strong`` and ``steps``
    (member), and ``stats``' attributes ([`summarise`][jaxattn.studies.paper_003.summarise] computes each); the
    variables' attributes come from the catalogue [`jaxattn.io.VARIABLES`][jaxattn.io.VARIABLES].

    **Arguments:**

    - `stats`: the dataset of [`causal_statistics`][jaxattn.studies.paper_003.causal_statistics].
    - `quantiles`: the quantiles; default (0.1, 0.9).

    **Returns:**

    An ``xarray.Dataset`` (above).
    """
    data = {}
    for name in FIG3_STATISTICS:
        s = summarise(stats[name], quantiles)
        data[f"{name}_mean"] = ("t", s["mean"])
        data[f"{name}_quantile"] = (("quantile", "t"), np.stack([s[_quantile_key(q)] for q in quantiles]))
    for name in ("num_renyi", "num_strong", "steps"):
        data[name] = stats[name]
    return describe(xr.Dataset(data, coords={"quantile": list(quantiles), "t": stats.t.values,
                                             "member": stats.member.values}, attrs=dict(stats.attrs)))


def _quantile_key(q: float) -> str:
    return f"q{int(round(100 * q))}"


def numpy_euler_causal_circle(theta0: Float[ArrayLike, "runs n"], beta: float, ts, *, h: float = 0.05,
                              causal: bool = True) -> np.ndarray:
    """The first author's scheme on angles: [`jaxattn.studies.euler.euler_renormalise`][jaxattn.studies.euler.euler_renormalise] with Q = K = V = I.

    X <- normalize(X + h W X), W = rownorm(tril(exp(beta (X X^T - 1)))), X = (cos theta, sin theta),
    step h = 0.05 as in the authors' notebook. ``theta0``: (runs, n) angles. Returns the angles at the
    save times ``ts`` (multiples of h), shape (runs, T, n). ``causal=False`` drops the mask: the same
    scheme for (SA) on the circle (Geshkovski et al. 2023, Fig. 3), the baseline of the circle
    metastability sweep.

    **Arguments:**

    - `theta0`: initial angles, (runs, n).
    - `beta`: the inverse temperature.
    - `ts`: the save times, non-decreasing multiples of h.
    - `h`: the step; default 0.05.
    - `causal`: the causal mask; default True.

    **Returns:**

    The angles, a NumPy array (runs, T, n).

    **Raises:**

    - `ValueError`: save times that are not non-decreasing multiples of h.
    """
    theta0 = np.atleast_2d(np.asarray(theta0, dtype=float))
    ts = np.asarray(ts, dtype=float)
    save_steps = np.rint(ts / h).astype(int)
    if np.any(np.abs(save_steps * h - ts) > 1e-9) or np.any(np.diff(save_steps) < 0):
        raise ValueError("save times must be non-decreasing multiples of h")
    x = euler_renormalise(beta, np.stack([np.cos(theta0), np.sin(theta0)], axis=-1), h, save_steps, causal=causal)
    return np.moveaxis(np.arctan2(x[..., 1], x[..., 0]), 0, 1)


def conjecture1_runs(key, runs: int, *, beta: float = 1.0, n: int = 32, t1: float = 1000.0,
                     random_qk: bool = True, rtol: float = 1e-8, atol: float = 1e-10) -> dict:
    """Conjecture 1 exploration: V = diag(3, 2, 1); Q = K = I or Q, K with i.i.d. N(0, 1) entries.

    Returns per run ``off_axis`` = max_k (1 - |⟨x_k(t1), e1⟩|) (0 when every token is at +-e1),
    and the Q, K used. Conjecture 1 predicts off_axis -> 0; with random non-symmetric Q, K a
    reference exploration found stable equilibria off +-e1 in 4 of 10 runs (``docs/paper_003.md``, erratum 7).

    **Arguments:**

    - `key`: a JAX PRNG key.
    - `runs`: the number of runs.
    - `beta`: the inverse temperature; default 1.
    - `n`: the number of tokens; default 32.
    - `t1`: the final time; default 1000.
    - `random_qk`: Q, K with i.i.d. N(0, 1) entries (True, default) or Q = K = I.
    - `rtol`: relative tolerance; default 1e-8.
    - `atol`: absolute tolerance; default 1e-10.

    **Returns:**

    A dict with ``off_axis`` (runs,), ``Q`` and ``K`` (runs, 3, 3).
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
