"""The Gaussian reduction (Castin, Ablin, Carrillo, Peyre, arXiv 2501.18322, 2025): the mean/covariance ODE
against many-token runs of the particle fields, a closed form in d = 1, and finite differences."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxattn
from jaxattn.fields import (
    GaussianAttention,
    Sinkhorn,
    empirical_gaussian_state,
    gaussian_moments,
    gaussian_sinkhorn_coupling,
    gaussian_state,
)

Q = np.array([[0.9, 0.3], [-0.2, 0.7]])
V = np.array([[1.0, 0.2], [0.2, 0.5]])
M0 = np.array([0.5, -0.2])
S0 = np.array([[1.0, 0.3], [0.3, 0.5]])
BETA = 2**-0.5  # Castin et al.'s 1/sqrt(d)


def test_covariance_ode_from_the_exact_start():
    """F-21, exact start: Sigma(1) and m(1) of the softmax closure with K = -Q (values computed independently
    with SciPy's DOP853 at rtol 1e-10)."""
    field = GaussianAttention(Q, -Q, V, beta=BETA)
    m, s = gaussian_moments(jaxattn.simulate(field, gaussian_state(M0, S0), 1.0, ts=2, rtol=1e-11, atol=1e-11).final)
    np.testing.assert_allclose(s, [[0.411614, 0.060197], [0.060197, 0.358947]], atol=1e-6)
    np.testing.assert_allclose(m, [0.889594, -0.243695], atol=1e-6)


def test_covariance_ode_follows_2000_tokens():
    """F-21: 2000 tokens of dx_i/dt = sum_j softmax_j(<Q x_i, K x_j>/sqrt 2) V x_j from N(m0, Sigma0); the ODE started
    from their empirical moments predicts their covariance at t = 1 to <= 5% (Frobenius, O(n^-1/2); 2.8% here)."""
    x0 = M0 + jax.random.normal(jax.random.PRNGKey(1), (2000, 2)) @ np.linalg.cholesky(S0).T
    particles = jaxattn.simulate(jaxattn.EuclideanSelfAttention(Q, -Q, V, beta=BETA), x0, 1.0, ts=2, rtol=1e-5,
                                 atol=1e-5)
    ode = jaxattn.simulate(GaussianAttention(Q, -Q, V, beta=BETA), empirical_gaussian_state(x0), 1.0, ts=2)
    m_p, s_p = gaussian_moments(empirical_gaussian_state(particles.final))
    m_o, s_o = gaussian_moments(ode.final)
    assert np.linalg.norm(s_p - s_o) / np.linalg.norm(s_o) < 0.05
    assert np.linalg.norm(m_p - m_o) / np.linalg.norm(m_o) < 0.05
    # and not the trivial prediction: the covariance moved by far more than the error
    assert np.linalg.norm(s_p - S0) / np.linalg.norm(S0) > 0.3


def test_softmax_closure_with_a_non_symmetric_a():
    """The softmax closure for a general K (A = beta K^T Q not symmetric, so A and A^T differ): the affine velocity
    V(m + Sigma A x) against the softmax velocities of 4000 Gaussian samples (least-squares fit), and Sigma(t) against
    1000 tokens."""
    k = np.array([[0.5, -0.4], [0.3, 0.8]])
    a = k.T @ Q
    assert np.linalg.norm(a - a.T) > 0.5
    x0 = M0 + jax.random.normal(jax.random.PRNGKey(4), (4000, 2)) @ np.linalg.cholesky(S0).T
    particle_field = jaxattn.EuclideanSelfAttention(Q, k, V)
    vel = np.asarray(particle_field(0.0, x0))
    coef, *_ = np.linalg.lstsq(np.c_[x0, np.ones(len(x0))], vel, rcond=None)
    gauss = GaussianAttention(Q, k, V)
    m_hat, s_hat = gaussian_moments(empirical_gaussian_state(x0))
    M, b = gauss.affine_velocity(m_hat, s_hat)
    assert np.linalg.norm(coef[:2].T - M) / np.linalg.norm(M) < 0.03
    x1 = x0[:1000]
    part = jaxattn.simulate(particle_field, x1, 0.5, ts=2, rtol=1e-5, atol=1e-5)
    ode = jaxattn.simulate(gauss, empirical_gaussian_state(x1), 0.5, ts=2)
    s_p = gaussian_moments(empirical_gaussian_state(part.final))[1]
    s_o = gaussian_moments(ode.final)[1]
    assert np.linalg.norm(s_p - s_o) / np.linalg.norm(s_o) < 0.03
    assert np.linalg.norm(s_o - gaussian_moments(empirical_gaussian_state(x1))[1]) / np.linalg.norm(s_o) > 0.2


def test_sinkhorn_covariance_ode_follows_tokens():
    """The Sinkhorn closure dSigma/dt = V S^T + S V^T, dm/dt = V m against 600 tokens of Sinkhorn attention."""
    k = np.array([[0.5, -0.4], [0.3, 0.8]])
    x0 = M0 + jax.random.normal(jax.random.PRNGKey(2), (600, 2)) @ np.linalg.cholesky(S0).T
    particles = jaxattn.simulate(jaxattn.EuclideanSelfAttention(Q, k, V, normalisation=Sinkhorn(30)), x0, 0.5, ts=2,
                                 rtol=1e-5, atol=1e-5)
    ode = jaxattn.simulate(GaussianAttention(Q, k, V, normalisation="sinkhorn"), empirical_gaussian_state(x0), 0.5,
                           ts=2)
    m_p, s_p = gaussian_moments(empirical_gaussian_state(particles.final))
    m_o, s_o = gaussian_moments(ode.final)
    assert np.linalg.norm(s_p - s_o) / np.linalg.norm(s_o) < 0.02
    np.testing.assert_allclose(m_p, m_o, rtol=1e-4)  # dm/dt = V m holds exactly for doubly stochastic weights
    np.testing.assert_allclose(m_o, jax.scipy.linalg.expm(0.5 * V) @ gaussian_moments(ode.xs[0])[0], rtol=1e-6)
    assert np.linalg.norm(s_p - S0) / np.linalg.norm(S0) > 0.2


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_one_dimensional_closed_form_and_blow_up(sign):
    """F-22: d = 1, dSigma/dt = 2 v a Sigma^2: Sigma(t) = Sigma0 / (1 - 2 v a Sigma0 t) (to 1e-10), blowing up at
    t* = 1/(2 v a Sigma0) when v a > 0 and decaying like 1/(2|va| t) when v a < 0."""
    v, q, k, s0 = 0.8, 1.0, sign * 0.5, 0.7
    a = q * k
    field = GaussianAttention([[q]], [[k]], [[v]])
    t_star = 1 / (2 * v * abs(a) * s0)
    t1 = 0.99 * t_star
    ts = jnp.linspace(0.0, t1, 12)
    traj = jaxattn.simulate(field, gaussian_state([0.0], [[s0]]), t1, ts=ts, rtol=1e-13, atol=1e-13,
                            solver=diffrax.Dopri8())
    _, s = gaussian_moments(traj.xs)
    exact = s0 / (1 - 2 * v * a * s0 * np.asarray(ts))
    np.testing.assert_allclose(s[:, 0, 0], exact, rtol=1e-10)
    if sign > 0:
        assert float(s[-1, 0, 0]) > 99 * s0  # 100 x Sigma0 at 0.99 t*
    else:
        assert float(s[-1, 0, 0]) < 0.51 * s0


def test_gradients_match_finite_differences():
    """d Sigma(1)_11 / dV_12 through the solve, and the Sinkhorn coupling's derivative at a repeated eigenvalue
    (Sigma = I, where eigh's eigenvector derivatives are undefined)."""
    def loss(v12):
        v = jnp.array(V).at[0, 1].set(v12)
        traj = jaxattn.simulate(GaussianAttention(Q, -Q, v, beta=BETA), gaussian_state(M0, S0), 1.0, ts=2,
                                rtol=1e-10, atol=1e-10)
        return gaussian_moments(traj.final)[1][0, 0]

    h = 1e-5
    np.testing.assert_allclose(jax.grad(loss)(0.2), (loss(0.2 + h) - loss(0.2 - h)) / (2 * h), rtol=1e-5)
    a = jnp.array([[0.4, 0.1], [-0.3, 0.6]])

    def coupling(t):
        return jnp.sum(gaussian_sinkhorn_coupling(jnp.eye(2) + t * jnp.array([[0.3, 0.1], [0.1, -0.2]]), a))

    g = jax.grad(coupling)(0.0)
    assert np.isfinite(g)
    np.testing.assert_allclose(g, (coupling(1e-6) - coupling(-1e-6)) / 2e-6, rtol=1e-6)


def test_coupling_solves_its_defining_equation():
    """(I - S~ S~^T)^{-1} S~ = G in whitened coordinates: the cross block of the precision of the coupling."""
    cov = jnp.array([[1.0, 0.3], [0.3, 0.5]])
    a = jnp.array([[0.4, 0.1], [-0.3, 0.6]])
    s = gaussian_sinkhorn_coupling(cov, a)
    w, u = np.linalg.eigh(np.asarray(cov))
    r = (u * np.sqrt(w)) @ u.T
    ri = np.linalg.inv(r)
    s_white = ri @ np.asarray(s) @ ri
    np.testing.assert_allclose(np.linalg.solve(np.eye(2) - s_white @ s_white.T, s_white), r @ np.asarray(a).T @ r,
                               rtol=1e-12, atol=1e-13)


def test_state_packing_and_symmetry():
    state = gaussian_state(M0, S0)
    assert state.shape == (3, 2)
    m, s = gaussian_moments(state)
    np.testing.assert_array_equal(m, M0)
    np.testing.assert_array_equal(s, S0)
    for norm in ("softmax", "sinkhorn"):
        dx = GaussianAttention(Q, [[0.5, -0.4], [0.3, 0.8]], V, normalisation=norm)(0.0, state)
        np.testing.assert_array_equal(dx[:2], dx[:2].T)


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="beta must be finite and > 0"):
        GaussianAttention(Q, Q, V, beta=-1.0)
    with pytest.raises(ValueError, match="NaN"):
        GaussianAttention(Q, Q, [[np.nan, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="must both be"):
        GaussianAttention(Q, np.eye(3), V)
    with pytest.raises(ValueError, match=r"\(d \+ 1, d\) array"):
        jaxattn.simulate(GaussianAttention(Q, Q, V), np.zeros((2, 2)), 1.0)
    with pytest.raises(ValueError, match="positive semidefinite"):
        jaxattn.simulate(GaussianAttention(Q, Q, V), gaussian_state(M0, -S0), 1.0)
    with pytest.raises(ValueError, match="symmetric"):
        jaxattn.simulate(GaussianAttention(Q, Q, V), gaussian_state(M0, [[1.0, 0.3], [0.0, 1.0]]), 1.0)
    assert GaussianAttention(Q, Q, V).manifold is jaxattn.manifolds.GAUSSIAN
