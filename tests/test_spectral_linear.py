"""Linear theory at the uniform state (paper 004 Rem. 4.1, App. C-D).

Convention in every test: W(q) = beta^{-1} e^{beta q}; rates in the particle time of eq. (10)
(dtheta_i/dt = -(1/N) sum_j e^{beta cos(theta_i-theta_j)} sin(theta_i-theta_j) for USA); coefficients on the
probability measure (d theta / 2pi on S^1, normalised surface measure on S^{d-1}).
Oracles: scipy.special.iv / ive, scipy quadrature, independently computed tables (scipy, quoted in the tests).
"""

import numpy as np
import pytest
import scipy.special as sp
from scipy.integrate import quad

import jaxattn  # noqa: F401  (float64)
import jax
import jax.numpy as jnp

from jaxattn import _special as _bessel
from jaxattn.spectral import linear as L


@pytest.mark.parametrize("beta", [0.01, 0.5, 2.0, 5.0, 7.0, 20.0, 100.0, 500.0])
def test_bessel_series_matches_scipy(beta):
    nu = np.concatenate([np.arange(40.0), np.arange(40) + 0.5, np.arange(40) + 1.5])
    ours = np.asarray(_bessel.ive(nu, beta))
    ref = sp.ive(nu, beta)
    ok = ref > 1e-290
    np.testing.assert_allclose(ours[ok], ref[ok], rtol=3e-13 if beta < 200 else 1e-12)


@pytest.mark.parametrize("beta", [0.5, 2.0, 5.0, 7.0, 20.0])
def test_kernel_coefficients_fft_and_closed_form(beta):
    """W_k from the FFT of beta^{-1} e^{beta cos theta} (M = 256) equals iv(k, beta)/beta."""
    M = 256
    theta = 2 * np.pi * np.arange(M) / M
    W_fft = np.real(np.fft.fft(np.exp(beta * np.cos(theta)) / beta)[:31]) / M
    ref = sp.iv(np.arange(31), beta) / beta
    big = ref / ref[0] > 1e-3
    np.testing.assert_allclose(W_fft[big], ref[big], rtol=1e-12)
    assert np.max(np.abs(W_fft[~big] - ref[~big])) < 1e-15 * ref[0] * 10
    # the library's closed form (log-space Bessel series) keeps *relative* accuracy everywhere
    np.testing.assert_allclose(np.asarray(L.kernel_coefficients(beta, 30)), ref, rtol=1e-12)


def test_growth_rate_table_d2():
    """Reference table: gamma_k = k^2 I_k(beta)/beta (the paper's Fig. 2 plots gamma_k / pi)."""
    g5 = [4.867128, 14.004492, 18.596070, 16.346351, 10.789873, 5.704457, 2.513592, 0.948693, 0.312915, 0.091601]
    g7 = [22.291299, 70.863606, 109.511340, 116.580001, 96.019594, 64.778980, 37.047452, 18.385612, 8.054758, 3.156858]
    np.testing.assert_allclose(np.asarray(L.growth_rates(5.0, 10))[1:], g5, rtol=0, atol=6e-7)  # table has 6 decimals
    np.testing.assert_allclose(np.asarray(L.growth_rates(7.0, 10))[1:], g7, rtol=0, atol=6e-7)
    # independent oracle: scipy
    k = np.arange(25)
    np.testing.assert_allclose(np.asarray(L.growth_rates(3.3, 24)), k**2 * sp.iv(k, 3.3) / 3.3, rtol=1e-12)
    # Kuramoto limit: gamma_1 -> 1/2
    assert abs(float(L.growth_rate(0.01, 1)) - 0.50000625) < 1e-8
    # V = -I: every rate flips sign
    np.testing.assert_allclose(np.asarray(L.growth_rates(5.0, 6, sign=-1)), -np.asarray(L.growth_rates(5.0, 6)))


def test_sa_rates_and_T28_values():
    """002-T28: SA rates k^2 I_k/(beta I_0); USA/SA values for several (beta, k)."""
    sa5 = [0.178677, 0.514117, 0.682678, 0.600089, 0.396106, 0.209416, 0.092276, 0.034827]
    np.testing.assert_allclose(np.asarray(L.growth_rates(5.0, 8, model="sa"))[1:], sa5, rtol=0, atol=6e-7)
    for beta, k, sa, usa in [(1, 1, 0.44639, 0.56516), (4, 2, 0.56824, 6.42219), (4, 3, 0.66439, 7.50887)]:
        assert abs(float(L.growth_rate(float(beta), k, model="sa")) - sa) < 1e-5
        assert abs(float(L.growth_rate(float(beta), k)) - usa) < 1e-5
    assert abs(float(L.growth_rate(9.0, 4, model="sa")) - 0.70450) < 1e-5
    # 002-T29 on S^2: SA beta = 1, l = 1, 2
    np.testing.assert_allclose(np.asarray(L.growth_rates(1.0, 2, d=3, model="sa"))[1:], [0.6261, 0.3654], atol=1e-4)
    assert abs(float(L.growth_rate(1e-4, 1, d=3, model="sa")) - 2 / 3) < 1e-4


def test_kmax_table_d2_and_sa():
    """k_max(beta) for d = 2 (and the same for SA); asymptotics sqrt(2 beta), not sqrt(beta)."""
    betas = [0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 30, 50, 100, 200]
    expected = [1, 1, 2, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5, 6, 8, 10, 14, 20]
    assert list(L.dominant_mode(np.array(betas, float))) == expected
    assert [L.dominant_mode(float(b), model="sa") for b in betas] == expected
    # brute force with scipy as an independent oracle
    for b in betas:
        k = np.arange(1, 60)
        assert L.dominant_mode(float(b)) == k[np.argmax(k**2 * sp.ive(k, b))]
    # 002-T28 SA most-unstable modes
    assert [L.dominant_mode(float(b), model="sa") for b in [1, 2, 4, 6, 9, 16, 25]] == [1, 2, 3, 3, 4, 6, 7]


def test_crossover_betas():
    ref = [1.04446, 3.16543, 6.21130, 10.22848, 15.23628, 21.24045, 28.24296, 36.24458, 45.24570]
    bs = L.crossover_betas(9)
    np.testing.assert_allclose(bs, ref, atol=1e-5)
    for k, b in enumerate(bs, start=1):
        assert L.dominant_mode(b * (1 - 1e-6)) == k and L.dominant_mode(b * (1 + 1e-6)) == k + 1


def test_kmax_table_general_d():
    """Matrix k_max(beta, d); agrees with max(1, round(sqrt(2 beta + a^2) - a)).

    (round(...) alone is not enough: at beta = 1, d >= 8 that rounds to 0, so the floor at 1 is needed.)"""
    betas = np.array([1, 2, 4, 5, 7, 10, 20, 50, 100, 400.0])
    table = {
        2: [1, 2, 3, 3, 4, 4, 6, 10, 14, 28],
        3: [1, 2, 2, 3, 3, 4, 6, 10, 14, 28],
        4: [1, 1, 2, 2, 3, 4, 5, 9, 13, 27],
        8: [1, 1, 1, 1, 2, 2, 4, 7, 11, 25],
        16: [1, 1, 1, 1, 1, 1, 2, 5, 9, 22],
        32: [1, 1, 1, 1, 1, 1, 1, 3, 6, 17],
        64: [1, 1, 1, 1, 1, 1, 1, 2, 3, 11],
        128: [1, 1, 1, 1, 1, 1, 1, 1, 2, 6],
        512: [1, 1, 1, 1, 1, 1, 1, 1, 1, 2],
    }
    for d, row in table.items():
        assert list(L.dominant_mode(betas, d=d)) == row, d
        assert list(np.maximum(1, np.round(np.asarray(L.kmax_asymptotic(betas, d)))).astype(int)) == row, d


def test_rates_d3_d4_tables():
    d3 = [4.74954, 9.25959, 9.97809, 7.5831, 4.47085, 2.15431, 0.87731, 0.30918]
    d4 = [4.20135, 6.61194, 6.12988, 4.14331, 2.2184, 0.98492, 0.37355, 0.12362]
    np.testing.assert_allclose(np.asarray(L.growth_rates(5.0, 8, d=3))[1:], d3, rtol=0, atol=6e-6)  # 5 decimals
    np.testing.assert_allclose(np.asarray(L.growth_rates(5.0, 8, d=4))[1:], d4, rtol=0, atol=6e-6)
    # d = 3: k(k+1) i_k(beta)/beta with scipy's modified spherical Bessel i_k
    k = np.arange(12)
    np.testing.assert_allclose(
        np.asarray(L.growth_rates(7.0, 11, d=3)), k * (k + 1) * sp.spherical_in(k, 7.0) / 7.0, rtol=1e-12
    )


@pytest.mark.parametrize("d", [3, 4, 5, 8])
def test_closed_form_matches_funk_hecke_quadrature(d):
    """the Gegenbauer closed form equals Funk-Hecke quadrature (scipy quad, Rodrigues-free P_k)."""
    from scipy.special import eval_gegenbauer, gamma

    beta = 5.0
    a = (d - 2) / 2
    cd = gamma(d / 2) / (np.sqrt(np.pi) * gamma((d - 1) / 2))
    W = np.asarray(L.kernel_coefficients(beta, 6, d=d))
    Wq = np.asarray(L.funk_hecke_coefficients(lambda t: jnp.exp(beta * t) / beta, 6, d, n_quad=64))
    for k in [0, 1, 3, 6]:
        Pk = lambda t: eval_gegenbauer(k, a, t) / eval_gegenbauer(k, a, 1.0)
        ref = quad(lambda t: np.exp(beta * t) / beta * Pk(t) * cd * (1 - t * t) ** ((d - 3) / 2), -1, 1, epsabs=0, epsrel=1e-12, limit=200)[0]
        assert abs(W[k] / ref - 1) < 1e-9
        assert abs(Wq[k] / ref - 1) < 1e-9


def test_harmonic_dimension():
    assert [L.harmonic_dimension(k, 3) for k in range(5)] == [1, 3, 5, 7, 9]
    assert [L.harmonic_dimension(k, 2) for k in range(4)] == [1, 2, 2, 2]
    assert L.harmonic_dimension(2, 4) == 9 and L.harmonic_dimension(3, 5) == 30


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_grad_growth_rate_matches_closed_form(k):
    """d gamma_k / d beta = k^2 [(I_{k-1}+I_{k+1})/(2 beta) - I_k/beta^2]."""
    for beta in [0.7, 5.0, 12.0]:
        g = float(jax.grad(lambda b: L.growth_rate(b, k))(beta))
        ref = k**2 * ((sp.iv(k - 1, beta) + sp.iv(k + 1, beta)) / (2 * beta) - sp.iv(k, beta) / beta**2)
        assert abs(g / ref - 1) < 1e-10
    # and through jit, for d = 3 and SA (finite differences as the oracle)
    f = jax.jit(lambda b: L.growth_rate(b, k, d=3, model="sa"))
    h = 1e-5
    fd = (float(f(5.0 + h)) - float(f(5.0 - h))) / (2 * h)
    assert abs(float(jax.grad(f)(5.0)) - fd) < 1e-8 * max(1.0, abs(fd))


def test_grenier_coefficient_values():
    assert abs(L.grenier_coefficient(5.0, 3) - 3.710738) < 1e-6
    assert abs(L.grenier_coefficient(7.0, 4) - 3.410527) < 1e-6
    assert abs(L.exit_time_slope(2.0) - 0.3629) < 1e-4


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_beta_raises(bad):
    with pytest.raises(ValueError, match="beta"):
        L.growth_rates(bad, 4)
    with pytest.raises(ValueError, match="beta"):
        L.dominant_mode(bad)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="model"):
        L.growth_rates(1.0, 3, model="softmax")
    with pytest.raises(ValueError, match="sign"):
        L.growth_rates(1.0, 3, sign=2)
    with pytest.raises(ValueError, match="d must"):
        L.growth_rates(1.0, 3, d=1)
    with pytest.raises(TypeError, match="kmax"):
        L.growth_rates(1.0, 2.5)
