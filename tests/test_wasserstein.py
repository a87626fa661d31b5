"""Exact W_p on S^{d-1} (jaxattn.spectral.wasserstein_sphere, SciPy) against closed forms and POT.

Oracles: a point mass moved by a geodesic angle (W_p = angle), a measure against its image under a
rotation by a small angle about an axis orthogonal to the support's plane (every point moves by the
same angle, so W_p <= angle, and for points on a great circle rotated within it W_1 = angle), the
two-point-mass plan computed by hand, and POT's network simplex where POT is installed.
"""

import numpy as np
import pytest

from jaxattn.spectral import wasserstein_sphere


def _sphere(rng, k, d=3):
    v = rng.normal(size=(k, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _rotation_z(phi):
    c, s = np.cos(phi), np.sin(phi)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def test_point_masses_closed_form():
    """delta_x vs delta_y: W_p = geodesic angle for every p; two masses with weights by hand."""
    x = np.array([[0.0, 0.0, 1.0]])
    for angle in (1e-7, 0.3, np.pi / 2, 3.0):
        y = np.array([[np.sin(angle), 0.0, np.cos(angle)]])
        for p in (1, 2):
            assert abs(wasserstein_sphere(x, y, p=p) - angle) < 1e-12
    # mu = 0.3 delta_N + 0.7 delta_E, nu = delta_S: everything moves, W1 = 0.3 pi + 0.7 pi/2
    N, E, S = [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]
    w = wasserstein_sphere(np.array([N, E]), np.array([S]), a=[0.3, 0.7], b=[1.0])
    assert abs(w - (0.3 * np.pi + 0.7 * np.pi / 2)) < 1e-9
    # W2^2 = 0.3 pi^2 + 0.7 (pi/2)^2
    w2 = wasserstein_sphere(np.array([N, E]), np.array([S]), a=[0.3, 0.7], b=[1.0], p=2)
    assert abs(w2**2 - (0.3 * np.pi**2 + 0.7 * (np.pi / 2) ** 2)) < 1e-9


def test_rotation_of_a_measure_on_a_great_circle():
    """n points on the equator, rotated by phi about the pole: W_1 = phi when phi < half the smallest gap.

    Every point moves by phi (an upper bound), and W_1 on S^1 is at least |mean angle shift| = phi
    (the circle's W1 dual with the 1-Lipschitz function theta near the support)."""
    rng = np.random.default_rng(1)
    theta = np.sort(rng.uniform(0, 2 * np.pi, 25))
    gap = np.min(np.diff(np.concatenate([theta, theta[:1] + 2 * np.pi])))
    x = np.stack([np.cos(theta), np.sin(theta), np.zeros_like(theta)], axis=1)
    phi = 0.4 * gap
    y = x @ _rotation_z(phi).T
    assert abs(wasserstein_sphere(x, y[::-1]) - phi) < 1e-12  # order of the points does not matter


def test_rotation_upper_bound_and_metric_axioms():
    """Off a great circle: W_p(mu, R mu) <= max displacement; symmetry; triangle inequality."""
    rng = np.random.default_rng(2)
    x, y, z = _sphere(rng, 40), _sphere(rng, 40), _sphere(rng, 40)
    R = _rotation_z(0.2)
    disp = np.arccos(np.clip(np.sum(x * (x @ R.T), axis=1), -1, 1))
    assert wasserstein_sphere(x, x @ R.T) <= disp.mean() + 1e-12
    assert wasserstein_sphere(x, x) < 1e-12
    dxy = wasserstein_sphere(x, y)
    assert abs(dxy - wasserstein_sphere(y, x)) < 1e-12
    assert dxy <= wasserstein_sphere(x, z) + wasserstein_sphere(z, y) + 1e-12
    # W1 <= W2 (Jensen) for the same pair
    assert dxy <= wasserstein_sphere(x, y, p=2) + 1e-12


def test_assignment_and_linear_program_agree():
    """Uniform weights passed explicitly go through the LP: same value as the assignment."""
    rng = np.random.default_rng(3)
    x, y = _sphere(rng, 30, d=4), _sphere(rng, 30, d=4)
    u = np.full(30, 1 / 30)
    assert abs(wasserstein_sphere(x, y) - wasserstein_sphere(x, y, a=u, b=u)) < 1e-9


def test_against_pot():
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(4)
    x, y = _sphere(rng, 50), _sphere(rng, 35)
    a, b = rng.uniform(size=50), rng.uniform(size=35)
    a, b = a / a.sum(), b / b.sum()
    C = np.arccos(np.clip(x @ y.T, -1, 1))
    assert abs(wasserstein_sphere(x, y, a, b) - ot.emd2(a, b, C)) < 1e-8
    y = _sphere(rng, 50)
    C = np.arccos(np.clip(x @ y.T, -1, 1))
    u = np.full(50, 1 / 50)
    assert abs(wasserstein_sphere(x, y, p=2) ** 2 - ot.emd2(u, u, C**2)) < 1e-8


def test_errors_say_what_to_fix():
    x = np.array([[0.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match="equal mass"):
        wasserstein_sphere(x, x, a=[1.0], b=[0.5])
    with pytest.raises(ValueError, match="non-negative"):
        wasserstein_sphere(np.vstack([x, x]), x, a=[1.5, -0.5], b=[1.0])
    with pytest.raises(ValueError, match="p must be"):
        wasserstein_sphere(x, x, p=0)
    with pytest.raises(ValueError, match="unit sphere"):
        wasserstein_sphere(2 * x, x)
