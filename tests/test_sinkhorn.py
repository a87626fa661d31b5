"""Sinkhorn (doubly stochastic) attention: the kernel option, its invariants, its Gaussian closure.

Sander, Ablin, Blondel, Peyre, "Sinkformers: Transformers with doubly stochastic attention" (AISTATS 2022);
Castin, Ablin, Carrillo, Peyre, arXiv 2501.18322 (2025) for the Gaussian closure. Oracles: a NumPy Sinkhorn
in the linear domain, the softmax, closed forms (the Gaussian entropic self-coupling), the envelope-theorem
identity of the gradient flow, and the theorem that a lower-triangular doubly stochastic matrix is I.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

import jaxattn
from jaxattn.analysis import sinkhorn_transport_cost
from jaxattn.fields import (
    GaussianAttention,
    Sinkhorn,
    attend,
    attention_weights,
    empirical_gaussian_state,
    gaussian_moments,
    gaussian_sinkhorn_coupling,
)


def numpy_sinkhorn(logits, iterations):
    """Linear-domain Sinkhorn: `iterations` row normalisations with a column normalisation between two."""
    k = np.exp(logits - logits.max())
    r, c = np.ones(k.shape[0]), np.ones(k.shape[1])
    mass = k.shape[0] / k.shape[1]
    for it in range(iterations):
        r = 1.0 / (k @ c)
        if it < iterations - 1:
            c = mass / (k.T @ r)
    return r[:, None] * k * c[None, :]


def test_one_iteration_is_the_softmax_and_many_give_doubly_stochastic_weights(key):
    logits = 2.0 * jax.random.normal(key, (7, 7))
    np.testing.assert_allclose(attention_weights(logits, normalisation=Sinkhorn(1)), attention_weights(logits),
                               rtol=0, atol=1e-15)
    for k in (2, 3, 10):
        np.testing.assert_allclose(attention_weights(logits, normalisation=Sinkhorn(k)),
                                   numpy_sinkhorn(np.asarray(logits), k), rtol=1e-12, atol=1e-14)
    w = np.asarray(attention_weights(logits, normalisation=Sinkhorn(300)))
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-14)  # rows: exact (the last step)
    np.testing.assert_allclose(w.sum(axis=0), 1.0, atol=1e-12)  # columns: converged
    # rectangular: columns sum to rows / keys
    rect = jax.random.normal(key, (4, 6))
    w = np.asarray(attention_weights(rect, normalisation=Sinkhorn(300)))
    np.testing.assert_allclose(w.sum(axis=0), 4 / 6, atol=1e-12)


def test_attend_equals_weights_times_values_and_is_a_field_option(key):
    k1, k2 = jax.random.split(key)
    x = jax.random.normal(k1, (9, 3))
    q, kk = 1.5 * x, x @ jax.random.normal(k2, (3, 3))
    w = numpy_sinkhorn(np.asarray(q @ kk.T), 25)
    np.testing.assert_allclose(attend(q, kk, x, normalisation=Sinkhorn(25)), w @ np.asarray(x), rtol=1e-12, atol=1e-13)
    # the sphere field: P_x(sum_j P_ij x_j) with P the Sinkhorn weights of beta <x_i, x_j>
    xs = jaxattn.initial.project_to_sphere(x)
    beta = 2.0
    p = numpy_sinkhorn(beta * np.asarray(xs @ xs.T), 25)
    y = p @ np.asarray(xs)
    expected = y - np.sum(y * np.asarray(xs), axis=1, keepdims=True) * np.asarray(xs)
    field = jaxattn.SelfAttention(beta, normalisation=Sinkhorn(25))
    np.testing.assert_allclose(field(0.0, xs), expected, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(field.attention_matrix(0.0, xs)[0], p, rtol=1e-12, atol=1e-14)
    traj = jaxattn.simulate(field, xs, 3.0, ts=4)
    assert np.max(np.abs(np.linalg.norm(np.asarray(traj.xs), axis=-1) - 1)) < 1e-12


def test_causal_sinkhorn_tends_to_the_identity(key):
    """F-26: a lower-triangular doubly stochastic matrix is I (row 1 has one entry, so column 1 is e_1; induct).
    The iterations converge to it, slowly (the off-diagonal mass decays like 1/k), never to anything else."""
    logits = jax.random.normal(key, (6, 6))
    errs = [float(jnp.max(jnp.abs(attention_weights(logits, normalisation=Sinkhorn(k), causal=True) - jnp.eye(6))))
            for k in (10, 100, 1000)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 5e-3, errs
    assert 5 < errs[1] / errs[2] < 20, errs  # ~1/k: a tenth per decade
    w = attention_weights(logits, normalisation=Sinkhorn(1000), causal=True)
    assert float(jnp.max(jnp.abs(jnp.triu(w, 1)))) == 0.0  # the mask holds exactly


def test_energy_identity_and_monotone_transport_cost():
    """F-24: for symmetric B = Q^T K and V = B the Sinkformer is the gradient descent of OT_1(mu, mu)/2:
    d/dt OT_1 = -2 mean_i |dx_i/dt|^2, and OT_1 decreases along the flow."""
    b = np.array([[0.6, 0.2], [0.2, 0.3]])
    x = jax.random.normal(jax.random.PRNGKey(3), (120, 2))
    it = Sinkhorn(100)
    field = jaxattn.EuclideanSelfAttention(np.eye(2), b, b, normalisation=it)

    @jax.jit
    def cost(x):
        return sinkhorn_transport_cost(x @ b @ x.T, it)

    v = field(0.0, x)
    rate = jnp.sum(jax.grad(cost)(x) * v)
    np.testing.assert_allclose(rate, -2 * jnp.mean(jnp.sum(v * v, axis=1)), rtol=1e-6)
    # along a solve: decreasing, and its slope at t = 0 by a time difference (independent of autodiff)
    h = 1e-4
    traj = jaxattn.simulate(field, x, 2.0, ts=jnp.array([0.0, h, 0.5, 1.0, 1.5, 2.0]), rtol=1e-10, atol=1e-10)
    costs = np.asarray(jax.vmap(cost)(traj.xs))
    assert np.all(np.diff(costs) < 0), costs
    np.testing.assert_allclose((costs[1] - costs[0]) / h, rate, rtol=2e-4)


def test_heat_limit_of_the_gaussian_self_coupling():
    """F-25: with cost |x - y|^2/eps the entropic self-coupling of N(0, 1) has E[y|x] = c x, (c - 1)/eps -> -1/4
    (the heat flow of the Sinkformer limit); the closed form against Sinkhorn attention on 500 quantile points."""
    def slope(eps):
        return float(gaussian_sinkhorn_coupling(jnp.eye(1), (2 / eps) * jnp.eye(1))[0, 0])

    np.testing.assert_allclose((slope(1e-3) - 1) / 1e-3, -0.24997, atol=1e-5)
    rates = [(slope(e) - 1) / e for e in (0.4, 0.1, 0.01, 1e-3)]
    assert np.all(np.diff(rates) < 0) and abs(rates[-1] + 0.25) < 1e-4, rates
    np.testing.assert_allclose(slope(0.1), 4 / (0.1 + np.sqrt(0.01 + 16)), rtol=1e-14)  # 1-d formula
    n, eps = 500, 0.1
    x = norm.ppf((np.arange(n) + 0.5) / n)
    x /= np.sqrt(np.mean(x**2))  # unit second moment, as N(0, 1)
    y = np.asarray(attend(jnp.asarray(2 / eps * x[:, None]), jnp.asarray(x[:, None]), jnp.asarray(x[:, None]),
                          normalisation=Sinkhorn(300)))[:, 0]
    fitted = np.sum(x * y) / np.sum(x * x)
    np.testing.assert_allclose((fitted - 1) / eps, (slope(eps) - 1) / eps, atol=2e-3)


def test_gaussian_sinkhorn_field_matches_particles():
    """F-23: the velocity of Sinkhorn attention on 1000 Gaussian samples is affine, x -> M x + b, with M the
    closed form V S^T Sigma^-1 at the empirical covariance (<= 0.02 relative), equal to Castin et al.'s
    V A^-T Sigma^-1 C_Sigma; b = V m - M m (translation covariance of the coupling)."""
    q = np.array([[0.9, 0.3], [-0.2, 0.7]])
    k = np.array([[0.5, -0.4], [0.3, 0.8]])
    v = np.array([[1.0, 0.3], [-0.2, 0.8]])
    cov = np.array([[1.0, 0.3], [0.3, 0.5]])
    rng = np.random.default_rng(0)
    x = np.array([0.4, -0.3]) + rng.standard_normal((1000, 2)) @ np.linalg.cholesky(cov).T
    vel = np.asarray(jaxattn.EuclideanSelfAttention(q, k, v, normalisation=Sinkhorn(60))(0.0, x))
    coef, *_ = np.linalg.lstsq(np.c_[x, np.ones(len(x))], vel, rcond=None)
    m_hat, s_hat = gaussian_moments(empirical_gaussian_state(x))
    gauss = GaussianAttention(q, k, v, normalisation="sinkhorn")
    M, b = gauss.affine_velocity(m_hat, s_hat)
    assert np.linalg.norm(coef[:2].T - M) / np.linalg.norm(M) < 0.02
    assert np.linalg.norm(coef[2] - b) / np.linalg.norm(b) < 0.05
    # the authors' form with inverses
    a = k.T @ q
    w, u = np.linalg.eigh(np.asarray(s_hat))
    r = (u * np.sqrt(w)) @ u.T
    w2, u2 = np.linalg.eigh(4 * r @ a.T @ np.asarray(s_hat) @ a @ r + np.eye(2))
    c_sigma = 0.5 * (r @ (u2 * np.sqrt(w2)) @ u2.T @ np.linalg.inv(r) - np.eye(2))
    np.testing.assert_allclose(M, v @ np.linalg.pinv(a.T) @ np.linalg.pinv(np.asarray(s_hat)) @ c_sigma,
                               rtol=1e-12, atol=1e-14)


def test_gradients_through_the_iterations(key):
    x = jax.random.normal(key, (6, 2))

    def loss(beta):
        return jnp.sum(attend(beta * x, x, x, normalisation=Sinkhorn(40)) ** 2)

    h = 1e-6
    np.testing.assert_allclose(jax.grad(loss)(1.3), (loss(1.3 + h) - loss(1.3 - h)) / (2 * h), rtol=1e-7)
    # vmap over an ensemble equals a loop
    xb = jax.random.normal(key, (3, 6, 2))
    out = jax.vmap(lambda y: attend(y, y, y, normalisation=Sinkhorn(10)))(xb)
    for i in range(3):
        np.testing.assert_allclose(out[i], attend(xb[i], xb[i], xb[i], normalisation=Sinkhorn(10)), atol=1e-14)


@pytest.mark.parametrize("bad", [0, -3])
def test_bad_iterations_raise_eagerly_and_under_jit(bad):
    with pytest.raises(ValueError, match="iterations must be >= 1"):
        Sinkhorn(bad)
    with pytest.raises(ValueError, match="iterations must be >= 1"):
        jax.jit(lambda x: attend(x, x, x, normalisation=Sinkhorn(bad)))(jnp.ones((2, 2)))


@pytest.mark.parametrize("bad", [float("nan"), 2.5, True, "10"])
def test_non_integer_iterations_raise(bad):
    with pytest.raises(TypeError, match="positive int"):
        Sinkhorn(bad)


def test_bad_normalisation_choices_raise():
    with pytest.raises(ValueError, match="Sinkhorn"):
        attend(jnp.ones((2, 2)), jnp.ones((2, 2)), jnp.ones((2, 2)), normalisation="sinkhorn")
    with pytest.raises(ValueError, match="dense kernel only"):
        jaxattn.SelfAttention(1.0, normalisation=Sinkhorn(5), evaluator="harmonics")
    with pytest.raises(ValueError, match="'softmax' or jaxattn.fields.Sinkhorn"):
        jaxattn.EuclideanSelfAttention(np.eye(2), np.eye(2), np.eye(2), normalisation="mean")
    with pytest.raises(ValueError, match="'softmax' or 'sinkhorn'"):
        GaussianAttention(np.eye(2), np.eye(2), np.eye(2), normalisation="mean")
    with pytest.raises(ValueError, match="square"):
        sinkhorn_transport_cost(jnp.ones((2, 3)))


def test_field_with_sinkhorn_is_a_pytree_with_a_static_normalisation():
    field = jaxattn.SelfAttention(1.0, normalisation=Sinkhorn(7))
    leaves = jax.tree_util.tree_leaves(field)
    assert all(eqx.is_array(leaf) for leaf in leaves)
    assert field.normalisation == Sinkhorn(7) and hash(Sinkhorn(7)) == hash(Sinkhorn(7))


def test_sinkhorn_fields_are_not_replaced_by_the_softmax_gram_formulation():
    """The library picks Gram space for (SA) with Q = K = V = I; the Sinkhorn field must keep its own dynamics."""
    from jaxattn.fields import closes_on_gram, gram_formulation

    assert closes_on_gram(jaxattn.SelfAttention(2.0))
    field = jaxattn.SelfAttention(2.0, normalisation=Sinkhorn(10))
    assert not closes_on_gram(field)
    x0 = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(0), 8, 64)  # d > n: Gram would be preferred
    assert gram_formulation(field, x0)[0] is field
