"""Compile once per shape (chex.assert_max_traces), public observables jitted and not (chex.variants).

A sweep or an ensemble loop that re-traces its solve for every parameter value is a silent 100x
slowdown (the solve compiles in seconds and runs in milliseconds). The compiled core of every
``simulate``/``solve_ensemble`` call is ``solve_jit`` (an ``eqx.filter_jit`` in ``jaxattn/solve``),
which traces ``solve_one`` exactly once per compilation; wrapping ``solve_one`` with
``chex.assert_max_traces(n=1)`` (a monkeypatch: library behaviour is unchanged) makes any second
trace an AssertionError, and a counter beside it proves that the first trace did happen (so the
check can fail: a new shape must trace again, and does).

Shapes here (n = 7 and n = 9 tokens, 5-6 members) are used by no other test, so the first call
in this process always compiles afresh, whichever tests ran before in the same worker.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxattn
from jaxattn import analysis
from jaxattn.solve import _ensemble  # the module whose solve_jit calls solve_one (the hook point)


@pytest.fixture
def traces(monkeypatch):
    """Counts traces of the solve core: ``traces["n"]``; a second trace raises AssertionError (chex)."""
    chex.clear_trace_counter()
    count = {"n": 0}
    inner = _ensemble.solve_one

    def solve_one(*args, **kwargs):
        if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves((args, kwargs))):
            count["n"] += 1
        return inner(*args, **kwargs)

    monkeypatch.setattr(_ensemble, "solve_one", chex.assert_max_traces(solve_one, n=1))
    yield count
    chex.clear_trace_counter()


def _on_sphere(key, shape):
    x = jax.random.normal(key, shape)
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


@pytest.mark.parametrize("ensemble", ["batched", "vmap"])
def test_beta_sweep_and_ensembles_compile_once(traces, ensemble):
    """simulate over 3 betas x 2 ensembles of shape (5, 7, 3) and a chunked solve of (6, 7, 3) in
    chunks of 3 (equal chunks, padded): one trace of the solve core in all. The results differ
    from call to call (values flow through, nothing is a cached constant) and stay on S^2."""
    keys = jax.random.split(jax.random.PRNGKey(11), 3)
    finals = []
    for beta in (0.5, 1.0, 4.0):
        for k in keys[:2]:
            x0 = _on_sphere(k, (5, 7, 3))
            tr = jaxattn.simulate(jaxattn.SelfAttention(beta), x0, 1.0, ts=3, ensemble=ensemble)
            finals.append(np.asarray(tr.final))
    assert traces["n"] == 1
    # different betas and different ensembles give different ends; every token stays on the sphere
    assert min(np.abs(a - b).max() for i, a in enumerate(finals) for b in finals[i + 1:]) > 1e-6
    np.testing.assert_allclose(np.linalg.norm(np.stack(finals), axis=-1), 1.0, atol=1e-6)
    # a new shape must trace again: chex refuses the second trace; once its counter is reset the
    # trace goes through and is counted
    x_new = _on_sphere(keys[2], (5, 8, 3))
    with pytest.raises(AssertionError, match="trace"):
        jaxattn.simulate(jaxattn.SelfAttention(1.0), x_new, 1.0, ts=3, ensemble=ensemble)
    chex.clear_trace_counter()
    jaxattn.simulate(jaxattn.SelfAttention(1.0), x_new, 1.0, ts=3, ensemble=ensemble)
    assert traces["n"] == 2


def test_chunked_ensemble_compiles_once(traces):
    """max_memory forces 3 chunks of 2 members (6 members): one compilation serves all chunks, and the
    chunked result equals the unchunked one at the solver tolerance (a second shape: its own trace)."""
    x0 = _on_sphere(jax.random.PRNGKey(12), (6, 7, 3))
    field = jaxattn.SelfAttention(2.0)
    per_member = jaxattn.solve.ensemble_bytes_per_member(7, 3, 3)
    chunked = jaxattn.simulate(field, x0, 1.0, ts=3, ensemble="batched", max_memory=2 * per_member)
    chunked2 = jaxattn.simulate(field, -x0, 1.0, ts=3, ensemble="batched", max_memory=2 * per_member)
    assert traces["n"] == 1
    # -x0 is the image of x0 under x -> -x, a symmetry of (SA) with Q = K = V = I
    chex.assert_trees_all_close(chunked2.xs, -chunked.xs, atol=1e-12)
    chex.clear_trace_counter()
    whole = jaxattn.simulate(field, x0, 1.0, ts=3, ensemble="batched", max_memory=None)
    chex.assert_trees_all_close(chunked.xs, whole.xs, atol=1e-5)


def test_solve_ensemble_compiles_once(traces):
    """solve_ensemble on three ensembles of shape (5, 9, 3), different values: one trace; the observable
    (mean inner product of the final states) is checked against NumPy on the returned trajectories' ends."""
    field = jaxattn.SelfAttention(3.0)
    observe = lambda t, x: {"m": analysis.mean_inner_product(x)}  # noqa: E731
    outs = []
    for s in range(3):
        x0 = _on_sphere(jax.random.PRNGKey(20 + s), (5, 9, 3))
        out = jaxattn.solve.solve_ensemble(field, x0, 2.0, ts=jnp.array([0.0, 2.0]), observe=observe)
        ref = jaxattn.simulate(field, x0, 2.0, ts=jnp.array([0.0, 2.0]), ensemble="batched").final
        g = np.einsum("bid,bjd->bij", np.asarray(ref), np.asarray(ref))
        expected = (g.sum(axis=(1, 2)) - np.trace(g, axis1=1, axis2=2)) / (9 * 8)
        np.testing.assert_allclose(out["m"][:, -1], expected, atol=1e-12)
        outs.append(out["m"][:, -1])
    assert traces["n"] == 1
    assert np.abs(outs[0] - outs[1]).max() > 1e-6


# ------------------------------------------------------------------ public observables, jitted and not


def _numpy_pairs(x):
    """Off-diagonal <x_i, x_j> by a double loop (the independent oracle)."""
    n = x.shape[0]
    return np.array([x[i] @ x[j] for i in range(n) for j in range(n) if i != j])


class TestObservableVariants(chex.TestCase):
    """Each public observable gives the same numbers eagerly and under jax.jit (chex.variants), and
    equals a NumPy double loop over the pairs."""

    def setUp(self):
        super().setUp()
        self.x = np.asarray(_on_sphere(jax.random.PRNGKey(30), (6, 3)))
        self.pairs = _numpy_pairs(self.x)

    @chex.variants(with_jit=True, without_jit=True)
    def test_mean_and_min_inner_product(self):
        m = self.variant(analysis.mean_inner_product)(self.x)
        chex.assert_trees_all_close(m, self.pairs.mean(), atol=1e-14)
        mn = self.variant(analysis.min_inner_product)(self.x)
        chex.assert_trees_all_close(mn, self.pairs.min(), atol=1e-14)

    @chex.variants(with_jit=True, without_jit=True)
    def test_inner_product_statistics_pytree(self):
        stats = self.variant(analysis.inner_product_statistics)(self.x)
        p = self.pairs
        chex.assert_trees_all_close(stats, {"mean": p.mean(), "min": p.min(), "max": p.max(), "std": p.std()},
                                    atol=1e-14)

    @chex.variants(with_jit=True, without_jit=True)
    def test_interaction_energy(self):
        beta = 2.5
        e = self.variant(analysis.interaction_energy)(self.x, beta)
        n = self.x.shape[0]
        ref = sum(np.exp(beta * self.x[i] @ self.x[j]) for i in range(n) for j in range(n)) / (2 * beta * n**2)
        chex.assert_trees_all_close(e, ref, rtol=1e-13)

    @chex.variants(with_jit=True, without_jit=True)
    def test_soft_min_inner_product_bounds(self):
        """min <= m_tau <= min + tau log(n(n-1)) (the docstring's bound)."""
        tau = 1e-2
        m = float(self.variant(analysis.soft_min_inner_product, static_argnums=1)(self.x, tau))
        assert self.pairs.min() - 1e-14 <= m <= self.pairs.min() + tau * np.log(self.pairs.size) + 1e-14
