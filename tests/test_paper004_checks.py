"""Paper 004 (Bruno, Pasqualotto, Agazzi 2025, "Emergence of meta-stable clustering in mean-field transformer
models"): the symmetry checks of the particle system on S^1 that tests/test_spectral_paper004.py does not make.

The interaction e^{beta cos(theta_i - theta_j)} sin(theta_j - theta_i) of eq. (10) depends only on differences,
so the particle field commutes with rotations; a configuration invariant under the rotation by 2 pi / m (the
cyclic group C_m acting on labelled particles) therefore stays invariant for all time (uniqueness of the ODE
solution). This is the particle counterpart of the invariance of H_m (densities with modes in m Z) used in
Section 4; the oracle is the exact group action, not the library.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxattn
from jaxattn.studies import paper_004 as P


@pytest.mark.parametrize(("model", "evaluator", "t1"), [("usa", "fourier", 0.6), ("sa", "dense", 4.0)])
def test_cn_symmetric_particles_stay_symmetric(key, model, evaluator, t1):
    m, per, beta = 3, 40, 5.0
    base = jax.random.uniform(key, (per,), minval=0.0, maxval=2 * math.pi / m)
    theta0 = jnp.concatenate([base + 2 * math.pi * r / m for r in range(m)])  # C_3-orbits of `per` particles
    field = (P.circle_field(beta, model) if evaluator == "fourier"
             else jaxattn.CircleSelfAttention(beta, unnormalised=model == "usa"))
    ts = jnp.linspace(0.0, t1, 7)
    xs = np.asarray(jaxattn.simulate(field, theta0, t1, ts=ts, rtol=1e-10, atol=1e-12).xs)  # (T, m * per)
    blocks = xs.reshape(len(ts), m, per)
    for r in range(1, m):
        shift = blocks[:, r] - blocks[:, 0] - 2 * math.pi * r / m
        np.testing.assert_allclose(np.angle(np.exp(1j * shift)), 0.0, atol=1e-9)
    # the particles did move (by far more than the tolerance), and the motion is not a rigid rotation
    moved = np.abs(xs[-1] - xs[0])
    assert moved.max() > 0.05 and np.ptp(xs[-1] - xs[0]) > 0.05
    # breaking the symmetry by 1e-3 in one particle is visible at the same tolerance (the check can fail)
    xs_b = np.asarray(jaxattn.simulate(field, theta0.at[0].add(1e-3), t1, ts=ts, rtol=1e-10, atol=1e-12).xs)
    blocks_b = xs_b.reshape(len(ts), m, per)
    assert np.abs(np.angle(np.exp(1j * (blocks_b[:, 1] - blocks_b[:, 0] - 2 * math.pi / m)))).max() > 1e-6


def test_rotation_and_reflection_equivariance(key):
    """Rotating the initial angles by phi rotates the solution by phi; reflecting theta -> -theta reflects it."""
    beta, phi = 5.0, 0.7
    theta0 = jax.random.uniform(key, (60,), minval=-math.pi, maxval=math.pi)
    field = P.circle_field(beta, "usa")
    ts = jnp.linspace(0.0, 0.4, 5)

    def run(th):
        return np.asarray(jaxattn.simulate(field, th, 0.4, ts=ts, rtol=1e-11, atol=1e-13).xs)

    base = run(theta0)
    np.testing.assert_allclose(np.angle(np.exp(1j * (run(theta0 + phi) - base - phi))), 0.0, atol=1e-9)
    np.testing.assert_allclose(np.angle(np.exp(1j * (run(-theta0) + base))), 0.0, atol=1e-9)


@pytest.mark.slow
def test_figure2_dominant_mode_at_first_exit(key):  # test 26(a)
    """Fig. 2 (statistical): from N i.i.d. uniform particles (USA, V = I), the first Fourier mode of the empirical
    measure to reach |mu_k| > 0.2 (k <= 8) is the most unstable mode of the linearisation, k_max = argmax_k
    gamma_k with gamma_k = k^2 I_k(beta) / beta (Section 3; computed here with scipy.special.iv), in at least half
    of the seeds, for beta = 2, 5, 7. With 10 seeds and a true rate p >= 0.7 (reference runs at N = 1e4: 0.8,
    0.7, 0.7), P(fewer than 5) <= 0.048 per beta by the binomial tail."""
    import scipy.special

    N, seeds = 10_000, 10
    k = np.arange(1, 9)
    for beta, t1 in ((2.0, 5.0), (5.0, 0.6), (7.0, 0.3)):  # exit at ~ log(0.2 sqrt(N)) / gamma_max
        k_max = int(k[np.argmax(k**2 * scipy.special.iv(k, beta) / beta)])
        ts = jnp.linspace(0.0, t1, 121)
        hits = 0
        for s in range(seeds):
            theta0 = jax.random.uniform(jax.random.fold_in(key, 100 * int(beta) + s), (N,), minval=0.0,
                                        maxval=2 * math.pi)
            xs = jaxattn.simulate(P.circle_field(beta, "usa"), theta0, t1, ts=ts, rtol=1e-6, atol=1e-8).xs
            modes = np.abs(np.asarray(jnp.mean(jnp.exp(1j * k[None, :, None] * xs[:, None, :]), axis=-1)))  # (T, 8)
            exit_index = np.flatnonzero(modes.max(axis=1) > 0.2)
            assert exit_index.size, f"no mode exceeded 0.2 by t = {t1} (beta = {beta}, seed {s})"
            hits += int(k[np.argmax(modes[exit_index[0]])] == k_max)
        assert hits >= 5, (beta, k_max, hits)
