r"""Differentiable parameter studies: gradients through particle and PDE dynamics, and optax fits.

Gradients
---------
:func:`jaxattn.simulate` is already differentiable: build the field *inside* the differentiated
function and ``jax.grad`` reaches beta, Q, K, V, x0 and t1. The helpers here only make that pleasant:

* :func:`value_and_grad_of` ``(observable, field, x0, t1)`` -> (value, :class:`Gradients`) with the
  gradient as a field-shaped pytree (``grads.field.beta``, ``grads.field.Q``, ...), the Riemannian
  gradient in x0 (projected on the tangent space of the sphere, since x0 lives on it) and d/dt1;
* :func:`circle_pde_value_and_grad` does the same for the mean-field PDE on the circle (paper 004
  eq. (11), solved by :func:`jaxattn.spectral.integrate_circle`) w.r.t. beta, the initial Fourier
  moments and t1, and refuses to return gradients of an unresolved solution.

Adjoint and the memory/time knob
--------------------------------
Reverse mode uses diffrax's ``RecursiveCheckpointAdjoint`` (discretise-then-optimise: the exact
derivative of the computed solution). ``checkpoints=c`` stores c copies of the solver's loop state
and recomputes the steps in between (online binomial checkpointing, Stumm & Walther 2010): memory is
O(c x state) *independent of the number of steps S*, and the backward pass recomputes each step about
once while S <= (c+1)(c+2)/2, more (logarithmically) beyond. ``None`` (the default) takes equinox's
choice for the step budget, the smallest c with (c+1)(c+2)/2 > max_steps: c = 361 for simulate's
max_steps = 65536 (diffrax's docstring says log(max_steps); the installed equinox uses this square
root). Memory-bound runs (large n) should pass e.g. ``checkpoints=16``. Measured by
``benchmarks/gradients.py`` (``docs/gradients.md``): value+grad over forward ~4-5x at n = 32 and
~4x at n = 256 (beta = 9, T = 10), and the compiled memory of the gradient is the same for T = 10,
40, 160 (19 to 112 steps) at fixed c, and shrinks with c.

**BacksolveAdjoint is refused** (``ValueError``): it integrates the state backwards in time, and
clustering dynamics contract forwards, so the backward problem is exponentially unstable (ecosystem
report §3.5: 158x wrong at n = 32, beta = 9, T = 10; a slow test reproduces a wrong gradient with
diffrax directly). Through ``simulate`` it could not differentiate the field parameters anyway
(they are closed over, not passed as diffrax ``args``). Recursive checkpointing costs 3-8x a forward solve and is accurate to
the forward solve's own tolerance.

Studies with optax
------------------
* :func:`fit` - a thin optax loop over any differentiable loss of a pytree of parameters;
* :func:`fit_beta_to_clustering_time` - recover beta from an observed clustering time (a test
  recovers a known beta);
* :func:`maximise_metastable_lifetime` - the key matrix K (at fixed Frobenius norm, Q = V = I) that
  maximises a smooth surrogate of the time to a single cluster;
* :func:`clustering_sensitivity_along_boundary` - d(soft clustering probability at time t)/d beta
  along the phase boundary t = t*(beta) of paper 002 eq. (4.11).
Smooth observables are in :mod:`jaxattn.analysis.observables`. See ``notebooks/gradients_studies.ipynb``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Complex, Float, PRNGKeyArray

from .. import initial as _initial
from ..fields._base import AbstractField, tangent_projection
from ..fields.sphere import SelfAttention, UnnormalisedSelfAttention
from ..analysis import (
    gamma_crossing_time,
    gamma_rhs,
    soft_clustered_fraction,
    soft_time_to_cluster,
)
from ..solve import Trajectory, check_initial_tokens, simulate

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
# adjoint


def checkpointed_adjoint(checkpoints: int | None = None) -> diffrax.RecursiveCheckpointAdjoint:
    """``diffrax.RecursiveCheckpointAdjoint(checkpoints)``, validated (module docstring: the knob).

    ``checkpoints``: number of stored solver states (memory ~ checkpoints x state size, independent
    of the number of steps); None: equinox's default, the smallest c with (c+1)(c+2)/2 > max_steps
    (361 for max_steps = 65536), for which no step is recomputed more than about once.
    """
    if checkpoints is not None and (
        isinstance(checkpoints, bool) or not isinstance(checkpoints, (int, np.integer)) or checkpoints < 1
    ):
        raise ValueError(f"checkpoints must be a positive int or None, got {checkpoints!r}")
    return diffrax.RecursiveCheckpointAdjoint(checkpoints=None if checkpoints is None else int(checkpoints))


_BACKSOLVE_MESSAGE = (
    "BacksolveAdjoint refused: it solves the state backwards in time, and self-attention dynamics "
    "contract forwards (tokens cluster), so the backward solve is exponentially unstable and the "
    "gradient is wrong beyond the initial transient (measured: 158x off at n = 32, beta = 9, T = 10). "
    "(It also cannot differentiate the field parameters that simulate closes over.) Use the default "
    "recursive checkpointing: checkpoints=... trades memory for time."
)


def _resolve_adjoint(adjoint, checkpoints):
    if adjoint is None:
        return checkpointed_adjoint(checkpoints)
    if checkpoints is not None:
        raise ValueError("pass either adjoint=... or checkpoints=..., not both")
    if not isinstance(adjoint, diffrax.AbstractAdjoint):
        raise TypeError(f"adjoint must be a diffrax adjoint, got {type(adjoint).__name__}")
    if isinstance(adjoint, diffrax.BacksolveAdjoint):
        raise ValueError(_BACKSOLVE_MESSAGE)
    return adjoint


def _check_scalar(value, what: str):
    if not (hasattr(value, "shape") and value.shape == ()) or not jnp.issubdtype(value.dtype, jnp.floating):
        raise TypeError(
            f"{what} must return a real scalar (shape ()), got "
            f"{getattr(value, 'dtype', type(value).__name__)} of shape {getattr(value, 'shape', None)}"
        )


# ----------------------------------------------------------------------------------------------
# particles


class Gradients(eqx.Module):
    """Gradient of an observable of a :class:`jaxattn.Trajectory`.

    * ``field``: a pytree shaped like the field whose array leaves are d obs / d leaf
      (``grads.field.beta``, ``.Q``, ``.K``, ``.V``; None where the field had None);
    * ``x0``: d obs / d x0; on the sphere the Riemannian gradient P_{x_i} (d obs / d x_i(0)), so
      obs(retract(x0 + h v)) = obs(x0) + h <x0 gradient, v> + O(h^2) for tangent v;
    * ``t1``: d obs / d t1 (the saved times move with t1 when ``ts`` is an int or None).
    """

    field: Any
    x0: Array
    t1: Array


@eqx.filter_jit
def _particle_value_and_grad(observable, field_dyn, field_static, x0, t1, adjoint, kwargs):
    def objective(args):
        f_dyn, x, t = args
        traj = simulate(eqx.combine(f_dyn, field_static), x, t, adjoint=adjoint, **kwargs)
        value = observable(traj)
        _check_scalar(value, "the observable")
        return value

    return jax.value_and_grad(objective)((field_dyn, x0, t1))


def value_and_grad_of(
    observable: Callable[[Trajectory], Float[Array, ""]],
    field: AbstractField,
    x0: ArrayLike,
    t1: float | ArrayLike,
    *,
    checkpoints: int | None = None,
    adjoint: diffrax.AbstractAdjoint | None = None,
    **simulate_kwargs,
) -> tuple[Float[Array, ""], Gradients]:
    r"""(observable(simulate(field, x0, t1, ...)), gradients w.r.t. the field's arrays, x0 and t1).

    One reverse pass gives every gradient (the cost is the same for one or all of them). The whole
    thing is jit-compiled once per observable/field structure; new parameter values reuse it.

    Args:
        observable: ``Trajectory -> real scalar``, e.g.
            ``lambda tr: jaxattn.analysis.mean_inner_product(tr.final)``.
        field, x0, t1: as for :func:`jaxattn.simulate` (x0 a single configuration or an ensemble).
        checkpoints: the memory/time knob of the recursive-checkpoint adjoint (module docstring).
        adjoint: any other diffrax adjoint (``DirectAdjoint`` for forward+reverse mode);
            ``BacksolveAdjoint`` raises ValueError (module docstring).
        **simulate_kwargs: passed to :func:`jaxattn.simulate` (``ts``, ``rtol``, ``atol``, ...).

    Example::

        value, g = value_and_grad_of(lambda tr: mean_inner_product(tr.final),
                                     jaxattn.SelfAttention(4.0), x0, 5.0, rtol=1e-8, atol=1e-8)
        g.field.beta, g.x0, g.t1
    """
    if not callable(observable):
        raise TypeError(f"observable must be a callable Trajectory -> scalar, got {type(observable).__name__}")
    if not isinstance(field, AbstractField):
        raise TypeError(f"field must be a jaxattn field (an AbstractField), got {type(field).__name__}")
    if "adjoint" in simulate_kwargs:
        raise TypeError("pass the adjoint as value_and_grad_of(..., adjoint=...)")
    adjoint = _resolve_adjoint(adjoint, checkpoints)
    x0 = jnp.asarray(x0)
    if not jnp.issubdtype(x0.dtype, jnp.floating):
        raise TypeError(f"x0 must be real floating point, got dtype {x0.dtype}")
    check_initial_tokens(field, x0)
    t0 = float(simulate_kwargs.get("t0", 0.0))
    t1n = np.asarray(t1, dtype=float)
    if t1n.ndim != 0 or not np.isfinite(t1n) or not float(t1n) > t0:
        raise ValueError(f"t1 must be a finite scalar > t0 = {t0}, got {t1!r}")
    # cast parameters to the precision of x0 (as simulate does) so t1 and beta are traced arrays
    field = jax.tree_util.tree_map(
        lambda a: a.astype(x0.dtype) if eqx.is_inexact_array(a) else a, field
    )
    field_dyn, field_static = eqx.partition(field, eqx.is_inexact_array)
    value, (g_field, g_x0, g_t1) = _particle_value_and_grad(
        observable, field_dyn, field_static, x0, jnp.asarray(t1, dtype=x0.dtype), adjoint, simulate_kwargs
    )
    if field.manifold == "sphere":
        g_x0 = tangent_projection(x0, g_x0)
    return value, Gradients(field=g_field, x0=g_x0, t1=g_t1)


# ----------------------------------------------------------------------------------------------
# circle PDE


class PDEGradients(eqx.Module):
    """Gradient of an observable of the circle PDE solution (see :func:`circle_pde_value_and_grad`).

    ``beta``, ``t1`` scalars; ``coeffs0`` complex (K+1,): d obs/d Re mu_k(0) + i d obs/d Im mu_k(0)
    (the k = 0 entry is the direction of changing the mass, which a probability density keeps at 1).
    """

    beta: Array
    coeffs0: Array
    t1: Array


@eqx.filter_jit
def _pde_value_and_grad(observable, beta, y0, t1, K, model, sign, n_save, rtol, atol, adjoint, max_steps,
                        tail_tol, neg_tol):
    from ..spectral.circle import CircleModel, from_state, integrate_circle

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
        _check_scalar(value, "the observable")
        c_ok = jnp.where(jnp.isfinite(c), c, 0)
        return value, (sol.event_mask, m.tail(c_ok), m.min_density(c_ok))

    return jax.value_and_grad(objective, has_aux=True)((beta, y0, t1))


def circle_pde_value_and_grad(
    observable: Callable[[Complex[Array, "T K+1"]], Float[Array, ""]],
    beta: float | ArrayLike,
    coeffs0: Complex[ArrayLike, " K+1"],
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
    :mod:`jaxattn.spectral.circle` (paper 004 eq. (11); USA or SA velocity, V = sign I). ``mu`` is
    the (n_save, K+1) array of complex Fourier moments mu_k(t), k = 0..K, at n_save uniform times in
    [0, t1] (so ``mu[-1]`` is mu(t1)), K + 1 = len(coeffs0). Gradients are w.r.t. beta, the initial
    moments and t1, through diffrax's recursive-checkpoint adjoint.

    Resolution honesty: the solution (and therefore its gradient) is only meaningful while the K
    modes resolve it. The monitors of :func:`jaxattn.spectral.solve_circle` run as a terminating event:
    if the spectral tail max_{k > 7K/8}|mu_k| exceeds ``tail_tol`` or the density drops below
    -``neg_tol``/(2 pi) before t1, this raises RuntimeError (as ``solve_circle(on_unresolved="raise")``).

    Example (paper 004 test 25): ``circle_pde_value_and_grad(lambda mu: jnp.abs(mu[-1, 3])**2, 5.0,
    c0, 0.2)``; in the linear phase its beta-gradient is 2 T (d gamma_3/d beta) |mu_3(T)|^2 with
    gamma_k = k^2 I_k(beta)/beta (a test).
    """
    from ..spectral.circle import _check_coeffs, to_state
    from .._validate import check_beta, check_model, check_sign

    if not callable(observable):
        raise TypeError("observable must be a callable (moments (n_save, K+1) complex) -> real scalar")
    check_beta(beta, scalar=False)
    model = check_model(model)
    sign = check_sign(sign)
    c0 = _check_coeffs(coeffs0)
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
# optax


class FitResult(eqx.Module):
    """Result of :func:`fit`: final ``params``, ``losses`` per step (the loss *before* each update,
    then the final loss), and ``history`` (params before each update, then the final params;
    stacked leaves)."""

    params: Any
    losses: Array
    history: Any


def fit(
    loss: Callable[[Any], Float[Array, ""]],
    params: Any,
    *,
    optimizer: optax.GradientTransformation | None = None,
    steps: int = 100,
) -> FitResult:
    """Minimise ``loss(params)`` with optax (default ``optax.adam(0.05)``) for ``steps`` updates.

    ``params`` is any pytree of float arrays; the update step is jit-compiled once. A non-finite
    loss or gradient raises FloatingPointError naming the step (no silent NaN).
    """
    if not callable(loss):
        raise TypeError("loss must be a callable params -> scalar")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    optimizer = optax.adam(0.05) if optimizer is None else optimizer
    params = jax.tree_util.tree_map(jnp.asarray, params)
    opt_state = optimizer.init(params)

    @eqx.filter_jit
    def step(p, s):
        value, g = jax.value_and_grad(loss)(p)
        updates, s = optimizer.update(g, s, p)
        finite = jnp.isfinite(value) & jnp.all(
            jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(g)])
        )
        return optax.apply_updates(p, updates), s, value, finite

    losses, history = [], []
    for i in range(steps):
        history.append(params)
        params, opt_state, value, finite = step(params, opt_state)
        if not bool(finite):
            raise FloatingPointError(
                f"fit: loss or gradient is not finite at step {i} (loss = {float(value)}); lower the "
                "learning rate, tighten the solver tolerances, or reparameterise"
            )
        losses.append(value)
    history.append(params)
    losses.append(loss(params))
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *history)
    return FitResult(params=params, losses=jnp.stack(losses), history=stacked)


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
    r"""Soft time to a single cluster T_soft (:func:`jaxattn.analysis.soft_time_to_cluster`) of
    ``simulate(field, x0, t_max)`` on n_save saved times; one value per ensemble member."""
    tr = simulate(field, x0, t_max, ts=n_save, rtol=rtol, atol=atol, **simulate_kwargs)
    return soft_time_to_cluster(tr.xs, tr.ts, delta, width)


_FIELDS = {"sa": SelfAttention, "usa": UnnormalisedSelfAttention}


def _field_class(model: str):
    if not isinstance(model, str) or model.lower() not in _FIELDS:
        raise ValueError(f"model must be 'sa' or 'usa', got {model!r}")
    return _FIELDS[model.lower()]


def fit_beta_to_clustering_time(
    target_time: float,
    x0: ArrayLike,
    t_max: float,
    *,
    model: Literal["sa", "usa"] = "sa",
    beta_init: float = 1.0,
    delta: float = 1e-3,
    width: float = 0.1,
    n_save: int = 201,
    steps: int = 60,
    learning_rate: float = 0.1,
    rtol: float = 1e-8,
    atol: float = 1e-8,
) -> FitResult:
    r"""Recover beta from an observed clustering time: minimise ((T_soft(beta) - t_obs)/t_obs)^2.

    T_soft(beta) is :func:`clustering_time_surrogate` of the (SA) or (USA) field with Q = K = V = I
    from ``x0`` (one configuration, or an ensemble whose mean time is matched). beta = exp(s) is
    optimised in s = log beta with Adam(``learning_rate``), so it stays positive. ``result.params``
    is beta (and ``result.history`` the betas). The target must lie inside (0, t_max): a
    configuration that never clusters before t_max has zero gradient.
    """
    cls = _field_class(model)
    if not (np.isfinite(target_time) and 0 < target_time < t_max):
        raise ValueError(f"target_time must be in (0, t_max = {t_max}), got {target_time!r}")
    if not (np.isfinite(beta_init) and beta_init > 0):
        raise ValueError(f"beta_init must be finite and > 0, got {beta_init!r}")
    x0 = jnp.asarray(x0)

    def loss(s):
        T = clustering_time_surrogate(cls(jnp.exp(s)), x0, t_max, delta=delta, width=width, n_save=n_save,
                                      rtol=rtol, atol=atol)
        return (jnp.mean(T) / target_time - 1.0) ** 2

    res = fit(loss, jnp.log(jnp.asarray(beta_init, x0.dtype)), optimizer=optax.adam(learning_rate),
              steps=steps)
    return FitResult(params=jnp.exp(res.params), losses=res.losses, history=jnp.exp(res.history))


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
    delta: float = 1e-3,
    width: float = 0.1,
    n_save: int = 201,
    steps: int = 40,
    learning_rate: float = 0.05,
    rtol: float = 1e-7,
    atol: float = 1e-7,
) -> FitResult:
    r"""Maximise the mean soft time to a single cluster over the key matrix K, at fixed |K|_F.

    Field: (SA) with Q = V = I and K = :func:`normalised_key_matrix` (M), logits beta <x_i, K x_j>
    (paper 002 eq. (2.3)); only Q^T K enters the dynamics, so fixing Q = I loses nothing. Objective:
    the ensemble mean of T_soft (:func:`jaxattn.analysis.soft_time_to_cluster`, capped at t_max),
    maximised over M by Adam. ``result.params`` is the optimised K, ``result.losses`` the *negative*
    mean lifetime per step. Use an ensemble ``x0`` (batch, n, d) so the answer is not tuned to one
    initial condition. Documented result: ``docs/gradients.md``.
    """
    x0 = jnp.asarray(x0)
    if x0.ndim != 3:
        raise ValueError(f"x0 must be an ensemble (batch, n, d), got shape {x0.shape}")
    d = x0.shape[-1]
    M0 = jnp.eye(d, dtype=x0.dtype) if K_init is None else jnp.asarray(K_init, x0.dtype)
    if M0.shape != (d, d):
        raise ValueError(f"K_init must be ({d}, {d}), got {M0.shape}")

    def loss(M):
        field = SelfAttention(beta, K=normalised_key_matrix(M))
        T = clustering_time_surrogate(field, x0, t_max, delta=delta, width=width, n_save=n_save, rtol=rtol,
                                      atol=atol)
        return -jnp.mean(T)

    res = fit(loss, M0, optimizer=optax.adam(learning_rate), steps=steps)
    return FitResult(params=normalised_key_matrix(res.params), losses=res.losses,
                     history=jax.vmap(normalised_key_matrix)(res.history))


class BoundarySensitivity(eqx.Module):
    r"""Table returned by :func:`clustering_sensitivity_along_boundary` (one entry per beta)."""

    betas: Array
    t_star: Array        #: boundary time t*(beta): gamma_beta(t*) = 1 - delta (eq. (4.11))
    dt_star: Array       #: dt*/dbeta
    p_particles: Array   #: ensemble mean soft clustered fraction at (beta, t*)
    dp_particles: Array  #: its d/dbeta at fixed t = t* (autodiff through simulate)
    dgamma: Array        #: d gamma_beta(t)/dbeta at t = t*, = -gamma'(t*) dt*/dbeta (implicit function thm)
    dp_gamma: Array      #: the gamma-model prediction s'(0) dgamma/tau = dgamma / (4 tau)


def clustering_sensitivity_along_boundary(
    betas: ArrayLike,
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
    :func:`jaxattn.analysis.soft_clustered_fraction` (delta, tau) for ``batch`` i.i.d. uniform
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
