"""Gradients in beta that are exactly right everywhere, and derived data that always follows its parameter.

Oracles: the dense evaluator (an independent O(n^2) sum), float64 central differences, and freshly built
fields. Two failure modes are covered:

* a branch switch inside the Bessel functions at beta = 2 (``jaxattn._special``, X_SERIES) once split the
  derivative between the two branches (jnp.minimum/maximum at a tie): every gradient through the library's
  Bessel functions was wrong at beta = 2.0 exactly, the README's own gradient example;
* data derived from beta at construction (Fourier weights of the circle evaluator, truncation orders of the
  fast evaluators) must follow beta: through ``jax.grad`` of a pre-built field and after ``eqx.tree_at``.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxattn
from jaxattn import value_and_grad_of

KEY = jax.random.PRNGKey(3)


def _mean_inner_product(tr):
    return jaxattn.analysis.mean_inner_product(tr.final)


@pytest.mark.parametrize("traced", [False, True])
def test_harmonics_velocity_gradient_at_beta_two_matches_dense(traced):
    """d/dbeta of the S^2 harmonics velocity at beta = 2 (the Bessel switch point) against the dense kernel,
    eagerly and under jit; degree 16 leaves a truncation below 1e-14 at beta = 2."""
    x = jaxattn.initial.uniform_sphere(KEY, 6, 3)
    w = jax.random.normal(jax.random.fold_in(KEY, 1), x.shape)

    def loss(beta, evaluator):
        kw = {"harmonics_degree": 16} if evaluator == "harmonics" else {}
        return jnp.sum(w * jaxattn.SelfAttention(beta, evaluator=evaluator, **kw)(0.0, x))

    grad = (lambda f: jax.jit(jax.grad(f))) if traced else jax.grad
    fast, dense = grad(lambda b: loss(b, "harmonics"))(2.0), grad(lambda b: loss(b, "dense"))(2.0)
    assert float(fast) == pytest.approx(float(dense), rel=1e-10)


@pytest.mark.slow
def test_harmonics_gradient_through_simulate_at_beta_two_matches_dense():
    """d/dbeta of the mean <x_i, x_j> at t = 1 through simulate at beta = 2: harmonics evaluator against the
    dense kernel (the harmonics gradient was half the dense one, -0.0192 vs -0.0385)."""
    x0 = jaxattn.initial.uniform_sphere(KEY, 8, 3)
    grads = {}
    for evaluator in ("dense", "harmonics"):
        field = jaxattn.SelfAttention(2.0, evaluator=evaluator,
                                      **({"harmonics_degree": 16} if evaluator == "harmonics" else {}))
        _, g = value_and_grad_of(_mean_inner_product, field, x0, 1.0, ts=2, rtol=1e-10, atol=1e-10)
        grads[evaluator] = float(g.field.beta)
    assert grads["harmonics"] == pytest.approx(grads["dense"], rel=1e-8)


@pytest.mark.slow
def test_circle_pde_gradient_at_beta_two_matches_finite_differences():
    """d|mu_2(0.5)|/dbeta of the circle PDE at beta = 2 against a central difference (0.0557 vs 0.0688 before)."""
    from jaxattn import spectral
    from jaxattn.spectral import circle_pde_value_and_grad

    c0 = spectral.mode_coefficients(32, cos={2: 0.02})

    def obs(mu):
        return jnp.abs(mu[-1, 2])

    _, g = circle_pde_value_and_grad(obs, 2.0, c0, 0.5)
    h = 1e-4
    up, _ = circle_pde_value_and_grad(obs, 2.0 + h, c0, 0.5)
    down, _ = circle_pde_value_and_grad(obs, 2.0 - h, c0, 0.5)
    assert float(g.beta) == pytest.approx(float(up - down) / (2 * h), rel=1e-6)


# ----------------------------------------------------------------------------- derived data follows beta


def _circle_loss(tr):
    return jnp.mean(jnp.cos(tr.final[:, None] - tr.final[None, :]))


def test_prebuilt_fourier_field_gradient_matches_finite_differences():
    """value_and_grad_of on a pre-built CircleSelfAttention(3.0, evaluator="fourier"): d/dbeta must include the
    Bessel weights' dependence on beta (they were stored constants: -0.0434 against the true -0.0324), against
    a central difference of freshly built fields and against the dense evaluator's gradient."""
    theta0 = jaxattn.initial.uniform_circle(KEY, 16)
    kw = dict(ts=2, rtol=1e-10, atol=1e-10)

    def value(beta, evaluator="fourier"):
        return float(_circle_loss(jaxattn.simulate(jaxattn.CircleSelfAttention(beta, evaluator=evaluator), theta0,
                                                   1.0, **kw)))

    _, g = value_and_grad_of(_circle_loss, jaxattn.CircleSelfAttention(3.0, evaluator="fourier"), theta0, 1.0, **kw)
    _, g_dense = value_and_grad_of(_circle_loss, jaxattn.CircleSelfAttention(3.0), theta0, 1.0, **kw)
    h = 1e-4
    fd = (value(3.0 + h) - value(3.0 - h)) / (2 * h)
    assert float(g.field.beta) == pytest.approx(fd, rel=1e-6)
    assert float(g.field.beta) == pytest.approx(float(g_dense.field.beta), rel=1e-8)


@pytest.mark.parametrize("causal", [False, True])
def test_fourier_field_after_tree_at_is_the_new_field(causal):
    """eqx.tree_at on beta gives the velocity of a field built at the new beta (eagerly and under jit), as long as
    the modes resolve it; beyond that the evaluation refuses with the fix, instead of using stale weights/modes."""
    theta = jaxattn.initial.uniform_circle(KEY, 40)
    built = jaxattn.CircleSelfAttention(3.0, evaluator="fourier", causal=causal)
    moved = eqx.tree_at(lambda f: f.beta, built, jnp.asarray(2.0))
    fresh = jaxattn.CircleSelfAttention(2.0, causal=causal)  # the dense evaluator: an independent sum
    velocity = eqx.filter_jit(lambda f, th: f(0.0, th))
    for v in (moved(0.0, theta), velocity(moved, theta)):
        np.testing.assert_allclose(v, fresh(0.0, theta), rtol=0, atol=1e-13)
    too_large = eqx.tree_at(lambda f: f.beta, built, jnp.asarray(64.0))  # 3.0's modes do not resolve beta = 64
    with pytest.raises(ValueError, match="truncation bound"):
        too_large(0.0, theta)
    with pytest.raises(Exception, match="truncation bound"):
        jax.block_until_ready(velocity(too_large, theta))


def test_too_few_fourier_modes_raise_at_construction():
    """modes=3 at beta = 64 is 0.16 rad off: refused with the measured bound unless tol accepts it."""
    with pytest.raises(ValueError, match=r"modes=3 leave a truncation bound .* fourier_modes\(beta, tol\) = "):
        jaxattn.CircleSelfAttention(64.0, evaluator="fourier", modes=3)
    bound = jaxattn.fields.truncation_error(64.0, 3)
    field = jaxattn.CircleSelfAttention(64.0, evaluator="fourier", modes=3, tol=bound)  # accepted on purpose
    theta = jaxattn.initial.uniform_circle(KEY, 20)
    err = np.max(np.abs(np.asarray(field(0.0, theta) - jaxattn.CircleSelfAttention(64.0)(0.0, theta))))
    assert 1e-3 < err <= 20 * bound  # the documented SA bound n eps_M, and not vacuous


def test_harmonics_field_after_tree_at_follows_beta():
    """S^2 harmonics: eqx.tree_at on beta re-chooses the degree eagerly (the result is the new field's), and under
    jit, where the degree of the built beta is all there is, refuses once it no longer resolves the new beta."""
    x = jaxattn.initial.uniform_sphere(KEY, 30, 3)
    built = jaxattn.SelfAttention(2.0, evaluator="harmonics")
    moved = eqx.tree_at(lambda f: f.beta, built, jnp.asarray(9.0))
    np.testing.assert_allclose(moved(0.0, x), jaxattn.SelfAttention(9.0)(0.0, x), rtol=0, atol=1e-12)
    with pytest.raises(Exception, match="truncation bound"):
        jax.block_until_ready(eqx.filter_jit(lambda f, y: f(0.0, y))(moved, x))
    smaller = eqx.tree_at(lambda f: f.beta, built, jnp.asarray(1.5))  # fewer degrees needed: fine under jit
    np.testing.assert_allclose(eqx.filter_jit(lambda f, y: f(0.0, y))(smaller, x),
                               jaxattn.SelfAttention(1.5)(0.0, x), rtol=0, atol=1e-12)


def test_prebuilt_spectral_model_gradient_includes_its_kernel():
    """jax.grad of an observable of integrate_circle w.r.t. a pre-built CircleModel: the kernel coefficients
    W_k(beta) follow beta (they were stored: d/dbeta missed dW/dbeta), against a central difference."""
    from jaxattn.spectral.circle import CircleModel, integrate_circle, mode_coefficients, from_state

    K = 16
    c0 = mode_coefficients(K, cos={2: 0.02})
    ts = jnp.array([0.0, 0.3])

    def obs(model):
        sol = integrate_circle(model, c0, ts, rtol=1e-11, atol=1e-13)
        return jnp.abs(from_state(sol.ys)[-1, 2])

    g = eqx.filter_grad(obs)(CircleModel(3.0, K))
    h = 1e-4
    fd = (obs(CircleModel(3.0 + h, K)) - obs(CircleModel(3.0 - h, K))) / (2 * h)
    assert float(g.beta) == pytest.approx(float(fd), rel=1e-6)
    moved = eqx.tree_at(lambda m: m.beta, CircleModel(3.0, K), jnp.asarray(2.0))
    np.testing.assert_allclose(moved.W, CircleModel(2.0, K).W, rtol=1e-15)
