"""Zonal S^{d-1} and full S^2 solvers (paper 002 T29-T30).

Convention in every test: rho is a density w.r.t. the normalised surface measure (uniform = 1); W(q) =
beta^{-1} e^{beta q}, W_l its Funk-Hecke coefficients on the probability measure; time = particle time of
(USA) dx_i/dt = P_{x_i}((1/N) sum_j e^{beta <x_i,x_j>} x_j); P_k Gegenbauer with P_k(1) = 1.
s2fft coefficients: rho_lm = int rho conj(Y_lm) d sigma (unnormalised), rho_00 = sqrt(4 pi).
"""

import math

import numpy as np
import pytest
import scipy.special as sp

import jaxattn  # noqa: F401  (float64)
import equinox as eqx
import jax
import jax.numpy as jnp

from jaxattn.spectral import linear as L, sphere as S, zonal as Z
from jaxattn.spectral.bridge import harmonic_power


@eqx.filter_jit
def _jvp(m, y0, e):
    return jax.jvp(lambda y: m(0.0, y), (y0,), (e,))[1]


@eqx.filter_jit
def _rhs(m, y):
    return m(0.0, y)


LB = 8  # one band limit for every S^2 test: s2fft compiles per (L, model)


def _jvp_rates(m, y0, basis):
    return [_jvp(m, y0, e) for e in basis]


@pytest.mark.parametrize("d,expected", [
    (3, [4.74954, 9.25959, 9.97809, 7.58310]),
    (4, [4.20135, 6.61194, 6.12988, 4.14331]),
])
def test_zonal_linear_rates_tables(d, expected):
    """zonal P_k growth rates at beta = 5 (S^2 and S^3) to 1e-6 (table has 5-6 digits)."""
    N = 24
    m = Z.ZonalModel(5.0, N, d)
    y0 = Z.zonal_mode(N, d, {})
    assert float(jnp.max(jnp.abs(_rhs(m, y0)))) < 1e-13  # uniform is an equilibrium
    for k, (dy) in enumerate(_jvp_rates(m, y0, [jnp.zeros(N + 1).at[k].set(1.0) for k in range(1, 5)]), start=1):
        assert abs(float(dy[k]) - expected[k - 1]) < 6e-6
        assert float(jnp.max(jnp.abs(dy.at[k].set(0.0)))) < 1e-12  # diagonal
    # and the exact closed form, also for SA and V = -I, in other dimensions
    for dd, model, sign in [(5, "usa", 1), (3, "sa", 1), (8, "usa", -1)]:
        mm = Z.ZonalModel(3.0, 12, dd, model=model, sign=sign)
        g = np.asarray(L.growth_rates(3.0, 12, d=dd, model=model, sign=sign))
        dys = _jvp_rates(mm, Z.zonal_mode(12, dd, {}), [jnp.zeros(13).at[k].set(1.0) for k in (1, 2, 6)])
        for k, dy in zip((1, 2, 6), dys):
            assert abs(float(dy[k]) / g[k] - 1) < 1e-11


def test_zonal_d2_equals_circle_cosine_dynamics():
    """On S^1 a zonal density is an even function of theta; the zonal solver (Chebyshev basis, density w.r.t.
    d theta/(2pi)) must reproduce the circle solver (density w.r.t. d theta) on cos modes: r_n = Re(mu_n)."""
    from jaxattn.spectral import circle as C

    N = 32  # same circle shapes as test_exit_time_fourier_deterministic: one compile
    r0 = Z.zonal_mode(N, 2, {3: 0.2, 1: 0.1})  # rho = 1 + 0.2 cos 3 theta + 0.1 cos theta
    ts = np.linspace(0.0, 0.05, 601)
    zt = Z.solve_zonal(r0, 4.0, 2, ts=ts)
    c0 = C.mode_coefficients(N, cos={3: 0.2 / (2 * np.pi), 1: 0.1 / (2 * np.pi)})
    ct = C.solve_circle(c0, 4.0, ts=ts)
    np.testing.assert_allclose(np.asarray(zt.coeffs), np.real(np.asarray(ct.coeffs)), atol=1e-11)


def test_H3_invariance_claim_is_false_on_S2():
    """(Documented deviation from paper 004 §4.4/App. D): from rho = 1 + eps P_3 on S^2 the
    degree-2 moment is created at rate d/dt int P_2 rho = (eps^2 W_3/2)(8/35) != 0; both solvers agree.
    H_2 (antipodally even measures) is invariant: odd degrees stay 0."""
    eps = 0.05  # the right-hand side at 1 + eps P_3 is exactly quadratic in eps: no higher-order terms
    N = 16
    W3 = float(L.kernel_coefficients(5.0, 3, d=3)[3])
    expected = eps**2 * W3 / 2 * 8 / 35
    m = Z.ZonalModel(5.0, N, 3)
    dr = _rhs(m, Z.zonal_mode(N, 3, {3: eps}))
    assert abs(float(dr[2]) / expected - 1) < 1e-10  # r_2 = int P_2 rho w du
    assert abs(float(dr[4])) > 1e-3 * expected  # degree 4 too
    Lb = LB
    ms = S.SphereModel(5.0, Lb)
    d = ms.unpack(_rhs(ms, ms.pack(S.sphere_zonal_mode(Lb, {3: eps}))))
    moment_rate = float(jnp.real(d[2, Lb - 1])) * math.sqrt(4 * math.pi / 5) / (4 * math.pi)
    assert abs(moment_rate / expected - 1) < 1e-9
    # H_2: an even density stays even
    tr = Z.solve_zonal(Z.zonal_mode(32, 3, {2: 0.3, 4: 0.1}), 5.0, 3, 0.1, n_save=21)  # shapes shared with the mass test
    assert float(jnp.max(jnp.abs(tr.coeffs[:, 1::2]))) < 1e-15


def test_zonal_mass_energy_and_resolution():
    """002-T30 in the zonal reduction: mass constant, energy non-decreasing; E(uniform) = sinh(beta)/(2 beta^2)
    on S^2; clustering onto a ring/pole loses resolution and the solver says when."""
    beta = 5.0
    m = Z.ZonalModel(beta, 8, 3)
    assert abs(float(m.energy(Z.zonal_mode(8, 3, {}))) - math.sinh(beta) / (2 * beta**2)) < 1e-12
    with pytest.warns(RuntimeWarning, match="lost resolution"):
        tr = Z.solve_zonal(Z.zonal_mode(32, 3, {3: 0.05, 1: 0.02}), beta, 3, 1.0, n_save=21)
    assert 0.1 < tr.t_lost < 1.0
    assert float(jnp.max(jnp.abs(tr.coeffs[:, 0] - 1))) < 1e-13
    E = np.asarray(tr.energy)
    assert np.all(np.diff(E) >= -1e-12) and E[-1] > E[0]
    assert np.all(np.asarray(tr.min_density) >= -1e-8)


def test_sphere_linear_operator_all_m():
    """002-T29: every degree-l harmonic (any m) is an eigenfunction of the linearised S^2 PDE
    with rate l(l+1) i_l(beta)/beta (scipy's spherical_in as oracle); SA: divided by i_0(beta)."""
    Lb = LB
    for model, beta in [("usa", 5.0), ("sa", 4.0)]:
        m = S.SphereModel(beta, Lb, model=model)
        y0 = m.pack(S.sphere_zonal_mode(Lb, {}))
        assert float(jnp.max(jnp.abs(_rhs(m, y0)))) < 1e-11
        for l, mm in [(1, 0), (2, 1), (3, -2), (4, 4), (7, 3)]:
            e = np.zeros((Lb, 2 * Lb - 1), complex)
            e[l, Lb - 1 + mm] = 1.0
            e[l, Lb - 1 - mm] = (-1) ** mm  # real field
            ref = l * (l + 1) * sp.spherical_in(l, beta) / beta
            if model == "sa":
                ref /= sp.spherical_in(0, beta)
            dy = _jvp(m, y0, m.pack(jnp.asarray(e)))
            err = np.abs(np.asarray(m.unpack(dy)) - ref * e).max()
            assert err < 1e-11 * max(ref, 1), (model, l, mm, err)
    # 002-T29 SA values at beta = 4
    np.testing.assert_allclose(np.asarray(L.growth_rates(4.0, 3, d=3, model="sa"))[1:], [0.3753, 0.6555, 0.6133], atol=1e-4)


@pytest.mark.slow
def test_sphere_solver_matches_zonal_and_conserves_mass():
    """The S^2 harmonic solver on zonal data equals the zonal Gegenbauer solver (independent discretisation),
    conserves mass to 1e-13 and increases the energy."""
    Lb, beta = LB, 3.0
    st = S.solve_sphere(S.sphere_zonal_mode(Lb, {2: 0.2, 3: 0.1}), beta, 0.3, n_save=4)
    zt = Z.solve_zonal(Z.zonal_mode(Lb - 1, 3, {2: 0.2, 3: 0.1}), beta, 3, 0.3, n_save=4)
    k = np.arange(Lb)
    r_from_sphere = np.real(np.asarray(st.coeffs[:, :, Lb - 1])) * np.sqrt(4 * np.pi / (2 * k + 1)) / (4 * np.pi)
    np.testing.assert_allclose(r_from_sphere, np.asarray(zt.coeffs), atol=1e-8)
    assert float(jnp.max(jnp.abs(st.coeffs[:, 0, Lb - 1] / math.sqrt(4 * math.pi) - 1))) < 1e-13
    assert np.all(np.diff(np.asarray(st.energy)) > 0)
    # non-zonal modes stay exactly zero (axisymmetry preserved)
    assert float(jnp.max(jnp.abs(st.coeffs[:, :, : Lb - 1]))) < 1e-14


def test_sphere_power_matches_particle_power_definition():
    """bridge.harmonic_power (addition theorem on particles) and SphereModel.power use the same normalisation:
    for n iid uniform points E S_k = 2k+1 / n; for a PDE density rho = 1 + a P_k, S_k = a^2/(2k+1)."""
    n, reps = 400, 20
    x = jax.random.normal(jax.random.PRNGKey(0), (reps, n, 3))
    x = x / jnp.linalg.norm(x, axis=-1, keepdims=True)
    S_emp = np.asarray(harmonic_power(x, 4)).mean(axis=0) * n
    np.testing.assert_allclose(S_emp[1:], [3, 5, 7, 9], rtol=0.25)
    assert abs(S_emp[0] - n) < 1e-9 * n
    Lb = LB
    m = S.SphereModel(2.0, Lb)
    P = np.asarray(m.power(S.sphere_zonal_mode(Lb, {3: 0.4})))
    np.testing.assert_allclose(P[[0, 3]], [1.0, 0.4**2 / 7], rtol=1e-13)


def test_sphere_input_validation():
    with pytest.raises(ValueError, match="shape"):
        S.solve_sphere(jnp.ones((4, 4)), 1.0, 0.1)
    bad = S.sphere_zonal_mode(LB, {1: 2.0})  # 1 + 2 cos theta < 0 near the south pole
    with pytest.raises(ValueError, match="negative"):
        S.solve_sphere(bad, 1.0, 0.1)
    with pytest.raises(ValueError, match="sqrt"):
        S.solve_sphere(2 * S.sphere_zonal_mode(LB, {}), 1.0, 0.1)
    with pytest.raises(ValueError, match="beta"):
        S.SphereModel(-1.0, 6)
    with pytest.raises(ValueError, match="non-negative"):
        Z.zonal_coefficients(lambda u: 1 + 3 * u, 8, 3)
    with pytest.raises(ValueError, match="r_0"):
        Z.solve_zonal(jnp.zeros(9), 1.0, 3, 0.1)
    flm = S.sphere_coefficients(lambda th, ph: 1 + 0.5 * jnp.cos(th) + 0.2 * jnp.sin(th) * jnp.cos(ph), 4)
    assert abs(complex(flm[0, 3]) - math.sqrt(4 * math.pi)) < 1e-12
