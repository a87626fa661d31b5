"""Gradients through particle and PDE dynamics, float64, against independent oracles.

Oracles: central finite differences of tight-tolerance solves; the exact identity
d obs(x(t1))/d t1 = <grad obs, velocity>; the scalar ODE of paper 002 Theorem 4.6 (T35); the
linear theory of the circle PDE (paper 004 eq. (20)-(22), closed-form Bessel derivatives); the
implicit-function relation on the phase boundary. Gradients of the linear growth rates and the
finite-difference check of |mu_3(T)|^2 through the circle solver (004 test 25) are in
tests/test_spectral_linear.py::test_grad_growth_rate_matches_closed_form and
tests/test_spectral_circle.py::test_gradient_through_solver_matches_finite_differences; hardmax
layer gradients in tests/test_hardmax.py. The default-adjoint finite-difference check of SA beta
with Q = K = V = I is tests/test_simulate.py::test_gradient_in_beta_matches_finite_differences.
"""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special as sp

import jaxattn
from jaxattn import analysis as O
from jaxattn.spectral import circle as C
from jaxattn.spectral import circle_pde_value_and_grad
from jaxattn.studies import gradients as G

TIGHT = dict(rtol=1e-11, atol=1e-11)
PDE_TOL = dict(rtol=1e-12, atol=1e-20)


def _rel(a, b):
    return abs(float(a) - float(b)) / max(abs(float(b)), 1e-300)


def _mean_ip_final(tr):
    return O.mean_inner_product(tr.final)


def _pair_12(tr):  # module level: one compilation shared by every call (observables are static)
    return jnp.dot(tr.final[0], tr.final[1])


# ----------------------------------------------------------------------------------------------
# particles: every parameter against finite differences of tight solves


def test_sa_gradients_in_beta_QKV_x0_t1_match_finite_differences(key):
    """SA, n = 6, d = 3, beta = 2, generic Q, K, V, T = 3: one reverse pass vs central FD (h = 1e-4)."""
    k1, k2, k3, k4, k5 = jax.random.split(key, 5)
    n, d, beta, T = 6, 3, 2.0, 3.0
    x0 = jaxattn.initial.uniform_sphere(k1, n, d)
    Q = jnp.eye(d) + 0.3 * jax.random.normal(k2, (d, d))
    K = jnp.eye(d) + 0.3 * jax.random.normal(k3, (d, d))
    V = jnp.eye(d) + 0.3 * jax.random.normal(k4, (d, d))

    def f(beta=beta, Q=Q, K=K, V=V, x0=x0, T=T):
        tr = jaxattn.simulate(jaxattn.SelfAttention(beta, Q, K, V), x0, T, ts=2, **TIGHT)
        return float(_mean_ip_final(tr))

    value, g = jaxattn.value_and_grad_of(_mean_ip_final, jaxattn.SelfAttention(beta, Q, K, V), x0, T, ts=2, **TIGHT)
    assert abs(float(value) - f()) < 1e-12
    h = 1e-4
    E = lambda M, i, j: M.at[i, j].add(h)  # noqa: E731
    Em = lambda M, i, j: M.at[i, j].add(-h)  # noqa: E731
    checks = {
        "beta": (g.field.beta, (f(beta=beta + h) - f(beta=beta - h)) / (2 * h)),
        "Q[0,1]": (g.field.Q[0, 0, 1], (f(Q=E(Q, 0, 1)) - f(Q=Em(Q, 0, 1))) / (2 * h)),
        "K[2,0]": (g.field.K[0, 2, 0], (f(K=E(K, 2, 0)) - f(K=Em(K, 2, 0))) / (2 * h)),
        "V[1,2]": (g.field.V[0, 1, 2], (f(V=E(V, 1, 2)) - f(V=Em(V, 1, 2))) / (2 * h)),
        "t1": (g.t1, (f(T=T + h) - f(T=T - h)) / (2 * h)),
    }
    # x0: a random tangent direction v (v_i orthogonal to x_i), curve retract(x0 + s v)
    v = jaxattn.manifolds.tangent_projection(x0, jax.random.normal(k5, x0.shape))
    xp = jaxattn.initial.project_to_sphere(x0 + h * v)
    xm = jaxattn.initial.project_to_sphere(x0 - h * v)
    checks["x0 . v"] = (jnp.sum(g.x0 * v), (f(x0=xp) - f(x0=xm)) / (2 * h))
    for name, (ad, fd) in checks.items():
        assert abs(float(ad) - fd) <= 1e-6 * max(abs(fd), 1e-3), (name, float(ad), fd)
        assert abs(fd) > 1e-4, f"{name}: degenerate check (FD {fd})"
    # the x0 gradient is tangent (Riemannian) ...
    assert float(jnp.max(jnp.abs(jnp.sum(g.x0 * x0, axis=-1)))) < 1e-14
    # ... and d/dt1 is exactly <grad obs(x(T)), velocity(x(T))>
    tr = jaxattn.simulate(jaxattn.SelfAttention(beta, Q, K, V), x0, T, ts=2, **TIGHT)
    oracle = jnp.sum(jax.grad(O.mean_inner_product)(tr.final) * tr.field.velocity(T, tr.final))
    assert _rel(g.t1, oracle) < 1e-8


@pytest.mark.slow
def test_usa_ensemble_beta_gradient_with_few_checkpoints(key):
    """USA (Z_i -> n), ensemble of 2, checkpoints = 2 (the memory knob): d/dbeta of the ensemble mean
    energy E_beta(x(T)) at fixed beta in E, vs FD. Few checkpoints change the cost, not the answer."""
    x0 = jaxattn.initial.uniform_sphere(key, 5, 3, batch=2)
    beta, T = 1.5, 2.0

    def obs(tr):  # energy with a fixed beta, so only the dynamics carry the beta dependence
        return jnp.mean(jaxattn.analysis.interaction_energy(tr.final, 1.0))

    def f(b):
        return float(obs(jaxattn.simulate(jaxattn.UnnormalisedSelfAttention(b), x0, T, ts=2, **TIGHT)))

    _, g = jaxattn.value_and_grad_of(obs, jaxattn.UnnormalisedSelfAttention(beta), x0, T, ts=2, checkpoints=2, **TIGHT)
    h = 1e-4
    fd = (f(beta + h) - f(beta - h)) / (2 * h)
    assert _rel(g.field.beta, fd) < 1e-6 and abs(fd) > 1e-3
    assert g.x0.shape == x0.shape


@pytest.mark.parametrize("beta", [1.0, pytest.param(4.0, marks=pytest.mark.slow)])
def test_T35_orthogonal_init_beta_derivative_equals_gamma_ode(beta):
    """002 T35: n = d = 8, x_i(0) = e_i: d<x_1(t), x_2(t)>/dbeta by autodiff through the particle solve
    equals d gamma_beta(t)/dbeta from the scalar ODE (4.8) (FD h = 1e-5), t in {1, 4}, to 1e-6 relative."""
    x0 = jaxattn.initial.orthogonal_frame(8, 8)
    for t in (1.0, 4.0):
        val, g = jaxattn.value_and_grad_of(_pair_12, jaxattn.SelfAttention(beta), x0, t, ts=2, rtol=1e-12, atol=1e-12)
        gamma = lambda b: float(O.gamma_trajectory(b, 8, jnp.array([t]), rtol=1e-13, atol=1e-15)[-1])  # noqa: E731
        h = 1e-5
        fd = (gamma(beta + h) - gamma(beta - h)) / (2 * h)
        assert abs(float(val) - gamma(beta)) < 1e-9
        assert _rel(g.field.beta, fd) < 1e-6, (t, float(g.field.beta), fd)


def test_backsolve_is_refused_with_an_explanation(key):
    x0 = jaxattn.initial.uniform_sphere(key, 4, 3)
    with pytest.raises(ValueError, match="contract forwards"):
        jaxattn.value_and_grad_of(_mean_ip_final, jaxattn.SelfAttention(9.0), x0, 10.0,
                            adjoint=diffrax.BacksolveAdjoint())
    with pytest.raises(ValueError, match="either adjoint"):
        jaxattn.value_and_grad_of(_mean_ip_final, jaxattn.SelfAttention(9.0), x0, 10.0,
                            adjoint=diffrax.RecursiveCheckpointAdjoint(), checkpoints=4)


def _first_token_drift(tr):  # <x_1(0), x_1(T)>: where the consensus point ends up, seen from token 1
    return jnp.dot(tr.xs[0, 0], tr.final[0])


@pytest.mark.slow
def test_backsolve_really_is_wrong_on_clustering_dynamics(key):
    """Why it is refused (ecosystem §3.5): SA, n = 32, d = 3, beta = 1, T = 30 (collapse to one cluster,
    exponential contraction), L = <x_1(0), x_1(T)>. A plain diffrax solve with beta in ``args``:
    BacksolveAdjoint's dL/dbeta is off by > 100x, recursive checkpointing (value_and_grad_of's default)
    matches central FD of rtol = 1e-11 solves. (At T = 10 backsolve is still fine here: the error grows
    with the contraction, which is why a horizon-independent refusal is the safe default.)"""
    x0 = jaxattn.initial.uniform_sphere(key, 32, 3)
    beta, T = 1.0, 30.0

    def loss(b):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(lambda t, y, b: jaxattn.SelfAttention(b).velocity(t, y)), diffrax.Tsit5(), 0.0, T,
            None, x0, args=b, stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-6),
            adjoint=diffrax.BacksolveAdjoint(), max_steps=4096)
        return jnp.dot(x0[0], sol.ys[-1][0])

    bad = jax.grad(loss)(beta)
    _, good = jaxattn.value_and_grad_of(_first_token_drift, jaxattn.SelfAttention(beta), x0, T, ts=2, rtol=1e-6, atol=1e-6)

    def f(b):
        return float(_first_token_drift(jaxattn.simulate(jaxattn.SelfAttention(b), x0, T, ts=2, **TIGHT)))

    fd = (f(beta + 1e-4) - f(beta - 1e-4)) / 2e-4
    assert abs(fd) > 1e-5
    assert _rel(good.field.beta, fd) < 1e-3
    assert _rel(bad, fd) > 100, (float(bad), fd)


def test_input_errors(key):
    x0 = jaxattn.initial.uniform_sphere(key, 4, 3)
    sa = jaxattn.SelfAttention(1.0)
    with pytest.raises(TypeError, match="observable"):
        jaxattn.value_and_grad_of(3.0, sa, x0, 1.0)
    with pytest.raises(TypeError, match="field"):
        jaxattn.value_and_grad_of(_mean_ip_final, "SA", x0, 1.0)
    with pytest.raises(ValueError, match="sphere"):
        jaxattn.value_and_grad_of(_mean_ip_final, sa, 2 * x0, 1.0)
    with pytest.raises(ValueError, match="NaN"):
        jaxattn.value_and_grad_of(_mean_ip_final, sa, x0.at[0, 0].set(jnp.nan), 1.0)
    with pytest.raises(ValueError, match="t1"):
        jaxattn.value_and_grad_of(_mean_ip_final, sa, x0, -1.0)
    with pytest.raises(ValueError, match="checkpoints"):
        jaxattn.checkpointed_adjoint(0)
    with pytest.raises(TypeError, match="scalar"):
        jaxattn.value_and_grad_of(lambda tr: tr.final, sa, x0, 0.1, ts=2)


# ----------------------------------------------------------------------------------------------
# the scalar gamma ODE (Theorem 4.6) and the phase boundary


def test_gamma_ode_reproduces_paper_tables():
    """002 §2.4 tables (T11/T12 reference values): gamma_beta(t), n = 8 and 32; t*(beta), n = 32, delta = 1e-2."""
    ts = jnp.array([0.5, 1.0, 2.0, 4.0, 8.0])
    np.testing.assert_allclose(O.gamma_trajectory(4.0, 8, ts),
                               [0.01759294, 0.03837928, 0.09365213, 0.33168384, 0.99792612], atol=1e-8)
    np.testing.assert_allclose(O.gamma_trajectory(1.0, 8, ts, "usa")[:3],
                               [0.19810994, 0.60058507, 0.99540929], atol=1e-8)
    np.testing.assert_allclose(O.gamma_trajectory(6.0, 32, jnp.array([0.5, 1.0, 2.0, 10.0, 30.0])),
                               [0.00239941, 0.00500798, 0.0109501, 0.165535, 1.0], atol=1e-5)
    # to half a unit of the last printed digit
    for beta, ref, ulp in [(0.1, 4.0364, 1e-4), (1.0, 4.1145, 1e-4), (5.0, 8.3879, 1e-4), (9.0, 177.57, 1e-2)]:
        assert abs(float(O.gamma_crossing_time(beta, 32, 1e-2)) - ref) <= ulp / 2
    for beta, ref, ulp in [(1.0, 2.4702, 1e-4), (9.0, 0.68584, 1e-5)]:
        assert abs(float(O.gamma_crossing_time(beta, 32, 1e-2, "usa")) - ref) <= ulp / 2
    # gamma(t*) = 1 - delta: the two computations agree
    t_star = O.gamma_crossing_time(5.0, 32, 1e-2)
    assert abs(float(O.gamma_trajectory(5.0, 32, jnp.stack([t_star]))[-1]) - 0.99) < 1e-9


@pytest.mark.slow
@pytest.mark.parametrize("model, betas", [("sa", (3.0, 7.0)), ("usa", (2.0,))])
def test_phase_boundary_implicit_function_relation(model, betas):
    """On gamma_beta(t*(beta)) = 1 - delta: d gamma/d beta |_{t*} = -gamma'(t*) dt*/dbeta. Left: autodiff
    through the gamma ODE; right: autodiff through the quadrature t* = int du / h (independent)."""
    for beta in betas:
        n, delta = 32, 1e-2
        t_star, dt = jax.value_and_grad(O.gamma_crossing_time)(beta, n, delta, model)
        dgamma = jax.grad(lambda b: O.gamma_trajectory(b, n, jnp.stack([t_star]), model)[-1])(beta)
        rhs = -O.gamma_rhs(1 - delta, beta, n, model) * dt
        assert _rel(dgamma, rhs) < 1e-7, (beta, model, float(dgamma), float(rhs))
        h = 1e-5
        fd = (O.gamma_crossing_time(beta + h, n, delta, model) - O.gamma_crossing_time(beta - h, n, delta, model)) / (2 * h)
        assert _rel(dt, fd) < 1e-7


@pytest.mark.slow
def test_sensitivity_along_boundary_orthogonal_init_is_exact():
    """Orthogonal init: all pairs follow gamma exactly (Thm 4.6), so on the boundary the particle soft
    clustering probability is s(0) = 1/2 and its beta-derivative is dgamma/dbeta / (4 tau)."""
    res = G.clustering_sensitivity_along_boundary([2.0, 4.0], 8, 8, x0=jaxattn.initial.orthogonal_frame(8, 8),
                                                  delta=1e-2, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(res.p_particles, 0.5, atol=1e-6)
    np.testing.assert_allclose(res.dp_particles, res.dp_gamma, rtol=1e-5)
    assert np.all(np.asarray(res.dp_gamma) < 0)  # SA: larger beta clusters later (t* grows with beta)


# ----------------------------------------------------------------------------------------------
# circle PDE: linear theory as the oracle


def _mu3_sq(mu):  # module level: shared compilation
    return jnp.abs(mu[-1, 3]) ** 2


@pytest.mark.parametrize("model", ["usa", pytest.param("sa", marks=pytest.mark.slow)])
def test_circle_pde_gradient_matches_linear_theory(model):
    """Single mode mu_3(0) = eps (eps = 1e-6, K = 16): mu_3(T) = eps e^{gamma_3 T} up to O(eps^2), so for
    L = |mu_3(T)|^2: dL/dbeta = 2 T gamma_3'(beta) L, dL/dT = 2 gamma_3 L, dL/d mu_3(0) = 2 mu_3(0) e^{2 gamma_3 T}.
    gamma_k = k^2 I_k/beta (USA), k^2 I_k/(beta I_0) (SA); derivatives in closed form (scipy Bessel)."""
    K, beta, T, k = 16, 5.0, 0.2, 3
    c0 = C.mode_coefficients(K, cos={k: 2e-6 / np.pi})  # mu_3(0) = 2e-6 (real)
    c0 = c0.at[k].set(1e-6 + 1e-6j)
    L, g = circle_pde_value_and_grad(_mu3_sq, beta, c0, T, model=model, **PDE_TOL)
    I = lambda v: sp.iv(v, beta)  # noqa: E731
    dI = 0.5 * (I(k - 1) + I(k + 1))
    if model == "usa":
        gam, dgam = k**2 * I(k) / beta, k**2 * (dI / beta - I(k) / beta**2)
    else:
        gam = k**2 * I(k) / (beta * I(0))
        dgam = k**2 * (dI / (beta * I(0)) - I(k) / (beta**2 * I(0)) - I(k) * I(1) / (beta * I(0) ** 2))
    L_lin = 2e-12 * np.exp(2 * gam * T)
    assert _rel(L, L_lin) < 1e-8
    assert _rel(g.beta, 2 * T * dgam * L_lin) < 1e-7
    assert _rel(g.t1, 2 * gam * L_lin) < 1e-7
    np.testing.assert_allclose(complex(g.coeffs0[k]), 2 * complex(c0[k]) * np.exp(2 * gam * T), rtol=1e-7)


def test_circle_pde_refuses_gradients_of_unresolved_solutions():
    c0 = C.mode_coefficients(16, cos={3: 1e-3})
    with pytest.raises(RuntimeError, match="unresolved"):
        circle_pde_value_and_grad(_mu3_sq, 5.0, c0, 0.8, **PDE_TOL)
    with pytest.raises(ValueError, match="beta"):
        circle_pde_value_and_grad(_mu3_sq, -1.0, c0, 0.1)
    with pytest.raises(ValueError, match="t1"):
        circle_pde_value_and_grad(_mu3_sq, 5.0, c0, 0.0)


# ----------------------------------------------------------------------------------------------
# smooth observables


def test_soft_observables_converge_to_hard_ones(key):
    x = jaxattn.initial.uniform_sphere(key, 7, 3)
    x = jnp.concatenate([x, jaxattn.initial.project_to_sphere(x[:3] + 0.01)])  # some close pairs
    g = np.asarray(jaxattn.analysis.pairwise_inner_products(x))
    off = g[~np.eye(10, dtype=bool)]
    assert abs(float(O.mean_inner_product(x)) - off.mean()) < 1e-14
    delta = 1e-3
    gap = np.min(np.abs(off - (1 - delta)))
    hard = float(jaxattn.analysis.clustered_pair_fraction(x, delta))
    assert 0 < hard < 1
    assert abs(float(O.soft_clustered_fraction(x, delta, tau=gap / 40)) - hard) < 1e-12
    assert abs(float(O.soft_clustered_fraction(x, delta, tau=gap / 10)) - hard) > 1e-6  # it is smooth
    lo = off.min()
    for tau in (1e-2, 1e-4):
        m = float(O.soft_min_inner_product(x, tau))
        assert lo <= m <= lo + tau * np.log(90) + 1e-15
    dmax = 1 - off.min()
    for p in (8.0, 64.0):
        u = float(O.log_soft_max_pair_distance(x, p))
        assert np.log(dmax) - np.log(90) / p - 1e-12 <= u <= np.log(dmax) + 1e-12


def test_soft_time_to_cluster_on_an_exact_two_token_solution():
    """Two tokens on a great circle at angle theta(t) = theta0 e^{-t}: 1 - <x1, x2> = 1 - cos theta(t),
    crossing 1 - cos theta = delta at t* = log(theta0 / arccos(1 - delta)). T_soft -> t* (trapezoid + width)."""
    theta0, delta = 1.0, 1e-3
    ts = jnp.linspace(0.0, 10.0, 2001)
    th = theta0 * jnp.exp(-ts)
    xs = jnp.stack([jnp.stack([jnp.ones_like(th), jnp.zeros_like(th)], -1),
                    jnp.stack([jnp.cos(th), jnp.sin(th)], -1)], axis=1)
    t_star = np.log(theta0 / np.arccos(1 - delta))
    # near t*, log(1 - cos theta) ~ const - 2t: the smoothing is symmetric, error O(dt^2)
    assert abs(float(O.soft_time_to_cluster(xs, ts, delta)) - t_star) < 1e-4
    never = O.soft_time_to_cluster(xs[:200], ts[:200], delta)  # horizon t = 0.995 < t* = 3.11
    assert abs(float(never) - float(ts[199])) < 1e-6
    with pytest.raises(ValueError, match="delta"):
        O.soft_time_to_cluster(xs, ts, -1.0)
    with pytest.raises(ValueError, match="T = len"):
        O.soft_time_to_cluster(xs, ts[:-1])
    with pytest.raises(ValueError, match="n >= 2"):
        O.mean_inner_product(jnp.ones((1, 3)))


# ----------------------------------------------------------------------------------------------
# optax studies


def test_fit_recovers_a_known_beta_from_its_clustering_time():
    """SA, n = 8, d = 3: the observed clustering time of beta_true = 1.5 (first of 3001 dense saves with
    min <x_i, x_j> >= 1 - 1e-3, an independent hard measurement) determines beta; Adam on log beta,
    starting at beta = 0.7, recovers it to the resolution of the measurement."""
    x0 = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(3), 8, 3)
    beta_true, delta, t_max = 1.5, 1e-3, 30.0
    tr = jaxattn.simulate(jaxattn.SelfAttention(beta_true), x0, t_max, ts=3001, rtol=1e-10, atol=1e-10)
    m = np.asarray(jaxattn.analysis.min_inner_product(tr.xs))
    t_obs = float(tr.ts[np.argmax(m >= 1 - delta)])
    res = G.fit_beta_to_clustering_time(t_obs, x0, t_max, beta_init=0.7, delta=delta, steps=60,
                                        learning_rate=0.1)
    assert abs(float(res.params) / beta_true - 1) < 0.02, float(res.params)
    assert float(res.losses[-1]) < 1e-4  # times matched to 1% (the hard time is resolved to 0.01)
