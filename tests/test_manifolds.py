"""Manifolds as objects (jaxattn.manifolds): each owns its shape rule, configuration checks, tangent
projection and retraction, and a new space is one new class.

Oracles: orthogonality and idempotence of the projections, the constraint sets reached by the
retractions, the eigenvalues of a matrix that is not a Gram matrix, and for a product space (a
direction on S^2 with a radius per token, written here as a user would) the exact solution of
du/dt = P_u e_1, dr/dt = -r: tan(phi/2) = tan(phi0/2) e^{-t} for the angle phi to e_1, r = r0 e^{-t}.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxattn
from jaxattn._validate import Check, xp
from jaxattn.manifolds import (
    CIRCLE,
    EUCLIDEAN,
    GRAM,
    SPHERE,
    AbstractManifold,
    Sphere,
    as_manifold,
    tangent_projection,
)

KEY = jax.random.PRNGKey(3)
X = jaxattn.initial.uniform_sphere(KEY, 6, 3)


def test_fields_declare_their_manifold_objects():
    assert jaxattn.SelfAttention(1.0).manifold is SPHERE
    assert jaxattn.UnnormalisedSelfAttention(1.0).manifold is SPHERE
    assert jaxattn.CircleSelfAttention(1.0).manifold is CIRCLE
    assert jaxattn.Kuramoto().manifold is CIRCLE
    assert jaxattn.EuclideanSelfAttention(jnp.eye(2), jnp.eye(2), jnp.eye(2)).manifold is EUCLIDEAN
    assert jaxattn.GramSelfAttention(1.0).manifold is GRAM
    assert [str(m) for m in (SPHERE, CIRCLE, EUCLIDEAN, GRAM)] == ["sphere", "circle", "euclidean", "gram"]
    assert as_manifold("gram") is GRAM and as_manifold(SPHERE) is SPHERE
    with pytest.raises(ValueError, match="manifold must be"):
        as_manifold("torus")


def test_name_comparisons_fail_loudly():
    """``field.manifold == "sphere"`` of earlier versions would now be False without a word: it raises."""
    with pytest.raises(TypeError, match="isinstance"):
        _ = jaxattn.SelfAttention(1.0).manifold == "sphere"
    assert SPHERE == Sphere() and SPHERE != CIRCLE and hash(SPHERE) == hash(Sphere())


def test_projections_are_orthogonal_and_idempotent():
    k1, k2 = jax.random.split(KEY)
    v = jax.random.normal(k1, X.shape)
    p = SPHERE.project(X, v)
    np.testing.assert_allclose(jnp.sum(p * X, axis=-1), 0.0, atol=1e-14)  # tangent to every x_i
    np.testing.assert_allclose(SPHERE.project(X, p), p, atol=1e-14)
    np.testing.assert_allclose(jnp.sum((v - p) * p), 0.0, atol=1e-12)  # orthogonal projection
    np.testing.assert_array_equal(p, tangent_projection(X, v))
    G = X @ X.T
    w = jax.random.normal(k2, G.shape)
    q = GRAM.project(G, w)
    np.testing.assert_array_equal(q, q.T)
    np.testing.assert_array_equal(jnp.diagonal(q), 0.0)  # keeps diag(G) = 1 to first order
    np.testing.assert_allclose(jnp.sum((w - q) * q), 0.0, atol=1e-12)
    for flat in (CIRCLE, EUCLIDEAN):
        np.testing.assert_array_equal(flat.project(X, v), v)
        np.testing.assert_array_equal(flat.retract(v), v)
        assert not flat.constrained


def test_retractions_reach_the_constraint_sets():
    y = 1.3 * X + 0.01
    np.testing.assert_allclose(jnp.linalg.norm(SPHERE.retract(y), axis=-1), 1.0, atol=1e-15)
    g = SPHERE.retract(y) @ SPHERE.retract(y).T
    np.testing.assert_allclose(GRAM.retract(y @ y.T), g, atol=1e-14)  # the Gram image of x -> x/|x|


def test_shape_rules():
    with pytest.raises(ValueError, match=r"\(n,\) array of angles"):
        CIRCLE.check_shape((3, 2))
    with pytest.raises(ValueError, match="square"):
        GRAM.check_shape((3, 2))
    with pytest.raises(ValueError, match="d >= 2"):
        SPHERE.check_shape((3, 1))
    with pytest.raises(ValueError, match="n >= 1"):
        EUCLIDEAN.check_shape((0, 2))
    assert SPHERE.token_dim((4, 3)) == 3 and GRAM.token_dim((4, 4)) is None
    assert SPHERE.batch_shape(jnp.zeros((7, 4, 3))) == (7,) and CIRCLE.batch_shape(jnp.zeros((7, 4))) == (7,)


NOT_GRAM = jnp.array([[1.0, 2.0], [2.0, 1.0]])  # symmetric, unit diagonal, eigenvalues -1 and 3


def test_gram_rejects_matrices_that_are_not_gram_matrices():
    """Symmetric with unit diagonal is not enough: G = X X^T is positive semidefinite."""
    field = jaxattn.GramSelfAttention(1.0)
    with pytest.raises(ValueError, match="positive semidefinite.*smallest eigenvalue -1"):
        jaxattn.simulate(field, NOT_GRAM, 1.0)
    with pytest.raises(RuntimeError, match="positive semidefinite"):
        jax.block_until_ready(jax.jit(lambda g: jaxattn.simulate(field, g, 1.0, ts=2).final)(NOT_GRAM))
    # a rank-deficient Gram matrix (n = 6 tokens in d = 3) is accepted: its zero eigenvalues are round-off
    G = X @ X.T
    assert float(jnp.min(jnp.linalg.eigvalsh(G))) < 1e-12
    jaxattn.simulate(field, G, 0.5, ts=2)
    with pytest.raises(ValueError, match="symmetric with unit diagonal"):
        jaxattn.simulate(field, G + jnp.eye(6) * 0.1, 1.0)


def test_gram_gradient_is_tangent_and_first_order_exact():
    """d obs / d G0 is the Riemannian gradient: symmetric with zero diagonal, and
    obs(retract(G0 + h v)) - obs(G0) = h <g, v> + O(h^2) along a tangent v."""
    field = jaxattn.GramSelfAttention(2.0)
    Y = jaxattn.initial.uniform_sphere(KEY, 4, 6)
    G0 = Y @ Y.T  # full rank: a small tangent step stays positive definite
    obs = lambda tr: jnp.sum(tr.final[0] * jnp.arange(4.0))  # noqa: E731
    kw = dict(ts=2, rtol=1e-11, atol=1e-11)
    value, g = jaxattn.value_and_grad_of(obs, field, G0, 1.0, **kw)
    np.testing.assert_array_equal(g.x0, g.x0.T)
    np.testing.assert_array_equal(jnp.diagonal(g.x0), 0.0)
    v = GRAM.project(G0, jax.random.normal(KEY, G0.shape))
    h = 1e-5
    ends = [obs(jaxattn.simulate(field, GRAM.retract(G0 + s * h * v), 1.0, **kw)) for s in (1, -1)]
    np.testing.assert_allclose((ends[0] - ends[1]) / (2 * h), jnp.sum(g.x0 * v), rtol=1e-6)


class DirectionRadius(AbstractManifold):
    """A direction u_i on S^{d-1} and a radius r_i > 0 per token, packed as (n, d + 1) = [u_i, r_i]."""

    name: ClassVar[str] = "direction-radius"
    event_ndim: ClassVar[int] = 2
    variable: ClassVar[str] = "x"
    event_dims: ClassVar[tuple[str, ...]] = ("token", "dim")
    constrained: ClassVar[bool] = True

    def check_shape(self, shape):
        if len(shape) != 2 or shape[1] < 3:
            raise ValueError(f"a configuration is (n, d + 1) = [u_i, r_i] with d >= 2; got shape {shape}")

    def token_dim(self, shape):
        return shape[1] - 1

    def constraint_checks(self, x, what="x0"):
        m = xp(x)
        return [*SPHERE.constraint_checks(x[..., :-1], what),
                Check(~m.all(x[..., -1] > 0), f"{what}: every radius r_i must be > 0")]

    def project(self, x, v):
        return jnp.concatenate([tangent_projection(x[..., :-1], v[..., :-1]), v[..., -1:]], axis=-1)

    def retract(self, x):
        return jnp.concatenate([SPHERE.retract(x[..., :-1]), x[..., -1:]], axis=-1)


class TowardsPole(jaxattn.AbstractField):
    """du_i/dt = P_{u_i} e_1, dr_i/dt = -r_i on :class:`DirectionRadius`."""

    manifold: ClassVar[DirectionRadius] = DirectionRadius()
    dim: ClassVar[None] = None
    num_tokens: ClassVar[None] = None

    def velocity(self, t, x):
        u = x[:, :-1]
        e1 = jnp.zeros_like(u).at[:, 0].set(1.0)
        return self.manifold.project(x, jnp.concatenate([e1, -x[:, -1:]], axis=1))


def test_a_product_manifold_is_one_class(tmp_path):
    """Ensembles, retraction, checks, saving and the x0 gradient all go through the manifold."""
    r0 = jnp.array([0.5, 1.0, 2.0, 3.0, 1.5, 0.7])
    x0 = jnp.concatenate([X, r0[:, None]], axis=1)
    traj = jaxattn.simulate(TowardsPole(), jnp.stack([x0, x0]), 2.0, ts=3, rtol=1e-10, atol=1e-10,
                            ensemble="batched")
    final = traj.final[1]
    np.testing.assert_allclose(final[:, -1], r0 * np.exp(-2.0), rtol=1e-8)
    phi0, phi = np.arccos(np.asarray(X[:, 0])), np.arccos(np.clip(np.asarray(final[:, 0]), -1, 1))
    np.testing.assert_allclose(np.tan(phi / 2), np.tan(phi0 / 2) * np.exp(-2.0), rtol=1e-7)
    np.testing.assert_allclose(jnp.linalg.norm(traj.xs[..., :-1], axis=-1), 1.0, atol=1e-14)
    with pytest.raises(ValueError, match="radius"):
        jaxattn.simulate(TowardsPole(), x0.at[0, -1].set(-1.0), 1.0)
    with pytest.raises(RuntimeError, match="off the unit sphere"):
        jax.block_until_ready(jax.jit(lambda x: jaxattn.simulate(TowardsPole(), x, 1.0, ts=2).final)(2 * x0))
    path = traj.save(tmp_path / "product.nc")
    back = jaxattn.load_trajectory(path, field=TowardsPole())
    np.testing.assert_array_equal(back.xs, traj.xs)
    _, g = jaxattn.value_and_grad_of(lambda tr: jnp.sum(tr.final[:, 0]), TowardsPole(), x0, 1.0, ts=2)
    np.testing.assert_allclose(jnp.sum(g.x0[:, :-1] * X, axis=-1), 0.0, atol=1e-12)  # tangent u-part


def test_fields_declared_with_a_manifold_name_still_work():
    class Decay(jaxattn.AbstractField):
        manifold = "euclidean"
        dim: ClassVar[None] = None
        num_tokens: ClassVar[None] = None

        def velocity(self, t, x):
            return -x

    assert Decay.manifold is EUCLIDEAN
    np.testing.assert_allclose(jaxattn.simulate(Decay(), jnp.ones((2, 2)), 1.0, ts=2, rtol=1e-10,
                                                atol=1e-10).final, np.exp(-1.0), rtol=1e-8)


def test_parameters_are_checked_by_declaration_not_by_name():
    """The solver enforces each parameter's declared rule, also for a field whose ``__init__`` was
    bypassed (as when a trajectory file is loaded) and under jit."""
    bad = eqx.tree_at(lambda f: f.beta, jaxattn.SelfAttention(1.0), jnp.asarray(-5.0))
    with pytest.raises(ValueError, match=r"beta must be finite and > 0 .*got -5"):
        jaxattn.simulate(bad, X, 1.0)
    frozen = lambda w: jaxattn.FrozenCentresCircleAttention(2.0, [0.0, 1.0], w)  # noqa: E731
    with pytest.raises(RuntimeError, match=r"weights a_j must be >= 1"):
        jax.block_until_ready(jax.jit(lambda w: jaxattn.simulate(frozen(w), jnp.zeros(3), 1.0, ts=2).final)(0.5))
    jax.block_until_ready(jax.jit(lambda w: jaxattn.simulate(frozen(w), jnp.zeros(3), 1.0, ts=2).final)(1.5))
    assert jaxattn.SelfAttention(2.0, Q=2 * jnp.eye(3), K=3 * jnp.eye(3)).logit_scale() == 12.0
    assert jaxattn.Kuramoto().logit_scale() is None
