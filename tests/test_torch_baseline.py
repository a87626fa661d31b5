"""The torchdiffeq baseline solves the same equation as jaxattn.SelfAttention.

Needs the optional ``torch`` extra (``pip install -e '.[torch]'``); skipped without it (CI).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchdiffeq")

import jax  # noqa: E402

import jaxattn  # noqa: E402
from benchmarks import torch_baseline  # noqa: E402


@pytest.mark.parametrize("n, d, beta", [(17, 3, 1.0), (17, 3, 9.0), (40, 8, 4.0)])
def test_torch_rhs_equals_selfattention_velocity(n, d, beta):
    x = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(n + d), n, d)
    expected = np.asarray(jaxattn.SelfAttention(beta)(0.0, x))
    got = torch_baseline.sa_rhs(torch.tensor(np.array(x)), beta).numpy()
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_torch_solve_matches_simulate():
    x = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(1), 8, 3)
    solve = torch_baseline.make_solver(np.asarray(x), 9.0, 2.0, num_saves=3)
    xs = solve()
    ref = jaxattn.simulate(jaxattn.SelfAttention(9.0), x, 2.0, ts=3).xs
    assert xs.shape == (3, 8, 3) and solve.nfe > 0
    np.testing.assert_allclose(xs, np.asarray(ref), rtol=0, atol=1e-4)
