r"""Circle particle dynamics by Fourier moments, O(N L) per velocity (digest 004 §4.3).

Since e^{beta cos theta} = sum_l I_l(beta) e^{il theta} and I_l(beta) decays super-exponentially, the
USA angular velocity (paper 004 eq. (10))
    dtheta_i/dt = -(1/N) sum_j e^{beta cos(theta_i-theta_j)} sin(theta_i-theta_j) = Phi'(theta_i),
    Phi(theta) = sum_{|l|<=L} W_l mu_l e^{il theta},  W_l = I_l(beta)/beta,  mu_l = (1/N) sum_j e^{-il theta_j}
is exact to machine precision once L >= 15 sqrt(beta) + 10 (checked against the dense sum in the tests);
SA divides by beta Phi(theta_i). V = -I flips the sign. This is the workhorse for the large-N
experiments of paper 004 (N = 2 10^4 particles: the dense O(N^2) sum would cost 4 10^8 exponentials
per step); :func:`jaxattn.simulate` with ``jaxattn.CircleSelfAttention`` is the general dense solver.
"""

from __future__ import annotations

import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..fields._fourier import fourier_circle_velocity, scaled_bessel_weights
from ._common import check_beta, check_model, check_sign


def default_band(beta: float) -> int:
    """Kernel band L = 15 sqrt(beta) + 10: l W_l / max(l W_l) < 1e-16 beyond it (digest §6.5)."""
    return int(15 * math.sqrt(float(beta)) + 10)


class MomentVelocity(eqx.Module):
    """Angular velocity field theta (..., N) -> dtheta/dt (..., N) of USA/SA on S^1 via L Fourier moments.

    A thin adapter over the library's one Fourier-mode evaluator,
    :func:`jaxattn.fields.fourier_circle_velocity` (the fast path of
    ``jaxattn.CircleSelfAttention(evaluator="fourier")``), adding batch axes and the sign of V = +-I.
    """

    beta: Float[Array, ""]
    weights: Float[Array, " L+1"]
    L: int = eqx.field(static=True)
    model: str = eqx.field(static=True)
    sign: int = eqx.field(static=True)

    def __init__(self, beta, model: str = "usa", sign: int = 1, L: int | None = None):
        check_beta(beta, scalar=False)
        self.model = check_model(model)
        self.sign = check_sign(sign)
        self.L = default_band(beta) if L is None else int(L)
        self.beta = jnp.asarray(beta, dtype=jnp.result_type(float))
        self.weights = scaled_bessel_weights(self.beta, self.L)

    def __call__(self, t, theta, args=None):
        def one(th):
            return fourier_circle_velocity(th, self.beta, self.weights, unnormalised=self.model == "usa")

        for _ in range(theta.ndim - 1):
            one = jax.vmap(one)
        return self.sign * one(theta)


def dense_velocity(theta, beta, model: str = "usa", sign: int = 1):
    """The O(N^2) reference: -(1/N or 1/Z_i) sum_j e^{beta cos(theta_i-theta_j)} sin(theta_i-theta_j)."""
    diff = theta[..., :, None] - theta[..., None, :]
    w = jnp.exp(beta * (jnp.cos(diff) - 1))  # scaled by e^{-beta}
    num = -jnp.sum(w * jnp.sin(diff), axis=-1)
    if model == "usa":
        return sign * num * jnp.exp(beta) / theta.shape[-1]
    return sign * num / jnp.sum(w, axis=-1)


@eqx.filter_jit
def _integrate(field, theta0, ts, rtol, atol, max_steps):
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        diffrax.Tsit5(),
        t0=ts[0],
        t1=ts[-1],
        dt0=None,
        y0=theta0,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
    )
    return sol.ys


def simulate_angles(
    theta0: Float[Array, "... N"],
    beta: float,
    ts,
    model: str = "usa",
    sign: int = 1,
    L: int | None = None,
    rtol: float = 1e-8,
    atol: float = 1e-8,
    max_steps: int = 100_000,
) -> Float[Array, "T ... N"]:
    """Integrate the angle ODE (unwrapped angles) with Tsit5, saving at ``ts``; batch axes are one state."""
    ts = jnp.asarray(ts, dtype=jnp.result_type(float))
    return _integrate(MomentVelocity(beta, model, sign, L), jnp.asarray(theta0), ts, rtol, atol, max_steps)
