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
