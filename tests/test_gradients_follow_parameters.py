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
    from jaxattn.studies.gradients import circle_pde_value_and_grad

    c0 = spectral.mode_coefficients(32, cos={2: 0.02})

    def obs(mu):
        return jnp.abs(mu[-1, 2])

    _, g = circle_pde_value_and_grad(obs, 2.0, c0, 0.5)
    h = 1e-4
    up, _ = circle_pde_value_and_grad(obs, 2.0 + h, c0, 0.5)
    down, _ = circle_pde_value_and_grad(obs, 2.0 - h, c0, 0.5)
    assert float(g.beta) == pytest.approx(float(up - down) / (2 * h), rel=1e-6)
