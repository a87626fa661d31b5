"""S^2 fast summation (evaluator="harmonics") against the dense kernel, its bound and its errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import spherical_in

import jaxattn
from jaxattn.fields import _harmonics as H


def _tokens(n, seed=0, batch=None):
    return jaxattn.initial.uniform_sphere(jax.random.PRNGKey(seed), n, 3, batch=batch)


@pytest.mark.parametrize("beta", [0.3, 9.0, 25.0])
@pytest.mark.parametrize("kind", ["SA", "USA", "USA-rescaled"])
def test_harmonics_matches_dense(beta, kind):
    x = _tokens(129, seed=1)
    if kind == "SA":
        make = lambda ev: jaxattn.SelfAttention(beta, evaluator=ev)  # noqa: E731
    else:
        make = lambda ev: jaxattn.UnnormalisedSelfAttention(  # noqa: E731
            beta, evaluator=ev, time_rescaled=(kind == "USA-rescaled"))
    fast, dense = make("harmonics")(0.0, x), make("dense")(0.0, x)
    scale = 1.0 if kind != "USA" else float(np.exp(beta))  # USA velocities scale like e^beta
    assert float(jnp.max(jnp.abs(fast - dense))) <= 1e-12 * scale


def test_clustered_and_tiny_configurations():
    # near-coincident tokens, tokens at the poles, and n = 1
    x = jnp.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [1.0, 1e-7, 0.0]])
    x = x / jnp.linalg.norm(x, axis=1, keepdims=True)
    for n in (1, 2, 4):
        f = jaxattn.SelfAttention(7.0, evaluator="harmonics")(0.0, x[:n])
        g = jaxattn.SelfAttention(7.0)(0.0, x[:n])
        assert float(jnp.max(jnp.abs(f - g))) <= 1e-13


def test_legendre_coefficients_match_scipy_and_sum_to_one():
    for beta in (1e-3, 1.0, 9.0, 60.0):
        lam = np.asarray(H.legendre_coefficients(beta, 80))
        ls = np.arange(81)
        ref = (2 * ls + 1) * spherical_in(ls, beta) * np.exp(-beta)
        big = ref > 1e-200
        np.testing.assert_allclose(lam[big], ref[big], rtol=1e-12)
        assert abs(lam.sum() + H.tail_bound(beta, 80) - 1.0) < 1e-13  # the Bessel series: ~3e-14 relative
    np.testing.assert_allclose(H.legendre_coefficients(1e-12, 3), [1.0, 0, 0, 0], atol=1e-12)


def test_truncation_bound_holds():
    t = np.linspace(-1, 1, 2001)
    from numpy.polynomial import legendre
    for beta in (2.0, 9.0):
        for degree in (5, 10, 20):
            lam = H._lambdas_numpy(beta, degree)
            err = np.max(np.abs(legendre.legval(t, lam) - np.exp(beta * (t - 1))))
            assert err <= H.tail_bound(beta, degree) * (1 + 1e-9) + 1e-14  # round-off of the Bessel series
    # the chosen degree meets the documented criteria and grows with beta and n
    L_sa = H.truncation_degree(9.0, 10**5, 1e-13, "softmax")
    assert 2 * 10**5 * H.tail_bound(9.0, L_sa) <= 1e-13 * (1 - 10**5 * H.tail_bound(9.0, L_sa))
    assert H.tail_bound(9.0, H.truncation_degree(9.0, 1, 1e-13, "mean")) <= 1e-13
    assert H.truncation_degree(9.0, 10, 1e-13) < H.truncation_degree(30.0, 10, 1e-13)


@pytest.mark.slow  # a long end-to-end run; the default suite keeps the shorter checks
def test_simulate_and_gradients_agree_with_dense():
    x0 = _tokens(48, seed=3)
    fast = jaxattn.SelfAttention(5.0, evaluator="harmonics")
    dense = jaxattn.SelfAttention(5.0)
    # Runge-Kutta stages leave the sphere, where the two evaluators are different (equally
    # valid) extensions of the field, so solves agree to the solver tolerance
    a = jaxattn.simulate(fast, x0, 3.0, ts=2, rtol=1e-10, atol=1e-10).final
    b = jaxattn.simulate(dense, x0, 3.0, ts=2, rtol=1e-10, atol=1e-10).final
    assert float(jnp.max(jnp.abs(a - b))) < 1e-8

    def loss(field, beta):
        import equinox as eqx
        f = eqx.tree_at(lambda m: m.beta, field, beta)
        return jnp.sum(f(0.0, x0) ** 2)

    g_fast = jax.grad(loss, argnums=1)(fast, jnp.asarray(5.0))
    g_dense = jax.grad(loss, argnums=1)(dense, jnp.asarray(5.0))
    assert abs(float(g_fast - g_dense)) < 1e-10 * max(1.0, abs(float(g_dense)))
    gx = jax.grad(lambda x: jnp.sum(fast(0.0, x) ** 2))(x0)
    gx_dense = jax.grad(lambda x: jnp.sum(dense(0.0, x) ** 2))(x0)
    # only derivatives along the sphere are defined by the model (the two evaluators
    # extend the field differently off the sphere)
    tangential = jaxattn.manifolds.tangent_projection
    assert float(jnp.max(jnp.abs(tangential(x0, gx) - tangential(x0, gx_dense)))) < 1e-10


def test_ensembles_and_explicit_degree():
    x0 = _tokens(20, seed=4, batch=3)
    fast = jaxattn.SelfAttention(2.0, evaluator="harmonics", harmonics_degree=30)
    out = jaxattn.simulate(fast, x0, 1.0, ts=2, ensemble="vmap").final
    ref = jaxattn.simulate(jaxattn.SelfAttention(2.0), x0, 1.0, ts=2, ensemble="vmap").final
    assert float(jnp.max(jnp.abs(out - ref))) < 1e-5  # solver tolerance 1e-6 (off-sphere stages differ)
    # a traced beta works when the degree is given
    v = jax.jit(lambda b: jaxattn.SelfAttention(b, evaluator="harmonics", harmonics_degree=30)(0.0, x0[0]))(2.0)
    assert float(jnp.max(jnp.abs(v - jaxattn.SelfAttention(2.0)(0.0, x0[0])))) < 1e-12


def test_errors():
    with pytest.raises(ValueError, match="Q = K = V = I"):
        jaxattn.SelfAttention(1.0, V=jnp.eye(3), evaluator="harmonics")
    with pytest.raises(ValueError, match="causal"):
        jaxattn.SelfAttention(1.0, causal=True, evaluator="harmonics")
    with pytest.raises(ValueError, match="evaluator must be"):
        jaxattn.SelfAttention(1.0, evaluator="fmm")
    with pytest.raises(ValueError, match="S\\^2"):
        jaxattn.SelfAttention(1.0, evaluator="harmonics")(0.0, _tokens(5)[:, :2] / 1.0)
    with pytest.raises(ValueError, match="harmonics_degree"):
        jax.jit(lambda b: jaxattn.SelfAttention(b, evaluator="harmonics")(0.0, _tokens(5)))(1.0)
    with pytest.raises(ValueError, match="harmonics_tol"):
        jaxattn.UnnormalisedSelfAttention(1.0, evaluator="harmonics", harmonics_tol=0.0)
