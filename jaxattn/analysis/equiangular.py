r"""The equiangular reduction of the normalisation schemes and their clustering rates.

Take Q = K = V = I, n tokens with equal pairwise inner products <theta_i, theta_j> = rho (i != j) and
equal radii r (e.g. the orthogonal start theta_i(0) = e_i, d >= n, r(0) = 1). By symmetry the flow of every
normalisation scheme ([`AbstractNormalisedAttention`][jaxattn.fields.AbstractNormalisedAttention]) keeps both (Rigollet 2025,
"The mean-field dynamics of Transformers", §5.1-§5.2; Karagodin, Ge, Polyanskiy, Rigollet 2025), and the whole system reduces to

    drho/dt = F_beta(rho) / s(t, r, |A|),        dr/dt = the scheme's radial rate at (a, |A|),

with q = e^{-beta (1 - rho)} and, for the softmax,

    F_beta(rho) = 2 (1 - rho) ((n - 1) rho + 1) q / (1 + (n - 1) q)      (Post-LN = (SA), Geshkovski et al.
                                                                          2023 (perspective) eq. (4.8))
    a(rho)      = <theta_i, A_i> = (1 + (n - 1) rho q) / (1 + (n - 1) q)
    |A(rho)|^2  = (1 + 2 (n - 1) rho q + (n - 1)(1 + (n - 2) rho) q^2) / (1 + (n - 1) q)^2.

(USA) multiplies A, hence F, a and |A|, by Z/n = e^beta (1 + (n - 1) q) / n (eq. (4.9)). These follow
from A_i = (e^beta theta_i + e^{beta rho} sum_{j != i} theta_j) / Z and drho/dt = 2 <dtheta_i/dt, theta_j>.

Near rho = 1, F_beta ~ 2 (1 - rho) and a, |A| -> 1, so 1 - rho decays like exp(-2 int dt / s): every
scheme's regulated rate -s d log(1 - rho)/dt tends to 2 ([`clustering_rate`][jaxattn.analysis.clustering_rate]): e^{-2t} for Post-LN,
t^{-2} for Pre-LN, Peri-LN and Mix-LN (s = r ~ t), e^{-2 alpha t} for nGPT (s -> 1/alpha),
e^{-4 sqrt(t + 1)} for sqrt-scaling, e^{-2 e^beta t} for Post-LN (USA).

[`equiangular_trajectory`][jaxattn.analysis.equiangular_trajectory] integrates u = -log(1 - rho) instead of rho (du/dt = F_beta / ((1 - rho) s)
is bounded), so 1 - rho is resolved far below the float64 resolution of rho itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import diffrax
import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Real

from .._validate import as_float_array, check_positive, is_concrete
from ..fields import AbstractNormalisedAttention
from .gamma import _h

__all__ = ["clustering_rate", "equiangular_rhs", "equiangular_trajectory"]


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an int >= 2 (number of tokens), got {n!r}")
    return int(n)


def _check_field(field) -> AbstractNormalisedAttention:
    if not isinstance(field, AbstractNormalisedAttention):
        raise TypeError("field must be a normalisation scheme (jaxattn.fields.PreLNAttention(beta), ...; "
                        f"jaxattn.fields.NORMALISATIONS), got {type(field).__name__}")
    if not field.identity_weights:
        raise ValueError("the equiangular reduction holds for Q = K = V = I, one head and no causal mask; "
                         "build the field without Q, K, V, weights and causal")
    return field


def _attention_moments(rho, beta, n: int, unnormalised: bool):
    """(h, a, |A|) at the equiangular state: F_beta = (1 - rho) h (module docstring)."""
    q = jnp.exp(-beta * (1 - rho))
    denom = 1 + (n - 1) * q
    a = (1 + (n - 1) * rho * q) / denom
    norm_a = jnp.sqrt(1 + 2 * (n - 1) * rho * q + (n - 1) * (1 + (n - 2) * rho) * q**2) / denom
    if unnormalised:
        scale = jnp.exp(beta) * denom / n  # Z / n
        return _h(rho, beta, n, "usa"), scale * a, scale * norm_a
    return _h(rho, beta, n, "sa"), a, norm_a


def equiangular_rhs(t: Real[ArrayLike, ""], rho: Float[ArrayLike, ""], r: Float[ArrayLike, ""],
                    field: object, n: int, *, beta: Real[ArrayLike, ""] | None = None
                    ) -> tuple[Array, Array]:
    """(drho/dt, dr/dt) of the equiangular reduction (module docstring) of ``field``'s scheme at time t.

    The field's beta and normalisation ((SA) or, ``unnormalised``, (USA)) are used; ``beta`` overrides
    the field's (>= 0: beta = 0 is uniform attention, which no field accepts).
    """
    field = _check_field(field)
    n = _check_n(n)
    beta = field.beta if beta is None else beta
    rho, r = jnp.asarray(rho), jnp.asarray(r)
    h, a, norm_a = _attention_moments(rho, beta, n, field.unnormalised)
    return (1 - rho) * h / field.speed(t, r, norm_a), field.radial(t, r, a, norm_a)


@eqx.filter_jit
def _equiangular_solve(field, beta, ts, u0, r0, n, rtol, atol, max_steps):
    def rhs(t, y, args):
        u, r = y
        rho = 1 - jnp.exp(-u)
        h, a, norm_a = _attention_moments(rho, beta, n, field.unnormalised)
        return h / field.speed(t, r, norm_a), field.radial(t, r, a, norm_a)

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(rhs), diffrax.Tsit5(), 0.0, ts[-1], None, (u0, r0),
        saveat=diffrax.SaveAt(ts=ts), stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
    )
    u, r = sol.ys
    return jnp.exp(-u), r


def equiangular_trajectory(
    field: object,  # an AbstractNormalisedAttention: checked below, with its own TypeError
    n: int,
    ts: Real[ArrayLike, " T"] | Sequence[float],
    *,
    rho0: Real[ArrayLike, ""] = 0.0,
    r0: Real[ArrayLike, ""] = 1.0,
    beta: Real[ArrayLike, ""] | None = None,
    rtol: float = 1e-11,
    atol: float = 1e-12,
    max_steps: int = 100_000,
) -> tuple[Float[Array, " T"], Float[Array, " T"]]:
    """(1 - rho(t), r(t)) at the times ``ts`` from rho(0) = ``rho0``, r(0) = ``r0`` (module docstring).

    Args:
        field: a normalisation scheme with Q = K = V = I (``jaxattn.fields.PreLNAttention(beta)``, ...): its
            beta, its (SA)/(USA) attention and its speed factor and radial rate.
        n: number of tokens (>= 2).
        ts: non-decreasing save times >= 0.
        rho0: the common initial inner product, in (-1/(n - 1), 1).
        r0: the common initial radius (> 0).
        beta: overrides the field's beta (>= 0; beta = 0: uniform attention weights).
        rtol, atol: tolerances of the solve in u = -log(1 - rho) and r.

    Returns:
        1 - rho and r at ``ts`` (1 - rho rather than rho: resolved down to ~1e-300).
    """
    field = _check_field(field)
    n = _check_n(n)
    beta = as_float_array(field.beta if beta is None else beta, "beta")
    if is_concrete(beta) and not (beta.ndim == 0 and np.isfinite(float(beta)) and float(beta) >= 0):
        raise ValueError(f"beta must be a finite scalar >= 0, got {beta!r}")
    ts = jnp.asarray(ts, dtype=jnp.result_type(float))
    if ts.ndim != 1 or ts.shape[0] < 1:
        raise ValueError(f"ts must be a 1-D array of times, got shape {ts.shape}")
    if is_concrete(ts):
        tsn = np.asarray(ts)
        if not np.all(np.isfinite(tsn)) or tsn[0] < 0 or np.any(np.diff(tsn) < 0):
            raise ValueError("ts must be finite, non-decreasing and >= 0")
    if is_concrete(rho0) and not -1.0 / (n - 1) < float(rho0) < 1:
        raise ValueError(f"rho0 must be in (-1/(n - 1), 1) = ({-1.0 / (n - 1):.4g}, 1) for n = {n} equiangular "
                         f"unit vectors, got {rho0!r}")
    check_positive("r0 (the initial radius)", r0)
    dtype = ts.dtype
    u0 = -jnp.log1p(-jnp.asarray(rho0, dtype))
    return _equiangular_solve(field, beta.astype(dtype), ts, u0, jnp.asarray(r0, dtype), n, rtol, atol, max_steps)


def clustering_rate(ts: Real[ArrayLike, " T"], one_minus_rho: Float[ArrayLike, "T *rest"],
                    speed: Real[ArrayLike, "..."] = 1.0) -> np.ndarray:
    """The regulated clustering rate -s(t) d log(1 - rho)/dt, by second-order differences in t.

    Its limit is 2 for every scheme at an equiangular start (module docstring) when s is the
    scheme's speed factor at the clustered state: s = 1 (Post-LN, rate of e^{-2t}), s = t (the exponent
    of a power law t^{-2}: Pre-LN, Peri-LN, Mix-LN), s = 1/alpha (nGPT), s = sqrt(t + 1) (sqrt-scaling);
    for (USA) with s = 1 the limit is 2 e^beta. ``one_minus_rho`` has time on its first axis.
    """
    ts = np.asarray(ts, dtype=float)
    eps = np.asarray(one_minus_rho, dtype=float)
    if ts.ndim != 1 or ts.shape[0] < 3 or eps.shape[:1] != ts.shape:
        raise ValueError(f"need >= 3 increasing times and 1 - rho with time first; got ts {ts.shape}, "
                         f"1 - rho {eps.shape}")
    if np.any(np.diff(ts) <= 0):
        raise ValueError("ts must be strictly increasing")
    if not np.all(eps > 0):
        raise ValueError("1 - rho must be > 0 at every time (fully clustered to round-off: compute 1 - rho as "
                         "|theta_i - theta_j|^2 / 2, or use equiangular_trajectory)")
    slope = np.gradient(np.log(eps), ts, axis=0, edge_order=2)
    speed = np.asarray(speed, dtype=float)
    if speed.ndim == 1:
        speed = speed.reshape((-1,) + (1,) * (eps.ndim - 1))
    return -speed * slope
