"""Long context, beta_n = gamma log n (Chen, Lin, Polyanskiy, Rigollet, arXiv 2510.05554; Rigollet's survey
arXiv 2512.01868 §5.3): the exact one-layer formula against the attention kernel on explicit equiangular vectors,
its three limits and the rates of approach."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn.analysis import long_context as lc
from jaxattn.fields import attend


def equiangular(n, rho):
    """x_i = sqrt(rho) e_0 + sqrt(1 - rho) e_i in R^{n+1}: unit vectors with <x_i, x_j> = rho."""
    x = np.zeros((n, n + 1))
    x[:, 0] = np.sqrt(rho)
    x[np.arange(n), np.arange(1, n + 1)] = np.sqrt(1 - rho)
    return jnp.asarray(x)


@pytest.mark.parametrize("gamma", [1.0, 2.0, 3.0])
def test_formula_equals_the_kernel_on_200_tokens(gamma):
    """F-29, direct check: n = 200, rho = 0.5, the one kernel with beta = gamma log n, outputs renormalised
    (0.8013991976 at the critical gamma = 2)."""
    n, rho = 200, 0.5
    x = equiangular(n, rho)
    y = attend(gamma * np.log(n) * x, x, x)
    y = y / jnp.linalg.norm(y, axis=1, keepdims=True)
    g = np.asarray(y @ y.T)[~np.eye(n, dtype=bool)]
    np.testing.assert_allclose(g, lc.long_context_cosine(n, rho, gamma), rtol=0, atol=1e-12)
    if gamma == 2.0:
        np.testing.assert_allclose(g[0], 0.8013991976, atol=1e-9)


def test_three_regimes_at_large_n():
    """F-29: rho = 0.5 at n = 1e4: 0.999904, 0.800028, 0.504975 for gamma = 1, 2, 3 (to 1e-6), and the limits
    1, 4 rho/(1 + 3 rho) = 0.8, rho reached as n -> inf (n = 1e15), also for rho = 0.25 (critical gamma 4/3)."""
    np.testing.assert_allclose([lc.long_context_cosine(1e4, 0.5, g) for g in (1.0, 2.0, 3.0)],
                               [0.999904, 0.800028, 0.504975], atol=1e-6)
    for rho in (0.5, 0.25):
        gc = float(lc.critical_gamma(rho))
        for gamma, limit in ((0.5 * gc, 1.0), (gc, 4 * rho / (1 + 3 * rho)), (1.5 * gc, rho)):
            np.testing.assert_allclose(lc.long_context_limit(rho, gamma), limit, rtol=1e-15)
            np.testing.assert_allclose(lc.long_context_cosine(1e15, rho, gamma), limit, atol=2e-5)


@pytest.mark.parametrize("gamma", [1.0, 1.5, 2.0, 2.5, 3.0])
def test_rates_of_approach(gamma):
    """|cos - limit| ~ n^{-p}: p = 2(1 - gamma(1-rho)) below the critical gamma, 1 at it, gamma(1-rho) - 1 above
    (log-log slope between n = 1e8 and 1e10, to 0.01: the corrections are O(n^{-|1 - gamma(1 - rho)|}))."""
    rho = 0.5
    err = [abs(float(lc.long_context_cosine(n, rho, gamma) - lc.long_context_limit(rho, gamma))) for n in (1e8, 1e10)]
    slope = -np.log10(err[1] / err[0]) / 2
    np.testing.assert_allclose(slope, lc.long_context_exponent(rho, gamma), atol=0.01)


def test_differentiable_and_vmappable():
    gammas = jnp.linspace(0.5, 3.5, 7)
    out = jax.vmap(lambda g: lc.long_context_cosine(1e3, 0.5, g))(gammas)
    assert np.all(np.diff(np.asarray(out)) < 0)  # a larger beta_n keeps the tokens apart
    h = 1e-6
    f = lambda g: lc.long_context_cosine(1e3, 0.5, g)  # noqa: E731
    np.testing.assert_allclose(jax.grad(f)(2.0), (f(2.0 + h) - f(2.0 - h)) / (2 * h), rtol=1e-6)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="rho must be in"):
        lc.long_context_cosine(100, 1.0, 2.0)
    with pytest.raises(ValueError, match="rho must be in"):
        lc.critical_gamma(float("nan"))
    with pytest.raises(ValueError, match="n must be >= 2"):
        lc.long_context_cosine(1, 0.5, 2.0)
