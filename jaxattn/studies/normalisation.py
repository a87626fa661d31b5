"""Data for the figures of the normalisation schemes and of the noisy dynamics (docs/normalisation.md).

* `normalisation_rates`: every scheme's clustering from the orthogonal start (particles, n = d), its
  regulated rate -s d log(1 - rho)/dt against the limit 2 of the linearisation, and the equiangular theory
  curve (Karagodin, Ge, Polyanskiy, Rigollet 2025; Rigollet 2025 §5.2).
* `noisy_order_parameter`: the time-averaged order parameter of the noisy dynamics on the circle over
  kappa, against the mean-field stationary branch and the threshold (Rigollet 2025 §6).
* `normalisation_phase_diagram`: the fraction of clustered pairs of directions over (t, beta) for every scheme
  from uniform random starts (the statistic of Geshkovski et al. 2023 (perspective) Fig. 2), with (SA)'s
  diagram from the same starts (Post-LN's directions follow (SA) exactly).

Plots: `plot_normalisation_rates`, `plot_noisy_bifurcation`, `plot_normalisation_phase_diagrams`.
"""

from __future__ import annotations

from collections.abc import Sequence

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import initial
from ..analysis import clustered_pair_fraction, clustering_rate, equiangular_trajectory
from ..fields import NORMALISATIONS, CircleSelfAttention, Kuramoto, NoisyField, SelfAttention, directions, polar
from ..plot import pyplot
from ..solve import simulate
from ..spectral.noisy import noisy_threshold, stationary_order_parameter

__all__ = ["HORIZONS", "noisy_order_parameter", "normalisation_phase_diagram", "normalisation_rates",
           "plot_noisy_bifurcation", "plot_normalisation_phase_diagrams", "plot_normalisation_rates"]

#: the horizon of each scheme's particle run: as long as 1 - rho stays resolved (>~ 1e-25 from the token
#: differences) and the asymptotic regime is reached (Pre/Peri/Mix-LN are polynomial: t = 1e4)
HORIZONS = {"postln": 20.0, "preln": 1e4, "periln": 1e4, "mixln": 1e4, "ngpt": 80.0, "sqrt": 150.0}


def _speed_at_cluster(field, ts, r):
    """The speed factor s(t) at the clustered state (|A| = 1): 1, r(t), 1/alpha or sqrt(t + 1)."""
    return np.asarray(jax.vmap(lambda t, rr: field.speed(t, rr, jnp.ones_like(rr)))(jnp.asarray(ts), jnp.asarray(r)))


def normalisation_rates(beta: float = 1.0, n: int = 8, *, schemes: Sequence[str] = tuple(NORMALISATIONS),
                        num_times: int = 200, rtol: float = 1e-12) -> dict[str, xr.Dataset]:
    """Clustering of each scheme from theta_i(0) = e_i, r_i(0) = 1 (n = d, Q = K = V = I).

    Returns one dataset per scheme (``NORMALISATIONS`` names), over log-spaced times up to
    `HORIZONS`: ``one_minus_rho`` (particles: |theta_1 - theta_2|^2 / 2, resolved far below the float64
    resolution of rho), ``radius``, ``rate`` (the regulated rate -s d log(1 - rho)/dt with s the scheme's speed
    factor at the clustered state, [`jaxattn.analysis.clustering_rate`][jaxattn.analysis.clustering_rate]; its limit is 2 for every scheme),
    and the equiangular reduction's ``theory_one_minus_rho``, ``theory_radius`` and ``theory_rate``.

    **Arguments:**

    - `beta`: the inverse temperature; default 1.
    - `n`: the number of tokens (= d); default 8.
    - `schemes`: the schemes, names of ``NORMALISATIONS``; default all.
    - `num_times`: the number of log-spaced times; default 200.
    - `rtol`: relative tolerance; default 1e-12.

    **Returns:**

    A dict scheme name -> ``xarray.Dataset`` (above).
    """
    out = {}
    for name in schemes:
        field = NORMALISATIONS[name](beta)
        ts = np.concatenate([[0.0], np.geomspace(0.05, HORIZONS[name], num_times - 1)])
        jumps = [float(field.tau)] if name == "mixln" else None
        controller = diffrax.PIDController(rtol=rtol, atol=rtol, jump_ts=jumps)
        traj = simulate(field, polar(jnp.eye(n)), ts[-1], ts=ts, stepsize_controller=controller, max_steps=200_000)
        theta = np.asarray(traj.xs[:, :, :-1])
        eps = 0.5 * np.sum((theta[:, 0] - theta[:, 1]) ** 2, axis=-1)
        r = np.asarray(traj.xs[:, 0, -1])
        theory_eps, theory_r = (np.asarray(a) for a in equiangular_trajectory(field, n, ts))
        inner = slice(1, None)  # the rate needs 1 - rho > 0 and t > 0
        rate = np.full(ts.shape, np.nan)
        rate[inner] = clustering_rate(ts[inner], eps[inner], _speed_at_cluster(field, ts[inner], r[inner]))
        theory_rate = np.full(ts.shape, np.nan)
        theory_rate[inner] = clustering_rate(ts[inner], theory_eps[inner],
                                             _speed_at_cluster(field, ts[inner], theory_r[inner]))
        out[name] = xr.Dataset(
            {"one_minus_rho": ("time", eps), "radius": ("time", r), "rate": ("time", rate),
             "theory_one_minus_rho": ("time", theory_eps), "theory_radius": ("time", theory_r),
             "theory_rate": ("time", theory_rate)},
            coords={"time": ts}, attrs={"scheme": name, "beta": beta, "n": n, "limit_rate": 2.0})
    return out


def noisy_order_parameter(kappas: Sequence[float], beta: float = 0.0, *, n: int = 500, t1: float = 100.0,
                          burn_in: float = 50.0, dt: float = 0.01, sample_every: float = 0.1, unnormalised: bool = True,
                          seed: int = 0) -> xr.Dataset:
    """The noisy dynamics on the circle ([`jaxattn.fields.NoisyField`][jaxattn.NoisyField]) over kappa against its mean-field branch.

    The order parameter r = |(1/n) sum_j e^{i theta_j}| averaged over [burn_in, t1] from a uniform start (``order_parameter``, its
    ``temporal_sd``), against the mean-field stationary branch (``mean_field`` at the same kappas,
    ``mean_field_curve`` on 121 kappas ``kappa_fine``) (`jaxattn.spectral.noisy.stationary_order_parameter`) and the threshold kappa_c
    (`jaxattn.spectral.noisy.noisy_threshold`).

    beta = 0 is the noisy Kuramoto model (coupling 1; pitchfork at kappa = 2). Euler steps of ``dt`` (additive
    noise: Itô = Stratonovich) with a Brownian path drawn step by step.

    **Arguments:**

    - `kappas`: the inverse noise levels, floats > 0.
    - `beta`: the inverse temperature, >= 0; default 0.
    - `n`: the number of particles; default 500.
    - `t1`: the final time; default 100.
    - `burn_in`: the start of the time average; default 50.
    - `dt`: the Euler step; default 0.01.
    - `sample_every`: the sampling interval of the average; default 0.1.
    - `unnormalised`: USA (True, default) or SA drift.
    - `seed`: the seed; default 0.

    **Returns:**

    An ``xarray.Dataset`` over kappa (and kappa_fine) with the variables above; the attribute ``threshold`` is kappa_c.
    """
    model = "usa" if unnormalised else "sa"
    drift = Kuramoto() if beta == 0 else CircleSelfAttention(beta, unnormalised=unnormalised, evaluator="fourier")
    ts = np.linspace(burn_in, t1, int(round((t1 - burn_in) / sample_every)) + 1)
    means, sds = [], []
    for k, kappa in enumerate(kappas):
        key_x, key_w = jax.random.split(jax.random.PRNGKey(seed + k))
        field = NoisyField(drift, kappa, key_w, brownian="unsafe")
        traj = simulate(field, initial.uniform_circle(key_x, n), t1, ts=ts, solver=diffrax.Euler(), dt0=dt,
                        stepsize_controller=diffrax.ConstantStepSize(), adjoint=diffrax.ForwardMode(),
                        max_steps=int(np.ceil(t1 / dt)) + 10)
        r = np.abs(np.mean(np.exp(1j * np.asarray(traj.xs)), axis=-1))
        means.append(r.mean())
        sds.append(r.std())
    theory = [stationary_order_parameter(beta, kappa, model) for kappa in kappas]
    fine = np.linspace(min(kappas), max(kappas), 121)
    curve = [stationary_order_parameter(beta, kappa, model) for kappa in fine]
    return xr.Dataset(
        {"order_parameter": ("kappa", np.array(means)), "temporal_sd": ("kappa", np.array(sds)),
         "mean_field": ("kappa", np.array(theory)), "mean_field_curve": ("kappa_fine", np.array(curve))},
        coords={"kappa": np.asarray(kappas, dtype=float), "kappa_fine": fine},
        attrs={"beta": beta, "n": n, "model": model, "threshold": noisy_threshold(beta, 2, model), "t1": t1,
               "burn_in": burn_in, "dt": dt})


def normalisation_phase_diagram(key: jax.Array, betas: Sequence[float], ts: Sequence[float], *, n: int = 8,
                                d: int = 3, members: int = 8, schemes: Sequence[str] = tuple(NORMALISATIONS),
                                delta: float = 1e-3, rtol: float = 1e-6) -> xr.Dataset:
    """P(⟨theta_i, theta_j⟩ >= 1 - delta) over (beta, t) for every scheme (``NORMALISATIONS`` names, Q = K = V = I)
    from ``members`` uniform starts on S^{d-1} with radii 1, averaged over the starts (variable ``fraction``,
    dims scheme x beta x time), and ``reference``: the same statistic for (SA)
    ([`jaxattn.fields.SelfAttention`][jaxattn.SelfAttention]) from the same starts, which Post-LN's directions
    follow exactly. ``ts`` starts at 0 (the uniform start has no clustered pair).

    **Arguments:**

    - `key`: a JAX PRNG key (the starts).
    - `betas`: the inverse temperatures.
    - `ts`: the save times, from 0.
    - `n`: the number of tokens; default 8.
    - `d`: the dimension; default 3.
    - `members`: the number of uniform starts; default 8.
    - `schemes`: the schemes, names of ``NORMALISATIONS``; default all.
    - `delta`: the clustering threshold; default 1e-3.
    - `rtol`: relative tolerance; default 1e-6.

    **Returns:**

    An ``xarray.Dataset`` with ``fraction`` (scheme, beta, time) and ``reference`` (beta, time).
    """
    x0 = initial.uniform_sphere(key, n, d, batch=members)
    ts = np.asarray(ts, dtype=float)

    def fractions(field, start, to_directions):
        traj = simulate(field, start, float(ts[-1]), ts=ts, rtol=rtol, atol=rtol)
        return np.asarray(jnp.mean(clustered_pair_fraction(to_directions(traj.xs), delta), axis=0))

    grid = np.array([[fractions(NORMALISATIONS[name](beta), polar(x0), directions) for beta in betas]
                     for name in schemes])
    reference = np.array([fractions(SelfAttention(beta), x0, lambda x: x) for beta in betas])
    return xr.Dataset({"fraction": (("scheme", "beta", "time"), grid), "reference": (("beta", "time"), reference)},
                      coords={"scheme": list(schemes), "beta": np.asarray(betas, dtype=float), "time": ts},
                      attrs={"n": n, "d": d, "members": members, "delta": delta})


def plot_normalisation_phase_diagrams(ds: xr.Dataset):
    """One panel per scheme: the clustered fraction over (t, beta), time on a log axis. Returns the figure.

    **Arguments:**

    - `ds`: the dataset of [`normalisation_phase_diagram`][jaxattn.studies.normalisation.normalisation_phase_diagram].

    **Returns:**

    The Matplotlib figure.
    """
    plt = pyplot()
    m = ds.sizes["scheme"]
    cols = min(m, 3)
    fig, axes = plt.subplots(-(-m // cols), cols, figsize=(4 * cols, 3.2 * -(-m // cols)), sharex=True, sharey=True,
                             constrained_layout=True, squeeze=False)
    t = ds.time.values[1:]  # the log axis leaves out t = 0 (no clustered pair there)
    for ax, name in zip(axes.flat, ds.scheme.values):
        im = ax.pcolormesh(t, ds.beta, ds.fraction.sel(scheme=name)[:, 1:], vmin=0, vmax=1, shading="nearest")
        ax.set_xscale("log")
        ax.set_title(str(name))
    for ax in axes[-1]:
        ax.set_xlabel("t")
    for ax in axes[:, 0]:
        ax.set_ylabel("beta")
    for ax in axes.flat[m:]:
        ax.set_visible(False)
    fig.colorbar(im, ax=axes, label=f"clustered pairs (delta = {ds.delta:g})")
    return fig


def plot_normalisation_rates(rates: dict[str, xr.Dataset], ax=None):
    """1 - rho(t) of every scheme (particles: markers; equiangular theory: lines) and the regulated rate
    against its limit 2. Returns the figure.

    **Arguments:**

    - `rates`: the dict of [`normalisation_rates`][jaxattn.studies.normalisation.normalisation_rates].
    - `ax`: two Matplotlib axes; default None (a new figure).

    **Returns:**

    The Matplotlib figure.
    """
    plt = pyplot()
    if ax is None:
        fig, ax = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    fig = ax[0].figure
    for name, ds in rates.items():
        line, = ax[0].loglog(ds.time[1:], ds.theory_one_minus_rho[1:], label=name)
        ax[0].loglog(ds.time[1::10], ds.one_minus_rho[1::10], "o", ms=3, color=line.get_color())
        ax[1].semilogx(ds.time[1:], ds.rate[1:], color=line.get_color(), label=name)
    ax[1].axhline(2.0, color="k", ls="--", lw=1, label="limit 2")
    ax[0].set(xlabel="t", ylabel="1 - rho", title="clustering from the orthogonal start")
    ax[1].set(xlabel="t", ylabel="-s d log(1 - rho)/dt", ylim=(0, 4), title="regulated rate")
    ax[0].legend(fontsize=8)
    ax[1].legend(fontsize=8)
    return fig


def plot_noisy_bifurcation(ds: xr.Dataset, ax=None):
    """The particles' time-averaged order parameter (error bars: temporal sd) against the mean-field branch
    and the threshold. Returns the figure.

    **Arguments:**

    - `ds`: the dataset of [`noisy_order_parameter`][jaxattn.studies.normalisation.noisy_order_parameter].
    - `ax`: a Matplotlib axes; default None (a new figure).

    **Returns:**

    The Matplotlib figure.
    """
    plt = pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 4), constrained_layout=True)
    ax.errorbar(ds.kappa, ds.order_parameter, yerr=ds.temporal_sd, fmt="o", ms=4, label=f"particles, n = {ds.n}")
    ax.plot(ds.kappa_fine, ds.mean_field_curve, "-", label="mean field")
    ax.axvline(ds.threshold, color="k", ls="--", lw=1, label=f"kappa_c = {ds.threshold:.4g}")
    ax.set(xlabel="kappa (inverse noise)", ylabel="order parameter r",
           title=f"noisy {'Kuramoto' if ds.beta == 0 else ds.model.upper()} (beta = {ds.beta})")
    ax.legend(fontsize=8)
    return ax.figure
