"""Pseudo-spectral circle PDE (paper 004 eq. (11)/(15); paper 002 T28, T30).

Convention in every test (docs/spectral.md): theta in [0, 2pi); density rho w.r.t. d theta (uniform 1/(2pi));
moments mu_k = int e^{-ik theta} d mu (mu_0 = 1); W_k = I_k(beta)/beta; time = particle time of eq. (10),
dtheta_i/dt = -(1/N) sum_j e^{beta cos(theta_i-theta_j)} sin(theta_i-theta_j) (USA), V = +I unless stated.
A cos(k theta) perturbation of amplitude eps has mu_k = pi eps; sin(k theta) has mu_k = -i pi eps.
"""

import math
import warnings

import numpy as np
import pytest
import scipy.special as sp

import jaxattn  # noqa: F401  (float64)
import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp

from jaxattn.spectral import circle as C, linear as L

K = 32  # resolves the beta <= 7 kernel to 1e-16 (docs/spectral.md); one compiled shape for most tests


@eqx.filter_jit
def _integrate(model, c0, ts, atol=1e-20):
    # atol << the smallest amplitude followed (1e-10, 1e-12) so tiny modes stay relatively accurate, but above
    # the round-off of the pseudo-spectral flux (~1e-16 |flux|), or the controller rejects every step
    sol = C.integrate_circle(model, c0, ts, rtol=1e-12, atol=atol, max_steps=20_000)
    return C.from_state(sol.ys)


def _unit(k, K=K, phase=1.0):
    c = np.zeros(K + 1, complex)
    c[k] = phase
    return jnp.asarray(c)


@pytest.mark.parametrize(
    "model,sign,beta",
    [("usa", 1, 5.0), ("usa", 1, 0.3), ("sa", 1, 5.0), ("usa", -1, 5.0), ("sa", -1, 2.0)],
)
def test_linear_operator_is_diagonal_with_rates(model, sign, beta):
    """002-T28: the Jacobian at the uniform state (jax.jvp) is diag(gamma_k) in Fourier space."""
    m = C.CircleModel(beta, K, model=model, sign=sign)
    y0 = C.to_state(C.mode_coefficients(K))
    gam = np.asarray(L.growth_rates(beta, K, model=model, sign=sign))
    # uniform state is an equilibrium (docs/spectral.md)
    assert float(jnp.max(jnp.abs(m(0.0, y0)))) < 1e-15 * max(1.0, abs(gam).max())
    for k in [1, 2, 3, 4, 6, 9]:
        for phase in [1.0, 1j, (1 - 2j) / 3]:
            _, dy = jax.jvp(lambda y: m(0.0, y), (y0,), (C.to_state(_unit(k, phase=phase)),))
            dc = np.asarray(C.from_state(dy))
            expected = np.zeros(K + 1, complex)
            expected[k] = gam[k] * phase
            assert np.max(np.abs(dc - expected)) <= 1e-12 * abs(gam[k]) + 1e-15, (k, phase)


def test_linear_growth_in_time_cos_and_sin():
    """rho_0 = 1/(2pi) + eps cos k theta and + eps sin k theta, eps = 1e-10, beta = 5, k = 1..6,
    integrated to t = ln(10)/gamma_k: the fitted rate equals gamma_k to 1e-6 and the phase is kept.
    The sin case catches the authors' cross-correlation bug (there sin modes *decay*, docs/spectral.md erratum 3)."""
    beta, eps = 5.0, 1e-10
    m = C.CircleModel(beta, K)
    gam = np.asarray(L.growth_rates(beta, 6))
    for k in range(1, 7):
        t1 = math.log(10) / gam[k]
        for trig in ("cos", "sin"):
            c0 = C.mode_coefficients(K, **{trig: {k: eps}})
            c = _integrate(m, c0, jnp.array([0.0, t1]))
            ratio = complex(c[1, k] / c0[k])
            rate = math.log(abs(ratio)) / t1
            assert abs(rate / gam[k] - 1) < 1e-6, (k, trig, rate, gam[k])
            assert abs(np.angle(ratio)) < 1e-8  # no rotation, no reflection


def test_mass_energy_and_energy_identity():
    """002-T30: mass to 1e-13, E non-decreasing (V = I), dE/dt = int rho v^2 to 1e-8,
    E(uniform) = I_0(beta)/(2 beta)."""
    beta = 5.0
    c0 = C.mode_coefficients(48, cos={3: 0.01}, sin={2: 0.004})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # must stay resolved up to the quasi-linear exit
        tr = C.solve_circle(c0, beta, 0.1, n_save=31)  # same shapes as test_resolution_is_monitored: one compile
    assert tr.t_lost == math.inf
    assert float(jnp.max(jnp.abs(tr.coeffs[:, 0] - 1))) < 1e-13
    E = np.asarray(tr.energy)
    assert np.all(np.diff(E) >= -1e-12 * E[0])
    assert E[-1] > 1.03 * E[0] and abs(complex(tr.coeffs[-1, 3])) > 5 * abs(complex(c0[3]))  # left the uniform state
    np.testing.assert_allclose(float(C.energy(C.mode_coefficients(8), beta)), sp.iv(0, beta) / (2 * beta), rtol=1e-13)
    # energy identity at a few states: dE/dt = sum_k W_k Re(conj(mu_k) dmu_k/dt) (k in Z) = int rho v^2 d theta
    m = C.CircleModel(beta, 48)
    for c in tr.coeffs[::10]:
        dc = C.from_state(m(0.0, C.to_state(c)))
        dE = 2 * float(jnp.sum(m.W[1:] * jnp.real(jnp.conj(c[1:]) * dc[1:])))  # k and -k
        rho, v = m.density(c), m.velocity(c)
        rhs = float(jnp.sum(rho * v * v) * 2 * math.pi / m.M)
        assert abs(dE / rhs - 1) < 1e-8


@pytest.mark.slow
def test_repulsive_and_sa_energy_monotone():
    """002-T30: E non-increasing for V = -I (and the perturbation decays); non-decreasing for SA."""
    c0 = C.mode_coefficients(K, cos={3: 0.05, 1: 0.03})
    tr = C.solve_circle(c0, 2.0, 1.0, n_save=21, sign=-1)
    E = np.asarray(tr.energy)
    assert np.all(np.diff(E) <= 1e-13) and E[-1] < E[0]
    assert abs(complex(tr.coeffs[-1, 3])) < abs(complex(c0[3])) * math.exp(-0.7 * L.growth_rate(2.0, 3))
    tr = C.solve_circle(c0, 2.0, 1.0, n_save=21, model="sa")
    E = np.asarray(tr.energy)
    assert np.all(np.diff(E) >= -1e-13) and E[-1] > E[0]


@pytest.mark.parametrize("beta", [3.0, 5.0])
def test_fourier_ode_equals_particles(beta):
    """for an empirical measure, the exact d mu_k/dt from the (dense) particle velocities equals
    the spectral right-hand side applied to the particle moments, k in {1,2,3,5,8}, to 1e-13 (USA)."""
    n = 300
    rng = np.random.default_rng(0)
    th = jnp.asarray(rng.uniform(0, 2 * np.pi, n) ** 1.3 % (2 * np.pi))  # non-uniform
    vel = jaxattn.CircleSelfAttention(beta, unnormalised=True).velocity(0.0, th)  # dense O(n^2) field
    Kp = 96  # K - L >= 8 with L = 15 sqrt(beta) + 10
    k = jnp.arange(Kp + 1)
    mu = jnp.mean(jnp.exp(-1j * k[:, None] * th[None, :]), axis=1)
    dmu_particles = jnp.mean(-1j * k[:, None] * vel[None, :] * jnp.exp(-1j * k[:, None] * th[None, :]), axis=1)
    m = C.CircleModel(beta, Kp)
    dmu_pde = C.from_state(m.transport(0.0, C.to_state(mu)))
    ks = [1, 2, 3, 5, 8]
    err = np.abs(np.asarray(dmu_pde - dmu_particles))[ks]
    assert np.max(err) < 1e-13 * max(1.0, float(jnp.max(jnp.abs(vel)))), err


def test_symmetries():
    """rotation and reflection equivariance (1e-12), H_3 invariance on S^1 (1e-14)."""
    beta, phi = 5.0, 0.7
    m = C.CircleModel(beta, K)
    c0 = C.mode_coefficients(K, cos={1: 0.02, 3: 0.03}, sin={2: 0.01, 4: 0.02})
    ts = jnp.array([0.0, 0.08])
    k = jnp.arange(K + 1)
    c = _integrate(m, c0, ts)[-1]
    rot = _integrate(m, c0 * jnp.exp(-1j * k * phi), ts)[-1]
    np.testing.assert_allclose(np.asarray(rot), np.asarray(c * jnp.exp(-1j * k * phi)), atol=1e-12)
    ref = _integrate(m, jnp.conj(c0), ts)[-1]
    np.testing.assert_allclose(np.asarray(ref), np.asarray(jnp.conj(c)), atol=1e-12)
    c3 = _integrate(m, C.mode_coefficients(K, cos={3: 0.05}, sin={6: 0.02}), ts)[-1]
    assert float(jnp.max(jnp.abs(c3[np.arange(K + 1) % 3 != 0]))) < 1e-14
    assert abs(complex(c3[6])) > 0.03


def test_second_order_grenier_term():
    """beta = 5, rho_0 = 1/(2pi) + a cos 3 theta, a = 1e-6, at t* = ln(1e-3/a)/gamma_3:
    cos 6 theta coefficient = a^2 3.710738 (e^{2 gamma_3 t} - e^{gamma_6 t}), cos 3 theta = a e^{gamma_3 t} (1e-4)."""
    beta, a = 5.0, 1e-6
    g = np.asarray(L.growth_rates(beta, 6))
    t = math.log(1e-3 / a) / g[3]
    assert abs(t - 0.371463) < 1e-6
    c = _integrate(C.CircleModel(beta, K), C.mode_coefficients(K, cos={3: a}), jnp.array([0.0, t]))[-1]
    coef = np.real(np.asarray(c)) / np.pi  # cos(k theta) coefficients of rho
    A = a * a * L.grenier_coefficient(beta, 3) * (math.exp(2 * g[3] * t) - math.exp(g[6] * t))
    assert abs(coef[6] / A - 1) < 1e-4
    assert abs(coef[3] / (a * math.exp(g[3] * t)) - 1) < 1e-4
    assert np.max(np.abs(np.asarray(c)[np.arange(K + 1) % 3 != 0])) / np.pi < 1e-16


@pytest.mark.parametrize("beta,kmax", [(2.0, 2), (5.0, 3), (7.0, 4)])
def test_dominant_mode_selection(beta, kmax):
    """mu_k(0) = 1e-12 e^{i phi_k}, 1 <= k <= 24: at amplitude 1e-2 the largest mode is k_max,
    and at amplitude ~1e-6 the ratios |mu_k|/|mu_kmax| = e^{-(gamma_max-gamma_k) t} (1e-3) for gamma_k >= gamma_max/2."""
    Kd = 48
    rng = np.random.default_rng(1)
    c0 = np.zeros(Kd + 1, complex)
    c0[0] = 1
    c0[1:25] = 1e-12 * np.exp(1j * rng.uniform(0, 2 * np.pi, 24))
    g = np.asarray(L.growth_rates(beta, Kd))
    assert L.dominant_mode(beta) == kmax
    t6 = math.log(1e6) / g[kmax]
    t2 = math.log(1.2e10) / g[kmax]
    ts = jnp.concatenate([jnp.array([0.0, t6]), jnp.linspace(0.9 * t2, t2, 40)])
    c = np.asarray(_integrate(C.CircleModel(beta, Kd), jnp.asarray(c0), ts, atol=1e-17))
    amp = np.abs(c[:, 1:25])
    i = int(np.argmax(amp.max(axis=1) >= 1e-2))
    assert amp[i].max() >= 1e-2 and int(np.argmax(amp[i])) + 1 == kmax
    ratios = amp[1] / amp[1, kmax - 1]
    ks = np.arange(1, 25)
    sel = g[ks] >= g[kmax] / 2
    np.testing.assert_allclose(ratios[sel], np.exp(-(g[kmax] - g[ks[sel]]) * t6), rtol=1e-3)


def test_resolution_is_monitored():
    """Resolution honesty: beta = 5, rho_0 = 1/(2pi) + 0.01 cos 3 theta clusters and a K = 48 solver loses
    resolution before t = 0.3. "stop" warns with the time and returns only resolved states, "raise" raises,
    "warn" keeps everything but flags it."""
    c0 = C.mode_coefficients(48, cos={3: 0.01})
    with pytest.warns(RuntimeWarning, match="lost resolution at t ~ 0.1"):
        tr = C.solve_circle(c0, 5.0, 0.3, n_save=31)
    assert 0.1 < tr.t_lost < 0.16 and float(tr.ts[-1]) <= tr.t_lost
    assert np.all(np.asarray(tr.tail) <= 1e-8) and np.all(np.asarray(tr.min_density) >= -1e-8 / (2 * np.pi))
    assert np.all(np.isfinite(np.asarray(tr.coeffs))) and bool(jnp.all(tr.resolved))
    with pytest.raises(RuntimeError, match="lost resolution"):
        C.solve_circle(c0, 5.0, 0.3, n_save=31, on_unresolved="raise")
    with pytest.warns(RuntimeWarning):
        tw = C.solve_circle(c0, 5.0, 0.3, n_save=31, on_unresolved="warn")
    assert tw.ts.shape == (31,) and not bool(tw.resolved[-1]) and bool(tw.resolved[0])


@pytest.mark.slow
def test_more_modes_resolve_longer():
    """The monitor measures resolution, not time: K = 96 follows the clustering longer than K = 48."""
    t = []
    for Kr in (48, 96):
        with pytest.warns(RuntimeWarning):
            t.append(C.solve_circle(C.mode_coefficients(Kr, cos={3: 0.01}), 5.0, 0.3, n_save=31).t_lost)
    assert 0.1 < t[0] < t[1] < 0.2


def test_viscosity_imex_and_filter_change_rates_as_documented():
    """Optional regularisations: viscosity nu rho'' (KenCarp4 IMEX) gives rates gamma_k - nu k^2;
    the exponential filter multiplies the transport term by sigma_k = exp(-a (k/K)^p)."""
    beta, nu = 5.0, 0.3
    g = np.asarray(L.growth_rates(beta, K))
    m = C.CircleModel(beta, K, nu=nu)
    y0 = C.to_state(C.mode_coefficients(K))
    for k in [2, 5, 20]:
        _, dy = jax.jvp(lambda y: m(0.0, y), (y0,), (C.to_state(_unit(k)),))
        assert abs(float(C.from_state(dy)[k].real) - (g[k] - nu * k * k)) < 1e-11 * (1 + abs(g[k]))
    c0 = C.mode_coefficients(K, cos={3: 1e-4, 20: 1e-4})
    # amplitudes whose cubic self-interaction is < 1e-5 relative over the run
    sol = C.integrate_circle(m, c0, jnp.array([0.0, 0.1]), rtol=1e-10, atol=1e-13, max_steps=4000)
    c = C.from_state(sol.ys)[-1]
    for k in (3, 20):
        assert abs(float(jnp.abs(c[k] / c0[k])) / math.exp((g[k] - nu * k * k) * 0.1) - 1) < 1e-4
    mf = C.CircleModel(beta, K, spectral_filter=(36.0, 8))
    sig = np.exp(-36.0 * (np.arange(K + 1) / K) ** 8)
    for k in [3, 28]:
        _, dy = jax.jvp(lambda y: mf(0.0, y), (y0,), (C.to_state(_unit(k)),))
        assert abs(float(C.from_state(dy)[k].real) - g[k] * sig[k]) < 1e-12 * (1 + g[k])


def test_gradient_through_solver_matches_finite_differences():
    """d/dbeta |mu_3(T)|^2, T = 0.2, beta = 5, via diffrax's recursive-checkpoint adjoint."""
    c0 = C.mode_coefficients(K, cos={3: 1e-4, 2: 1e-4})
    ts = jnp.array([0.0, 0.2])

    @jax.jit
    def f(beta):
        sol = C.integrate_circle(C.CircleModel(beta, K), c0, ts, rtol=1e-12, atol=1e-14)
        return jnp.abs(C.from_state(sol.ys)[-1, 3]) ** 2

    g = float(jax.grad(f)(5.0))
    h = 1e-5
    fd = (float(f(5.0 + h)) - float(f(5.0 - h))) / (2 * h)
    assert abs(g / fd - 1) < 1e-5


def test_input_validation():
    good = C.mode_coefficients(K, cos={3: 0.01})
    for bad in (0.0, -2.0, float("nan")):
        with pytest.raises(ValueError, match="beta"):
            C.solve_circle(good, bad, 0.1)
    with pytest.raises(ValueError, match="mu_0"):
        C.solve_circle(good.at[0].set(1.1), 5.0, 0.1)
    with pytest.raises(ValueError, match="NaN"):
        C.solve_circle(good.at[3].set(np.nan), 5.0, 0.1)
    with pytest.raises(ValueError, match="1-D"):
        C.solve_circle(jnp.ones((2, K + 1)), 5.0, 0.1)
    with pytest.raises(ValueError, match="t1"):
        C.solve_circle(good, 5.0, -1.0)
    with pytest.raises(ValueError, match="on_unresolved"):
        C.solve_circle(good, 5.0, 0.1, on_unresolved="ignore")
    theta = np.linspace(0, 2 * np.pi, 256, endpoint=False)
    with pytest.raises(ValueError, match="non-negative"):
        C.coefficients_from_density((1 + 2 * np.cos(theta)) / (2 * np.pi), 16)
    with pytest.raises(ValueError, match="mass"):
        C.coefficients_from_density(np.ones(256), 16)
    c = C.coefficients_from_density(lambda t: (1 + 0.5 * jnp.cos(3 * t)) / (2 * np.pi), 16)
    np.testing.assert_allclose(np.asarray(c), np.asarray(C.mode_coefficients(16, cos={3: 0.5 / (2 * np.pi)})), atol=1e-15)
    with pytest.raises(ValueError, match="nu"):
        C.CircleModel(5.0, K, nu=-1.0)
