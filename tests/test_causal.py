"""Causal self-attention (paper 003, Karagodin, Polyanskiy, Rigollet 2024) against independent oracles (tests A-G).

Heavy reproductions (Fig. 1 panels at T = 5000, Fig. 3 statistics, Lemma 5.1, solver agreement)
are marked slow.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate

import jaxattn
from jaxattn.analysis import renyi
from jaxattn.fields import embed_angles


@eqx.filter_jit
def evaluate(field, x):
    return field(0.0, x)


def h_np(x, beta):
    return np.exp(beta * (np.cos(x) - 1)) * np.sin(x)


# ------------------------------------------------------------------------------------------ A


@pytest.mark.parametrize("beta", [1.0, 64.0, 1000.0])
def test_circle_causal_field_is_h_form_and_cartesian_csa(key, beta):  # A4, (CSA-2d)
    theta = np.asarray(jax.random.uniform(key, (9,), minval=-np.pi, maxval=np.pi))
    # independent oracle: (1/Z_k) sum_{j<k} h(theta_j - theta_k), Z_k = sum_{j<=k} e^{beta(cos - 1)}
    expected = np.empty(9)
    for k in range(9):
        d = theta[: k + 1] - theta[k]
        expected[k] = h_np(d[:k], beta).sum() / np.exp(beta * (np.cos(d) - 1)).sum()
    for evaluator in ("dense", "fourier"):
        f = jaxattn.CircleSelfAttention(beta, causal=True, evaluator=evaluator)
        np.testing.assert_allclose(evaluate(f, jnp.asarray(theta)), expected, rtol=0, atol=1e-13)
    # the Cartesian CSA field on S^1 is dtheta_k/dt (-sin, cos)
    x = embed_angles(jnp.asarray(theta))
    perp = np.stack([-np.sin(theta), np.cos(theta)], axis=1)
    np.testing.assert_allclose(evaluate(jaxattn.SelfAttention(beta, causal=True), x), expected[:, None] * perp,
                               rtol=0, atol=1e-13)


def csa_unshifted_longdouble(x, beta, QtK):
    """(CSA) with the weights e^{beta <Q x_k, K x_j>} computed as they stand (no max shift), in x87 extended
    precision (exponent range +-11356, so e^{1e4} is finite): an oracle independent of the library's shift."""
    x = np.asarray(x, dtype=np.longdouble)
    out = np.empty_like(x)
    for k in range(len(x)):
        w = np.exp(np.longdouble(beta) * (x[: k + 1] @ np.asarray(QtK, dtype=np.longdouble).T @ x[k]))
        y = (w[:, None] * x[: k + 1]).sum(axis=0) / w.sum()
        out[k] = y - (y @ x[k]) * x[k]
    return out.astype(np.float64)


def test_no_overflow_at_large_beta(key):  # A5: the max-shifted field equals the unshifted one, no overflow
    if np.finfo(np.longdouble).maxexp < 16384:
        pytest.skip("needs x87 extended precision for the unshifted e^{beta} oracle")
    k1, k2, k3 = jax.random.split(key, 3)
    spread = jaxattn.initial.uniform_sphere(k1, 12, 3)
    for beta in (1.0, 50.0, 1e3, 1e4):
        # tokens at the interaction scale beta^{-1/2} of a common point, so that many weights are O(1)
        near = jaxattn.initial.project_to_sphere(jnp.array([0.0, 0.0, 1.0]) + beta**-0.5 * jax.random.normal(
            k3, (12, 3)))
        for x in (spread, near):
            got = np.asarray(evaluate(jaxattn.SelfAttention(beta, causal=True), x))
            np.testing.assert_allclose(got, csa_unshifted_longdouble(x, beta, np.eye(3)), rtol=0,
                                       atol=1e-10 * max(1.0, float(np.abs(got).max())))
    assert float(np.abs(got).max()) > 1e-3  # the clustered case is not trivially zero
    Q, K = jax.random.normal(k2, (2, 3, 3))
    got = np.asarray(evaluate(jaxattn.SelfAttention(100.0, Q, K, causal=True), spread))
    np.testing.assert_allclose(got, csa_unshifted_longdouble(spread, 100.0, np.asarray(Q.T @ K)), rtol=0, atol=1e-10)
    assert float(np.abs(got).max()) > 1e-3


def test_first_token_fixed_and_norm_kept_over_T5000(key):  # C11 + A6 (V with negative eigenvalues)
    k1, k2 = jax.random.split(key)
    x0 = jaxattn.initial.uniform_sphere(k1, 12, 3)
    Q, K = jax.random.normal(k2, (2, 3, 3))
    traj = jaxattn.simulate(jaxattn.SelfAttention(9.0, Q, K, causal=True), x0, 5000.0, ts=3, rtol=1e-8,
                            atol=1e-10, max_steps=10**6)
    assert float(jnp.max(jnp.abs(traj.xs[:, 0] - x0[0]))) < 1e-12
    V = jnp.diag(jnp.array([-1.0, -1.0, -3.0]))
    traj = jaxattn.simulate(jaxattn.SelfAttention(9.0, V=V, causal=True), x0, 5000.0, ts=3, rtol=1e-8,
                            atol=1e-10, max_steps=10**6)
    drift = float(jnp.max(jnp.abs(jnp.linalg.norm(traj.xs, axis=-1) - 1)))
    assert drift < 1e-10  # the unit-sphere shortcut projection drifts by 0.07 here
    assert float(jnp.max(jnp.abs(traj.final[:, 2]))) < 0.5  # Fig. 1(d): a cloud around the equator


# ------------------------------------------------------------------------------------------ B


def test_single_token_jordan_block_rate():  # B9, Lemma 3.1 (ii): 1/t convergence
    V = jnp.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    x0 = jaxattn.initial.project_to_sphere(jnp.array([[0.3, 0.8, -0.5]]))
    ts = jnp.array([10.0, 100.0, 1000.0])
    traj = jaxattn.simulate(jaxattn.SelfAttention(2.0, V=V, causal=True), x0, 1000.0, ts=ts, rtol=1e-11,
                            atol=1e-12, max_steps=10**6)
    c = np.asarray(x0[0])
    for t, x in zip(np.asarray(ts), np.asarray(traj.xs[:, 0])):
        y = np.array([c[0] + c[1] * t, c[1], c[2] * np.exp(-t)])  # analytic, no expm overflow
        np.testing.assert_allclose(x, y / np.linalg.norm(y), atol=1e-8)
        dist = np.arccos(min(1.0, abs(x[0])))
        if t >= 100:
            assert abs(t * dist - 1) <= (abs(c[0] / c[1]) + 1) / t


# ------------------------------------------------------------------------------------------ C


def _two_token_time(beta, d0, d):
    integral, _ = scipy.integrate.quad(lambda u: np.exp(beta * (1 - np.cos(u))) / np.sin(u), d, d0,
                                       epsabs=0, epsrel=1e-13, limit=200)
    return math.log(math.tan(d0 / 2) / math.tan(d / 2)) + integral


def test_two_token_quadrature():  # C13
    beta, d0 = 9.0, 1.2
    times = {d: _two_token_time(beta, d0, d) for d in (0.5, 0.1, 0.01)}
    for d, quoted in ((0.5, 46.68891), (0.1, 50.70101), (0.01, 55.33037)):
        assert abs(times[d] - quoted) < 1e-5
    theta0 = jnp.array([0.0, d0])
    ts = jnp.array(sorted(times.values()))
    traj = jaxattn.simulate(jaxattn.CircleSelfAttention(beta, causal=True), theta0, float(ts[-1]), ts=ts,
                            rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(traj.xs[:, 0], 0.0, atol=0)
    np.testing.assert_allclose(traj.xs[:, 1], [0.5, 0.1, 0.01], rtol=1e-8)


@pytest.mark.slow
def test_two_token_beta_gradient():  # C13, gradient through the solver
    beta, d0 = 9.0, 1.2
    theta0 = jnp.array([0.0, d0])
    # d Delta(t)/d beta at fixed t = |dDelta/dt| * int_Delta^Delta0 (1 - cos u) e^{beta(1 - cos u)} / sin u du
    t_half = _two_token_time(beta, d0, 0.5)

    @jax.jit
    def delta_at(b):
        return jaxattn.simulate(jaxattn.CircleSelfAttention(b, causal=True), theta0, t_half, ts=2, rtol=1e-12,
                                atol=1e-12).final[1]

    dF, _ = scipy.integrate.quad(lambda u: (1 - np.cos(u)) * np.exp(beta * (1 - np.cos(u))) / np.sin(u), 0.5, d0,
                                 epsabs=0, epsrel=1e-13)
    speed = math.sin(0.5) / (1 + math.exp(beta * (1 - math.cos(0.5))))
    np.testing.assert_allclose(jax.grad(delta_at)(beta), speed * dF, rtol=1e-5)


def test_unstable_critical_point_eigenvalue(key):  # C14
    k1, k2 = jax.random.split(key)
    Q, K = jax.random.normal(k1, (2, 3, 3))
    xi = jaxattn.initial.uniform_sphere(k2, 1, 3)[0]
    beta, s = 2.0, 4
    field = jaxattn.SelfAttention(beta, Q, K, causal=True)
    x = jnp.stack([xi, xi, xi, -xi])
    J = eqx.filter_jit(lambda f, y: jax.jacfwd(lambda z: f(0.0, z))(y))(field, x)[s - 1, :, s - 1, :]
    P = jnp.eye(3) - jnp.outer(xi, xi)
    a = float(xi @ Q.T @ K @ xi)
    w = (s - 1) * math.exp(-beta * a) / ((s - 1) * math.exp(-beta * a) + math.exp(beta * a))
    np.testing.assert_allclose(P @ J @ P, w * P, atol=1e-12)


# ------------------------------------------------------------------------------------------ E


def test_tau_star_and_lemma_a1():  # E21, E22
    table = renyi.tau_star_table()
    quoted = [0.904557, 0.489044, 0.330172, 0.313535, 0.265645, 0.248680, 0.124837, 0.062480]
    np.testing.assert_allclose(table["tau_star"], quoted, atol=1e-6)
    np.testing.assert_allclose(table["h(tau_star)"][[3, 6]], [0.189420, 0.075668], atol=1e-6)
    assert np.all(table["(beta+1/2)^-1/2"] < table["tau_star"]) and np.all(table["tau_star"] < table["beta^-1/2"])
    for beta in (1.0, 10.0, 64.0, 256.0):
        grid = np.linspace(0, np.pi, 200001)
        tau = float(renyi.tau_star(beta))
        assert abs(grid[np.argmax(h_np(grid, beta))] - tau) < 2e-5
        assert abs(float(renyi.interaction_g(tau, beta))) < 1e-12
        # g is h' (autodiff), h odd, g even
        xs = jnp.linspace(-3, 3, 11)
        np.testing.assert_allclose(jax.vmap(jax.grad(lambda x: renyi.interaction_h(x, beta)))(xs),
                                   renyi.interaction_g(xs, beta), atol=1e-13)
        # Lemma A.1 (4)-(5) on [1e-3, pi], compared in log space where both sides are positive
        x = np.linspace(1e-3, np.pi - 1e-3, 4001)
        h = h_np(x, beta)
        lower = np.exp(-beta * x**2 / 2) * (x - x**3 / 6)
        assert np.all(h < np.exp(-beta * x**2 / 2 + beta * x**4 / 24) * x * (1 + 1e-12))
        pos = lower > 0
        assert np.all(np.log(h[pos]) > np.log(lower[pos]) - 1e-12)
        g = np.asarray(renyi.interaction_g(x, beta))
        assert np.all(g > -np.exp(-beta * x**2 / 2 + beta * x**4 / 24) * beta * x**2 * (1 + 1e-12))
        small = x < (beta + 0.5) ** -0.5
        assert np.all(g[small] > np.exp(-beta * x[small] ** 2 / 2) * (1 - x[small] ** 2 / 2 - beta * x[small] ** 2)
                      - 1e-15)


# ------------------------------------------------------------------------------------------ F


def test_centre_extraction_hand_made():  # F24
    delta = 0.5
    theta = jnp.array([0.0, 0.4, 0.8, 2.0, 2.3, -1.0])
    # token 3 (0.8) is 0.4 from token 2 (not a centre) but 0.8 from token 1 (the only centre so far)
    np.testing.assert_array_equal(renyi.renyi_centres(theta, delta), [True, False, True, True, False, True])
    np.testing.assert_array_equal(renyi.strong_renyi_centres(theta, delta), [True, False, False, True, False, True])
    # sphere input gives the same answer; wrap-around on the circle
    x = embed_angles(theta)
    np.testing.assert_array_equal(renyi.renyi_centres(x, delta, manifold="sphere"),
                                  renyi.renyi_centres(theta, delta))
    np.testing.assert_array_equal(renyi.strong_renyi_centres(jnp.array([3.0, -3.0]), delta), [True, False])
    with pytest.raises(ValueError):
        renyi.renyi_centres(theta, 4.0)


def test_centre_counts_on_the_circle(key):  # F25 (Monte Carlo against Lemma C.1 and c_R 2 pi / delta)
    k1, k2 = jax.random.split(key)
    delta = 0.5
    theta = jaxattn.initial.uniform_circle(k1, 200, batch=4000)
    strong = jax.jit(lambda t: renyi.strong_renyi_centres(t, delta))(theta)
    rnyi = jax.jit(lambda t: renyi.renyi_centres(t, delta))(theta)
    assert bool(jnp.all(rnyi | ~strong)) and bool(jnp.all(strong[:, 0]))  # strong subset of Rényi
    n_strong = np.asarray(jnp.sum(strong, axis=1), float)
    exact = renyi.expected_strong_centres(delta, 2, 200)
    assert abs(exact - math.pi / delta) < 1e-3
    assert abs(n_strong.mean() - exact) < 4 * n_strong.std() / math.sqrt(4000)
    n_renyi = np.asarray(jnp.sum(rnyi, axis=1), float)
    assert abs(n_renyi.mean() - 9.165) < 0.06  # reference value (2000 samples, sd 0.67)
    # long sequences jam at c_R 2 pi / delta = 9.395
    long = jax.jit(lambda t: renyi.renyi_centres(t, delta))(jaxattn.initial.uniform_circle(k2, 5000, batch=300))
    counts = np.asarray(jnp.sum(long, axis=1), float)
    assert abs(counts.mean() - renyi.expected_renyi_centres_circle(delta)) < 4 * counts.std() / math.sqrt(300) + 0.02


def test_strong_centre_count_on_s2_corrects_lemma_c1(key):  # F26, erratum 8.1
    for delta, k in ((0.8, 0), (0.5, 1)):
        x = jaxattn.initial.uniform_sphere(jax.random.fold_in(key, k), 400, 3, batch=1000)
        counts = np.asarray(jnp.sum(jax.jit(lambda y: renyi.strong_renyi_centres(y, delta, manifold="sphere"))(x),
                                    axis=1), float)
        corrected = 1 / math.sin(delta / 2) ** 2
        finite_n = renyi.expected_strong_centres(delta, 3, 400)
        assert abs(renyi.cap_fraction(delta, 3) - math.sin(delta / 2) ** 2) < 1e-14
        assert abs(counts.mean() - finite_n) < 4 * counts.std() / math.sqrt(1000)
        assert abs(finite_n - corrected) < 0.05 * corrected
        assert counts.mean() > 2 * corrected / 3  # the paper's (3 sin^2)^{-1} is 3x too small


def test_consumed_fraction_definitions(key):
    theta = jnp.array([0.0, 0.05, 1.0, 1.04, 1.3, 3.0])
    centres = jnp.array([True, False, True, False, False, False])
    # ball of radius 0.1: tokens 0, 1, 2, 3
    assert float(renyi.consumed_fraction(theta, centres, radius=0.1)) == pytest.approx(4 / 6)
    # gap 0.07 clusters: {0, 0.05}, {1.0, 1.04}, {1.3}, {3.0}
    assert float(renyi.consumed_fraction(theta, centres, definition="cluster", gap=0.07)) == pytest.approx(4 / 6)
    # with a time axis and a batch axis
    xs = jnp.broadcast_to(theta, (2, 3, 6))
    out = renyi.consumed_fraction(xs, jnp.broadcast_to(centres, (2, 6)), beta=100.0)
    assert out.shape == (2, 3)
    # i.i.d. uniform tokens at t = 0: E[fraction within radius r of the strong centres] -> oracle
    th = jaxattn.initial.uniform_circle(key, 200, batch=2000)
    frac = float(jax.jit(lambda t: jnp.mean(renyi.consumed_fraction(t, renyi.strong_renyi_centres(t, 0.5),
                                                                    radius=0.125)))(th))
    assert abs(frac - 0.271) < 0.02  # reference Fig. 3 table, t = 0, definition B


# ------------------------------------------------------------------------------------------ G (slow)


def fig3_shares_numpy(runs, seed, beta=64.0, n=200, t1=10.0, h=0.02):
    """Fig. 3 at time t1 from plain NumPy (no library code): i.i.d. uniform angles, forward Euler with step h on
    (CSA-2d), then the share of tokens within beta^{-1/2} of a Rényi / strong Rényi centre (delta = 4 beta^{-1/2})
    of the initial sequence, per run. 200 runs at h = 0.02 take about 60 CPU-s."""
    rng = np.random.default_rng(seed)
    phi = rng.uniform(-np.pi, np.pi, (runs, n))
    delta = 4 / np.sqrt(beta)
    renyi_c = np.zeros((runs, n), bool)
    strong_c = np.zeros((runs, n), bool)
    for k in range(n):
        close = np.abs(np.angle(np.exp(1j * (phi[:, :k] - phi[:, k:k + 1])))) <= delta
        renyi_c[:, k] = ~np.any(renyi_c[:, :k] & close, axis=1)
        strong_c[:, k] = ~np.any(close, axis=1)
    mask = np.tril(np.ones((n, n), bool))
    for _ in range(int(round(t1 / h))):
        c, s = np.cos(phi), np.sin(phi)
        cos_kj = c[:, :, None] * c[:, None, :] + s[:, :, None] * s[:, None, :]
        sin_jk = s[:, None, :] * c[:, :, None] - c[:, None, :] * s[:, :, None]
        w = np.where(mask, np.exp(beta * (cos_kj - 1)), 0.0)
        phi = phi + h * (w * sin_jk).sum(2) / w.sum(2)
    near = np.abs(np.angle(np.exp(1j * (phi[:, :, None] - phi[:, None, :])))) <= 1 / np.sqrt(beta)
    return (np.any(near & renyi_c[:, None, :], axis=2).mean(axis=1),
            np.any(near & strong_c[:, None, :], axis=2).mean(axis=1))


@pytest.mark.slow
def test_fig3_statistics_and_solver_agreement(key):  # G29, G30, G32
    from jaxattn.studies.paper_003 import causal_statistics, numpy_euler_causal_circle

    ts = (0.0, 10.0, 150.0)
    out = causal_statistics(key, 40, ts=ts, chunk=40, return_angles=True)
    mean = {k: out[k].mean(axis=0) for k in ("renyi_ball", "strong_ball", "clusters")}
    # t = 10: the expected shares come from the independent NumPy scheme above on 200 other runs; the two means
    # must agree within 3.5 standard errors of their difference (false alarm ~ 5e-4 each) plus 0.005 for the Euler
    # bias at h = 0.02 (on one set of 40 runs h = 0.05 moved the Rényi share by 0.006 against h = 0.01)
    ref = fig3_shares_numpy(200, seed=3)
    for lib, indep in zip((out["renyi_ball"][:, 1], out["strong_ball"][:, 1]), ref):
        se = math.sqrt(lib.var(ddof=1) / len(lib) + indep.var(ddof=1) / len(indep))
        assert abs(lib.mean() - indep.mean()) < 3.5 * se + 0.005, (lib.mean(), indep.mean(), se)
    assert mean["renyi_ball"][2] > 0.97 and abs(mean["strong_ball"][2] - 0.93) < 0.05
    assert np.all(out["renyi_ball"] >= out["strong_ball"])
    assert 6.5 <= mean["clusters"][2] <= 8.0
    euler = numpy_euler_causal_circle(np.asarray(out["angles"][:12, 0]), 64.0, ts)
    same = renyi.cluster_count_series(jnp.asarray(euler[:, -1])) == renyi.cluster_count_series(
        jnp.asarray(out["angles"][:12, -1]))
    assert int(jnp.sum(same)) >= 10  # >= 80% of the 12 seeds (acceptance G32)


@pytest.mark.slow
def test_conjecture1_holds_for_identity_qk(key):  # D16
    from jaxattn.studies.paper_003 import conjecture1_runs

    for beta in (1.0, 4.0, 9.0):
        out = conjecture1_runs(jax.random.fold_in(key, int(beta)), 2, beta=beta, t1=1000.0, random_qk=False)
        assert np.all(out["off_axis"] < 1e-9)


@pytest.mark.slow
def test_fig1_b_c_panels(key):  # D15, D17
    from jaxattn.studies.paper_003 import fig1_runs

    runs = fig1_runs(key, panels=("b", "c"), num_saves=3)
    assert float(jnp.min(jnp.abs(runs["c"].final[:, 0]))) > 1 - 1e-6
    assert float(jnp.max(jnp.abs(runs["b"].final[:, 2]))) < 1e-8
    assert int(jaxattn.analysis.count_clusters(runs["b"].final, delta=0.05**2 / 2)) <= 3


@pytest.mark.parametrize("solver", [None, "bosh3"])
def test_causal_statistics_given_draws_match_independent_euler(key, solver):
    """``causal_statistics(theta0=...)`` (the work-precision path, either solver) solves the
    given draws: its angles agree with the NumPy Euler scheme at h = 1e-3 (global error O(h)), and its
    consumed fractions with :func:`fig3_statistics` of the Euler angles up to one token per run."""
    import diffrax

    from jaxattn.studies.paper_003 import causal_statistics, fig3_statistics, numpy_euler_causal_circle

    runs, n, beta, ts = 3, 24, 16.0, (0.0, 2.0, 10.0)
    theta0 = np.asarray(jaxattn.initial.uniform_circle(key, n, batch=runs))
    kwargs = {} if solver is None else dict(solver=diffrax.Bosh3(), rtol=1e-6, atol=1e-6)
    out = causal_statistics(key, runs, n=n, beta=beta, ts=ts, chunk=2, theta0=theta0, return_angles=True, **kwargs)
    np.testing.assert_allclose(out["angles"][:, 0], theta0, atol=0)
    euler = numpy_euler_causal_circle(theta0, beta, ts, h=1e-3)
    gap = np.abs(np.angle(np.exp(1j * (np.asarray(out["angles"]) - euler))))
    assert 1e-6 < gap.max() < 5e-3, gap.max()  # O(h) apart, and not the same computation
    ref = fig3_statistics(euler, beta)
    for name in ("renyi_ball", "strong_ball", "renyi_cluster", "strong_cluster"):
        assert np.max(np.abs(np.asarray(out[name]) - np.asarray(ref[name]))) <= 1.0 / n + 1e-12, name
    np.testing.assert_array_equal(out["num_renyi"], ref["num_renyi"])
    with pytest.raises(ValueError, match="theta0 must hold"):
        causal_statistics(key, runs + 1, n=n, beta=beta, ts=ts, theta0=theta0)


def test_numpy_euler_without_mask_is_circle_sa(key):
    """``numpy_euler_causal_circle(causal=False)`` (the circle-sweep baseline) follows (SA) on S^1: at
    h = 1e-3 it agrees with a tight solve of ``CircleSelfAttention`` to O(h)."""
    from jaxattn.studies.paper_003 import numpy_euler_causal_circle

    theta0 = jaxattn.initial.uniform_circle(key, 16, batch=2)
    ts = np.array([0.0, 1.0, 3.0])
    euler = numpy_euler_causal_circle(np.asarray(theta0), 4.0, ts, h=1e-3, causal=False)
    exact = jaxattn.simulate(jaxattn.CircleSelfAttention(4.0), theta0, 3.0, ts=ts, rtol=1e-10, atol=1e-10,
                             ensemble="batched").xs
    gap = np.abs(np.angle(np.exp(1j * (euler - np.asarray(exact)))))
    assert 1e-7 < gap.max() < 3e-3, gap.max()


@pytest.mark.parametrize("n, blocks", [(1, 2), (7, 3), (200, 2), (201, 4)])
@pytest.mark.parametrize("beta", [1.0, 64.0, 3000.0])
def test_block_triangular_causal_circle_kernel(key, n, blocks, beta):
    """The block lower-triangular causal circle kernel (the default dense path for n <= 1024)
    equals the independent NumPy sum (1/Z_k) sum_{j<k} h(theta_j - theta_k) and the shared masked
    kernel (``block_size=0``) to round-off, for any number of row blocks, at small and extreme beta."""
    from jaxattn.fields.circle import causal_circle_velocity

    theta = np.asarray(jax.random.uniform(jax.random.fold_in(key, n), (n,), minval=-np.pi, maxval=np.pi))
    expected = np.empty(n)
    for k in range(n):
        d = theta[: k + 1] - theta[k]
        expected[k] = h_np(d[:k], beta).sum() / np.exp(beta * (np.cos(d) - 1)).sum()
    got = jax.jit(causal_circle_velocity, static_argnums=2)(jnp.asarray(theta), beta, blocks)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-13)
    default = evaluate(jaxattn.CircleSelfAttention(beta, causal=True), jnp.asarray(theta))
    shared = evaluate(jaxattn.CircleSelfAttention(beta, causal=True, block_size=0), jnp.asarray(theta))
    np.testing.assert_allclose(default, shared, rtol=0, atol=1e-13)
    np.testing.assert_allclose(default, expected, rtol=0, atol=1e-13)
