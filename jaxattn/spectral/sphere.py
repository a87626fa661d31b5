r"""Mean-field attention PDE on the sphere S^2 with spherical harmonics (s2fft, float64).

Equation (paper 004 eq. (2)-(3); paper 002 eq. (3.8)/(3.10)):
    d_t rho + div( rho v[rho] ) = 0,  USA: v = sign grad Phi,  SA: v = sign grad Phi / (beta Phi),
    Phi(x) = (W * mu)(x) = \int W(<x,y>) d mu(y),  W(q) = beta^{-1} e^{beta q},
mu a probability measure, time = particle time of (USA)/(SA). Coefficients are s2fft's:
rho_lm = \int rho conj(Y_lm) d sigma with Y_lm orthonormal on the *unnormalised* sphere (|S^2| = 4 pi),
so a probability density w.r.t. the normalised measure sigma-bar has rho_00 = sqrt(4 pi), and
Phi_lm = W_l rho_lm with W_l the Funk-Hecke coefficients on sigma-bar (d = 3: W_l = i_l(beta)/beta).

Algorithm (digest 004 §4.4). Only scalar transforms are needed: from the weak form and
grad f . grad g = (Delta(fg) - f Delta g - g Delta f)/2,

    d rho_lm / dt = (sign/2) [ F(Phi Delta rho - rho Delta Phi)_lm + l(l+1) F(rho Phi)_lm ]      (USA)

where F is the forward transform. Products of band-L fields have band 2L-1; the transforms run at
band L_pad = ceil(3L/2) on Gauss-Legendre sampling, where the projection onto l < L is exact
(de-aliased) for USA. SA replaces rho by rho/(beta Phi) in the flux (not band-limited: padded, not exact).
s2fft needs float64 (float32 round-trips to 0.38 error, ecosystem report §5), and its precomputed
Wigner recursions are stored as *fields* of :class:`SphereModel`, so they are passed to the jitted
right-hand side as arguments rather than folded in as constants.

Resolution is monitored as on the circle (spectral tail of rho_lm / rho_00 over the top eighth of
degrees, minimum of rho on the grid). Errata: H_k invariance for k >= 3 is false on S^2 (digest §0.5):
see :mod:`jaxattn.spectral.zonal` and the tests.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Literal

import numpy as np
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Complex, Float

from ._common import check_beta, check_model, check_nonneg_int, check_sign
from ._monitor import check_times, solve_monitored
from .linear import kernel_coefficients

__all__ = ["SphereModel", "SphereTrajectory", "solve_sphere", "sphere_coefficients", "sphere_zonal_mode", "sphere_grid"]

SQRT4PI = math.sqrt(4 * math.pi)
_SAMPLING = "gl"


def _require_x64():
    if not jax.config.jax_enable_x64:
        raise RuntimeError("the S^2 solver needs float64 (s2fft is inaccurate in float32): import jaxattn first")


def sphere_grid(L: int) -> tuple[np.ndarray, np.ndarray]:
    """(colatitudes theta (n_theta,), longitudes phi (n_phi,)) of the Gauss-Legendre grid used at band L."""
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


class SphereModel(eqx.Module):
    """Right-hand side of the S^2 PDE on the real state (Re, Im) of rho_lm, l < L (module docstring)."""

    beta: Float[Array, ""]
    W: Float[Array, " L"]
    lam: Float[Array, " L_pad"]
    pre_inv: list
    pre_fwd: list
    L: int = eqx.field(static=True)
    L_pad: int = eqx.field(static=True)
    model: str = eqx.field(static=True)
    sign: int = eqx.field(static=True)

    def __init__(self, beta, L: int, model: str = "usa", sign: int = 1, L_pad: int | None = None):
        _require_x64()
        check_beta(beta, scalar=False)
        self.L = check_nonneg_int("L", L)
        if self.L < 3:
            raise ValueError(f"band limit L must be >= 3, got {L}")
        self.model = check_model(model)
        self.sign = check_sign(sign)
        self.L_pad = int(L_pad or (math.ceil(1.5 * self.L) if self.model == "usa" else 2 * self.L))
        self.beta = jnp.asarray(beta, dtype=jnp.result_type(float))
        self.W = kernel_coefficients(self.beta, self.L - 1, 3)
        l = np.arange(self.L_pad)
        self.lam = jnp.asarray(l * (l + 1.0))
        self.pre_inv, self.pre_fwd = _precomputes(self.L_pad)

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

    def unpack(self, y: Float[Array, " n"]) -> Complex[Array, "L 2L-1"]:
        n = y.shape[-1] // 2
        return (y[..., :n] + 1j * y[..., n:]).reshape(y.shape[:-1] + (self.L, 2 * self.L - 1))

    @staticmethod
    def pack(flm: Complex[Array, "L 2L-1"]) -> Float[Array, " n"]:
        f = flm.reshape(flm.shape[:-2] + (-1,))
        return jnp.concatenate([jnp.real(f), jnp.imag(f)], axis=-1)

    def density(self, flm):
        """rho on the Gauss-Legendre grid at band L_pad (uniform density = 1)."""
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
    def tail(self, y):
        flm = self.unpack(y)
        return jnp.max(jnp.abs(flm[self.L - max(self.L // 8, 1) :])) / SQRT4PI

    def min_density(self, y):
        return jnp.min(self.density(self.unpack(y)))

    def power(self, flm):
        """S_l = sum_m |c_lm|^2 with c_lm = rho_lm / sqrt(4 pi) (Y orthonormal on sigma-bar): same as
        :func:`jaxattn.spectral.bridge.harmonic_power` of particles."""
        return jnp.sum(jnp.abs(flm) ** 2, axis=-1) / (4 * math.pi)

    def energy(self, flm):
        """E = (1/2) \\iint W(<x,y>) d mu d mu = (1/2) sum_l W_l S_l."""
        return 0.5 * jnp.sum(self.W * self.power(flm), axis=-1)


def sphere_coefficients(f: Callable[[Array, Array], Array], L: int) -> Complex[Array, "L 2L-1"]:
    """rho_lm (l < L) of a density f(theta, phi) w.r.t. the normalised measure (uniform = 1), computed on
    the Gauss-Legendre grid at band 2L (exact for band-limited f). Raises for negative values / mass != 1."""
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


def sphere_zonal_mode(L: int, amplitudes: dict[int, float]) -> Complex[Array, "L 2L-1"]:
    """rho = 1 + sum_k a_k P_k(cos theta): rho_00 = sqrt(4 pi), rho_k0 = a_k sqrt(4 pi/(2k+1))."""
    flm = np.zeros((L, 2 * L - 1), complex)
    flm[0, L - 1] = SQRT4PI
    for k, a in amplitudes.items():
        flm[k, L - 1] += a * math.sqrt(4 * math.pi / (2 * k + 1))
    return jnp.asarray(flm)


class SphereTrajectory(eqx.Module):
    ts: Float[Array, " T"]
    coeffs: Complex[Array, "T L 2L-1"]
    power: Float[Array, "T L"]
    tail: Float[Array, " T"]
    min_density: Float[Array, " T"]
    energy: Float[Array, " T"]
    resolved: Array
    t_lost: float = eqx.field(static=True)


def solve_sphere(
    flm0: Complex[Array, "L 2L-1"],
    beta: float,
    t1: float | None = None,
    *,
    ts=None,
    n_save: int = 51,
    model: str = "usa",
    sign: int = 1,
    rtol: float = 1e-9,
    atol: float = 1e-11,
    max_steps: int = 100_000,
    tail_tol: float = 1e-8,
    neg_tol: float = 1e-8,
    on_unresolved: Literal["stop", "warn", "raise"] = "stop",
) -> SphereTrajectory:
    """Solve the S^2 PDE from s2fft coefficients ``flm0`` (shape (L, 2L-1), rho_00 = sqrt(4 pi)), Tsit5 + PID,
    with the resolution policy of :func:`jaxattn.spectral.solve_circle`."""
    flm0 = jnp.asarray(flm0)
    if flm0.ndim != 2 or flm0.shape[1] != 2 * flm0.shape[0] - 1:
        raise ValueError(f"flm0 must have shape (L, 2L-1), got {flm0.shape}")
    if not np.all(np.isfinite(np.asarray(flm0))):
        raise ValueError("flm0 contains NaN or inf")
    L = flm0.shape[0]
    if abs(complex(flm0[0, L - 1]) / SQRT4PI - 1) > 1e-10:
        raise ValueError("rho_00 must be sqrt(4 pi) (a probability density w.r.t. the normalised measure)")
    ts = check_times(t1, ts, n_save)
    m = SphereModel(beta, L, model=model, sign=sign)
    if float(eqx.filter_jit(lambda mm, y: mm.min_density(y))(m, m.pack(flm0.astype(complex)))) < 0:
        raise ValueError("initial density is negative somewhere on the grid")
    ts, ys, tail, mind, resolved, t_lost = solve_monitored(
        m, m.pack(flm0.astype(complex)), ts, solver=None, rtol=rtol, atol=atol, max_steps=max_steps,
        tail_tol=tail_tol, neg_tol=neg_tol, on_unresolved=on_unresolved,
        label=f"S^2 PDE (beta={beta}, L={L}, {m.model})",
    )
    flm = m.unpack(jnp.asarray(ys))
    return SphereTrajectory(
        ts=jnp.asarray(ts), coeffs=flm, power=m.power(flm), tail=jnp.asarray(tail), min_density=jnp.asarray(mind),
        energy=m.energy(flm), resolved=jnp.asarray(resolved), t_lost=t_lost,
    )
