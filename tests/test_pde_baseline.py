"""The NumPy Lax–Friedrichs baseline of the circle PDE (benchmarks/circle_pde_baseline.py).

Convention (as tests/test_spectral_circle.py): theta in [0, 2pi), density rho w.r.t. d theta (uniform 1/(2pi)),
USA velocity v = -int sin(theta - w) e^{beta cos(theta - w)} rho(w) dw, time of the particle ODE; a
cos(k theta) perturbation of amplitude eps has mu_k = pi eps. The baseline and ``solve_circle`` are
independent discretisations, so convergence of one to the other checks that both solve this equation.
"""

import math

import numpy as np
import pytest

import equinox as eqx
import jax.numpy as jnp

import jaxattn  # noqa: F401  (float64)
from benchmarks.circle_pde_baseline import (TWO_PI, errors, lax_friedrichs_circle, lf_grid, lf_steps,
                                            velocity_operator)
from jaxattn.spectral.circle import CircleModel, density_on_grid, from_state, integrate_circle, mode_coefficients


@eqx.filter_jit
def _spectral(model, c0, t1):
    # solve_circle's model and integrator without its resolution monitor (compiles ~2 s faster; at
    # eps = 1e-6, T = 0.05 nothing is near the resolution limit)
    return from_state(integrate_circle(model, c0, jnp.stack([0.0 * t1, t1])).ys[-1])


def test_lax_friedrichs_conserves_mass_and_positivity_of_uniform():
    M, beta = 256, 5.0
    x = lf_grid(M)
    u0 = 1 / TWO_PI + 1e-2 * np.cos(3 * x) + 5e-3 * np.sin(2 * x)
    u = lax_friedrichs_circle(u0, beta, 0.1)
    mass0, mass = u0.sum() * TWO_PI / M, u.sum() * TWO_PI / M
    assert abs(mass - mass0) < 1e-14
    # the uniform state is an equilibrium (v = 0 to round-off)
    flat = lax_friedrichs_circle(np.full(M, 1 / TWO_PI), beta, 0.05)
    assert np.max(np.abs(flat - 1 / TWO_PI)) < 1e-15
    assert lf_steps(M, 0.1) == math.ceil(0.1 / (0.02 * TWO_PI / M))


def test_direct_convolutions_agree():
    M, beta = 64, 3.0
    u = np.random.default_rng(0).random(M)
    exact = np.array([sum(-math.exp(beta * math.cos(x - y)) * math.sin(x - y) * uj * TWO_PI / M
                          for y, uj in zip(lf_grid(M), u)) for x in lf_grid(M)])
    for method in ("gemv", "convolve"):
        assert np.max(np.abs(velocity_operator(M, beta, method=method)(u) - exact)) < 1e-12
        # the authors' conv1d is a cross-correlation: sum_j W'(theta_i + theta_j) u_j
        corr = velocity_operator(M, beta, correlate=True, method=method)(u)
        assert np.max(np.abs(corr - velocity_operator(M, beta, method=method)(np.roll(u[::-1], 1)))) < 1e-12


@pytest.mark.parametrize("kind", ["cos", "sin"])
def test_converges_first_order_to_the_spectral_solution(kind):
    """Linear regime (eps = 1e-6): the L2 error against the spectral solution halves as M doubles."""
    beta, t1, eps, k = 5.0, 0.05, 1e-6, 3
    ref = _spectral(CircleModel(beta, 32), mode_coefficients(32, **{kind: {k: eps}}), jnp.asarray(t1))
    errs = []
    for M in (256, 512, 1024):
        x = lf_grid(M)
        u0 = 1 / TWO_PI + eps * (np.cos(k * x) if kind == "cos" else np.sin(k * x))
        errs.append(errors(lax_friedrichs_circle(u0, beta, t1), np.asarray(density_on_grid(ref, x)))[0])
    errs = np.array(errs) / (eps * math.sqrt(math.pi))  # relative to the perturbation's L2 norm
    ratios = errs[:-1] / errs[1:]
    assert np.all((ratios > 1.7) & (ratios < 2.3)), (errs, ratios)
    assert errs[-1] < 0.2


def test_authors_cross_correlation_kills_sin_modes_only():
    """docs/spectral.md erratum 3: with conv1d's correlation, cos data are unchanged, sin modes decay."""
    M, beta, t1 = 128, 5.0, 0.1
    x = lf_grid(M)
    even = 1 / TWO_PI + 1e-3 * np.cos(3 * x)
    assert np.max(np.abs(lax_friedrichs_circle(even, beta, t1, correlate=True)
                         - lax_friedrichs_circle(even, beta, t1))) < 1e-15
    odd = 1 / TWO_PI + 1e-3 * np.sin(3 * x)
    amp = lambda u: abs(np.fft.rfft(u)[3]) * 2 / M  # noqa: E731
    assert amp(lax_friedrichs_circle(odd, beta, t1)) > 1e-3
    assert amp(lax_friedrichs_circle(odd, beta, t1, correlate=True)) < 2e-4
    # the authors' float32 storage of every step costs ~1e-8 relative, not more
    f32 = lax_friedrichs_circle(even, beta, t1, store_float32=True)
    assert 1e-10 < np.max(np.abs(f32 - lax_friedrichs_circle(even, beta, t1))) < 1e-6
