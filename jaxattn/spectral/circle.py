r"""Pseudo-spectral solver of the mean-field attention PDE on the circle S^1 (paper 004 eq. (11)/(15)).

Equation and conventions (Bruno, Pasqualotto, Agazzi 2025, §4.1; stated again in every test)
-----------------------------------------------------------------------------------------
* theta in [0, 2pi); mu_t is a probability measure with density rho(t, theta) with respect to
  d theta, so the uniform density is 1/(2pi). Fourier moments mu_k(t) = \int e^{-ik theta} d mu_t,
  mu_0 = 1, |mu_k| <= 1, rho = (1/2pi) sum_k mu_k e^{ik theta}; for particles mu_k = (1/N) sum_i e^{-ik theta_i}.
* Kernel W(theta) = beta^{-1} e^{beta cos theta} = sum_k W_k e^{ik theta}, W_k = I_|k|(beta)/beta.
* USA velocity  v[mu](theta) = sign * d/dtheta (W * mu)(theta) = -sign \int sin(theta-w) e^{beta cos(theta-w)} d mu(w),
  SA velocity   v[mu](theta) = sign * d_theta(W * mu) / (beta (W * mu))   (normalisation Z[mu] = beta W*mu),
  sign = +1 for V = I, -1 for V = -I. Time is the particle time of eq. (10):
      d theta_i/dt = -(1/N) sum_j e^{beta cos(theta_i-theta_j)} sin(theta_i-theta_j)   (USA).
* PDE:  d_t rho + d_theta( rho v[rho] ) = nu d_theta^2 rho   (nu = 0 unless the optional viscosity is on).
  In moments (exact, also for empirical measures): d mu_k/dt = -i k \int e^{-ik theta} rho v d theta,
  = k sum_l l W_l mu_l mu_{k-l} for USA; the linear part is gamma_k mu_k, gamma_k = k^2 I_k(beta)/beta.

Algorithm (``docs/spectral.md``, "Algorithms")
----------------------------------------------
The state is the half spectrum mu_0..mu_K stored *real* (real parts then imaginary parts; diffrax's
complex support is poor). Each right-hand side: rho and v on an M-point grid by ``jnp.fft.irfft``,
flux rho v pointwise, ``rfft`` back, multiply by -ik. The kernel is truncated at K and M >= 3K+1,
so the product of two band-K functions is de-aliased exactly on modes <= K (the 2/3 rule). SA is a
quotient, not a polynomial: it is padded to M >= 4K (not exact; monitor the tail). W_k are exact
(log-space Bessel series, `jaxattn._special`) and differentiable in beta.

Resolution honesty
------------------
The exact solution stays positive and smooth, but concentrates into clusters whose width shrinks
like e^{-m e^beta t}; a K-mode solver can only follow that for a while. Two monitors run inside the
solve (a `diffrax.Event`): the minimum of rho on the grid (Gibbs undershoots: negative density)
and the spectral tail max_{k > 7K/8} |mu_k|. When either crosses its threshold the solve stops
(``on_unresolved="stop"``, default) and a warning gives the time; ``"raise"`` raises instead;
``"warn"`` integrates to the end and warns with the first saved time that was unresolved. The
returned trajectory records ``t_lost`` and the diagnostics at every saved time.

Optional regularisations (both change the dynamics; off by default and off in the tests):
* viscosity nu d_theta^2 rho, treated implicitly with diffrax's IMEX KenCarp4 (``MultiTerm``);
* an exponential spectral filter sigma_k = exp(-a (k/K)^p) applied to the transport term.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import diffrax
import equinox as eqx
import optimistix as optx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Complex, Float

from .._special import kernel_coefficients
from .._validate import check_nonneg_int, is_concrete
from ._base import (AbstractSpectralModel, AbstractSpectralTrajectory, check_mass, check_times, model_parameters,
                    prepare_models, solve_monitored)

__all__ = [
    "CircleModel",
    "DensityTrajectory",
    "check_coefficients",
    "solve_circle",
    "integrate_circle",
    "coefficients_from_density",
    "mode_coefficients",
    "noise_coefficients",
    "density_on_grid",
    "energy",
]

TWO_PI = 2 * math.pi


# ----------------------------------------------------------------------------------------------
# state packing


def to_state(c: Complex[Array, "... K1"]) -> Float[Array, "... 2*K1"]:
    """Complex half spectrum -> real state (real parts, then imaginary parts).

    **Arguments:**

    - `c`: complex moments, (..., K+1).

    **Returns:**

    The real state, float (..., 2(K+1)).
    """
    return jnp.concatenate([jnp.real(c), jnp.imag(c)], axis=-1)


def from_state(y: Float[Array, "... S"]) -> Complex[Array, "... S//2"]:
    """Real state (real parts, then imaginary parts) -> complex half spectrum: the inverse of `to_state`.

    **Arguments:**

    - `y`: real states, float (..., S), S even.

    **Returns:**

    The complex moments, complex (..., S/2).
    """
    n = y.shape[-1] // 2
    return y[..., :n] + 1j * y[..., n:]


# ----------------------------------------------------------------------------------------------
# the model


class CircleModel(AbstractSpectralModel):
    r"""Right-hand side of d_t rho + d_theta(rho v[rho]) = nu rho'' in Fourier moments mu_0..mu_K.

    Fields: ``beta`` (may be a tracer: the model is differentiable in beta), static ``K``, ``M`` (grid
    size), ``model`` ("usa"/"sa"), ``sign`` (V = sign * I), ``nu``, and the spectral filter ``sigma``
    (ones when off); `W` = W_0..W_K comes from beta ([`kernel`][jaxattn.spectral.CircleModel.kernel]; see the base class). The state is `to_state` of the moments;
    densities are w.r.t. d theta (uniform 1/(2 pi)).

    **Arguments:**

    - `beta`: the inverse temperature, float > 0 (a JAX scalar is fine: the model is differentiable in beta).
    - `K`: the number of modes, int >= 2.
    - `model`: "usa" (default) or "sa".
    - `sign`: +1 (default, V = I) or -1 (V = -I).
    - `nu`: the viscosity, finite float >= 0; default 0 (off).
    - `spectral_filter`: ``(a, p)`` of the filter sigma_k = exp(-a (k/K)^p) on the transport term; default None (off).
    - `M`: the grid size, int >= 2K+2; default 3K+2 for USA (de-aliased), 4K+2 for SA.

    **Raises:**

    - `ValueError`: an invalid argument (see [`solve_circle`][jaxattn.spectral.solve_circle]).
    """

    d: ClassVar[int] = 2
    uniform_density: ClassVar[float] = 1 / TWO_PI

    beta: Float[Array, ""]
    sigma: Float[Array, " K1"]
    kernel_cache: Float[Array, " K1"] | None
    nu: float = eqx.field(static=True)
    K: int = eqx.field(static=True)
    M: int = eqx.field(static=True)
    model: str = eqx.field(static=True)
    sign: int = eqx.field(static=True)

    def __init__(
        self,
        beta,
        K: int,
        model: str = "usa",
        sign: int = 1,
        nu: float = 0.0,
        spectral_filter: tuple[float, float] | None = None,
        M: int | None = None,
    ):
        self.beta, self.K, self.model, self.sign = model_parameters(beta, "K", K, 2, model, sign)
        if not (isinstance(nu, (int, float)) and np.isfinite(nu) and nu >= 0):
            raise ValueError(f"viscosity nu must be a finite float >= 0, got {nu!r}")
        self.nu = float(nu)
        if M is None:
            M = 3 * self.K + 2 if self.model == "usa" else 4 * self.K + 2
        if M < 2 * self.K + 2:
            raise ValueError(f"grid size M={M} must be >= 2K+2 = {2 * self.K + 2}")
        self.M = int(M)
        self.kernel_cache = None
        k = np.arange(self.K + 1)
        if spectral_filter is None:
            self.sigma = jnp.ones(self.K + 1)
        else:
            a, p = spectral_filter
            self.sigma = jnp.asarray(np.exp(-a * (k / self.K) ** p))

    def kernel(self) -> Float[Array, " K1"]:
        """W_k = I_k(beta)/beta, k = 0..K."""
        return kernel_coefficients(self.beta, self.K)

    # grid ------------------------------------------------------------------------------------
    def density(self, c: Complex[Array, " K1"]) -> Float[Array, " M"]:
        """rho on the M-point grid theta_j = 2 pi j / M.

        **Arguments:**

        - `c`: the moments mu_0..mu_K, complex (K+1,).

        **Returns:**

        rho, float (M,), w.r.t. d theta.
        """
        return jnp.fft.irfft(c, n=self.M) * (self.M / TWO_PI)

    def velocity(self, c: Complex[Array, " K1"]) -> Float[Array, " M"]:
        """v[rho] on the grid (USA: sign d_theta Phi; SA: sign d_theta Phi / (beta Phi)), Phi = W * mu.

        **Arguments:**

        - `c`: the moments mu_0..mu_K, complex (K+1,).

        **Returns:**

        v, float (M,).
        """
        k = jnp.arange(self.K + 1)
        dphi = jnp.fft.irfft(1j * k * self.W * c, n=self.M) * self.M
        if self.model == "usa":
            return self.sign * dphi
        phi = jnp.fft.irfft(self.W * c, n=self.M) * self.M
        return self.sign * dphi / (self.beta * phi)

    # right-hand sides ------------------------------------------------------------------------
    def transport(self, t, y, args=None):
        """-d_theta(rho v) in moments: d mu_k/dt = -i k (2pi/M) rfft(rho v)_k, k = 0..K.

        **Arguments:**

        - `t`: the time (unused).
        - `y`: the real state, float (2(K+1),).
        - `args`: unused; default None.

        **Returns:**

        The transport part of dy/dt, float (2(K+1),).
        """
        c = from_state(y)
        flux = self.density(c) * self.velocity(c)
        fh = jnp.fft.rfft(flux)[: self.K + 1] * (TWO_PI / self.M)
        k = jnp.arange(self.K + 1)
        return to_state(-1j * k * fh * self.sigma)

    def diffusion(self, t, y, args=None):
        """nu d_theta^2 rho in moments: -nu k^2 mu_k.

        **Arguments:**

        - `t`: the time (unused).
        - `y`: the real state, float (2(K+1),).
        - `args`: unused; default None.

        **Returns:**

        The viscous part of dy/dt, float (2(K+1),).
        """
        k = jnp.arange(self.K + 1)
        return -self.nu * jnp.concatenate([k * k, k * k]) * y

    def __call__(self, t, y, args=None):
        out = self.transport(t, y, args)
        if self.nu > 0:
            out = out + self.diffusion(t, y, args)
        return out

    # diagnostics -----------------------------------------------------------------------------
    def coefficients(self, y: Float[Array, "... S"]) -> Complex[Array, "... S//2"]:
        return from_state(y)

    def tail(self, c: Complex[Array, "... K1"]) -> Float[Array, "..."]:
        """max_{k > 7K/8} |mu_k|: spectral tail (mu_0 = 1, so it is relative to the mass)."""
        return jnp.max(jnp.abs(c[..., self.K - self.K // 8 :]), axis=-1)

    def min_density(self, c: Complex[Array, "... K1"]) -> Float[Array, "..."]:
        """min_j rho(theta_j) on the M-point grid (w.r.t. d theta)."""
        return jnp.min(jnp.fft.irfft(c, n=self.M, axis=-1), axis=-1) * (self.M / TWO_PI)

    def energy(self, c: Complex[Array, "... K1"]) -> Float[Array, "..."]:
        r"""E = (1/2) sum_{k in Z} W_k |mu_k|^2 = (1/(2 beta)) \iint e^{beta cos(x-y)} d mu d mu (Parseval)."""
        return _energy(self.W, c)


def _energy(W, c):
    a2 = jnp.abs(c) ** 2
    return 0.5 * (W[0] * a2[..., 0] + 2 * jnp.sum(W[1:] * a2[..., 1:], axis=-1))


def energy(c: Complex[Array, "... K1"], beta: float) -> Float[Array, "..."]:
    r"""USA interaction energy E[mu] = (1/(2 beta)) \iint e^{beta cos(x-y)} dmu dmu from moments mu_0..mu_K.

    **Arguments:**

    - `c`: the moments mu_0..mu_K, complex (..., K+1).
    - `beta`: the inverse temperature, float > 0.

    **Returns:**

    E, float (...).
    """
    return _energy(kernel_coefficients(beta, c.shape[-1] - 1), c)


# ----------------------------------------------------------------------------------------------
# initial data


def check_coefficients(c0: ArrayLike) -> Complex[Array, " K1"]:
    """Initial moments mu_0..mu_K of a probability density on S^1 (1-D, K >= 2, finite, mu_0 = 1), as complex.

    The value checks are skipped for traced input.

    **Arguments:**

    - `c0`: the moments mu_0..mu_K, (K+1,), real or complex.

    **Returns:**

    The moments as a complex array (K+1,).

    **Raises:**

    - `ValueError`: ``c0`` is not 1-D with K >= 2, is not finite, or has mu_0 != 1.
    """
    c0 = jnp.asarray(c0)
    if c0.ndim != 1 or c0.shape[0] < 3:
        raise ValueError(f"coefficients must be a 1-D array mu_0..mu_K with K >= 2, got shape {c0.shape}")
    if is_concrete(c0):
        check_mass(c0, np.asarray(c0)[0], 1.0, "mu_0")
    return c0.astype(jnp.result_type(complex))


def coefficients_from_density(
    rho: Callable[[Array], Array] | ArrayLike, K: int, *, normalise: bool = False
) -> Complex[Array, " K1"]:
    r"""Moments mu_k = \int e^{-ik theta} rho(theta) d theta, k = 0..K, of a density w.r.t. d theta.

    By the trapezoid rule on a uniform grid, spectrally accurate.

    **Arguments:**

    - `rho`: the density, a callable of theta (evaluated on max(8(K+1), 256) grid points) or its values
        on the uniform grid theta_j = 2 pi j / M, float (M,), M >= 2K+1.
    - `K`: the largest moment, int >= 0.
    - `normalise`: divide by the mass instead of requiring mass 1; default False.

    **Returns:**

    mu_0..mu_K, complex (K+1,), mu_0 = 1.

    **Raises:**

    - `ValueError`: values that are not 1-D, too few grid values, negative or non-finite values, or a
        mass != 1 (relative 1e-8) with ``normalise=False``.
    """
    K = check_nonneg_int("K", K)
    if callable(rho):
        M = max(8 * (K + 1), 256)
        vals = jnp.asarray(rho(jnp.arange(M) * (TWO_PI / M)), dtype=jnp.result_type(float))
    else:
        vals = jnp.asarray(rho, dtype=jnp.result_type(float))
        if vals.ndim != 1:
            raise ValueError(f"density values must be 1-D (grid on [0, 2pi)), got shape {vals.shape}")
        M = vals.shape[0]
        if M < 2 * K + 1:
            raise ValueError(f"{M} grid values cannot resolve K={K} modes (need M >= 2K+1)")
    v = np.asarray(vals)
    if not np.all(np.isfinite(v)):
        raise ValueError("density contains NaN or inf")
    if v.min() < 0:
        raise ValueError(f"density must be non-negative, min is {v.min():.3g}")
    c = jnp.fft.rfft(vals)[: K + 1] * (TWO_PI / M)
    mass = float(np.real(c[0]))
    if normalise:
        c = c / mass
    elif abs(mass - 1) > 1e-8:
        raise ValueError(f"density has mass {mass:.12g}, not 1: normalise it (or pass normalise=True)")
    return c.at[0].set(1.0)


def mode_coefficients(K: int, cos: dict[int, float] | None = None, sin: dict[int, float] | None = None):
    r"""Moments of rho = 1/(2pi) + sum_k a_k cos(k theta) + b_k sin(k theta): mu_k = pi (a_k - i b_k).

    **Arguments:**

    - `K`: the largest moment, int >= 0.
    - `cos`: ``{k: a_k}``, 1 <= k <= K, finite amplitudes; default None (none).
    - `sin`: ``{k: b_k}``, 1 <= k <= K, finite amplitudes; default None (none).

    **Returns:**

    mu_0..mu_K, complex (K+1,), mu_0 = 1 (the density is not checked for positivity).

    **Raises:**

    - `ValueError`: a mode outside 1..K or a non-finite amplitude.
    """
    K = check_nonneg_int("K", K)
    c = np.zeros(K + 1, dtype=complex)
    c[0] = 1.0
    for name, modes, unit in (("cos", cos, np.pi), ("sin", sin, -1j * np.pi)):
        for k, a in (modes or {}).items():
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= K:
                raise ValueError(f"{name} mode k = {k!r} is outside 1..K = {K}: raise K or drop the mode")
            if not np.isfinite(a):
                raise ValueError(f"{name} amplitude of mode {k} must be finite, got {a!r}")
            c[k] += unit * a
    return jnp.asarray(c)


def noise_coefficients(key, K: int, n_eff: float, k_noise: int | None = None) -> Complex[Array, " {K+1}"]:
    r"""Uniform density + white noise specified in Fourier space (``docs/spectral.md``).

    mu_k(0), 1 <= k <= k_noise, are iid complex Gaussian with E|mu_k|^2 = 1/n_eff, the statistics of n_eff iid uniform particles.
    Additive grid noise of std sigma on M cells corresponds to n_eff = M / (4 pi^2 sigma^2).

    **Arguments:**

    - `key`: a JAX PRNG key.
    - `K`: the largest moment, int >= 0.
    - `n_eff`: the effective number of particles, float > 0.
    - `k_noise`: the largest noisy mode, int >= 0; default K // 2 (the modes above are 0).

    **Returns:**

    mu_0..mu_K, complex (K+1,), mu_0 = 1.

    **Raises:**

    - `ValueError`: ``n_eff`` <= 0 or a negative ``K``/``k_noise``.
    """
    K = check_nonneg_int("K", K)
    k_noise = K // 2 if k_noise is None else check_nonneg_int("k_noise", k_noise)
    if not n_eff > 0:
        raise ValueError(f"n_eff must be > 0, got {n_eff}")
    z = jax.random.normal(key, (2, k_noise)) / np.sqrt(2 * n_eff)
    c = jnp.zeros(K + 1, dtype=complex).at[0].set(1.0)
    return c.at[1 : k_noise + 1].set(z[0] + 1j * z[1])


def density_on_grid(c: Complex[Array, "... K1"], theta: ArrayLike) -> Float[Array, "... n"]:
    """rho(theta) = (1/2pi)(1 + 2 sum_{k>=1} Re(mu_k e^{ik theta})) at arbitrary angles.

    **Arguments:**

    - `c`: the moments mu_0..mu_K, complex (..., K+1).
    - `theta`: angles, float (n,).

    **Returns:**

    rho, float (..., n), w.r.t. d theta.
    """
    theta = jnp.asarray(theta)
    k = jnp.arange(1, c.shape[-1])
    e = jnp.exp(1j * k[:, None] * theta[None, :])
    return (jnp.real(c[..., :1]) + 2 * jnp.real(c[..., 1:] @ e)) / TWO_PI


# ----------------------------------------------------------------------------------------------
# trajectory


class DensityTrajectory(AbstractSpectralTrajectory):
    r"""A solution of the circle PDE at its resolved saved times ([`AbstractSpectralTrajectory`][jaxattn.spectral.AbstractSpectralTrajectory]):
    ``coeffs`` (T, K+1) are the complex moments mu_k(t) (convention in the module docstring), and
    ``min_density`` is w.r.t. d theta (uniform 1/(2 pi))."""

    def density(self, n: int = 256) -> tuple[Float[Array, " n"], Float[Array, "T n"]]:
        """(theta, rho(t, theta)) on n uniform grid points.

        **Arguments:**

        - `n`: the number of grid points; default 256.

        **Returns:**

        ``(theta, rho)``: float (n,) and float (T, n).
        """
        theta = jnp.arange(n) * (TWO_PI / n)
        return theta, density_on_grid(self.coeffs, theta)

    def moments(self, kmax: int) -> Complex[Array, "T {kmax+1}"]:
        """The moments mu_0..mu_kmax at every saved time.

        **Arguments:**

        - `kmax`: the largest moment, int with 0 <= kmax <= K.

        **Returns:**

        Complex (T, kmax+1).
        """
        return self.coeffs[:, : kmax + 1]


# ----------------------------------------------------------------------------------------------
# integration


def _terms_and_solver(model: CircleModel, solver, rtol: float, atol: float):
    """ODETerm(model) and Tsit5 by default; with viscosity the IMEX pair (transport explicit, diffusion implicit)."""
    if model.nu > 0:
        terms = diffrax.MultiTerm(diffrax.ODETerm(model.transport), diffrax.ODETerm(model.diffusion))
        if solver is None:
            # diffrax's default VeryChord root finder stalls at tight tolerances here (every step rejected,
            # measured); Newton on the (linear, diagonal) implicit term converges in one or two iterations
            solver = diffrax.KenCarp4(root_finder=optx.Newton(rtol=rtol / 10, atol=atol / 10))
        return terms, solver
    return diffrax.ODETerm(model), diffrax.Tsit5() if solver is None else solver


def integrate_circle(
    model: CircleModel,
    coeffs0: Complex[Array, " K1"],
    ts: Float[Array, " T"],
    *,
    solver: diffrax.AbstractSolver | None = None,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    max_steps: int = 100_000,
    adjoint: diffrax.AbstractAdjoint | None = None,
    event: diffrax.Event | None = None,
    save_t1: bool = False,  # if True: saveat subs [ts, t1] (event time recoverable)
) -> diffrax.Solution:
    """Pure (jit/grad-able) integration from ts[0] to ts[-1], saving at ``ts``; returns the diffrax Solution
    whose ``ys`` are real states (use `from_state`). No resolution checks: see [`solve_circle`][jaxattn.spectral.solve_circle].

    **Arguments:**

    - `model`: the [`CircleModel`][jaxattn.spectral.CircleModel].
    - `coeffs0`: the initial moments mu_0..mu_K, complex (K+1,).
    - `ts`: the save times, float (T,), increasing.
    - `solver`: a diffrax solver; default Tsit5, or KenCarp4 (IMEX) when ``model.nu > 0``.
    - `rtol`: relative tolerance of the PID controller; default 1e-10.
    - `atol`: absolute tolerance of the PID controller; default 1e-12.
    - `max_steps`: the step budget; default 100_000.
    - `adjoint`: a diffrax adjoint; default ``RecursiveCheckpointAdjoint()``.
    - `event`: a ``diffrax.Event`` that ends the solve; default None.
    - `save_t1`: also save the final time (as a second ``SubSaveAt``, so an event time is recoverable); default False.

    **Returns:**

    The ``diffrax.Solution`` (``ys``: real states (T, 2(K+1)), or a list of two with ``save_t1``).
    """
    y0 = to_state(coeffs0)
    terms, solver = _terms_and_solver(prepare_models(model), solver, rtol, atol)  # W once per solve
    return diffrax.diffeqsolve(
        terms,
        solver,
        t0=ts[0],
        t1=ts[-1],
        dt0=None,
        y0=y0,
        saveat=(
            diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=ts), diffrax.SubSaveAt(t1=True)])
            if save_t1
            else diffrax.SaveAt(ts=ts)
        ),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
        adjoint=diffrax.RecursiveCheckpointAdjoint() if adjoint is None else adjoint,
        event=event,
        throw=True,
    )


def solve_circle(
    coeffs0: ArrayLike,  # mu_0..mu_K, checked by check_coefficients
    beta: float,
    t1: float | None = None,
    *,
    ts: ArrayLike | None = None,
    n_save: int = 101,
    model: str = "usa",
    sign: int = 1,
    nu: float = 0.0,
    spectral_filter: tuple[float, float] | None = None,
    M: int | None = None,
    solver: diffrax.AbstractSolver | None = None,
    **options,
) -> DensityTrajectory:
    r"""Solve d_t rho + d_theta(rho v[rho]) = nu rho'' on S^1 from moments ``coeffs0`` = mu_0..mu_K (mu_0 = 1).

    Conventions: module docstring (density w.r.t. d theta, particle time of eq. (10), V = sign I).
    Saves at ``ts`` (or ``n_save`` uniform times in [0, t1]). Tsit5 with a PID controller by default,
    KenCarp4 (IMEX) when ``nu > 0``. ``options`` are those of [`jaxattn.spectral.solve_monitored`][jaxattn.spectral.solve_monitored]
    (``rtol`` = 1e-10, ``atol`` = 1e-12, ``max_steps`` = 200 000, ``tail_tol`` = ``neg_tol`` = 1e-8,
    ``on_unresolved`` = "stop"): resolution is lost when max_{k>7K/8}|mu_k| > ``tail_tol`` or
    min rho < -``neg_tol``/(2 pi); then ``on_unresolved`` decides: "stop" (default: terminate, warn,
    return only the resolved saved times), "warn" (integrate to the end, warn) or "raise" (RuntimeError).

    **Arguments:**

    - `coeffs0`: the initial moments mu_0..mu_K, (K+1,), K >= 2, mu_0 = 1 (see [`check_coefficients`][jaxattn.spectral.check_coefficients]).
    - `beta`: the inverse temperature, float > 0.
    - `t1`: the final time, float > 0; or None when ``ts`` is given.
    - `ts`: the save times, strictly increasing, >= 2 entries; default None (``n_save`` uniform times in [0, t1]).
    - `n_save`: the number of uniform save times; default 101.
    - `model`: "usa" (default) or "sa".
    - `sign`: +1 (default) or -1.
    - `nu`: the viscosity, float >= 0; default 0.
    - `spectral_filter`: ``(a, p)`` of an exponential filter; default None.
    - `M`: the grid size; default as [`CircleModel`][jaxattn.spectral.CircleModel].
    - `solver`: a diffrax solver; default as above.
    - `options`: keyword arguments of [`solve_monitored`][jaxattn.spectral.solve_monitored].

    **Returns:**

    A [`DensityTrajectory`][jaxattn.spectral.DensityTrajectory].

    **Raises:**

    - `ValueError`: invalid coefficients, times or model parameters.
    - `RuntimeError`: the solve fails, or resolution is lost with ``on_unresolved="raise"``.
    """
    c0 = check_coefficients(coeffs0)
    ts = check_times(t1, ts, n_save)
    K = c0.shape[0] - 1
    m = CircleModel(beta, K, model=model, sign=sign, nu=nu, spectral_filter=spectral_filter, M=M).prepared()
    W = np.asarray(m.W)
    if W[K] * K > 1e-13 * np.max(np.arange(K + 1) * W):
        warnings.warn(
            f"K={K} modes do not resolve the kernel at beta={beta} (|K W_K| / max|k W_k| > 1e-13): increase K",
            stacklevel=2,
        )
    options = {"rtol": 1e-10, "atol": 1e-12} | options
    terms, solver = _terms_and_solver(m, solver, options["rtol"], options["atol"])
    return solve_monitored(
        m, to_state(c0), ts, trajectory=DensityTrajectory, terms=terms, solver=solver,
        label=f"circle PDE (beta={beta}, K={K}, {m.model})", **options,
    )
