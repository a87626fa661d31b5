"""Paper 003 §5: frozen-centre (cross-attention) dynamics, Theorem 5.2 / Lemma 5.3 / Lemma A.2, Lemma 5.1.

Oracles: a NumPy double loop of eq. (C.3), jax.grad of the sequential energies E_k (erratum: the
factor 1/beta, docs/paper_003.md), the ordinary causal circle field (one frozen token = a first
token, which never moves when V = I), independently computed constants of Theorem 5.2 / Lemma A.2.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxattn
from jaxattn import FrozenCentresCircleAttention
from jaxattn.analysis import metastable, renyi


@eqx.filter_jit
def evaluate(field, x):
    return field(0.0, x)


def wrapped(x):
    """Angular distance |x| mod 2 pi in [0, pi]."""
    return np.abs(np.angle(np.exp(1j * np.asarray(x))))


def frozen_velocity_loop(phi, theta, a, beta, causal=True):
    """Eq. (C.3), term by term."""
    n, m = len(phi), len(theta)
    out = np.empty(n)
    for k in range(n):
        num = z = 0.0
        for j in range(n):
            if causal and j > k:
                continue
            w = math.exp(beta * (math.cos(phi[k] - phi[j]) - 1))
            num += w * math.sin(phi[j] - phi[k])
            z += w
        for j in range(m):
            w = a[j] * math.exp(beta * (math.cos(phi[k] - theta[j]) - 1))
            num += w * math.sin(theta[j] - phi[k])
            z += w
        out[k] = num / z
    return out


def partition_loop(phi, theta, a, beta):
    return np.array([
        sum(math.exp(beta * (math.cos(phi[k] - phi[j]) - 1)) for j in range(k + 1))
        + sum(a[j] * math.exp(beta * (math.cos(phi[k] - theta[j]) - 1)) for j in range(len(theta)))
        for k in range(len(phi))
    ])


# ------------------------------------------------------------------------------------- the field


@pytest.mark.parametrize("beta", [0.7, 9.0, 64.0, 1000.0])
@pytest.mark.parametrize("causal", [True, False])
def test_frozen_field_matches_double_loop(beta, causal):
    rng = np.random.default_rng(7)
    n, m = 11, 4
    phi = rng.uniform(-np.pi, np.pi, n)
    theta = rng.uniform(-np.pi, np.pi, m)
    a = rng.uniform(1.0, 4.0, m)
    phi[3] = theta[1] + 0.05  # some particles near a centre, where the terms matter at large beta
    phi[7] = phi[2] + 0.02
    expected = frozen_velocity_loop(phi, theta, a, beta, causal)
    for block_size in (None, 4):  # dense and row-blocked attention kernel (block boundary inside the dummy rows)
        f = FrozenCentresCircleAttention(beta, theta, a, causal=causal, block_size=block_size)
        np.testing.assert_allclose(evaluate(f, jnp.asarray(phi)), expected, rtol=0, atol=1e-13)
    w = jaxattn.analysis.attention_matrix(FrozenCentresCircleAttention(beta, theta, a, causal=causal),
                                          jnp.asarray(phi))
    assert w.shape == (n, m + n)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-14)
    if causal:
        assert float(jnp.max(jnp.abs(jnp.triu(w[:, m:], 1)))) == 0.0


def test_energy_gradient_has_the_missing_one_over_beta():  # erratum §8.4, Lemma 5.3 form
    rng = np.random.default_rng(3)
    n, m, beta = 9, 3, 6.0
    phi = rng.uniform(-np.pi, np.pi, n)
    theta = np.array([0.3, 2.2, -2.0])
    a = np.array([1.0, 2.5, 1.3])
    f = FrozenCentresCircleAttention(beta, theta, a)
    energies = f.sequential_energies(jnp.asarray(phi))
    e_loop = [-(sum(math.exp(beta * (math.cos(phi[k] - phi[j]) - 1)) for j in range(k))
                + sum(a[j] * math.exp(beta * (math.cos(phi[k] - theta[j]) - 1)) for j in range(m)))
              for k in range(n)]
    np.testing.assert_allclose(energies, e_loop, rtol=1e-14)
    jac = jax.jacrev(f.sequential_energies)(jnp.asarray(phi))  # dE_k / dphi_j
    assert float(jnp.max(jnp.abs(jnp.triu(jac, 1)))) == 0.0  # E_k depends on phi_1..phi_k only
    z = partition_loop(phi, theta, a, beta)
    velocity = np.asarray(evaluate(f, jnp.asarray(phi)))
    np.testing.assert_allclose(velocity, -np.diag(jac) / (beta * z), rtol=1e-12, atol=1e-15)
    # the paper's -(1/Z_k) dE_k/dphi_k is beta times too fast
    assert np.allclose(-np.diag(jac) / z, beta * velocity, rtol=1e-12)


def test_one_frozen_token_is_the_first_token_of_causal_attention(key):
    # V = I: token 1 of (CSA-2d) never moves, so it is a frozen token with a = 1 for tokens 2..n+1
    beta = 9.0
    phi = jax.random.uniform(key, (12,), minval=-np.pi, maxval=np.pi)
    theta = jnp.array([0.4])
    v_frozen = evaluate(FrozenCentresCircleAttention(beta, theta), phi)
    v_causal = evaluate(jaxattn.CircleSelfAttention(beta, causal=True), jnp.concatenate([theta, phi]))
    assert abs(float(v_causal[0])) < 1e-15  # exactly 0 up to the round-off of sin, cos
    np.testing.assert_allclose(v_frozen, v_causal[1:], rtol=0, atol=1e-15)


def test_frozen_field_input_validation():
    F = FrozenCentresCircleAttention
    with pytest.raises(ValueError, match="beta"):
        F(0.0, [0.0, 1.0])
    with pytest.raises(ValueError, match=">= 1"):
        F(4.0, [0.0, 1.0], [1.0, 0.5])
    with pytest.raises(ValueError, match="NaN"):
        F(4.0, [0.0, np.nan])
    with pytest.raises(ValueError, match="1-d"):
        F(4.0, [[0.0, 1.0]])
    with pytest.raises(ValueError, match="1-d"):
        F(4.0, [])
    with pytest.raises(ValueError, match="weights must be"):
        F(4.0, [0.0, 1.0], [1.0, 2.0, 3.0])
    f = F(4.0, [0.0, 1.0], 2.0)
    np.testing.assert_array_equal(f.weights, [2.0, 2.0])
    with pytest.raises(ValueError, match="angles"):
        jaxattn.simulate(f, jnp.zeros((2, 3, 4)), 1.0)


# -------------------------------------------------------------------- Theorem 5.2 and Lemma A.2


def test_theorem_5_2_and_lemma_a2_numbers():  # errata 2-3 of docs/paper_003.md
    eps, c = 0.1, 6.5
    b = metastable.lemma_a2_bounds(eps, c)
    assert b.beta_min == pytest.approx(14.045, abs=1e-12)  # (c - 1 - 2 eps)^2 / 2: the paper's "beta >= 14"
    assert b.n_max_remark == pytest.approx(682.95, abs=5e-3)  # eps/(c-1) e^{3 r^2/8}
    assert b.n_max_proof == pytest.approx(708.72, abs=5e-3)  # eps/r e^{3 r^2/8}: the paper's "N <= 700" is neither
    n_h, n_g = metastable.theorem_5_2_ratios(14.045, eps, c)
    assert n_h == pytest.approx(3782.9, rel=1e-4)
    assert n_g == pytest.approx(415373, rel=1e-4)
    assert metastable.lemma_a2_f(4.5) == pytest.approx(-4.13752, abs=1e-5)  # paper: -4.14

    assert metastable.theorem_5_2_conditions(700, 14.045, eps, c)
    assert metastable.theorem_5_2_conditions(3782, 14.045, eps, c)
    assert not metastable.theorem_5_2_conditions(3784, 14.045, eps, c)  # first condition binds
    assert not metastable.theorem_5_2_conditions(1e6, 14.045, eps, c)
    assert not metastable.theorem_5_2_conditions(10, 14.045, eps, 2.1)  # c > 2 + 2 eps required
    assert metastable.lemma_a2_conditions(eps, c, 14.045, 682)
    assert not metastable.lemma_a2_conditions(eps, c, 14.045, 700)  # as stated: N <= 682.95
    assert metastable.lemma_a2_conditions(eps, c, 14.045, 700, n_bound="proof")  # the proof's 708.72
    assert not metastable.lemma_a2_conditions(eps, c, 14.0, 600)  # beta below 14.045
    assert not metastable.lemma_a2_conditions(eps, 5.6, 20.0, 10)  # c < 5.5 + 2 eps
    assert not metastable.lemma_a2_conditions(0.11, 6.5, 20.0, 10)  # eps > 0.1

    # erratum §8.2: the printed second condition N g(.) < g(.) is vacuous because g((c - 2 eps) b^{-1/2}) < 0;
    # at beta = 4, eps = 0.8, c = 7.8 the corrected one binds first (N_g = 677.2 < N_h = 926.4)
    n_h, n_g = metastable.theorem_5_2_ratios(4.0, 0.8, 7.8)
    assert n_g < 800 < n_h
    assert not metastable.theorem_5_2_conditions(800, 4.0, 0.8, 7.8)
    assert metastable.theorem_5_2_conditions(800, 4.0, 0.8, 7.8, paper_sign=True)
    with pytest.raises(ValueError, match="wrapped"):
        metastable.theorem_5_2_conditions(10, 1.0, 0.1, 6.5)


def test_lemma_a2_implies_theorem_5_2():
    # Lemma A.2 is a sufficient condition: on a grid, its boundary points (both N bounds) satisfy Theorem 5.2
    for eps in (0.01, 0.05, 0.1):
        for c in (5.5 + 2 * eps, 6.5, 9.0, 12.0):
            b = metastable.lemma_a2_bounds(eps, c)
            for factor in (1.0, 1.5, 10.0):
                beta = b.beta_min * factor
                for N in (b.n_max_remark, b.n_max_proof):
                    assert metastable.lemma_a2_conditions(eps, c, beta, N, n_bound="proof")
                    assert metastable.theorem_5_2_conditions(N, beta, eps, c), (eps, c, beta, N)


@pytest.mark.parametrize("beta, m, threshold", [(64.0, 7, 0.0125), (14.045, 3, 0.0267)])
def test_theorem_5_2_frozen_centres_capture_every_particle(beta, m, threshold):  # Theorem 5.2
    n, eps, runs = 100, 0.1, 3
    theta = jnp.arange(m) * 2 * np.pi / m
    assert threshold == pytest.approx(eps / math.sqrt(beta), abs=5e-5)
    c = 6.5 if m == 3 else 2 * np.pi / m * math.sqrt(beta)  # centres are 7.18 (m = 7) / 7.85 (m = 3) b^{-1/2} apart
    assert metastable.theorem_5_2_conditions(n + m, beta, eps, c)
    field = FrozenCentresCircleAttention(beta, theta)
    x0 = jax.random.uniform(jax.random.PRNGKey(int(beta)), (runs, n), minval=-np.pi, maxval=np.pi)
    traj = jaxattn.simulate(field, x0, 500.0, ts=jnp.array([0.0, 10.0, 100.0, 500.0]), rtol=1e-8, atol=1e-10)
    dist = wrapped(np.asarray(traj.xs)[..., None] - np.asarray(theta)).min(-1).max(-1)  # (runs, times)
    assert np.all(dist[:, 0] > threshold)
    assert np.all(dist[:, -1] < threshold), dist  # measured max 4e-8 (solver tolerance)
    # no time is given by the theorem: an independent check saw every run done by t = 100; here 2 of 3 runs per
    # setting are (< 2e-9) but one particle of one run is still between centres at t = 100 (0.41 / 0.99 rad)
    # Lemma 5.3: the limit is a strongly stable critical point. The Jacobian is lower triangular
    # (sequential system), so its eigenvalues are the diagonal entries.
    for final in np.asarray(traj.final):
        jac = np.asarray(jax.jacfwd(lambda p: field(0.0, p))(jnp.asarray(final)))
        assert np.max(np.abs(np.triu(jac, 1))) == 0.0
        assert np.max(np.abs(evaluate(field, jnp.asarray(final)))) < 1e-6
        assert np.max(np.diag(jac)) < -0.1


# ------------------------------------------------------------------------------------ Lemma 5.1


def test_lemma_5_1_bounds_hand_made():
    beta, eps = 64.0, 0.1
    theta0 = np.array([0.0, 1.0, 0.2, -2.0, 2.9])
    b = metastable.lemma_5_1_bounds(theta0, beta, eps)  # delta = 0.5: strong centres 1, 2, 4, 5
    np.testing.assert_array_equal(b.index, [1, 2, 4, 5])
    gap = np.array([np.inf, 1.0, 2.0, 2 * np.pi - 2.9 - 2.0])  # token 5 is nearest to token 4, across pi
    np.testing.assert_allclose(b.gap, gap, rtol=1e-14)
    s = beta**-0.5
    c = gap / (s * (1 + 2 * eps))
    np.testing.assert_allclose(b.c, c, rtol=1e-14)
    np.testing.assert_allclose(b.bound, eps * c * s, rtol=1e-14)
    h = renyi.interaction_h(c[1:] * s, beta)
    np.testing.assert_allclose(b.T[1:], eps * c[1:] * s / (b.index[1:] * h), rtol=1e-12)
    assert b.T[0] == np.inf and list(b.valid) == [False, True, True, True]
    chord = metastable.lemma_5_1_bounds(theta0, beta, eps, metric="chord")
    np.testing.assert_allclose(chord.gap[1:], 2 * np.sin(gap[1:] / 2), rtol=1e-14)
    assert np.all(chord.T[1:] < b.T[1:])  # chord < arc: the chord hypothesis (paper's (1)) is stronger
    # hypothesis (2) c beta^{-1/2} > tau*_beta fails for a centre just outside a small delta
    close = metastable.lemma_5_1_bounds(np.array([0.0, 0.1]), beta, eps, delta=0.05)
    assert list(close.valid) == [False, False]


def _lemma_5_1_check(seeds, horizon):
    beta, eps, n = 64.0, 0.1, 200
    x0 = jax.random.uniform(jax.random.PRNGKey(5100), (seeds, n), minval=-np.pi, maxval=np.pi)
    ts = jnp.linspace(0.0, horizon, int(10 * horizon) + 1)
    traj = jaxattn.simulate(jaxattn.CircleSelfAttention(beta, causal=True), x0, horizon, ts=ts, rtol=1e-8,
                            atol=1e-10)
    xs, tsn = np.asarray(traj.xs), np.asarray(traj.ts)
    ratios = []
    for run in range(seeds):
        b = metastable.lemma_5_1_bounds(np.asarray(x0[run]), beta, eps)
        assert b.index[0] == 1 and not b.valid[0]
        for j, k in enumerate(b.index - 1):
            displacement = wrapped(xs[run, :, k] - xs[run, 0, k])  # angle >= chord |x(t) - x(0)|
            if k == 0:
                assert displacement.max() < 1e-12  # V = I: token 1 is fixed (round-off of sin, cos)
                continue
            assert b.valid[j]  # strong centres are > delta = 4 b^{-1/2} from earlier tokens: c_j b^{-1/2} > tau*
            window = tsn <= min(b.T[j], horizon)
            ratios.append(displacement[window].max() / b.bound[j])
    ratios = np.array(ratios)
    assert len(ratios) >= 2 * seeds
    assert np.all(ratios < 1), ratios  # 0 violations of the Lemma 5.1 bound
    return ratios


def test_lemma_5_1_strong_centres_stay_put():  # Lemma 5.1, cheap version
    ratios = _lemma_5_1_check(seeds=3, horizon=100.0)
    assert ratios.max() < 0.1  # measured 0.013 (an independent run: <= 0.02)


@pytest.mark.slow
def test_lemma_5_1_strong_centres_stay_put_full():  # Lemma 5.1: 8 seeds, [0, min(T_j, 500)]
    ratios = _lemma_5_1_check(seeds=8, horizon=500.0)
    assert ratios.max() < 0.1
