"""The damped second-order Runge-Kutta-Chebyshev solver (jaxattn.solvers.RKC2; Sommeijer, Shampine &
Verwer 1997) against exact solutions: a stiff linear system with known exponentials, its real stability
interval beta(s) ~ 0.65 s^2, second-order convergence, Karagodin et al. 2024 Theorem 4.1 (causal
collapse to x_1(0)) and the Theorem 4.6 gamma ODE of Geshkovski et al. 2023 (emergence) for (SA)."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxattn
from jaxattn.analysis import gamma_trajectory
from jaxattn.solvers import RKC2, stability_bound

LAMBDAS = jnp.array([1.0, 10.0, 100.0, 1e3, 1e4])


def _linear_term(lam):
    return diffrax.ODETerm(lambda t, y, args: -lam * y)


@pytest.mark.parametrize("rho", [None, 1e4])
def test_stiff_linear_system_exact_solution(rho):
    """y' = -diag(lambda) y, lambda up to 1e4, T = 5: the error against e^{-lambda t} stays at the tolerance's
    level, with the spectral radius estimated by power iteration (None) or given. An explicit Runge-Kutta
    method would need > 1e4 T / 3.5 = 14,000 steps for stability alone; RKC2 takes ~1,300 accuracy-limited
    ones (the O(h^3) error of the slow modes), its stages growing like sqrt(h rho)."""
    ts = jnp.linspace(0.0, 5.0, 11)
    sol = diffrax.diffeqsolve(_linear_term(LAMBDAS), RKC2(spectral_radius=rho), 0.0, 5.0, None, jnp.ones(5),
                              stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-8),
                              saveat=diffrax.SaveAt(ts=ts))
    exact = jnp.exp(-ts[:, None] * LAMBDAS)
    assert float(jnp.max(jnp.abs(sol.ys - exact))) < 2e-5
    assert int(sol.stats["num_steps"]) < 2000


def test_stability_interval_grows_like_s_squared():
    """beta(s) of the damped method (eps = 2/13) tends to (2/3)(1 - 2 eps/15) s^2 (Verwer et al. 1990), and
    one step of y' = lambda y with h lambda = -beta(s) is bounded (|R| <= 1) while 1.1 beta(s) is not (1.5 beta(s)
    at s = 3, where |R| grows slowly past the end of the interval)."""
    eps = 2.0 / 13.0
    for s in (5, 10, 40):
        assert abs(float(stability_bound(s)) / (2 / 3 * (1 - 2 * eps / 15) * s**2) - 1) < 0.05
    for s, beyond in ((3, 1.5), (6, 1.1), (12, 1.1)):
        h = 1.0
        # spectral radius so that the stage rule s = 1 + floor(sqrt(1 + 1.54 h rho)) gives exactly s
        rho = ((s - 0.5) ** 2 - 1) / 1.54
        for factor, bounded in ((1.0, True), (beyond, False)):
            lam = -factor * float(stability_bound(s))
            solver = RKC2(spectral_radius=rho)
            term = _linear_term(jnp.array([-lam]))
            state = solver.init(term, 0.0, h, jnp.ones(1), None)
            y1 = solver.step(term, 0.0, h, jnp.ones(1), None, state, False)[0]
            assert (abs(float(y1[0])) <= 1 + 1e-9) == bounded, (s, factor, float(y1[0]))


@pytest.mark.parametrize("stages", [2, 7])
def test_second_order_convergence(stages):
    """y' = -y^2 + sin t, constant steps, a fixed number of stages (h rho held constant): halving h divides
    the error at T = 2 by ~4 (order 2 for every s)."""
    term = diffrax.ODETerm(lambda t, y, args: -y**2 + jnp.sin(t))
    ref = diffrax.diffeqsolve(term, diffrax.Dopri8(), 0.0, 2.0, 1e-3, jnp.array(0.5),
                              stepsize_controller=diffrax.PIDController(rtol=1e-13, atol=1e-13)).ys[-1]
    hrho = ((stages - 0.5) ** 2 - 1) / 1.54
    errors = []
    for steps in (20, 40, 80):
        h = 2.0 / steps
        y = diffrax.diffeqsolve(term, RKC2(spectral_radius=hrho / h), 0.0, 2.0, h, jnp.array(0.5)).ys[-1]
        errors.append(float(abs(y - ref)))
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 3.4) & (ratios < 4.6)), (errors, ratios)


def test_theorem_4_1_causal_collapse_to_the_first_token(key):
    """Karagodin et al. 2024 Theorem 4.1 with RKC2 through simulate: causal (SA) with V = I and random Q, K,
    every token converges to x_1(0) (the causal Jacobian is lower triangular, so its eigenvalues are real:
    RKC2's setting). Five starts, n = 10 on S^2, beta = 1, T = 1000."""
    batch, n, d = 5, 10, 3
    k1, k2 = jax.random.split(key)
    x0 = jaxattn.initial.uniform_sphere(k1, n, d, batch=batch)
    Q, K = jax.random.normal(k2, (2, batch, d, d))

    @jax.jit
    @jax.vmap
    def final(x, q, k):
        field = jaxattn.SelfAttention(1.0, q, k, causal=True)
        return jaxattn.simulate(field, x, 1000.0, ts=2, solver=RKC2(), rtol=1e-6, atol=1e-9, max_steps=10**5).final

    xT = final(x0, Q, K)
    err = np.asarray(jnp.max(jnp.linalg.norm(xT - x0[:, :1], axis=-1), axis=1))
    assert np.all(err < 1e-6), err
    assert float(jnp.min(jnp.max(jnp.linalg.norm(x0 - x0[:, :1], axis=-1), axis=1))) > 0.5


@pytest.mark.parametrize("beta", [1.0, 4.0])
def test_gamma_ode_of_theorem_4_6(beta):
    """(SA) from orthogonal tokens e_1..e_n (d = n): every <x_i, x_j> equals the solution gamma(t) of the
    scalar ODE (4.8) of Theorem 4.6 (jaxattn.analysis.gamma_trajectory); RKC2 through simulate follows it to
    1e-6 (rtol 1e-10: the global error of a second-order method) up to t = 10, where gamma is close to 1."""
    n = 6
    ts = jnp.array([0.5, 1.0, 2.0, 5.0, 10.0])
    traj = jaxattn.simulate(jaxattn.SelfAttention(beta), jnp.eye(n), 10.0, ts=ts, solver=RKC2(), rtol=1e-10, atol=1e-10)
    g = jnp.einsum("tid,tjd->tij", traj.xs, traj.xs)
    off = np.asarray(g)[:, ~np.eye(n, dtype=bool)]
    gamma = np.asarray(gamma_trajectory(beta, n, ts))
    assert np.max(np.abs(off - gamma[:, None])) < 1e-6
    assert gamma[-1] > 0.9


@pytest.mark.slow  # a long end-to-end run; the default suite keeps the shorter checks
def test_float32_and_ensembles_agree_with_float64(key):
    """The same causal circle solve (n = 24, beta = 16, T = 50) as an ensemble (vmap: own steps; batched: one
    step, max-over-members norm) follows a Tsit5 rtol 1e-10 reference to 1e-4 at rtol 1e-8, and float32 at
    rtol 1e-4 follows float64 at the same tolerance to 2e-4 (its own error against the reference is ~3e-2 there:
    round-off adds nothing visible to a second-order method's truncation error)."""
    field = jaxattn.CircleSelfAttention(16.0, causal=True)
    th = jaxattn.initial.uniform_circle(key, 24, batch=3)
    ref = jaxattn.simulate(field, th, 50.0, ts=5, rtol=1e-10, atol=1e-10, ensemble="map").xs
    for ensemble in ("vmap", "batched"):
        xs = jaxattn.simulate(field, th, 50.0, ts=5, solver=RKC2(), rtol=1e-8, atol=1e-8, ensemble=ensemble).xs
        assert float(jnp.max(jnp.abs(xs - ref))) < 1e-4, ensemble
    xs64 = jaxattn.simulate(field, th, 50.0, ts=5, solver=RKC2(), rtol=1e-4, atol=1e-4, ensemble="vmap").xs
    xs32 = jaxattn.simulate(field, th.astype(jnp.float32), 50.0, ts=5, solver=RKC2(), rtol=1e-4, atol=1e-4,
                            ensemble="vmap").xs
    assert xs32.dtype == jnp.float32
    assert float(jnp.max(jnp.abs(xs32.astype(jnp.float64) - xs64))) < 2e-4
