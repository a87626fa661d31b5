"""Causal attention with ALiBi decay and the lost-in-the-middle profile (Duerinckx, Geshkovski, Rossi,
arXiv 2605.09213, 2026): the particle model against a NumPy double loop and a NumPy RK4, the Volterra-Hardy closed
form against a quadrature solve, the critical time against the sign change of the profile's slope."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import jaxattn
from jaxattn.analysis import lost_in_middle as lm
from jaxattn.fields import AlibiCircleAttention


def numpy_velocity(theta, beta, lam):
    n = theta.shape[0]
    v = np.zeros(n)
    for j in range(1, n):
        k = np.arange(j)
        w = np.exp(-lam * (j - k) / n)
        d = theta[j] - theta[k]
        v[j] = np.sum(w * (-beta) * np.sin(d) * np.exp(beta * np.cos(d))) / np.sum(w)
    return v


def demo_start(n=64, seed=17):
    """The authors' particle demo: 4 clusters of 16 tokens at linspace(0.1, 1.9, 4) pi, N(0, 0.075) noise."""
    rng = np.random.default_rng(seed)
    centres = np.linspace(0.1, 1.9, 4) * np.pi
    return np.repeat(centres, n // 4) + rng.normal(0.0, 0.075, n)


@pytest.mark.parametrize("lam", [0.0, 1.0, 3.0])
def test_velocity_matches_a_numpy_double_loop(lam):
    theta = np.random.default_rng(0).uniform(0, 2 * np.pi, 11)
    for block_size in (None, 4):
        got = AlibiCircleAttention(1.7, lam, block_size=block_size)(0.0, theta)
        np.testing.assert_allclose(got, numpy_velocity(theta, 1.7, lam), rtol=1e-12, atol=1e-13)


def test_causal_alibi_invariants_and_rk4():
    """F-20: n = 64, beta = 1, lambda = 1 from the authors' 4-cluster start: theta_1(t) = theta_1(0) exactly, the
    positional weights of rows j >= 2 sum to 1, and the adaptive solve equals a NumPy RK4 at dt = 0.0025 (T = 2)."""
    theta0 = demo_start()
    field = AlibiCircleAttention(1.0, 1.0)
    traj = jaxattn.simulate(field, theta0, 10.0, ts=11, rtol=1e-9, atol=1e-9)
    assert np.all(np.asarray(traj.xs)[:, 0] == theta0[0])
    w = np.asarray(field.attention_matrix(0.0, theta0)[0])
    np.testing.assert_allclose(w[1:].sum(axis=1), 1.0, atol=1e-14)
    assert np.all(w[0] == 0) and np.all(np.triu(w) == 0)
    th, dt = theta0.copy(), 0.0025
    for _ in range(800):  # RK4 to T = 2
        k1 = numpy_velocity(th, 1.0, 1.0)
        k2 = numpy_velocity(th + dt / 2 * k1, 1.0, 1.0)
        k3 = numpy_velocity(th + dt / 2 * k2, 1.0, 1.0)
        k4 = numpy_velocity(th + dt * k3, 1.0, 1.0)
        th = th + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    np.testing.assert_allclose(np.asarray(traj.xs)[2], th, atol=1e-8)


def test_volterra_hardy_closed_form_against_a_quadrature_solve():
    """F-18: a = 1, lambda = 1, sigma_0 = 0.3: the closed form k sqrt(at/Y) I_1(2 sqrt(atY)) against a trapezoid
    discretisation of the Volterra-Hardy equation on 1200 nodes integrated in t (g(1, 1) = 1.600403)."""
    a, lam, s0 = 1.0, 1.0, 0.3
    s = np.linspace(s0, 1.0, 1200)
    h = s[1] - s[0]
    kmat = np.asarray(lm.alibi_kernel(s[:, None], s[None, :] - 1e-15, lam))  # k(sigma, sigma') for sigma' <= sigma
    quad = np.tril(np.full((s.size, s.size), h))
    quad[:, 0] /= 2
    quad[np.arange(s.size), np.arange(s.size)] /= 2
    quad[0, 0] = 0.0
    op = kmat * quad
    k0 = np.asarray(lm.alibi_kernel(s, s0 - 1e-15, lam))
    sol = solve_ivp(lambda t, g: a * (k0 + op @ g), (0, 1), np.zeros(s.size), t_eval=[0.5, 1.0], rtol=1e-10, atol=1e-12)
    for col, t in enumerate((0.5, 1.0)):
        closed = np.asarray(lm.hardy_profile(a, t, s, s0, lam))
        np.testing.assert_allclose(sol.y[1:, col], closed[1:], rtol=2e-3)
    np.testing.assert_allclose(lm.hardy_profile(1.0, 1.0, 1.0, 0.3, 1.0), 1.600403, atol=1e-6)
    # lambda = 0 (k = 1/sigma, Y = log(sigma / sigma_0)) is the limit of lambda -> 0
    np.testing.assert_allclose(lm.hardy_profile(1.0, 1.0, 0.8, 0.3, 0.0), lm.hardy_profile(1.0, 1.0, 0.8, 0.3, 1e-7),
                               rtol=1e-6)


def test_critical_time_is_where_recency_is_lost():
    """F-17: lambda = 1, M = 8, 20 modes: t_crit = 2.457489, 0.600716, 0.174018 at beta = 1, 2, 3; the right-end slope
    of the profile (autodiff of the closed form at sigma_0 -> 1) is +0.0163 / -0.0164 at t_crit -+ 0.01."""
    for beta, expected in ((1.0, 2.457489), (2.0, 0.600716), (3.0, 0.174018)):
        np.testing.assert_allclose(lm.critical_time(beta, 1.0), expected, atol=1e-6)
    t_crit = float(lm.critical_time(1.0, 1.0))

    def slope(t):
        return jax.grad(lambda s: lm.retrieval_score(t, s, 1.0, 1.0))(1.0 - 1e-10)

    np.testing.assert_allclose([slope(t_crit - 0.01), slope(t_crit + 0.01)], [0.016316, -0.016449], atol=2e-5)
    np.testing.assert_allclose(slope(1.3), lm.recency_slope(1.3, 1.0, 1.0), rtol=1e-6)
    assert abs(float(lm.recency_slope(t_crit, 1.0, 1.0))) < 1e-12


def test_u_shape_at_t_1():
    """F-19: beta = 1, t = 1, lambda = 1, M = 8: the minimum of S_t on sigma_0 in [0.02, 0.98] is 1.19531 at 0.259, the
    profile rises to both ends (primacy and recency), and the theorem's smallness bound on t is 2.236965."""
    s0 = np.arange(0.02, 0.98 + 1e-9, 0.001)
    score = np.asarray(lm.retrieval_score(1.0, s0, 1.0, 1.0))
    assert abs(s0[np.argmin(score)] - 0.259) <= 0.005
    np.testing.assert_allclose(score.min(), 1.19531, atol=1e-4)
    np.testing.assert_allclose(lm.smallness_bound(1.0, 1.0), 2.236965, atol=1e-6)
    i = np.argmin(score)
    assert np.all(np.diff(score[: i + 1]) < 0) and np.all(np.diff(score[i:]) > 0)  # unimodal
    assert float(lm.retrieval_score(1.0, 1e-6, 1.0, 1.0)) > 3 * score.min()  # primacy: diverges as sigma_0 -> 0


def test_bad_decay_raises_eagerly_and_under_jit():
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lam must be finite and >= 0"):
            AlibiCircleAttention(1.0, bad)
        with pytest.raises(ValueError, match="lam must be finite and >= 0"):
            lm.critical_time(1.0, bad)
    with pytest.raises(Exception, match="lam must be finite and >= 0"):
        jax.jit(lambda lam: AlibiCircleAttention(1.0, lam)(0.0, jnp.linspace(0, 1, 5)))(-1.0)
    with pytest.raises(Exception, match="lam must be finite and >= 0"):
        jax.jit(lambda lam: lm.critical_time(1.0, lam))(-1.0)
    with pytest.raises(ValueError, match="beta must be finite and > 0"):
        AlibiCircleAttention(0.0, 1.0)


def test_gradients_in_beta_and_lambda():
    theta0 = demo_start(16)

    def loss(beta, lam):
        traj = jaxattn.simulate(AlibiCircleAttention(beta, lam), theta0, 1.0, ts=2, rtol=1e-10, atol=1e-10)
        return jnp.sum(jnp.cos(traj.final - theta0[-1]))

    g = jax.grad(loss, argnums=(0, 1))(1.0, 1.0)
    h = 1e-5
    np.testing.assert_allclose(g[0], (loss(1.0 + h, 1.0) - loss(1.0 - h, 1.0)) / (2 * h), rtol=1e-5)
    np.testing.assert_allclose(g[1], (loss(1.0, 1.0 + h) - loss(1.0, 1.0 - h)) / (2 * h), rtol=1e-5)
