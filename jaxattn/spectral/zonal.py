r"""Axisymmetric (zonal) mean-field attention PDE on S^{d-1}, any d >= 2, in a Gegenbauer basis.

A density that depends only on u = ⟨x, e⟩ stays zonal (O(d-1) symmetry). With the probability weight
w(u) = c_d (1-u^2)^{(d-3)/2} (the law of ⟨x,e⟩ for x uniform on S^{d-1}) and rho w.r.t. the normalised
surface measure (uniform = 1), the continuity equation d_t rho + div(rho v[rho]) = 0 becomes (``docs/spectral.md``, "Algorithms")

    d_t rho = -(1/w) d_u( w (1-u^2) rho v_u ),
    USA: v_u = sign Phi'(u),  SA: v_u = sign Phi'(u) / (beta Phi(u)),
    Phi(u) = (W * mu)(u) = sum_n W_n Z_n r_n P_n(u),   r_n = \int rho P_n w du,

with P_n the Gegenbauer polynomial normalised by P_n(1) = 1, Z_n = 1/\int P_n^2 w = number of degree-n
harmonics, W_n the Funk-Hecke coefficients of W(q) = beta^{-1} e^{beta q} ([`kernel_coefficients`][jaxattn.spectral.kernel_coefficients]).
Time is the particle time of (USA)/(SA) (paper 004 §2). The state is r_0..r_N (r_0 = 1, the mass) and

    d r_l / dt = \int w (1-u^2) rho v_u P_l'(u) du       (Galerkin; integration by parts, no boundary terms),

evaluated by Gauss-Jacobi quadrature with Q >= (3N+1)/2 nodes, exact (de-aliased) for USA. Linearising at
rho = 1 gives d r_l/dt = l(l+d-2) W_l r_l = gamma_l r_l (paper App. D). Zonal solutions collapse onto
latitude rings and poles, not points (paper Lemma E.5), so resolution is monitored as on the circle.

Erratum (``docs/spectral.md``, errata 4): the paper's claim that H_k = {measures with ⟨mu, Y_l⟩ = 0 unless k | l} is invariant
is false for k >= 3, d >= 3: from rho = 1 + eps P_3 on S^2, d/dt \int P_2 rho = (eps^2 W_3 / 2)(8/35) != 0.
This solver (correctly) does not preserve it; H_2 (antipodal symmetry) is preserved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._special import kernel_coefficients
from .._validate import check_dim
from ._base import AbstractSpectralModel, AbstractSpectralTrajectory, check_mass, check_times, model_parameters, solve_monitored
from ._gegenbauer import gegenbauer_table, harmonic_dimension, sphere_weight_nodes

__all__ = ["ZonalModel", "ZonalTrajectory", "solve_zonal", "zonal_coefficients", "zonal_mode", "zonal_density"]


class ZonalModel(AbstractSpectralModel):
    r"""Right-hand side d r_l/dt of the zonal PDE on S^{d-1} for r_0..r_N (module docstring); the state is r.

    **Arguments:**

    - `beta`: the inverse temperature, float > 0 (a JAX scalar is fine: the model is differentiable in beta).
    - `N`: the largest degree, int >= 2.
    - `d`: the ambient dimension (S^{d-1}), int >= 2.
    - `model`: "usa" (default) or "sa".
    - `sign`: +1 (default, V = I) or -1 (V = -I).
    - `n_quad`: the number of Gauss-Jacobi nodes Q; default (3N+1)//2 + 1 for USA (de-aliased), 2N+2 for SA.
    """

    uniform_density: ClassVar[float] = 1.0

    beta: Float[Array, ""]
    kernel_cache: Float[Array, " N1"] | None
    Z: Float[Array, " N1"]
    u: Float[Array, " Q"]
    w: Float[Array, " Q"]
    P: Float[Array, "N1 Q"]
    dP: Float[Array, "N1 Q"]
    N: int = eqx.field(static=True)
    d: int = eqx.field(static=True)
    model: str = eqx.field(static=True)
    sign: int = eqx.field(static=True)

    def __init__(self, beta, N: int, d: int, model: str = "usa", sign: int = 1, n_quad: int | None = None):
        self.beta, self.N, self.model, self.sign = model_parameters(beta, "N", N, 2, model, sign)
        self.d = check_dim(d)
        if n_quad is None:
            n_quad = (3 * self.N + 1) // 2 + 1 if self.model == "usa" else 2 * self.N + 2
        u, w = sphere_weight_nodes(self.d, n_quad)
        self.u, self.w = jnp.asarray(u), jnp.asarray(w)
        self.P, self.dP = gegenbauer_table(self.N, self.d, self.u)
        self.Z = jnp.asarray([float(harmonic_dimension(n, self.d)) for n in range(self.N + 1)])
        self.kernel_cache = None

    def kernel(self) -> Float[Array, " N1"]:
        """Funk-Hecke coefficients W_n(beta, d), n = 0..N."""
        return kernel_coefficients(self.beta, self.N, self.d)

    def density(self, r: Float[Array, " N1"]) -> Float[Array, " Q"]:
        """rho = sum_n Z_n r_n P_n at the quadrature nodes (uniform = 1).

        **Arguments:**

        - `r`: the coefficients r_0..r_N, float (N+1,).

        **Returns:**

        rho, float (Q,).
        """
        return (self.Z * r) @ self.P

    def velocity(self, r: Float[Array, " N1"]) -> Float[Array, " Q"]:
        """v_u at the nodes (the velocity is v_u grad u, |grad u|^2 = 1 - u^2).

        **Arguments:**

        - `r`: the coefficients r_0..r_N, float (N+1,).

        **Returns:**

        v_u, float (Q,).
        """
        c = self.W * self.Z * r
        dphi = c @ self.dP
        if self.model == "usa":
            return self.sign * dphi
        return self.sign * dphi / (self.beta * (c @ self.P))

    def __call__(self, t, r, args=None):
        """d r_l/dt = sum_nodes w (1-u^2) rho v_u P_l'(u) (Galerkin, module docstring).

        **Arguments:**

        - `t`: the time (unused).
        - `r`: the state r_0..r_N, float (N+1,).
        - `args`: unused; default None.

        **Returns:**

        dr/dt, float (N+1,).
        """
        flux = self.w * (1 - self.u**2) * self.density(r) * self.velocity(r)
        return self.dP @ flux

    def coefficients(self, y: Float[Array, "... N1"]) -> Float[Array, "... N1"]:
        return y

    def tail(self, r):
        """max |Z_n r_n| over the top eighth n > 7N/8 (relative to the mass Z_0 r_0 = 1).

        **Arguments:**

        - `r`: the coefficients r_0..r_N, float (N+1,).

        **Returns:**

        The relative spectral tail, a float scalar.
        """
        return jnp.max(jnp.abs(self.Z * r)[self.N - self.N // 8 :])

    def min_density(self, r):
        """min of rho over the quadrature nodes and the pole u = -1 (uniform = 1).

        **Arguments:**

        - `r`: the coefficients r_0..r_N, float (N+1,).

        **Returns:**

        The minimum density, a float scalar.
        """
        return jnp.minimum(jnp.min(self.density(r)), jnp.sum(self.Z * r * (-1.0) ** jnp.arange(self.N + 1)))

    def energy(self, r):
        r"""E = (1/2) \iint W(⟨x,y⟩) d mu d mu = (1/2) sum_n W_n Z_n r_n^2 (zonal measure).

        **Arguments:**

        - `r`: the coefficients r_0..r_N, float (..., N+1).

        **Returns:**

        E, float (...).
        """
        return 0.5 * jnp.sum(self.W * self.Z * r**2, axis=-1)


def zonal_mode(N: int, d: int, amplitudes: dict[int, float]) -> Float[Array, " {N+1}"]:
    """Coefficients of rho = 1 + sum_n a_n P_n(u): r_n = a_n / Z_n (r_0 = 1).

    **Arguments:**

    - `N`: the largest degree, int >= 1.
    - `d`: the ambient dimension, int >= 2.
    - `amplitudes`: ``{n: a_n}``, 1 <= n <= N.

    **Returns:**

    r_0..r_N, float (N+1,) (the density is not checked for positivity).
    """
    r = np.zeros(N + 1)
    r[0] = 1.0
    for n, a in amplitudes.items():
        r[n] += a / harmonic_dimension(n, d)
    return jnp.asarray(r)


def zonal_coefficients(f: Callable[[Array], Array], N: int, d: int, n_quad: int | None = None) -> Float[Array, " {N+1}"]:
    r"""r_n = \int f(u) P_n(u) w(u) du (Gauss-Jacobi); f must be a non-negative density with mass 1.

    **Arguments:**

    - `f`: the density, a JAX function of u in [-1, 1] (elementwise), w.r.t. the normalised measure.
    - `N`: the largest degree, int >= 0.
    - `d`: the ambient dimension, int >= 2.
    - `n_quad`: the number of Gauss-Jacobi nodes; default 4N+8.

    **Returns:**

    r_0..r_N, float (N+1,).

    **Raises:**

    - `ValueError`: non-finite or negative values, or mass != 1 (1e-8).
    """
    d = check_dim(d)
    u, w = sphere_weight_nodes(d, n_quad or 4 * N + 8)
    vals = np.asarray(f(jnp.asarray(u)))
    if not np.all(np.isfinite(vals)):
        raise ValueError("density contains NaN or inf")
    if vals.min() < 0:
        raise ValueError(f"density must be non-negative, min is {vals.min():.3g}")
    P, _ = gegenbauer_table(N, d, u)
    r = P @ jnp.asarray(w * vals)
    if abs(float(r[0]) - 1) > 1e-8:
        raise ValueError(f"density has mass {float(r[0]):.12g} (w.r.t. the normalised measure), not 1")
    return r


def zonal_density(r: Float[Array, "... N1"], d: int, u: ArrayLike) -> Float[Array, "... m"]:
    """rho(u) = sum_n Z_n r_n P_n(u).

    **Arguments:**

    - `r`: the coefficients r_0..r_N, float (..., N+1).
    - `d`: the ambient dimension, int >= 2.
    - `u`: points in [-1, 1], float (m,).

    **Returns:**

    rho, float (..., m), relative to uniform 1.
    """
    N = r.shape[-1] - 1
    P, _ = gegenbauer_table(N, d, jnp.asarray(u))
    Z = jnp.asarray([float(harmonic_dimension(n, d)) for n in range(N + 1)])
    return (Z * r) @ P


class ZonalTrajectory(AbstractSpectralTrajectory):
    """A zonal solution ([`AbstractSpectralTrajectory`][jaxattn.spectral.AbstractSpectralTrajectory]): ``coeffs`` (T, N+1) are r_n(t), densities relative to uniform 1."""

    def density(self, u: ArrayLike) -> Float[Array, "T m"]:
        """rho(t, u) at the points u = ⟨x, e⟩ in [-1, 1].

        **Arguments:**

        - `u`: points in [-1, 1], float (m,).

        **Returns:**

        rho, float (T, m), relative to uniform 1.
        """
        return zonal_density(self.coeffs, self.d, u)


def solve_zonal(
    r0: Float[Array, " N1"],
    beta: float,
    d: int,
    t1: float | None = None,
    *,
    ts=None,
    n_save: int = 101,
    model: str = "usa",
    sign: int = 1,
    **options,
) -> ZonalTrajectory:
    """Solve the zonal PDE on S^{d-1} from Gegenbauer coefficients r0 (r0[0] = 1), Tsit5 + PID; ``options`` and
    the resolution policy as in [`jaxattn.spectral.solve_circle`][jaxattn.spectral.solve_circle] (densities relative to uniform 1).

    **Arguments:**

    - `r0`: the initial coefficients r_0..r_N, float (N+1,), N >= 2, r_0 = 1, with a density >= 0 at the nodes.
    - `beta`: the inverse temperature, float > 0.
    - `d`: the ambient dimension (S^{d-1}), int >= 2.
    - `t1`: the final time, float > 0; or None when ``ts`` is given.
    - `ts`: the save times, strictly increasing, >= 2 entries; default None (``n_save`` uniform times in [0, t1]).
    - `n_save`: the number of uniform save times; default 101.
    - `model`: "usa" (default) or "sa".
    - `sign`: +1 (default) or -1.
    - `options`: keyword arguments of [`solve_monitored`][jaxattn.spectral.solve_monitored].

    **Returns:**

    A [`ZonalTrajectory`][jaxattn.spectral.ZonalTrajectory].

    **Raises:**

    - `ValueError`: a wrong shape or mass of ``r0``, a negative initial density, invalid times or parameters.
    - `RuntimeError`: the solve fails, or resolution is lost with ``on_unresolved="raise"``.
    """
    r0 = jnp.asarray(r0, dtype=jnp.result_type(float))
    if r0.ndim != 1 or r0.shape[0] < 3:
        raise ValueError(f"r0 must be 1-D coefficients r_0..r_N, N >= 2, got shape {r0.shape}")
    check_mass(r0, r0[0], 1.0, "r_0")
    ts = check_times(t1, ts, n_save)
    m = ZonalModel(beta, r0.shape[0] - 1, d, model=model, sign=sign)
    if float(jnp.min(m.density(r0))) < 0:
        raise ValueError("initial density is negative at some quadrature node")
    return solve_monitored(
        m, r0, ts, trajectory=ZonalTrajectory, label=f"zonal PDE on S^{d - 1} (beta={beta}, N={m.N}, {m.model})",
        **options,
    )
