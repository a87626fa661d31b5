"""Bad inputs raise ValueError/TypeError that say what is wrong; a fuzz test checks that
every call either raises such an error or returns finite output."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxattn

X = jaxattn.initial.uniform_sphere(jaxattn.initial.jax.random.PRNGKey(0), 5, 3)


@pytest.mark.parametrize("beta", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_beta(beta):
    with pytest.raises(ValueError, match="beta must be finite and > 0"):
        jaxattn.SelfAttention(beta)


def test_beta_must_be_scalar():
    with pytest.raises(ValueError, match="scalar"):
        jaxattn.SelfAttention(jnp.ones(2))


def test_bad_matrices():
    with pytest.raises(ValueError, match="same token dimension"):
        jaxattn.SelfAttention(1.0, Q=jnp.eye(3), K=jnp.eye(4))
    with pytest.raises(ValueError, match="square"):
        jaxattn.SelfAttention(1.0, V=jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="same number of rows"):
        jaxattn.SelfAttention(1.0, Q=jnp.ones((2, 3)), K=jnp.ones((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        jaxattn.SelfAttention(1.0, V=jnp.full((3, 3), jnp.nan))
    with pytest.raises(TypeError, match="Q must be array-like"):
        jaxattn.SelfAttention(1.0, Q="identity")
    with pytest.raises(ValueError, match="square"):
        jaxattn.EuclideanSelfAttention(jnp.eye(3), jnp.eye(3), jnp.ones((3, 2)))


def test_d_mismatch_between_tokens_and_matrices():
    with pytest.raises(ValueError, match="dimension d = 3 but the field's Q/K/V act on d = 4"):
        jaxattn.simulate(jaxattn.SelfAttention(1.0, V=jnp.eye(4)), X, 1.0)


def test_bad_x0():
    field = jaxattn.SelfAttention(1.0)
    with pytest.raises(ValueError, match="off the unit sphere"):
        jaxattn.simulate(field, 2 * X, 1.0)
    with pytest.raises(ValueError, match="NaN"):
        jaxattn.simulate(field, X.at[0, 0].set(jnp.nan), 1.0)
    with pytest.raises(ValueError, match="shape"):
        jaxattn.simulate(field, X[0], 1.0)
    with pytest.raises(ValueError, match="n >= 1"):
        jaxattn.simulate(field, jnp.zeros((0, 3)), 1.0)
    with pytest.raises(ValueError, match="d >= 2"):
        jaxattn.simulate(field, jnp.ones((4, 1)), 1.0)
    with pytest.raises(TypeError, match="real floating"):
        jaxattn.simulate(field, X.astype(jnp.complex128), 1.0)
    with pytest.raises(TypeError, match="jaxattn field"):
        jaxattn.simulate(lambda t, x, a: x, X, 1.0)


def test_bad_times_and_options():
    field = jaxattn.SelfAttention(1.0)
    with pytest.raises(ValueError, match="t1 must be greater than t0"):
        jaxattn.simulate(field, X, 0.0)
    with pytest.raises(ValueError, match="finite"):
        jaxattn.simulate(field, X, float("inf"))
    with pytest.raises(ValueError, match="inside"):
        jaxattn.simulate(field, X, 1.0, ts=jnp.array([0.0, 2.0]))
    with pytest.raises(ValueError, match="ensemble"):
        jaxattn.simulate(field, X, 1.0, ensemble="pmap")
    with pytest.raises(ValueError, match="max_steps"):
        jaxattn.simulate(field, X, 1.0, max_steps=0)


def test_initial_conditions_validate():
    key = jaxattn.initial.jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="n must be a positive int"):
        jaxattn.initial.uniform_sphere(key, 0, 3)
    with pytest.raises(ValueError, match="d >= 2"):
        jaxattn.initial.uniform_sphere(key, 4, 1)
    with pytest.raises(ValueError, match="d >= n"):
        jaxattn.initial.orthogonal_frame(5, 3)
    with pytest.raises(ValueError, match="zero vector"):
        jaxattn.initial.project_to_sphere(jnp.zeros((2, 3)))


def test_kuramoto_frequencies_must_match_n():
    with pytest.raises(ValueError, match="3 frequencies but there are 4"):
        jaxattn.simulate(jaxattn.Kuramoto(1.0, jnp.ones(3)), jnp.zeros(4), 1.0)


finite_or_not = st.one_of(
    st.floats(-1e4, 1e4, allow_nan=False),
    st.sampled_from([0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e300, -1e-300]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    beta=st.one_of(st.floats(-10, 1e3), st.sampled_from([float("nan"), 1e-300])),
    n=st.sampled_from([0, 1, 4]),
    d=st.sampled_from([1, 2, 3]),
    dv=st.sampled_from([None, 2, 3]),
    entry=finite_or_not,
    scale=st.sampled_from([1.0, 2.0, 1e-9]),
    causal=st.booleans(),
)
def test_fuzz_fields_raise_or_return_finite(beta, n, d, dv, entry, scale, causal):
    """Every call raises ValueError/TypeError, or gives a finite velocity."""
    try:
        V = None if dv is None else jnp.eye(dv).at[0, 0].set(entry)
        field = jaxattn.SelfAttention(beta, V=V, causal=causal)
        x = jnp.ones((n, d)) * scale
        x = x.at[..., 0].set(entry) if n and d else x
        traj = jaxattn.simulate(field, x, 0.1, ts=2, max_steps=200)
    except (ValueError, TypeError):
        return
    except jaxattn.SolverStepLimitError:
        return
    assert np.all(np.isfinite(np.asarray(traj.xs)))
