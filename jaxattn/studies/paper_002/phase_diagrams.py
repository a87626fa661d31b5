"""Phase diagrams of Geshkovski, Letrouit, Polyanskiy, Rigollet (2023), Figs 2-4: the probability
P(<x_i(t), x_j(t)> >= 1 - delta) over (beta, t), with the random (Q, K, V) ensembles of Fig 4 and the
overlay curve gamma_beta(t) = 1 - delta of eq. (4.11).

Figs 2-4 plot the fraction of ordered pairs i != j with <x_i, x_j> >= 1 - delta, delta = 1e-2 (the
caption's value; the authors' code used 0.999), averaged over realisations; the overlay curve is
rebuilt for the figure's n and delta (``docs/errata.md``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ... import initial
from ...analysis import (
    clustered_pair_fraction,
    clustered_pair_fraction_of_gram,
    gamma_crossing_time,
)
from ..._validate import check_save_times, crossing_delta_rule, enforce, pair_delta_rule
from ...fields import FORMULATIONS as LIBRARY_FORMULATIONS
from ...fields import GramSelfAttention, SelfAttention, gram_formulation, prefers_gram
from ...io import atomic_write_netcdf, describe
from ..sweep import run_sweep, solve_ensemble

__all__ = ["DEFAULT_PRECISION", "DEFAULT_RTOL", "DEFAULT_SOLVER", "FORMULATIONS", "KQ_ENSEMBLES", "PHASE_SOLVERS",
           "VALUE_ENSEMBLES", "phase_diagram", "plot_phase_diagram", "random_matrices", "uses_gram"]

KQ_ENSEMBLES = ("identity", "ginibre", "goe")
VALUE_ENSEMBLES = ("identity", "wishart", "qk", "minus_qk", "ginibre")


def random_matrices(key, d: int, kq: str = "identity", value: str = "identity"):
    """(Q, K, V) for the random ensembles of paper 002 Fig. 4 (as in the authors' code).

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


#: the solvers ``phase_diagram(solver=...)`` accepts (explicit Runge-Kutta pairs of diffrax)
PHASE_SOLVERS = {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5, "bosh3": diffrax.Bosh3, "heun": diffrax.Heun}

#: defaults of `phase_diagram` and of ``jaxattn sweep phase-diagram``, chosen from the
#: work-precision study (``python -m benchmarks.phase_diagram --work-precision``; the plot and
#: table are in benchmarks/README.md, "Phase diagram: work-precision"): on the Gram path the
#: cheapest float64 setting with max |P error| <= 1e-3 (3.5e-4 at 10 betas x 64 draws; rtol 1e-4
#: gives 1.9e-3, Dopri5 is no cheaper, Bosh3 and Heun need 1e-6 / 1e-5 and 1.7x / 4.5x the time)
DEFAULT_SOLVER = "tsit5"
DEFAULT_RTOL = 1e-5
DEFAULT_PRECISION = "float64"


#: how `phase_diagram` integrates a point: "auto" (Gram space where `uses_gram`),
#: "gram" (Gram space; needs Q = K = V = I) or "tokens" (the (n, d) tokens, always valid)
FORMULATIONS = LIBRARY_FORMULATIONS


def uses_gram(kq: str, value: str, d: int, n: int, formulation: str = "auto") -> bool:
    """Whether a phase-diagram point is integrated in Gram space ([`jaxattn.fields.GramSelfAttention`][jaxattn.GramSelfAttention]).

    ``"auto"``: when Q = K = V = I (``kq == value == "identity"``, where the dynamics close on
    G = X X^T) and d > n (then the n x n state and the O(n^3) right-hand side are smaller than the
    (n, d) tokens and the O(n^2 d) one: at n = 32, d = 128 one sweep point costs 1/3 - 1/4 the CPU
    time, benchmarks/README.md "Phase diagram: work-precision")."""
    return prefers_gram(kq == "identity" and value == "identity", n, d, formulation)  # the library's rule


class _PairFraction(eqx.Module):
    """observe(t, xs) -> {"pair_fraction": P per member}, from tokens (batch, n, d) or from Gram
    matrices (batch, n, n) when ``gram``; a module, so equal deltas reuse one compiled solve."""

    delta: float = eqx.field(static=True)
    gram: bool = eqx.field(static=True, default=False)

    def __call__(self, t, xs):
        if self.gram:
            return {"pair_fraction": clustered_pair_fraction_of_gram(xs, self.delta)}
        return {"pair_fraction": clustered_pair_fraction(xs, self.delta)}


def _phase_point(seed: int, beta: float, d: int, kq: str, value: str, *, n: int, batch: int,
                 delta: float, ts: np.ndarray, rtol: float, atol: float, solver: str = DEFAULT_SOLVER,
                 precision: str = DEFAULT_PRECISION, formulation: str = "auto") -> xr.Dataset:
    key = jax.random.PRNGKey(seed)
    kx, km = jax.random.split(key)
    x0 = initial.uniform_sphere(kx, n, d, batch=batch).astype(precision)
    if kq == "identity" and value == "identity":
        field = SelfAttention(beta)
    else:
        Q, K, V = random_matrices(km, d, kq, value)
        field = SelfAttention(beta, Q, K, V)
    # Gram space where the library finds it exact and cheaper: the same draws, as G0 = X0 X0^T
    field, x0 = gram_formulation(field, x0, formulation)
    gram = isinstance(field, GramSelfAttention)

    observe = _PairFraction(delta, gram)
    # observables inside the solve (no (batch, T, n, d) states are kept); tolerances as arrays,
    # so one compilation serves every rtol
    obs = solve_ensemble(field, x0, float(ts[-1]), ts=jnp.asarray(ts, dtype=precision), observe=observe,
                         in_solve=True, solver=PHASE_SOLVERS[solver](),
                         rtol=jnp.asarray(rtol, dtype=precision), atol=jnp.asarray(atol, dtype=precision))
    return xr.Dataset(
        {"pair_fraction": (("member", "t"), obs["pair_fraction"]),
         "num_steps": ((), int(obs["num_steps"]))},
        coords={"t": ts},
    )


def phase_diagram(
    betas: Sequence[float] | np.ndarray,
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
    rtol: float = DEFAULT_RTOL,
    atol: float | None = None,
    solver: str = DEFAULT_SOLVER,
    precision: str = DEFAULT_PRECISION,
    formulation: str = "auto",
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

    Solver: ``solver`` in `PHASE_SOLVERS` at ``rtol`` (``atol`` defaults to ``rtol``); the
    fraction is evaluated inside the solve, so memory is O(batch x T) per point. The defaults
    (Tsit5, rtol = 1e-5, float64) come from the work-precision study in benchmarks/README.md
    ("Phase diagram: work-precision"). ``precision="float32"`` is an explicit opt-in (the
    fraction at delta = 1e-2 tolerates it; its error against float64 is a curve of that study).

    Formulation: with Q = K = V = I and d > n (Fig 2) a point is integrated in Gram space,
    G = X X^T with [`jaxattn.fields.GramSelfAttention`][jaxattn.GramSelfAttention] (exact: the dynamics close on G, and P
    depends on G only), from the Gram matrices of the same draws; other points integrate the tokens.
    ``formulation`` ("auto", "gram", "tokens"; `uses_gram`) overrides the choice; the path
    taken is the dataset attribute ``formulation``.
    """
    if solver not in PHASE_SOLVERS:
        raise ValueError(f"solver must be one of {sorted(PHASE_SOLVERS)}, got {solver!r}")
    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation must be one of {FORMULATIONS}, got {formulation!r}")
    if precision not in ("float64", "float32"):
        raise ValueError(f"precision must be 'float64' or 'float32' (an explicit opt-in), got {precision!r}")
    atol = rtol if atol is None else atol
    ts = np.asarray(check_save_times(ts, t0=0.0, strict=True, min_count=2))
    enforce([pair_delta_rule(delta), crossing_delta_rule(delta)], None)  # the fraction P, and the curve t*
    as_list = lambda v: list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v]  # noqa: E731
    grid = {"beta": [float(b) for b in betas], "d": [int(x) for x in as_list(d)],
            "kq": as_list(kq), "value": as_list(value)}
    paths = {uses_gram(k, v, dd, n, formulation) for dd in grid["d"] for k in grid["kq"] for v in grid["value"]}
    path = ("gram" if paths == {True} else "tokens" if paths == {False} else
            "gram where kq = value = identity and d > n, tokens elsewhere")
    fn = partial(_phase_point, n=n, batch=batch, delta=delta, ts=ts, rtol=rtol, atol=atol, solver=solver,
                 precision=precision, formulation=formulation)
    fn.__qualname__ = "phase_diagram_point"  # type: ignore[attr-defined]
    fn.__module__ = __package__  # type: ignore[attr-defined]  (the public name: sweeps stay resumable)
    attrs = dict(n=n, delta=delta, batch=batch, rtol=rtol, atol=atol, model="SA",
                 ts=ts.tolist(), init="uniform on S^{d-1}", precision=precision, paper="002 Figs 2-4",
                 formulation=path,
                 solver=f"{solver} + " + {"gram": "diag(G) = 1 retraction", "tokens": "sphere retraction"}.get(
                     path, "sphere / diag(G) = 1 retraction"))
    ds = run_sweep(fn, grid, directory=directory, seeds=seeds, name="phase_diagram", attrs=attrs,
                   progress=progress)
    ds["probability"] = ds.pair_fraction.mean(("seed", "member"))
    ds["t_star"] = ("beta", [float(gamma_crossing_time(b, n, delta)) for b in ds.beta.values])
    ds = describe(ds)  # CF attributes in memory too; the file holds what the figure shows
    if jax.process_index() == 0:
        atomic_write_netcdf(ds, Path(directory) / "phase_diagram.nc")
    return ds


def plot_phase_diagram(ds: xr.Dataset, ax=None, *, curve: bool = True, title: str | None = None, **select):
    """Paper 002 Figs 2-4: ``probability`` over (t, beta) (colormap RdBu_r as the paper) with t*(beta).

    Each cell is centred on its grid point (beta_k, t_l) and bounded by the midpoints to its
    neighbours; the outer cells end at the first and last grid values, so the image covers exactly
    [beta_0, beta_K] x [t_0, t_L] and nothing is drawn where no beta or t was sampled. The dashed
    curve is gamma_beta(t) = 1 - delta (eq. (4.11)) for the dataset's n and delta. ``select`` picks
    ``d``, ``kq``, ``value`` (default: the first of each); the title states n, d and delta (and the
    random (Q, K, V) ensembles of Fig 4 when not the identity) unless ``title`` is given.
    """
    from ...plot import cell_edges, pyplot

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
