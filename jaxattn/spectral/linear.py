r"""Linear theory of the mean-field attention PDE at the uniform state (paper 004, Remark 4.1, App. C-D).

Conventions (paper 004 §4.1, App. C-D; ``docs/spectral.md``)
------------------------------------------------------------
* mu_t is a probability measure on S^{d-1}; densities are taken with respect to the *normalised*
  surface measure sigma-bar (uniform density 1) on S^{d-1}, d >= 3, and with respect to d theta on
  S^1 (uniform density 1/(2 pi)). Rates do not depend on this choice.
* Time is the time of the particle ODE
      USA: dx_i/dt = P_{x_i}( (1/N) sum_j e^{beta ⟨x_i,x_j⟩} x_j )                (paper 004 eq. (USA))
      SA : dx_i/dt = P_{x_i}( sum_j e^{beta ⟨x_i,x_j⟩} x_j / sum_k e^{beta ⟨x_i,x_k⟩} )
  i.e. on S^1: dtheta_i/dt = -(1/N) sum_j e^{beta cos(theta_i-theta_j)} sin(theta_i-theta_j)   (eq. (10)).
  With V = -I (``sign=-1``) every velocity flips sign.
* The kernel W(q) = beta^{-1} e^{beta q} has Funk-Hecke (Gegenbauer) coefficients, on the probability
  measure,
      W_k(beta, d) = Gamma(d/2) (2/beta)^{(d-2)/2} I_{k+(d-2)/2}(beta) / beta        (d = 2: I_k(beta)/beta),
  and mode k of a perturbation of the uniform state grows at
      gamma_k = sign * k (k+d-2) W_k          (USA; paper eq. (20)/(22), d = 2: k^2 I_k(beta)/beta)
      gamma_k^SA = gamma_k / (beta W_0) = sign * k(k+d-2) I_{k+a}(beta) / (beta I_a(beta)),  a = (d-2)/2.

Errata of the paper handled here (``docs/spectral.md``, errata 1-2): Fig. 2 and the authors' code plot gamma_k / pi, not
gamma_k; the large-beta asymptotics is k_max ~ sqrt(2 beta) (not sqrt(beta)), in general
k_max ~ sqrt(2 beta + a^2) - a.

Everything returning rates is written in JAX and differentiable in beta (the Bessel functions come
from `jaxattn._special`, in log space: right for every beta); [`dominant_mode`][jaxattn.spectral.dominant_mode] and
[`crossover_betas`][jaxattn.spectral.crossover_betas] are piecewise constant / root-found and return NumPy values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .. import _special as _bessel
from .._special import kernel_coefficients, log_kernel_coefficients
from .._validate import check_beta, check_dim, check_model, check_nonneg_int, check_sign, is_concrete
from ._gegenbauer import gegenbauer_table, harmonic_dimension, sphere_weight_nodes

__all__ = [
    "kernel_coefficients",
    "log_kernel_coefficients",
    "growth_rates",
    "growth_rate",
    "dominant_mode",
    "kmax_asymptotic",
    "crossover_betas",
    "funk_hecke_coefficients",
    "harmonic_dimension",
    "exit_time_slope",
    "grenier_coefficient",
]


def growth_rates(
    beta: ArrayLike, kmax: int, d: int = 2, model: str = "usa", sign: int = 1, time_rescaled: bool = False
) -> Float[Array, "... {kmax+1}"]:
    r"""Growth rates gamma_k, k = 0..kmax, of mode k (degree-k harmonics) at the uniform state.

    USA: gamma_k = sign k(k+d-2) W_k(beta,d)   (paper 004 eq. (20)-(22); d = 2: k^2 I_k(beta)/beta);
    SA : gamma_k = sign k(k+d-2) I_{k+a}(beta) / (beta I_a(beta)), a = (d-2)/2 (the USA rate over beta W_0).
    Time is the particle-ODE time (module docstring). Differentiable in beta. Computed in log space
    (`jaxattn._special`), so SA rates are right for every beta (1e4 and beyond), eagerly and
    under ``jit``. USA rates grow like e^beta and overflow float64 for beta > ~705: that raises;
    ``time_rescaled=True`` gives the USA rates times e^{-beta}, i.e. in the time of
    ``UnnormalisedSelfAttention(time_rescaled=True)``, finite for every beta (USA only).

    >>> float(growth_rates(5.0, 3)[3])   # doctest: +ELLIPSIS
    18.59607...

    **Arguments:**

    - `beta`: the inverse temperature, float scalar or array (...), > 0.
    - `kmax`: the largest mode, int >= 0.
    - `d`: the ambient dimension (S^{d-1}), int >= 2; default 2 (the circle).
    - `model`: "usa" (default) or "sa".
    - `sign`: +1 (default, V = I) or -1 (V = -I, every rate flips sign).
    - `time_rescaled`: USA only: the rates times e^{-beta}; default False.

    **Returns:**

    gamma_0..gamma_kmax, float (..., kmax+1).

    **Raises:**

    - `ValueError`: an invalid argument, ``time_rescaled=True`` with ``model="sa"``, or USA rates that overflow float64.
    """
    check_beta(beta, scalar=False)
    d = check_dim(d)
    model = check_model(model)
    sign = check_sign(sign)
    kmax = check_nonneg_int("kmax", kmax)
    if time_rescaled and model != "usa":
        raise ValueError("time_rescaled=True rescales the USA time by e^{-beta}; SA rates are finite for every beta: "
                         "drop time_rescaled or use model='usa'")
    beta = jnp.asarray(beta, dtype=jnp.result_type(beta, jnp.result_type(float)))
    k = jnp.arange(kmax + 1, dtype=beta.dtype)
    lam = k * (k + d - 2)
    b = beta[..., None]
    a = (d - 2) / 2
    if model == "usa":
        if time_rescaled:
            rates = lam * kernel_coefficients(beta, kmax, d, scaled=True)
        else:
            log_rates = jnp.log(jnp.where(lam > 0, lam, 1.0)) + log_kernel_coefficients(beta, kmax, d)
            rates = _bessel.refuse_overflow(
                jnp.where(lam > 0, jnp.exp(log_rates), 0.0),
                f"The USA growth rates k(k+d-2) W_k(beta, d={d}) overflow float64 (they grow like e^beta: "
                "beta > ~705 does not fit). Use growth_rates(..., time_rescaled=True) (rates times e^{-beta}, the "
                "time of UnnormalisedSelfAttention(time_rescaled=True)), log_kernel_coefficients, or model='sa'.")
    else:
        log_ratio = _bessel.log_ive(k + a, b) - _bessel.log_ive(jnp.asarray(a, b.dtype), b)
        rates = lam * jnp.exp(log_ratio) / b
    return sign * rates


def growth_rate(
    beta: ArrayLike, k: int, d: int = 2, model: str = "usa", sign: int = 1, time_rescaled: bool = False
) -> Float[Array, "..."]:
    """gamma_k for a single mode k (see [`growth_rates`][jaxattn.spectral.growth_rates]).

    **Arguments:**

    - `beta`: the inverse temperature, float scalar or array (...), > 0.
    - `k`: the mode, int >= 0.
    - `d`: the ambient dimension, int >= 2; default 2.
    - `model`: "usa" (default) or "sa".
    - `sign`: +1 (default) or -1.
    - `time_rescaled`: USA only: the rate times e^{-beta}; default False.

    **Returns:**

    gamma_k, float (...).
    """
    return growth_rates(beta, k, d, model, sign, time_rescaled)[..., k]


def _search_kmax(beta: float, d: int) -> int:
    a = (d - 2) / 2
    return int(2 * (np.sqrt(2 * beta + a * a) - a) + 12)


def dominant_mode(beta: ArrayLike, d: int = 2, model: str = "usa") -> np.ndarray | int:
    r"""k_max(beta, d) = argmax_{k>=1} gamma_k = argmax_k k(k+d-2) I_{k+(d-2)/2}(beta) (paper Assumption 2).

    Same for SA and USA (their rates differ by the k-independent factor beta W_0). Returns an int for
    scalar beta and an int array for array beta. Piecewise constant in beta, hence not differentiable;
    at a crossover `beta*_k` ([`crossover_betas`][jaxattn.spectral.crossover_betas]) the maximiser is not unique and the smaller k is
    returned. For V = -I every gamma_k < 0 and no mode is unstable, so there is no ``sign`` argument.

    **Arguments:**

    - `beta`: the inverse temperature, a concrete float scalar or array, 0 < beta <= 1e8.
    - `d`: the ambient dimension, int >= 2; default 2.
    - `model`: "usa" (default) or "sa".

    **Returns:**

    k_max, an int for scalar beta, an int array of beta's shape otherwise.

    **Raises:**

    - `TypeError`: ``beta`` is traced (under ``jax.jit``/``grad``/``vmap``).
    - `ValueError`: an invalid argument, or beta > 1e8.
    """
    if not is_concrete(beta):
        raise TypeError(
            "dominant_mode is not traceable (a host-side argmax over the Bessel rates, piecewise constant "
            "in beta): call it outside jax.jit/grad/vmap with a concrete beta, or use the traceable "
            "kmax_asymptotic(beta, d)")
    check_beta(beta, scalar=False)
    d = check_dim(d)
    check_model(model)
    from scipy.special import ive

    b = np.asarray(beta, dtype=float)
    if np.any(b > 1e8):  # the search scans ~2 sqrt(2 beta) modes
        raise ValueError(f"dominant_mode scans ~2 sqrt(2 beta) modes; beta = {np.max(b):.3g} > 1e8 is too large: "
                         "use the asymptotic kmax_asymptotic(beta, d) instead")
    out = np.empty(b.shape, dtype=int)
    a = (d - 2) / 2
    for idx, bi in np.ndenumerate(b):
        k = np.arange(1, _search_kmax(bi, d) + 1)
        g = k * (k + d - 2) * ive(k + a, bi)  # k-dependent factor only: same argmax for SA and USA
        out[idx] = int(np.argmax(g) + 1)
    return int(out) if out.ndim == 0 else out


def kmax_asymptotic(beta: ArrayLike, d: int = 2) -> Float[Array, "..."]:
    """Continuous large-beta approximation sqrt(2 beta + a^2) - a, a = (d-2)/2 (``docs/spectral.md`` erratum 2: the paper's sqrt(beta) is wrong).

    **Arguments:**

    - `beta`: the inverse temperature, float scalar or array (...), > 0.
    - `d`: the ambient dimension, int >= 2; default 2.

    **Returns:**

    The continuous k_max, float (...).
    """
    check_beta(beta, scalar=False)
    d = check_dim(d)
    a = (d - 2) / 2
    return jnp.sqrt(2 * jnp.asarray(beta, dtype=jnp.result_type(float)) + a * a) - a


def crossover_betas(n: int, d: int = 2, xtol: float = 1e-13) -> np.ndarray:
    r"""`beta*_k` for k = 1..n: the beta at which k(k+d-2) I_{k+a}(beta) = (k+1)(k+d-1) I_{k+1+a}(beta).

    At `beta*_k` the dominant mode jumps from k to k+1 (Assumption 2 fails exactly there).
    d = 2: 1.04446, 3.16543, 6.21130, 10.22848, ... ~ k(k+1)/2 + 1/4. Root-found with scipy ``brentq``.

    **Arguments:**

    - `n`: how many crossovers, int >= 0.
    - `d`: the ambient dimension, int >= 2; default 2.
    - `xtol`: the absolute tolerance of ``brentq``; default 1e-13.

    **Returns:**

    `beta*_1..beta*_n`, a NumPy float array (n,).
    """
    from scipy.optimize import brentq
    from scipy.special import ive

    d = check_dim(d)
    n = check_nonneg_int("n", n)
    a = (d - 2) / 2

    def f(b, k):
        return k * (k + d - 2) * ive(k + a, b) - (k + 1) * (k + d - 1) * ive(k + 1 + a, b)

    out = []
    for k in range(1, n + 1):
        guess = ((k + 0.5 + a) ** 2 - a * a) / 2
        lo, hi = max(guess / 4, 1e-6), 4 * guess + 4
        out.append(brentq(f, lo, hi, args=(k,), xtol=xtol, rtol=1e-15))
    return np.asarray(out)


def funk_hecke_coefficients(
    f: Callable[[Array], Array], kmax: int, d: int, n_quad: int = 256
) -> Float[Array, " {kmax+1}"]:
    r"""Funk-Hecke coefficients of an arbitrary kernel f : [-1,1] -> R on the probability measure of S^{d-1}:

        f_k = c_d \int_{-1}^{1} f(t) P_k(t) (1-t^2)^{(d-3)/2} dt,    c_d = Gamma(d/2)/(sqrt(pi) Gamma((d-1)/2)),

    (paper Thm C.2 divided by |S^{d-1}|), by Gauss-Jacobi quadrature with ``n_quad`` nodes and the
    normalised Gegenbauer recurrence. Independent of the closed form in [`kernel_coefficients`][jaxattn.spectral.kernel_coefficients];
    for d = 2 it gives the Fourier cosine coefficient, f_k = (1/2pi) int f(cos theta) e^{-ik theta}.

    **Arguments:**

    - `f`: the kernel, a JAX function of an array of t in [-1, 1] (elementwise).
    - `kmax`: the largest degree, int >= 0.
    - `d`: the ambient dimension, int >= 2.
    - `n_quad`: the number of Gauss-Jacobi nodes; default 256 (exact for polynomials f of degree <= 2 n_quad - 1 - kmax).

    **Returns:**

    f_0..f_kmax, float (kmax+1,).
    """
    d = check_dim(d)
    kmax = check_nonneg_int("kmax", kmax)
    u, w = sphere_weight_nodes(d, n_quad)
    P, _ = gegenbauer_table(kmax, d, u)
    return P @ (jnp.asarray(w) * f(jnp.asarray(u)))


def exit_time_slope(beta: float, d: int = 2, model: str = "usa") -> float:
    """Predicted slope 1/(2 gamma_max) of the mean exit time from the uniform state against ln N (paper 004 §4.2, Fig. 3).

    **Arguments:**

    - `beta`: the inverse temperature, float > 0 (concrete).
    - `d`: the ambient dimension, int >= 2; default 2.
    - `model`: "usa" (default) or "sa".

    **Returns:**

    The slope, a float.
    """
    k = dominant_mode(beta, d, model)
    return float(1.0 / (2.0 * growth_rate(beta, k, d, model)))


def grenier_coefficient(beta: float, k: int) -> float:
    r"""Second-order Grenier coefficient on S^1 (paper 004 Thm 4.3 and App. C, USA): for rho_0 = 1/(2pi) + alpha cos(k theta),

        rho = 1/(2pi) + alpha e^{gamma_k t} cos(k theta) + alpha^2 A(t) cos(2k theta) + O(alpha^3),
        A(t) = c (e^{2 gamma_k t} - e^{gamma_{2k} t}),  c = 2 pi k^2 W_k / (2 gamma_k - gamma_{2k}).

    Returns c (3.710738 for beta = 5, k = 3; 3.410527 for beta = 7, k = 4).

    **Arguments:**

    - `beta`: the inverse temperature, float > 0.
    - `k`: the mode of the initial perturbation, int >= 1.

    **Returns:**

    c, a float.
    """
    g = growth_rates(beta, 2 * k)
    W = kernel_coefficients(beta, k)
    return float(2 * np.pi * k * k * W[k] / (2 * g[k] - g[2 * k]))
