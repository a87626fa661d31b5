r"""Differentiable parameter studies: optax fits and sensitivity maps.

The library layer is [`jaxattn.grad`][jaxattn.grad] ([`value_and_grad_of`][jaxattn.value_and_grad_of],
[`checkpointed_adjoint`][jaxattn.checkpointed_adjoint], [`fit`][jaxattn.fit]) and, for the circle PDE,
[`jaxattn.spectral.circle_pde_value_and_grad`][jaxattn.spectral.circle_pde_value_and_grad]. The studies built on them:

* `fit_beta_to_clustering_time` - recover beta from an observed clustering time (a test
  recovers a known beta);
* [`maximise_metastable_lifetime`][jaxattn.studies.maximise_metastable_lifetime] - the key matrix K (at fixed Frobenius norm, Q = V = I) that
  maximises a smooth surrogate of the time to a single cluster;
* [`clustering_sensitivity_along_boundary`][jaxattn.studies.gradients.clustering_sensitivity_along_boundary] - d(soft clustering probability at time t)/d beta
  along the phase boundary t = t*(beta) of paper 002 eq. (4.11).

Smooth observables are in `jaxattn.analysis.observables`. Results: ``docs/gradients.md``;
demonstration: ``notebooks/gradients_studies.ipynb`` (plots: [`.figures`][jaxattn.studies.figures]).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .. import initial as _initial
from ..analysis import (
    gamma_crossing_time,
    gamma_rhs,
    soft_clustered_fraction,
    soft_time_to_cluster,
)
from ..fields import AbstractField, SelfAttention, UnnormalisedSelfAttention
from ..grad import FitResult, fit
from ..solve import simulate

__all__ = [
    "BoundarySensitivity",
    "clustering_sensitivity_along_boundary",
    "clustering_time_surrogate",
    "fit_beta_to_clustering_time",
    "maximise_metastable_lifetime",
    "normalised_key_matrix",
]


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
    ``simulate(field, x0, t_max)`` on n_save saved times; one value per ensemble member.

    **Arguments:**

    - `field`: the vector field ([`AbstractField`][jaxattn.fields.AbstractField]).
    - `x0`: the initial tokens, (n, d) or an ensemble (batch, n, d).
    - `t_max`: the horizon (the cap of T_soft).
    - `delta`: the clustering threshold; default 1e-3.
    - `width`: the width of the soft step; default 0.1.
    - `n_save`: the number of saved times in [0, t_max]; default 201.
    - `rtol`: relative tolerance; default 1e-8.
    - `atol`: absolute tolerance; default 1e-8.
    - `simulate_kwargs`: further keyword arguments of [`simulate`][jaxattn.simulate].

    **Returns:**

    T_soft, float () or (batch,).
    """
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

    **Arguments:**

    - `target_time`: the observed clustering time, in (0, t_max).
    - `x0`: the initial tokens, (n, d) or an ensemble (batch, n, d).
    - `t_max`: the horizon.
    - `model`: "sa" (default) or "usa".
    - `beta_init`: the initial beta, finite > 0; default 1.
    - `steps`: the number of Adam steps; default 60.
    - `learning_rate`: Adam's learning rate (in log beta); default 0.1.
    - `surrogate_kwargs`: keyword arguments of `clustering_time_surrogate`.

    **Returns:**

    A [`FitResult`][jaxattn.grad.FitResult] whose ``params`` is beta.

    **Raises:**

    - `ValueError`: ``target_time`` outside (0, t_max), or an invalid ``beta_init``.
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

    With Q = I the attention logits are beta ⟨x_i, K x_j⟩; fixing |K|_F fixes the "temperature
    budget", so a lifetime comparison between K and I at the same beta is fair.

    **Arguments:**

    - `M`: a nonzero matrix, float (d, d).

    **Returns:**

    K, float (d, d), with |K|_F = sqrt(d).
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

    Field: (SA) with Q = V = I and K = `normalised_key_matrix` (M), logits beta ⟨x_i, K x_j⟩
    (paper 002 eq. (2.3)); only Q^T K enters the dynamics, so fixing Q = I loses nothing. Objective:
    the ensemble mean of T_soft (`clustering_time_surrogate`, capped at t_max; ``delta``,
    ``width``, ``n_save`` go to it), maximised over M by Adam. ``result.params`` is the optimised K,
    ``result.losses`` the *negative* mean lifetime per step. Use an ensemble ``x0`` (batch, n, d) so
    the answer is not tuned to one initial condition. Documented result: ``docs/gradients.md``.

    **Arguments:**

    - `x0`: an ensemble of initial tokens, float (batch, n, d).
    - `beta`: the inverse temperature.
    - `t_max`: the horizon (the cap of T_soft).
    - `K_init`: the initial M, (d, d); default None (the identity).
    - `steps`: the number of Adam steps; default 40.
    - `learning_rate`: Adam's learning rate; default 0.05.
    - `rtol`: relative tolerance; default 1e-7.
    - `atol`: absolute tolerance; default 1e-7.
    - `surrogate_kwargs`: keyword arguments of `clustering_time_surrogate`.

    **Returns:**

    A [`FitResult`][jaxattn.grad.FitResult] whose ``params`` is K.

    **Raises:**

    - `ValueError`: ``x0`` is not (batch, n, d), or ``K_init`` is not (d, d).
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
    r"""Table returned by [`clustering_sensitivity_along_boundary`][jaxattn.studies.gradients.clustering_sensitivity_along_boundary] (one entry per beta).

    **Attributes:**

    - `betas`: the inverse temperatures, float (B,).
    - `t_star`: the boundary time `t*(beta)`: `gamma_beta(t*) = 1 - delta` (eq. (4.11)), float (B,).
    - `dt_star`: `dt*/dbeta`, float (B,).
    - `p_particles`: the ensemble mean soft clustered fraction at `(beta, t*)`, float (B,).
    - `dp_particles`: its d/dbeta at fixed `t = t*` (autodiff through simulate), float (B,).
    - `dgamma`: d gamma_beta(t)/dbeta at `t = t*`, `= -gamma'(t*) dt*/dbeta` (implicit function theorem), float (B,).
    - `dp_gamma`: the gamma-model prediction s'(0) dgamma/tau = dgamma / (4 tau), float (B,).
    """

    betas: Array
    t_star: Array
    dt_star: Array
    p_particles: Array
    dp_particles: Array
    dgamma: Array
    dp_gamma: Array


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
    r"""Sensitivity map d P(beta, t)/d beta along the phase boundary `t = t*(beta)` of paper 002.

    P is the smooth clustering probability: the ensemble mean of
    [`jaxattn.analysis.soft_clustered_fraction`][jaxattn.analysis.soft_clustered_fraction] (delta, tau) for ``batch`` i.i.d. uniform
    initial conditions on S^{d-1} drawn with ``key`` (or the given ``x0``, one configuration or an
    ensemble, e.g. ``jaxattn.initial.orthogonal_frame(n, d)``); the boundary is `gamma_beta(t*) = 1 - delta` with gamma from
    Theorem 4.6 (eqs. (4.8)/(4.9), (4.11)). Theorem 4.7 says random tokens in large d track gamma, so
    the gamma-model prediction is P = s((gamma - (1 - delta))/tau), i.e. 1/2 on the boundary with
    dP/dbeta = dgamma/dbeta / (4 tau); both are returned for comparison (they agree as d grows).
    By the implicit function theorem `dgamma/dbeta = -gamma'(t*) dt*/dbeta` on the boundary.

    **Arguments:**

    - `betas`: the inverse temperatures, a scalar or 1-D.
    - `n`: the number of tokens.
    - `d`: the dimension.
    - `key`: a JAX PRNG key for uniform initial conditions; default None (then ``x0`` is needed).
    - `batch`: the number of initial conditions drawn with ``key``; default 4.
    - `x0`: initial tokens, (n, d) or (batch, n, d), instead of ``key``; default None.
    - `delta`: the clustering threshold; default 1e-2.
    - `tau`: the width of the soft step; default None (delta / 4).
    - `model`: "sa" (default) or "usa".
    - `rtol`: relative tolerance; default 1e-7.
    - `atol`: absolute tolerance; default 1e-7.

    **Returns:**

    A [`BoundarySensitivity`][jaxattn.studies.gradients.BoundarySensitivity].

    **Raises:**

    - `ValueError`: ``betas`` not 0-D or 1-D, neither ``key`` nor ``x0``, or ``x0`` of the wrong shape.
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
