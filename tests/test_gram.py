"""(SA) in Gram space (jaxattn.fields.GramSelfAttention) against independent oracles.

* the token-space field: dG/dt = V X^T + X V^T with V the (SA) velocity of SelfAttention;
* the token-space solve: G(t) = X(t) X(t)^T at rtol 1e-10 (two formulations, two error controls);
* invariants of G = X X^T: diag(G) = 1, exact symmetry, positive semidefinite, rank <= d (span{x_j(0)}
  is invariant);
* Theorem 4.6 of Geshkovski et al. 2023 (perspective): from G0 = I every off-diagonal entry is
  gamma_beta(t) of eq. (4.8), and the values of gamma for n = 8;
* paper_002.phase_diagram: the Gram path (auto for Q = K = V = I, d > n) and the token path give the
  same clustered-pair fractions on the same draws.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxattn
from jaxattn.analysis import (
    clustered_pair_fraction,
    clustered_pair_fraction_of_gram,
    gamma_trajectory,
    pairwise_inner_products,
)
from jaxattn.fields import GramSelfAttention, SelfAttention
from jaxattn.manifolds import retract_to_unit_diagonal
from jaxattn.solve import solve_ensemble
from jaxattn.studies import paper_002 as p2


def _tokens(seed, n, d, batch=None):
    return jaxattn.initial.uniform_sphere(jax.random.PRNGKey(seed), n, d, batch=batch)


@pytest.mark.parametrize("n, d, beta", [(6, 9, 2.0), (7, 3, 5.0), (5, 5, 0.3)])
def test_velocity_is_the_gram_image_of_the_token_velocity(n, d, beta):
    x = _tokens(n + d, n, d)
    v = SelfAttention(beta).velocity(0.0, x)
    expected = v @ x.T + x @ v.T
    got = GramSelfAttention(beta).velocity(0.0, x @ x.T)
    np.testing.assert_allclose(got, expected, atol=1e-14)
    assert np.array_equal(np.asarray(got), np.asarray(got).T)  # S + S^T: exactly symmetric


def test_velocity_matches_a_numpy_double_loop():
    """dG_ij/dt = sum_k A_ik G_kj - D_i G_ij + (i <-> j), D_i = sum_k A_ik G_ik / G_ii (written out)."""
    x = np.asarray(_tokens(3, 5, 7))
    g, beta, n = x @ x.T, 1.7, 5
    a = np.exp(beta * g)
    a /= a.sum(axis=1, keepdims=True)
    s = np.zeros((n, n))
    for i in range(n):
        di = sum(a[i, k] * g[i, k] for k in range(n)) / g[i, i]
        for j in range(n):
            s[i, j] = sum(a[i, k] * g[k, j] for k in range(n)) - di * g[i, j]
    np.testing.assert_allclose(GramSelfAttention(beta).velocity(0.0, jnp.asarray(g)), s + s.T, atol=1e-14)


def test_retraction_is_the_gram_matrix_of_normalised_tokens():
    y = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (3, 6, 4)))
    unit = y / np.linalg.norm(y, axis=-1, keepdims=True)
    g = retract_to_unit_diagonal(jnp.asarray(y @ np.swapaxes(y, -1, -2)))
    np.testing.assert_allclose(g, unit @ np.swapaxes(unit, -1, -2), atol=1e-14)
    assert np.array_equal(np.asarray(g), np.swapaxes(np.asarray(g), -1, -2))


@pytest.mark.parametrize("n, d", [(8, 20), (8, 3)])
def test_gram_solve_equals_the_token_solve(n, d):
    """G(t) of the Gram solve vs X(t) X(t)^T of the token solve, both at rtol = atol = 1e-10."""
    x0 = _tokens(1, n, d, batch=3)
    ts = jnp.linspace(0.0, 12.0, 13)
    kw = dict(ts=ts, rtol=1e-10, atol=1e-10)
    xs = jaxattn.simulate(SelfAttention(3.0), x0, 12.0, **kw).xs
    gs = jaxattn.simulate(GramSelfAttention(3.0), pairwise_inner_products(x0), 12.0, **kw).xs
    np.testing.assert_allclose(gs, pairwise_inner_products(xs), atol=2e-8)
    assert float(jnp.max(jnp.abs(gs[:, 0] - pairwise_inner_products(x0)))) < 1e-15  # G0 retracted at round-off
    # invariants of a Gram matrix of unit tokens
    g = np.asarray(gs)
    np.testing.assert_allclose(np.diagonal(g, axis1=-2, axis2=-1), 1.0, atol=1e-13)
    assert np.array_equal(g, np.swapaxes(g, -1, -2))
    eig = np.linalg.eigvalsh(g)
    assert eig.min() > -1e-9
    if d < n:  # X(t) stays in span{x_j(0)}: rank <= d
        assert np.max(np.abs(eig[..., : n - d])) < 1e-9


def test_theorem_4_6_orthogonal_start():
    """From G0 = I (x_i(0) = e_i) every off-diagonal entry equals gamma_beta(t) of eq. (4.8)."""
    n, beta = 8, 4.0
    ts = jnp.array([0.0, 0.5, 1.0, 2.0, 4.0, 8.0])
    gs = np.asarray(jaxattn.simulate(GramSelfAttention(beta), jnp.eye(n), 8.0, ts=ts, rtol=1e-11, atol=1e-11).xs)
    off = gs[:, ~np.eye(n, dtype=bool)]
    assert np.ptp(off, axis=1).max() < 1e-12  # one angle for every pair (the theorem's symmetry)
    np.testing.assert_allclose(off[:, 0], gamma_trajectory(beta, n, ts), atol=1e-9)
    # the values printed for SA, beta = 4, n = 8 (Radau/DOP853 at rtol 1e-11, independent of jaxattn)
    np.testing.assert_allclose(off[1:, 0], [0.01759294, 0.03837928, 0.09365213, 0.33168384, 0.99792612],
                               atol=2e-8)


def test_simulate_rejects_what_is_not_a_gram_matrix():
    field = GramSelfAttention(1.0)
    with pytest.raises(ValueError, match="square"):
        jaxattn.simulate(field, jnp.ones((3, 4)), 1.0)
    with pytest.raises(ValueError, match="Gram matrix of unit tokens"):
        jaxattn.simulate(field, 2.0 * jnp.eye(3), 1.0)
    bad = jnp.eye(3).at[0, 1].set(0.5)
    with pytest.raises(ValueError, match="Gram matrix of unit tokens"):
        jaxattn.simulate(field, bad, 1.0)


def test_pair_fraction_in_solve_equals_that_of_saved_states():
    g0 = pairwise_inner_products(_tokens(2, 10, 30, batch=4))
    ts = jnp.linspace(0.0, 10.0, 6)
    kw = dict(ts=ts, rtol=1e-7, atol=1e-7)
    inside = solve_ensemble(GramSelfAttention(6.0), g0, 10.0, in_solve=True,
                            observe=lambda t, g: {"p": clustered_pair_fraction_of_gram(g, 1e-2)}, **kw)
    saved = solve_ensemble(GramSelfAttention(6.0), g0, 10.0,
                           observe=lambda t, g: {"p": clustered_pair_fraction_of_gram(g, 1e-2)}, **kw)
    np.testing.assert_array_equal(inside["p"], saved["p"])


def test_pair_fraction_of_gram_equals_that_of_tokens():
    x = _tokens(5, 12, 4, batch=6)
    np.testing.assert_array_equal(clustered_pair_fraction_of_gram(pairwise_inner_products(x), 0.3),
                                  clustered_pair_fraction(x, 0.3))


def test_phase_diagram_gram_and_token_paths_agree(tmp_path):
    """Same draws, both at rtol 1e-10: the per-member fractions agree except for pairs at the threshold
    (a pair whose <x_i, x_j> is within the solvers' error of 1 - delta may fall either side)."""
    betas, ts, n, d, batch, delta = [1.0, 4.0, 8.0], np.linspace(0.0, 12.0, 7), 8, 16, 6, 1e-2
    kw = dict(n=n, d=d, batch=batch, delta=delta, rtol=1e-10, progress=False)
    auto = p2.phase_diagram(betas, ts, directory=tmp_path / "auto", **kw)
    tokens = p2.phase_diagram(betas, ts, directory=tmp_path / "tokens", formulation="tokens", **kw)
    assert auto.attrs["formulation"] == "gram" and tokens.attrs["formulation"] == "tokens"
    pa, pt = auto.pair_fraction.values, tokens.pair_fraction.values
    pair = 1.0 / (n * (n - 1))
    assert np.max(np.abs(pa - pt)) <= 2 * pair + 1e-12  # at most one unordered pair flips
    assert np.mean(pa == pt) > 0.98
    assert 0.05 < float(auto.probability.mean()) < 0.95  # a non-trivial diagram (both phases present)


@pytest.mark.parametrize("kq, value, d, n, expected", [
    ("identity", "identity", 128, 32, True), ("identity", "identity", 32, 32, False),
    ("identity", "identity", 2, 32, False), ("ginibre", "ginibre", 128, 32, False), ("goe", "qk", 128, 32, False)])
def test_gram_path_is_chosen_where_it_is_exact_and_cheaper(kq, value, d, n, expected):
    assert p2.phase_diagrams.uses_gram(kq, value, d, n) is expected
    assert p2.phase_diagrams.uses_gram(kq, value, d, n, "tokens") is False


def test_gram_formulation_needs_identity_matrices(tmp_path):
    with pytest.raises(ValueError, match="Q = K = V = I"):
        p2.phase_diagrams.uses_gram("ginibre", "identity", 128, 32, "gram")
    with pytest.raises(ValueError, match="formulation must be one of"):
        p2.phase_diagram([1.0], [0.0, 1.0], directory=tmp_path, formulation="cholesky", progress=False)


def test_gram_formulation_is_a_library_decision():
    """gram_formulation: Gram space where exact and cheaper (SA, Q = K = V = I, d > n), the tokens otherwise."""
    from jaxattn.fields import gram_formulation

    x0 = _tokens(1, 4, 6, batch=2)
    field, g0 = gram_formulation(SelfAttention(2.0), x0)
    assert isinstance(field, GramSelfAttention) and float(field.beta) == 2.0
    np.testing.assert_array_equal(g0, pairwise_inner_products(x0))
    for kept in (SelfAttention(2.0, causal=True), SelfAttention(2.0, V=-jnp.eye(6)),
                 jaxattn.UnnormalisedSelfAttention(2.0)):
        assert gram_formulation(kept, x0)[0] is kept
    assert gram_formulation(SelfAttention(2.0), _tokens(1, 8, 6))[0].manifold is jaxattn.manifolds.SPHERE  # d < n
    assert isinstance(gram_formulation(SelfAttention(2.0), _tokens(1, 8, 6), "gram")[0], GramSelfAttention)
    with pytest.raises(ValueError, match="Q = K = V = I"):
        gram_formulation(SelfAttention(2.0, causal=True), x0, "gram")
