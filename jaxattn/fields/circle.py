"""Angle form of the dynamics on the circle S^1 (paper 002 §6).

With x_i = (cos theta_i, sin theta_i) and Q = K = V = I, (USA) becomes paper 002 eq. (6.1)

    dtheta_i/dt = -(1/n) sum_j exp(beta cos(theta_i - theta_j)) sin(theta_i - theta_j),

and (SA) replaces 1/n by 1/Z_i, Z_i = sum_j exp(beta cos(theta_i - theta_j)). Setting
beta = 0 gives the Kuramoto model eq. (6.2) with K = 1 and omega = 0.

Both are evaluated with the shared attention kernel on the embedded points: the kernel
returns y_i = sum_j w_ij x_j and dtheta_i/dt = <y_i, x_i^perp> with
x_i^perp = (-sin theta_i, cos theta_i), because <x_j, x_i^perp> = sin(theta_j - theta_i).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ._attention import attend, attention_weights
from ._base import AbstractField, as_float_array, check_beta, check_finite


def embed_angles(theta: Float[Array, "... n"]) -> Float[Array, "... n 2"]:
    """theta -> (cos theta, sin theta)."""
    return jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=-1)


def angles_of(x: Float[Array, "... n 2"]) -> Float[Array, "... n"]:
    """Points in R^2 -> angles in (-pi, pi]."""
    return jnp.arctan2(x[..., 1], x[..., 0])


def _angular_velocity(theta, y):
    return -jnp.sin(theta) * y[:, 0] + jnp.cos(theta) * y[:, 1]


class CircleSelfAttention(AbstractField):
    """Angle ODE on S^1: paper 002 eq. (6.1) (``unnormalised=True``, USA) or its SA form.

    ``causal=True`` gives the circle form of paper 003's causal dynamics (token i attends
    to j <= i), whose interaction is h(x) = e^{beta(cos x - 1)} sin x after normalisation.
    """

    beta: Float[Array, ""]
    unnormalised: bool = eqx.field(static=True)
    causal: bool = eqx.field(static=True)
    block_size: int | None = eqx.field(static=True)

    manifold = "circle"

    def __init__(self, beta: float | ArrayLike, *, unnormalised: bool = False, causal: bool = False,
                 block_size: int | None = None):
        self.beta = check_beta(beta)
        self.unnormalised = bool(unnormalised)
        self.causal = bool(causal)
        self.block_size = block_size

    def attention_matrix(self, t, theta: Float[Array, " n"]) -> Float[Array, "1 n n"]:
        """Weights exp(beta cos(theta_i - theta_j)) / Z_i (or / n for USA)."""
        x = embed_angles(theta)
        return attention_weights(self.beta * x @ x.T, causal=self.causal,
                                 normalisation="mean" if self.unnormalised else "softmax")[None]

    def velocity(self, t, theta: Float[Array, " n"]) -> Float[Array, " n"]:
        x = embed_angles(theta)
        y = attend(self.beta * x, x, x, normalisation="mean" if self.unnormalised else "softmax",
                   causal=self.causal, block_size=self.block_size)
        return _angular_velocity(theta, y)


class Kuramoto(AbstractField):
    """Kuramoto model, paper 002 eq. (6.2): dtheta_i/dt = omega_i + (K/n) sum_j sin(theta_j - theta_i).

    ``omega`` is a scalar or an (n,) array of natural frequencies. With omega = 0 and
    K = 1 this is eq. (6.1) at beta = 0, and dtheta/dt = n grad F with
    F = (K/(2n^2)) sum_ij cos(theta_i - theta_j), eq. (6.3).
    """

    coupling: Float[Array, ""]
    omega: Float[Array, "*n"]

    manifold = "circle"

    def __init__(self, coupling: float | ArrayLike = 1.0, omega: float | ArrayLike = 0.0):
        self.coupling = as_float_array(coupling, "coupling")
        self.omega = as_float_array(omega, "omega")
        if self.coupling.ndim != 0:
            raise ValueError(f"coupling must be a scalar, got shape {self.coupling.shape}")
        if self.omega.ndim > 1:
            raise ValueError(f"omega must be a scalar or an (n,) array, got shape {self.omega.shape}")
        check_finite(self.coupling, "coupling")
        check_finite(self.omega, "omega")

    def check_shape(self, shape):
        super().check_shape(shape)
        if self.omega.ndim == 1 and self.omega.shape[0] != shape[0]:
            raise ValueError(f"omega has {self.omega.shape[0]} frequencies but there are {shape[0]} oscillators")

    def velocity(self, t, theta: Float[Array, " n"]) -> Float[Array, " n"]:
        x = embed_angles(theta)
        # zero logits: every weight is 1/n, so y_i is the mean of the x_j
        y = attend(jnp.zeros_like(x), x, x, normalisation="mean")
        return self.omega + self.coupling * _angular_velocity(theta, y)
