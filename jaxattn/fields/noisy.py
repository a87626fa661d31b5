"""Noisy attention dynamics: every token diffuses on its manifold (Rigollet 2025, "The mean-field dynamics of
Transformers", §6 "Noisy Transformers"):

    dX_i = b_i(X) dt + sqrt(2 / kappa) P_{X_i} o dW_i,        W_i independent standard Brownian motions,

with b the drift of any field (e.g. (USA) on the sphere, the survey's model, or its angle form on the circle).

**Convention (Stratonovich, projected).** The noise is the Stratonovich differential ``o dW`` of an ambient
Brownian motion W in R^d projected on the tangent space ([`jaxattn.manifolds.AbstractManifold.project`][jaxattn.manifolds.AbstractManifold.project]).
On the sphere S^{d-1} this is Brownian motion with generator kappa^{-1} Delta_{S^{d-1}} (Hsu 2002, "Stochastic
analysis on manifolds", §3.2; E <X_t, X_0> = e^{-(d - 1) t / kappa} for the pure noise), and the solution stays on
the sphere. The same process in Itô form carries a drift correction,

    dX = [ b(X) - ((d - 1) / kappa) X ] dt + sqrt(2 / kappa) P_X dW        (sphere; Itô).

``jaxattn.simulate`` integrates the Stratonovich form and retracts the states to the manifold after every step.
Stratonovich solvers (its default ``diffrax.Heun()``, ``EulerHeun``, ``Midpoint``) converge to the process as
they are. An Itô solver (``diffrax.Euler``) followed by the retraction x -> x/|x| is the projected
Euler-Maruyama scheme, which converges to the same process without an explicit correction: normalising
x + sigma P_x dW shrinks x by (sigma^2 / 2) |P_x dW|^2, i.e. by ((d - 1) / kappa) x dt on average, the Itô drift
above (the retraction removes any radial drift, so adding the correction would change nothing at first order).
On the circle the angles diffuse additively, dtheta_i = b_i dt + sqrt(2 / kappa) dW_i, and Itô = Stratonovich.

**Fokker-Planck equation** of the mean-field limit: d mu/dt = kappa^{-1} Delta mu - div(mu b[mu]). (Rigollet 2025
prints it with both signs of the right-hand side reversed; docs/normalisation.md, "Noise".) Its thresholds and
stationary states: `jaxattn.spectral.noisy`.
"""

from __future__ import annotations

import abc
from typing import Literal

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, Real

from .._validate import as_float_array, enforce, positive_rule
from ..manifolds import AbstractManifold
from ._base import AbstractField, parameter

BrownianKind = Literal["virtual", "unsafe"]


def _kappa_rule(kappa):
    return positive_rule(kappa, "kappa (the inverse noise level: noise sqrt(2/kappa) dW)")


class AbstractStochasticField(AbstractField):
    """A field with noise, dX = velocity(t, X) dt + diffusion(t, X) o dW in the Stratonovich sense (module
    docstring). ``jaxattn.simulate`` integrates it as a diffrax SDE: the drift and a control term driven by
    [`brownian_motion`][jaxattn.fields.AbstractStochasticField.brownian_motion], the states retracted to the manifold after every step.
    """

    @abc.abstractmethod
    def diffusion(self, t: Real[ArrayLike, ""], x: Array) -> lx.AbstractLinearOperator:
        """The linear map dW -> dX at (t, X), for one configuration or a batch of them (any leading axes)."""

    @abc.abstractmethod
    def brownian_motion(self, t0: Real[ArrayLike, ""], t1: Real[ArrayLike, ""], shape: tuple[int, ...], dtype,
                        dt0: Real[ArrayLike, ""] | None) -> diffrax.AbstractBrownianPath:
        """The Brownian motion W of the given shape (one configuration, or an ensemble's) on [t0, t1]."""


class NoisyField(AbstractStochasticField):
    """The field ``drift`` with tangent Brownian noise of intensity sqrt(2 / kappa) (module docstring):

        dX_i = drift_i(X) dt + sqrt(2 / kappa) P_{X_i} o dW_i        (Stratonovich)

    (Rigollet 2025, §6; kappa -> infinity recovers ``drift``). With ``drift = UnnormalisedSelfAttention(beta)``
    this is the survey's noisy Transformer; with ``drift = Kuramoto()`` (or ``CircleSelfAttention(beta,
    unnormalised=True)`` at beta -> 0) the noisy Kuramoto model, whose uniform state loses stability at kappa = 2.

    Args:
        drift: any field; its manifold is this field's manifold.
        kappa: inverse noise level (> 0).
        key: PRNG key of the Brownian motion (``simulate`` integrates a noisy ensemble as one batched state
            with one Brownian motion of the ensemble's shape: its members get independent noise).
        brownian: ``"virtual"`` (default: ``diffrax.VirtualBrownianTree``, resolved to dt0 / 2 and queried
            again on the backward pass, so reverse-mode gradients work on a fixed path) or ``"unsafe"``
            (``diffrax.UnsafeBrownianPath``: one Gaussian draw per step, an order of magnitude cheaper, for
            fixed steps and forward-mode derivatives only: pass ``adjoint=diffrax.ForwardMode()``).
    """

    drift: AbstractField
    kappa: Float[Array, ""] = parameter(check=_kappa_rule)
    key: PRNGKeyArray
    brownian: str = eqx.field(static=True)

    def __init__(self, drift: AbstractField, kappa: float | ArrayLike, key: PRNGKeyArray, *,
                 brownian: BrownianKind | str = "virtual"):
        if not isinstance(drift, AbstractField):
            raise TypeError(f"drift must be a jaxattn field (an AbstractField), got {type(drift).__name__}")
        if isinstance(drift, NoisyField):
            raise TypeError("drift is already noisy: pass its drift and one kappa")
        if brownian not in ("virtual", "unsafe"):
            raise ValueError(f"brownian must be 'virtual' or 'unsafe', got {brownian!r}")
        kappa = as_float_array(kappa, "kappa")
        if kappa.ndim != 0:
            raise ValueError(f"kappa must be a scalar, got shape {kappa.shape}")
        self.drift = drift
        self.kappa = enforce([_kappa_rule(kappa)], kappa)
        self.key = jnp.asarray(key)
        self.brownian = brownian

    @property
    def manifold(self) -> AbstractManifold:  # pyright: ignore[reportIncompatibleVariableOverride]
        return self.drift.manifold

    @property
    def dim(self) -> int | None:
        return self.drift.dim

    @property
    def num_tokens(self) -> int | None:
        return self.drift.num_tokens

    @property
    def noise_scale(self) -> Float[Array, ""]:
        """sigma = sqrt(2 / kappa)."""
        return jnp.sqrt(2.0 / self.kappa)

    def velocity(self, t, x: Array) -> Array:
        """The drift b(X) (of the Stratonovich form)."""
        return self.drift.velocity(t, x)

    def diffusion(self, t: Real[ArrayLike, ""], x: Array) -> lx.FunctionLinearOperator:
        """dW -> sigma P_X dW, for one configuration or a batch of them (any leading axes)."""
        manifold, sigma = self.manifold, self.noise_scale
        return lx.FunctionLinearOperator(lambda w: sigma * manifold.project(x, w), jax.eval_shape(lambda: x))

    def brownian_motion(self, t0: Real[ArrayLike, ""], t1: Real[ArrayLike, ""], shape: tuple[int, ...],
                        dtype, dt0: Real[ArrayLike, ""] | None) -> diffrax.AbstractBrownianPath:
        """The Brownian motion W of the given shape on [t0, t1], from `key` (``brownian``)."""
        structure = jax.ShapeDtypeStruct(shape, dtype)
        if self.brownian == "unsafe":
            return diffrax.UnsafeBrownianPath(shape=structure, key=self.key)
        if dt0 is None:
            raise ValueError("a noisy solve needs a step: pass dt0 (the Brownian tree is resolved to dt0 / 2)")
        return diffrax.VirtualBrownianTree(t0, t1, tol=dt0 / 2, shape=structure, key=self.key)
