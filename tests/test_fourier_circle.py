"""O(n M) Bessel-Fourier circle evaluator against the dense masked sum (docs/paper_003.md, "The Fourier evaluator")."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

import jaxattn
from jaxattn.fields import fourier_modes, scaled_bessel_weights, truncation_error


@eqx.filter_jit
def evaluate(field, theta):
    return field(0.0, theta)


def dense_reference(theta, beta, *, unnormalised, causal):
    """Independent NumPy oracle: explicit double sum of eq. (6.1) / (CSA-2d)."""
    th = np.asarray(theta, dtype=float)
    n = th.size
    diff = th[:, None] - th[None, :]
    w = np.exp(beta * (np.cos(diff) - 1))  # scaled by e^{-beta}
    if causal:
        w = np.tril(w)
    num = -(w * np.sin(diff)).sum(axis=1)
    if unnormalised:
        count = np.arange(1, n + 1) if causal else n
        return np.exp(beta) * num / count
    return num / w.sum(axis=1)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("beta", [0.3, 9.0, 64.0, 1e4])
def test_fourier_matches_dense_sa(key, beta, causal):
    for n, block in ((5, 16), (301, 7)):  # n < block; padding with an odd block
        theta = jax.random.uniform(jax.random.fold_in(key, n), (n,), minval=-np.pi, maxval=np.pi)
        fast = evaluate(jaxattn.CircleSelfAttention(beta, causal=causal, evaluator="fourier", block_size=block),
                        theta)
        np.testing.assert_allclose(fast, dense_reference(theta, beta, unnormalised=False, causal=causal),
                                   rtol=0, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("beta", [0.5, 9.0, 64.0])
def test_fourier_matches_dense_usa(key, beta, causal):
    theta = jax.random.uniform(key, (257,), minval=-np.pi, maxval=np.pi)
    fast = evaluate(jaxattn.CircleSelfAttention(beta, unnormalised=True, causal=causal, evaluator="fourier"), theta)
    ref = dense_reference(theta, beta, unnormalised=True, causal=causal)
    np.testing.assert_allclose(fast / np.exp(beta), ref / np.exp(beta), rtol=0, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_fourier_chunked_sweep_matches_dense(key, causal):
    # the scan over chunks carries the mode sums of earlier chunks; padding in the last chunk
    from jaxattn.fields import fourier_circle_velocity

    beta = 64.0
    for n, chunk in ((301, 64), (9001, 4096)):
        theta = jax.random.uniform(jax.random.fold_in(key, n), (n,), minval=-np.pi, maxval=np.pi)
        fast = jax.jit(lambda t: fourier_circle_velocity(t, beta, fourier_modes(beta), causal=causal, block=7,
                                                         chunk=chunk))(theta)
        np.testing.assert_allclose(fast, dense_reference(theta, beta, unnormalised=False, causal=causal),
                                   rtol=0, atol=1e-12)


def test_clustered_configuration_and_large_n(key):
    # tight clusters make Z_i large and the numerators tiny: relative cancellation is the risk
    k1, k2 = jax.random.split(key)
    centres = jnp.array([-2.0, 0.3, 0.31, 2.5])
    theta = centres[jax.random.randint(k1, (2000,), 0, 4)] + 1e-3 * jax.random.normal(k2, (2000,))
    for causal in (False, True):
        fast = evaluate(jaxattn.CircleSelfAttention(64.0, causal=causal, evaluator="fourier"), theta)
        ref = dense_reference(theta, 64.0, unnormalised=False, causal=causal)
        np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-12)


def test_truncation_bound_holds_and_is_not_vacuous(key):
    """With too few modes the error is visible and below the documented bound (|S_i|/Z_i) eps_M."""
    beta, n = 64.0, 200
    theta = jax.random.uniform(key, (n,), minval=-np.pi, maxval=np.pi)
    ref = dense_reference(theta, beta, unnormalised=False, causal=True)
    th = np.asarray(theta)
    Z = np.tril(np.exp(beta * (np.cos(th[:, None] - th[None, :]) - 1))).sum(axis=1)
    visible = np.arange(1, n + 1)
    for M in (12, 24, 36):  # tol = 1: accept the (large) truncation error of too few modes
        fast = evaluate(jaxattn.CircleSelfAttention(beta, causal=True, evaluator="fourier", modes=M, block_size=8,
                                                    tol=1.0), theta)
        err = np.abs(np.asarray(fast) - ref)
        # the near field (the token's own block of 8) is exact, so the far-field count bounds |S_i|
        bound = visible / Z * truncation_error(beta, M)
        assert np.all(err <= 1.01 * bound + 1e-14)
        assert err.max() > 1e-3 * bound.max()  # the bound is not absurdly loose


def test_mode_count_and_bessel_weights():
    # automatic M from beta and tol: the smallest M whose truncation bound
    # eps_M = 2 sum_{k>M} (1 + k/beta) e^{-beta} I_k(beta) is <= tol, here summed directly with scipy (k < 4000)
    def eps_scipy(beta, M):
        k = np.arange(M + 1, 4000, dtype=float)
        return 2 * np.sum((1 + k / beta) * scipy.special.ive(k, beta))

    for beta in (1.0, 64.0, 1000.0):
        for tol in (1e-8, 1e-12):
            M = fourier_modes(beta, tol)
            assert eps_scipy(beta, M) <= tol * (1 + 1e-9) < eps_scipy(beta, M - 1)
            assert M <= math.sqrt(2 * beta * math.log(1 / tol)) + 3 * math.log(1 / tol)  # M ~ sqrt(2 beta ln 1/tol)
    M = fourier_modes(64.0)  # the default tol 1e-16: the bound holds and M - 1 modes would not meet it
    assert eps_scipy(64.0, M) <= 1.01e-16 < eps_scipy(64.0, M - 1) * 1.01
    for beta in (1.0, 64.0, 1000.0):
        for tol in (1e-8, 1e-16):
            M = fourier_modes(beta, tol)
            assert truncation_error(beta, M) <= tol < truncation_error(beta, M - 1) or M == 1
    assert fourier_modes(64.0, 1e-8) < fourier_modes(64.0, 1e-16)
    # weights are the scaled Bessel functions (independent oracle: scipy)
    for beta in (0.5, 64.0, 700.0):
        k = np.arange(40)
        np.testing.assert_allclose(scaled_bessel_weights(beta, 39), scipy.special.ive(k, beta), rtol=1e-12,
                                   atol=1e-300)
    # the Amos ratio bound used for the tail: I_{k+1}/I_k < x / (k + sqrt(k^2 + x^2))
    for x in (0.5, 9.0, 64.0, 1000.0):
        k = np.arange(0, 400.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = scipy.special.ive(k + 1, x) / scipy.special.ive(k, x)
        ok = np.isfinite(r) & (scipy.special.ive(k, x) > 1e-290)
        assert np.all(r[ok] < x / (k[ok] + np.sqrt(k[ok] ** 2 + x**2)))


def test_fourier_selectable_in_simulate(key):
    theta0 = jaxattn.initial.uniform_circle(key, 60, batch=2)
    ts = jnp.array([0.0, 5.0, 20.0])
    kw = dict(causal=True, unnormalised=True)
    a = jaxattn.simulate(jaxattn.CircleSelfAttention(3.0, **kw), theta0, 20.0, ts=ts, rtol=1e-10, atol=1e-10)
    b = jaxattn.simulate(jaxattn.CircleSelfAttention(3.0, evaluator="fourier", **kw), theta0, 20.0, ts=ts,
                         rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(b.xs, a.xs, atol=1e-8)


@pytest.mark.slow
def test_fourier_selectable_in_simulate_vmap(key):
    theta0 = jaxattn.initial.uniform_circle(key, 60, batch=2)
    f = jaxattn.CircleSelfAttention(9.0, evaluator="fourier")
    c = jaxattn.simulate(f, theta0, 5.0, ts=2, ensemble="vmap", rtol=1e-10, atol=1e-10)
    d = jaxattn.simulate(jaxattn.CircleSelfAttention(9.0), theta0, 5.0, ts=2, ensemble="vmap", rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(c.xs, d.xs, atol=1e-9)


def test_beta_gradient_through_fourier_field(key):
    theta = jax.random.uniform(key, (64,), minval=-np.pi, maxval=np.pi)

    def loss(beta, evaluator):
        kw = dict(modes=fourier_modes(20.0)) if evaluator == "fourier" else {}
        f = jaxattn.CircleSelfAttention(beta, causal=True, evaluator=evaluator, **kw)
        return jnp.sum(jnp.sin(f(0.0, theta)))

    g_fast = jax.jit(jax.grad(lambda b: loss(b, "fourier")))(9.0)
    g_dense = jax.jit(jax.grad(lambda b: loss(b, "dense")))(9.0)
    np.testing.assert_allclose(g_fast, g_dense, rtol=1e-10)


def test_fourier_errors():
    with pytest.raises(ValueError, match="evaluator"):
        jaxattn.CircleSelfAttention(1.0, evaluator="fft")
    with pytest.raises(ValueError, match="modes"):
        jaxattn.CircleSelfAttention(1.0, evaluator="fourier", modes=0)
    with pytest.raises(ValueError, match="modes"):
        jaxattn.CircleSelfAttention(1.0, modes=10)
    with pytest.raises(ValueError, match="static number of modes"):
        jax.jit(lambda b: jaxattn.CircleSelfAttention(b, evaluator="fourier").beta)(2.0)
    with pytest.raises(ValueError, match="tol"):
        jaxattn.CircleSelfAttention(1.0, evaluator="fourier", tol=0.0)
    # traced beta with explicit modes works (vmap over beta)
    th = jnp.linspace(-3, 3, 10)
    betas = jnp.array([1.0, 2.0])
    out = jax.vmap(lambda b: jaxattn.CircleSelfAttention(b, evaluator="fourier", modes=30)(0.0, th))(betas)
    assert out.shape == (2, 10)
    for b, row in zip((1.0, 2.0), out):  # each row equals the dense evaluator at its own beta (30 modes: eps < 1e-30)
        np.testing.assert_allclose(row, jaxattn.CircleSelfAttention(b, evaluator="dense")(0.0, th), rtol=0, atol=1e-14)


def test_fourier_traced_beta_large_and_huge_beta(key):
    """A regression: under jit with beta traced, the weights were 0.22 off the dense field at beta = 3000 (a fixed
    1024-term Bessel series); at beta = 1e6 building the weights tried to allocate 40 GB (modes x series terms).
    Now the weights cost O(M) at any beta and the field matches the dense double sum."""
    theta = jax.random.uniform(key, (64,), minval=-np.pi, maxval=np.pi)
    for beta in (3000.0, 1e6):
        M = fourier_modes(beta)
        field = jax.jit(lambda b, th: jaxattn.CircleSelfAttention(b, evaluator="fourier", modes=M)(0.0, th))
        np.testing.assert_allclose(field(beta, theta), dense_reference(theta, beta, unnormalised=False, causal=False),
                                   rtol=0, atol=1e-13)
    # the weights themselves, traced, against scipy (ive(k, 1e6) is ~4e-4: representable)
    w = jax.jit(lambda b: scaled_bessel_weights(b, 200))(1e6)
    np.testing.assert_allclose(w, scipy.special.ive(np.arange(201), 1e6), rtol=1e-12)
