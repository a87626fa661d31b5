"""Dynamic metastability: the energy staircase, merge times, and the pairing theorem's rescaled clock.

Sources: Geshkovski, Koubbi, Polyanskiy, Rigollet, "Dynamic metastability in the self-attention model"
(arXiv 2410.06833, 2024; gkpr below), their code's worked example (n = 5, d = 2, beta = 4, T = 400, SA);
Rigollet, "The mean-field dynamics of transformers" (arXiv 2512.01868, 2025, §4), stating the pairing
theorem of Bruno, Pasqualotto, Agazzi, "A multiscale analysis of mean-field transformers in the moderate
interaction regime" (NeurIPS 2025, arXiv 2509.25040).

* **Normalised energy** (gkpr §6): E^(X) = 2 beta e^{-beta} E_beta(X) = (1/n^2) sum_{i,j} e^{beta(<x_i, x_j> - 1)}
  in (0, 1], with E_beta of Geshkovski et al. 2023 (perspective) eq. (3.5) ([`normalised_energy`][jaxattn.analysis.staircase.normalised_energy]).
  For clusters of sizes m_c at centres w_c it is ([`cluster_energy`][jaxattn.analysis.staircase.cluster_energy])

      E^ = sum_c m_c^2 / n^2 + sum_{c != c'} m_c m_c' e^{beta(<w_c, w_c'> - 1)} / n^2 -> sum_c m_c^2 / n^2,

  the cross terms exponentially small in beta: a plateau. Merging clusters of sizes a and b raises the
  limit by exactly 2ab/n^2.
* **Staircase** (gkpr Theorem staircase): as beta -> inf, in a rescaled time, E^ is piecewise constant from
  1/n to 1; the closest pair of clusters (largest inner product) merges next, at its mass-weighted mean
  (the rule of the authors' code). [`staircase_levels`][jaxattn.analysis.staircase.staircase_levels] computes the levels of that greedy rule.
* **Merge times**: [`merge_times`][jaxattn.analysis.staircase.merge_times] reads the first time each pair's inner product exceeds 1 - delta off
  a saved trajectory (log-linear interpolation of 1 - <x_i, x_j> between saves: exact for an exponential
  approach). Metastable times grow like e^{c beta} (gkpr Theorem metastability: T_2 >= (eps/n) e^{(1-alpha) beta}).
* **Two tokens** (SA, Q = K = V = I): the inner product rho obeys d rho/dt = 2 e^{beta rho}(1 - rho^2)/(e^beta + e^{beta rho}),
  so the merge time t*(beta) = int_{rho_0}^{rho_1} (e^{beta(1 - rho)} + 1)/(2(1 - rho^2)) d rho has the closed form
  (with u = 1 - rho, w = 1 + rho, Ei and E_1 the exponential integrals)

      t* = (atanh rho_1 - atanh rho_0)/2 + [Ei(beta u_0) - Ei(beta u_1)]/4 + e^{2 beta} [E_1(beta w_0) - E_1(beta w_1)]/4

  ([`two_token_merge_time`][jaxattn.analysis.staircase.two_token_merge_time]); t* ~ e^beta/(2 beta).
* **Pairing theorem** (survey Theorem agazzi_merge): as beta -> inf, after the time change dt = e^{beta(1 - rho*)} ds
  with rho* the largest inner product between distinct clusters, only the closest pair moves, along the
  geodesic, dy_i/ds = P_{y_i} y_j, dy_j/ds = P_{y_j} y_i, so d rho/ds = 2 (1 - rho^2) and a merge from rho_0 to
  rho_1 takes s = (atanh rho_1 - atanh rho_0)/2 ([`pairing_time`][jaxattn.analysis.staircase.pairing_time]). The clock must run with the state
  (rho* = rho*(s)): with the survey's printed fixed clock, e^{beta(1 - rho*(0))}, the pair collapses at
  s ~ 1/(2 beta) (beta t* e^{-beta} -> 1/2). For two SA tokens the running-clock time has the closed form
  ([`two_token_pairing_time`][jaxattn.analysis.staircase.two_token_pairing_time])

      s* = (atanh rho_1 - atanh rho_0)/2 + [E_1(beta u_1) - E_1(beta u_0)]/4 + e^{-2 beta} [Ei(beta w_1) - Ei(beta w_0)]/4,

  which tends to the limit (1.3233262 for rho: 0 -> 0.99). [`pairing_clock`][jaxattn.analysis.staircase.pairing_clock] integrates the clock along a
  saved trajectory. The limit has no cluster masses: with masses a, b, SA moves cluster a at
  (b/a) e^{-beta(1-rho)} P y_b to leading order, so compare at equal masses.
* **Staircase flow** (gkpr §6, "modified" flow): [`staircase_flow`][jaxattn.analysis.staircase.staircase_flow] integrates the clusters as weighted
  particles ([`jaxattn.fields.WeightedCircleAttention`][jaxattn.fields.WeightedCircleAttention]) in the pairing clock and glues the closest pair
  into one particle at their mass-weighted mean when they come within the collision radius 1/sqrt(beta log beta);
  its energy traces the staircase for any beta (tested at beta = 4000 against the closed-form levels).
* **Cap collapse lemma** (gkpr lem: eminem): for u' = u(1 - u) e^{beta(u - 1)} the first time 1 - u <= e^{-c beta} is
  at most e^{beta(1 - u_0)}/u_0 + beta^2 c e/(beta - 1); exactly (partial fractions, as above)
  T = e^beta [E_1(beta u_0) - E_1(beta u_1)] + Ei(beta(1 - u_0)) - Ei(beta(1 - u_1)), u_1 = 1 - e^{-c beta}
  ([`cap_collapse_time`][jaxattn.analysis.staircase.cap_collapse_time], [`cap_collapse_bound`][jaxattn.analysis.staircase.cap_collapse_bound]).

Configurations are tokens (..., n, d) on the sphere; angles theta on the circle enter as
``jaxattn.fields.embed_angles(theta)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import exp1, expi
from jaxtyping import Array, ArrayLike, Float

from .._validate import check_beta, check_positive, enforce, pair_delta_rule
from ..fields import WeightedCircleAttention, embed_angles
from ..solve import simulate
from ._checks import check_tokens
from .clusters import pairwise_inner_products
from .energy import interaction_energy

#: pairs whose inner product exceeds 1 - MERGED count as merged (the authors' and our merge threshold)
MERGED = 1e-4


def normalised_energy(x: Float[ArrayLike, "... n d"], beta: Float[ArrayLike, ""]) -> Float[Array, "..."]:
    """E^(X) = (1/n^2) sum_ij e^{beta(<x_i, x_j> - 1)} = 2 beta e^{-beta} E_beta(X), in (0, 1] (module docstring)."""
    beta = check_beta(beta)
    return jnp.exp(interaction_energy(x, beta, log=True) + jnp.log(2.0 * beta) - beta)


def cluster_energy(centres: Float[ArrayLike, "k d"], sizes: Float[ArrayLike, " k"] | Sequence, beta: Float[ArrayLike, ""]
                   ) -> Float[Array, ""]:
    """E^ of collapsed clusters: sum_{c, c'} m_c m_c' e^{beta(<w_c, w_c'> - 1)} / n^2 with n = sum_c m_c."""
    beta = check_beta(beta)
    centres = check_tokens(centres, name="centres")
    sizes = jnp.asarray(sizes, dtype=centres.dtype)
    g = pairwise_inner_products(centres)
    return jnp.sum(sizes[:, None] * sizes[None, :] * jnp.exp(beta * (g - 1.0))) / jnp.sum(sizes) ** 2


class Staircase(NamedTuple):
    """The greedy closest-pair merging of [`staircase_levels`][jaxattn.analysis.staircase.staircase_levels].

    ``levels[k]`` is sum_c m_c^2 / n^2 after k merges (``levels[0]`` the start, ``levels[-1]`` = 1);
    ``pairs[k]`` the two clusters merged at step k + 1 (as the smallest token index of each);
    ``inner_products[k]`` their centres' inner product then; ``jumps[k]`` = 2ab/n^2."""

    levels: np.ndarray
    pairs: np.ndarray
    inner_products: np.ndarray
    jumps: np.ndarray


def staircase_levels(x: Float[ArrayLike, "n d"], sizes: Float[ArrayLike, " n"] | Sequence | None = None) -> Staircase:
    """Energy levels of the beta -> inf staircase (gkpr §6): merge the closest pair, place it at the mass-weighted mean.

    ``x`` are the initial tokens (or cluster centres with ``sizes``). Host-side NumPy (a combinatorial rule)."""
    pts = np.asarray(check_tokens(x), dtype=float)
    if pts.ndim != 2:
        raise ValueError(f"x must be one configuration (n, d), got shape {pts.shape}")
    m = np.ones(len(pts)) if sizes is None else np.asarray(sizes, dtype=float)
    if m.shape != (len(pts),) or np.any(m <= 0):
        raise ValueError(f"sizes must be {len(pts)} positive masses, got {sizes!r}")
    n = m.sum()
    ids = list(range(len(pts)))
    centres = [pts[i] / np.linalg.norm(pts[i]) for i in ids]
    masses = list(m)
    levels, pairs, products, jumps = [float(np.sum(m**2) / n**2)], [], [], []
    while len(centres) > 1:
        best = max(((i, j) for i in range(len(centres)) for j in range(i + 1, len(centres))),
                   key=lambda p: centres[p[0]] @ centres[p[1]])
        i, j = best
        a, b = masses[i], masses[j]
        products.append(float(centres[i] @ centres[j]))
        pairs.append((min(ids[i], ids[j]), max(ids[i], ids[j])))
        merged = a * centres[i] + b * centres[j]
        centres[i] = merged / np.linalg.norm(merged)
        masses[i] = a + b
        ids[i] = min(ids[i], ids[j])
        del centres[j], masses[j], ids[j]
        jumps.append(2 * a * b / n**2)
        levels.append(levels[-1] + jumps[-1])
    return Staircase(np.array(levels), np.array(pairs, dtype=int).reshape(-1, 2), np.array(products), np.array(jumps))


def merge_times(ts: Float[ArrayLike, " T"], xs: Float[ArrayLike, "T n d"], delta: float = MERGED) -> Float[Array, "n n"]:
    """(n, n) first times at which <x_i, x_j> >= 1 - delta along saved tokens (inf if never; 0 on the diagonal).

    Between the two saves that bracket the crossing, log(1 - <x_i, x_j>) is interpolated linearly (exact for an
    exponential approach); save densely enough to resolve the approach (e.g. every 0.1 for beta = 4).

    Args:
        ts: (T,) increasing save times.
        xs: (T, n, d) unit tokens at those times (angles: ``jaxattn.fields.embed_angles(theta)``).
        delta: the merge threshold, in (0, 2] (default 1e-4, the authors').

    Returns:
        (n, n) symmetric array of first-passage times.
    """
    enforce([pair_delta_rule(delta)], None)
    ts = jnp.asarray(ts)
    g = pairwise_inner_products(check_tokens(xs))
    gap = jnp.log(jnp.maximum(1.0 - g, 1e-300))
    level = jnp.log(delta)
    above = gap <= level
    k = jnp.argmax(above, axis=0)  # first save at or past the crossing
    hit = jnp.any(above, axis=0)
    km = jnp.maximum(k - 1, 0)
    g0 = jnp.take_along_axis(gap, km[None], axis=0)[0]
    g1 = jnp.take_along_axis(gap, k[None], axis=0)[0]
    frac = jnp.where(g1 < g0, (level - g0) / jnp.where(g1 < g0, g1 - g0, 1.0), 1.0)
    t = ts[km] + jnp.clip(frac, 0.0, 1.0) * (ts[k] - ts[km])
    t = jnp.where(k == 0, ts[0], t)
    return jnp.where(hit, t, jnp.inf)


def _asymptotic(x, sign):
    """sum_{k < 20} sign^k k! / x^{k+1}: e^{-x} Ei(x) (sign +1) or e^{x} E_1(x) (sign -1) for x >= 50 (error < 3e-16)."""
    terms = jnp.cumprod(jnp.concatenate([jnp.ones(1), sign * jnp.arange(1.0, 20.0)]) / jnp.asarray(x)[..., None],
                        axis=-1)
    return jnp.sum(terms, axis=-1)


def _scaled_expi(x):
    """e^{-x} Ei(x), finite for every x > 0."""
    big = x >= 50.0
    return jnp.where(big, _asymptotic(jnp.where(big, x, 50.0), 1.0), jnp.exp(-x) * expi(jnp.where(big, 1.0, x)))


def _scaled_exp1(x):
    """e^{x} E_1(x), finite for every x > 0."""
    big = x >= 50.0
    return jnp.where(big, _asymptotic(jnp.where(big, x, 50.0), -1.0), jnp.exp(x) * exp1(jnp.where(big, 1.0, x)))


def _check_rho(rho0, rho1):
    if not (-1 < float(rho0) < float(rho1) < 1):
        raise ValueError(f"need -1 < rho0 < rho1 < 1 (inner products of the pair), got rho0 = {rho0}, rho1 = {rho1}")


def two_token_merge_time(beta: Float[ArrayLike, ""], rho0: float = 0.0, rho1: float = 0.99) -> Float[Array, ""]:
    """Time t* for two SA tokens (Q = K = V = I) to go from <x_1, x_2> = rho0 to rho1 (closed form, module docstring)."""
    beta = check_beta(beta)
    _check_rho(rho0, rho1)
    u0, u1, w0, w1 = 1 - rho0, 1 - rho1, 1 + rho0, 1 + rho1
    # e^{2 beta} E_1(beta w) written as e^{beta(2 - w)} (e^{beta w} E_1(beta w)) so that it stays finite
    e1s = lambda w: jnp.exp(beta * (2 - w)) * _scaled_exp1(beta * w)  # noqa: E731
    return (jnp.arctanh(rho1) - jnp.arctanh(rho0)) / 2 + (expi(beta * u0) - expi(beta * u1)) / 4 \
        + (e1s(w0) - e1s(w1)) / 4


def pairing_time(rho0: Float[ArrayLike, "..."], rho1: Float[ArrayLike, "..."]) -> Float[Array, "..."]:
    """Rescaled time s = (atanh rho1 - atanh rho0)/2 of the pairing limit d rho/ds = 2(1 - rho^2) (module docstring)."""
    return (jnp.arctanh(jnp.asarray(rho1)) - jnp.arctanh(jnp.asarray(rho0))) / 2


def two_token_pairing_time(beta: Float[ArrayLike, ""], rho0: float = 0.0, rho1: float = 0.99) -> Float[Array, ""]:
    """Running-clock time s* (dt = e^{beta(1 - rho)} ds) for two SA tokens from rho0 to rho1 (closed form); -> pairing_time."""
    beta = check_beta(beta)
    _check_rho(rho0, rho1)
    u0, u1, w0, w1 = 1 - rho0, 1 - rho1, 1 + rho0, 1 + rho1
    # e^{-2 beta} Ei(beta w) = e^{-beta(2 - w)} (e^{-beta w} Ei(beta w)): finite for every beta
    eis = lambda w: jnp.exp(-beta * (2 - w)) * _scaled_expi(beta * w)  # noqa: E731
    return pairing_time(rho0, rho1) + (exp1(beta * u1) - exp1(beta * u0)) / 4 + (eis(w1) - eis(w0)) / 4


def pairing_clock(ts: Float[ArrayLike, " T"], xs: Float[ArrayLike, "T n d"], beta: Float[ArrayLike, ""],
                  delta: float = MERGED) -> Float[Array, " T"]:
    """The pairing theorem's rescaled time s(t) = int_0^t e^{-beta(1 - rho*(tau))} dtau along saved tokens.

    rho* is the largest inner product among pairs not yet merged (<x_i, x_j> < 1 - delta); once every pair has
    merged the clock runs at rate 1. Between saves log(rate) is interpolated linearly (the integral of an
    exponential is then exact), so a smooth rho*(t) needs only moderately dense saves."""
    beta = check_beta(beta)
    enforce([pair_delta_rule(delta)], None)
    ts = jnp.asarray(ts)
    g = pairwise_inner_products(check_tokens(xs))
    n = g.shape[-1]
    open_pairs = (g < 1.0 - delta) & ~jnp.eye(n, dtype=bool)
    rho = jnp.max(jnp.where(open_pairs, g, -jnp.inf), axis=(-2, -1))
    log_rate = jnp.where(jnp.isfinite(rho), -beta * (1.0 - rho), 0.0)
    dt = jnp.diff(ts)
    f0, f1 = log_rate[:-1], log_rate[1:]
    df = f1 - f0
    small = jnp.abs(df) < 1e-8
    safe = jnp.where(small, 1.0, df)
    pieces = jnp.where(small, dt * jnp.exp(f0) * (1 + df / 2), dt * (jnp.exp(f1) - jnp.exp(f0)) / safe)
    return jnp.concatenate([jnp.zeros(1, pieces.dtype), jnp.cumsum(pieces)])


def cap_collapse_time(beta: Float[ArrayLike, ""], u0: Float[ArrayLike, ""], c: Float[ArrayLike, ""]) -> Float[Array, ""]:
    """First time with 1 - u <= e^{-c beta} for u' = u(1 - u) e^{beta(u - 1)}, u(0) = u0 (exact, module docstring)."""
    beta = check_beta(beta)
    u1 = -jnp.expm1(-c * beta)
    return jnp.exp(beta) * (exp1(beta * u0) - exp1(beta * u1)) + expi(beta * (1 - u0)) - expi(beta * (1 - u1))


def cap_collapse_bound(beta: Float[ArrayLike, ""], u0: Float[ArrayLike, ""], c: Float[ArrayLike, ""]) -> Float[Array, ""]:
    """gkpr lem: eminem: the hitting time of [`cap_collapse_time`][jaxattn.analysis.staircase.cap_collapse_time] is at most e^{beta(1-u0)}/u0 + beta^2 c e/(beta - 1) (beta > 1)."""
    beta = check_beta(beta)
    return jnp.exp(beta * (1 - u0)) / u0 + beta**2 * c * jnp.e / (beta - 1)


class StaircaseFlow(NamedTuple):
    """The glued flow of [`staircase_flow`][jaxattn.analysis.staircase.staircase_flow]: rescaled times ``s`` and energies ``energy`` along the phases
    (concatenated, one phase per number of clusters, each ending with the glued state at the merge time), the
    rescaled time of each merge and the energy levels between merges (``levels[k]`` after k merges, the closed form
    sum m_c^2/n^2 plus exponentially small cross terms)."""

    s: np.ndarray
    energy: np.ndarray
    merge_s: np.ndarray
    levels: np.ndarray
    pairs: list[tuple[int, int]]


def staircase_flow(theta0: Float[ArrayLike, " n"], beta: float, *, radius: float | None = None,
                   saves: int = 400, horizon: float = 100.0, rtol: float = 1e-8) -> StaircaseFlow:
    """(SA) on S^1 from angles ``theta0`` in the pairing clock, gluing pairs closer than ``radius`` (gkpr §6).

    Each phase integrates the current clusters ([`jaxattn.fields.WeightedCircleAttention`][jaxattn.fields.WeightedCircleAttention] with their sizes,
    ``clock=True``) until the closest pair's angular gap falls below ``radius`` (default 1/sqrt(beta log beta), the
    collision radius of gkpr's modified flow), or until ``horizon`` units of rescaled time; the pair is then glued
    at its mass-weighted mean direction. The merge time is read off the saves by log-linear interpolation of the
    gap. Host loop over at most n - 1 phases (one compilation per number of clusters).

    Args:
        theta0: (n,) initial angles.
        beta: inverse temperature > 0 (any size: the clock keeps every rate O(1)).
        radius: collision radius (angular gap) at which a pair is glued.
        saves: save points per phase (the merge time is interpolated between them).
        horizon: the longest phase, in rescaled time.
        rtol: tolerance of each phase's solve (rtol = atol).

    Returns:
        [`StaircaseFlow`][jaxattn.analysis.staircase.StaircaseFlow] (rescaled times, energies, merge times, levels, merged pairs).
    """
    beta = float(check_beta(beta))
    theta = np.asarray(theta0, dtype=float)
    if theta.ndim != 1 or theta.size < 1:
        raise ValueError(f"theta0 must be a 1-d array of n >= 1 angles, got shape {theta.shape}")
    radius = 1.0 / np.sqrt(beta * np.log(beta)) if radius is None else float(radius)
    check_positive("radius", radius)
    masses = np.ones(theta.size)
    s_all, e_all, merge_s, pairs = [], [], [], []
    offset = 0.0
    levels = [float(cluster_energy(embed_angles(theta), masses, beta))]

    def gaps(th):
        d = np.abs(np.angle(np.exp(1j * (th[:, None] - th[None, :]))))
        return np.where(np.eye(th.size, dtype=bool), np.inf, d)

    while theta.size > 1:
        field = WeightedCircleAttention(beta, masses, clock=True)
        ts = np.linspace(0.0, horizon, saves)
        traj = simulate(field, theta, horizon, ts=ts, rtol=rtol, atol=rtol,
                        stop_when=lambda th: _min_gap(th) < radius)
        xs = np.asarray(traj.xs)
        t_final = float(traj.t_final)
        keep = ts < t_final
        th_path = np.concatenate([xs[keep], xs[-1:]])
        s_path = np.concatenate([ts[keep], [t_final]])
        g = np.array([gaps(th).min() for th in th_path])
        if g[-1] >= radius:
            raise RuntimeError(f"no pair came within radius {radius:.3g} in {horizon} units of rescaled time; "
                               "raise horizon")
        k = int(np.argmax(g < radius))
        if k == 0:
            t_merge = 0.0
        else:
            lg0, lg1 = np.log(g[k - 1]), np.log(g[k])
            t_merge = s_path[k - 1] + (np.log(radius) - lg0) / (lg1 - lg0) * (s_path[k] - s_path[k - 1])
        energies = np.array([float(cluster_energy(embed_angles(th), masses, beta)) for th in th_path])
        s_all.append(offset + s_path[: k + 1])
        e_all.append(energies[: k + 1])
        offset += t_merge
        merge_s.append(offset)
        th = th_path[-1]
        gm = gaps(th)
        i, j = np.unravel_index(np.argmin(gm), gm.shape)
        i, j = min(i, j), max(i, j)
        a, b = masses[i], masses[j]
        pairs.append((int(i), int(j)))
        merged = np.angle(a * np.exp(1j * th[i]) + b * np.exp(1j * th[j]))
        theta = np.delete(th, j)
        theta[i] = merged
        masses = np.delete(masses, j)
        masses[i] = a + b
        levels.append(float(cluster_energy(embed_angles(theta), masses, beta)))
        s_all.append(np.array([offset]))  # the glued state at the merge time: the energy jumps to the new level
        e_all.append(np.array([levels[-1]]))
    return StaircaseFlow(np.concatenate(s_all) if s_all else np.zeros(1), np.concatenate(e_all) if e_all else
                         np.array(levels[:1]), np.array(merge_s), np.array(levels), pairs)


def _min_gap(theta):
    """Smallest angular distance between two of the angles (a jnp function: a stop_when condition)."""
    d = jnp.abs(jnp.angle(jnp.exp(1j * (theta[:, None] - theta[None, :]))))
    return jnp.min(jnp.where(jnp.eye(theta.shape[0], dtype=bool), jnp.inf, d))
