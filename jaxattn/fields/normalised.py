"""Normalisation schemes as speed regulation: tokens x_i = r_i theta_i with a direction on the sphere and
a radius (Karagodin, Ge, Polyanskiy, Rigollet 2025, "Normalization in attention dynamics"; Rigollet
2025, "The mean-field dynamics of Transformers", §5.2 "The impact of normalization").

Every scheme moves the directions by the same attention vector, computed from the directions only,

    A_i(Theta) = sum_j exp(beta <Q theta_i, K theta_j>) V theta_j / sum_k exp(beta <Q theta_i, K theta_k>)

(the softmax sum includes j = i; several heads add, a causal mask restricts j <= i, and
``unnormalised=True`` replaces the denominator by n as in (USA)), with a scheme-dependent speed factor
s_i (Rigollet 2025, eq. (NA) of §5.2):

    dtheta_i/dt = P_{theta_i}(A_i) / s_i,        P_theta y = y - <theta, y> theta,

and, where the scheme has one, a radial equation for r_i > 0. With a_i = <theta_i, A_i>:

    ============ ========================= ========================== ==========================================
    scheme        layer map                 s_i                         dr_i/dt
    ============ ========================= ========================== ==========================================
    Post-LN       x <- LN(x + Attn(x))      1                           0 (r = 1: this is (SA)/(USA))
    Pre-LN        x <- x + Attn(LN(x))      r_i                         a_i
    Peri-LN       x <- x + LN(Attn(LN(x)))  r_i |A_i|                   a_i / |A_i|
    Mix-LN        Post-LN up to tau, then Pre-LN (s_i = 1, dr_i/dt = 0 for t <= tau)
    nGPT          x <- LN(x + alpha LN(A))  |A_i| / alpha               0
    sqrt-scaling  LN output scaled          sqrt(t + 1)                 0
    ============ ========================= ========================== ==========================================

The Pre-LN and Peri-LN rows are the polar form of the ambient equations dx_i/dt = A_i(x/|x|) and
dx_i/dt = A_i/|A_i| (Rigollet 2025, §5.2): with x = r theta, dr/dt = <theta, dx/dt> and
dtheta/dt = P_theta(dx/dt)/r. The radius equation is dr_i/dt = <theta_i, A_i> (not r_i times the sum of
A_i's coordinates, as one public simulator codes it; docs/normalisation.md, "The radius equation").

Asymptotic rates (equiangular start, Q = K = V = I; :mod:`jaxattn.analysis.equiangular`): 1 - rho ~ e^{-2t}
(Post-LN), ~ 1/t^2 (Pre-LN, Peri-LN, and Mix-LN after tau), ~ e^{-2 alpha t} (nGPT), ~ e^{-4 sqrt(t + 1)}
(sqrt-scaling).

A configuration is (n, d + 1): the unit directions theta_i in the first d columns and the radii r_i > 0
in the last (:func:`polar` builds one from tokens x_i in R^d, :func:`cartesian` goes back); ``simulate``
keeps the directions on the sphere after every step and leaves the radii alone.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Real

from .._validate import as_float_array, check_positive
from ._base import AbstractField, tangent_projection
from .random_weights import RandomWeights
from .sphere import SelfAttention, UnnormalisedSelfAttention


def polar(x: Float[ArrayLike, "*batch n d"]) -> Float[Array, "*batch n _"]:
    """Tokens x_i in R^d -> the state [theta_i, r_i] with theta_i = x_i / |x_i|, r_i = |x_i| (x_i != 0)."""
    x = jnp.asarray(x)
    r = jnp.linalg.norm(x, axis=-1, keepdims=True)
    return jnp.concatenate([x / r, r], axis=-1)


def cartesian(state: Float[ArrayLike, "*batch n _"]) -> Float[Array, "*batch n _"]:
    """The state [theta_i, r_i] -> tokens x_i = r_i theta_i."""
    state = jnp.asarray(state)
    return state[..., :-1] * state[..., -1:]


def directions(state: Float[ArrayLike, "*batch n _"]) -> Float[Array, "*batch n _"]:
    """The unit directions theta_i of a state [theta_i, r_i]."""
    return jnp.asarray(state)[..., :-1]


def radii(state: Float[ArrayLike, "*batch n _"]) -> Float[Array, "*batch n"]:
    """The radii r_i of a state [theta_i, r_i]."""
    return jnp.asarray(state)[..., -1]


class AbstractNormalisation(eqx.Module):
    """A normalisation scheme: the speed factor s_i and the radial rate dr_i/dt of eq. (NA) (module
    docstring), as functions of the time t, the radii r (n,), a_i = <theta_i, A_i> (n,) and |A_i| (n,).

    :attr:`has_radius` says whether the radius moves (Pre-LN, Peri-LN, Mix-LN); for the other schemes
    it stays at its initial value (1 for tokens on the sphere).
    """

    has_radius: eqx.AbstractClassVar[bool]

    @abc.abstractmethod
    def speed(self, t: Real[ArrayLike, ""], r: Float[Array, " n"], norm_a: Float[Array, " n"]) -> Float[Array, " n"]:
        """s_i > 0: dtheta_i/dt = P_{theta_i}(A_i) / s_i."""

    @abc.abstractmethod
    def radial(self, t: Real[ArrayLike, ""], r: Float[Array, " n"], a: Float[Array, " n"],
               norm_a: Float[Array, " n"]) -> Float[Array, " n"]:
        """dr_i/dt."""


class PostLN(AbstractNormalisation):
    """Post-LN, x <- LN(x + Attn(x)): s_i = 1, r_i = 1 (the (SA) / (USA) models of Geshkovski et al. 2023
    (perspective), eqs. (2.6) and §3.3; Rigollet 2025 eq. (NA) with s = 1)."""

    has_radius: ClassVar[bool] = False

    def speed(self, t, r, norm_a):
        return jnp.ones_like(r)

    def radial(self, t, r, a, norm_a):
        return jnp.zeros_like(r)


class PreLN(AbstractNormalisation):
    """Pre-LN, x <- x + Attn(LN(x)): s_i = r_i, dr_i/dt = <theta_i, A_i> (Rigollet 2025 §5.2: the polar
    form of dx_i/dt = A_i(x / |x|); Karagodin, Ge, Polyanskiy, Rigollet 2025). Directions of large tokens
    slow down; r ~ t and 1 - rho ~ 1/t^2 at an equiangular start."""

    has_radius: ClassVar[bool] = True

    def speed(self, t, r, norm_a):
        return r

    def radial(self, t, r, a, norm_a):
        return a


class PeriLN(AbstractNormalisation):
    """Peri-LN, x <- x + LN(Attn(LN(x))): the unit-norm velocity dx_i/dt = A_i / |A_i| (Rigollet 2025 §5.2;
    Kim et al. 2025, "Peri-LN"), i.e. s_i = r_i |A_i| and dr_i/dt = <theta_i, A_i> / |A_i|."""

    has_radius: ClassVar[bool] = True

    def speed(self, t, r, norm_a):
        return r * norm_a

    def radial(self, t, r, a, norm_a):
        return a / norm_a


class MixLN(AbstractNormalisation):
    """Mix-LN (Li et al. 2024): Post-LN for t <= tau, then Pre-LN (Karagodin, Ge, Polyanskiy, Rigollet
    2025): s_i = 1 and dr_i/dt = 0 up to tau, s_i = r_i and dr_i/dt = <theta_i, A_i> after.

    The field jumps at t = tau: an adaptive solve is most efficient told so,
    ``stepsize_controller=diffrax.PIDController(rtol, atol, jump_ts=[tau])``.
    """

    tau: Float[Array, ""]

    has_radius: ClassVar[bool] = True

    def __init__(self, tau: float | ArrayLike = 1.0):
        tau = as_float_array(tau, "tau")
        if tau.ndim != 0:
            raise ValueError(f"tau (the switch time of Mix-LN) must be a scalar, got shape {tau.shape}")
        check_positive("tau (the switch time of Mix-LN)", tau)
        self.tau = tau

    def speed(self, t, r, norm_a):
        return jnp.where(t <= self.tau, jnp.ones_like(r), r)

    def radial(self, t, r, a, norm_a):
        return jnp.where(t <= self.tau, jnp.zeros_like(a), a)


class NGPT(AbstractNormalisation):
    """nGPT (Loshchilov et al. 2025), theta <- Norm(theta + alpha Norm(A)): dtheta_i/dt = alpha P(A_i) / |A_i|,
    i.e. s_i = |A_i| / alpha, radius fixed (Karagodin, Ge, Polyanskiy, Rigollet 2025; the architecture's
    per-coordinate eigen learning rates are one scalar alpha > 0 here). 1 - rho ~ e^{-2 alpha t}."""

    alpha: Float[Array, ""]

    has_radius: ClassVar[bool] = False

    def __init__(self, alpha: float | ArrayLike = 0.2):
        alpha = as_float_array(alpha, "alpha")
        if alpha.ndim != 0:
            raise ValueError(f"alpha (the nGPT step) must be a scalar, got shape {alpha.shape}")
        check_positive("alpha (the nGPT step)", alpha)
        self.alpha = alpha

    def speed(self, t, r, norm_a):
        return norm_a / self.alpha

    def radial(self, t, r, a, norm_a):
        return jnp.zeros_like(r)


class SqrtScaling(AbstractNormalisation):
    """sqrt-scaling ("LN-scaling"): s_i = sqrt(t + 1), radius fixed (Karagodin, Ge, Polyanskiy, Rigollet
    2025; Rigollet 2025 §5.2). 1 - rho ~ exp(-4 sqrt(t + 1))."""

    has_radius: ClassVar[bool] = False

    def speed(self, t, r, norm_a):
        return jnp.broadcast_to(jnp.sqrt(t + 1.0), r.shape).astype(r.dtype)

    def radial(self, t, r, a, norm_a):
        return jnp.zeros_like(r)


class NormalisedSelfAttention(AbstractField):
    """Attention dynamics under a normalisation scheme, on directions x radii (module docstring):

        dtheta_i/dt = P_{theta_i}(A_i(Theta)) / s_i,     dr_i/dt = scheme's radial rate

    (Rigollet 2025, eq. (NA) of §5.2; speed factors and radial equations of Karagodin, Ge, Polyanskiy,
    Rigollet 2025). A_i is the attention vector of :class:`~jaxattn.fields.SelfAttention` (or of
    :class:`~jaxattn.fields.UnnormalisedSelfAttention` with ``unnormalised=True``) evaluated at the
    directions: ``beta``, ``Q``, ``K``, ``V`` (stacks of heads allowed; the heads' outputs add, so pass
    V / H for an average), ``causal`` and ``block_size`` mean what they mean there. With
    ``scheme=PostLN()`` the directions follow (SA) (or (USA)) exactly and the radii stay put.

    A configuration is (n, d + 1): directions in the first d columns, radii > 0 in the last
    (:func:`polar` of tokens in R^d).

    ``weights``: instead of fixed Q, K, V, random heads re-drawn every ``weights.period`` time units
    (:class:`~jaxattn.fields.RandomWeights`; piecewise constant in time, drawn inside the field).
    """

    attention: SelfAttention | UnnormalisedSelfAttention
    scheme: AbstractNormalisation
    weights: RandomWeights | None

    manifold = "direction_radius"
    num_tokens: ClassVar[None] = None

    def __init__(self, beta: float | ArrayLike, scheme: object = None,  # checked below, with its own TypeError
                 Q: ArrayLike | Sequence | None = None, K: ArrayLike | Sequence | None = None,
                 V: ArrayLike | Sequence | None = None, *, unnormalised: bool = False, causal: bool = False,
                 block_size: int | None = None, weights: RandomWeights | None = None):
        scheme = PreLN() if scheme is None else scheme
        if not isinstance(scheme, AbstractNormalisation):
            raise TypeError("scheme must be a normalisation scheme (PostLN(), PreLN(), PeriLN(), MixLN(tau), "
                            f"NGPT(alpha), SqrtScaling()), got {type(scheme).__name__}")
        if weights is not None:
            if not isinstance(weights, RandomWeights):
                raise TypeError(f"weights must be a jaxattn.fields.RandomWeights, got {type(weights).__name__}")
            if Q is not None or K is not None or V is not None:
                raise ValueError("pass either Q, K, V or random weights, not both")
            Q = K = V = jnp.broadcast_to(jnp.eye(weights.dim), (weights.heads, weights.dim, weights.dim))
        cls = UnnormalisedSelfAttention if unnormalised else SelfAttention
        self.attention = cls(beta, Q, K, V, causal=causal, block_size=block_size)
        self.scheme = scheme
        self.weights = weights

    @property
    def beta(self) -> Float[Array, ""]:
        return self.attention.beta

    @property
    def dim(self) -> int | None:
        d = self.attention.dim
        return None if d is None else d + 1

    def attention_at(self, t: Real[ArrayLike, ""]) -> SelfAttention | UnnormalisedSelfAttention:
        """The attention in force at time t (its Q, K, V drawn from :attr:`weights` when there are any)."""
        if self.weights is None:
            return self.attention
        return eqx.tree_at(lambda a: (a.Q, a.K, a.V), self.attention, self.weights.at(t))

    def attention_vector(self, t: Real[ArrayLike, ""], theta: Float[Array, "n d"]) -> Float[Array, "n d"]:
        """A_i(Theta) at time t, the attention output at the directions (before any projection)."""
        return self.attention_at(t).attention_output(theta)

    def velocity(self, t, x: Float[Array, "n d1"]) -> Float[Array, "n d1"]:
        theta, r = x[:, :-1], x[:, -1]
        A = self.attention_vector(t, theta)
        a = jnp.sum(theta * A, axis=-1)
        norm_a = jnp.linalg.norm(A, axis=-1)
        s = self.scheme.speed(t, r, norm_a)
        dtheta = tangent_projection(theta, A) / s[:, None]
        dr = self.scheme.radial(t, r, a, norm_a)
        return jnp.concatenate([dtheta, dr[:, None]], axis=-1)
