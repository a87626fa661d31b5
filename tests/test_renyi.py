"""Rényi centres (Karagodin, Polyanskiy, Rigollet 2024, §5.1) against an independent NumPy greedy loop.

The definition: for a sequence x_1, x_2, ... with geodesic distance and separation delta, token k is a Rényi
centre when it is more than delta from every earlier centre (strong: from every earlier token); token 1
always is. The figures' delta = 4 beta^{-1/2} exceeds pi/2 for beta < 6.48, where an empty slot of the
centre buffer (the zero vector, <0, x> = 0 >= cos delta) would look close to every token.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn.analysis import renyi


def _greedy(points, delta, strong=False):
    """The definition as a double loop in NumPy (geodesic distance arccos <x, y>)."""
    centres = []
    mask = np.zeros(len(points), bool)
    for k, x in enumerate(points):
        others = points[:k] if strong else [points[i] for i in centres]
        if all(np.arccos(np.clip(np.dot(x, y), -1, 1)) > delta for y in others):
            centres.append(k)
            mask[k] = True
    return mask


def test_hand_case_with_delta_above_half_pi():
    """delta = 2 (beta = 4): 0 is a centre; 0.4 is within 2 of it; 2.5 is 2.5 and 2.1 away (a strong centre); -2.2 is 2.2 from 0
    but 1.58 from 2.5 (geodesic, across pi); 3.1 is 0.6 from 2.5."""
    theta = jnp.array([0.0, 0.4, 2.5, -2.2, 3.1])
    expected = [True, False, True, False, False]
    assert renyi.renyi_centres(theta, 2.0).tolist() == expected
    assert jax.jit(lambda t: renyi.renyi_centres(t, 2.0))(theta).tolist() == expected
    assert renyi.strong_renyi_centres(theta, 2.0).tolist() == [True, False, True, False, False]


@pytest.mark.parametrize("manifold, d", [("circle", 2), ("sphere", 3), ("sphere", 4)])
def test_token_one_is_a_centre_and_greedy_oracle(manifold, d):
    """Random sequences, delta across (0, pi) including the figures' delta = 4 beta^{-1/2} for beta = 2, 4, 6:
    token 1 is always a (strong) centre, and the masks equal the NumPy loop, eagerly and under jit."""
    rng = np.random.default_rng(7)
    for delta in (0.3, 1.2, float(renyi.default_delta(6.0)), float(renyi.default_delta(4.0)),
                  float(renyi.default_delta(2.0)), 3.0):
        for _ in range(3):
            if manifold == "circle":
                x = rng.uniform(-np.pi, np.pi, 12)
                points = np.stack([np.cos(x), np.sin(x)], axis=-1)
            else:
                points = rng.standard_normal((12, d))
                x = points = points / np.linalg.norm(points, axis=-1, keepdims=True)
            for strong, fn in ((False, renyi.renyi_centres), (True, renyi.strong_renyi_centres)):
                eager = np.asarray(fn(jnp.asarray(x), delta, manifold=manifold))
                traced = np.asarray(jax.jit(lambda y: fn(y, delta, manifold=manifold))(jnp.asarray(x)))
                assert eager[0] and traced[0], f"token 1 is not a centre at delta = {delta}"
                np.testing.assert_array_equal(eager, _greedy(points, delta, strong))
                np.testing.assert_array_equal(traced, eager)
