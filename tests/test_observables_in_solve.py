"""Observables inside the solve: solve_ensemble(in_solve=True) saves observe(t, x) at
the save times through diffrax's SaveAt(fn=...) instead of the states; for observables that are
pointwise in time it must equal the observables of the saved states (the same interpolated,
retracted states) to round-off."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxattn
from jaxattn.analysis import clustered_pair_fraction
from jaxattn.solve import solve_ensemble


def observe(t, xs):
    gram = jnp.einsum("...id,...jd->...ij", xs, xs)
    return {"pair_fraction": clustered_pair_fraction(xs, 1e-2),
            "gram_mean": jnp.mean(gram, axis=(-2, -1)),          # <mean x, mean x> = |x_bar|^2
            "first_token": xs[..., 0, :],                        # a vector observable
            "clustered": clustered_pair_fraction(xs, 1e-2) > 0.5}  # a boolean one


@pytest.mark.parametrize("field", ["SA", "USA"])
def test_observables_in_solve_equal_observables_of_saved_states(key, field):
    beta = 4.0
    model = jaxattn.SelfAttention(beta) if field == "SA" else jaxattn.UnnormalisedSelfAttention(
        beta, time_rescaled=True)
    x0 = jaxattn.initial.uniform_sphere(key, 12, 5, batch=6)
    ts = jnp.linspace(0.0, 8.0, 17)
    saved = solve_ensemble(model, x0, 8.0, ts=ts, observe=observe, rtol=1e-8, atol=1e-8)
    inside = solve_ensemble(model, x0, 8.0, ts=ts, observe=observe, in_solve=True, rtol=1e-8, atol=1e-8)
    assert int(inside["num_steps"]) == int(saved["num_steps"])  # the same steps
    for name in ("pair_fraction", "gram_mean", "first_token", "clustered"):
        assert inside[name].shape == saved[name].shape
        assert inside[name].dtype == saved[name].dtype
    np.testing.assert_allclose(inside["gram_mean"], saved["gram_mean"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(inside["first_token"], saved["first_token"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(inside["pair_fraction"], saved["pair_fraction"])
    np.testing.assert_array_equal(inside["clustered"], saved["clustered"])
    # the physics: tokens stay on the sphere, and SA clusters (Geshkovski et al. 2023 (emergence),
    # Thm 1.1): |x_bar|^2 grows towards 1 and the pair fraction reaches 1
    np.testing.assert_allclose(np.linalg.norm(inside["first_token"], axis=-1), 1.0, atol=1e-12)
    assert np.all(inside["gram_mean"][:, -1] > inside["gram_mean"][:, 0])


def test_in_solve_errors_name_the_fix(key):
    x0 = jaxattn.initial.uniform_sphere(key, 6, 3, batch=2)
    with pytest.raises(ValueError, match="member axis first"):
        solve_ensemble(jaxattn.SelfAttention(1.0), x0, 1.0, ts=jnp.linspace(0, 1, 3),
                       observe=lambda t, x: jnp.mean(x), in_solve=True)


def test_phase_diagram_solver_and_float32_opt_in(tmp_path):
    """paper_002.phase_diagram with another solver or the float32 opt-in reproduces the default's P
    (same draws) to within the solver tolerance's effect on the clustered-pair fraction; bad
    choices are refused with the valid ones named."""
    from jaxattn.studies import paper_002 as p2

    kw = dict(n=16, d=8, batch=8, progress=False)
    ts = [0.0, 2.0, 4.0, 8.0]
    base = p2.phase_diagram([1.0, 4.0], ts, directory=tmp_path / "a", rtol=1e-8, **kw).probability.values
    assert base.ravel()[0] == 0.0 and base.max() > 0.5  # uniform start, then clustering
    for name, extra in (("b", dict(solver="bosh3", rtol=1e-6)), ("c", dict(precision="float32", rtol=1e-5))):
        other = p2.phase_diagram([1.0, 4.0], ts, directory=tmp_path / name, **extra, **kw).probability.values
        np.testing.assert_allclose(other, base, atol=0.02)
    with pytest.raises(ValueError, match="solver must be one of"):
        p2.phase_diagram([1.0], ts, directory=tmp_path / "d", solver="rk4", **kw)
    with pytest.raises(ValueError, match="explicit opt-in"):
        p2.phase_diagram([1.0], ts, directory=tmp_path / "e", precision="float16", **kw)


def test_integer_observables_stay_exact_in_float32(key):
    """Observables travel through the solve in their own dtype: an integer above 2^24 with float32 states
    (where a float32 rounds 2^24 + 1 to 2^24) comes back exact, equal to the count on the saved states."""
    x0 = jaxattn.initial.uniform_sphere(key, 6, 3, batch=2).astype(jnp.float32)

    def observe(t, x):
        return {"count": jnp.sum(x[..., 0] > 0, axis=-1, dtype=jnp.int32) + (2**24 + 1)}

    ts = jnp.linspace(0.0, 2.0, 3, dtype=jnp.float32)
    inside = solve_ensemble(jaxattn.SelfAttention(2.0), x0, 2.0, ts=ts, observe=observe, in_solve=True)
    saved = solve_ensemble(jaxattn.SelfAttention(2.0), x0, 2.0, ts=ts, observe=observe)
    assert inside["count"].dtype == np.int32
    np.testing.assert_array_equal(inside["count"], saved["count"])
    assert np.all(inside["count"] > 2**24) and np.any(inside["count"] % 2 == 1)  # odd: not float32-rounded
