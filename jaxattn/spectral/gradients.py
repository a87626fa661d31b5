r"""Gradients through the mean-field PDE on the circle (paper 004 eq. (11)).

[`circle_pde_value_and_grad`][jaxattn.spectral.circle_pde_value_and_grad]: the value and gradient of an observable of the Fourier moments
w.r.t. beta, the initial moments and t1, through diffrax's recursive-checkpoint adjoint
([`jaxattn.grad.checkpointed_adjoint`][jaxattn.checkpointed_adjoint]) of [`jaxattn.spectral.integrate_circle`][jaxattn.spectral.integrate_circle]; it refuses
to return gradients of an unresolved solution (the monitors of [`jaxattn.spectral.solve_circle`][jaxattn.spectral.solve_circle],
[`AbstractSpectralModel.unresolved`][jaxattn.spectral.AbstractSpectralModel.unresolved], run as a terminating event). Results: ``docs/gradients.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Float

from .._validate import check_beta, check_model, check_sign
from ..grad import check_real_scalar, checkpointed_adjoint
from .circle import CircleModel, check_coefficients, from_state, integrate_circle, to_state

__all__ = ["PDEGradients", "circle_pde_value_and_grad"]


class PDEGradients(eqx.Module):
    """Gradient of an observable of the circle PDE solution (see [`circle_pde_value_and_grad`][jaxattn.spectral.circle_pde_value_and_grad]).

    **Attributes:**

    - `beta`: d obs/d beta, a float scalar.
    - `coeffs0`: d obs/d Re mu_k(0) + i d obs/d Im mu_k(0), complex (K+1,) (the k = 0 entry is the
        direction of changing the mass, which a probability density keeps at 1).
    - `t1`: d obs/d t1, a float scalar.
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
            return m.unresolved(y, tail_tol, neg_tol)

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

    **Arguments:**

    - `observable`: a JAX function of the moments, complex (n_save, K+1), to a real scalar.
    - `beta`: the inverse temperature, float > 0.
    - `coeffs0`: the initial moments mu_0..mu_K, complex (K+1,), K >= 2, mu_0 = 1.
    - `t1`: the final time, finite float > 0.
    - `model`: "usa" (default) or "sa".
    - `sign`: +1 (default, V = I) or -1 (V = -I).
    - `n_save`: the number of uniform save times in [0, t1], int >= 2; default 2 (t = 0 and t1).
    - `rtol`: relative tolerance of the PID controller; default 1e-10.
    - `atol`: absolute tolerance of the PID controller; default 1e-12.
    - `checkpoints`: the number of stored solver states of the adjoint (see [`checkpointed_adjoint`][jaxattn.checkpointed_adjoint]); default None.
    - `max_steps`: the step budget; default 100_000.
    - `tail_tol`: the largest admissible relative spectral tail; default 1e-8.
    - `neg_tol`: the largest admissible undershoot of the density, as a fraction of uniform; default 1e-8.

    **Returns:**

    ``(value, grads)``: the observable, a float scalar, and its [`PDEGradients`][jaxattn.spectral.PDEGradients].

    **Raises:**

    - `TypeError`: ``observable`` is not callable.
    - `ValueError`: invalid ``t1``, ``n_save`` or initial moments.
    - `RuntimeError`: resolution is lost before t1, or the solve fails.
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
