"""Analysis functions on configurations with known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxattn
from jaxattn import analysis


def test_cluster_count_on_sphere_known_configuration(key):
    centres = jnp.eye(3)
    noise = 1e-3 * jax.random.normal(key, (3, 5, 3))
    x = jaxattn.initial.project_to_sphere((centres[:, None, :] + noise).reshape(15, 3))
    assert int(analysis.count_clusters(x, delta=1e-3)) == 3
    labels = np.asarray(analysis.cluster_labels(x, delta=1e-3))
    assert list(labels) == [0] * 5 + [1] * 5 + [2] * 5
    # a chain of close points is one cluster under single linkage
    angles = jnp.linspace(0, 0.2, 21)
    chain = jnp.stack([jnp.cos(angles), jnp.sin(angles), jnp.zeros(21)], 1)
    assert int(analysis.count_clusters(chain, delta=1e-4)) == 1  # neighbours 0.01 rad apart
    assert int(analysis.count_clusters(chain, delta=1e-6)) == 21
    # batched over leading axes
    both = jnp.stack([x, x[::-1]])
    np.testing.assert_array_equal(analysis.count_clusters(both), [3, 3])


def test_circle_clusters_wrap_around():
    theta = jnp.array([0.0, 0.02, 6.27, 3.0, 3.05, 1.5])
    labels = np.asarray(analysis.cluster_labels(theta, manifold="circle", gap=0.1))
    assert labels[0] == labels[1] == labels[2]
    assert labels[3] == labels[4] != labels[0]
    assert int(analysis.count_clusters(theta, manifold="circle")) == 3
    assert int(analysis.count_clusters(jnp.zeros(5), manifold="circle")) == 1
    regular = jnp.arange(8) * 2 * jnp.pi / 8
    assert int(analysis.count_clusters(regular, manifold="circle")) == 8


def test_energy_bounds_and_values():
    beta = 2.0
    x = jnp.tile(jnp.array([[0.0, 0.0, 1.0]]), (6, 1))
    np.testing.assert_allclose(analysis.interaction_energy(x, beta), np.exp(beta) / (2 * beta), rtol=1e-14)
    anti = jnp.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    np.testing.assert_allclose(analysis.interaction_energy(anti, beta), (2 * np.exp(beta) + 2 * np.exp(-beta)) / (8 * beta))
    # finite at beta = 1e3 (log-space evaluation)
    assert np.isfinite(float(analysis.interaction_energy(anti, 700.0)))


def test_energy_overflow_raises_and_log_energy_is_exact():
    """Consensus on S^2: E_beta = e^beta / (2 beta) exactly, so log E = beta - log(2 beta) for every beta,
    including beta = 1000 where E itself is beyond float64: the plain energy raises there, never inf."""
    x = jnp.tile(jnp.array([[0.0, 0.0, 1.0]]), (6, 1))
    for beta in (2.0, 1000.0):
        np.testing.assert_allclose(analysis.interaction_energy(x, beta, log=True), beta - np.log(2 * beta), rtol=1e-14)
    with pytest.raises(ValueError, match="overflows"):
        analysis.interaction_energy(x, 1000.0)
    with pytest.raises(ValueError, match="overflows"):  # tokens far off the sphere
        analysis.interaction_energy(30.0 * x, 2.0)


def test_attention_matrix_rows_and_pairs(key):
    x = jaxattn.initial.uniform_sphere(key, 6, 3)
    P = analysis.attention_matrix(jaxattn.SelfAttention(3.0), x)
    np.testing.assert_allclose(P.sum(-1), 1.0, atol=1e-14)
    G = np.asarray(x @ x.T)
    expected = np.exp(3 * G) / np.exp(3 * G).sum(1, keepdims=True)
    np.testing.assert_allclose(P, expected, rtol=1e-13)
    causal = analysis.attention_matrix(jaxattn.SelfAttention(3.0, causal=True), x)
    assert np.all(np.triu(np.asarray(causal), 1) == 0)
    stats = analysis.inner_product_statistics(x)
    off = G[~np.eye(6, dtype=bool)]
    np.testing.assert_allclose([stats["mean"], stats["min"], stats["max"]], [off.mean(), off.min(), off.max()])
    frac = analysis.clustered_pair_fraction(jnp.concatenate([x[:1], x[:1], x[1:3]]), 1e-9)
    np.testing.assert_allclose(frac, 2 / 12)


def test_trajectory_attention_shapes(key):
    x0 = jaxattn.initial.uniform_sphere(key, 5, 3, batch=2)
    traj = jaxattn.simulate(jaxattn.SelfAttention(1.0), x0, 1.0, ts=3)
    P = np.asarray(analysis.trajectory_attention(traj))
    assert P.shape == (2, 3, 5, 5)
    # each slice is softmax_j(<x_i, x_j>) of that member's state at that time (a NumPy oracle)
    xs = np.asarray(traj.xs)
    logits = np.einsum("btid,btjd->btij", xs, xs)
    expected = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(P, expected, rtol=1e-13)
    assert np.abs(xs[:, -1] - xs[:, 0]).max() > 1e-3  # the states (and so the matrices) differ over time
