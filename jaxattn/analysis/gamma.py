r"""The scalar ODE of Theorem 4.6 (Geshkovski, Letrouit, Polyanskiy, Rigollet, "A mathematical perspective on
Transformers", 2023) and the phase boundary.

With orthogonal initial tokens x_i(0) = e_i (d >= n) every pairwise inner product equals gamma_beta(t),
gamma(0) = 0, with

* (SA),  eq. (4.8):  gamma' = 2 e^{beta gamma}(1 - gamma)((n-1) gamma + 1) / (e^beta + (n-1) e^{beta gamma})
                            = 2 (1 - gamma)((n-1) gamma + 1) / (e^{beta (1 - gamma)} + n - 1);
* (USA), eq. (4.9):  gamma' = (2/n) e^{beta gamma}(1 - gamma)((n-1) gamma + 1)

(the factor 2/n of (4.9) is missing from the printed paper: ``docs/errata.md``).

The phase boundary (4.11) is the curve gamma_beta(t) = 1 - delta in the (beta, t) plane. Its time
t*(beta) is computed without root finding as a smooth integral: with gamma = 1 - e^{-u},
gamma' = (1 - gamma) h(gamma) gives dt/du = 1 / h(gamma(u)), so

      t*(beta) = \int_0^{log(1/delta)} du / h(1 - e^{-u}),

an integrand bounded on the whole range, integrated with diffrax and differentiable in beta.
Reference values (n = 32, delta = 1e-2, SA): ``t*(1) = 4.1145``, ``t*(5) = 8.3879``, ``t*(9) = 177.57``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import diffrax
import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Real

from .._special import refuse
from .._validate import check_beta, check_model, check_save_times, crossing_delta_rule, enforce

__all__ = ["gamma_crossing_time", "gamma_rhs", "gamma_trajectory"]

GammaModel = Literal["sa", "usa", "SA", "USA"]  # parameters take `GammaModel | str`: check_model raises its own ValueError naming the choices


def _check_gamma_args(beta, n, model) -> str:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an int >= 2 (number of tokens), got {n!r}")
    model = check_model(model)
    check_beta(beta, allow_zero=True)  # the (4.8)/(4.9) ODEs are defined at beta = 0 too
    return model


def _h(gamma, beta, n: int, model: str):
    """gamma' = (1 - gamma) h(gamma): the factor of (4.8)/(4.9) without (1 - gamma)."""
    lin = (n - 1) * gamma + 1
    if model == "sa":
        # (4.8) divided through by e^{beta gamma}: overflow-free for large beta
        return 2 * lin / (jnp.exp(beta * (1 - gamma)) + (n - 1))
    return (2.0 / n) * jnp.exp(beta * gamma) * lin


def gamma_rhs(gamma: ArrayLike, beta: ArrayLike, n: int, model: GammaModel | str = "sa") -> Array:
    r"""The right-hand side gamma' of eq. (4.8) (SA) or (4.9) (USA) of Theorem 4.6 (module docstring).

    **Arguments:**

    - `gamma`: the common inner product, float (any shape), in [0, 1] along the solution.
    - `beta`: the inverse temperature, finite and >= 0 (the ODEs are defined at beta = 0 too).
    - `n`: the number of tokens, an int >= 2.
    - `model`: ``"sa"`` (default, eq. (4.8)) or ``"usa"`` (eq. (4.9)), case-insensitive.

    **Returns:**

    gamma', the shape of ``gamma``.

    **Raises:**

    - `ValueError`: ``n`` not an int >= 2, an unknown ``model``, beta not finite or < 0.
    """
    model = _check_gamma_args(beta, n, model)
    gamma = jnp.asarray(gamma)
    return (1 - gamma) * _h(gamma, beta, n, model)


# Module-level jitted solves: n, model, tolerances and solver are static, beta/ts/delta traced, so
# a new beta does not recompile (a lambda built per call would).
@eqx.filter_jit
def _gamma_solve(beta, ts, n, model, rtol, atol, solver, max_steps):
    t_end = jnp.maximum(ts[-1], 1e-12)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, g, b: (1 - g) * _h(g, b, n, model)),
        diffrax.Tsit5() if solver is None else solver,
        0.0,
        t_end,
        None,
        jnp.zeros((), ts.dtype),
        args=beta,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
    )
    return sol.ys


@eqx.filter_jit
def _crossing_solve(beta, delta, n, model, rtol, atol):
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda u, t, b: 1.0 / _h(1 - jnp.exp(-u), b, n, model)),
        diffrax.Tsit5(),
        0.0,
        -jnp.log(delta),
        None,
        jnp.zeros((), beta.dtype),
        args=beta,
        saveat=diffrax.SaveAt(t1=True),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=100_000,
        throw=False,
    )
    return sol.ys[-1], sol.result == diffrax.RESULTS.successful


def gamma_trajectory(
    beta: ArrayLike,
    n: int,
    ts: Real[ArrayLike, " T"] | Sequence[Real[ArrayLike, ""]],
    model: GammaModel | str = "sa",
    *,
    rtol: float = 1e-11,
    atol: float = 1e-13,
    solver: diffrax.AbstractSolver | None = None,
    max_steps: int = 100_000,
) -> Float[Array, " T"]:
    r"""gamma_beta(t) at the times ``ts`` (ts[0] >= 0), from gamma(0) = 0 by eq. (4.8)/(4.9).

    Differentiable in ``beta`` (diffrax recursive-checkpoint adjoint). Compiled once per (n, model,
    tolerances, solver): a new beta or new times do not recompile.

    **Arguments:**

    - `beta`: the inverse temperature, finite and >= 0 (the ODEs are defined at beta = 0 too).
    - `n`: the number of tokens, an int >= 2.
    - `ts`: the save times, a finite, non-decreasing 1-d array with ts[0] >= 0.
    - `model`: ``"sa"`` (default, eq. (4.8)) or ``"usa"`` (eq. (4.9)), case-insensitive.
    - `rtol`: relative tolerance of the PID controller; default 1e-11.
    - `atol`: absolute tolerance; default 1e-13.
    - `solver`: a diffrax solver; default None: ``diffrax.Tsit5()``. USA is stiff near gamma = 1 (its
        rate there is 2 e^beta): for beta >~ 6 pass ``solver=diffrax.Kvaerno5()``.
    - `max_steps`: the step budget; default 100000.

    **Returns:**

    gamma_beta(ts), float (T,), in [0, 1).

    **Raises:**

    - `ValueError`: ``n`` not an int >= 2, an unknown ``model``, beta not finite or < 0; ``ts`` not 1-d, not finite, decreasing or with a negative time.
    - `RuntimeError`: diffrax's failure (e.g. ``max_steps`` reached on a stiff USA solve).
    """
    model = _check_gamma_args(beta, n, model)
    ts = check_save_times(ts, t0=0.0)
    return _gamma_solve(jnp.asarray(beta, dtype=ts.dtype), ts, n, model, rtol, atol, solver, max_steps)


def gamma_crossing_time(
    beta: ArrayLike,
    n: int,
    delta: float = 1e-2,
    model: GammaModel | str = "sa",
    *,
    rtol: float = 1e-11,
    atol: float = 1e-13,
) -> Float[Array, ""]:
    r"""Phase-boundary time ``t*(beta)`` with ``gamma_beta(t*) = 1 - delta`` (eq. (4.11)).

    ``t* = \int_0^{log(1/delta)} du / h(1 - e^{-u})`` (module docstring), a smooth function of beta, so
    ``jax.grad`` gives ``dt*/dbeta``. By the implicit function theorem, along the boundary
    ``d gamma_beta(t)/d beta |_{t = t*} = -gamma'(t*) dt*/dbeta`` (a test). Reference values (n = 32,
    delta = 1e-2, SA): ``t*(1) = 4.1145``, ``t*(5) = 8.3879``, ``t*(9) = 177.57``.

    **Arguments:**

    - `beta`: the inverse temperature, finite and >= 0 (the ODEs are defined at beta = 0 too).
    - `n`: the number of tokens, an int >= 2.
    - `delta`: the level 1 - delta crossed, in (0, 1); default 1e-2.
    - `model`: ``"sa"`` (default, eq. (4.8)) or ``"usa"`` (eq. (4.9)), case-insensitive.
    - `rtol`: relative tolerance of the integral's solve; default 1e-11.
    - `atol`: absolute tolerance; default 1e-13.

    **Returns:**

    ``t*(beta)``, a float scalar.

    **Raises:**

    - `ValueError`: ``n`` not an int >= 2, an unknown ``model``, beta not finite or < 0; ``delta`` outside (0, 1).
    """
    model = _check_gamma_args(beta, n, model)
    enforce([crossing_delta_rule(delta)], None)
    dtype = jnp.result_type(float)
    t_star, solved = _crossing_solve(jnp.asarray(beta, dtype), jnp.asarray(delta, dtype), n, model, rtol, atol)
    return refuse(t_star, ~solved | ~jnp.isfinite(t_star), (
        f"gamma_crossing_time: t*(beta) could not be computed ({model.upper()}, n = {n}). For SA the crossing "
        "time grows like e^beta / (2 beta) (5.8e304 at beta = 709): beyond beta ~ 709.7 it is not representable "
        "in float64; otherwise loosen rtol/atol (the integral took more than 100,000 steps)"))
