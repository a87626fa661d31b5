"""Tests of the pure-attention hardmax transformer (Alcalde, Fantuzzi, Zuazua 2024; paper 000).

Oracles are independent of the implementation: exact rational arithmetic
(``fractions``), closed forms from the paper (Example 5.2, Remark 1.3, Fig. 2), scipy's
HiGHS linear programs for convex hulls, and finite differences.
"""

from __future__ import annotations

from fractions import Fraction

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxattn  # noqa: F401  (float64)
from jaxattn.layers import (
    HardmaxTransformer,
    SoftmaxTransformer,
    attracting_set,
    cluster_points,
    convex_hull_vertices,
    hardmax_attention,
    in_convex_hull,
)
from jaxattn.studies.paper_000 import figure2_tokens


def _run(Z, alpha, K, A=None, **kw):
    return HardmaxTransformer(alpha, A, num_layers=K, **kw).trajectory(jnp.asarray(Z, dtype=jnp.float64))


# ---------------------------------------------------------------- exact rational oracle


def _exact_step(Z, alpha):
    """One layer of eq. (1.1a) in exact rationals (A = I, exact ties)."""
    n = len(Z)
    out = []
    h = alpha / (1 + alpha)
    for i in range(n):
        scores = [sum(a * b for a, b in zip(Z[i], Z[j])) for j in range(n)]
        top = max(scores)
        C = [j for j in range(n) if scores[j] == top]
        mean = [sum(Z[j][c] for j in C) / len(C) for c in range(len(Z[i]))]
        out.append([Z[i][c] + h * (mean[c] - Z[i][c]) for c in range(len(Z[i]))])
    return out


def test_matches_exact_rational_oracle():
    rng = np.random.default_rng(3)
    Zq = [[Fraction(int(v), 8) for v in row] for row in rng.integers(-16, 17, size=(7, 2))]
    alpha = Fraction(1, 2)
    traj = _run(np.array(Zq, dtype=float), 0.5, 12, tie_rtol=0.0)
    for k in range(13):
        np.testing.assert_allclose(np.asarray(traj.tokens[k]), np.array(Zq, dtype=float), rtol=0, atol=1e-13)
        Zq = _exact_step(Zq, alpha)


# ---------------------------------------------------------------------- Ex. 5.2


def test_example_5_2_late_leader():
    Z0 = [(-1.0, 1.0), (0.0, 3.0), (12.0, 4.0)]
    traj = _run(Z0, 0.5, 40)
    assert traj.attention_sets(0) == [(1,), (2,), (2,)]
    np.testing.assert_allclose(traj.tokens[1], [(-2 / 3, 5 / 3), (4.0, 10 / 3), (12.0, 4.0)], rtol=0, atol=1e-15)
    assert traj.attention_sets(1) == [(0,), (2,), (2,)]
    assert traj.leader_layer.tolist() == [1, -1, 0]
    # z_1 frozen from k = 1 on, z_3 from k = 0 on (bit-exactly: Lemma 5.1(ii))
    assert np.all(np.asarray(traj.tokens[1:, 0]) == np.asarray(traj.tokens[1, 0]))
    assert np.all(np.asarray(traj.tokens[:, 2]) == np.array([12.0, 4.0]))
    k = np.arange(1, 41)
    expected = ((2 / 3) ** (k - 1))[:, None] * np.array([-8.0, -2 / 3])
    np.testing.assert_allclose(np.asarray(traj.tokens[1:, 1]) - [12.0, 4.0], expected, rtol=0, atol=1e-14)
    # the limit polytope is the segment between the two leaders (z_2 needs ~100 layers to merge)
    long = _run(Z0, 0.5, 150)
    V = convex_hull_vertices(long.final)
    assert len(V) == 2 and int(long.num_leaders) == 2
    assert np.min(np.linalg.norm(V - [-2 / 3, 5 / 3], axis=1)) < 1e-15


# ------------------------------------------------------------------- Remark 1.3


@pytest.mark.parametrize("tie_rtol", [0.0, 1e-14])
def test_remark_1_3_zero_token(tie_rtol):
    Z0 = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])[:, None]
    traj = _run(Z0, 1.0, 30, tie_rtol=tie_rtol)
    assert traj.attention_sets(0)[2] == (0, 1, 2, 3, 4)
    Z = np.asarray(traj.tokens[..., 0])
    assert np.all(Z[:, 2] == 0.0)
    assert np.all(Z[:, 0] == -1.0) and np.all(Z[:, 4] == 1.0)
    k = np.arange(31)
    np.testing.assert_allclose(np.abs(Z[:, 1] + 1), 0.5 * 2.0 ** -k, rtol=1e-12, atol=0)
    np.testing.assert_allclose(np.abs(Z[:, 3] - 1), 0.5 * 2.0 ** -k, rtol=1e-12, atol=0)
    reps, _ = cluster_points(Z[-1][:, None], tol=1e-6)
    assert sorted(np.round(reps[:, 0], 6).tolist()) == [-1.0, 0.0, 1.0]
    # (4.1) with the origin requested reproduces Remark 1.3's enlarged S
    S = attracting_set(np.array([[-1.0], [1.0]]), exclude_origin=False)
    assert sorted(S[:, 0].tolist()) == [-1.0, 0.0, 1.0]
    assert sorted(attracting_set(np.array([[-1.0], [1.0]]))[:, 0].tolist()) == [-1.0, 1.0]


# ------------------------------------------------------------------- Fig. 2


def test_figure_2_row_B_emerging_leader():
    traj = _run(figure2_tokens("B"), 0.5, 30)
    assert traj.attention_sets(0) == [(0,), (3,), (2,), (0,), (2,), (2,), (0,), (0,)]
    assert traj.attention_sets(1)[1] == (1,)
    assert traj.leader_layer.tolist() == [0, 1, 0, -1, -1, -1, -1, -1]
    np.testing.assert_allclose(traj.tokens[1:, 1], np.broadcast_to([-1 / 18, 5 / 36], (30, 2)), rtol=0, atol=1e-15)
    final = np.asarray(traj.final)
    for i in (0, 3, 6, 7):
        assert np.linalg.norm(final[i] - [1, 1 / 3]) < 1e-4
    for i in (2, 4, 5):
        assert np.linalg.norm(final[i] - [-1, -1]) < 1e-4
    reps, _ = cluster_points(final, tol=1e-4)
    assert len(reps) == 3
    V = convex_hull_vertices(reps)
    leaders = final[traj.leader_indices()]
    assert len(V) == 3 and all(np.min(np.linalg.norm(V - v, axis=1)) < 1e-12 for v in leaders)


def test_figure_2_row_D_non_vertex_clusters():
    Z0 = figure2_tokens("D", seed=0)
    traj = _run(Z0, 0.5, 30)
    C0 = traj.attention_sets(0)
    # token 5 = (0.5, 0) follows the two vertices with x = +1, token 4 = (-0.5, 0) those with x = -1
    assert C0[5] == (0, 1) and C0[4] == (2, 3)
    k = np.arange(31)
    d_plus = np.linalg.norm(np.asarray(traj.tokens[:, 5]) - [1, 0], axis=1)
    d_minus = np.linalg.norm(np.asarray(traj.tokens[:, 4]) - [-1, 0], axis=1)
    np.testing.assert_allclose(d_plus, 0.5 * (2 / 3) ** k, rtol=0, atol=1e-13)
    np.testing.assert_allclose(d_minus, 0.5 * (2 / 3) ** k, rtol=0, atol=1e-13)
    assert abs(d_plus[-1] - 2.6075e-6) < 1e-9
    assert sorted(traj.leader_indices().tolist()) == [0, 1, 2, 3]
    V = convex_hull_vertices(traj.final)
    S = attracting_set(V)
    for s in ([1, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [-1, -1], [1, -1], [-1, 1]):
        assert np.min(np.linalg.norm(S - s, axis=1)) < 1e-12
    assert len(S) == 8 and np.min(np.linalg.norm(S, axis=1)) > 0.5  # origin excluded
    S0 = attracting_set(V, exclude_origin=False)
    assert len(S0) == 9 and np.min(np.linalg.norm(S0, axis=1)) < 1e-12


# ---------------------------------------------------- invariants, general A


N_SEEDS = 25  # per ensemble (A = I and random SPD A); 100 per ensemble run with -m slow


def _random_case(seed, spd):
    rng = np.random.default_rng(seed)
    n = int(rng.choice([8, 24]))
    d = int(rng.choice([2, 3, 4]))
    alpha = float(rng.uniform(0.1, 3.0))
    Z0 = rng.standard_normal((n, d))
    if spd:
        Q = rng.standard_normal((d, d))
        A = Q @ Q.T + 0.1 * np.eye(d)
    else:
        A = np.eye(d)
    return Z0, alpha, A


@eqx.filter_jit
def _traj200(model, Z0):
    return model.trajectory(Z0)


def _check_invariants(Z0, alpha, A):
    K = 200
    traj = _traj200(HardmaxTransformer(alpha, A, num_layers=K), jnp.asarray(Z0))
    Z = np.asarray(traj.tokens)
    M = np.asarray(traj.attention)
    n, d = Z0.shape
    nA = lambda X: np.einsum("...i,ij,...j->...", X, A, X)  # noqa: E731
    R2 = np.max(nA(Z0))
    # (a) Lemma 3.2: A-norms non-decreasing; and they stay in the A-ball of radius R (Cor. 3.3.1)
    N2 = nA(Z)
    assert np.min(np.diff(N2, axis=0)) >= -1e-12 * R2
    assert np.max(N2) <= R2 * (1 + 1e-12)
    # (b) identity (3.3) and inequality (4.11) on the first 20 layers
    h = alpha / (1 + alpha)
    for k in range(20):
        for i in range(n):
            C = np.flatnonzero(M[k, i])
            nu = h / len(C)
            diff = Z[k, C] - Z[k, i]
            rhs = 2 * nu * np.sum(diff @ A @ Z[k, i]) + nA(nu * diff.sum(0))
            lhs = N2[k + 1, i] - N2[k, i]
            assert abs(lhs - rhs) <= 1e-10 * R2
            fmax = np.max((Z[k] - Z[k, i]) @ A @ Z[k, i])
            assert lhs >= 2 * h * fmax - 1e-12 * R2
    # (c) Lemma 3.3: hull inclusion, LP oracle
    for k in (0, 1, 5):
        for i in range(n):
            assert in_convex_hull(Z[k], Z[k + 1, i])
    # (d) Lemma 3.1: no collisions in the first 10 layers
    for k in range(11):
        D = np.linalg.norm(Z[k][:, None] - Z[k][None], axis=-1) + np.eye(n)
        assert D.min() > 0
    # (e) Lemma 5.1(i): the token of largest A-norm leads at k = 0
    assert int(traj.leader_layer[np.argmax(nA(Z0))]) == 0
    # (f) Lemma 5.1(ii): leaders frozen after determination
    lead = np.flatnonzero(np.asarray(traj.is_leader))
    for i in lead:
        k0 = int(traj.leader_layer[i])
        drift = np.max(np.abs(Z[k0:, i] - Z[k0, i]))
        assert drift <= 1e-12 * max(1.0, np.max(np.abs(Z[k0, i])))
    # (g) Thm 1.1(i): convergence
    assert np.max(np.linalg.norm(Z[-1] - Z[-2], axis=1)) < 1e-8
    # (h) Thm 1.1(ii) / Prop. 5.3: leader limits = LP vertices of conv(Z^K), one to one
    V = convex_hull_vertices(Z[-1], tol=1e-7)
    Lv = Z[-1, lead]
    assert len(V) == len(lead) == int(traj.num_leaders)
    match = np.linalg.norm(Lv[:, None] - V[None], axis=-1) < 1e-7
    assert np.all(match.sum(0) == 1) and np.all(match.sum(1) == 1)
    # Lemma 4.4 corollary: strict A-Gram dominance between leader limits
    GV = V @ A @ V.T
    off = GV - np.diag(GV)[:, None]
    assert np.all(off[~np.eye(len(V), dtype=bool)] < 0)
    # (i) Prop. 4.3: every token ends within 1e-6 of S \ {0}
    S = None
    if len(V) <= 12:
        S = attracting_set(V, A)
        dist = np.min(np.linalg.norm(Z[-1][:, None] - S[None], axis=-1), axis=1)
        assert dist.max() <= 1e-6
    # (j) Prop. 4.6: eventual cluster label constant over layers K/2..K
    reps, _ = cluster_points(Z[-1], tol=1e-6)
    labels = np.argmin(np.linalg.norm(Z[K // 2:, :, None] - reps[None, None], axis=-1), axis=-1)
    assert np.all(labels == labels[-1])
    return traj


@pytest.mark.parametrize("spd", [False, True], ids=["A=I", "A=SPD"])
def test_invariant_battery(spd):
    for seed in range(N_SEEDS):
        _check_invariants(*_random_case(1000 * spd + seed, spd))


@pytest.mark.slow
@pytest.mark.parametrize("spd", [False, True], ids=["A=I", "A=SPD"])
def test_invariant_battery_100(spd):
    for seed in range(100):
        _check_invariants(*_random_case(5000 + 1000 * spd + seed, spd))


def test_general_A_equals_change_of_variables():
    """§3: with A = B^T B, z~ = B z evolves by the A = I model."""
    rng = np.random.default_rng(7)
    for d in (2, 3, 4):
        Q = rng.standard_normal((d, d))
        A = Q @ Q.T + 0.1 * np.eye(d)
        L = np.linalg.cholesky(A)  # A = L L^T, B = L^T
        Z0 = rng.standard_normal((20, d))
        direct = np.asarray(HardmaxTransformer(0.8, A, num_layers=50).trajectory(Z0).tokens)
        moved = np.asarray(HardmaxTransformer(0.8, None, num_layers=50).trajectory(Z0 @ L).tokens)
        back = moved @ np.linalg.inv(L)
        np.testing.assert_allclose(direct, back, rtol=0, atol=1e-12 * np.abs(direct).max())


# ------------------------------------------------------------------ unit circle


def test_unit_circle_all_leaders():
    rng = np.random.default_rng(11)
    theta = np.sort(rng.uniform(0, 2 * np.pi, 12))
    assert np.min(np.diff(theta)) > 1e-3
    Z0 = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    traj = _run(Z0, 0.7, 100)
    assert traj.attention_sets(0) == [(i,) for i in range(12)]
    assert np.all(np.asarray(traj.tokens) == Z0[None])
    assert np.all(np.asarray(traj.leader_layer) == 0)


# ---------------------------------------------------------------- softmax limit


def _top2_gap(traj):
    """Smallest gap between the two largest scores of any row at any layer."""
    Z = traj.tokens
    G = jnp.einsum("kid,kjd->kij", Z, Z)
    top2 = jax.lax.top_k(G, 2)[0]
    return jnp.min(top2[..., 0] - top2[..., 1])


def test_softmax_converges_to_hardmax():
    n, d, alpha, K = 16, 2, 0.7, 8
    Zs = 2.0 * jax.random.normal(jax.random.PRNGKey(0), (400, n, d))
    hard = jax.vmap(lambda Z: HardmaxTransformer(alpha, num_layers=K).trajectory(Z, store_attention=False))(Zs)
    gaps = jax.vmap(_top2_gap)(hard)
    keep = np.asarray(gaps >= 20 * 1e-3)
    assert keep.sum() >= 20
    Zk, hk = Zs[keep], hard.tokens[keep, -1]
    medians = []
    for tau in (1e-1, 1e-2, 1e-3, 1e-4):
        soft = jax.vmap(lambda Z: SoftmaxTransformer(alpha, tau=tau, num_layers=K)(Z))(Zk)
        err = jnp.max(jnp.abs(soft - hk), axis=(1, 2))
        medians.append(float(jnp.median(err)))
        if tau == 1e-3:
            assert float(err.max()) <= 1e-8
    assert all(a >= b for a, b in zip(medians, medians[1:])), medians
    assert medians[0] > 1e-3  # the limit is not trivial: tau = 0.1 is visibly different


# -------------------------------------------------- synthetic leader statistics


def test_synthetic_leader_statistics():
    expected = {2: 6.6, 4: 23.6, 8: 72.4, 16: 121.7}  # independent reference, docs/paper_000.md
    model = HardmaxTransformer(1.0, num_layers=60)
    count = jax.jit(jax.vmap(lambda Z: (lambda t: (t.num_leaders, t.num_initial_leaders))(
        model.trajectory(Z, store_attention=False))))
    for d, mean in expected.items():
        Zs = jax.random.normal(jax.random.PRNGKey(d), (50, 128, d))
        m, m0 = map(np.asarray, count(Zs))
        assert abs(m.mean() - mean) <= 0.15 * mean, (d, m.mean())
        assert (m0 / m).mean() >= 0.99


# ------------------------------------------------------------------ tie rules


def test_two_way_tie_averages():
    Z = jnp.array([[0.0, 0.5], [1.0, 1.0], [-1.0, 1.0]])
    Lam, mask = hardmax_attention(Z)
    np.testing.assert_array_equal(np.asarray(Lam[0]), [0.0, 0.5, 0.5])
    step = HardmaxTransformer(1.0, num_layers=1)(Z)
    np.testing.assert_allclose(step[0], [0.0, 0.75], atol=1e-15)  # z + 1/2 (mean - z), mean = (0, 1)


def test_self_tie_is_not_a_leader():
    Z = jnp.array([[0.0, 1.0], [1.0, 1.0]])
    traj = _run(Z, 0.5, 1)
    assert traj.attention_sets(0)[0] == (0, 1)
    assert not bool(traj.leads[0, 0]) and bool(traj.leads[0, 1])
    assert not np.allclose(traj.tokens[1, 0], Z[0])


def test_tie_tolerance_is_relative_and_exact_mode():
    # scores of token 0 against 1 and 2 differ by 1e-15 * scale (inside 1e-14) or 1e-12 (outside)
    for eps, tied in ((1e-15, True), (1e-12, False)):
        Z = jnp.array([[0.0, 1.0], [3.0, 2.0], [-3.0, 2.0 + 2 * eps]]) * 10.0
        _, mask = hardmax_attention(Z)
        assert bool(mask[0, 1]) is tied and bool(mask[0, 2])
        _, mask0 = hardmax_attention(Z, tie_rtol=0.0)
        assert not bool(mask0[0, 1])


def test_duplicate_tokens_move_together_and_count_once():
    rng = np.random.default_rng(2)
    base = rng.standard_normal((6, 2))
    Z0 = np.vstack([base, base[[0, 0, 3]]])  # copies of tokens 0 (x2) and 3
    traj = _run(Z0, 0.9, 40)
    Z = np.asarray(traj.tokens)
    assert np.all(Z[:, 6] == Z[:, 0]) and np.all(Z[:, 7] == Z[:, 0]) and np.all(Z[:, 8] == Z[:, 3])
    # the same dynamics without copies has the same leaders (each copy class counted once)
    ref = _run(base, 0.9, 40)
    assert int(traj.num_leaders) == int(ref.num_leaders)
    np.testing.assert_array_equal(traj.leader_layer[:6], ref.leader_layer)
    assert traj.leader_layer[6] == traj.leader_layer[0] and traj.leader_layer[8] == traj.leader_layer[3]
    np.testing.assert_array_equal(traj.first_copy, [0, 1, 2, 3, 4, 5, 0, 0, 3])


# ---------------------------------------------------------------- gradients


def _gap_separated_config():
    keys = jax.random.split(jax.random.PRNGKey(5), 200)
    for key in keys:
        Z = jax.random.normal(key, (16, 2))
        traj = HardmaxTransformer(0.7, num_layers=8).trajectory(Z)
        if float(_top2_gap(traj)) >= 0.03:
            return Z
    raise AssertionError("no gap-separated configuration found")


def test_gradients_match_finite_differences():
    Z0 = _gap_separated_config()

    def loss(alpha, Z, tau=None):
        if tau is None:
            m = HardmaxTransformer(alpha, num_layers=8)
        else:
            m = SoftmaxTransformer(alpha, tau=tau, num_layers=8)
        return jnp.sum(m(Z) ** 2)

    alpha = 0.7
    ga, gZ = jax.grad(loss, argnums=(0, 1))(alpha, Z0)
    eps = 1e-7
    fd_a = (loss(alpha + eps, Z0) - loss(alpha - eps, Z0)) / (2 * eps)
    assert abs(float(ga) - float(fd_a)) <= 1e-5 * abs(float(fd_a))
    assert abs(float(ga)) > 1e-3
    for key in jax.random.split(jax.random.PRNGKey(9), 3):
        v = jax.random.normal(key, Z0.shape)
        fd = (loss(alpha, Z0 + eps * v) - loss(alpha, Z0 - eps * v)) / (2 * eps)
        an = jnp.sum(gZ * v)
        assert abs(float(an) - float(fd)) <= 1e-5 * abs(float(fd))
    # the softmax surrogate (tau = 1e-3) has nearly the same gradient on this configuration
    sa, sZ = jax.grad(loss, argnums=(0, 1))(alpha, Z0, 1e-3)
    assert abs(float(sa) - float(ga)) <= 1e-3 * abs(float(ga))
    assert float(jnp.max(jnp.abs(sZ - gZ))) <= 1e-3 * float(jnp.max(jnp.abs(gZ)))


# ------------------------------------------------------------------- input validation


def test_validation_errors():
    with pytest.raises(ValueError, match="positive definite"):
        HardmaxTransformer(0.5, np.diag([1.0, -1.0]))
    with pytest.raises(ValueError, match="symmetric"):
        HardmaxTransformer(0.5, np.array([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="square"):
        HardmaxTransformer(0.5, np.ones((2, 3)))
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            HardmaxTransformer(bad)
    with pytest.raises(TypeError):
        HardmaxTransformer(True)
    m = HardmaxTransformer(0.5, np.eye(2))
    with pytest.raises(ValueError, match=r"\(n, d\)"):
        m(np.zeros(3))
    with pytest.raises(ValueError, match="R\\^3"):
        m(np.ones((4, 3)))
    with pytest.raises(ValueError, match="NaN"):
        m(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="tau"):
        SoftmaxTransformer(0.5, tau=0.0)
    with pytest.raises(ValueError, match="num_layers"):
        HardmaxTransformer(0.5, num_layers=-1)
    with pytest.raises(ValueError, match="max_vertices"):
        attracting_set(np.random.default_rng(0).standard_normal((30, 2)))
    # NaN under jit is not silent either (eqx.error_if under jax.jit surfaces as JAX's runtime error;
    # under eqx.filter_jit as eqx.EquinoxRuntimeError)
    with pytest.raises(jax.errors.JaxRuntimeError, match="NaN"):
        jax.jit(lambda Z: HardmaxTransformer(0.5, num_layers=2)(Z))(jnp.array([[1.0, jnp.nan]])).block_until_ready()


def test_convex_hull_vertices_lower_dimensional():
    # a flat triangle in R^3 plus interior points: qhull would fail, the LP test does not
    V = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    w = np.random.default_rng(0).dirichlet(np.ones(3), 5)
    P = np.vstack([V, w @ V, V[:1]])
    got = convex_hull_vertices(P)
    assert len(got) == 3
    assert all(np.min(np.linalg.norm(got - v, axis=1)) < 1e-12 for v in V)
    assert not in_convex_hull(V, [0.5, 0.5, 0.5]) and in_convex_hull(V, [1 / 3] * 3)
    # every subset J of three random vertices spans at most one point of S (Lemma 4.1)
    U = np.random.default_rng(1).standard_normal((5, 2)) * 3
    Vs = convex_hull_vertices(U)
    S = attracting_set(Vs)
    for s in S:  # (4.1): max_l <v_l - s, s> = 0 and s in K
        assert abs(np.max((Vs - s) @ s)) < 1e-9 * np.max(Vs ** 2)
        assert in_convex_hull(Vs, s)
    assert len(S) <= 2 ** len(Vs) - 1


def _numpy_layers(Z, alpha, A, K):
    """Eq. (1.1a)-(1.1b) of paper 000 as written, in NumPy: z_i <- z_i + (alpha/(1+alpha)) (mean_{j in C_i} z_j - z_i),
    C_i = argmax_j <A z_i, z_j> (exact ties: the scores below are distinct)."""
    Z = np.array(Z, dtype=float)
    for _ in range(K):
        scores = (Z @ A) @ Z.T
        new = np.empty_like(Z)
        for i in range(len(Z)):
            C = np.flatnonzero(scores[i] == scores[i].max())
            new[i] = Z[i] + alpha / (1 + alpha) * (Z[C].mean(axis=0) - Z[i])
        Z = new
    return Z


@pytest.mark.parametrize("alpha", [0.3, 2.5])
def test_call_at_alpha_other_than_one_matches_numpy(alpha):
    """HardmaxTransformer(alpha)(Z), .step and .trajectory at alpha != 1, where the step alpha/(1+alpha) differs from
    1/(1+alpha): against the NumPy layers above, with A = I and a general A, eagerly and under jit."""
    rng = np.random.default_rng(11)
    Z0 = rng.standard_normal((9, 3))
    for A in (None, np.array([[1.0, 0.3, 0.0], [0.3, 2.0, -0.2], [0.0, -0.2, 0.7]])):
        model = HardmaxTransformer(alpha, A, num_layers=6, tie_rtol=0.0)
        expected = _numpy_layers(Z0, alpha, np.eye(3) if A is None else A, 6)
        np.testing.assert_allclose(np.asarray(model(jnp.asarray(Z0))), expected, rtol=0, atol=1e-12)
        np.testing.assert_allclose(np.asarray(eqx.filter_jit(lambda m, z: m(z))(model, jnp.asarray(Z0))), expected,
                                   rtol=0, atol=1e-12)
        # the other entry points of the same map: one layer (step) and the stored trajectory
        np.testing.assert_allclose(np.asarray(model.step(jnp.asarray(Z0))),
                                   _numpy_layers(Z0, alpha, np.eye(3) if A is None else A, 1), rtol=0, atol=1e-12)
        np.testing.assert_allclose(np.asarray(model.trajectory(jnp.asarray(Z0)).final), expected, rtol=0, atol=1e-12)
