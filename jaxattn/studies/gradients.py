r"""Differentiable parameter studies: gradients through the circle PDE, and optax fits.

The library layer is [`jaxattn.grad`][jaxattn.grad] ([`value_and_grad_of`][jaxattn.value_and_grad_of],
[`checkpointed_adjoint`][jaxattn.checkpointed_adjoint], [`fit`][jaxattn.fit]; re-exported here and at the
top level). The studies built on it:

* [`circle_pde_value_and_grad`][jaxattn.studies.circle_pde_value_and_grad] - value and gradient for the mean-field PDE on the circle
  (paper 004 eq. (11), solved by [`jaxattn.spectral.integrate_circle`][jaxattn.spectral.integrate_circle]) w.r.t. beta, the initial
  Fourier moments and t1; it refuses to return gradients of an unresolved solution;
* [`fit_beta_to_clustering_time`][jaxattn.studies.fit_beta_to_clustering_time] - recover beta from an observed clustering time (a test
  recovers a known beta);
* [`maximise_metastable_lifetime`][jaxattn.studies.maximise_metastable_lifetime] - the key matrix K (at fixed Frobenius norm, Q = V = I) that
  maximises a smooth surrogate of the time to a single cluster;
* [`clustering_sensitivity_along_boundary`][jaxattn.studies.clustering_sensitivity_along_boundary] - d(soft clustering probability at time t)/d beta
  along the phase boundary t = t*(beta) of paper 002 eq. (4.11).

Smooth observables are in `jaxattn.analysis.observables`. Results: ``docs/gradients.md``;
demonstration: ``notebooks/gradients_studies.ipynb``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, Sequence

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Complex, Float, PRNGKeyArray

from .. import initial as _initial
from .._validate import check_beta, check_model, check_sign
from ..analysis import (
    gamma_crossing_time,
    gamma_rhs,
    soft_clustered_fraction,
    soft_time_to_cluster,
)
from ..fields import AbstractField, SelfAttention, UnnormalisedSelfAttention
from ..grad import FitResult, Gradients, check_real_scalar, checkpointed_adjoint, fit, value_and_grad_of
from ..solve import simulate
from ..spectral import check_coefficients
from ..spectral.circle import CircleModel, from_state, integrate_circle, to_state

__all__ = [
    "FitResult",
    "Gradients",
    "PDEGradients",
    "BoundarySensitivity",
    "checkpointed_adjoint",
    "circle_pde_value_and_grad",
    "clustering_sensitivity_along_boundary",
    "clustering_time_surrogate",
    "fit",
    "fit_beta_to_clustering_time",
    "maximise_metastable_lifetime",
    "normalised_key_matrix",
    "value_and_grad_of",
]


# ----------------------------------------------------------------------------------------------
# circle PDE


class PDEGradients(eqx.Module):
    """Gradient of an observable of the circle PDE solution (see [`circle_pde_value_and_grad`][jaxattn.studies.circle_pde_value_and_grad]).

    ``beta``, ``t1`` scalars; ``coeffs0`` complex (K+1,): d obs/d Re mu_k(0) + i d obs/d Im mu_k(0)
    (the k = 0 entry is the direction of changing the mass, which a probability density keeps at 1).
    """

    beta: Array
    coeffs0: Array
    t1: Array


@eqx.filter_jit
def _pde_value_and_grad(observable, beta, y0, t1, K, model, sign, n_save, rtol, atol, adjoint, max_steps,
                        tail_tol, neg_tol):
    def objective(args):
        b, y, t = args
        m = CircleModel(b, K, model=model, sign=sign)

        def unresolved(t, y, args, **kwargs):  # the monitors of solve_circle, as a terminating event
            c = from_state(y)
            return (m.tail(c) > tail_tol) | (m.min_density(c) < -neg_tol / (2 * math.pi))

        ts = jnp.linspace(0.0, t, n_save)
        sol = integrate_circle(m, from_state(y), ts, rtol=rtol, atol=atol, adjoint=adjoint,
                               max_steps=max_steps, event=diffrax.Event(unresolved))
        c = from_state(sol.ys)
        value = observable(c)
        check_real_scalar(value, "the observable")
        c_ok = jnp.where(jnp.isfinite(c), c, 0)
        return value, (sol.event_mask, m.tail(c_ok), m.min_density(c_ok))

    return jax.value_and_grad(objective, has_aux=True)((beta, y0, t1))


def circle_pde_value_and_grad(
    observable: Callable[[Complex[Array, "T K1"]], Float[Array, ""]],
    beta: float | ArrayLike,
    coeffs0: Complex[ArrayLike, " K1"],
    t1: float | ArrayLike,
    *,
    model: Literal["usa", "sa"] = "usa",
    sign: int = 1,
    n_save: int = 2,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    checkpoints: int | None = None,
    max_steps: int = 100_000,
    tail_tol: float = 1e-8,
    neg_tol: float = 1e-8,
) -> tuple[Float[Array, ""], PDEGradients]:
    r"""Value and gradient of ``observable(mu)`` for the circle PDE d_t rho + d_theta(rho v[rho]) = 0.

    The PDE, conventions and pseudo-spectral discretisation are those of
    `jaxattn.spectral.circle` (paper 004 eq. (11); USA or SA velocity, V = sign I). ``mu`` is
    the (n_save, K+1) array of complex Fourier moments mu_k(t), k = 0..K, at n_save uniform times in
    [0, t1] (so ``mu[-1]`` is mu(t1)), K + 1 = len(coeffs0). Gradients are w.r.t. beta, the initial
    moments and t1, through diffrax's recursive-checkpoint adjoint.

    Resolution honesty: the solution (and therefore its gradient) is only meaningful while the K
    modes resolve it. The monitors of [`jaxattn.spectral.solve_circle`][jaxattn.spectral.solve_circle] run as a terminating event:
    if the spectral tail max_{k > 7K/8}|mu_k| exceeds ``tail_tol`` or the density drops below
    -``neg_tol``/(2 pi) before t1, this raises RuntimeError (as ``solve_circle(on_unresolved="raise")``).

    Example (paper 004 test 25): ``circle_pde_value_and_grad(lambda mu: jnp.abs(mu[-1, 3])**2, 5.0,
    c0, 0.2)``; in the linear phase its beta-gradient is 2 T (d gamma_3/d beta) |mu_3(T)|^2 with
    gamma_k = k^2 I_k(beta)/beta (a test).
    """
    if not callable(observable):
        raise TypeError("observable must be a callable (moments (n_save, K+1) complex) -> real scalar")
    check_beta(beta, scalar=False)
    model = check_model(model)
    sign = check_sign(sign)
    c0 = check_coefficients(coeffs0)
    K = c0.shape[0] - 1
    t1n = np.asarray(t1, dtype=float)
    if t1n.ndim != 0 or not np.isfinite(t1n) or not float(t1n) > 0:
        raise ValueError(f"t1 must be a finite scalar > 0, got {t1!r}")
    if isinstance(n_save, bool) or not isinstance(n_save, int) or n_save < 2:
        raise ValueError(f"n_save must be an int >= 2, got {n_save!r}")
    adjoint = checkpointed_adjoint(checkpoints)
    dtype = jnp.result_type(float)
    (value, (event, tail, mind)), (g_beta, g_y, g_t1) = _pde_value_and_grad(
        observable, jnp.asarray(beta, dtype), to_state(c0), jnp.asarray(t1, dtype), K, model, sign,
        n_save, rtol, atol, adjoint, max_steps, tail_tol, neg_tol,
    )
    tail, mind = np.asarray(tail), np.asarray(mind)
    bad = ~(np.isfinite(tail) & (tail <= tail_tol) & (mind >= -neg_tol / (2 * math.pi)))
    if bool(event) or bad.any():
        raise RuntimeError(
            f"circle PDE (beta = {float(beta):.6g}, K = {K}, {model}) became unresolved before t1 = "
            f"{float(t1):.6g} (spectral tail max_(k > 7K/8) |mu_k| > {tail_tol:g} or density < "
            f"-{neg_tol:g}/(2 pi)): its gradient would be meaningless. Shorten t1, increase K, or use "
            "particles (value_and_grad_of)."
        )
    g_c = g_y[: K + 1] + 1j * g_y[K + 1 :]
    return value, PDEGradients(beta=g_beta, coeffs0=g_c, t1=g_t1)


# ----------------------------------------------------------------------------------------------
# optax studies of the time to a single cluster


def clustering_time_surrogate(
    field: AbstractField,
    x0: ArrayLike,
    t_max: float,
    *,
    delta: float = 1e-3,
    width: float = 0.1,
    n_save: int = 201,
    rtol: float = 1e-8,
    atol: float = 1e-8,
    **simulate_kwargs,
) -> Float[Array, "..."]:
    r"""Soft time to a single cluster T_soft ([`jaxattn.analysis.soft_time_to_cluster`][jaxattn.analysis.soft_time_to_cluster]) of
    ``simulate(field, x0, t_max)`` on n_save saved times; one value per ensemble member."""
    tr = simulate(field, x0, t_max, ts=n_save, rtol=rtol, atol=atol, **simulate_kwargs)
    return soft_time_to_cluster(tr.xs, tr.ts, delta, width)


_FIELDS = {"sa": SelfAttention, "usa": UnnormalisedSelfAttention}


def _field_class(model: str):
    if not isinstance(model, str) or model.lower() not in _FIELDS:
        raise ValueError(f"model must be 'sa' or 'usa', got {model!r}")
    return _FIELDS[model.lower()]


def _fit_reparameterised(loss_of: Callable[[Any], Float[Array, ""]], transform: Callable[[Array], Array],
                         raw0: Array, learning_rate: float, steps: int) -> FitResult:
    """Adam(``learning_rate``) on raw parameters s for ``loss_of(transform(s))``; the result's params and
    history are the transformed (physical) parameters."""
    res = fit(lambda s: loss_of(transform(s)), raw0, optimizer=optax.adam(learning_rate), steps=steps)
    return FitResult(params=transform(res.params), losses=res.losses, history=jax.vmap(transform)(res.history))


def fit_beta_to_clustering_time(
    target_time: float,
    x0: ArrayLike,
    t_max: float,
    *,
    model: Literal["sa", "usa"] = "sa",
    beta_init: float = 1.0,
    steps: int = 60,
    learning_rate: float = 0.1,
    **surrogate_kwargs,
) -> FitResult:
    r"""Recover beta from an observed clustering time: minimise ((T_soft(beta) - t_obs)/t_obs)^2.

    T_soft(beta) is `clustering_time_surrogate` of the (SA) or (USA) field with Q = K = V = I
    from ``x0`` (one configuration, or an ensemble whose mean time is matched);
    ``surrogate_kwargs`` (``delta``, ``width``, ``n_save``, ``rtol``, ``atol``, ...) go to it. beta =
    exp(s) is optimised in s = log beta with Adam(``learning_rate``), so it stays positive.
    ``result.params`` is beta (and ``result.history`` the betas). The target must lie inside
    (0, t_max): a configuration that never clusters before t_max has zero gradient.
    """
    cls = _field_class(model)
    if not (np.isfinite(target_time) and 0 < target_time < t_max):
        raise ValueError(f"target_time must be in (0, t_max = {t_max}), got {target_time!r}")
    if not (np.isfinite(beta_init) and beta_init > 0):
        raise ValueError(f"beta_init must be finite and > 0, got {beta_init!r}")
    x0 = jnp.asarray(x0)

    def loss(beta):
        T = clustering_time_surrogate(cls(beta), x0, t_max, **surrogate_kwargs)
        return (jnp.mean(T) / target_time - 1.0) ** 2

    return _fit_reparameterised(loss, jnp.exp, jnp.log(jnp.asarray(beta_init, x0.dtype)), learning_rate, steps)


def normalised_key_matrix(M: Float[ArrayLike, "d d"]) -> Float[Array, "d d"]:
    r"""K = sqrt(d) M / |M|_F: a key matrix with the Frobenius norm of the identity (|I|_F = sqrt d).

    With Q = I the attention logits are beta <x_i, K x_j>; fixing |K|_F fixes the "temperature
    budget", so a lifetime comparison between K and I at the same beta is fair.
    """
    M = jnp.asarray(M)
    return math.sqrt(M.shape[-1]) * M / jnp.linalg.norm(M)


def maximise_metastable_lifetime(
    x0: Float[ArrayLike, "batch n d"],
    beta: float,
    t_max: float,
    *,
    K_init: ArrayLike | None = None,
    steps: int = 40,
    learning_rate: float = 0.05,
    rtol: float = 1e-7,
    atol: float = 1e-7,
    **surrogate_kwargs,
) -> FitResult:
    r"""Maximise the mean soft time to a single cluster over the key matrix K, at fixed |K|_F.

    Field: (SA) with Q = V = I and K = `normalised_key_matrix` (M), logits beta <x_i, K x_j>
    (paper 002 eq. (2.3)); only Q^T K enters the dynamics, so fixing Q = I loses nothing. Objective:
    the ensemble mean of T_soft (`clustering_time_surrogate`, capped at t_max; ``delta``,
    ``width``, ``n_save`` go to it), maximised over M by Adam. ``result.params`` is the optimised K,
    ``result.losses`` the *negative* mean lifetime per step. Use an ensemble ``x0`` (batch, n, d) so
    the answer is not tuned to one initial condition. Documented result: ``docs/gradients.md``.
    """
    x0 = jnp.asarray(x0)
    if x0.ndim != 3:
        raise ValueError(f"x0 must be an ensemble (batch, n, d), got shape {x0.shape}")
    d = x0.shape[-1]
    M0 = jnp.eye(d, dtype=x0.dtype) if K_init is None else jnp.asarray(K_init, x0.dtype)
    if M0.shape != (d, d):
        raise ValueError(f"K_init must be ({d}, {d}), got {M0.shape}")

    def loss(K):
        T = clustering_time_surrogate(SelfAttention(beta, K=K), x0, t_max, rtol=rtol, atol=atol,
                                      **surrogate_kwargs)
        return -jnp.mean(T)

    return _fit_reparameterised(loss, normalised_key_matrix, M0, learning_rate, steps)


class BoundarySensitivity(eqx.Module):
    r"""Table returned by [`clustering_sensitivity_along_boundary`][jaxattn.studies.clustering_sensitivity_along_boundary] (one entry per beta)."""

    betas: Array
    t_star: Array        #: boundary time t*(beta): gamma_beta(t*) = 1 - delta (eq. (4.11))
    dt_star: Array       #: dt*/dbeta
    p_particles: Array   #: ensemble mean soft clustered fraction at (beta, t*)
    dp_particles: Array  #: its d/dbeta at fixed t = t* (autodiff through simulate)
    dgamma: Array        #: d gamma_beta(t)/dbeta at t = t*, = -gamma'(t*) dt*/dbeta (implicit function thm)
    dp_gamma: Array      #: the gamma-model prediction s'(0) dgamma/tau = dgamma / (4 tau)


def clustering_sensitivity_along_boundary(
    betas: ArrayLike | Sequence[float],
    n: int,
    d: int,
    *,
    key: PRNGKeyArray | None = None,
    batch: int = 4,
    x0: ArrayLike | None = None,
    delta: float = 1e-2,
    tau: float | None = None,
    model: Literal["sa", "usa"] = "sa",
    rtol: float = 1e-7,
    atol: float = 1e-7,
) -> BoundarySensitivity:
    r"""Sensitivity map d P(beta, t)/d beta along the phase boundary t = t*(beta) of paper 002.

    P is the smooth clustering probability: the ensemble mean of
    [`jaxattn.analysis.soft_clustered_fraction`][jaxattn.analysis.soft_clustered_fraction] (delta, tau) for ``batch`` i.i.d. uniform
    initial conditions on S^{d-1} drawn with ``key`` (or the given ``x0``, one configuration or an
    ensemble, e.g. ``jaxattn.initial.orthogonal_frame(n, d)``); the boundary is gamma_beta(t*) = 1 - delta with gamma from
    Theorem 4.6 (eqs. (4.8)/(4.9), (4.11)). Theorem 4.7 says random tokens in large d track gamma, so
    the gamma-model prediction is P = s((gamma - (1 - delta))/tau), i.e. 1/2 on the boundary with
    dP/dbeta = dgamma/dbeta / (4 tau); both are returned for comparison (they agree as d grows).
    By the implicit function theorem dgamma/dbeta = -gamma'(t*) dt*/dbeta on the boundary.
    """
    cls = _field_class(model)
    betas = jnp.atleast_1d(jnp.asarray(betas, dtype=jnp.result_type(float)))
    if betas.ndim != 1:
        raise ValueError(f"betas must be a scalar or 1-D array, got shape {betas.shape}")
    tau = delta / 4 if tau is None else tau
    if x0 is None:
        if key is None:
            raise ValueError("pass key= (random uniform initial conditions) or x0=")
        x0 = _initial.uniform_sphere(key, n, d, batch=batch)
    else:
        x0 = jnp.asarray(x0)
        if x0.shape[-2:] != (n, d):
            raise ValueError(f"x0 must have trailing shape (n, d) = ({n}, {d}), got {x0.shape}")

    def prob(beta, t):
        tr = simulate(cls(beta), x0, t, ts=2, rtol=rtol, atol=atol)
        return jnp.mean(soft_clustered_fraction(tr.final, delta, tau))

    p_and_grad = eqx.filter_jit(jax.value_and_grad(prob))
    rows = []
    for b in np.asarray(betas):
        ts, dts = jax.value_and_grad(gamma_crossing_time)(b, n, delta, model)
        p, dp = p_and_grad(jnp.asarray(b), ts)
        # implicit function theorem on gamma_beta(t*(beta)) = 1 - delta (checked against autodiff
        # through the gamma ODE in tests/test_gradients.py): no extra ODE gradient to compile
        dg = -gamma_rhs(1 - delta, b, n, model) * dts
        rows.append((ts, dts, p, dp, dg))
    t_star, dt_star, p, dp, dg = (jnp.stack(c) for c in zip(*rows))
    return BoundarySensitivity(betas=betas, t_star=t_star, dt_star=dt_star, p_particles=p, dp_particles=dp,
                               dgamma=dg, dp_gamma=dg / (4 * tau))
