"""Extreme beta: Bessel functions for every order and argument, eager and under jit.

Oracles: ``scipy.special.ive`` (AMOS), 40-digit ``mpmath`` where installed, the identity
d/dx I_nu = (I_{nu-1} + I_{nu+1}) / 2 (DLMF 10.29.1), central finite differences, and the linear
theory of the S^2 PDE (Bruno, Pasqualotto, Agazzi 2025, Remark 4.1: mode l grows at gamma_l).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special as sp

import jaxattn
from jaxattn import _special as S
from jaxattn.spectral import linear as L

# nu in [0, 2000] (integers, half-integers, generic reals), x in [1e-3, 1e5]
NU = np.concatenate([np.arange(0.0, 40.0), np.arange(40.0) + 0.5, [0.3, 7.77, 31.9, 32.1, 63.4],
                     np.geomspace(50.0, 2000.0, 30)])
X = np.geomspace(1e-3, 1e5, 81)


def _relative_error(ours, ref):
    ok = (ref > 1e-290) & np.isfinite(ref)
    return np.abs(ours[ok] / ref[ok] - 1), ok


def test_ive_matches_scipy_on_the_whole_grid_eager_and_traced():
    N, Xg = np.meshgrid(NU, X, indexing="ij")
    ref = sp.ive(N, Xg)
    eager = np.asarray(S.ive(N, Xg))
    traced = np.asarray(jax.jit(S.ive)(jnp.asarray(N), jnp.asarray(Xg)))  # x (and nu) traced
    for ours in (eager, traced):
        err, ok = _relative_error(ours, ref)
        assert ok.mean() > 0.75  # most of the grid is representable
        assert err.max() < 1e-12, err.max()
        assert np.median(err) < 1e-14
    np.testing.assert_array_equal(eager, traced)
    # the logarithm is finite on the whole grid, also where e^{-x} I_nu(x) underflows (nu = 2000, x = 1e-3)
    logs = np.asarray(S.log_ive(N, Xg))
    assert np.all(np.isfinite(logs))
    # and continues the representable values: log I_nu(x) ~ nu log(x/2) - log Gamma(nu+1) for x -> 0
    np.testing.assert_allclose(float(S.log_ive(2000.0, 1e-3)), 2000 * np.log(5e-4) - sp.gammaln(2001) - 1e-3,
                               rtol=1e-14)


def test_log_ive_against_mpmath():
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    rng = np.random.default_rng(16)
    nu = np.concatenate([rng.uniform(0, 2000, 40), rng.uniform(0, 60, 40)])
    x = 10 ** rng.uniform(-3, 5, 80)
    ours = np.asarray(S.log_ive(nu, x))
    grad = np.asarray(jax.vmap(jax.grad(S.log_ive, argnums=1))(nu, x))
    checked = 0
    for a, b, o, g in zip(nu, x, ours, grad):
        a, b = mp.mpf(float(a)), mp.mpf(float(b))
        i = [mp.besseli(a + s, b, maxterms=10**6) for s in (-1, 0, 1)]
        ref = mp.log(i[1]) - b
        if ref < -660:  # e^{-x} I_nu(x) not representable: compare logs loosely
            assert abs(o - float(ref)) < 1e-14 * abs(float(ref))
            continue
        checked += 1
        assert abs(o - float(ref)) < 1e-12, (a, b)
        slope = (i[0] + i[2]) / (2 * i[1]) - 1  # d/dx log(e^{-x} I_nu(x)), DLMF 10.29.1
        assert abs(g - float(slope)) < 1e-13 * float(1 / b + a / b), (a, b)
    assert checked > 40


def test_log_ive_gradient_identity_and_finite_differences():
    nu = np.array([0.0, 0.5, 1.0, 3.0, 10.0, 31.5, 32.0, 40.0, 100.0, 700.0, 2000.0, 0.0, 5.0, 1.5, 20.0])
    x = np.array([1.0, 1.9, 2.1, 10.0, 5.0, 100.0, 1e3, 50.0, 1e4, 3e3, 1e5, 1e5, 0.01, 1e-3, 3.0])
    g = np.asarray(jax.jit(jax.vmap(jax.grad(S.log_ive, argnums=1)))(nu, x))
    scale = (1 + nu) / x  # natural size of d/dx log(e^{-x} I_nu): (I_{nu-1}+I_{nu+1})/(2 I_nu) - 1 in [-1, nu/x]
    moderate = (nu <= 100) & (x <= 1e4)  # scipy's ratio is accurate to ~1e-15 there
    identity = (sp.ive(nu - 1, x) + sp.ive(nu + 1, x)) / (2 * sp.ive(nu, x)) - 1
    assert np.all(np.abs(g - identity)[moderate] < 1e-13 * scale[moderate])
    h = 1e-5 * x
    fd = (np.asarray(S.log_ive(nu, x + h)) - np.asarray(S.log_ive(nu, x - h))) / (2 * h)
    assert np.all(np.abs(g - fd) < 1e-7 * scale)
    # d/dnu log I_nu (needed by nobody today, but it must not be garbage): finite differences
    gn = np.asarray(jax.vmap(jax.grad(S.log_ive, argnums=0))(nu + 0.25, x))
    fdn = (np.asarray(S.log_ive(nu + 0.25 + 1e-5, x)) - np.asarray(S.log_ive(nu + 0.25 - 1e-5, x))) / 2e-5
    np.testing.assert_allclose(gn, fdn, rtol=1e-6, atol=1e-8)


def test_ive_compiled_memory_does_not_grow_with_x():
    """The old series allocated (orders x ~x/2 terms): 1.3 GB at x = 1e5 for 3000 orders. Now O(size)."""
    nu = jnp.arange(3000.0)
    sizes = []
    for x in (10.0, 1e6):
        mem = jax.jit(S.ive).lower(nu, jnp.full(3000, x)).compile().memory_analysis()
        if mem is None:
            pytest.skip("no memory analysis on this backend")
        sizes.append(mem.temp_size_in_bytes)
    assert sizes[0] == sizes[1] < 3000 * 8 * 256  # ~120 float64 per order (the power tables), whatever x


def test_growth_rates_large_beta_raise_or_are_right():
    # USA rates ~ e^beta overflow float64: a clear error eagerly and under jit, not [nan inf inf inf]
    with pytest.raises(ValueError, match="overflow float64.*time_rescaled"):
        L.growth_rates(1000.0, 3)
    with pytest.raises(jax.errors.JaxRuntimeError, match="overflow float64"):
        jax.jit(lambda b: L.growth_rates(b, 3))(1000.0).block_until_ready()
    with pytest.raises(ValueError, match="scaled=True.*log_kernel_coefficients"):
        L.kernel_coefficients(800.0, 3)
    k = np.arange(4)
    for beta in (1000.0, 1e4):
        # time-rescaled USA (rates times e^{-beta}): finite, gamma_0 = 0 exactly
        usa = np.asarray(L.growth_rates(beta, 3, time_rescaled=True))
        assert usa[0] == 0.0
        np.testing.assert_allclose(usa, k**2 * sp.ive(k, beta) / beta, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(L.kernel_coefficients(beta, 3, scaled=True)), sp.ive(k, beta) / beta,
                                   rtol=1e-12)
        for d in (2, 3, 5):
            a = (d - 2) / 2
            log_w = np.asarray(L.log_kernel_coefficients(beta, 3, d))
            ref = sp.gammaln(d / 2) + a * np.log(2 / beta) - np.log(beta) + np.log(sp.ive(k + a, beta)) + beta
            np.testing.assert_allclose(log_w, ref, rtol=1e-14)
    # moderate beta: unchanged (the time-rescaled rates are the USA rates times e^{-beta})
    np.testing.assert_allclose(np.asarray(L.growth_rates(5.0, 6, time_rescaled=True)),
                               np.asarray(L.growth_rates(5.0, 6)) * np.exp(-5.0), rtol=1e-14)
    with pytest.raises(ValueError, match="time_rescaled"):
        L.growth_rates(5.0, 3, model="sa", time_rescaled=True)


@pytest.mark.parametrize("beta", [1000.0, 2000.0, 5000.0, 1e4])
def test_sa_rates_at_large_beta_eager_and_traced(beta):
    """gamma_k^SA = k^2 I_k(beta) / (beta I_0(beta)) (paper 004 Remark 4.1); was 13.5x off at 5000 under jit."""
    k = np.arange(8)
    ref = k**2 * sp.ive(k, beta) / (beta * sp.ive(0, beta))
    eager = np.asarray(L.growth_rates(beta, 7, model="sa"))
    traced = np.asarray(jax.jit(lambda b: L.growth_rates(b, 7, model="sa"))(beta))
    np.testing.assert_allclose(eager, ref, rtol=1e-12)
    np.testing.assert_allclose(traced, ref, rtol=1e-12)
    assert eager[0] == 0.0
    # on S^2 as well: l(l+1) I_{l+1/2} / (beta I_{1/2})
    ref3 = k * (k + 1) * sp.ive(k + 0.5, beta) / (beta * sp.ive(0.5, beta))
    np.testing.assert_allclose(np.asarray(jax.jit(lambda b: L.growth_rates(b, 7, d=3, model="sa"))(beta)), ref3,
                               rtol=1e-12)


def test_sa_rate_gradient_at_beta_3000():
    """d gamma_3^SA / d beta at 3000 (had the wrong sign): central differences of the scipy rate."""
    def rate(b):
        return 9 * sp.ive(3, b) / (b * sp.ive(0, b))

    h = 1e-2
    fd = (rate(3000 + h) - rate(3000 - h)) / (2 * h)
    assert fd < 0
    for grad in (jax.grad(lambda b: L.growth_rate(b, 3, model="sa")), jax.jit(jax.grad(
            lambda b: L.growth_rate(b, 3, model="sa")))):
        np.testing.assert_allclose(float(grad(3000.0)), fd, rtol=1e-7)


def test_solve_sphere_large_beta_sa_follows_linear_theory_and_usa_refuses():
    """SA at beta = 800 (returned the initial data with resolved=True): a small zonal mode l = 2 grows at
    gamma_2^SA = 6 I_{5/2}(beta) / (beta I_{1/2}(beta)) (linear theory); USA cannot be represented: clear error."""
    from jaxattn import spectral

    beta, amp, t1 = 800.0, 1e-6, 40.0
    flm0 = spectral.sphere_zonal_mode(6, {2: amp})
    with pytest.raises(ValueError, match="not representable in float64.*model='sa'"):
        spectral.solve_sphere(flm0, beta, 1.0)
    tr = spectral.solve_sphere(flm0, beta, t1, n_save=2, model="sa")
    assert bool(np.all(tr.resolved)) and float(tr.ts[-1]) == t1
    ratio = float(np.real(tr.coeffs[-1, 2, 5] / flm0[2, 5]))
    gamma = float(L.growth_rate(beta, 2, d=3, model="sa"))
    assert abs(gamma * t1 - 0.3) < 0.01  # the growth is visible: e^{0.3} = 1.35
    np.testing.assert_allclose(ratio, np.exp(gamma * t1), rtol=1e-5)  # nonlinear corrections ~ amp
    assert not np.any(np.isnan(np.asarray(tr.energy)))  # E ~ e^beta / beta overflows float64: inf, never nan
