"""Lost in the middle: the correlation profile and retrieval score of causal ALiBi attention.

Duerinckx, Geshkovski, Rossi, "Kinetic theory for Transformers and the lost-in-the-middle phenomenon"
(arXiv 2605.09213, 2026), for the particle model [`jaxattn.fields.AlibiCircleAttention`][jaxattn.fields.AlibiCircleAttention]
(tokens at relative positions sigma = j/N, decay lambda >= 0, kernel w_beta = e^{beta cos}) started from
i.i.d. uniform prompts.

* **ALiBi kernel** of the layered mean-field equation (Theorem mf-gpt):
  k_lambda(sigma, sigma') = lambda e^{-lambda(sigma - sigma')} / (1 - e^{-lambda sigma}) for sigma' < sigma
  (lambda = 0: 1/sigma).
* **Volterra-Hardy equation** for the correlation of the token at sigma with the source token at
  sigma_0 (eq. Hardy-hom): d/dt g_a(t, sigma) = a (k_lambda(sigma, sigma_0) + int_{sigma_0}^sigma
  k_lambda(sigma, s) g_a(t, s) ds), g_a(0, .) = 0, solved in closed form (Proposition Bessel):

      g_a(t, sigma; sigma_0) = k_lambda(sigma, sigma_0) sqrt(a t / Y) I_1(2 sqrt(a t Y)),
      Y = log((e^{lambda sigma} - 1) / (e^{lambda sigma_0} - 1))      (lambda = 0: log(sigma / sigma_0)).

* **Retrieval score** (eq. soft-accuracy-expansion): with M codewords the soft accuracy of reading the
  source at the last token is sqrt(pi/2)/M + (sqrt(2 pi)/(M N)) S_t(sigma_0) + o(1/N), where

      S_t(sigma_0) = sum_{n=1}^{n_max} omega_n g_{a_n}(t, 1; sigma_0),   omega_n = e^{-pi^2 n^2/(2 M^2)},
      a_n = n^2 I_n(beta) (the Fourier coefficients of -w_beta'' with the normalised integral).

* **U shape** (Theorem U-shape): if t sup_n a_n <= min(3 - sqrt 3, 2(1 - e^{-lambda})) then S_t diverges
  as sigma_0 -> 0 (primacy), S_t'(1-) > 0 (recency) and S_t has a unique minimum in (0, 1).
* **Critical time** (the authors' code, ``t_crit``): the right-end slope of the truncated profile is
  S_t'(1-) = sum_n omega_n [lambda c a_n t - c^2 (a_n t)^2 / 2], c = lambda / (1 - e^{-lambda}) (derived by
  differentiating the closed form at sigma_0 = 1), positive exactly for t < t_crit with

      t_crit = 2 (1 - e^{-lambda}) sum_n omega_n a_n / sum_n omega_n a_n^2:

  recency is lost after t_crit. For one mode t_crit = 2(1 - e^{-lambda})/a_n, the second member of the
  smallness condition.

Everything is a jnp function of its arguments (jit/vmap/grad in t, sigma_0, beta, lambda).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import i1e
from jaxtyping import Array, ArrayLike, Float

from .._special import iv
from .._validate import check_beta, check_nonneg_int, check_positive
from ..fields import check_decay

#: the authors' defaults: M = 8 codewords, modes n = 1..20
DEFAULT_CODEWORDS = 8
DEFAULT_MODES = 20


def _c(lam):
    """lambda / (1 - e^{-lambda}), equal to 1 at lambda = 0 (a removable singularity)."""
    safe = jnp.where(lam > 0, lam, 1.0)
    return jnp.where(lam > 0, safe / -jnp.expm1(-safe), 1.0 + lam / 2)


def alibi_kernel(sigma: Float[ArrayLike, "..."], sigma0: Float[ArrayLike, "..."], lam: Float[ArrayLike, ""]
                 ) -> Float[Array, "..."]:
    """k_lambda(sigma, sigma_0) = lambda e^{-lambda(sigma - sigma_0)} / (1 - e^{-lambda sigma}) for sigma_0 < sigma, else 0."""
    lam = check_decay(lam)
    sigma, sigma0 = jnp.asarray(sigma), jnp.asarray(sigma0)
    value = _c(lam * sigma) / sigma * jnp.exp(-lam * (sigma - sigma0))
    return jnp.where(sigma0 < sigma, value, 0.0)


def hardy_exponent(sigma: Float[ArrayLike, "..."], sigma0: Float[ArrayLike, "..."], lam: Float[ArrayLike, ""]
                   ) -> Float[Array, "..."]:
    """Y(sigma; sigma_0) = log((e^{lambda sigma} - 1)/(e^{lambda sigma_0} - 1)) (lambda = 0: log(sigma/sigma_0))."""
    lam = check_decay(lam)
    sigma, sigma0 = jnp.asarray(sigma), jnp.asarray(sigma0)
    # (e^{l s} - 1)/(e^{l s0} - 1) = (s/s0) * [c(l s0) / c(l s)] * e^{l (s - s0)}, finite at lambda = 0
    return jnp.log(sigma / sigma0) + jnp.log(_c(lam * sigma0) / _c(lam * sigma)) + lam * (sigma - sigma0)


def _psi(z, y):
    """sqrt(z / Y) I_1(2 sqrt(z Y)) = sum_k z^{k+1} Y^k / (k! (k+1)!), z = a t: z * I_1(u)/(u/2), u = 2 sqrt(z Y)."""
    u = 2.0 * jnp.sqrt(jnp.maximum(z * y, 0.0))
    small = u < 1e-4
    safe = jnp.where(small, 1.0, u)
    ratio = jnp.where(small, 1.0 + u**2 / 8, i1e(safe) * jnp.exp(safe) / (safe / 2))
    return z * ratio


def hardy_profile(a: Float[ArrayLike, "..."], t: Float[ArrayLike, "..."], sigma: Float[ArrayLike, "..."],
                  sigma0: Float[ArrayLike, "..."], lam: Float[ArrayLike, ""]) -> Float[Array, "..."]:
    """g_a(t, sigma; sigma_0) = k_lambda(sigma, sigma_0) sqrt(a t/Y) I_1(2 sqrt(a t Y)) (Proposition Bessel)."""
    z = jnp.asarray(a) * jnp.asarray(t)
    y = hardy_exponent(jnp.maximum(sigma, sigma0), sigma0, lam)
    return alibi_kernel(sigma, sigma0, lam) * _psi(z, y)


def mode_weights(beta: Float[ArrayLike, ""], codewords: int = DEFAULT_CODEWORDS, modes: int = DEFAULT_MODES
                 ) -> tuple[Float[Array, " modes"], Float[Array, " modes"]]:
    """(a_n, omega_n) for n = 1..modes: a_n = n^2 I_n(beta), omega_n = e^{-pi^2 n^2 / (2 M^2)}."""
    beta = check_beta(beta)
    check_positive("codewords", codewords)
    modes = check_nonneg_int("modes", modes)
    n = jnp.arange(1, modes + 1, dtype=beta.dtype)
    return n**2 * iv(n, beta), jnp.exp(-(jnp.pi**2) * n**2 / (2.0 * codewords**2))


def retrieval_score(t: Float[ArrayLike, ""], sigma0: Float[ArrayLike, "..."], beta: Float[ArrayLike, ""],
                    lam: Float[ArrayLike, ""], *, codewords: int = DEFAULT_CODEWORDS, modes: int = DEFAULT_MODES
                    ) -> Float[Array, "..."]:
    """S_t(sigma_0) = sum_{n <= modes} omega_n g_{a_n}(t, 1; sigma_0) (module docstring; sigma_0 in (0, 1)).

    Args:
        t: time of the particle model ([`jaxattn.fields.AlibiCircleAttention`][jaxattn.fields.AlibiCircleAttention]).
        sigma0: relative position(s) j/N of the source token.
        beta: the kernel's inverse temperature.
        lam: the ALiBi decay rate >= 0.
        codewords: M, the number of codewords of the retrieval task (omega_n = e^{-pi^2 n^2/(2 M^2)}).
        modes: the Fourier modes n = 1..modes summed.

    Returns:
        S_t at each sigma0.
    """
    a, omega = mode_weights(beta, codewords, modes)
    sigma0 = jnp.asarray(sigma0)
    g = hardy_profile(a, t, 1.0, sigma0[..., None], lam)
    return jnp.sum(omega * g, axis=-1)


def recency_slope(t: Float[ArrayLike, ""], beta: Float[ArrayLike, ""], lam: Float[ArrayLike, ""], *,
                  codewords: int = DEFAULT_CODEWORDS, modes: int = DEFAULT_MODES) -> Float[Array, ""]:
    """S_t'(1-) = sum_n omega_n [lambda c a_n t - c^2 (a_n t)^2 / 2], c = lambda/(1 - e^{-lambda}) (module docstring)."""
    lam = check_decay(lam)
    a, omega = mode_weights(beta, codewords, modes)
    c = _c(lam)
    z = a * jnp.asarray(t)
    return jnp.sum(omega * (lam * c * z - c**2 * z**2 / 2))


def critical_time(beta: Float[ArrayLike, ""], lam: Float[ArrayLike, ""], *, codewords: int = DEFAULT_CODEWORDS,
                  modes: int = DEFAULT_MODES) -> Float[Array, ""]:
    """t_crit = 2 (1 - e^{-lambda}) sum omega_n a_n / sum omega_n a_n^2: recency (S_t'(1-) > 0) holds for t < t_crit."""
    lam = check_decay(lam)
    a, omega = mode_weights(beta, codewords, modes)
    return -2.0 * jnp.expm1(-lam) * jnp.sum(omega * a) / jnp.sum(omega * a**2)


def smallness_bound(beta: Float[ArrayLike, ""], lam: Float[ArrayLike, ""], *, modes: int = 256) -> Float[Array, ""]:
    """min(3 - sqrt 3, 2(1 - e^{-lambda})) / sup_{n >= 1} a_n: the U-shape theorem holds for t up to this.

    a_n = n^2 I_n(beta) decays like (beta/2)^n n^2/n! once n > beta, so the sup over n <= ``modes`` (256) is the
    sup over all n for beta up to ~100."""
    lam = check_decay(lam)
    a, _ = mode_weights(beta, DEFAULT_CODEWORDS, modes)
    return jnp.minimum(3.0 - jnp.sqrt(3.0), -2.0 * jnp.expm1(-lam)) / jnp.max(a)
