"""Peer parity with the simuformer simulator (Karagodin, Ge, Polyanskiy, Rigollet 2025): its discrete layer
update, re-implemented in NumPy (``benchmarks/simuformer.py``), converges at O(eta) to jaxattn's continuous
normalisation schemes, with several heads, a causal mask and random weights re-drawn every period; and its
coded radius rule (r times the coordinate sum of A) is a deviation from the papers' equation that freezes the
directions (docs/normalisation.md, "The radius equation"): jaxattn does not copy it.
"""

import diffrax
import jax
import numpy as np
import pytest

import jaxattn
from benchmarks import simuformer
from jaxattn.fields import NORMALISATIONS, RandomWeights, directions, polar, radii

N = D = 8
ORTHOGONAL = np.eye(N)[None]  # one member, theta_i(0) = e_i
IDENTITY = [(np.eye(D)[None], np.eye(D)[None])]  # one head, B = V = I
OFF = ~np.eye(N, dtype=bool)


def mean_gap(theta):
    """1 - (mean off-diagonal Gram entry), per saved time (first member)."""
    gram = np.einsum("...id,...jd->...ij", theta, theta)
    return 1 - gram[..., OFF].mean(axis=-1)


def test_discrete_layer_map_values():  # F-09 (the paper's radius rule)
    """Euler eta = 0.1 with renormalisation, n = d = 8, orthogonal start, beta = 1: 1 - rho at t = 5."""
    for norm, expected in (("postln", 9.26e-4), ("preln", 7.88e-2)):
        ts, theta, _ = simuformer.run(ORTHOGONAL, 1.0, IDENTITY, 0.1, 5.0, norm=norm, save_every=50)
        assert abs(mean_gap(theta[-1, 0]) / expected - 1) < 0.02, norm


def test_simuformer_radius_rule_freezes_and_jaxattn_does_not():  # F-09 (regression guard)
    """The coded rule r += eta r sum_k A_k blows the radii up (> 1e3 by t = 5) and freezes rho-bar at 0.2486;
    the papers' rule dr/dt = <theta, A> (jaxattn's PreLNAttention) keeps clustering: 1 - rho = 0.07597 at
    t = 5 and r = 4.4698 (equiangular reduction), and the Euler map with that rule converges to it at O(eta)."""
    ts, theta, r = simuformer.run(ORTHOGONAL, 1.0, IDENTITY, 0.1, 10.0, norm="preln", radius_rule="simuformer",
                                  save_every=50)
    frozen = [1 - mean_gap(theta[k, 0]) for k in (1, 2)]
    assert abs(frozen[0] - 0.2486) < 1e-3 and abs(frozen[1] - frozen[0]) < 1e-3
    assert r[1, 0].min() > 1e3
    traj = jaxattn.simulate(NORMALISATIONS["preln"](1.0), polar(np.eye(N)), 5.0, ts=2, rtol=1e-10, atol=1e-10)
    gap = mean_gap(np.asarray(directions(traj.final)))
    assert abs(gap - 0.07597) < 2e-5 and abs(float(radii(traj.final)[0]) - 4.4698) < 1e-4
    errors = []
    for eta in (0.1, 0.05, 0.025):
        _, theta, _ = simuformer.run(ORTHOGONAL, 1.0, IDENTITY, eta, 5.0, norm="preln", save_every=int(round(5 / eta)))
        errors.append(abs(mean_gap(theta[-1, 0]) - gap))
    assert 1.8 < errors[0] / errors[1] < 2.2 and 1.8 < errors[1] / errors[2] < 2.2  # O(eta)


def peer_weights(weights: RandomWeights, count: int):
    """jaxattn's draws in the simulator's row convention: B_h = Q_h^T K_h, V_row_h = (H V_h)^T."""
    out = []
    for index in range(count):
        Q, K, V = (np.asarray(m) for m in weights.draw(index))
        out.append((np.einsum("hmd,hme->hde", Q, K), np.swapaxes(weights.heads * V, -1, -2)))
    return out


@pytest.mark.parametrize("norm", ["postln", "preln", "periln", "ngpt"])
def test_peer_configuration_converges_at_first_order(norm):
    """Two heads, causal mask, Gaussian-product K^T Q (V = I, the simulator's default), weights re-drawn at
    t = 1: the simulator's update at step eta differs from jaxattn's solve by O(eta) (ratio ~2 per halving;
    measured 0.0117, 0.0059, 0.0030 for Post-LN at eta = 0.02, 0.01, 0.005)."""
    n, d, beta, t1 = 6, 4, 2.0, 2.0
    weights = RandomWeights(jax.random.PRNGKey(5), d, heads=2, kq="ginibre", value="identity")
    field = NORMALISATIONS[norm](beta, weights=weights, redraw_period=1.0, causal=True)
    theta0 = np.asarray(jaxattn.initial.uniform_sphere(jax.random.PRNGKey(6), n, d, batch=2))
    controller = diffrax.PIDController(rtol=1e-11, atol=1e-11, jump_ts=field.redraw_times(t1))
    exact = jaxattn.simulate(field, polar(theta0), t1, ts=2, stepsize_controller=controller).final
    errors = []
    for eta in (0.02, 0.01, 0.005):
        _, theta, r = simuformer.run(theta0, beta, peer_weights(weights, 2), eta, t1, norm=norm, causal=True,
                                     period=1.0, save_every=int(round(t1 / eta)))
        errors.append(max(np.abs(theta[-1] - directions(exact)).max(), np.abs(r[-1] - radii(exact)).max()))
    assert errors[0] < 0.05
    assert 1.7 < errors[0] / errors[1] < 2.3 and 1.7 < errors[1] / errors[2] < 2.3, errors


def test_random_weight_ensembles():
    """The ensembles' defining properties: B = Q^T K with unit-variance entries (Gaussian products, GOE),
    GOE symmetric, GPT-2 entries of standard deviation 0.02, V = +-B/normV, Wishart V >= 0; heads averaged."""
    from jaxattn.fields import random_attention_matrices

    d = 64
    key = jax.random.PRNGKey(0)
    Q, K, V = (np.asarray(m) for m in random_attention_matrices(key, d, "ginibre", "qk"))
    B = Q.T @ K
    assert abs(B.var() - 1) < 0.05 and abs(B.mean()) < 0.02
    np.testing.assert_allclose(V, B / np.sqrt(d), atol=1e-12)
    Q, K, V = (np.asarray(m) for m in random_attention_matrices(key, d, "goe", "minus_qk"))
    B = Q.T @ K
    np.testing.assert_array_equal(B, B.T)
    assert abs(np.diag(B).var() - 2) < 0.5 and abs(B[np.triu_indices(d, 1)].var() - 1) < 0.05
    np.testing.assert_allclose(V, -B / np.sqrt(d + 1), atol=1e-12)
    Q, K, V = (np.asarray(m) for m in random_attention_matrices(key, d, "gpt2", "gpt2"))
    assert abs((Q.T @ K).std() / 0.02 - 1) < 0.05 and abs(V.std() / 0.02 - 1) < 0.05
    V = np.asarray(random_attention_matrices(key, d, "identity", "wishart")[2])
    assert np.linalg.eigvalsh(V).min() > -1e-10
    weights = RandomWeights(key, 8, heads=3, kq="ginibre", value="identity")
    Qs, Ks, Vs = weights.draw(0)
    assert Qs.shape == (3, 8, 8) and not np.allclose(Qs[0], Qs[1])
    np.testing.assert_allclose(Vs, np.broadcast_to(np.eye(8) / 3, (3, 8, 8)))  # heads averaged
    with pytest.raises(ValueError, match="kq must be one of"):
        RandomWeights(key, 8, kq="wigner")


def test_weights_are_redrawn_every_period():
    """The field's heads at time t are draw number floor(t / period): constant inside a period, new after."""
    weights = RandomWeights(jax.random.PRNGKey(1), 4, heads=2, kq="goe", value="ginibre")
    field = NORMALISATIONS["postln"](1.0, weights=weights, redraw_period=0.5)
    for t, index in ((0.0, 0), (0.49, 0), (0.5, 1), (1.2, 2)):
        np.testing.assert_array_equal(field.attention_at(t).K, weights.draw(index)[1])
    np.testing.assert_allclose(field.redraw_times(2.0), [0.5, 1.0, 1.5])
    once = NORMALISATIONS["postln"](1.0, weights=weights)  # no period: drawn once
    np.testing.assert_array_equal(once.attention_at(7.0).K, weights.draw(0)[1])
