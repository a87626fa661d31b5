"""The Gaussian reduction of attention dynamics in R^d: the mean and covariance of a Gaussian token measure.

Castin, Ablin, Carrillo, Peyre, "A unified perspective on the dynamics of deep Transformers"
(arXiv 2501.18322, 2025) show that the mean-field transformer PDE

    d mu/dt + div(mu Gamma[mu]) = 0,   Gamma[mu](x) = V E_{pi_mu}[y | x]

(Geshkovski et al. 2023 (emergence) eq. (1.1) in the limit of many tokens, no layer norm) keeps
Gaussian measures Gaussian, for softmax and for Sinkhorn attention. For mu = N(m, Sigma) the
conditional mean E[y | x] is affine in x, so the token velocity is affine and (m, Sigma) solve an
ODE. With the logits beta <Q x, K y> = x^T A^T y, A = beta K^T Q:

* **softmax** (each query x tilts mu by e^{(A x)^T y}, whose mean is m + Sigma A x):

      dm/dt     = V m + V Sigma A m,
      dSigma/dt = V Sigma A Sigma + Sigma A^T Sigma V^T;

  in d = 1: dSigma/dt = 2 v a Sigma^2, Sigma(t) = Sigma_0 / (1 - 2 v a Sigma_0 t), which blows up at
  t = 1 / (2 v a Sigma_0) when v a > 0.
* **sinkhorn** (the entropic self-coupling pi of mu with kernel e^{x^T A^T y}, the doubly stochastic
  limit of [`Sinkhorn`][jaxattn.Sinkhorn] attention as its iterations grow): pi is Gaussian with
  cross-covariance S = Cov(x, y) = R S~ R, R = Sigma^{1/2}, where in whitened coordinates

      S~ = 2 (I + (I + 4 G G^T)^{1/2})^{-1} G,   G = R A^T R,

  the unique solution of (I - S~ S~^T)^{-1} S~ = G (the cross block of the precision of a coupling
  of two standard normals with density ratio e^{xi^T G eta}). Then E[y | x] = m + S^T Sigma^{-1} (x - m) and

      dm/dt     = V m,
      dSigma/dt = V S^T + S V^T.

  This equals the form of the authors' code, M = V A^{-T} Sigma^{-1} C_Sigma with
  C_Sigma = (1/2)(R (4 R A^T Sigma A R + I)^{1/2} R^{-1} - I), wherever A is invertible (a test checks
  both), but needs neither A^{-1} nor Sigma^{-1}.

Conventions: Castin et al. scale the logits by 1/sqrt(d) (beta = d^{-1/2} here) and their Sinkhorn
closure has no 1/sqrt(d) (beta = 1). The reduction is exact for the mean-field PDE started from a
Gaussian and up to blow-up; for n particles the empirical covariance follows it up to O(n^{-1/2})
(``tests/test_gaussian.py`` checks n = 2000 tokens against the ODE).

The state of [`GaussianAttention`][jaxattn.fields.GaussianAttention] is one (d + 1, d) array, rows 0..d-1 the covariance and
row d the mean ([`gaussian_state`][jaxattn.fields.gaussian_state], [`gaussian_moments`][jaxattn.fields.gaussian_moments]), so that ``jaxattn.simulate``,
its ensembles and its gradients integrate it like any other field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._validate import as_finite_array, as_float_array, beta_rule, check_beta
from ..manifolds import GAUSSIAN, GaussianMoments
from ._base import AbstractField, parameter

GaussianNormalisation = Literal["softmax", "sinkhorn"]


@jax.custom_jvp
def _psd_sqrt(s: Float[Array, "d d"]) -> Float[Array, "d d"]:
    """The symmetric square root of a symmetric positive semidefinite matrix (by eigh)."""
    w, u = jnp.linalg.eigh(s)
    return (u * jnp.sqrt(jnp.maximum(w, 0.0))) @ u.T


@_psd_sqrt.defjvp
def _psd_sqrt_jvp(primals, tangents):
    """dR solves R dR + dR R = dS: in the eigenbasis dR_ij = dS_ij / (sqrt(w_i) + sqrt(w_j)), finite
    for repeated eigenvalues (where the eigenvector derivatives of eigh are not)."""
    (s,), (ds,) = primals, tangents
    w, u = jnp.linalg.eigh(s)
    r = jnp.sqrt(jnp.maximum(w, 0.0))
    denom = r[:, None] + r[None, :]
    inner = (u.T @ ds @ u) / jnp.where(denom > 0, denom, 1.0)
    return (u * r) @ u.T, u @ inner @ u.T


def gaussian_sinkhorn_coupling(sigma: Float[ArrayLike, "d d"], a: Float[ArrayLike, "d d"]) -> Float[Array, "d d"]:
    """Cross-covariance S = Cov_pi(x, y) of the entropic self-coupling pi of N(m, Sigma) with kernel e^{x^T A^T y}.

    S = R S~ R with R = Sigma^{1/2}, S~ = 2 (I + (I + 4 G G^T)^{1/2})^{-1} G and G = R A^T R (module
    docstring). Terms of the logits that depend on x alone or on y alone do not change pi, so an
    L2 cost -|x - y|^2 / eps is A = (2 / eps) I: for N(0, s^2) in d = 1 the coupling's slope
    E[y | x] = c x has c = S / s^2 = 4 s^2 / (eps + sqrt(eps^2 + 16 s^4)) = 1 - eps / (4 s^2) + O(eps^2),
    the heat-flow limit of Sinkformers (Sander et al. 2022, §4).
    """
    sigma = jnp.asarray(sigma)
    a = jnp.asarray(a)
    r = _psd_sqrt(sigma)
    g = r @ a.T @ r
    eye = jnp.eye(g.shape[0], dtype=g.dtype)
    s_white = 2.0 * jnp.linalg.solve(eye + _psd_sqrt(eye + 4.0 * g @ g.T), g)
    return r @ s_white @ r


def gaussian_state(mean: Float[ArrayLike, " d"] | Sequence, covariance: Float[ArrayLike, "d d"] | Sequence
                   ) -> Float[Array, "d1 d"]:
    """The (d + 1, d) state of [`GaussianAttention`][jaxattn.fields.GaussianAttention]: the covariance, then the mean as the last row."""
    mean = as_float_array(mean, "mean")
    covariance = as_float_array(covariance, "covariance")
    if mean.ndim != 1 or covariance.shape != (mean.shape[0], mean.shape[0]):
        raise ValueError(f"a Gaussian state needs a mean (d,) and a covariance (d, d); got {mean.shape}, {covariance.shape}")
    return jnp.concatenate([covariance, mean[None, :]], axis=0)


def gaussian_moments(state: Float[ArrayLike, "*batch d1 d"]) -> tuple[Float[Array, "*batch d"], Float[Array, "*batch d d"]]:
    """(mean, covariance) of one state or a stack of states (e.g. ``Trajectory.xs``) of [`GaussianAttention`][jaxattn.fields.GaussianAttention]."""
    state = jnp.asarray(state)
    return state[..., -1, :], state[..., :-1, :]


def empirical_gaussian_state(x: Float[ArrayLike, "*batch n d"]) -> Float[Array, "*batch d1 d"]:
    """The state (mean, covariance with 1/n) of n tokens, to start or compare [`GaussianAttention`][jaxattn.fields.GaussianAttention]."""
    x = jnp.asarray(x)
    mean = jnp.mean(x, axis=-2)
    centred = x - mean[..., None, :]
    cov = jnp.einsum("...ni,...nj->...ij", centred, centred) / x.shape[-2]
    return jnp.concatenate([cov, mean[..., None, :]], axis=-2)


class GaussianAttention(AbstractField):
    """Mean and covariance ODE of a Gaussian token measure in R^d (Castin et al. 2025; module docstring).

        softmax:  dm/dt = V m + V Sigma A m,   dSigma/dt = V Sigma A Sigma + Sigma A^T Sigma V^T,
        sinkhorn: dm/dt = V m,                 dSigma/dt = V S^T + S V^T,   S = Cov_pi(x, y),

    A = beta K^T Q. A configuration is the (d + 1, d) array ``gaussian_state(m, Sigma)`` on the manifold
    `jaxattn.manifolds.GAUSSIAN` (Sigma symmetric positive semidefinite); the field keeps Sigma exactly
    symmetric.
    [`affine_velocity`][jaxattn.fields.GaussianAttention.affine_velocity] gives the token velocity x -> M x + b of the mean-field Gamma, to compare
    with particle fields ([`EuclideanSelfAttention`][jaxattn.EuclideanSelfAttention], optionally with
    ``normalisation=Sinkhorn(k)``).

    Args:
        Q: (m, d) query matrix (rectangular allowed).
        K: (m, d) key matrix.
        V: (d, d) value matrix.
        beta: scale of the logits beta <Q x, K y> (Castin et al.'s softmax uses beta = d^{-1/2}).
        normalisation: ``"softmax"`` or ``"sinkhorn"`` (the converged doubly stochastic coupling).
    """

    Q: Float[Array, "m d"] = parameter(logit="matrix")
    K: Float[Array, "m d"] = parameter(logit="matrix")
    V: Float[Array, "d d"]
    beta: Float[Array, ""] = parameter(check=beta_rule, logit="scale")
    normalisation: GaussianNormalisation = eqx.field(static=True)

    manifold: ClassVar[GaussianMoments] = GAUSSIAN
    num_tokens: ClassVar[None] = None  # the manifold fixes the rows of a state: d + 1

    def __init__(self, Q: ArrayLike | Sequence, K: ArrayLike | Sequence, V: ArrayLike | Sequence, *,
                 beta: float | ArrayLike = 1.0, normalisation: GaussianNormalisation | str = "softmax"):
        if normalisation not in ("softmax", "sinkhorn"):
            raise ValueError(f"normalisation must be 'softmax' or 'sinkhorn' (the converged doubly stochastic "
                             f"coupling), got {normalisation!r}")
        self.V = as_finite_array(V, "V", 2, "a square matrix (d, d)")
        d = self.V.shape[0]
        if self.V.shape != (d, d):
            raise ValueError(f"V must be square (d, d), got shape {self.V.shape}")
        self.Q = as_finite_array(Q, "Q", 2, "a matrix (m, d)")
        self.K = as_finite_array(K, "K", 2, "a matrix (m, d)")
        if self.Q.shape != self.K.shape or self.Q.shape[1] != d:
            raise ValueError(f"Q and K must both be (m, d) with d = {d} (the size of V); got Q {self.Q.shape}, "
                             f"K {self.K.shape}")
        self.beta = check_beta(beta)
        self.normalisation = normalisation

    @property
    def dim(self) -> int:
        """d: the columns of one state (the manifold requires d + 1 rows)."""
        return self.V.shape[0]

    @property
    def a(self) -> Float[Array, "d d"]:
        """A = beta K^T Q: the logits are x^T A^T y."""
        return self.beta * self.K.T @ self.Q

    def affine_velocity(self, mean: Float[ArrayLike, " d"] | Sequence, covariance: Float[ArrayLike, "d d"] | Sequence
                        ) -> tuple[Float[Array, "d d"], Float[Array, " d"]]:
        """(M, b) with Gamma[N(m, Sigma)](x) = M x + b, the token velocity of the mean-field flow."""
        mean = jnp.asarray(mean)
        covariance = jnp.asarray(covariance)
        if self.normalisation == "softmax":
            M = self.V @ covariance @ self.a
            return M, self.V @ mean
        s = gaussian_sinkhorn_coupling(covariance, self.a)
        M = self.V @ jnp.linalg.solve(covariance, s).T  # V S^T Sigma^{-1}
        return M, self.V @ mean - M @ mean

    def velocity(self, t, x: Float[Array, "d1 d"]) -> Float[Array, "d1 d"]:
        mean, cov = gaussian_moments(x)
        if self.normalisation == "softmax":
            vsa = self.V @ cov @ self.a
            dmean = self.V @ mean + vsa @ mean
            half = vsa @ cov
        else:
            dmean = self.V @ mean
            half = self.V @ gaussian_sinkhorn_coupling(cov, self.a).T
        return gaussian_state(dmean, half + half.T)
