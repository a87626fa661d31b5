"""Vector fields against exact identities (Geshkovski et al. 2023 (perspective) §2-§3, §6; Karagodin et al. 2024 §1).

Also the abstract/final pattern of the field classes (docs/architecture.md, "Conventions").
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxattn
from jaxattn.analysis import interaction_energy
from jaxattn.fields import embed_angles
from jaxattn.manifolds import tangent_projection


def sphere_points(key, n, d):
    return jaxattn.initial.uniform_sphere(key, n, d)


def random_matrices(key, d, m=None, scale=1.0):
    m = d if m is None else m
    k1, k2, k3 = jax.random.split(key, 3)
    return (scale * jax.random.normal(k1, (m, d)) / np.sqrt(d),
            scale * jax.random.normal(k2, (m, d)) / np.sqrt(d),
            jax.random.normal(k3, (d, d)) / np.sqrt(d))


def test_tangent_projection(key):
    k1, k2 = jax.random.split(key)
    x = 3.0 * jax.random.normal(k1, (10, 4))  # any norm
    y = jax.random.normal(k2, (10, 4))
    p = tangent_projection(x, y)
    bound = 1e-14 * np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
    assert np.all(np.abs(np.sum(x * p, axis=1)) < bound + 1e-300)
    np.testing.assert_allclose(tangent_projection(x, x), 0.0, atol=1e-14)


def test_permutation_equivariance_random_qkv(key):  # 002 T2
    k1, k2, k3 = jax.random.split(key, 3)
    x = sphere_points(k1, 10, 4)
    Q, K, V = random_matrices(k2, 4)
    field = jaxattn.SelfAttention(3.0, Q, K, V)
    perm = jax.random.permutation(k3, 10)
    np.testing.assert_allclose(field(0.0, x[perm]), field(0.0, x)[perm], atol=1e-13)
    t1 = 2.0
    a = jaxattn.simulate(field, x, t1, ts=2, rtol=1e-10, atol=1e-10).final
    b = jaxattn.simulate(field, x[perm], t1, ts=2, rtol=1e-10, atol=1e-10).final
    np.testing.assert_allclose(b, a[perm], atol=1e-9)


def test_rotation_equivariance(key):  # 002 T3
    k1, k2 = jax.random.split(key)
    x = sphere_points(k1, 12, 3)
    R, _ = jnp.linalg.qr(jax.random.normal(k2, (3, 3)))
    field = jaxattn.SelfAttention(4.0)
    a = jaxattn.simulate(field, x, 3.0, ts=2, rtol=1e-11, atol=1e-11).final
    b = jaxattn.simulate(field, x @ R.T, 3.0, ts=2, rtol=1e-11, atol=1e-11).final
    np.testing.assert_allclose(b, a @ R.T, atol=1e-9)


@pytest.mark.parametrize("beta", [0.5, 2.0, 9.0])
def test_usa_is_n_times_riemannian_gradient_and_sa_conformal(key, beta):  # 002 T4
    x = sphere_points(key, 9, 3)
    n = x.shape[0]
    euclid = jax.grad(lambda y: interaction_energy(y, beta))(x)
    riem = tangent_projection(x, euclid)
    usa = jaxattn.UnnormalisedSelfAttention(beta)(0.0, x)
    np.testing.assert_allclose(usa, n * riem, rtol=1e-12, atol=1e-14)
    Z = jnp.sum(jnp.exp(beta * x @ x.T), axis=1)
    sa = jaxattn.SelfAttention(beta)(0.0, x)
    np.testing.assert_allclose(sa, (n**2 / Z)[:, None] * riem, rtol=1e-12, atol=1e-14)


def test_log_gradient_identity_when_v_is_qtk(key):  # 002 T5, eq. (3.7)
    k1, k2 = jax.random.split(key)
    x = sphere_points(k1, 8, 3)
    Q, K, _ = random_matrices(k2, 3)
    beta = 2.0
    field = jaxattn.SelfAttention(beta, Q, K, Q.T @ K)

    def potential(y, i):
        return jax.scipy.special.logsumexp(beta * (Q @ y) @ (x @ K.T).T) / beta

    expected = jnp.stack([tangent_projection(x[i:i + 1], jax.grad(potential)(x[i], i)[None])[0] for i in range(8)])
    np.testing.assert_allclose(field(0.0, x), expected, rtol=1e-12, atol=1e-14)


def test_time_rescaled_usa_is_scaled_field(key):
    x = sphere_points(key, 7, 3)
    np.testing.assert_allclose(
        jaxattn.UnnormalisedSelfAttention(5.0, time_rescaled=True)(0.0, x),
        np.exp(-5.0) * jaxattn.UnnormalisedSelfAttention(5.0)(0.0, x), rtol=1e-13)


def test_multi_head_reduces_to_single_head(key):  # 002 T36
    k1, k2 = jax.random.split(key)
    x = sphere_points(k1, 8, 4)
    Q, K, V = random_matrices(k2, 4)
    single = jaxattn.SelfAttention(2.0, Q, K, V)(0.0, x)
    H = 3
    stacked = jaxattn.SelfAttention(2.0, jnp.stack([Q] * H), jnp.stack([K] * H), jnp.stack([V / H] * H))(0.0, x)
    np.testing.assert_allclose(stacked, single, rtol=1e-12, atol=1e-14)
    # rectangular heads (d/H x d) with H = 2 are accepted and equal the sum of per-head fields
    Qr = jax.random.normal(k1, (2, 2, 4))
    Kr = jax.random.normal(k2, (2, 2, 4))
    Vr = jnp.stack([jnp.eye(4), -jnp.eye(4)])
    two = jaxattn.SelfAttention(1.0, Qr, Kr, Vr)(0.0, x)
    parts = sum(jaxattn.SelfAttention(1.0, Qr[h], Kr[h], Vr[h])(0.0, x) for h in range(2))
    np.testing.assert_allclose(two, parts, rtol=1e-12, atol=1e-14)


def test_explicit_formula_of_sa_with_qkv(key):  # eq. (2.3)-(2.5) written out with numpy
    k1, k2 = jax.random.split(key)
    x = np.asarray(sphere_points(k1, 6, 3))
    Q, K, V = (np.asarray(m) for m in random_matrices(k2, 3, m=2))
    beta = 1.7
    A = np.exp(beta * (x @ Q.T) @ (x @ K.T).T)
    A /= A.sum(axis=1, keepdims=True)
    y = A @ x @ V.T
    expected = y - np.sum(x * y, axis=1, keepdims=True) * x
    np.testing.assert_allclose(jaxattn.SelfAttention(beta, Q, K, V)(0.0, x), expected, rtol=1e-12, atol=1e-14)


def test_causal_jacobian_is_block_lower_triangular(key):  # 003 A2
    k1, k2 = jax.random.split(key)
    x = sphere_points(k1, 6, 3)
    Q, K, V = random_matrices(k2, 3)
    field = jaxattn.SelfAttention(2.0, Q, K, V, causal=True)
    J = jax.jacfwd(lambda y: field(0.0, y))(x)  # (n, d, n, d)
    for k in range(6):
        for j in range(k + 1, 6):
            assert np.max(np.abs(J[k, :, j, :])) < 1e-15


def test_causal_last_token_sees_everything(key):  # 003 A3
    k1, k2 = jax.random.split(key)
    x = sphere_points(k1, 7, 3)
    Q, K, V = random_matrices(k2, 3)
    np.testing.assert_allclose(jaxattn.SelfAttention(3.0, Q, K, V, causal=True)(0.0, x)[-1],
                               jaxattn.SelfAttention(3.0, Q, K, V)(0.0, x)[-1], atol=1e-14)


@pytest.mark.parametrize("unnormalised", [False, True])
def test_circle_angle_field_equals_planar_particles(key, unnormalised):  # 002 T8 (field level)
    theta = jax.random.uniform(key, (12,), minval=-np.pi, maxval=np.pi)
    beta = 3.0
    angle_field = jaxattn.CircleSelfAttention(beta, unnormalised=unnormalised)
    cls = jaxattn.UnnormalisedSelfAttention if unnormalised else jaxattn.SelfAttention
    x = embed_angles(theta)
    vx = cls(beta)(0.0, x)
    perp = jnp.stack([-jnp.sin(theta), jnp.cos(theta)], axis=1)
    np.testing.assert_allclose(angle_field(0.0, theta)[:, None] * perp, vx, atol=1e-13)
    # explicit eq. (6.1)
    diff = theta[:, None] - theta[None, :]
    w = np.exp(beta * np.cos(diff))
    norm = 12.0 if unnormalised else w.sum(axis=1)
    expected = -(w * np.sin(diff)).sum(axis=1) / norm
    np.testing.assert_allclose(angle_field(0.0, theta), expected, atol=1e-13)


def test_circle_trajectories_equal_planar_particles(key):  # 002 T8
    theta0 = jax.random.uniform(key, (12,), minval=-np.pi, maxval=np.pi)
    for unnormalised, cls in ((False, jaxattn.SelfAttention), (True, jaxattn.UnnormalisedSelfAttention)):
        a = jaxattn.simulate(jaxattn.CircleSelfAttention(3.0, unnormalised=unnormalised), theta0, 5.0,
                             ts=2, rtol=1e-12, atol=1e-12).final
        b = jaxattn.simulate(cls(3.0), embed_angles(theta0), 5.0, ts=2, rtol=1e-12, atol=1e-12).final
        np.testing.assert_allclose(embed_angles(a), b, atol=1e-9)
        assert abs(float(jaxattn.analysis.circle_energy(a, 3.0) - interaction_energy(b, 3.0))) < 1e-9


def test_kuramoto_is_beta_zero_limit_and_gradient_of_F(key):  # 002 T9
    theta = jax.random.uniform(key, (9,), minval=-np.pi, maxval=np.pi)
    kur = jaxattn.Kuramoto(1.0)
    # beta -> 0 of (6.1): the USA angle field is smooth in beta with O(beta) corrections
    for beta in (1e-4, 1e-6):
        usa = jaxattn.CircleSelfAttention(beta, unnormalised=True)(0.0, theta)
        assert np.max(np.abs(usa - kur(0.0, theta))) < 3 * beta
    n = 9
    F = lambda th: jnp.sum(jnp.cos(th[:, None] - th[None, :])) / (2 * n**2)  # noqa: E731
    np.testing.assert_allclose(kur(0.0, theta), n * jax.grad(F)(theta), atol=1e-14)
    # natural frequencies add
    omega = jnp.linspace(-1, 1, 9)
    np.testing.assert_allclose(jaxattn.Kuramoto(2.0, omega)(0.0, theta), omega + 2 * kur(0.0, theta), atol=1e-14)
    # F is non-decreasing along the flow
    traj = jaxattn.simulate(kur, theta, 10.0, ts=51)
    Fs = jax.vmap(F)(traj.xs)
    assert np.all(np.diff(Fs) >= -1e-12)


def test_feedforward_term(key):  # 002 eq. (2.8)
    k1, k2, k3 = jax.random.split(key, 3)
    x = sphere_points(k1, 5, 3)
    w = jax.random.normal(k2, (3, 3))
    b = jax.random.normal(k3, (3,))
    ff = jaxattn.FeedForward(w, b, activation=jnp.tanh)
    attn = jaxattn.SelfAttention(2.0)
    y = attn.attention_output(x)
    expected = tangent_projection(x, jnp.tanh(y + b) @ w.T)
    np.testing.assert_allclose(jaxattn.SelfAttention(2.0, feedforward=ff)(0.0, x), expected, atol=1e-14)


def _field_classes():
    """AbstractField and every subclass of it defined in jaxattn (exported or not)."""
    found, todo = [], [jaxattn.fields.AbstractField]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("jaxattn.") and cls not in found:
            found.append(cls)
        todo += cls.__subclasses__()
    return found


def test_field_classes_follow_the_abstract_final_pattern():
    import inspect

    classes = _field_classes()
    for cls in classes:
        abstract = inspect.isabstract(cls) or bool(getattr(cls, "__abstractvars__", {}))
        abstract = abstract or bool(getattr(cls, "__abstractclassvars__", {}))
        assert abstract == cls.__name__.startswith("Abstract"), cls
        if not abstract:  # final: nothing subclasses a concrete field
            assert not [c for c in classes if c is not cls and issubclass(c, cls)], cls
        for base in cls.__mro__[1:]:  # no concrete method or property of a base is overridden
            for name, value in vars(cls).items():
                inherited = vars(base).get(name)
                if name.startswith("__") or inherited is None or not callable(inherited) and not isinstance(
                        inherited, property):
                    continue
                assert getattr(inherited, "__isabstractmethod__", False), f"{cls.__name__}.{name} overrides {base}"
