"""Modified Bessel functions I_nu(x) of real order nu >= 0, in log space, valid for every order and argument.

``jax.scipy.special`` only has I_0 and I_1 (and their scaled forms), but the growth rates of
paper 004 need I_{k + (d-2)/2}(beta) for every k, every dimension d and beta up to 10^4 and beyond,
under ``jit`` with a traced beta. We compute log(e^{-x} I_nu(x)) from three classical pieces
(Olver 1954; DLMF 10.25.2, 10.41.3, 10.41.10, 10.29.1), with a fixed amount of work for every (nu, x):

* **Power series** for x <= ``X_SERIES`` = 2: I_nu(x) = (x/2)^nu / Gamma(nu+1) sum_m (x^2/4)^m / (m! (nu+1)_m)
  (DLMF 10.25.2), 20 terms (each <= 1/m!), all positive, so relative accuracy is kept.

* **Uniform (Debye) asymptotic expansion** for orders mu >= ``NU_DEBYE`` = 32 (and x > 2). With z = x/mu,
  t = 1/sqrt(1 + z^2) = mu / sqrt(mu^2 + x^2) and eta = sqrt(1+z^2) + log(z / (1 + sqrt(1+z^2))),

      I_mu(mu z) = e^{mu eta} / (sqrt(2 pi mu) (1+z^2)^{1/4}) * sum_{k>=0} u_k(t) / mu^k,      (DLMF 10.41.3)

  uniformly in z > 0. The polynomials u_k (degree 3k, DLMF 10.41.10) are generated exactly (rational
  arithmetic) at import by u_{k+1} = t^2 (1-t^2) u_k'/2 + (1/8) int_0^t (1 - 5 s^2) u_k(s) ds;
  14 terms leave max_t |u_14(t)| / 32^14 < 3e-19. The scaled logarithm is written without
  cancellation: mu eta - x = mu^2 / (sqrt(mu^2+x^2) + x) - mu asinh(mu/x).
* **Downward recurrence of ratios** for nu < ``NU_DEBYE`` (and x > 2): with mu = nu + N >= NU_DEBYE (N a whole
  number of steps) and r_m = I_{m+1}(x) / I_m(x),

      I_{m-1}(x) = I_m(x) (2m/x + r_m),   r_{m-1} = 1 / (2m/x + r_m),                (DLMF 10.29.1)

  started from r_mu given by the expansion. I_nu is the minimal solution of this recurrence as the
  order grows, so the recurrence run downwards is stable (errors in r_mu are damped), and
  log I_nu = log I_mu + sum_m log(2m/x + r_m) never overflows.

No series length depends on x, so a traced x costs the same as a concrete one and nothing is
allocated in proportion to x (the power series used before needed ~x/2 terms: 1024 fixed terms
under ``jit`` were wrong beyond x ~ 1000). Everything is differentiable in x and nu by ``jax.grad``.

Accuracy (``tests/test_extreme_beta.py``, against ``scipy.special.ive`` and 30-digit ``mpmath``
on nu in [0, 2000], x in [1e-3, 1e5]): relative error < 1e-12 wherever e^{-x} I_nu(x) > 1e-290
(typically a few 1e-15); d/dx log(e^{-x} I_nu) matches (I_{nu-1} + I_{nu+1}) / (2 I_nu) - 1.

[`kernel_coefficients`][jaxattn.spectral.kernel_coefficients] gives the Funk-Hecke coefficients of the attention kernel
W(q) = beta^{-1} e^{beta q} on S^{d-1} (Bruno, Pasqualotto, Agazzi 2025, eq. (4) and Remark 4.1)
from these functions; it is the one implementation behind the linear theory and the spectral
solvers ([`jaxattn.spectral`][jaxattn.spectral]) and the S^2 harmonics evaluator ([`jaxattn.fields`][jaxattn.fields]).
Unscaled values overflow float64 once beta > ~705 (W_0 ~ e^beta / beta^{3/2}): they raise a clear
error, eagerly and under ``jit``; ``scaled=True`` and [`log_kernel_coefficients`][jaxattn.spectral.log_kernel_coefficients] are finite
for every beta.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np
import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln
from jaxtyping import Array, ArrayLike, Float

from ._validate import check_beta, check_dim, check_nonneg_int, is_concrete

#: orders at and above which the uniform asymptotic expansion is used directly
NU_DEBYE = 32
_DEBYE_TERMS = 14
#: arguments at and below which the power series is used (its terms are <= 1/m!: 20 terms reach 4e-19)
X_SERIES = 2.0
_SERIES_TERMS = 20


def _debye_polynomials(n: int) -> list[list[float]]:
    """Coefficients (in powers of t) of u_0..u_{n-1} of DLMF 10.41.10, generated exactly."""
    us = [[Fraction(1)]]
    for _ in range(n - 1):
        u = us[-1]
        out = [Fraction(0)] * (len(u) + 3)
        for i, c in enumerate(u):  # t^2 (1 - t^2) u'(t) / 2
            if i:
                out[i + 1] += i * c / 2
                out[i + 3] -= i * c / 2
        for i, c in enumerate(u):  # (1/8) int_0^t (1 - 5 s^2) u(s) ds
            out[i + 1] += c / (8 * (i + 1))
            out[i + 3] -= 5 * c / (8 * (i + 3))
        while out and out[-1] == 0:
            out.pop()
        us.append(out)
    return [[float(c) for c in u] for u in us]


_U = _debye_polynomials(_DEBYE_TERMS)
#: C[k, j]: coefficient of t^j in u_k(t)
_C = np.array([u + [0.0] * (3 * _DEBYE_TERMS - 2 - len(u)) for u in _U])


def _log_ive_debye(mu, x):
    """log(e^{-x} I_mu(x)) by the uniform expansion (accurate for mu >= NU_DEBYE), elementwise.

    sum_k u_k(t) / mu^k = sum_{k,j} C_kj t^j mu^{-k}: two small power tables and one contraction
    (a compact graph: unrolled Horner loops made compilation 5x slower, measured).
    """
    rho = jnp.sqrt(mu * mu + x * x)
    t = mu / rho
    t_pow = t[..., None] ** jnp.arange(_C.shape[1], dtype=t.dtype)
    mu_pow = (1 / mu)[..., None] ** jnp.arange(_C.shape[0], dtype=t.dtype)
    series = jnp.sum((t_pow @ jnp.asarray(_C.T, t.dtype)) * mu_pow, axis=-1)
    exponent = mu * mu / (rho + x) - mu * jnp.arcsinh(mu / x)
    return exponent - 0.5 * math.log(2 * math.pi) - 0.5 * jnp.log(rho) + jnp.log(series)


def _log_ive_all(nu, x):
    """log(e^{-x} I_nu(x)) for every nu >= 0 and x > 0 (module docstring), elementwise."""
    steps = jnp.clip(jnp.ceil(NU_DEBYE - nu), 0, NU_DEBYE)  # whole steps down from mu = nu + steps
    mu = nu + steps
    top, above = _log_ive_debye(jnp.stack([mu, mu + 1]), jnp.stack([x, x]))
    r = jnp.exp(above - top)  # r_mu = I_{mu+1} / I_mu

    def down(carry, j):
        r, acc = carry
        active = j < steps
        m = jnp.where(active, mu - j, mu)  # order of the step (kept > 0 where inactive)
        den = 2 * m / x + r
        return (jnp.where(active, 1 / den, r), acc + jnp.where(active, jnp.log(den), 0.0)), None

    (_, acc), _ = jax.lax.scan(down, (r, jnp.zeros_like(top)), jnp.arange(NU_DEBYE, dtype=x.dtype))
    return top + acc


def _log_ive_series(nu, x):
    """log(e^{-x} I_nu(x)) by the power series (DLMF 10.25.2), ``_SERIES_TERMS`` terms: for x <= ``X_SERIES``."""
    y = x * x / 4

    def horner(s, m):  # 1 + y/(1 (nu+1)) (1 + y/(2 (nu+2)) (1 + ...)), innermost first
        return 1 + s * y / (m * (nu + m)), None

    ms = jnp.arange(_SERIES_TERMS, 0, -1, dtype=x.dtype)
    s, _ = jax.lax.scan(horner, jnp.ones_like(y), ms)  # a loop, not an unrolled chain: 10x faster to compile
    # (x/2)^nu: 1 at nu = x = 0 (where nu log(x/2) would be 0 * -inf), 0 for nu > 0 at x = 0
    power = nu * jnp.log(jnp.where((x == 0) & (nu == 0), 1.0, x) / 2)
    return power - gammaln(nu + 1) + jnp.log(s) - x


def _log_ive_raw(nu, x):
    """log(e^{-x} I_nu(x)): the series for x <= ``X_SERIES``, the recurrence/expansion above.

    Branches are chosen with ``jnp.where`` on a condition, each branch evaluated at a safe argument
    (the "double where"): the derivative is exactly the chosen branch's, also at the switch point
    x = ``X_SERIES`` (``jnp.minimum``/``jnp.maximum`` would split it between the two sides there and
    halve d/dx), and the branch not taken never contributes a NaN. At x = 0 the series is exact
    (I_0(0) = 1, so d/dx log(e^{-x} I_0(x)) = -1 there; I_nu(0) = 0 for nu > 0: -inf, slope +inf).
    """
    nu, x = jnp.broadcast_arrays(nu, x)
    small = x <= X_SERIES
    series = _log_ive_series(nu, jnp.where(small, x, X_SERIES))
    large = _log_ive_all(nu, jnp.where(small, X_SERIES, x))
    return jnp.where(small, series, large)


_log_ive_value = jax.jit(_log_ive_raw)


@functools.partial(jax.jit, static_argnames="wrt")
def _log_ive_slopes(nu, x, wrt: tuple[bool, bool]):
    """log(e^{-x} I_nu(x)) and its elementwise partial derivatives in (nu, x) where ``wrt``, by forward mode."""
    # one argument at a time, the other held constant (a zero tangent would make 0 * log(0) = NaN at x = 0)
    ones = jnp.ones_like(x)
    value, slopes = _log_ive_raw(nu, x), []
    if wrt[0]:
        value, d = jax.jvp(lambda n: _log_ive_raw(n, x), (nu,), (ones,))
        slopes.append(d)
    if wrt[1]:
        value, d = jax.jvp(lambda y: _log_ive_raw(nu, y), (x,), (ones,))
        slopes.append(d)
    return value, slopes


@jax.custom_jvp
def _log_ive(nu, x):
    return _log_ive_value(nu, x)


@functools.partial(_log_ive.defjvp, symbolic_zeros=True)
def _log_ive_jvp(primals, tangents):
    # the derivative as explicit elementwise slopes: reverse mode then only transposes products
    # (linearising the scans directly cost ~15 s of compilation per eager jax.grad, measured), and
    # the slope in nu (which no caller differentiates today) is only compiled when asked for
    wrt = tuple(not isinstance(t, jax.custom_derivatives.SymbolicZero) for t in tangents)
    if is_concrete(primals):  # eager jax.grad: share compiled kernels across shapes (as in log_ive)
        shape = primals[0].shape
        flat, size = _bucket(*primals)
        value, slopes = _log_ive_slopes(*flat, wrt=wrt)
        value, slopes = _unbucket(value, size, shape), [_unbucket(d, size, shape) for d in slopes]
    else:
        value, slopes = _log_ive_slopes(*primals, wrt=wrt)
    out = jnp.zeros_like(value)
    for t, d in zip((t for t, w in zip(tangents, wrt) if w), slopes):
        out = out + d * t
    return value, out


def _bucket(nu, x):
    """(nu, x) broadcast, flattened and padded (x = 1) to a power-of-two length >= 8, on the host; and the true size."""
    n_h, x_h = np.broadcast_arrays(np.asarray(nu), np.asarray(x))
    pad = max(8, 1 << max(n_h.size - 1, 0).bit_length()) - n_h.size
    return (jnp.asarray(np.pad(n_h.ravel(), (0, pad))), jnp.asarray(np.pad(x_h.ravel(), (0, pad), constant_values=1))), n_h.size


def _unbucket(values, size, shape):
    return jnp.asarray(np.asarray(values)[:size].reshape(shape))


def _check_arguments(nu, x):
    if is_concrete(nu, x):
        n, xv = np.asarray(nu), np.asarray(x)
        if not (np.all(np.isfinite(xv)) and np.all(xv >= 0)):
            raise ValueError(f"the Bessel argument x must be finite and >= 0, got {xv if xv.size < 8 else 'an array'} "
                             f"(min {np.min(xv)}, max {np.max(xv)})")
        if not (np.all(np.isfinite(n)) and np.all(n >= 0)):
            raise ValueError(f"the Bessel order nu must be finite and >= 0, got min {np.min(n)}")


def log_ive(nu: ArrayLike, x: ArrayLike) -> Float[Array, "..."]:
    """log( e^{-x} I_nu(x) ) for nu >= 0 and x >= 0, broadcasting nu against x (module docstring).

    Finite for every finite x > 0 and nu (-inf only where I_nu(x) underflows the exponent range,
    e.g. nu = 2000 at x = 1e-3); differentiable in x and nu; same cost traced or concrete.
    """
    dtype = jnp.result_type(float)
    nu = jnp.asarray(nu, dtype=jnp.result_type(nu, dtype) if hasattr(nu, "dtype") else dtype)
    x = jnp.asarray(x, dtype=jnp.result_type(x, dtype) if hasattr(x, "dtype") else dtype)
    _check_arguments(nu, x)
    dt = jnp.result_type(nu, x)
    if is_concrete(nu, x):  # eager: one compiled kernel per power-of-two size, shared by every shape
        flat, size = _bucket(nu.astype(dt), x.astype(dt))
        return _unbucket(_log_ive_value(*flat), size, jnp.broadcast_shapes(nu.shape, x.shape))
    nu, x = jnp.broadcast_arrays(nu.astype(dt), x.astype(dt))
    return _log_ive(nu, x)


def ive(nu: ArrayLike, x: ArrayLike) -> Float[Array, "..."]:
    """Exponentially scaled modified Bessel function e^{-x} I_nu(x) (nu >= 0, x >= 0), finite for every x."""
    return jnp.exp(log_ive(nu, x))


def refuse(values, bad, message: str):
    """``values``, or an error with ``message`` where ``bad`` holds: a ValueError eagerly, through
    ``equinox.error_if`` when traced (so ``jit``/``grad``/``vmap`` report it too)."""
    if is_concrete(values, bad):
        if bool(np.any(np.asarray(bad))):
            raise ValueError(message)
        return values
    return eqx.error_if(values, jnp.any(bad), message)


def refuse_overflow(values, message: str):
    """``values``, or an error with ``message`` where they overflowed (`refuse` on non-finite values)."""
    return refuse(values, ~jnp.isfinite(values), message)


def iv(nu: ArrayLike, x: ArrayLike) -> Float[Array, "..."]:
    """Modified Bessel function of the first kind I_nu(x) (nu >= 0, x >= 0); raises where it overflows (x > ~705)."""
    x = jnp.asarray(x, dtype=jnp.result_type(float))
    out = jnp.exp(log_ive(nu, x) + x)
    return refuse_overflow(out, "I_nu(x) overflows float64 (it grows like e^x: x > ~705 does not fit). "
                                "Use ive (e^{-x} I_nu(x)) or log_ive.")


def log_kernel_coefficients(beta: ArrayLike, kmax: int, d: int = 2) -> Float[Array, "... {kmax+1}"]:
    r"""log W_k(beta, d), k = 0..kmax (see [`kernel_coefficients`][jaxattn.spectral.kernel_coefficients]): finite for every beta > 0.

        log W_k = log Gamma(d/2) + ((d-2)/2) log(2/beta) - log beta + log(e^{-beta} I_{k+(d-2)/2}(beta)) + beta.
    """
    check_beta(beta, scalar=False)
    d = check_dim(d)
    kmax = check_nonneg_int("kmax", kmax)
    beta = jnp.asarray(beta, dtype=jnp.result_type(beta, jnp.result_type(float)))
    k = jnp.arange(kmax + 1, dtype=beta.dtype)
    b = beta[..., None]
    a = (d - 2) / 2
    return gammaln(d / 2) + a * jnp.log(2.0 / b) - jnp.log(b) + log_ive(k + a, b) + b


def kernel_coefficients(beta: ArrayLike, kmax: int, d: int = 2, scaled: bool = False) -> Float[Array, "... {kmax+1}"]:
    r"""W_k(beta, d), k = 0..kmax: Funk-Hecke coefficients of W(q) = beta^{-1} e^{beta q}.

    Bruno, Pasqualotto, Agazzi (2025), eq. (4) and Remark 4.1, on the probability measure of S^{d-1}:

        W_k = Gamma(d/2) (2/beta)^{(d-2)/2} I_{k+(d-2)/2}(beta) / beta,

    i.e. the eigenvalue of f -> int W(<., y>) f(y) dsigma-bar(y) on the degree-k harmonics, so that
    e^{beta q} = beta sum_k N(k, d) W_k P_k(q) with P_k the Gegenbauer polynomial normalised to
    P_k(1) = 1 and N(k, d) the dimension of the degree-k harmonics. On S^1 (d = 2) this is the
    Fourier coefficient of W(theta) = beta^{-1} e^{beta cos theta} = sum_k W_k e^{ik theta}, W_k = I_k(beta)/beta;
    on S^2 (d = 3) it is W_k = i_k(beta)/beta with the modified spherical Bessel function i_k.
    ``scaled=True`` returns e^{-beta} W_k (finite for every beta). ``beta`` may be an array (leading
    axes); differentiable in beta, relative accuracy that of `log_ive`. Unscaled W_k overflow
    float64 for beta > ~705: that raises (eagerly and under ``jit``) and names the alternatives
    (``scaled=True``, [`log_kernel_coefficients`][jaxattn.spectral.log_kernel_coefficients]).
    """
    log_w = log_kernel_coefficients(beta, kmax, d)
    if scaled:
        return jnp.exp(log_w - jnp.asarray(beta, log_w.dtype)[..., None])
    return refuse_overflow(
        jnp.exp(log_w),
        f"The kernel coefficients W_k(beta, d={d}) = Gamma(d/2) (2/beta)^((d-2)/2) I_(k+(d-2)/2)(beta) / beta overflow "
        "float64 (they grow like e^beta: beta > ~705 does not fit). Use kernel_coefficients(..., scaled=True) "
        "(e^{-beta} W_k) or log_kernel_coefficients.")
