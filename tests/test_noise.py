"""Noisy attention dynamics (Rigollet 2025, "The mean-field dynamics of Transformers", §6): the noise convention
(Stratonovich projected Brownian motion; Itô solvers with the retraction), the noisy Kuramoto pitchfork at kappa = 2 and the
noisy attention bifurcation reproduced as order-parameter curves (docs/normalisation.md, "Noise").

Oracles: the heat kernel of the sphere (E <X_t, X_0> = e^{-(d-1) t/kappa}), the self-consistency equation
r = I_1(kappa r)/I_0(kappa r) of the noisy Kuramoto model solved with SciPy's root finder, the linear threshold
formulas written with SciPy's Bessel functions, and the finite-n prediction E r ~ sqrt(pi / (4 n (1 - kappa/2))).
"""

import math
from typing import ClassVar

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import gamma as gamma_fn
from scipy.special import iv

import jaxattn
from jaxattn.fields import CircleSelfAttention, Kuramoto, NoisyField
from jaxattn.spectral.noisy import noisy_threshold, stationary_order_parameter


def kuramoto_branch(kappa):
    """r = I_1(kappa r) / I_0(kappa r), r > 0 (kappa > 2)."""
    return brentq(lambda r: r - iv(1, kappa * r) / iv(0, kappa * r), 1e-9, 1 - 1e-12, xtol=1e-15)


# ------------------------------------------------------------------------------------------ mean-field theory


def test_noisy_kuramoto_branch():  # F-27 (mean field)
    for kappa, expected in ((2.05, 0.219064), (2.2, 0.413389), (2.5, 0.589708), (3.0, 0.724159), (4.0, 0.831462),
                            (6.0, 0.902153)):
        r = stationary_order_parameter(0.0, kappa)
        assert abs(r - kuramoto_branch(kappa)) < 1e-9 and abs(r - expected) < 1e-6
    assert stationary_order_parameter(0.0, 1.9) == 0.0 and noisy_threshold(0.0) == 2.0


def test_thresholds():  # F-28 (thresholds)
    def usa(beta, d):
        return beta ** (d / 2) / (2 ** (d / 2 - 1) * gamma_fn(d / 2) * iv(d / 2, beta))

    for beta in (0.5, 1.0, 2.0, 4.0):
        for d in (2, 3, 5):
            assert abs(noisy_threshold(beta, d) / usa(beta, d) - 1) < 1e-12
        assert abs(noisy_threshold(beta, 2, "sa") / (beta * iv(0, beta) / iv(1, beta)) - 1) < 1e-12
    assert abs(noisy_threshold(1.0, 2) - 1.76941) < 1e-5
    assert abs(noisy_threshold(1.0, 2, "sa") - 2.24019) < 1e-5
    assert abs(noisy_threshold(1.0, 3) - math.e) < 1e-12


@pytest.mark.parametrize("model", ["usa", "sa"])
def test_mean_field_branch_bifurcates_at_the_threshold(model):
    """The stationary solver's branch is 0 just below kappa_c and grows like sqrt(kappa - kappa_c) above it."""
    kc = noisy_threshold(1.0, 2, model)
    assert stationary_order_parameter(1.0, kc * 0.98, model) == 0.0
    r1, r2 = (stationary_order_parameter(1.0, kc * (1 + e), model) for e in (0.01, 0.04))
    assert 0 < r1 < r2 and abs(r2 / r1 - 2) < 0.2  # r^2 linear in kappa - kappa_c
    assert abs(stationary_order_parameter(1.0, 3.0) - 0.8640) < 1e-4


# ------------------------------------------------------------------------------------------ the convention


def test_diffusion_is_the_tangent_projection(key):
    """dW -> sqrt(2/kappa) P_X dW: tangent on the sphere (for a batch too), the plain increment on the circle."""
    x = jaxattn.initial.uniform_sphere(key, 5, 4, batch=2)
    w = jax.random.normal(key, x.shape)
    noisy = NoisyField(jaxattn.UnnormalisedSelfAttention(1.0), 2.0, key)
    dx = noisy.diffusion(0.0, x).mv(w)
    np.testing.assert_allclose(dx, jaxattn.manifolds.tangent_projection(x, w), atol=1e-15)  # sigma = 1
    np.testing.assert_allclose(jnp.sum(dx * x, axis=-1), 0.0, atol=1e-14)
    circle = NoisyField(Kuramoto(), 8.0, key)
    np.testing.assert_allclose(circle.diffusion(0.0, jnp.ones(4)).mv(jnp.arange(4.0)), 0.5 * jnp.arange(4.0))
    assert noisy.manifold is jaxattn.manifolds.SPHERE and circle.manifold is jaxattn.manifolds.CIRCLE


class Still(jaxattn.AbstractField):
    """No drift: the noise alone."""

    manifold: ClassVar[jaxattn.manifolds.Sphere] = jaxattn.manifolds.SPHERE
    dim: ClassVar[None] = None
    num_tokens: ClassVar[None] = None

    def velocity(self, t, x):
        return jnp.zeros_like(x)


@pytest.mark.parametrize("solver", [diffrax.Heun(), diffrax.Euler()], ids=["stratonovich", "ito"])
def test_sphere_brownian_motion_heat_kernel(solver):
    """Pure noise on S^2 (kappa = 2): E <X_t, X_0> = e^{-(d-1) t/kappa} = e^{-0.5} at t = 0.5, with the
    Stratonovich solver and with the Itô solver plus the retraction (projected Euler-Maruyama; 4000 walkers,
    sampling error 0.008)."""
    x0 = jnp.tile(jnp.array([[1.0, 0.0, 0.0]]), (4000, 1))
    field = NoisyField(Still(), 2.0, jax.random.PRNGKey(11), brownian="unsafe")
    traj = jaxattn.simulate(field, x0, 0.5, ts=2, solver=solver, dt0=0.005, adjoint=diffrax.ForwardMode())
    final = np.asarray(traj.final)
    np.testing.assert_allclose(np.linalg.norm(final, axis=-1), 1.0, atol=1e-14)
    assert abs(final[:, 0].mean() - math.exp(-0.5)) < 0.03


# ------------------------------------------------------------------------------------------ particle SDEs


def order_parameter(theta):
    return np.abs(np.mean(np.exp(1j * np.asarray(theta)), axis=-1))


def noisy_circle_run(drift, kappa, n, t1, burn_in, seed, dt=0.01):
    key_x, key_w = jax.random.split(jax.random.PRNGKey(seed))
    field = NoisyField(drift, kappa, key_w, brownian="unsafe")
    ts = np.linspace(burn_in, t1, int(round((t1 - burn_in) / 0.1)) + 1)
    traj = jaxattn.simulate(field, jaxattn.initial.uniform_circle(key_x, n), t1, ts=ts, solver=diffrax.Euler(),
                            dt0=dt, adjoint=diffrax.ForwardMode())
    return order_parameter(traj.xs).mean()


def test_noisy_kuramoto_pitchfork_small():  # F-27, small
    """n = 500, T = 100: ordered at kappa = 3 (mean field 0.7242), disordered at kappa = 1.5 (finite-n level)."""
    assert abs(noisy_circle_run(Kuramoto(), 3.0, 500, 100.0, 50.0, 0) - 0.7242) < 0.03
    low = noisy_circle_run(Kuramoto(), 1.5, 500, 100.0, 50.0, 1)
    assert abs(low - math.sqrt(math.pi / (4 * 500 * (1 - 1.5 / 2)))) < 0.04


@pytest.mark.slow
def test_noisy_kuramoto_pitchfork():  # F-27
    """n = 2000, Euler dt = 0.01, T = 300, burn-in 150: r = 0.724 +- 0.02 at kappa = 3, 0.04 +- 0.02 at 1.5."""
    assert abs(noisy_circle_run(Kuramoto(), 3.0, 2000, 300.0, 150.0, 0) - 0.724) < 0.02
    assert abs(noisy_circle_run(Kuramoto(), 1.5, 2000, 300.0, 150.0, 1) - 0.04) < 0.02


@pytest.mark.slow
def test_noisy_attention_bifurcation():  # F-28
    """(USA) on the circle at beta = 1: r = 0.862 +- 0.02 at kappa = 3 (mean field 0.8640, n = 2000, T = 300);
    between the thresholds of USA (1.769) and SA (2.240), at kappa = 2.0, USA orders and SA stays disordered."""
    usa = CircleSelfAttention(1.0, unnormalised=True, evaluator="fourier")
    assert abs(noisy_circle_run(usa, 3.0, 2000, 300.0, 150.0, 2) - 0.862) < 0.02
    sa = CircleSelfAttention(1.0, evaluator="fourier")
    r_usa = noisy_circle_run(usa, 2.0, 1000, 200.0, 100.0, 3)
    r_sa = noisy_circle_run(sa, 2.0, 1000, 200.0, 100.0, 4)
    assert abs(r_usa - stationary_order_parameter(1.0, 2.0)) < 0.05 and r_sa < 0.1


def test_noisy_ensemble_members_are_independent(key):
    """A batched ensemble from one x0: its members see independent noise (one Brownian motion of the
    ensemble's shape) and stay on the sphere; the rules of a noisy solve."""
    x0 = jaxattn.initial.uniform_sphere(key, 6, 3)
    drift = jaxattn.UnnormalisedSelfAttention(1.0)
    kw = dict(ts=2, dt0=0.1)
    final = jaxattn.simulate(NoisyField(drift, 4.0, key), jnp.stack([x0, x0, x0]), 1.0, **kw).final
    assert float(jnp.abs(final[0] - final[1]).max()) > 1e-2 and float(jnp.abs(final[1] - final[2]).max()) > 1e-2
    np.testing.assert_allclose(jnp.linalg.norm(final, axis=-1), 1.0, atol=1e-14)
    with pytest.raises(ValueError, match="one batched state"):
        jaxattn.simulate(NoisyField(drift, 4.0, key), jnp.stack([x0, x0]), 1.0, ensemble="vmap", **kw)
    with pytest.raises(ValueError, match="dt0"):
        jaxattn.simulate(NoisyField(drift, 4.0, key), x0, 1.0)
    with pytest.raises(ValueError, match="not an SDE solver"):
        jaxattn.simulate(NoisyField(drift, 4.0, key), x0, 1.0, solver=diffrax.Tsit5(), **kw)


@pytest.mark.slow
def test_noisy_pathwise_gradient(key):
    """On a fixed Brownian path (the virtual tree of the field's key) d(observable)/d kappa through the SDE
    solve equals central finite differences (reverse mode, recursive checkpointing)."""
    x0 = jaxattn.initial.uniform_sphere(key, 6, 3)
    drift = jaxattn.UnnormalisedSelfAttention(1.0)

    def obs(kappa):
        return jnp.sum(jaxattn.simulate(NoisyField(drift, kappa, key), x0, 1.0, ts=2, dt0=0.1).final[:, 0])

    h = 1e-5
    np.testing.assert_allclose(jax.grad(obs)(4.0), (obs(4.0 + h) - obs(4.0 - h)) / (2 * h), rtol=1e-5)


# ------------------------------------------------------------------------------------------ errors


def test_bad_noise_raises_eagerly_and_under_jit(key):
    drift = jaxattn.UnnormalisedSelfAttention(1.0)
    for kappa in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="kappa"):
            NoisyField(drift, kappa, key)
    with pytest.raises(RuntimeError, match="kappa"):
        jax.block_until_ready(jax.jit(lambda k: NoisyField(drift, k, key).kappa)(-1.0))
    with pytest.raises(TypeError, match="drift"):
        NoisyField("usa", 1.0, key)
    with pytest.raises(ValueError, match="brownian"):
        NoisyField(drift, 1.0, key, brownian="exact")
