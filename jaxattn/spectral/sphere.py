r"""Mean-field attention PDE on the sphere S^2 with spherical harmonics (s2fft, float64).

Equation (paper 004 eq. (2)-(3); paper 002 eq. (3.8)/(3.10)):
    d_t rho + div( rho v[rho] ) = 0,  USA: v = sign grad Phi,  SA: v = sign grad Phi / (beta Phi),
    Phi(x) = (W * mu)(x) = \int W(⟨x,y⟩) d mu(y),  W(q) = beta^{-1} e^{beta q},
mu a probability measure, time = particle time of (USA)/(SA). Coefficients are s2fft's:
rho_lm = \int rho conj(Y_lm) d sigma with Y_lm orthonormal on the *unnormalised* sphere (|S^2| = 4 pi),
so a probability density w.r.t. the normalised measure sigma-bar has rho_00 = sqrt(4 pi), and
Phi_lm = W_l rho_lm with W_l the Funk-Hecke coefficients on sigma-bar (d = 3: W_l = i_l(beta)/beta).

Algorithm (``docs/spectral.md``, "Algorithms"). Only scalar transforms are needed: from the weak form and
grad f . grad g = (Delta(fg) - f Delta g - g Delta f)/2,

    d rho_lm / dt = (sign/2) [ F(Phi Delta rho - rho Delta Phi)_lm + l(l+1) F(rho Phi)_lm ]      (USA)

where F is the forward transform. Products of band-L fields have band 2L-1; the transforms run at
band L_pad = ceil(3L/2) on Gauss-Legendre sampling, where the projection onto l < L is exact
(de-aliased) for USA. SA replaces rho by rho/(beta Phi) in the flux (not band-limited: padded, not exact).
s2fft needs float64 (a float32 round trip is 0.38 off, ``docs/spectral.md``), and its precomputed
Wigner recursions are stored as *fields* of [`SphereModel`][jaxattn.spectral.SphereModel], so they are passed to the jitted
right-hand side as arguments rather than folded in as constants.

Resolution is monitored as on the circle (spectral tail of rho_lm / rho_00 over the top eighth of
degrees, minimum of rho on the grid). Errata: H_k invariance for k >= 3 is false on S^2 (``docs/spectral.md``,
errata 4): see `jaxattn.spectral.zonal` and the tests.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Complex, Float

from .._special import kernel_coefficients
from ._base import AbstractSpectralModel, AbstractSpectralTrajectory, check_mass, check_times, model_parameters, solve_monitored

__all__ = ["SphereModel", "SphereTrajectory", "solve_sphere", "sphere_coefficients", "sphere_zonal_mode", "sphere_grid"]

SQRT4PI = math.sqrt(4 * math.pi)
_SAMPLING = "gl"


def _require_x64():
    if not jax.config.jax_enable_x64:
        raise RuntimeError("the S^2 solver needs float64 (s2fft is inaccurate in float32): import jaxattn first")


def sphere_grid(L: int) -> tuple[np.ndarray, np.ndarray]:
    """(colatitudes theta (n_theta,), longitudes phi (n_phi,)) of the Gauss-Legendre grid used at band L.

    **Arguments:**

    - `L`: the band limit, int.

    **Returns:**

    ``(theta, phi)``: NumPy float arrays (n_theta,) and (n_phi,).
    """
    from s2fft.sampling import s2_samples

    return np.asarray(s2_samples.thetas(L, sampling=_SAMPLING)), np.asarray(s2_samples.phis_equiang(L, sampling=_SAMPLING))


@functools.lru_cache(maxsize=8)
def _precomputes(L_pad: int):
    """s2fft Wigner precomputes (inverse, forward) at band L_pad, built once per band (seconds each)."""
    import s2fft

    return (
        s2fft.generate_precomputes_jax(L_pad, sampling=_SAMPLING, forward=False),
        s2fft.generate_precomputes_jax(L_pad, sampling=_SAMPLING, forward=True),
    )


class SphereModel(AbstractSpectralModel):
    """Right-hand side of the S^2 PDE on the real state (Re, Im) of rho_lm, l < L (module docstring).

    ``W`` is the Funk-Hecke coefficients W_l(beta, 3) divided by e^{``log_scale``}: unscaled for USA
    (which therefore needs beta < ~705), scaled by e^{-beta} for SA, whose flow does not depend on the
    scale of W, so SA runs at any beta. Both come from beta ([`kernel`][jaxattn.spectral.SphereModel.kernel]; see the base class).

    **Arguments:**

    - `beta`: the inverse temperature, float > 0 (a JAX scalar is fine: the model is differentiable in beta).
    - `L`: the band limit (degrees l < L), int >= 3.
    - `model`: "usa" (default) or "sa".
    - `sign`: +1 (default, V = I) or -1 (V = -I).
    - `L_pad`: the band of the transforms; default ceil(3L/2) for USA (de-aliased), 2L for SA.

    **Raises:**

    - `RuntimeError`: float64 is not enabled.
    - `ValueError`: an invalid argument.
    """

    d: ClassVar[int] = 3
    uniform_density: ClassVar[float] = 1.0

    beta: Float[Array, ""]
    kernel_cache: Float[Array, " L"] | None
    lam: Float[Array, " L_pad"]
    pre_inv: list
    pre_fwd: list
    L: int = eqx.field(static=True)
    L_pad: int = eqx.field(static=True)
    model: str = eqx.field(static=True)
    sign: int = eqx.field(static=True)

    def __init__(self, beta, L: int, model: str = "usa", sign: int = 1, L_pad: int | None = None):
        _require_x64()
        self.beta, self.L, self.model, self.sign = model_parameters(beta, "L", L, 3, model, sign)
        self.L_pad = int(L_pad or (math.ceil(1.5 * self.L) if self.model == "usa" else 2 * self.L))
        # SA only sees W up to a constant factor (v = grad Phi / (beta Phi)): it runs on e^{-beta} W_l, finite for
        # every beta. USA velocities are ~ e^beta W-sized: beyond beta ~ 705 they overflow float64 and the
        # unscaled coefficients raise with a message naming the alternatives.
        self.kernel_cache = None
        l = np.arange(self.L_pad)
        self.lam = jnp.asarray(l * (l + 1.0))
        self.pre_inv, self.pre_fwd = _precomputes(self.L_pad)

    def kernel(self) -> Float[Array, " L"]:
        """W_l(beta, 3) e^{-log_scale}, l < L."""
        if self.model == "usa":
            return _usa_coefficients(self.beta, self.L - 1)
        return kernel_coefficients(self.beta, self.L - 1, 3, scaled=True)

    @property
    def log_scale(self) -> Float[Array, ""]:
        """log of the factor divided out of `W`: beta for SA, 0 for USA."""
        return self.beta if self.model == "sa" else jnp.zeros_like(self.beta)

    # transforms --------------------------------------------------------------------------------
    def _inv(self, flm_pad):
        import s2fft

        return s2fft.inverse(flm_pad, self.L_pad, sampling=_SAMPLING, method="jax", reality=True, precomps=self.pre_inv)

    def _fwd(self, f):
        import s2fft

        return s2fft.forward(f, self.L_pad, sampling=_SAMPLING, method="jax", reality=True, precomps=self.pre_fwd)

    def _pad(self, flm):
        P, L = self.L_pad, self.L
        return jnp.zeros((P, 2 * P - 1), flm.dtype).at[:L, P - L : P + L - 1].set(flm)

    def _crop(self, flm_pad):
        P, L = self.L_pad, self.L
        return flm_pad[:L, P - L : P + L - 1]

    def unpack(self, y: Float[Array, "... n"]) -> Complex[Array, "... L 2*L-1"]:
        """Real state -> s2fft coefficients rho_lm: the inverse of [`pack`][jaxattn.spectral.SphereModel.pack].

        **Arguments:**

        - `y`: real states, float (..., 2 L (2L-1)).

        **Returns:**

        rho_lm, complex (..., L, 2L-1).
        """
        n = y.shape[-1] // 2
        return (y[..., :n] + 1j * y[..., n:]).reshape(y.shape[:-1] + (self.L, 2 * self.L - 1))

    @staticmethod
    def pack(flm: Complex[Array, "L 2*L-1"]) -> Float[Array, " n"]:
        """s2fft coefficients rho_lm -> real state (real parts, then imaginary parts, flattened).

        **Arguments:**

        - `flm`: rho_lm, complex (L, 2L-1).

        **Returns:**

        The real state, float (2 L (2L-1),).
        """
        f = flm.reshape(flm.shape[:-2] + (-1,))
        return jnp.concatenate([jnp.real(f), jnp.imag(f)], axis=-1)

    def density(self, flm):
        """rho on the Gauss-Legendre grid at band L_pad (uniform density = 1).

        **Arguments:**

        - `flm`: rho_lm, complex (L, 2L-1).

        **Returns:**

        rho, float (n_theta, n_phi) on the Gauss-Legendre grid at band L_pad (``sphere_grid(L_pad)``).
        """
        return self._inv(self._pad(flm))

    # right-hand side ---------------------------------------------------------------------------
    def __call__(self, t, y, args=None):
        flm = self._pad(self.unpack(y))
        Wp = jnp.zeros(self.L_pad).at[: self.L].set(self.W)[:, None]
        lam = self.lam[:, None]
        rho = self._inv(flm)
        phi = self._inv(Wp * flm)
        lap_phi = self._inv(-lam * Wp * flm)
        if self.model == "usa":
            q = rho
            lap_q = self._inv(-lam * flm)
        else:
            q = rho / (self.beta * phi)
            lap_q = self._inv(-lam * self._fwd(q))
        d = 0.5 * self.sign * (self._fwd(phi * lap_q - q * lap_phi) + lam * self._fwd(q * phi))
        return self.pack(self._crop(d))

    # diagnostics -------------------------------------------------------------------------------
    def coefficients(self, y):
        return self.unpack(y)

    def tail(self, flm):
        """max |rho_lm| / sqrt(4 pi) over the top eighth of the degrees.

        **Arguments:**

        - `flm`: rho_lm, complex (L, 2L-1).

        **Returns:**

        The relative spectral tail, a float scalar.
        """
        return jnp.max(jnp.abs(flm[self.L - max(self.L // 8, 1) :])) / SQRT4PI

    def min_density(self, flm):
        """min of rho on the Gauss-Legendre grid at band L_pad (uniform = 1).

        **Arguments:**

        - `flm`: rho_lm, complex (L, 2L-1).

        **Returns:**

        The minimum density, a float scalar.
        """
        return jnp.min(self.density(flm))

    @staticmethod
    def power(flm):
        """S_l = sum_m |c_lm|^2 with c_lm = rho_lm / sqrt(4 pi) (Y orthonormal on sigma-bar): same as
        [`jaxattn.spectral.bridge.harmonic_power`][jaxattn.spectral.harmonic_power] of particles.

        **Arguments:**

        - `flm`: rho_lm, complex (..., L, 2L-1).

        **Returns:**

        S_0..S_{L-1}, float (..., L).
        """
        return jnp.sum(jnp.abs(flm) ** 2, axis=-1) / (4 * math.pi)

    def energy(self, flm):
        """E = (1/2) \\iint W(⟨x,y⟩) d mu d mu = (1/2) sum_l W_l S_l (W_l = e^{log_scale} x ``W``;
        inf where E ~ e^beta / beta overflows float64, beta > ~705).

        **Arguments:**

        - `flm`: rho_lm, complex (..., L, 2L-1).

        **Returns:**

        E, float (...).
        """
        e = 0.5 * jnp.sum(self.W * self.power(flm), axis=-1)
        return e if self.model == "usa" else e * jnp.exp(self.log_scale)


def _usa_coefficients(beta, lmax: int):
    try:
        return kernel_coefficients(beta, lmax, 3)
    except ValueError as err:
        raise ValueError(
            f"the USA PDE on S^2 at beta = {float(beta):g} is not representable in float64: its velocities scale like "
            "W_l ~ e^beta / beta, which overflows for beta > ~705. Use model='sa' (the same flow up to the scale of W: "
            "solve_sphere(..., model='sa') runs at any beta), or particles with "
            "jaxattn.UnnormalisedSelfAttention(beta, time_rescaled=True)."
        ) from err


def sphere_coefficients(f: Callable[[Array, Array], Array], L: int) -> Complex[Array, "L 2*L-1"]:
    """rho_lm (l < L) of a density f(theta, phi) w.r.t. the normalised measure (uniform = 1), computed on
    the Gauss-Legendre grid at band 2L (exact for band-limited f).

    **Arguments:**

    - `f`: the density, a JAX function of colatitude theta (n_theta, 1) and longitude phi (1, n_phi),
        broadcasting to the grid.
    - `L`: the band limit, int (degrees l < L).

    **Returns:**

    rho_lm, complex (L, 2L-1), rho_00 = sqrt(4 pi).

    **Raises:**

    - `ValueError`: non-finite or negative values, or mass != 1 (relative 1e-8).
    - `RuntimeError`: float64 is not enabled.
    """
    import s2fft

    _require_x64()
    L2 = 2 * L
    th, ph = sphere_grid(L2)
    vals = jnp.asarray(f(jnp.asarray(th)[:, None], jnp.asarray(ph)[None, :]), dtype=float)
    vals = jnp.broadcast_to(vals, (th.size, ph.size))
    v = np.asarray(vals)
    if not np.all(np.isfinite(v)):
        raise ValueError("density contains NaN or inf")
    if v.min() < 0:
        raise ValueError(f"density must be non-negative, min is {v.min():.3g}")
    flm = s2fft.forward(vals, L2, sampling=_SAMPLING, method="jax", reality=True)[:L, L2 - L : L2 + L - 1]
    mass = float(jnp.real(flm[0, L - 1])) / SQRT4PI
    if abs(mass - 1) > 1e-8:
        raise ValueError(f"density has mass {mass:.12g} w.r.t. the normalised measure, not 1")
    return flm


def sphere_zonal_mode(L: int, amplitudes: dict[int, float]) -> Complex[Array, "L 2*L-1"]:
    """rho = 1 + sum_k a_k P_k(cos theta): rho_00 = sqrt(4 pi), rho_k0 = a_k sqrt(4 pi/(2k+1)).

    **Arguments:**

    - `L`: the band limit, int >= 2.
    - `amplitudes`: ``{k: a_k}``, 1 <= k <= L-1, finite amplitudes.

    **Returns:**

    rho_lm, complex (L, 2L-1) (the density is not checked for positivity).

    **Raises:**

    - `ValueError`: ``L`` < 2, a mode outside 1..L-1 or a non-finite amplitude.
    """
    if isinstance(L, bool) or not isinstance(L, (int, np.integer)) or L < 2:
        raise ValueError(f"L (harmonic bandlimit) must be an int >= 2, got {L!r}")
    flm = np.zeros((L, 2 * L - 1), complex)
    flm[0, L - 1] = SQRT4PI
    for k, a in amplitudes.items():
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= L - 1:
            raise ValueError(f"zonal mode k = {k!r} is outside 1..L-1 = {L - 1}: raise L or drop the mode")
        if not np.isfinite(a):
            raise ValueError(f"amplitude of mode {k} must be finite, got {a!r}")
        flm[k, L - 1] += a * math.sqrt(4 * math.pi / (2 * k + 1))
    return jnp.asarray(flm)


class SphereTrajectory(AbstractSpectralTrajectory):
    """An S^2 solution ([`AbstractSpectralTrajectory`][jaxattn.spectral.AbstractSpectralTrajectory]): ``coeffs`` (T, L, 2L-1) are s2fft's rho_lm(t)."""

    @property
    def power(self) -> Float[Array, "T L"]:
        """Harmonic power S_l(t) ([`SphereModel.power`][jaxattn.spectral.SphereModel.power])."""
        return SphereModel.power(self.coeffs)


def solve_sphere(
    flm0: ArrayLike,  # (L, 2L-1), real or complex: its shape and mass are checked below, with their own ValueError
    beta: float,
    t1: float | None = None,
    *,
    ts=None,
    n_save: int = 51,
    model: str = "usa",
    sign: int = 1,
    **options,
) -> SphereTrajectory:
    """Solve the S^2 PDE from s2fft coefficients ``flm0`` (shape (L, 2L-1), rho_00 = sqrt(4 pi)), Tsit5 + PID;
    ``options`` (here ``rtol`` = 1e-9, ``atol`` = 1e-11, ``max_steps`` = 100 000 by default) and the
    resolution policy as in [`jaxattn.spectral.solve_circle`][jaxattn.spectral.solve_circle].

    **Arguments:**

    - `flm0`: the initial s2fft coefficients rho_lm, (L, 2L-1), L >= 3, real or complex, rho_00 = sqrt(4 pi),
        with a density >= 0 on the grid.
    - `beta`: the inverse temperature, float > 0 (USA: beta < ~705).
    - `t1`: the final time, float > 0; or None when ``ts`` is given.
    - `ts`: the save times, strictly increasing, >= 2 entries; default None (``n_save`` uniform times in [0, t1]).
    - `n_save`: the number of uniform save times; default 51.
    - `model`: "usa" (default) or "sa".
    - `sign`: +1 (default) or -1.
    - `options`: keyword arguments of [`solve_monitored`][jaxattn.spectral.solve_monitored].

    **Returns:**

    A [`SphereTrajectory`][jaxattn.spectral.SphereTrajectory].

    **Raises:**

    - `ValueError`: a wrong shape or mass of ``flm0``, a negative initial density, invalid times or parameters.
    - `RuntimeError`: float64 is not enabled, the solve fails, or resolution is lost with ``on_unresolved="raise"``.
    """
    flm0 = jnp.asarray(flm0)
    if flm0.ndim != 2 or flm0.shape[1] != 2 * flm0.shape[0] - 1:
        raise ValueError(f"flm0 must have shape (L, 2L-1), got {flm0.shape}")
    L = flm0.shape[0]
    check_mass(flm0, flm0[0, L - 1], SQRT4PI, "rho_00", "sqrt(4 pi)")
    ts = check_times(t1, ts, n_save)
    m = SphereModel(beta, L, model=model, sign=sign)
    flm0 = flm0.astype(complex)
    if float(eqx.filter_jit(lambda mm, c: mm.min_density(c))(m, flm0)) < 0:
        raise ValueError("initial density is negative somewhere on the grid")
    options = {"rtol": 1e-9, "atol": 1e-11, "max_steps": 100_000} | options
    return solve_monitored(
        m, m.pack(flm0), ts, trajectory=SphereTrajectory, label=f"S^2 PDE (beta={beta}, L={L}, {m.model})", **options
    )
