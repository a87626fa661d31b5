r"""Particles <-> PDE: the same observables from particle positions and from a density solution.

Particle inputs are plain arrays: angles ``(..., n)`` on S^1, or points ``(..., n, d)`` on S^{d-1} (the
``xs`` of a ``jaxattn.simulate`` Trajectory: (T, n, d) or (B, T, n, d)); use [`jaxattn.fields.angles_of`][jaxattn.fields.angles_of]
to turn planar points (..., n, 2) into angles in [0, 2 pi). Density solutions are Fourier moments mu_0..mu_K (S^1,
convention of `jaxattn.spectral.circle`: mu_k = \int e^{-ik theta} d mu, density w.r.t. d theta).

Observables
* [`fourier_moments`][jaxattn.spectral.fourier_moments] (particles) <-> ``DensityTrajectory.coeffs`` (PDE): the identical quantity.
* [`histogram`][jaxattn.spectral.histogram] (particles) <-> [`bin_masses`][jaxattn.spectral.bin_masses] (PDE, exact bin integrals of the density).
* [`harmonic_power`][jaxattn.spectral.harmonic_power] S_k = sum_m |⟨mu, Y_km⟩|^2 on S^{d-1} (addition theorem, any d) for points.

Sampling from a density: [`quantile_sample`][jaxattn.spectral.quantile_sample] (deterministic, theta_i = F^{-1}((i+1/2)/n)) and
[`iid_sample`][jaxattn.spectral.iid_sample] (inverse CDF of uniforms).

Distances
* [`w1_circle`][jaxattn.spectral.w1_circle]: exact W1 with geodesic cost on S^1 between discrete measures,
  W1 = min_c \int_0^{2pi} |F_mu - F_nu - c| d theta (c = median of F_mu - F_nu; Rabin, Delon, Gousseau 2011). A density
  enters through [`discretize_density`][jaxattn.spectral.discretize_density] (cell masses, exact from the CDF, at cell centres: the
  added error is at most half a cell width h/2 and O(h^2) for smooth densities against a fixed measure).
* [`wasserstein_sphere`][jaxattn.spectral.wasserstein_sphere]: W_p on S^{d-1} with geodesic cost, by exact optimal transport with SciPy
  (an assignment problem for two equal-size uniform measures, the transport linear program otherwise);
  NumPy, not differentiable.
"""

from __future__ import annotations

from collections.abc import Sequence
import functools
import math

import numpy as np
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Complex, Float

from .._special import refuse
from .._validate import check_dim, check_finite, check_nonneg_int
from ._gegenbauer import gegenbauer_table, harmonic_dimension

TWO_PI = 2 * math.pi

__all__ = [
    "fourier_moments",
    "histogram",
    "bin_masses",
    "cdf",
    "quantile_sample",
    "iid_sample",
    "discretize_density",
    "cluster_measure",
    "w1_circle",
    "harmonic_power",
    "wasserstein_sphere",
]




def fourier_moments(angles: Float[Array, "... n"], kmax: int) -> Complex[Array, "... {kmax+1}"]:
    """Empirical moments mu_k = (1/n) sum_i e^{-ik theta_i}, k = 0..kmax (same convention as the PDE).

    **Arguments:**

    - `angles`: particle angles (radians), float (..., n).
    - `kmax`: the largest moment, int >= 0.

    **Returns:**

    mu_0..mu_kmax, complex (..., kmax+1).

    **Raises:**

    - `ValueError`: ``angles`` is a scalar.
    """
    kmax = check_nonneg_int("kmax", kmax)
    angles = jnp.asarray(angles)
    if angles.ndim < 1:
        raise ValueError("angles must have shape (..., n)")
    check_finite(angles, "angles")
    k = jnp.arange(kmax + 1)
    return jnp.mean(jnp.exp(-1j * angles[..., None, :] * k[:, None]), axis=-1)


def histogram(angles: Float[Array, "... n"], bins: int = 100) -> Float[Array, "... bins"]:
    """Fraction of particles in each of ``bins`` equal arcs [2pi b/bins, 2pi (b+1)/bins) (masses, sum 1).

    **Arguments:**

    - `angles`: particle angles in [0, 2 pi), float (..., n).
    - `bins`: the number of arcs; default 100.

    **Returns:**

    The masses, float (..., bins).
    """
    angles = jnp.mod(jnp.asarray(angles), TWO_PI)
    check_finite(angles, "angles")
    idx = jnp.clip(jnp.floor(angles * (bins / TWO_PI)).astype(int), 0, bins - 1)
    one_hot = jax.nn.one_hot(idx, bins, dtype=angles.dtype)
    return jnp.mean(one_hot, axis=-2)


def cdf(coeffs: Complex[Array, "... K1"], theta: ArrayLike) -> Float[Array, "... m"]:
    r"""F(theta) = mu([0, theta]) = theta/(2pi) + (1/pi) sum_{k>=1} Re( mu_k (e^{ik theta} - 1)/(ik) ), exact.

    **Arguments:**

    - `coeffs`: the moments mu_0..mu_K of a density on S^1, complex (..., K+1).
    - `theta`: angles in [0, 2 pi], float (m,).

    **Returns:**

    F(theta), float (..., m).
    """
    coeffs = jnp.asarray(coeffs)
    theta = jnp.asarray(theta)
    k = jnp.arange(1, coeffs.shape[-1])
    e = (jnp.exp(1j * k[:, None] * theta[None, :]) - 1) / (1j * k[:, None])
    return jnp.real(coeffs[..., :1]) * theta / TWO_PI + jnp.real(coeffs[..., 1:] @ e) / math.pi


def bin_masses(coeffs: Complex[Array, "... K1"], bins: int = 100) -> Float[Array, "... bins"]:
    """PDE counterpart of [`histogram`][jaxattn.spectral.histogram]: the exact mass of each arc, from the CDF.

    **Arguments:**

    - `coeffs`: the moments mu_0..mu_K of a density on S^1, complex (..., K+1).
    - `bins`: the number of arcs; default 100.

    **Returns:**

    The masses, float (..., bins).
    """
    edges = jnp.arange(bins + 1) * (TWO_PI / bins)
    return jnp.diff(cdf(coeffs, edges), axis=-1)


def _inverse_cdf(coeffs, u, n_grid):
    coeffs = np.asarray(coeffs)
    if coeffs.ndim != 1:
        raise ValueError(f"sampling needs a single density (1-D moments), got shape {coeffs.shape}")
    if abs(coeffs[0] - 1) > 1e-10:
        raise ValueError(f"mu_0 = {coeffs[0]}: not a probability density")
    grid = np.linspace(0, TWO_PI, n_grid + 1)
    F = np.asarray(cdf(jnp.asarray(coeffs), jnp.asarray(grid)))
    if np.any(np.diff(F) < 0):
        raise ValueError("density is negative somewhere (its CDF decreases): cannot sample from it")
    theta = np.interp(u, F, grid)
    # two Newton steps on F(theta) = u, using the exact density, for accuracy beyond the grid
    from .circle import density_on_grid

    for _ in range(2):
        r = np.asarray(cdf(jnp.asarray(coeffs), jnp.asarray(theta))) - u
        rho = np.asarray(density_on_grid(jnp.asarray(coeffs), jnp.asarray(theta)))
        theta = np.where(rho > 1e-8, theta - r / np.maximum(rho, 1e-8), theta)
    return np.clip(theta, 0, TWO_PI)


def quantile_sample(coeffs: Complex[Array, " K1"], n: int, n_grid: int = 8192) -> Float[Array, " n"]:
    """Deterministic sample theta_i = F^{-1}((i + 1/2)/n), i = 0..n-1 (W1 error O(1/n) to the density).

    **Arguments:**

    - `coeffs`: the moments mu_0..mu_K of a density on S^1, complex (K+1,).
    - `n`: the number of angles, int >= 1.
    - `n_grid`: the grid on which the CDF is inverted (by interpolation); default 8192.

    **Returns:**

    Angles in [0, 2 pi), float (n,).
    """
    n = check_nonneg_int("n", n)
    return jnp.asarray(_inverse_cdf(coeffs, (np.arange(n) + 0.5) / n, n_grid))


def iid_sample(key, coeffs: Complex[Array, " K1"], n: int, n_grid: int = 8192) -> Float[Array, " n"]:
    """n iid angles from the density with moments ``coeffs`` (inverse CDF of jax.random uniforms).

    **Arguments:**

    - `key`: a JAX PRNG key.
    - `coeffs`: the moments mu_0..mu_K of a density on S^1, complex (K+1,).
    - `n`: the number of angles, int >= 1.
    - `n_grid`: the grid on which the CDF is inverted (by interpolation); default 8192.

    **Returns:**

    Angles in [0, 2 pi), float (n,).
    """
    n = check_nonneg_int("n", n)
    u = np.asarray(jax.random.uniform(key, (n,), dtype=jnp.result_type(float)))
    return jnp.asarray(_inverse_cdf(coeffs, u, n_grid))


def discretize_density(coeffs: Complex[Array, " K1"], n_cells: int = 4096) -> tuple[Array, Array]:
    """(positions, weights): the exact mass of n_cells equal arcs placed at the arc centres.

    **Arguments:**

    - `coeffs`: the moments mu_0..mu_K of a density on S^1, complex (K+1,).
    - `n_cells`: the number of arcs; default 4096.

    **Returns:**

    ``(positions, weights)``: float (n_cells,) each, weights summing to 1.

    **Raises:**

    - `ValueError`: a cell mass is negative (the truncated density is not a measure).
    """
    w = bin_masses(jnp.asarray(coeffs), n_cells)
    if np.any(np.asarray(w) < -1e-14):
        raise ValueError("density has negative cell masses: not a measure")
    pos = (jnp.arange(n_cells) + 0.5) * (TWO_PI / n_cells)
    return pos, jnp.clip(w, 0, None)


def cluster_measure(k: int, phase: float = 0.0) -> tuple[Array, Array]:
    """delta^k = (1/k) sum_j delta_{phase + 2 pi j / k}: k equally spaced equal Diracs.

    **Arguments:**

    - `k`: the number of Diracs, int >= 1.
    - `phase`: the angle of the first Dirac; default 0.

    **Returns:**

    ``(positions, weights)``: float (k,) each, weights 1/k.
    """
    k = check_nonneg_int("k", k)
    return jnp.mod(phase + TWO_PI * jnp.arange(k) / k, TWO_PI), jnp.full(k, 1.0 / k)


def _as_measure(m):
    if isinstance(m, tuple):
        pos, w = m
        pos, w = jnp.asarray(pos), jnp.asarray(w)
        if pos.shape != w.shape:
            raise ValueError(f"positions {pos.shape} and weights {w.shape} must have the same shape")
    else:
        pos = jnp.asarray(m)
        w = jnp.full(pos.shape, 1.0 / pos.shape[-1])
    check_finite(pos, "positions")
    check_finite(w, "weights")
    return jnp.mod(pos, TWO_PI), w


def _probability_weights(w, name: str):
    """``w``, refused (ValueError eagerly, an error under jit) unless it is >= 0 and sums to 1 along its last axis."""
    w = refuse(w, w < 0, f"w1_circle: the weights of {name} must be >= 0 (a probability measure), got a negative one")
    return refuse(w, jnp.abs(jnp.sum(w, axis=-1) - 1) > 1e-9,
                  f"w1_circle: the weights of {name} must sum to 1 (a probability measure)")


def _w1_circle_1d(xp, xw, yp, yw):
    pos = jnp.concatenate([xp, yp])
    sgn = jnp.concatenate([xw, -yw])
    order = jnp.argsort(pos)
    pos, sgn = pos[order], sgn[order]
    D = jnp.cumsum(sgn)  # F_mu - F_nu on [pos_i, pos_{i+1})
    lengths = jnp.diff(jnp.concatenate([pos, jnp.array([TWO_PI])]))
    # the interval [last, 2pi) joins [0, first) (where D = 0 = D_last up to round-off)
    lengths = lengths.at[-1].add(pos[0])
    # weighted median of D with weights = lengths
    o = jnp.argsort(D)
    Ds, Ls = D[o], lengths[o]
    cum = jnp.cumsum(Ls)
    c = Ds[jnp.searchsorted(cum, 0.5 * cum[-1])]
    return jnp.sum(lengths * jnp.abs(D - c))


def w1_circle(mu, nu) -> Float[Array, "..."]:
    r"""Exact Wasserstein-1 distance with geodesic (arc-length) cost on S^1 between two discrete measures.

    Leading batch axes of an angles array (e.g. times of a trajectory) are mapped over. Uses W1 = min_c \int |F_mu - F_nu - c|
    d theta, whose minimiser c is the median of F_mu - F_nu; cost O((n+m) log(n+m)).
    Reference values: W1(uniform, delta^k) = pi/(2k); W1(delta_a, delta_b) = geodesic |a - b|.

    **Arguments:**

    - `mu`: angles (..., n) with equal weights, or a tuple (positions, weights) with weights summing to 1
        (e.g. [`discretize_density`][jaxattn.spectral.discretize_density], [`cluster_measure`][jaxattn.spectral.cluster_measure]).
    - `nu`: the second measure, in either form.

    **Returns:**

    W1, float (...) (the batch axes of an angles array).
    """
    xp, xw = _as_measure(mu)
    yp, yw = _as_measure(nu)
    xw, yw = _probability_weights(xw, "mu"), _probability_weights(yw, "nu")
    batch = jnp.broadcast_shapes(xp.shape[:-1], yp.shape[:-1])
    xp, xw = jnp.broadcast_to(xp, batch + xp.shape[-1:]), jnp.broadcast_to(xw, batch + xw.shape[-1:])
    yp, yw = jnp.broadcast_to(yp, batch + yp.shape[-1:]), jnp.broadcast_to(yw, batch + yw.shape[-1:])
    return _w1_batched(xp, xw, yp, yw, len(batch))


@functools.partial(jax.jit, static_argnums=4)
def _w1_batched(xp, xw, yp, yw, n_batch):
    f = _w1_circle_1d
    for _ in range(n_batch):
        f = jax.vmap(f)
    return f(xp, xw, yp, yw)


def harmonic_power(points: Float[Array, "... n d"], kmax: int) -> Float[Array, "... {kmax+1}"]:
    r"""S_k = sum_m |(1/n) sum_i Y_km(x_i)|^2 = (Z_k^d / n^2) sum_{i,j} P_k(⟨x_i, x_j⟩), k = 0..kmax.

    Y_km orthonormal in L^2 of the normalised surface measure of S^{d-1}, P_k the normalised Gegenbauer
    polynomial (addition theorem for spherical harmonics). S_0 = 1; for n iid uniform points E S_k = Z_k^d / n; in
    the linear phase S_k(t) ~ S_k(0) e^{2 gamma_k t}. On S^1 (d = 2) S_k = 2 |mu_k|^2.

    **Arguments:**

    - `points`: unit vectors, float (..., n, d).
    - `kmax`: the largest degree, int >= 0.

    **Returns:**

    S_0..S_kmax, float (..., kmax+1).

    **Raises:**

    - `ValueError`: ``points`` is not of shape (..., n, d).
    """
    kmax = check_nonneg_int("kmax", kmax)
    points = jnp.asarray(points)
    if points.ndim < 2:
        raise ValueError(f"points must have shape (..., n, d), got {points.shape}")
    d = check_dim(points.shape[-1])
    check_finite(points, "points")
    n = points.shape[-2]
    G = jnp.clip(jnp.einsum("...id,...jd->...ij", points, points), -1.0, 1.0)
    P, _ = gegenbauer_table(kmax, d, G)  # (kmax+1, ..., n, n)
    Z = jnp.asarray([harmonic_dimension(k, d) for k in range(kmax + 1)], dtype=G.dtype)
    S = jnp.sum(P, axis=(-2, -1)) / n**2  # (kmax+1, ...)
    return jnp.moveaxis(S, 0, -1) * Z


def wasserstein_sphere(x: ArrayLike, y: ArrayLike, a: ArrayLike | Sequence[float] | None = None,
                       b: ArrayLike | Sequence[float] | None = None, p: int = 1) -> float:
    r"""W_p between discrete measures on S^{d-1} with geodesic cost c(x, y) = angle(x, y), exactly.

    W_p(mu, nu)^p = min_{pi >= 0, pi 1 = a, pi^T 1 = b} sum_ij pi_ij c(x_i, y_j)^p (Kantorovich's linear
    program; Villani 2009, Def. 6.1).

    * n == m with uniform weights: the vertices of the transport polytope are permutation matrices
      (Birkhoff-von Neumann), so the optimum is an assignment, solved exactly by
      ``scipy.optimize.linear_sum_assignment`` (O(n^3));
    * otherwise: the linear program above by ``scipy.optimize.linprog`` (HiGHS dual simplex, optimal
      to its feasibility tolerance ~1e-9 relative), n m variables: fine up to n m ~ 1e5.

    **Arguments:**

    - `x`: the support of mu, unit vectors (n, d).
    - `y`: the support of nu, unit vectors (m, d).
    - `a`: the weights of mu, (n,), finite, non-negative; default None (uniform).
    - `b`: the weights of nu, (m,), finite, non-negative, sum(b) = sum(a); default None (uniform).
    - `p`: the order, int >= 1; default 1.

    **Returns:**

    W_p (not W_p^p), a float.

    **Raises:**

    - `ValueError`: mismatched shapes, points off the unit sphere, p < 1, invalid weights or unequal masses.
    """
    from scipy.optimize import linear_sum_assignment

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be (n, d) and (m, d) with the same d, got {x.shape}, {y.shape}")
    check_finite(x, "x")
    check_finite(y, "y")
    if np.max(np.abs(np.linalg.norm(x, axis=1) - 1)) > 1e-8 or np.max(np.abs(np.linalg.norm(y, axis=1) - 1)) > 1e-8:
        raise ValueError("points must lie on the unit sphere")
    if p < 1:
        raise ValueError(f"p must be >= 1 (W_p is a distance for p >= 1), got {p}")
    uniform = a is None and b is None
    a = np.full(len(x), 1.0 / len(x)) if a is None else np.asarray(a, dtype=float)
    b = np.full(len(y), 1.0 / len(y)) if b is None else np.asarray(b, dtype=float)
    if a.shape != (len(x),) or b.shape != (len(y),):
        raise ValueError(f"weights must have shapes ({len(x)},) and ({len(y)},), got {a.shape} and {b.shape}")
    if np.any(a < 0) or np.any(b < 0) or not np.all(np.isfinite(a)) or not np.all(np.isfinite(b)):
        raise ValueError("weights must be finite and non-negative")
    if abs(a.sum() - b.sum()) > 1e-10 * max(a.sum(), b.sum()):
        raise ValueError(f"the measures must have equal mass, got sum(a) = {a.sum()} and sum(b) = {b.sum()}; "
                         "normalise both weight vectors")
    # atan2(|x cross y|, x.y) is accurate at small angles, unlike arccos(x.y) (error ~1e-8 near 0)
    cross = np.linalg.norm(np.cross(x[:, None, :], y[None, :, :]), axis=-1) if x.shape[1] == 3 else None
    if cross is None:
        cross = np.sqrt(np.clip(1 - (x @ y.T) ** 2, 0, None))
    cost = np.arctan2(cross, x @ y.T) ** p
    if uniform and len(x) == len(y):
        rows, cols = linear_sum_assignment(cost)
        return float(cost[rows, cols].mean()) ** (1.0 / p)
    return _transport_lp(a, b, cost) ** (1.0 / p)


def _transport_lp(a: np.ndarray, b: np.ndarray, cost: np.ndarray) -> float:
    """min ⟨pi, cost⟩ over pi >= 0 with row sums a and column sums b (scipy.optimize.linprog, HiGHS)."""
    from scipy.optimize import linprog
    from scipy.sparse import csr_array, eye_array, kron, vstack

    n, m = cost.shape
    rows = kron(eye_array(n), csr_array(np.ones((1, m))), format="csr")  # sum_j pi_ij = a_i
    cols = kron(csr_array(np.ones((1, n))), eye_array(m), format="csr")  # sum_i pi_ij = b_j
    A = vstack([rows, cols[:-1]]).tocsr()  # one column constraint is implied by equal masses
    res = linprog(cost.ravel(), A_eq=A, b_eq=np.concatenate([a, b[:-1]]), bounds=(0, None), method="highs")
    if res.status != 0:  # pragma: no cover - feasible and bounded by construction
        raise RuntimeError(f"the transport linear program failed: {res.message}")
    return float(res.fun)
