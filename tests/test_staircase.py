"""Dynamic metastability (Geshkovski, Koubbi, Polyanskiy, Rigollet, arXiv 2410.06833; Rigollet's survey arXiv
2512.01868 §4; Bruno, Pasqualotto, Agazzi, arXiv 2509.25040): the authors' worked example (n = 5, d = 2, beta = 4,
T = 400), the energy staircase, log T ~ beta, two-token merge and pairing times, the cap-collapse lemma.
Oracles: SciPy quadrature and ODE solves, a NumPy replay of the authors' Euler scheme, closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp

import jaxattn
from jaxattn.analysis import staircase as st
from jaxattn.fields import embed_angles

#: the authors' start (kinetic.py of the paper's code): five unit vectors in R^2
Z0 = np.array([[0.99806638, 0.06215705], [0.97712061, 0.21268594], [-0.24578194, 0.96932515],
               [-0.97354734, 0.2284854], [-0.99892629, -0.04632772]])
Z0 = Z0 / np.linalg.norm(Z0, axis=1, keepdims=True)
PAIRS = ((0, 1), (3, 4), (2, 3), (0, 2))


@pytest.fixture(scope="module")
def worked_example():
    """(SA) on S^1 at beta = 4 from Z0 to T = 400, saved every 0.1 (adaptive Tsit5, rtol 1e-10)."""
    ts = np.linspace(0.0, 400.0, 4001)
    traj = jaxattn.simulate(jaxattn.SelfAttention(4.0), Z0, 400.0, ts=ts, rtol=1e-10, atol=1e-10)
    return ts, np.asarray(traj.xs)


def test_worked_example_merge_times(worked_example):
    """F-10: pairs (0,1), (3,4), (2,3), (0,2) first reach <x_i, x_j> = 1 - 1e-4 at 2.431, 3.729, 6.348 and 329.5
    (+-0.5%, exact flow), in the closed-form staircase's merge order."""
    ts, xs = worked_example
    times = np.asarray(st.merge_times(ts, xs))
    got = [times[p] for p in PAIRS]
    np.testing.assert_allclose(got, [2.4309, 3.7289, 6.3485, 329.516], rtol=5e-3)
    assert np.all(np.diff(got) > 0)
    np.testing.assert_array_equal(st.staircase_levels(Z0).pairs, [[0, 1], [3, 4], [2, 3], [0, 2]])
    assert np.all(np.isfinite(times)) and np.all(np.diag(times) == 0) and np.allclose(times, times.T)


def test_authors_euler_scheme_stretches_the_last_merge():
    """F-10, the authors' scheme: Euler dt = 0.1 on the unprojected field, then renormalise. Read by merge_times
    on the saves it gives 2.6, 4.0, 6.9, 365.3 (to one step): the last merge 11% later than the exact flow."""
    z, dt = Z0.copy(), 0.1
    zs = [z]
    for _ in range(4000):
        g = 4.0 * z @ z.T
        a = np.exp(g - g.max(axis=1, keepdims=True))
        z = z + dt * (a / a.sum(axis=1, keepdims=True)) @ z
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
        zs.append(z)
    times = np.asarray(st.merge_times(np.arange(4001) * dt, np.array(zs)))
    np.testing.assert_allclose([times[p] for p in PAIRS], [2.6, 4.0, 6.9, 365.3], atol=0.1)


def test_metastable_plateau_and_levels(worked_example):
    """F-11: on t in [10, 100] the energy sits at 0.52033 (+-1e-4; it creeps up to 0.52090 by t = 250 as the two
    clusters approach: -0.8206 -> -0.6704 at t = 200), equal at t = 20 to the collapsed clusters'
    13/25 + (12/25) e^{beta(<w_1, w_2> - 1)} (to 1e-8); the closed-form levels of this start are
    0.2, 0.28, 0.36, 0.52, 1 and the flow ends at 1 (one cluster)."""
    ts, xs = worked_example
    e = np.asarray(st.normalised_energy(xs, 4.0))
    window = (ts >= 10) & (ts <= 100)
    assert np.max(np.abs(e[window] - 0.52033)) < 1e-4
    np.testing.assert_allclose(e[np.searchsorted(ts, [200.0, 250.0])], [0.52060, 0.52090], atol=1e-5)
    assert np.all(np.diff(e[window]) > 0)  # the plateau is metastable: SA raises the energy (Remark 3.7)
    k = np.searchsorted(ts, 20.0)
    w1, w2 = xs[k, 0], xs[k, 2]
    np.testing.assert_allclose(e[k], 13 / 25 + 12 / 25 * np.exp(4.0 * (w1 @ w2 - 1)), atol=1e-8)
    np.testing.assert_allclose(e[k], st.cluster_energy(np.stack([w1, w2]), [2, 3], 4.0), atol=1e-8)
    np.testing.assert_allclose(st.staircase_levels(Z0).levels, [0.2, 0.28, 0.36, 0.52, 1.0], atol=1e-15)
    np.testing.assert_allclose(e[0], 0.35971, atol=1e-5)
    assert abs(e[-1] - 1.0) < 1e-6


def test_staircase_levels_of_the_authors_staircase_start():
    """F-12: the start theta_0 = [0, 0.042490, 0.169961, 0.339923, 0.594865] merges {1,2}, {12,3}, {4,5}, {123,45}:
    levels 0.20, 0.28, 0.44, 0.52, 1.00, each jump 2ab/n^2."""
    theta0 = np.array([0.0, 0.042490, 0.169961, 0.339923, 0.594865])
    stair = st.staircase_levels(embed_angles(theta0))
    np.testing.assert_allclose(stair.levels, [0.20, 0.28, 0.44, 0.52, 1.00], atol=1e-15)
    np.testing.assert_array_equal(stair.pairs, [[0, 1], [0, 2], [3, 4], [0, 3]])
    np.testing.assert_allclose(stair.jumps, [2 * 1 * 1 / 25, 2 * 2 * 1 / 25, 2 * 1 * 1 / 25, 2 * 3 * 2 / 25])
    np.testing.assert_allclose(np.arccos(stair.inner_products[:2]), [0.042490, 0.148716], atol=1e-6)


def test_log_consensus_time_grows_linearly_in_beta():
    """F-13: from Z0, the time until every pair is within 1 - 1e-4: 63.54, 142.04, 329.52, 779.78, 1865.93 at
    beta = 3 ... 5 (+-1%), log-slope 1.69 +- 0.05 (the survey's log T_2 ~ beta). One compilation serves all beta."""
    betas = [3.0, 3.5, 4.0, 4.5, 5.0]
    theta0 = np.arctan2(Z0[:, 1], Z0[:, 0])
    ts = np.linspace(0.0, 2000.0, 20001)
    consensus = []
    for beta in betas:
        traj = jaxattn.simulate(jaxattn.CircleSelfAttention(beta), theta0, 2000.0, ts=ts, rtol=1e-10, atol=1e-10)
        consensus.append(float(jnp.max(st.merge_times(ts, embed_angles(traj.xs)))))
    np.testing.assert_allclose(consensus, [63.54, 142.04, 329.52, 779.78, 1865.93], rtol=1e-2)
    slope = np.polyfit(betas, np.log(consensus), 1)[0]
    assert abs(slope - 1.69) < 0.05, slope


def test_two_token_merge_time():
    """F-14: two SA tokens from rho = 0 reach 0.99 at 18.2607 (beta = 5), 1128.98 (10), 1.21918e7 (20) (1e-4): the
    closed form against SciPy quadrature and against simulated tokens (beta = 5, 10)."""
    for beta, expected in ((5.0, 18.2607), (10.0, 1128.98), (20.0, 1.21918e7)):
        t = float(st.two_token_merge_time(beta))
        np.testing.assert_allclose(t, expected, rtol=1e-4)
        q, _ = quad(lambda r: (np.exp(beta * (1 - r)) + 1) / (2 * (1 - r * r)), 0.0, 0.99, epsabs=0, epsrel=1e-12)
        np.testing.assert_allclose(t, q, rtol=1e-10)
    x0 = np.array([[1.0, 0.0], [0.0, 1.0]])  # rho0 = 0
    for beta in (5.0, 10.0):
        t_star = float(st.two_token_merge_time(beta))
        ts = np.linspace(0.0, 1.2 * t_star, 2001)
        xs = jaxattn.simulate(jaxattn.SelfAttention(beta), x0, ts[-1], ts=ts, rtol=1e-11, atol=1e-11).xs
        np.testing.assert_allclose(st.merge_times(ts, xs, delta=0.01)[0, 1], t_star, rtol=1e-4)


def test_pairing_clock():
    """F-15: in the running clock dt = e^{beta(1 - rho(s))} ds two SA tokens merge (0 -> 0.99) at s* = 1.9666, 1.7911,
    1.6343, 1.4648, 1.3786, 1.33564, 1.32333 for beta = 5 ... 1000, tending to atanh(0.99)/2 = 1.3233262 (the pairing
    limit); the printed fixed clock gives beta s* -> 1/2 instead. pairing_clock on simulated tokens agrees."""
    expected = {5: 1.9666, 10: 1.7911, 20: 1.6343, 50: 1.4648, 100: 1.3786, 200: 1.33564, 1000: 1.32333}
    for beta, s in expected.items():
        np.testing.assert_allclose(st.two_token_pairing_time(float(beta)), s, atol=6e-5)
    np.testing.assert_allclose(st.pairing_time(0.0, 0.99), 1.3233262, atol=1e-7)
    np.testing.assert_allclose(st.two_token_pairing_time(1e5), st.pairing_time(0.0, 0.99), atol=1e-6)
    fixed = [b * float(st.two_token_merge_time(b)) * np.exp(-b) for b in (5.0, 10.0, 50.0, 200.0)]
    np.testing.assert_allclose(fixed, [0.615, 0.513, 0.5004, 0.5000], atol=6e-4)
    x0 = np.array([[1.0, 0.0], [0.0, 1.0]])
    for beta in (5.0, 10.0):
        ts = np.linspace(0.0, float(st.two_token_merge_time(beta)), 40001)  # the clock is O(dt^2) between saves
        xs = jaxattn.simulate(jaxattn.SelfAttention(beta), x0, ts[-1], ts=ts, rtol=1e-11, atol=1e-11).xs
        s = st.pairing_clock(ts, xs, beta, delta=1e-9)
        np.testing.assert_allclose(s[-1], st.two_token_pairing_time(beta), rtol=5e-5)


def test_cap_collapse_lemma():
    """F-16: u' = u(1 - u) e^{beta(u - 1)}: the hitting time of 1 - u = e^{-c beta} is 72.506 <= 327.03 at
    (beta, u0, c) = (10, 0.5, 1), 4515.4 <= 44081.5 at (20, 0.5, 0.5), 3.364 <= 18.82 at (5, 0.9, 1); the closed form
    against a SciPy solve with an event."""
    for (beta, u0, c), (t_exact, bound) in (((10, 0.5, 1), (72.506, 327.03)), ((20, 0.5, 0.5), (4515.4, 44081.5)),
                                              ((5, 0.9, 1), (3.364, 18.82))):
        t = float(st.cap_collapse_time(beta, u0, c))
        np.testing.assert_allclose(t, t_exact, rtol=2e-4)
        np.testing.assert_allclose(st.cap_collapse_bound(beta, u0, c), bound, rtol=1e-4)
        assert t <= bound
        event = lambda _, u: 1 - u[0] - np.exp(-c * beta)  # noqa: E731
        event.terminal = True
        sol = solve_ivp(lambda _, u: u * (1 - u) * np.exp(beta * (u - 1)), (0, 10 * t), [u0], events=event,
                        rtol=1e-12, atol=1e-14, method="DOP853")
        np.testing.assert_allclose(sol.t_events[0][0], t, rtol=1e-8)


def test_differentiable_closed_forms():
    h = 1e-5
    for f in (st.two_token_merge_time, st.two_token_pairing_time):
        np.testing.assert_allclose(jax.grad(f)(7.0), (f(7.0 + h) - f(7.0 - h)) / (2 * h), rtol=1e-6)
    e = jax.grad(lambda b: st.normalised_energy(Z0, b))(4.0)
    np.testing.assert_allclose(e, (st.normalised_energy(Z0, 4.0 + h) - st.normalised_energy(Z0, 4.0 - h)) / (2 * h),
                               rtol=1e-6)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="rho0 < rho1"):
        st.two_token_merge_time(5.0, 0.5, 0.2)
    with pytest.raises(ValueError, match="beta must be finite and > 0"):
        st.normalised_energy(Z0, -1.0)
    with pytest.raises(ValueError, match=r"delta must be in \(0, 2\]"):
        st.merge_times(np.arange(2.0), np.stack([Z0, Z0]), delta=0.0)
    with pytest.raises(ValueError, match="positive masses"):
        st.staircase_levels(Z0, sizes=[1, 1, 1, 1, 0])


def test_staircase_flow_at_large_beta():
    """F-12, dynamically: gkpr's glued flow in the pairing clock from the authors' staircase start at beta = 4000
    shows plateaus 0.202, 0.28, 0.44, 0.52 and ends at 1 (within 0.005 of the closed-form levels: the first is
    raised by the cross terms of the closest pair, e^{beta(cos 0.0425 - 1)} = e^{-3.6}), merging in the closed form's
    order; the energy never decreases (SA raises it, Geshkovski et al. 2023 (perspective), Remark 3.7)."""
    theta0 = np.array([0.0, 0.042490, 0.169961, 0.339923, 0.594865])
    flow = st.staircase_flow(theta0, 4000.0)
    np.testing.assert_allclose(flow.levels, [0.20, 0.28, 0.44, 0.52, 1.00], atol=5e-3)
    np.testing.assert_allclose(flow.levels[1:], [0.28, 0.44, 0.52, 1.00], atol=1e-9)
    assert np.all(np.diff(flow.merge_s) > 0) and flow.merge_s.size == 4
    assert np.all(np.diff(flow.energy) > -1e-12)
    # the first merge in the clock: the closest pair alone (the other clusters act e^{-28} more slowly) closes its
    # gap g at dg/ds = -2 sin g / (1 + e^{beta(cos g - 1)}) (the second term is the partner's weight in the SA
    # denominator); the pairing limit keeps only the first term (d rho/ds = 2(1 - rho^2)): 1.02 of 1.59 here
    beta, g0 = 4000.0, 0.042490
    radius = 1 / np.sqrt(beta * np.log(beta))
    first, _ = quad(lambda g: (1 + np.exp(beta * (np.cos(g) - 1))) / (2 * np.sin(g)), radius, g0, epsrel=1e-12)
    np.testing.assert_allclose(flow.merge_s[0], first, rtol=2e-3)
    limit = float(st.pairing_time(np.cos(g0), np.cos(radius)))
    np.testing.assert_allclose(limit, 0.5 * np.log(np.tan(g0 / 2) / np.tan(radius / 2)), rtol=1e-9)


@pytest.mark.slow
def test_staircase_plateaus_approach_the_levels_as_beta_grows():
    """F-12: the first plateau of the glued flow is 0.253, 0.213, 0.202 at beta = 500, 2000, 4000 (the authors' code
    replays give 0.253, 0.213, 0.202: the cross terms vanish as beta grows); the later levels are exact."""
    theta0 = np.array([0.0, 0.042490, 0.169961, 0.339923, 0.594865])
    firsts = [st.staircase_flow(theta0, beta).levels[0] for beta in (500.0, 2000.0, 4000.0)]
    np.testing.assert_allclose(firsts, [0.253, 0.213, 0.202], atol=1.5e-3)


def test_weighted_particles_are_coincident_tokens_and_the_clock_is_a_time_change():
    """WeightedCircleAttention with sizes (2, 3, 1) equals (SA) on 6 tokens of which 2 and 3 coincide (the cluster
    reduction is exact for collapsed clusters); with clock=True it is e^{beta(1 - rho*)} times the same field; unit
    masses give CircleSelfAttention."""
    from jaxattn.fields import WeightedCircleAttention

    beta = 3.0
    theta = np.array([0.1, 1.3, -2.0])
    full = np.repeat(theta, [2, 3, 1])
    v_full = np.asarray(jaxattn.CircleSelfAttention(beta)(0.0, full))
    v = np.asarray(WeightedCircleAttention(beta, [2.0, 3.0, 1.0])(0.0, theta))
    np.testing.assert_allclose(v, v_full[[0, 2, 5]], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(WeightedCircleAttention(beta, np.ones(3))(0.0, theta),
                               jaxattn.CircleSelfAttention(beta)(0.0, theta), rtol=1e-12, atol=1e-14)
    rho_star = np.max(np.cos(theta[:, None] - theta[None, :])[~np.eye(3, dtype=bool)])
    np.testing.assert_allclose(WeightedCircleAttention(beta, [2.0, 3.0, 1.0], clock=True)(0.0, theta),
                               np.exp(beta * (1 - rho_star)) * v, rtol=1e-12)
    with pytest.raises(ValueError, match="masses must be finite and > 0"):
        WeightedCircleAttention(beta, [1.0, 0.0])
