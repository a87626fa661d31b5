"""Paper 002 (Geshkovski, Letrouit, Polyanskiy, Rigollet 2023) reproductions against theorem
predictions, closed forms and reference values (Thm 4.6 tables, Thm 4.5, Prop 6.1, §7.1, Fig 3,
Thms 5.1-5.2, the authors' scheme). Checks covered elsewhere are not repeated."""

import math

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxattn
from jaxattn.analysis import gamma_crossing_time, gamma_rhs, gamma_trajectory, interaction_energy, tau_star
from jaxattn.studies import paper_002 as p2
from jaxattn.studies.euler import euler_renormalise

# --------------------------------------------------------------------------- T12 gamma ODE


def test_crossing_times_and_gamma_table():  # T12
    # reference table, n = 32, delta = 1e-2, SA (Radau rtol 1e-10): 1e-3 relative
    for beta, t_star in ((0.1, 4.0364), (1.0, 4.1145), (5.0, 8.3879), (7.0, 31.076), (9.0, 177.57)):
        assert float(gamma_crossing_time(beta, 32, 1e-2)) == pytest.approx(t_star, rel=1e-3)
    for beta, t_star in ((1.0, 2.4702), (9.0, 0.68584)):  # USA row
        assert float(gamma_crossing_time(beta, 32, 1e-2, model="USA")) == pytest.approx(t_star, rel=1e-3)
    assert float(gamma_crossing_time(5.0, 128, 1e-3)) == pytest.approx(7.6342, rel=1e-3)
    # gamma_beta(t), n = 32, SA: reference table to 1e-5
    ts = [0.5, 1.0, 2.0, 5.0, 10.0]
    np.testing.assert_allclose(gamma_trajectory(4.0, 32, ts),
                               [0.0142509, 0.0354414, 0.118066, 0.952775, 0.999998], atol=1e-5)
    np.testing.assert_allclose(gamma_trajectory(9.0, 32, [1.0, 10.0, 30.0]),
                               [0.000247062, 0.00258196, 0.00859708], atol=1e-7)
    # the time-stepped curve and the quadrature agree: gamma(t*) = 1 - delta
    t5 = gamma_crossing_time(5.0, 32, 1e-2)
    assert float(gamma_trajectory(5.0, 32, [t5])[0]) == pytest.approx(0.99, abs=1e-8)
    with pytest.raises(ValueError):
        gamma_crossing_time(1.0, 32, 1.5)
    with pytest.raises(ValueError):
        gamma_rhs(0.1, 1.0, 32, model="XSA")


@pytest.mark.slow
def test_usa_gamma_curve_stiff_solver():  # T12, USA (4.9) with its 2/n factor (implicit solver)
    kv = dict(rtol=1e-10, atol=1e-12, solver=diffrax.Kvaerno5())
    np.testing.assert_allclose(gamma_trajectory(4.0, 32, [0.5, 1.0], "USA", **kv), [0.0590874, 0.43736], atol=1e-5)
    np.testing.assert_allclose(gamma_trajectory(1.0, 8, [1.0, 2.0], "USA", **kv), [0.60058507, 0.99540929], atol=1e-7)


# --------------------------------------------------------------------------- T19 authors' scheme


def test_authors_euler_scheme_is_late_by_the_predicted_factor():  # T19 / P3b
    for beta in (5.0, 7.0):
        ds = p2.euler_bias(beta, 32, h=0.1)
        # predicted stretch 1 + h e^beta/(e^beta + n - 1): 1.083 (beta 5), 1.097 (beta 7)
        assert float(ds.ratio) == pytest.approx(float(ds.predicted_ratio), abs=0.01)
        assert float(ds.ratio) > 1.07
    # the bias is O(h): halving h roughly halves it
    half = p2.euler_bias(5.0, 32, h=0.05)
    assert 0.4 < (float(half.ratio) - 1) / (float(p2.euler_bias(5.0, 32).ratio) - 1) < 0.6
    # (the projected adaptive solve follows gamma exactly: tests/test_simulate.py, T11)


@pytest.mark.slow
def test_adaptive_solve_has_no_euler_bias():  # T19: the library's projected solve on the same start
    t_exact = float(gamma_crossing_time(5.0, 32, 1e-2))
    traj = jaxattn.simulate(jaxattn.SelfAttention(5.0), jnp.eye(32), 9.0, ts=jnp.array([t_exact]),
                            rtol=1e-8, atol=1e-8)
    assert float(traj.xs[0, 0] @ traj.xs[0, 1]) == pytest.approx(0.99, abs=1e-5)


@pytest.mark.slow
def test_authors_scheme_underestimates_clustering_near_the_boundary():  # T19, anchors report
    """Same draws (d = 2, n = 32, 256 runs, beta ~ 2, threshold 0.999 as the authors' code):
    anchors measured 0.797 (Euler h = 0.1) vs 0.820 (adaptive) at t = 30."""
    from jaxattn.analysis import clustered_pair_fraction

    x0 = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(0), 32, 2, batch=256)
    beta = 2.08
    euler = euler_renormalise(beta, np.asarray(x0), 0.1, 300)[-1]
    exact = jaxattn.simulate(jaxattn.SelfAttention(beta), x0, 30.0, ts=2, rtol=1e-8, atol=1e-8).final
    p_euler = float(clustered_pair_fraction(euler, 1e-3).mean())
    p_exact = float(clustered_pair_fraction(exact, 1e-3).mean())
    assert p_euler < p_exact - 0.005  # the O(h) lag shows where the diagram is not saturated
    assert 0.7 < p_exact < 0.9


# --------------------------------------------------------------------------- T25 strict saddle


def test_circle_hessian_pentagon_octagon_and_tau():  # T25
    pent = 2 * np.pi * np.arange(5) / 5
    expected = {0.5: [1.5102, 2.6013], 2.0: [4.922, 10.4797], 10.0: [265.378, 694.758]}
    for beta, (a, b) in expected.items():
        hess = p2.circle_hessian(pent, beta)
        np.testing.assert_allclose(hess, p2.circle_hessian_analytic(pent, beta), atol=1e-12 * max(1, np.exp(beta)))
        eig = np.sort(np.linalg.eigvalsh(25 * hess))
        assert abs(eig[0]) < 1e-9 * np.exp(beta)  # rotation zero mode
        np.testing.assert_allclose(eig[1:], [a, a, b, b], rtol=2e-4)
        assert eig[-1] > 0  # not a local maximum of E: a strict saddle in Prop 6.1's sense
    octagon = 2 * np.pi * np.arange(8) / 8
    eig = np.sort(np.linalg.eigvalsh(64 * p2.circle_hessian(octagon, 2.0)))
    np.testing.assert_allclose(eig[1:], [6.3934, 6.3934, 6.4791, 8.627, 8.627, 11.2395, 11.2395], rtol=2e-4)
    for beta in (0.3, 2.0, 40.0):
        tau = float(tau_star(beta))
        assert beta * math.sin(tau) ** 2 == pytest.approx(math.cos(tau), rel=1e-12)
    assert [round(p2.beta_one(n), 4) for n in (4, 5)] == [0.6667, 1.4142]
    assert p2.beta_one(8) == pytest.approx(4.786, abs=1e-3)
    assert p2.beta_one(32) == pytest.approx(97.20, abs=1e-2)
    # above beta_1 the "all points in a half circle" criterion holds: (n - 1) tau < pi
    assert (32 - 1) * tau_star(97.3) < math.pi < (32 - 1) * tau_star(97.1)


# --------------------------------------------------------------------------- T16 Wendel


def test_wendel_formula_and_lp_monte_carlo():  # T16
    for (n, d), p in {(4, 2): 0.5, (4, 3): 0.875, (5, 3): 0.6875, (8, 3): 0.2265625, (32, 16): 0.5,
                      (11, 10): 0.9990234375, (8, 8): 1.0}.items():
        assert p2.wendel_probability(n, d) == pytest.approx(p, rel=1e-12)
    assert p2.wendel_probability(32, 17) == pytest.approx(0.63995, abs=1e-5)
    # the LP test on known configurations
    assert p2.in_open_hemisphere(np.array([[1.0, 0.1], [0.9, -0.3], [0.2, 1.0]]))
    assert not p2.in_open_hemisphere(p2.sharp_configuration("simplex", d=3))  # 0 in the hull
    for (n, d), seed in (((4, 3), 1), ((8, 3), 2), ((32, 17), 3)):
        ds = p2.wendel_monte_carlo(n, d, draws=600, seed=seed)
        assert abs(float(ds.estimate - ds.exact)) <= 3.5 * float(ds.stderr)


# --------------------------------------------------------------------------- T26-T27 repulsion


def test_repulsive_dynamics_reach_sharp_configurations():  # T26-T27
    beta = 1.0
    tetra = p2.repulsive_configuration(4, 3, beta=beta, t1=200.0, seeds=(0, 1))
    gram = tetra.gram.isel(t=-1).values
    off = gram[:, ~np.eye(4, dtype=bool)]
    np.testing.assert_allclose(off, -1 / 3, atol=1e-6)
    e_sharp = float(interaction_energy(p2.sharp_configuration("simplex", d=3), beta))
    np.testing.assert_allclose(tetra.energy.isel(t=-1), e_sharp, rtol=1e-9)
    assert np.all(np.diff(tetra.energy.values, axis=1) <= 1e-12)  # E decreases (V = -I)

    # the sharp energies are below random configurations' (Cohn-Kumar, erratum of Thm 7.2)
    assert e_sharp < tetra.energy.isel(t=0).min()


@pytest.mark.slow
def test_repulsive_octagon_icosahedron_octahedron_and_d4():  # T26-T27 (T = 2e4 for the icosahedron)
    beta = 1.0
    octagon = p2.repulsive_configuration(8, 2, beta=beta, t1=2000.0, seeds=(0,))
    g = octagon.gram.isel(t=-1, seed=0).values
    distinct = np.unique(np.round(g[~np.eye(8, dtype=bool)], 4))
    np.testing.assert_allclose(distinct, [-1, -1 / math.sqrt(2), 0, 1 / math.sqrt(2)], atol=1e-4)
    assert float(octagon.energy.isel(t=-1, seed=0)) == pytest.approx(
        float(interaction_energy(p2.sharp_configuration("polygon", n=8), beta)), rel=1e-8)
    ico = p2.repulsive_configuration(12, 3, beta=1.0, t1=2e4, seeds=(0,))
    assert float(ico.energy.isel(t=-1, seed=0)) == pytest.approx(0.587622476879868, rel=1e-8)
    g = np.abs(ico.gram.isel(t=-1, seed=0).values[~np.eye(12, dtype=bool)])
    np.testing.assert_allclose(np.unique(np.round(g, 6)), [1 / math.sqrt(5), 1.0], atol=1e-6)
    octa = p2.repulsive_configuration(6, 3, beta=1.0, t1=2000.0, seeds=(0, 1))
    np.testing.assert_allclose(octa.energy.isel(t=-1),
                               float(interaction_energy(p2.sharp_configuration("cross", d=3), 1.0)), rtol=1e-8)
    simplex4 = p2.repulsive_configuration(5, 4, beta=1.0, t1=2000.0, seeds=(0,))
    off = simplex4.gram.isel(t=-1, seed=0).values[~np.eye(5, dtype=bool)]
    np.testing.assert_allclose(off, -0.25, atol=1e-6)


# --------------------------------------------------------------------------- T21-T22 circle


def test_circle_metastability_short():  # T21 (reduced: 64 runs, t <= 30)
    ds = p2.circle_metastability([4.0], [10.0, 30.0], batch=64, seed=0)
    counts = np.bincount(ds.clusters.sel(beta=4.0, t=30.0).values.astype(int), minlength=5)
    assert counts.argmax() == 2 and counts[2] >= 0.7 * 64  # reference run: 174/200 = 0.87
    # pair fraction in the metastable band, near the 2-equal-clusters value 0.484 (T22: 0.53 +- 0.05)
    assert 0.45 <= float(ds.pair_fraction.sel(t=30.0).mean()) <= 0.6
    assert float(ds.clusters.sel(t=30.0).mean()) <= float(ds.clusters.sel(t=10.0).mean())


@pytest.mark.slow
def test_circle_metastability_full():  # T21-T22 (200 runs, t up to 3000)
    ds = p2.circle_metastability([1.0, 4.0, 9.0], [30.0, 100.0, 300.0, 1000.0, 3000.0], batch=200, seed=0)
    c = ds.clusters
    assert float((c.sel(beta=1.0, t=30.0) == 1).mean()) >= 0.99
    b4 = np.bincount(c.sel(beta=4.0, t=30.0).values.astype(int), minlength=6)
    b9 = np.bincount(c.sel(beta=9.0, t=30.0).values.astype(int), minlength=6)
    assert b4.argmax() == 2 and b4[2] >= 0.7 * 200
    assert b9.argmax() == 3 and b9[3] >= 0.55 * 200
    for beta, expected in ((4.0, [2.08, 1.91, 1.72, 1.38, 1.07]), (9.0, [3.17, 2.92, 2.69, 2.44, 2.26])):
        mean = c.sel(beta=beta).mean("member").values
        assert np.all(np.diff(mean) <= 1e-12)
        np.testing.assert_allclose(mean, expected, atol=0.25)
    t22 = p2.circle_metastability([2.0, 4.0, 9.0], [30.0], batch=400, seed=1).pair_fraction.mean("member")
    np.testing.assert_allclose(t22.sel(t=30.0).values, [0.855, 0.53, 0.35], atol=0.05)


# --------------------------------------------------------------------------- T23-T24 beta = 0, small beta


def test_beta_zero_antipodal_equilibrium_is_stationary():  # T23
    x = p2.antipodal_configuration(10, 3)
    field = jaxattn.SelfAttention(1e-12)  # (5.1) up to O(beta); SA needs beta > 0
    assert float(jnp.max(jnp.abs(field.velocity(0.0, jnp.asarray(x))))) < 1e-14
    theta = jnp.where(jnp.arange(10) == 9, jnp.pi, 0.0)  # the same on the circle, exact Kuramoto
    assert float(jnp.max(jnp.abs(jaxattn.Kuramoto().velocity(0.0, theta)))) < 1e-14


@pytest.mark.slow
def test_beta_zero_perturbed_antipodal_reaches_consensus():  # T23
    x = p2.antipodal_configuration(10, 3)
    field = jaxattn.SelfAttention(1e-12)
    # a 1e-6 perturbation leaves it and ends in consensus; E_0 = -(n/2)|mean|^2 decreases
    xp = jaxattn.initial.perturb(jax.random.PRNGKey(1), jnp.asarray(x), 1e-6)
    traj = jaxattn.simulate(field, xp, 200.0, ts=jnp.linspace(0, 200, 41), rtol=1e-10, atol=1e-10)
    assert float(jaxattn.analysis.min_inner_product(traj.final)) > 1 - 1e-9
    mean_norm = np.linalg.norm(np.asarray(traj.xs).mean(1), axis=-1)
    assert np.all(np.diff(mean_norm) >= -1e-12)


@pytest.mark.slow
def test_small_beta_consensus():  # T23-T24
    ds = p2.small_beta_consensus([0.0, 0.1, 0.5], n=32, d=2, batch=200, t1=200.0)
    assert np.all(ds.fraction.values >= 0.99)
    ds3 = p2.small_beta_consensus([0.0], n=10, d=3, batch=100, t1=200.0)
    assert ds3.fraction.item() == 1.0


# --------------------------------------------------------------------------- T17 phase diagram


def test_phase_diagram_small_sweep(tmp_path):  # T17 (reduced: 24 realisations)
    ds = p2.phase_diagram([1.0, 5.0], [3.0, 5.0, 12.0], directory=tmp_path, n=32, d=128, batch=24,
                          progress=False)
    p = ds.probability.squeeze()
    assert p.dims == ("beta", "t")
    assert float(p.sel(beta=1.0, t=3.0)) == 0.0  # t <= 0.7 t*: P <= 0.1 (here exactly 0)
    assert float(p.sel(beta=1.0, t=5.0)) >= 0.9  # t >= 1.1 t* = 4.5
    assert float(p.sel(beta=5.0, t=5.0)) <= 0.1  # 5 <= 0.7 t*(5) = 5.9
    assert float(p.sel(beta=5.0, t=12.0)) >= 0.9
    np.testing.assert_allclose(ds.t_star, [4.1145, 8.3879], rtol=1e-4)
    assert ds.attrs["delta"] == 0.01 and ds.attrs["n"] == 32


@pytest.mark.slow
def test_phase_diagram_reference_values(tmp_path):  # T17 (128 realisations, d = 128)
    ts = [4.0, 5.0, 8.0, 15.0, 26.0, 30.0]
    ds = p2.phase_diagram([1.0, 5.0, 6.0, 7.0, 9.0], ts, directory=tmp_path, n=32, d=128, batch=128,
                          progress=False)
    p = ds.probability.squeeze()
    assert float(p.sel(beta=1.0, t=5.0)) >= 0.98
    assert float(p.sel(beta=5.0, t=8.0)) == pytest.approx(0.45, abs=0.15)
    assert float(p.sel(beta=6.0, t=15.0)) == pytest.approx(0.958, abs=0.15)
    assert float(p.sel(beta=7.0, t=26.0)) == pytest.approx(0.635, abs=0.15)
    assert float(p.sel(beta=7.0, t=30.0)) == pytest.approx(0.955, abs=0.15)
    assert float(p.sel(beta=9.0).max()) <= 0.02  # beta = 9 stays 0 through t = 30
    for beta in (1.0, 5.0, 6.0, 7.0):  # P = 0.5 crossing within [0.75, 1.05] t*
        row = p.sel(beta=beta)
        t_star = float(ds.t_star.sel(beta=beta))
        early = [t for t in ts if t <= 0.7 * t_star]
        late = [t for t in ts if t >= 1.1 * t_star]
        assert all(float(row.sel(t=t)) <= 0.1 for t in early)
        assert all(float(row.sel(t=t)) >= 0.9 for t in late)


@pytest.mark.slow
def test_random_matrix_phase_diagrams_transition(tmp_path):  # T20 (qualitative)
    for kq, value in (("ginibre", "qk"), ("goe", "wishart")):
        ds = p2.phase_diagram([1.0], [0.0, 0.5, 30.0], directory=tmp_path / f"{kq}-{value}", n=32, d=128, kq=kq,
                              value=value, batch=16, seeds=2, progress=False)
        p = ds.probability.squeeze()
        # a 0 -> 1 transition in t: P <= 0.1 at t = 0.5, as specified, where V = Q^T K / sqrt(d) has ||V|| ~ 2
        assert float(p.sel(t=30.0)) >= 0.5
        if value == "qk":
            assert float(p.sel(t=0.5)) <= 0.1
        else:
            # with the authors' scaling Wishart V = G G^T / sqrt(d) has ||V|| = (1 + 1)^2 sqrt(d) = 4 sqrt(d) ~ 45
            # (Marchenko-Pastur edge), 20x the other panels' rate, so this panel has clustered by t = 0.5 and
            # only t = 0 is before the transition; the scale is checked on the drawn matrix itself
            V = p2.random_matrices(jax.random.PRNGKey(0), 128, kq=kq, value=value)[2]
            assert float(jnp.linalg.norm(V, 2)) > 3 * math.sqrt(128)
            assert float(p.sel(t=0.0)) == 0.0
        assert np.all(np.diff(p.values) >= -0.02)
    with pytest.raises(ValueError):
        p2.random_matrices(jax.random.PRNGKey(0), 4, kq="wigner")


def test_random_matrix_ensembles_structure():
    key = jax.random.PRNGKey(0)
    d = 64
    Q, K, V = p2.random_matrices(key, d, "ginibre", "qk")
    B = np.asarray(Q.T @ K)
    np.testing.assert_allclose(np.asarray(V), B / math.sqrt(d), rtol=0, atol=1e-12)  # V = Q^T K / normV
    assert 0.6 < np.var(B) < 1.5  # entries of variance ~1 (authors' scaling)
    _, K, V = p2.random_matrices(key, d, "goe", "wishart")
    np.testing.assert_allclose(np.asarray(K), np.asarray(K).T)  # GOE is symmetric
    assert np.linalg.eigvalsh(np.asarray(V)).min() > -1e-10  # Wishart is PSD
