"""Normalisation schemes as speed regulation: tokens x_i = r_i theta_i with a direction on the sphere and
a radius (Karagodin, Ge, Polyanskiy, Rigollet 2025, "Normalization in attention dynamics"; Rigollet
2025, "The mean-field dynamics of Transformers", §5.2 "The impact of normalization").

Every scheme moves the directions by the same attention vector, computed from the directions only,

    A_i(Theta) = sum_j exp(beta ⟨Q theta_i, K theta_j⟩) V theta_j / sum_k exp(beta ⟨Q theta_i, K theta_k⟩)

(the softmax sum includes j = i; several heads add, a causal mask restricts j <= i, and
``unnormalised=True`` replaces the denominator by n as in (USA)), with a scheme-dependent speed factor
s_i (Rigollet 2025, eq. (NA) of §5.2):

    dtheta_i/dt = P_{theta_i}(A_i) / s_i,        P_theta y = y - ⟨theta, y⟩ theta,

and, where the scheme has one, a radial equation for r_i > 0. With a_i = ⟨theta_i, A_i⟩:

    =================== ========================= ================== ==================================
    field                layer map                 s_i                dr_i/dt
    =================== ========================= ================== ==================================
    PostLNAttention      x <- LN(x + Attn(x))      1                  0 (r = 1: this is (SA) / (USA))
    PreLNAttention       x <- x + Attn(LN(x))      r_i                a_i
    PeriLNAttention      x <- x + LN(Attn(LN(x)))  r_i |A_i|          a_i / |A_i|
    MixLNAttention       Post-LN for t <= tau, then Pre-LN
    NGPTAttention        x <- LN(x + alpha LN(A))  |A_i| / alpha      0
    SqrtScaledAttention  LN output / sqrt(layer)   sqrt(t + 1)        0
    =================== ========================= ================== ==================================

The Pre-LN and Peri-LN rows are the polar form of the ambient equations dx_i/dt = A_i(x/|x|) and
dx_i/dt = A_i/|A_i| (Rigollet 2025, §5.2): with x = r theta, dr/dt = ⟨theta, dx/dt⟩ and
dtheta/dt = P_theta(dx/dt)/r. The radius equation is dr_i/dt = ⟨theta_i, A_i⟩, not r_i times the sum of
A_i's coordinates as one public simulator codes it (docs/normalisation.md, "The radius equation").

Asymptotic rates at an equiangular start with Q = K = V = I (`jaxattn.analysis.equiangular`):
1 - rho ~ e^{-2t} (Post-LN), ~ 1/t^2 (Pre-LN, Peri-LN, and Mix-LN after tau), ~ e^{-2 alpha t} (nGPT),
~ e^{-4 sqrt(t + 1)} (sqrt-scaling).

A configuration is (n, d + 1) on `jaxattn.manifolds.DIRECTION_RADIUS`: the unit directions theta_i in
the first d columns and the radii r_i > 0 in the last ([`polar`][jaxattn.fields.polar] builds one from tokens x_i in R^d,
[`cartesian`][jaxattn.fields.cartesian] goes back); ``simulate`` keeps the directions on the sphere after every step.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Real

from .._validate import as_float_array, beta_rule, enforce, positive_rule
from ..manifolds import DIRECTION_RADIUS, DirectionRadius
from ..manifolds import tangent_projection
from ._base import AbstractField, parameter
from .random_weights import RandomWeights
from .sphere import SelfAttention, UnnormalisedSelfAttention


def polar(x: Float[ArrayLike, "*batch n d"]) -> Float[Array, "*batch n _"]:
    """Tokens x_i in R^d -> the state [theta_i, r_i] with theta_i = x_i / |x_i|, r_i = |x_i| (x_i != 0).

    **Arguments:**

    - `x`: float ``(*batch, n, d)``, tokens in R^d, none of them 0.

    **Returns:**

    Float ``(*batch, n, d + 1)``, the state.
    """
    x = jnp.asarray(x)
    r = jnp.linalg.norm(x, axis=-1, keepdims=True)
    return jnp.concatenate([x / r, r], axis=-1)


def cartesian(state: Float[ArrayLike, "*batch n _"]) -> Float[Array, "*batch n _"]:
    """The state [theta_i, r_i] -> tokens x_i = r_i theta_i.

    **Arguments:**

    - `state`: float ``(*batch, n, d + 1)``, the state [theta_i, r_i].

    **Returns:**

    Float ``(*batch, n, d)``, the tokens.
    """
    state = jnp.asarray(state)
    return state[..., :-1] * state[..., -1:]


def directions(state: Float[ArrayLike, "*batch n _"]) -> Float[Array, "*batch n _"]:
    """The unit directions theta_i of a state [theta_i, r_i].

    **Arguments:**

    - `state`: float ``(*batch, n, d + 1)``, the state [theta_i, r_i].

    **Returns:**

    Float ``(*batch, n, d)``.
    """
    return jnp.asarray(state)[..., :-1]


def radii(state: Float[ArrayLike, "*batch n _"]) -> Float[Array, "*batch n"]:
    """The radii r_i of a state [theta_i, r_i].

    **Arguments:**

    - `state`: float ``(*batch, n, d + 1)``, the state [theta_i, r_i].

    **Returns:**

    Float ``(*batch, n)``.
    """
    return jnp.asarray(state)[..., -1]


def _scalar(value, name: str) -> Array:
    """A positive scalar parameter, checked eagerly (its declared rule repeats the check under jit)."""
    arr = as_float_array(value, name)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {arr.shape}")
    return enforce([positive_rule(arr, name)], arr)


def _tau_rule(tau):
    return positive_rule(tau, "tau (the Post-LN -> Pre-LN switch time of Mix-LN)")


def _alpha_rule(alpha):
    return positive_rule(alpha, "alpha (the nGPT step)")


def _period_rule(period):
    return positive_rule(period, "redraw_period (the time between weight redraws)")


class AbstractNormalisedAttention(AbstractField):
    """Attention dynamics under a normalisation scheme, on directions x radii (module docstring):

        dtheta_i/dt = P_{theta_i}(A_i(Theta)) / s_i,     dr_i/dt = the scheme's radial rate

    (Rigollet 2025, eq. (NA) of §5.2; speed factors and radial equations of Karagodin, Ge, Polyanskiy,
    Rigollet 2025). A concrete scheme supplies [`speed`][jaxattn.fields.AbstractNormalisedAttention.speed] (s_i) and [`radial`][jaxattn.fields.AbstractNormalisedAttention.radial] (dr_i/dt) as
    functions of t, the radii r, a_i = ⟨theta_i, A_i⟩ and |A_i|.

    A_i is the attention output of [`SelfAttention`][jaxattn.SelfAttention] (of
    [`UnnormalisedSelfAttention`][jaxattn.UnnormalisedSelfAttention] with ``unnormalised=True``) at the directions:
    ``beta``, ``Q``, ``K``, ``V`` (stacks (H, m, d), (H, d, d) give H heads whose outputs add: pass V / H for
    their average), ``causal`` and ``block_size`` mean what they mean there. ``weights``: random heads
    instead ([`RandomWeights`][jaxattn.fields.RandomWeights]), re-drawn every ``redraw_period`` time units (or drawn
    once), i.e. a parameter piecewise constant in time, drawn inside the field.

    The constructor of every concrete scheme ([`MixLNAttention`][jaxattn.fields.MixLNAttention] adds ``tau``,
    [`NGPTAttention`][jaxattn.fields.NGPTAttention] adds ``alpha``):

    **Arguments:**

    - `beta`: the inverse temperature, a float scalar > 0.
    - `Q`: float (m, d) or a stack (H, m, d) of H heads; None (default): the identity.
    - `K`: float (m, d) or (H, m, d), the key matrices; None (default): the identity.
    - `V`: float (d, d) or (H, d, d), the value matrices (heads add); None (default): the identity.
    - `unnormalised`: bool, keyword-only, default False: (USA) attention, Z_i replaced by n.
    - `causal`: bool, keyword-only, default False: token i attends to j <= i.
    - `block_size`: int or None (default), keyword-only: row blocks of the attention kernel (see
        [`jaxattn.fields.attend`][jaxattn.fields.attend]).
    - `weights`: a [`RandomWeights`][jaxattn.fields.RandomWeights] or None (default), keyword-only:
        random heads instead of Q, K, V.
    - `redraw_period`: float > 0 or None (default: draw once), keyword-only: re-draw ``weights`` every
        this many time units.

    **Raises:**

    - `ValueError`: ``beta`` not finite and > 0; Q, K, V of inconsistent shapes; both Q/K/V and
        ``weights``, or ``redraw_period`` without ``weights``; a non-positive ``redraw_period``.
    - `TypeError`: ``weights`` is not a ``RandomWeights``.
    """

    beta: Float[Array, ""] = parameter(check=beta_rule, logit="scale")
    Q: Float[Array, "H m d"] | None = parameter(logit="matrix")
    K: Float[Array, "H m d"] | None = parameter(logit="matrix")
    V: Float[Array, "H d d"] | None
    weights: RandomWeights | None
    redraw_period: Float[Array, ""] | None = parameter(check=_period_rule)
    unnormalised: bool = eqx.field(static=True)
    causal: bool = eqx.field(static=True)
    block_size: int | None = eqx.field(static=True)

    manifold: ClassVar[DirectionRadius] = DIRECTION_RADIUS
    num_tokens: ClassVar[None] = None

    def __init__(self, beta: float | ArrayLike, Q: ArrayLike | Sequence | None = None,
                 K: ArrayLike | Sequence | None = None, V: ArrayLike | Sequence | None = None, *,
                 unnormalised: bool = False, causal: bool = False, block_size: int | None = None,
                 weights: RandomWeights | None = None, redraw_period: float | ArrayLike | None = None):
        _init_attention(self, beta, Q, K, V, unnormalised, causal, block_size, weights, redraw_period)

    @abc.abstractmethod
    def speed(self, t: Real[ArrayLike, ""], r: Float[Array, " n"], norm_a: Float[Array, " n"]) -> Float[Array, " n"]:
        """The speed factor s_i > 0 of the scheme: dtheta_i/dt = P_{theta_i}(A_i) / s_i (class docstring's table).

        **Arguments:**

        - `t`: the time, a real scalar.
        - `r`: float (n,), the radii r_i.
        - `norm_a`: float (n,), the norms |A_i| of the attention outputs.

        **Returns:**

        Float (n,), s_i.
        """

    @abc.abstractmethod
    def radial(self, t: Real[ArrayLike, ""], r: Float[Array, " n"], a: Float[Array, " n"],
               norm_a: Float[Array, " n"]) -> Float[Array, " n"]:
        """The radial rate dr_i/dt of the scheme (class docstring's table).

        **Arguments:**

        - `t`: the time, a real scalar.
        - `r`: float (n,), the radii r_i.
        - `a`: float (n,), a_i = ⟨theta_i, A_i⟩.
        - `norm_a`: float (n,), the norms |A_i|.

        **Returns:**

        Float (n,), dr_i/dt.
        """

    @property
    def dim(self) -> int | None:
        if self.weights is not None:
            return self.weights.dim
        return None if self.V is None else self.V.shape[-1]

    @property
    def identity_weights(self) -> bool:
        """Q = K = V = I, one head, no mask: the setting of the equiangular reduction."""
        return self.Q is None and self.K is None and self.V is None and self.weights is None and not self.causal

    def attention_at(self, t: Real[ArrayLike, ""]) -> SelfAttention | UnnormalisedSelfAttention:
        """The attention in force at time t (a [`SelfAttention`][jaxattn.SelfAttention] or its (USA) twin).

        **Arguments:**

        - `t`: the time, a real scalar (selects the draw of random ``weights``: index floor(t / redraw_period)).

        **Returns:**

        A [`SelfAttention`][jaxattn.SelfAttention] or [`UnnormalisedSelfAttention`][jaxattn.UnnormalisedSelfAttention].
        """
        if self.weights is None:
            Q, K, V = self.Q, self.K, self.V
        else:
            index = 0 if self.redraw_period is None else jnp.floor(t / self.redraw_period).astype(jnp.int32)
            Q, K, V = self.weights.draw(index)
        cls = UnnormalisedSelfAttention if self.unnormalised else SelfAttention
        return cls(self.beta, Q, K, V, causal=self.causal, block_size=self.block_size)

    def velocity(self, t, x: Float[Array, "n d1"]) -> Float[Array, "n d1"]:
        """dtheta_i/dt = P_{theta_i}(A_i) / s_i and dr_i/dt of the scheme (class docstring).

        **Arguments:**

        - `t`: the time, a scalar.
        - `x`: float (n, d + 1), the state [theta_i, r_i].

        **Returns:**

        Float (n, d + 1), the velocity of the directions (tangent) and of the radii.
        """
        theta, r = x[:, :-1], x[:, -1]
        A = self.attention_at(t).attention_output(theta)
        a = jnp.sum(theta * A, axis=-1)
        norm_a = jnp.linalg.norm(A, axis=-1)
        s = self.speed(t, r, norm_a)
        dtheta = tangent_projection(theta, A) / s[:, None]
        return jnp.concatenate([dtheta, self.radial(t, r, a, norm_a)[:, None]], axis=-1)

    def redraw_times(self, t1: float, t0: float = 0.0) -> np.ndarray:
        """The times k redraw_period in (t0, t1) where random weights are re-drawn (the field jumps there):
        pass them to an adaptive controller, ``diffrax.PIDController(rtol, atol, jump_ts=...)``.

        **Arguments:**

        - `t1`: float, the end of the interval.
        - `t0`: float, the start of the interval; default 0.0.

        **Returns:**

        A float NumPy array of the jump times (empty without random weights or a redraw period).
        """
        if self.weights is None or self.redraw_period is None:
            return np.zeros(0)
        p = float(self.redraw_period)
        return np.arange(math.floor(t0 / p) + 1, math.ceil(t1 / p)) * p


def _init_attention(self, beta, Q, K, V, unnormalised, causal, block_size, weights, redraw_period) -> None:
    """Validate and set the shared fields of [`AbstractNormalisedAttention`][jaxattn.fields.AbstractNormalisedAttention] (called by ``__init__``)."""
    if weights is not None:
        if not isinstance(weights, RandomWeights):
            raise TypeError(f"weights must be a jaxattn.fields.RandomWeights, got {type(weights).__name__}")
        if Q is not None or K is not None or V is not None:
            raise ValueError("pass either Q, K, V or random weights, not both")
    elif redraw_period is not None:
        raise ValueError("redraw_period re-draws random weights: pass weights=jaxattn.fields.RandomWeights(...)")
    cls = UnnormalisedSelfAttention if unnormalised else SelfAttention
    attention = cls(beta, Q, K, V, causal=causal, block_size=block_size)  # validates beta, Q, K, V
    self.beta, self.Q, self.K, self.V = attention.beta, attention.Q, attention.K, attention.V
    self.weights = weights
    self.redraw_period = None if redraw_period is None else _scalar(redraw_period, "redraw_period (the time "
                                                                                   "between weight redraws)")
    self.unnormalised, self.causal, self.block_size = bool(unnormalised), bool(causal), block_size


class PostLNAttention(AbstractNormalisedAttention):
    """Post-LN, x <- LN(x + Attn(x)): s_i = 1 and r_i constant (Rigollet 2025, eq. (NA) with s = 1): the
    directions follow (SA) (Geshkovski et al. 2023 (perspective) eq. (2.6)) or, ``unnormalised``, (USA).

    The constructor takes the arguments of [`AbstractNormalisedAttention`][jaxattn.fields.AbstractNormalisedAttention].
    """

    def speed(self, t, r, norm_a):
        return jnp.ones_like(r)

    def radial(self, t, r, a, norm_a):
        return jnp.zeros_like(r)


class PreLNAttention(AbstractNormalisedAttention):
    """Pre-LN, x <- x + Attn(LN(x)): s_i = r_i and dr_i/dt = ⟨theta_i, A_i⟩ (Rigollet 2025 §5.2, the polar
    form of dx_i/dt = A_i(x/|x|); Karagodin, Ge, Polyanskiy, Rigollet 2025). Large tokens turn slowly;
    at an equiangular start r ~ t and 1 - rho ~ 1/t^2.

    The constructor takes the arguments of [`AbstractNormalisedAttention`][jaxattn.fields.AbstractNormalisedAttention].
    """

    def speed(self, t, r, norm_a):
        return r

    def radial(self, t, r, a, norm_a):
        return a


class PeriLNAttention(AbstractNormalisedAttention):
    """Peri-LN, x <- x + LN(Attn(LN(x))): the unit-norm velocity dx_i/dt = A_i / |A_i| (Rigollet 2025 §5.2;
    Kim et al. 2025, "Peri-LN"), i.e. s_i = r_i |A_i| and dr_i/dt = ⟨theta_i, A_i⟩ / |A_i|.

    The constructor takes the arguments of [`AbstractNormalisedAttention`][jaxattn.fields.AbstractNormalisedAttention].
    """

    def speed(self, t, r, norm_a):
        return r * norm_a

    def radial(self, t, r, a, norm_a):
        return a / norm_a


class MixLNAttention(AbstractNormalisedAttention):
    """Mix-LN (Li et al. 2024): Post-LN for t <= tau, then Pre-LN (Karagodin, Ge, Polyanskiy, Rigollet 2025):
    s_i = 1 and dr_i/dt = 0 up to tau, s_i = r_i and dr_i/dt = ⟨theta_i, A_i⟩ after.

    The field jumps at t = tau: tell an adaptive solve, ``diffrax.PIDController(rtol, atol, jump_ts=[tau])``.

    The constructor takes the arguments of [`AbstractNormalisedAttention`][jaxattn.fields.AbstractNormalisedAttention], and:

    **Arguments:**

    - `tau`: float > 0, keyword-only, default 1.0: the Post-LN -> Pre-LN switch time.

    **Raises:**

    - `ValueError`: ``beta`` not finite and > 0; Q, K, V of inconsistent shapes; both Q/K/V and
        ``weights``, or ``redraw_period`` without ``weights``; a non-positive ``redraw_period`` or ``tau``.
    - `TypeError`: ``weights`` is not a ``RandomWeights``.
    """

    tau: Float[Array, ""] = parameter(check=_tau_rule)

    def __init__(self, beta: float | ArrayLike, Q: ArrayLike | Sequence | None = None,
                 K: ArrayLike | Sequence | None = None, V: ArrayLike | Sequence | None = None, *,
                 tau: float | ArrayLike = 1.0, unnormalised: bool = False, causal: bool = False,
                 block_size: int | None = None, weights: RandomWeights | None = None,
                 redraw_period: float | ArrayLike | None = None):
        _init_attention(self, beta, Q, K, V, unnormalised, causal, block_size, weights, redraw_period)
        self.tau = _scalar(tau, "tau (the Post-LN -> Pre-LN switch time of Mix-LN)")

    def speed(self, t, r, norm_a):
        return jnp.where(t <= self.tau, jnp.ones_like(r), r)

    def radial(self, t, r, a, norm_a):
        return jnp.where(t <= self.tau, jnp.zeros_like(a), a)


class NGPTAttention(AbstractNormalisedAttention):
    """nGPT (Loshchilov et al. 2025), theta <- Norm(theta + alpha Norm(A)): dtheta_i/dt = alpha P(A_i) / |A_i|,
    i.e. s_i = |A_i| / alpha, radius constant (Karagodin, Ge, Polyanskiy, Rigollet 2025; the architecture's
    per-coordinate eigen learning rates are one scalar alpha here). 1 - rho ~ e^{-2 alpha t}.

    The constructor takes the arguments of [`AbstractNormalisedAttention`][jaxattn.fields.AbstractNormalisedAttention], and:

    **Arguments:**

    - `alpha`: float > 0, keyword-only, default 0.2 (as in the simuformer simulator): the nGPT step.

    **Raises:**

    - `ValueError`: ``beta`` not finite and > 0; Q, K, V of inconsistent shapes; both Q/K/V and
        ``weights``, or ``redraw_period`` without ``weights``; a non-positive ``redraw_period`` or ``alpha``.
    - `TypeError`: ``weights`` is not a ``RandomWeights``.
    """

    alpha: Float[Array, ""] = parameter(check=_alpha_rule)

    def __init__(self, beta: float | ArrayLike, Q: ArrayLike | Sequence | None = None,
                 K: ArrayLike | Sequence | None = None, V: ArrayLike | Sequence | None = None, *,
                 alpha: float | ArrayLike = 0.2, unnormalised: bool = False, causal: bool = False,
                 block_size: int | None = None, weights: RandomWeights | None = None,
                 redraw_period: float | ArrayLike | None = None):
        _init_attention(self, beta, Q, K, V, unnormalised, causal, block_size, weights, redraw_period)
        self.alpha = _scalar(alpha, "alpha (the nGPT step)")

    def speed(self, t, r, norm_a):
        return norm_a / self.alpha

    def radial(self, t, r, a, norm_a):
        return jnp.zeros_like(r)


class SqrtScaledAttention(AbstractNormalisedAttention):
    """sqrt-scaling ("LN-scaling"): s_i = sqrt(t + 1), radius constant (Karagodin, Ge, Polyanskiy, Rigollet
    2025; Rigollet 2025 §5.2). 1 - rho ~ exp(-4 sqrt(t + 1)).

    The constructor takes the arguments of [`AbstractNormalisedAttention`][jaxattn.fields.AbstractNormalisedAttention].
    """

    def speed(self, t, r, norm_a):
        return jnp.broadcast_to(jnp.sqrt(t + 1.0), r.shape).astype(r.dtype)

    def radial(self, t, r, a, norm_a):
        return jnp.zeros_like(r)


#: the schemes by the simuformer simulator's names (``jaxattn sweep phase-diagram --norm`` spells them post-ln, ...)
NORMALISATIONS: dict[str, type[AbstractNormalisedAttention]] = {
    "postln": PostLNAttention, "preln": PreLNAttention, "periln": PeriLNAttention, "mixln": MixLNAttention,
    "ngpt": NGPTAttention, "sqrt": SqrtScaledAttention,
}
