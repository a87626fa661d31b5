"""Paper 001 (Geshkovski, Letrouit, Polyanskiy, Rigollet 2023, "The emergence of clusters in self-attention
dynamics"): checks that tests/test_paper001.py does not make, each against an oracle outside the library
(an exact change of variables, a Grönwall bound, a monotone quantity, a symmetry, a scalar ODE solved by scipy).

All in R^d with the original dynamics (1.1) dx_i/dt = sum_j P_ij(t) V x_j, P = softmax(<Q x_i, K x_j>), or the
rescaled dynamics (3.1) z = e^{-tV} x.
"""

import math

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.special

import jaxattn


def _solve(field, x0, t1, ts, rtol=1e-10, atol=1e-12):
    return np.asarray(jaxattn.simulate(field, x0, t1, ts=jnp.asarray(ts), rtol=rtol, atol=atol,
                                       max_steps=10**5).xs)


def test_a_priori_growth_gronwall(key):  # T05 (Section 6.2)
    """|dx_i/dt| = |sum_j P_ij V x_j| <= |V|_op max_j |x_j| (rows of P are probabilities), so by Grönwall
    max_i |x_i(t)| <= e^{|V|_op t} max_j |x_j(0)| for any Q, K, V."""
    k1, k2 = jax.random.split(key)
    n, d = 8, 3
    x0 = jaxattn.initial.uniform_cube(k1, n, d)
    Q, K, V = jax.random.uniform(k2, (3, d, d), minval=-1.0, maxval=1.0)
    ts = np.linspace(0.0, 2.0, 21)
    xs = _solve(jaxattn.EuclideanSelfAttention(Q, K, V), x0, 2.0, ts)
    growth = np.linalg.norm(xs, axis=-1).max(axis=-1)
    bound = np.exp(np.linalg.norm(np.asarray(V), 2) * ts) * growth[0]
    assert np.all(growth <= bound * (1 + 1e-9))
    assert growth[-1] > growth[0]  # the tokens do grow (V has an expanding direction here)


@pytest.mark.parametrize("d", [1, 2])
def test_pairwise_distances_non_decreasing(key, d):  # T07 (Lemma 7.2, Q = K = V = I)
    n = 20
    x0 = jaxattn.initial.uniform_cube(key, n, d)
    eye = jnp.eye(d)
    ts = np.linspace(0.0, 5.0, 500)
    xs = _solve(jaxattn.EuclideanSelfAttention(eye, eye, eye), x0, 5.0, ts)
    dist = np.linalg.norm(xs[:, :, None] - xs[:, None], axis=-1)
    assert np.diff(dist, axis=0).min() >= -1e-10
    assert np.diff(dist, axis=0).max() > 1e-3


def test_general_scalars_exact_time_change(key):  # T14 (Thm 2.1 with V = 0.5, QK = 2)
    """d = 1, V = 1/2, Q = 2, K = 1: y(s) = sqrt(2) x(2 s) solves the V = Q = K = 1 dynamics, since
    dy/ds = 2 sqrt(2) sum_j softmax_j(2 x_i x_j) x_j / 2 = sum_j softmax_j(y_i y_j) y_j. So
    x(t) = y(t/2) / sqrt(2) with y(0) = sqrt(2) x(0)."""
    x0 = jaxattn.initial.uniform_cube(key, 12, 1, low=-1.0, high=1.0)
    ts = np.linspace(0.0, 3.0, 7)
    x = _solve(jaxattn.EuclideanSelfAttention([[2.0]], [[1.0]], [[0.5]]), x0, 3.0, ts)
    one = jnp.eye(1)
    y = _solve(jaxattn.EuclideanSelfAttention(one, one, one), math.sqrt(2) * x0, 1.5, ts / 2)
    np.testing.assert_allclose(x, y / math.sqrt(2), rtol=1e-8, atol=1e-10)


def test_non_generic_middle_token():  # T15 (the genericity assumption of Thm 2.1)
    """x(0) = (-1, 0, 1) in d = 1 is symmetric under x -> -x (with tokens 1 and 3 swapped), so x_2 stays 0 and its
    logits x_2 x_j are all 0: row 2 of P is (1/3, 1/3, 1/3). A 1e-12 perturbation of x_2 grows (the
    symmetric state is unstable): in the rescaled frame |z_2(3.5)| >= 0.3."""
    one = jnp.eye(1)
    x0 = jnp.array([[-1.0], [0.0], [1.0]])
    field = jaxattn.EuclideanSelfAttention(one, one, one)
    xs = _solve(field, x0, 1.0, [0.0, 1.0])
    assert abs(xs[-1, 1, 0]) <= 1e-10
    P = np.asarray(jaxattn.analysis.attention_matrix(field, jnp.asarray(xs[-1]), 1.0)).reshape(3, 3)
    np.testing.assert_allclose(P[1], [1 / 3, 1 / 3, 1 / 3], atol=1e-10)
    z = _solve(jaxattn.RescaledSelfAttention(one, one, one), x0.at[1, 0].set(1e-12), 3.5, [0.0, 3.5])
    assert abs(z[-1, 1, 0]) >= 0.3


def test_remark_7_9_two_tokens_frozen_gap():  # T26 (Remark 7.9: rank P != number of clusters)
    """Rescaled, V = Q = K = I_2, z(0) = (1, +-0.3): by the reflection symmetry z_{1,2} = (1, +-b(t)) with
    b' = -2 b P_12, P_12 = 1 / (1 + e^{2 e^{2t} b^2}) (logits <x_i, x_j> = e^{2t} <z_i, z_j>). The gap freezes at a
    positive value while P(t) -> I, so two tokens form two 'clusters' of rank-2 P although they are 0.01 apart.
    The scalar ODE is solved with scipy as the oracle."""
    eye = jnp.eye(2)
    z0 = jnp.array([[1.0, 0.3], [1.0, -0.3]])
    field = jaxattn.RescaledSelfAttention(eye, eye, eye)
    z = _solve(field, z0, 20.0, [0.0, 20.0], rtol=1e-11, atol=1e-13)
    rhs = lambda t, b: -2 * b * scipy.special.expit(-2 * np.exp(2 * t) * b**2)  # noqa: E731
    b = scipy.integrate.solve_ivp(rhs, (0, 20), [0.3], method="DOP853", rtol=1e-12, atol=1e-14).y[0, -1]
    np.testing.assert_allclose(z[-1, :, 0], 1.0, atol=1e-12)
    np.testing.assert_allclose(z[-1, :, 1], [b, -b], rtol=1e-7)
    assert 1e-3 < b < 0.3
    P = np.asarray(jaxattn.analysis.attention_matrix(field, jnp.asarray(z[-1]), 20.0)).reshape(2, 2)
    np.testing.assert_allclose(P, np.eye(2), atol=1e-12)


def test_float32_overflow_is_not_silent(key):  # T28 (precision guard)
    """Rescaled V = I: the logits grow like e^{2t} |z|^2 and overflow float32 (max 3.4e38) near t ~ 42 for tokens
    in [-5, 5]^3; the solve (fixed steps h = 0.1) must raise instead of returning NaN. In float64 the same run
    stays finite. (With adaptive steps float32 fails earlier and also loudly: the step size collapses near
    t = 42.4 and SolverStepLimitError is raised.)"""
    eye = jnp.eye(3)
    field = jaxattn.RescaledSelfAttention(eye, eye, eye)
    x0 = jaxattn.initial.uniform_cube(key, 40, 3, low=-5.0, high=5.0)
    fixed = dict(ts=2, solver=diffrax.Tsit5(), stepsize_controller=diffrax.ConstantStepSize(), dt0=0.1)
    try:
        out = jaxattn.simulate(field, x0.astype(jnp.float32), 50.0, **fixed).final
    except jaxattn.NonFiniteStateError as err:
        assert 35.0 < err.t < 50.0, err.t
    else:
        raise AssertionError(f"float32 solve returned silently; finite: {bool(jnp.all(jnp.isfinite(out)))}")
    assert np.all(np.isfinite(jaxattn.simulate(field, x0, 50.0, **fixed).final))


@pytest.mark.slow
def test_codimension_conjecture_fig7a():  # T25 (Conjecture 4.3 / Fig. 7a, soft)
    """Fig. 7a's symmetric V (eigenvalues 1.963, 0.253, -0.222), Q = K = I, n = 40, rescaled, T = 30. In the
    eigen-coordinates c_k(z) = <u_k, z> (u_k from numpy.linalg.eigh): the top coordinate takes 2 values (the
    d = 1 picture of Thm 2.1 along the leading direction), the number of distinct values of the middle coordinate
    does not increase, and the negative-eigenvalue coordinate spreads like e^{-lambda_3 t} in the rescaled frame
    (range ratio between t = 10 and t = 30 in [e^{0.15 x 20}, e^{0.3 x 20}], -lambda_3 = 0.222)."""
    from jaxattn.studies import paper_001 as p1

    lam, U = np.linalg.eigh(p1.FIG7A_V)
    np.testing.assert_allclose(lam, [-0.222, 0.253, 1.963], atol=1e-3)
    ds = p1.rescaled_trajectories(p1.FIG7A_V, n=40, t1=30.0, ts=[0.0, 10.0, 20.0, 30.0], seeds=(0,))
    c = ds.z.isel(seed=0).values @ U  # (t, token, k): coordinates along u_{-0.222}, u_{0.253}, u_{1.963}
    top = np.sort(c[-1, :, 2])
    assert int(np.sum(np.diff(top) > 1e-6)) + 1 == 2, top
    distinct = [len(np.unique(np.round(c[i, :, 1], 2))) for i in (1, 2, 3)]
    assert distinct[0] >= distinct[1] >= distinct[2], distinct
    spread = np.ptp(c[:, :, 0], axis=1)
    assert math.exp(0.15 * 20) <= spread[3] / spread[1] <= math.exp(0.3 * 20), spread


def test_general_spd_qk_leaders_in_s():  # T17 (Thm 3.1 / 8.1 with Q = K = M, Q^T K = M^T M > 0)
    """With Q = K = M invertible the logits are <A x_i, A x_j>, A = (M^T M)^{1/2} (scipy.linalg.sqrtm), and the
    limit points w of the rescaled tokens lie in the set S of Thm 8.1: |A w|^2 = max_j <A w, A v_j> over the
    hull vertices v_j of the limit points (each leader attends to itself). Clusters and hull from scipy."""
    import scipy.cluster.hierarchy
    import scipy.linalg
    import scipy.spatial

    from jaxattn.studies import paper_001 as p1

    M = np.asarray(jax.random.uniform(jax.random.PRNGKey(7), (3, 3), minval=-1.0, maxval=1.0))
    assert abs(np.linalg.det(M)) > 0.05
    A = np.real(scipy.linalg.sqrtm(M.T @ M))
    ds = p1.rescaled_trajectories(np.eye(3), Q=M, K=M, n=40, t1=15.0, ts=[0.0, 15.0], seeds=(0,))
    z = ds.z.isel(seed=0, t=-1).values
    labels = scipy.cluster.hierarchy.fcluster(scipy.cluster.hierarchy.linkage(z, "single"), 1e-3, "distance")
    centres = np.array([z[labels == k].mean(axis=0) for k in np.unique(labels)])
    assert 2 <= len(centres) <= 20
    vertices = centres[scipy.spatial.ConvexHull(centres).vertices] if len(centres) > 3 else centres
    Aw, Av = centres @ A.T, vertices @ A.T
    defect = np.abs(np.sum(Aw**2, axis=1) - (Aw @ Av.T).max(axis=1))
    assert defect.max() <= 1e-6, defect


# ------------------------------------------------------------------ T03, T04, T06, Figs 4, 7b, 15


def _softmax_rows(logits):
    logits = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=-1, keepdims=True)


def _euler_saves(field, x0, steps, dt=0.1):
    """The library's forward Euler (1.3) of ``field``: diffrax.Euler stepping exactly to the save times k dt."""
    ts = jnp.asarray(np.arange(steps + 1) * dt)
    return np.asarray(jaxattn.simulate(field, x0, ts[-1], ts=ts, solver=diffrax.Euler(),
                                       stepsize_controller=diffrax.StepTo(ts), max_steps=steps + 1).xs)


def test_discrete_rescaling_identity_remark_3_3(key):  # T03 (Remark 3.3)
    """The ResNet/Euler form (1.3), x^{[k+1]} = x^{[k]} + dt sum_j P_ij V x_j^{[k]}, solved by the library (diffrax
    Euler through jaxattn.simulate), against the rescaled recursion of Remark 3.3 written here in NumPy: with
    R = I + dt V, z^{[k+1]} = z^{[k]} + dt sum_j P_ij(R^k z^{[k]}) R^{-1} V (z_j^{[k]} - z_i^{[k]}), and
    z^{[k]} = R^{-k} x^{[k]} exactly (to round-off). The continuous rescaling e^{-k dt V} x^{[k]} is not that
    sequence (a discrepancy of O(dt)), so the identity singles out R."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    n, d, dt, steps = 8, 3, 0.1, 30
    x0 = np.asarray(jaxattn.initial.uniform_cube(k1, n, d, low=-5.0, high=5.0))
    Q, K = (np.asarray(jax.random.uniform(k, (2, d), minval=-1.0, maxval=1.0)) for k in (k2, k3))
    V = np.asarray(jax.random.uniform(k4, (d, d), minval=-1.0, maxval=1.0))
    xs = _euler_saves(jaxattn.EuclideanSelfAttention(Q, K, V), jnp.asarray(x0), steps, dt)

    R = np.eye(d) + dt * V
    Rinv = np.linalg.inv(R)
    z, zs = x0.copy(), [x0.copy()]
    for k in range(steps):
        y = z @ np.linalg.matrix_power(R, k).T
        P = _softmax_rows((y @ Q.T) @ (y @ K.T).T)
        z = z + dt * (P @ z - z) @ (Rinv @ V).T
        zs.append(z)
    zs = np.array(zs)
    pulled_back = np.stack([xs[k] @ np.linalg.matrix_power(Rinv, k).T for k in range(steps + 1)])
    scale = max(1.0, np.abs(zs).max())
    assert np.abs(pulled_back - zs).max() <= 1e-12 * scale
    continuous = np.stack([xs[k] @ scipy.linalg.expm(-k * dt * V).T for k in range(steps + 1)])
    assert np.abs(continuous - zs).max() > 1e-3 * scale  # the test tells R^{-k} from e^{-k dt V}


def _mean_field(Q, K, V, x, ys, w):
    """Eq. (6.2) for the measure sum_j w_j delta_{y_j}, evaluated at the points x (NumPy, explicit weights)."""
    kernel = np.exp((x @ Q.T) @ (ys @ K.T).T) * w[None, :]
    return (kernel @ (ys @ V.T)) / kernel.sum(axis=1, keepdims=True)


def test_mean_field_kernel_equals_particle_field(key):  # T04 ((6.1)-(6.2), proof of Prop. 6.2)
    """The attention kernel X[mu](x) = int e^{<Qx, Ky>} V y dmu(y) / int e^{<Qx, Ky>} dmu(y) of (6.2), computed in
    NumPy as a weighted sum, against the library's particle fields:

    * empirical measure mu_n = (1/n) sum_j delta_{x_j}: X[mu_n](x_i) = sum_j P_ij V x_j (EuclideanSelfAttention);
    * weighted measure sum_j w_j delta_{y_j} with w_j = m_j / M: the particle field of the configuration in which
      y_j appears m_j times, i.e. the softmax with logits + log w_j;
    * rescaled frame (3.1): e^{-tV} X[mu](e^{tV} z) - V z = dz/dt (RescaledSelfAttention), e^{tV} from scipy;
    * the empirical measure of the library's trajectory solves (6.1) weakly: d/dt (1/n) sum_i phi(x_i(t)) =
      (1/n) sum_i grad phi(x_i) . X[mu_t](x_i) for phi(x) = cos(<a, x>) (central difference of the solve).
    """
    k1, k2, k3, k4, k5 = jax.random.split(key, 5)
    n, d = 7, 3
    x = np.asarray(jaxattn.initial.uniform_cube(k1, n, d))
    Q, K = (np.asarray(jax.random.uniform(k, (2, d), minval=-1.0, maxval=1.0)) for k in (k2, k3))
    V = np.asarray(jax.random.uniform(k4, (d, d), minval=-1.0, maxval=1.0))
    field = jaxattn.EuclideanSelfAttention(Q, K, V)

    uniform = _mean_field(Q, K, V, x, x, np.full(n, 1.0 / n))
    np.testing.assert_allclose(np.asarray(field.velocity(0.0, jnp.asarray(x))), uniform, rtol=0, atol=1e-13)

    m = np.array([1, 3, 1, 2, 5, 1, 4])
    repeated = np.repeat(x, m, axis=0)
    first = np.concatenate([[0], np.cumsum(m)[:-1]])
    weighted = _mean_field(Q, K, V, x, x, m / m.sum())
    got = np.asarray(field.velocity(0.0, jnp.asarray(repeated)))[first]
    np.testing.assert_allclose(got, weighted, rtol=0, atol=1e-13)
    logits = (x @ Q.T) @ (x @ K.T).T + np.log(m / m.sum())[None, :]
    np.testing.assert_allclose(_softmax_rows(logits) @ (x @ V.T), weighted, rtol=0, atol=1e-13)
    assert np.abs(weighted - uniform).max() > 1e-3  # the weights matter

    t = 0.7
    E = scipy.linalg.expm(t * V)
    y = x @ E.T
    expected = _mean_field(Q, K, V, y, y, np.full(n, 1.0 / n)) @ np.linalg.inv(E).T - x @ V.T
    rescaled = jaxattn.RescaledSelfAttention(Q, K, V).velocity(t, jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(rescaled), expected, rtol=0, atol=1e-12)

    a = np.asarray(jax.random.normal(k5, (d,)))
    h = 1e-3
    xs = _solve(field, jnp.asarray(x), 1.0 + h, [0.0, 1.0 - h, 1.0, 1.0 + h], rtol=1e-12, atol=1e-14)
    phi_mean = np.cos(xs @ a).mean(axis=1)
    dphi = (phi_mean[3] - phi_mean[1]) / (2 * h)
    flux = np.mean(-np.sin(xs[2] @ a) * (_mean_field(Q, K, V, xs[2], xs[2], np.full(n, 1.0 / n)) @ a))
    assert abs(dphi - flux) <= 1e-6 * max(1.0, abs(flux)), (dphi, flux)
    assert abs(flux) > 1e-2


class _ClassicRK4(diffrax.AbstractERK):
    """The classical 4-stage Runge-Kutta method (the paper's §11.1 scheme), as a diffrax Butcher tableau."""

    tableau = diffrax.ButcherTableau(
        c=np.array([0.5, 0.5, 1.0]), b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]), b_error=np.zeros(4),
        a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])))
    interpolation_cls = diffrax.ThirdOrderHermitePolynomialInterpolation.from_k

    def order(self, terms):
        return 4


def test_solver_agreement_and_orders(key):  # T06 (§11.1: RK4 / Euler with h = 0.1 against an adaptive solve)
    """Rescaled V = Q = K = I_3, n = 40 tokens U[-5, 5]^3, T = 15. Reference: scipy DOP853 (rtol 1e-12) on a NumPy
    right-hand side. The library's fixed-step solves (classical RK4 and forward Euler through jaxattn.simulate) at
    h = 0.1 stay within the stated bounds (RK4 <= 1e-5, Euler <= 0.05) and converge at their orders when h is
    halved (error ratios 2^4 and 2^1). Measured: RK4 7.0e-6 and 3.5e-7, Euler 3.1e-2 and 1.5e-2."""
    n, d, T = 40, 3, 15.0
    x0 = np.asarray(jaxattn.initial.uniform_cube(key, n, d, low=-5.0, high=5.0))

    def rhs(t, flat):
        z = flat.reshape(n, d)
        y = math.exp(t) * z
        return (_softmax_rows(y @ y.T) @ z - z).ravel()

    ref = scipy.integrate.solve_ivp(rhs, (0.0, T), x0.ravel(), method="DOP853", rtol=1e-12,
                                    atol=1e-13).y[:, -1].reshape(n, d)
    eye = jnp.eye(d)
    field = jaxattn.RescaledSelfAttention(eye, eye, eye)

    def error(solver, h):  # dt0 as an array: one compilation per solver for both step sizes
        zT = jaxattn.simulate(field, jnp.asarray(x0), T, ts=2, solver=solver,
                              stepsize_controller=diffrax.ConstantStepSize(), dt0=jnp.asarray(h),
                              max_steps=400).final
        return float(np.abs(np.asarray(zT) - ref).max())

    rk4, rk4_half = error(_ClassicRK4(), 0.1), error(_ClassicRK4(), 0.05)
    euler, euler_half = error(diffrax.Euler(), 0.1), error(diffrax.Euler(), 0.05)
    assert rk4 <= 1e-5, rk4
    assert 1e-3 <= euler <= 0.05, euler
    assert 3.5 <= math.log2(rk4 / rk4_half) <= 4.7, (rk4, rk4_half)
    assert 0.8 <= math.log2(euler / euler_half) <= 1.2, (euler, euler_half)


def test_figure_4_rank_two_attention_and_frozen_offsets():  # Fig. 4 (§11.3)
    """Fig. 4's setting (the authors' leaders.py): d = 2, n = 20 tokens U[-1, 1]^2, V = W W^T, Q = B B^T, K = I
    (W, B with U[-1, 1] entries), forward Euler (1.3) with dt = 0.1 to T = 10, 12 seeds. The caption: clusters
    show as the rank <= 2 structure of P(t). Checked: P(T) has at most 2 distinct argmax columns (leaders) for
    every seed, and its rows are one-hot (to 1e-9) wherever lambda_1(V) >= 0.9 (the time scale is 1/lambda_1).
    Oracle for the dynamics once P is one-hot: (1.3) then reads x_i^{k+1} = x_i^k + dt V x_L^k for the leader L
    of row i (and x_L^{k+1} = (I + dt V) x_L^k), so every offset x_i - x_{L(i)} stays frozen exactly while the
    tokens grow like (1 + dt lambda_1)^k: checked to 1e-12 relative on every seed whose P is one-hot (1e-12)
    from some saved step on (8 of 12; drift measured ~2e-16)."""
    n, d, steps = 20, 2, 100
    frozen = 0
    for seed in range(12):
        kw, kb, kx = jax.random.split(jax.random.PRNGKey(seed), 3)
        W, B = (np.asarray(jax.random.uniform(k, (d, d), minval=-1.0, maxval=1.0)) for k in (kw, kb))
        V, Q = W @ W.T, B @ B.T
        field = jaxattn.EuclideanSelfAttention(Q, np.eye(d), V)
        xs = _euler_saves(field, jaxattn.initial.uniform_cube(kx, n, d), steps)
        P = _softmax_rows(np.einsum("tid,tjd->tij", xs @ Q, xs))  # <Q x_i, K x_j> with K = I, Q symmetric
        lib = np.asarray(jaxattn.analysis.attention_matrix(field, jnp.asarray(xs[-1]), 10.0))
        np.testing.assert_allclose(lib, P[-1], rtol=0, atol=1e-12)
        leaders = P[-1].argmax(axis=1)
        assert len(set(leaders)) <= 2, (seed, sorted(set(leaders)))
        defect = 1.0 - P.max(axis=-1).min(axis=-1)  # per saved step
        if np.linalg.eigvalsh(V)[-1] >= 0.9:
            assert defect[-1] <= 1e-9, (seed, defect[-1])
        boolean = defect <= 1e-12
        if boolean[-1]:
            start = steps + 1 - int(np.argmin(boolean[::-1])) if not boolean.all() else 0  # one-hot from here on
            assert all((P[k].argmax(axis=1) == leaders).all() for k in range(start, steps + 1))
            offsets = xs[start:] - xs[start:, leaders]
            drift = np.abs(offsets - offsets[0]).max()
            assert drift <= 1e-12 * np.abs(xs[-1]).max(), (seed, drift)
            frozen += 1
    assert frozen >= 6, frozen


def test_figures_7b_15_spectral_coordinates_converge_and_diverge_at_their_eigenvalues():  # Figs 7b, 15 (§11.5)
    """Fig. 7b/15's setting scaled down: V symmetric with an isolated top eigenvalue 2, three more positive
    eigenvalues in (1, 1.5) and four negative in (-1.5, -1) (the authors' V has all |lambda| >= 1 and an isolated
    Perron eigenvalue), Q = K = I, d = 8, n = 32 tokens U[-2, 2]^8 (the initial logit scale E|x|^2 = 10.7 of their
    d = 128, U[-0.5, 0.5]), rescaled (3.1). Fig. 7b: the coordinates phi_k^*(z_i) of the positive eigenvalues
    concentrate (variance -> 0) on one of two values per coordinate, one positive and one negative along phi_1;
    Fig. 15: the negative-eigenvalue coordinates diverge.

    Oracle: with V symmetric and Q = K = I the logits are sum_k e^{2 lambda_k t} phi_k^*(z_i) phi_k^*(z_j), so P
    becomes one-hot on two leaders (the extremes of phi_1^*); then by (3.1) each coordinate obeys
    d/dt phi_k^*(z_i) = lambda_k (phi_k^*(z_L) - phi_k^*(z_i)) with the leader frozen, so every offset
    D_ik = phi_k^*(z_i) - phi_k^*(z_L(i)) scales exactly like e^{-lambda_k t}: checked per token and coordinate
    on [5, 8] to 1e-3 relative (measured ~1e-5), and so does the spread of each group up to t = 10: the decay of
    Fig. 7b's variance (rate 2 lambda_k) and the growth of Fig. 15's (rate 2 |lambda_k|). At the paper's size
    (d = n = 128, the authors' sparse symmetric V: 63 positive eigenvalues, top 6.86, U[-0.5, 0.5]) the same law
    held to 2e-4 relative on [1.5, 3.5] with 2 leaders, measured once; that solve takes 1-5 min on this CPU,
    over the slow battery's budget, so the test runs scaled down."""
    from jaxattn.studies import paper_001 as p1

    d, n = 8, 32
    rng = np.random.default_rng(0)
    lam = np.concatenate([[2.0], rng.uniform(1.0, 1.5, 3), -rng.uniform(1.0, 1.5, 4)])
    O, _ = np.linalg.qr(rng.normal(size=(d, d)))
    V = O @ np.diag(lam) @ O.T
    V = (V + V.T) / 2
    ts = [0.0, 5.0, 8.0, 10.0]
    ds = p1.rescaled_trajectories(V, n=n, t1=ts[-1], ts=ts, seeds=(0,), low=-2.0, high=2.0, rtol=1e-10,
                                  atol=1e-14)
    z, P = ds.z.isel(seed=0).values, ds.P.isel(seed=0).values
    eig, _, _ = p1.dual_basis(V)
    np.testing.assert_allclose(np.sort(eig.real), np.sort(lam), atol=1e-12)
    c = p1.spectral_coordinates(z, V)
    assert np.abs(c.imag).max() < 1e-12
    c = c.real  # (t, token, k), k ordered as eig (by decreasing modulus: phi_1 first)
    leaders = P[-1].argmax(axis=1)
    for i in (1, 2, 3):
        assert 1.0 - P[i].max(axis=1).min() <= 1e-12
        assert (P[i].argmax(axis=1) == leaders).all()
    heads = sorted(set(leaders))
    assert len(heads) == 2 and c[-1, heads[0], 0] * c[-1, heads[1], 0] < 0  # Fig. 7b: one positive, one negative
    D = c - c[:, leaders]
    resolved = np.abs(D[1]) > 1e-6 * np.abs(c[1]).max(axis=0)
    assert resolved.sum() >= n * d // 2
    rate = np.log(np.abs(D[2][resolved]) / np.abs(D[1][resolved])) / (ts[2] - ts[1])
    np.testing.assert_allclose(rate, np.broadcast_to(-eig.real, D[1].shape)[resolved], rtol=1e-3)
    for members in (leaders == heads[0], leaders == heads[1]):
        # the spread of each group in each coordinate: Fig. 7b's shaded band (positive lambda_k: -> 0) and
        # Fig. 15's (negative lambda_k: -> infinity), both at the predicted rate e^{-lambda_k t} up to t = 10
        spread = c[:, members].std(axis=1)
        for i in (2, 3):  # spreads below 1e-6 of their start (the top coordinate at t = 10: 4e-9) meet the atol
            big = spread[i] > 1e-6 * spread[0]
            predicted = np.exp(-eig.real * (ts[i] - ts[1]))
            np.testing.assert_allclose((spread[i] / spread[1])[big], predicted[big], rtol=1e-3)
        assert np.all(spread[-1, eig.real > 0] < 1e-2 * spread[0, eig.real > 0])
        assert np.all(spread[-1, eig.real < 0] > 1e2 * spread[0, eig.real < 0])
