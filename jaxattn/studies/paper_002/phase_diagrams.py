"""Phase diagrams of Geshkovski, Letrouit, Polyanskiy, Rigollet (2023), Figs 2-4: the probability
P(⟨x_i(t), x_j(t)⟩ >= 1 - delta) over (beta, t), with the random (Q, K, V) ensembles of Fig 4 and the
overlay curve gamma_beta(t) = 1 - delta of eq. (4.11).

Figs 2-4 plot the fraction of ordered pairs i != j with ⟨x_i, x_j⟩ >= 1 - delta, delta = 1e-2 (the
caption's value; the authors' code used 0.999), averaged over realisations; the overlay curve is
rebuilt for the figure's n and delta (``docs/errata.md``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

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
from ...fields import (
    NORMALISATIONS,
    AbstractNormalisedAttention,
    GramSelfAttention,
    MixLNAttention,
    RandomWeights,
    SelfAttention,
    directions,
    gram_formulation,
    polar,
    prefers_gram,
)
from ...fields import random_attention_matrices
from ...fields.random_weights import check_ensembles
from ...io import atomic_write_netcdf, describe
from ...solve import solve_ensemble
from ...sweeps import AbstractPoint, run_sweep

__all__ = ["DEFAULT_PRECISION", "DEFAULT_RTOL", "DEFAULT_SOLVER", "FORMULATIONS", "NORMS",
           "PHASE_SOLVERS", "CrossingTimePoint", "PhaseDiagramPoint", "crossing_times",
           "phase_diagram", "phase_field", "random_matrices", "uses_gram"]

#: the dynamics of a phase diagram (``jaxattn sweep phase-diagram --norm``): ``"sa"``, softmax (SA) on the
#: sphere (paper 002), or a normalisation scheme of `jaxattn.fields.normalised` on directions x radii
#: (``"post-ln"`` is (SA) on the directions with constant radii; `NORMALISATIONS` without the dash)
NORMS = ("sa", "post-ln", "pre-ln", "peri-ln", "mix-ln", "ngpt", "sqrt")


def random_matrices(key, d: int, kq: str = "identity", value: str = "identity"):
    """(Q, K, V) for the random ensembles of paper 002 Fig. 4 (as in the authors' code).

    The logits are beta ⟨Q x_i, K x_j⟩ = beta x_i^T B x_j with B = Q^T K:

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
    per (beta, seed) point (the code's ``noanneal=1``) and average over seeds. The draw is
    [`jaxattn.fields.random_attention_matrices`][jaxattn.fields.random_attention_matrices] (which also has the ``"gpt2"`` ensembles).

    **Arguments:**

    - `key`: a JAX PRNG key.
    - `d`: the token dimension.
    - `kq`: the ensemble of B = Q^T K: "identity" (default), "ginibre" or "goe".
    - `value`: the ensemble of V: "identity" (default), "wishart", "qk", "minus_qk" or "ginibre".

    **Returns:**

    ``(Q, K, V)``, three float (d, d) arrays.
    """
    return random_attention_matrices(key, d, kq, value)  # the library's ensembles (also "gpt2")


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


def uses_gram(kq: str, value: str, d: int, n: int, formulation: str = "auto", *, norm: str = "sa", heads: int = 1,
              causal: bool = False, redraw_period: float | None = None) -> bool:
    """Whether a phase-diagram point is integrated in Gram space ([`jaxattn.fields.GramSelfAttention`][jaxattn.GramSelfAttention]).

    ``"auto"``: when Q = K = V = I (``kq == value == "identity"``, where the dynamics close on
    G = X X^T) and d > n (then the n x n state and the O(n^3) right-hand side are smaller than the
    (n, d) tokens and the O(n^2 d) one; measured in benchmarks/README.md, "Phase diagram: work-precision").
    Only (SA) with one head, no causal mask
    and fixed weights closes on G (``norm``, ``heads``, ``causal``, ``redraw_period``: `phase_field`).

    **Arguments:**

    - `kq`: the ensemble of B = Q^T K.
    - `value`: the ensemble of V.
    - `d`: the token dimension.
    - `n`: the number of tokens.
    - `formulation`: "auto" (default), "gram" or "tokens" (`FORMULATIONS`).
    - `norm`: the normalisation scheme; default "sa".
    - `heads`: the number of heads; default 1.
    - `causal`: a causal mask; default False.
    - `redraw_period`: the re-draw period of the weights; default None.

    **Returns:**

    A bool.
    """
    exact = (kq == "identity" and value == "identity" and norm == "sa" and heads == 1 and not causal
             and redraw_period is None)
    return prefers_gram(exact, n, d, formulation)  # the library's rule


class _PairFraction(eqx.Module):
    """observe(t, xs) -> {"pair_fraction": P per member}, from tokens (batch, n, d) or from Gram
    matrices (batch, n, n) when ``gram``; a module, so equal deltas reuse one compiled solve."""

    delta: float = eqx.field(static=True)
    gram: bool = eqx.field(static=True, default=False)
    polar: bool = eqx.field(static=True, default=False)  # states [theta_i, r_i]: the fraction of the directions

    def __call__(self, t, xs):
        if self.gram:
            return {"pair_fraction": clustered_pair_fraction_of_gram(xs, self.delta)}
        return {"pair_fraction": clustered_pair_fraction(directions(xs) if self.polar else xs, self.delta)}


def phase_field(key, beta: float, d: int, kq: str = "identity", value: str = "identity", *, norm: str = "sa",
                heads: int = 1, causal: bool = False, redraw_period: float | None = None):
    """The field of one phase-diagram point: its dynamics (``norm``) with weights drawn from ``key``.

    ``norm="sa"`` with one head and fixed weights is (SA) on S^{d-1} (Geshkovski et al. 2023, eq. (2.6)) with
    one draw (Q, K, V) of [`random_matrices`][jaxattn.studies.paper_002.phase_diagrams.random_matrices] (the identity for ``kq = value = "identity"``), as in
    paper 002 Figs 2-4. Otherwise the point integrates directions x radii under the scheme ``norm``
    (`NORMS`; ``"sa"`` is then Post-LN, the same (SA) on the directions) with ``heads`` random heads of
    [`jaxattn.fields.RandomWeights`][jaxattn.fields.RandomWeights] (averaged), re-drawn every ``redraw_period`` time units
    (None: drawn once), as in the simulator of Karagodin, Ge, Polyanskiy, Rigollet 2025. ``causal``: token i
    attends to j <= i.

    **Arguments:**

    - `key`: the PRNG key of the weights.
    - `beta`: inverse temperature (> 0).
    - `d`: the token dimension.
    - `kq`, `value`: the ensembles of B = Q^T K and V ([`jaxattn.fields.KQ_ENSEMBLES`][jaxattn.fields.KQ_ENSEMBLES], [`jaxattn.fields.VALUE_ENSEMBLES`][jaxattn.fields.VALUE_ENSEMBLES]).
    - `norm`: one of `NORMS`; default ``"sa"``.
    - `heads`: the number of heads (>= 1); default 1.
    - `causal`: a causal mask; default False.
    - `redraw_period`: re-draw the weights every this many time units (> 0); default None (drawn once).

    **Returns:**

    A [`SelfAttention`][jaxattn.SelfAttention] (state (n, d)) or an
    [`AbstractNormalisedAttention`][jaxattn.fields.AbstractNormalisedAttention] (state (n, d + 1), `jaxattn.fields.polar`).

    **Raises:**

    - `ValueError`: an unknown ``norm``, ``kq`` or ``value``; ``heads`` < 1; ``redraw_period`` <= 0.
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    check_ensembles(kq, value)
    if norm == "sa" and heads == 1 and redraw_period is None:
        if kq == "identity" and value == "identity":
            return SelfAttention(beta, causal=causal)
        return SelfAttention(beta, *random_matrices(key, d, kq, value), causal=causal)
    weights = RandomWeights(key, d, heads=heads, kq=kq, value=value)
    scheme = NORMALISATIONS[("post-ln" if norm == "sa" else norm).replace("-", "")]
    return scheme(beta, causal=causal, weights=weights, redraw_period=redraw_period)


def _phase_point(seed: int, beta: float, d: int, kq: str, value: str, *, n: int, batch: int,
                 delta: float, ts: np.ndarray, rtol: float, atol: float, solver: str = DEFAULT_SOLVER,
                 precision: str = DEFAULT_PRECISION, formulation: str = "auto", norm: str = "sa", heads: int = 1,
                 causal: bool = False, redraw_period: float | None = None) -> xr.Dataset:
    key = jax.random.PRNGKey(seed)
    kx, km = jax.random.split(key)
    x0 = initial.uniform_sphere(kx, n, d, batch=batch).astype(precision)
    field = phase_field(km, beta, d, kq, value, norm=norm, heads=heads, causal=causal, redraw_period=redraw_period)
    rtol, atol = jnp.asarray(rtol, dtype=precision), jnp.asarray(atol, dtype=precision)
    tolerances = dict(rtol=rtol, atol=atol)
    normalised = isinstance(field, AbstractNormalisedAttention)
    if normalised:  # directions x radii from unit radii; the field jumps at each redraw (and Mix-LN's switch)
        x0 = polar(x0)
        jumps = [float(t) for t in field.redraw_times(float(ts[-1]))]
        if isinstance(field, MixLNAttention):
            jumps.append(float(field.tau))
        if jumps:
            tolerances = dict(stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol, jump_ts=sorted(jumps)))
    else:  # Gram space where the library finds it exact and cheaper: the same draws, as G0 = X0 X0^T
        field, x0 = gram_formulation(field, x0, formulation)
    gram = isinstance(field, GramSelfAttention)

    observe = _PairFraction(delta, gram, normalised)
    # observables inside the solve (no (batch, T, n, d) states are kept); tolerances as arrays,
    # so one compilation serves every rtol
    obs = solve_ensemble(field, x0, float(ts[-1]), ts=jnp.asarray(ts, dtype=precision), observe=observe,
                         in_solve=True, solver=PHASE_SOLVERS[solver](), **tolerances)
    return xr.Dataset(
        {"pair_fraction": (("member", "t"), obs["pair_fraction"]),
         "num_steps": ((), int(obs["num_steps"]))},
        coords={"t": ts},
    )


class PhaseDiagramPoint(AbstractPoint):
    """One (beta, d, kq, value, seed) point of `phase_diagram`: the per-member clustered-pair fraction.

    The sweep point of paper 002 Figs 2-4; its identity (``jaxattn.sweeps.AbstractPoint``) is
    ``identity_name`` and ``identity_version`` with the fields below, so a phase-diagram directory
    stays resumable across releases that do not change its results (a change that does bumps
    ``identity_version``).

    **Arguments:**

    - `n`: the number of tokens.
    - `batch`: the number of initial sequences per point.
    - `delta`: the clustering threshold: ⟨x_i, x_j⟩ >= 1 - delta.
    - `ts`: the save times, a tuple of floats.
    - `rtol`: relative tolerance.
    - `atol`: absolute tolerance.
    - `solver`: a name in `PHASE_SOLVERS`; default "tsit5".
    - `precision`: "float64" (default) or "float32".
    - `formulation`: "auto" (default), "gram" or "tokens" (`FORMULATIONS`).
    - `norm`: one of `NORMS`; default "sa".
    - `heads`: the number of random heads; default 1.
    - `causal`: a causal mask; default False.
    - `redraw_period`: re-draw the weights every this many time units; default None (drawn once).
    """

    identity_name: ClassVar[str] = "jaxattn.studies.paper_002.phase_diagram"
    identity_version: ClassVar[int] = 1
    n: int
    batch: int
    delta: float
    ts: tuple[float, ...]
    rtol: float
    atol: float
    solver: str = DEFAULT_SOLVER
    precision: str = DEFAULT_PRECISION
    formulation: str = "auto"
    norm: str = "sa"
    heads: int = 1
    causal: bool = False
    redraw_period: float | None = None

    def __call__(self, seed: int, beta: float, d: int, kq: str, value: str) -> xr.Dataset:
        """The per-member clustered-pair fraction of one point.

        **Arguments:**

        - `seed`: the seed of the initial tokens and of the weights.
        - `beta`: the inverse temperature.
        - `d`: the token dimension.
        - `kq`: the ensemble of B = Q^T K.
        - `value`: the ensemble of V.

        **Returns:**

        An ``xarray.Dataset`` over (member, t).
        """
        return _phase_point(seed, beta, d, kq, value, n=self.n, batch=self.batch, delta=self.delta,
                            ts=np.asarray(self.ts), rtol=self.rtol, atol=self.atol, solver=self.solver,
                            precision=self.precision, formulation=self.formulation, norm=self.norm,
                            heads=self.heads, causal=self.causal, redraw_period=self.redraw_period)


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
    norm: str = "sa",
    heads: int = 1,
    causal: bool = False,
    redraw_period: float | None = None,
    progress: bool = True,
) -> xr.Dataset:
    """Paper 002 Figs 2-4: P(⟨x_i(t), x_j(t)⟩ >= 1 - delta) over (beta, t).

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

    Beyond paper 002 (`phase_field`): ``norm`` picks a normalisation scheme of
    `jaxattn.fields.normalised` (Karagodin, Ge, Polyanskiy, Rigollet 2025; tokens start at radius 1 and P
    is the fraction of their directions), ``heads`` averaged random heads, ``causal`` a causal mask, and
    ``redraw_period`` weights re-drawn every that many time units (passed to the step-size controller as
    jumps). Each is part of the sweep's identity: a directory started with other values is refused.

    **Arguments:**

    - `betas`: the inverse temperatures, floats > 0.
    - `ts`: the save times, non-decreasing, from 0.
    - `directory`: the sweep directory (resumable; required).
    - `n`: the number of tokens; default 32.
    - `d`: the token dimension, or several; default 128.
    - `kq`: the ensemble of B = Q^T K, or several; default "identity".
    - `value`: the ensemble of V, or several; default "identity".
    - `delta`: the clustering threshold: ⟨x_i, x_j⟩ >= 1 - delta; default 1e-2.
    - `batch`: the number of initial sequences per point; default 128.
    - `seeds`: the number of seeds, or the seeds; default 1.
    - `rtol`: relative tolerance; default 1e-5.
    - `atol`: absolute tolerance; default None (``rtol``).
    - `solver`: a name in `PHASE_SOLVERS`; default "tsit5".
    - `precision`: "float64" (default) or "float32" (an explicit opt-in).
    - `formulation`: "auto" (default), "gram" or "tokens" (`FORMULATIONS`).
    - `norm`: one of `NORMS`; default "sa".
    - `heads`: the number of random heads, int >= 1; default 1.
    - `causal`: a causal mask; default False.
    - `redraw_period`: re-draw the weights every this many time units, > 0; default None (drawn once).
    - `progress`: show the sweep's progress bar; default True.

    **Returns:**

    An ``xarray.Dataset``: the per-member fractions, ``probability`` and ``t_star`` (above).

    **Raises:**

    - `ValueError`: an unknown solver, formulation, precision, norm or ensemble; ``heads`` < 1; an invalid
        ``redraw_period``; or a directory started with other settings.
    """
    if solver not in PHASE_SOLVERS:
        raise ValueError(f"solver must be one of {sorted(PHASE_SOLVERS)}, got {solver!r}")
    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation must be one of {FORMULATIONS}, got {formulation!r}")
    if precision not in ("float64", "float32"):
        raise ValueError(f"precision must be 'float64' or 'float32' (an explicit opt-in), got {precision!r}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if isinstance(heads, bool) or not isinstance(heads, (int, np.integer)) or heads < 1:
        raise ValueError(f"heads must be a whole number >= 1, got {heads!r}")
    if redraw_period is not None:
        redraw_period = float(redraw_period)
        if not (math.isfinite(redraw_period) and redraw_period > 0):
            raise ValueError(f"redraw_period must be a finite time > 0 (or None: weights drawn once), "
                             f"got {redraw_period!r}")
    heads, causal = int(heads), bool(causal)
    atol = rtol if atol is None else atol
    ts = np.asarray(check_save_times(ts, t0=0.0, strict=True, min_count=2))
    enforce([pair_delta_rule(delta), crossing_delta_rule(delta)], None)  # the fraction P, and the curve t*
    as_list = lambda v: list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v]  # noqa: E731
    grid = {"beta": [float(b) for b in betas], "d": [int(x) for x in as_list(d)],
            "kq": as_list(kq), "value": as_list(value)}
    for k in grid["kq"]:
        for v in grid["value"]:
            check_ensembles(k, v)
    dynamics = dict(norm=norm, heads=heads, causal=causal, redraw_period=redraw_period)
    paths = {uses_gram(k, v, dd, n, formulation, **dynamics)
             for dd in grid["d"] for k in grid["kq"] for v in grid["value"]}
    path = ("gram" if paths == {True} else "tokens" if paths == {False} else
            "gram where kq = value = identity and d > n, tokens elsewhere")
    fn = PhaseDiagramPoint(n=n, batch=batch, delta=delta, ts=tuple(ts.tolist()), rtol=rtol, atol=atol,
                           solver=solver, precision=precision, formulation=formulation, **dynamics)
    attrs = dict(n=n, delta=delta, batch=batch, rtol=rtol, atol=atol,
                 model="SA" if norm == "sa" else f"{norm} (directions x radii)", norm=norm, heads=heads,
                 causal=int(causal), redraw_period="none" if redraw_period is None else redraw_period,
                 ts=ts.tolist(), init="uniform on S^{d-1}", precision=precision, paper="002 Figs 2-4",
                 formulation=path,
                 solver=f"{solver} + " + {"gram": "diag(G) = 1 retraction", "tokens": "sphere retraction"}.get(
                     path, "sphere / diag(G) = 1 retraction"))
    ds = run_sweep(fn, grid, directory=directory, seeds=seeds, name="phase_diagram", attrs=attrs,
                   progress=progress)
    ds["probability"] = ds.pair_fraction.mean(("seed", "member"))
    ds["t_star"] = crossing_times(ds.beta.values, n=n, delta=delta).t_star
    ds = describe(ds)  # CF attributes in memory too; the file holds what the figure shows
    if jax.process_index() == 0:
        atomic_write_netcdf(ds, Path(directory) / "phase_diagram.nc")
    return ds


class CrossingTimePoint(AbstractPoint):
    """t*(beta) of `crossing_times` for one beta: a deterministic sweep point (no seed).

    **Arguments:**

    - `n`: the number of tokens.
    - `delta`: the threshold 1 - delta of gamma_beta.
    """

    identity_name: ClassVar[str] = "jaxattn.studies.paper_002.crossing_times"
    identity_version: ClassVar[int] = 1
    n: int
    delta: float

    def __call__(self, beta: float) -> xr.Dataset:
        """t* at one beta.

        **Arguments:**

        - `beta`: the inverse temperature.

        **Returns:**

        An ``xarray.Dataset`` holding the scalar ``t_star``.
        """
        return xr.Dataset({"t_star": ((), float(gamma_crossing_time(beta, self.n, self.delta)))})


def crossing_times(betas: Sequence[float] | np.ndarray, *, n: int = 32, delta: float = 1e-2, directory=None,
                   progress: bool = False) -> xr.Dataset:
    """Paper 002 Thm 4.6: the crossing times t*(beta) of gamma_beta(t) = 1 - delta (eq. (4.11), (SA), n tokens).

    The dashed overlay curve of Figs 2-4 ([`jaxattn.analysis.gamma_crossing_time`][jaxattn.analysis.gamma_crossing_time] for each
    beta). With a ``directory`` each beta is a point of a resumable sweep (``jaxattn sweep gamma``;
    the merged ``directory/gamma.nc``). Returns ``t_star`` (beta).

    **Arguments:**

    - `betas`: the inverse temperatures, floats > 0.
    - `n`: the number of tokens; default 32.
    - `delta`: the threshold 1 - delta; default 1e-2.
    - `directory`: the sweep directory; default None (computed directly).
    - `progress`: show the sweep's progress bar; default False.

    **Returns:**

    An ``xarray.Dataset`` with ``t_star`` (beta).
    """
    betas = [float(b) for b in np.atleast_1d(np.asarray(betas, dtype=float))]
    attrs = dict(n=n, delta=delta, model="SA", paper="002 Thm 4.6, eq. (4.11)")
    point = CrossingTimePoint(n=n, delta=delta)
    if directory is None:
        ds = xr.concat([point(b) for b in betas], dim=xr.DataArray(betas, dims="beta", name="beta"))
    else:
        ds = run_sweep(point, {"beta": betas}, seeds=None, directory=directory, name="gamma", attrs=attrs,
                       progress=progress)
    ds.attrs.update(attrs)
    return describe(ds)
