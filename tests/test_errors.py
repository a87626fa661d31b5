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


# --------------------------------------------------------------------------- traced checks, hostile values
# Checks hold traced (jax.jit, jax.grad, jax.vmap) with the message of the eager check: eagerly a
# ValueError before solving; traced an equinox.error_if failure (a RuntimeError: JaxRuntimeError
# under jax.jit, EquinoxRuntimeError under eqx.filter_jit/grad/vmap) whose text carries the message.

import diffrax  # noqa: E402
import equinox as eqx  # noqa: E402
import jax  # noqa: E402

SA1 = jaxattn.SelfAttention(1.0)


def _final(x, t1):
    return jaxattn.simulate(SA1, x, t1, ts=2).final


def _beta_final(b):
    return jaxattn.simulate(jaxattn.SelfAttention(b), X, 1.0, ts=2).final


TRACED_CASES = [
    # (name, function, arguments, message)
    ("t1 < t0", _final, (X, -1.0), "t1 must be greater than t0"),
    ("t1 nan", _final, (X, float("nan")), "t1 must be finite"),
    ("t1 inf", _final, (X, float("inf")), "t1 must be finite"),
    ("off sphere", _final, (2 * X, 1.0), "off the unit sphere"),
    ("x0 nan", _final, (X.at[0, 0].set(jnp.nan), 1.0), "x0 contains NaN or inf"),
    ("beta < 0", _beta_final, (-1.0,), "beta must be finite and > 0"),
    ("beta = 0", _beta_final, (0.0,), "beta must be finite and > 0"),
    ("beta nan", _beta_final, (float("nan"),), "beta must be finite and > 0"),
]


@pytest.mark.parametrize("name,fn,args,message", TRACED_CASES, ids=[c[0] for c in TRACED_CASES])
@pytest.mark.parametrize("transform", ["eager", "jit", "filter_jit"])
def test_checks_hold_traced(name, fn, args, message, transform):
    wrapped = {"eager": fn, "jit": jax.jit(fn), "filter_jit": eqx.filter_jit(fn)}[transform]
    args = tuple(jnp.asarray(a) if transform != "eager" else a for a in args)  # traced under filter_jit too
    with pytest.raises((ValueError, RuntimeError), match=message):
        jax.block_until_ready(wrapped(*args))


def test_checks_hold_under_grad_and_vmap():
    loss = lambda b: jnp.sum(_beta_final(b))  # noqa: E731
    with pytest.raises((ValueError, RuntimeError), match="beta must be finite and > 0"):
        jax.grad(loss)(-1.0)
    assert np.isfinite(jax.grad(loss)(1.0))
    with pytest.raises(RuntimeError, match="t1 must be greater than t0"):
        jax.block_until_ready(jax.vmap(lambda t: _final(X, t))(jnp.array([1.0, -1.0])))
    with pytest.raises(RuntimeError, match="off the unit sphere"):
        jax.block_until_ready(jax.vmap(lambda s: _final(s * X, 1.0))(jnp.array([1.0, 2.0])))
    # a valid traced call equals the eager one
    np.testing.assert_allclose(jax.jit(_final)(X, 1.0), _final(X, 1.0), atol=1e-12)


def test_traced_ts_checked():
    f = jax.jit(lambda ts: jaxattn.simulate(SA1, X, 1.0, ts=ts).final)
    with pytest.raises(RuntimeError, match="ts must be finite"):
        jax.block_until_ready(f(jnp.array([0.0, jnp.nan, 1.0])))
    with pytest.raises(RuntimeError, match="non-decreasing and inside"):
        jax.block_until_ready(f(jnp.array([0.0, 2.0])))


def test_arguments_validated_before_solving():
    with pytest.raises(ValueError, match="ts must be finite"):
        jaxattn.simulate(SA1, X, 1.0, ts=jnp.array([0.0, jnp.nan, 1.0]))
    for rtol, atol in [(-1e-6, 1e-6), (1e-6, -1e-6), (float("nan"), 1e-6), (1e-6, float("inf")), (0.0, 0.0)]:
        with pytest.raises(ValueError, match="rtol and atol"):
            jaxattn.simulate(SA1, X, 1.0, rtol=rtol, atol=atol)
    with pytest.raises(ValueError, match="rtol and atol"):
        jaxattn.simulate(SA1, X, 1.0, stepsize_controller=diffrax.PIDController(rtol=-1, atol=1e-6))
    # a pure absolute (or relative) tolerance is legitimate
    jaxattn.simulate(SA1, X, 0.5, rtol=0.0, atol=1e-6, ts=2)
    for dt0 in (-0.1, 0.0, float("nan")):
        with pytest.raises(ValueError, match="dt0 must be"):
            jaxattn.simulate(SA1, X, 1.0, dt0=dt0)
    with pytest.raises(TypeError, match="float16"):
        jaxattn.simulate(SA1, X.astype(jnp.float16), 1.0)
    with pytest.raises(TypeError, match="bfloat16"):
        jaxattn.simulate(SA1, X.astype(jnp.bfloat16), 1.0)
    with pytest.raises(ValueError, match="max_steps"):
        jaxattn.simulate(SA1, X, 1.0, max_steps=True)
    traj = jaxattn.simulate(SA1, X, 1.0, ts=2, max_steps=np.int64(100))
    np.testing.assert_allclose(traj.final, jaxattn.simulate(SA1, X, 1.0, ts=2).final, atol=0)


def test_traced_dt0_checked():
    f = jax.jit(lambda dt0: jaxattn.simulate(SA1, X, 1.0, ts=2, dt0=dt0).final)
    with pytest.raises(RuntimeError, match="dt0 must be"):
        jax.block_until_ready(f(-0.1))


@pytest.mark.parametrize("case", ["logits", "float32 logits"])
def test_nonfinite_state_stops_at_once(case):
    """Overflowing logits stop the solve within a few dozen steps with the time and the cause, not
    after max_steps (65,536 steps before); inside jit with the same cause."""
    if case == "logits":  # beta <Q x, K x> = 1e320 overflows float64
        field, x, cause = jaxattn.SelfAttention(1.0, Q=1e160 * jnp.eye(3), K=1e160 * jnp.eye(3)), X, "float64"
    else:  # Q = K = 1e20 I are float32 numbers, <Q x, K x> = 1e40 is not
        field = jaxattn.SelfAttention(1.0, Q=1e20 * jnp.eye(3), K=1e20 * jnp.eye(3))
        x, cause = X.astype(jnp.float32), "float32"
    with pytest.raises(jaxattn.NonFiniteStateError, match=rf"non-finite at t = 0 (?s:.*)beyond the {cause}") as info:
        jaxattn.simulate(field, x, 1.0, max_steps=65536)
    assert info.value.t == 0.0 and info.value.num_steps < 200  # stopped at once, not after max_steps
    with pytest.raises(RuntimeError, match="non-finite(?s:.*)overflowing attention logits"):
        jax.block_until_ready(eqx.filter_jit(lambda f, x: jaxattn.simulate(f, x, 1.0).final)(field, x))


def test_nonfinite_parameters_are_named():
    """beta = 1e39 is finite in float64 but inf once cast to float32 tokens; a NaN parameter set
    behind the constructor's back: a clear error before solving, and under jit the guard's."""
    with pytest.raises(ValueError, match="NaN or inf parameters \\(beta\\) after the cast to the tokens' dtype float32"):
        jaxattn.simulate(jaxattn.SelfAttention(1e39), X.astype(jnp.float32), 1.0)
    field = jaxattn.SelfAttention(1.0, V=jnp.eye(3))
    field = eqx.tree_at(lambda f: f.V, field, field.V.at[..., 0, 1].set(jnp.nan))
    with pytest.raises(ValueError, match="NaN or inf parameters \\(V\\): rebuild"):
        jaxattn.simulate(field, X, 1.0)
    with pytest.raises(RuntimeError, match="NaN or inf parameters"):
        jax.block_until_ready(eqx.filter_jit(lambda f: jaxattn.simulate(f, X, 1.0).final)(field))


def test_nonfinite_state_mid_solve_names_time():
    """A field that blows up at t = 0.5 (a NaN velocity from then on) stops at t ~ 0.5."""

    class Blowup(jaxattn.fields.AbstractField):
        manifold = "euclidean"

        def __init__(self):
            pass

        @property
        def dim(self):
            return None

        @property
        def num_tokens(self):
            return None

        def velocity(self, t, x):
            return jnp.where(t < 0.5, -x, jnp.nan)

    with pytest.raises(jaxattn.NonFiniteStateError, match=r"non-finite at t = 0\.5") as info:
        jaxattn.simulate(Blowup(), jnp.ones((3, 2)), 1.0)
    assert info.value.num_steps < 200


def test_stop_when_under_chunking_is_global():
    """Batched mode stops when stop_when holds for every member of the whole ensemble, chunked or not."""
    key = jax.random.PRNGKey(3)
    xb = jaxattn.initial.uniform_sphere(key, 8, 3, batch=5)
    field = jaxattn.SelfAttention(2.0)  # members alone cluster at t = 9.7, 5.6, 29.5, 17.8, 8.9
    stop = lambda x: jaxattn.analysis.is_clustered(x, 1e-2)  # noqa: E731
    kw = dict(ts=31, ensemble="batched", stop_when=stop)
    whole = jaxattn.simulate(field, xb, 30.0, **kw)
    per_member = jaxattn.solve.ensemble_bytes_per_member(8, 3, 31)
    chunked = jaxattn.simulate(field, xb, 30.0, max_memory=2 * per_member, **kw)
    assert 29.0 < float(whole.t_final) < 30.0  # the slowest member decides
    # one time for every member, the time the whole ensemble first satisfies the condition
    np.testing.assert_allclose(chunked.t_final, chunked.t_final[0])
    np.testing.assert_allclose(chunked.t_final[0], whole.t_final, rtol=0.05)
    assert bool(np.all(chunked.event_occurred))
    assert bool(np.all(jax.vmap(stop)(chunked.final)))
    # the chunks differ from the whole only at the solver tolerance
    np.testing.assert_allclose(chunked.xs[:, :20], whole.xs[:, :20], atol=1e-4)


# ------------------------------------------------------------------ one rule, eager and traced alike


@pytest.mark.parametrize("tol", [-1e-3, float("inf"), float("nan")])
def test_traced_tolerances_checked(tol):
    """Bad rtol/atol used to be checked only eagerly: under jit and grad the solve returned."""
    f = lambda r: jaxattn.simulate(SA1, X, 1.0, ts=2, rtol=r, atol=r).final  # noqa: E731
    with pytest.raises(ValueError, match="rtol and atol must be finite, >= 0 and not both zero"):
        f(tol)
    with pytest.raises(RuntimeError, match="rtol and atol must be finite, >= 0 and not both zero"):
        jax.block_until_ready(jax.jit(f)(tol))
    with pytest.raises((ValueError, RuntimeError), match="rtol and atol must be finite"):
        jax.block_until_ready(jax.grad(lambda r: jnp.sum(f(r)))(tol))


def test_a_loaded_field_is_validated_at_solve_time(tmp_path):
    """A file whose beta was edited to -5 rebuilds a field without ``__init__``: it never runs (the loader
    applies the field's own parameter rules; simulate would too, see test_manifolds.py)."""
    traj = jaxattn.simulate(SA1, X, 1.0, ts=2)
    ds = traj.to_xarray()
    ds["field.beta"] = ds["field.beta"] * 0 - 5.0
    with pytest.raises(ValueError, match=r"beta must be finite and > 0 .*got -5"):
        loaded = jaxattn.solve.Trajectory.from_xarray(ds)
        jaxattn.simulate(loaded.field, X, 1.0, ts=2)


def test_times_beyond_the_state_precision_raise():
    """float32 cannot tell t0 = 1e8 from t1 = 1e8 + 1: the solve used to return x0 unchanged (the true
    motion is 0.28). float64 resolves them, and the autonomous field gives the t0 = 0 result."""
    x32 = X.astype(jnp.float32)
    with pytest.raises(ValueError, match="t1 - t0 is not resolved by float32 times.*spacing 8"):
        jaxattn.simulate(SA1, x32, 1e8 + 1, t0=1e8)
    with pytest.raises(RuntimeError, match="t1 - t0 is not resolved by float32 times"):
        jax.block_until_ready(jax.jit(lambda a, b: jaxattn.simulate(SA1, x32, b, t0=a, ts=2).final)(1e8, 1e8 + 1))
    reference = jaxattn.simulate(SA1, X, 1.0, ts=2, rtol=1e-10, atol=1e-10).final
    assert float(jnp.max(jnp.abs(reference - X))) > 0.2  # the motion that was lost
    late = jaxattn.simulate(SA1, X, 1e8 + 1, t0=1e8, ts=2, rtol=1e-10, atol=1e-10).final
    np.testing.assert_allclose(late, reference, atol=1e-8)
    early32 = jaxattn.simulate(SA1, x32, 1.0, ts=2).final  # t0 = 0 in float32 is fine
    np.testing.assert_allclose(early32, reference, atol=1e-5)


def test_subnormal_time_spans_raise_eager_and_traced():
    """t1 = 5e-324 (a subnormal): XLA on CPU flushes subnormals to zero, so the traced comparison t1 > t0
    used to pass while the eager one refused the span: the jitted solve returned x0 silently."""
    for t1 in (5e-324, 1e-310):
        with pytest.raises(ValueError, match="t1 - t0 is not resolved by float64 times"):
            jaxattn.simulate(SA1, X, t1, ts=2)
        with pytest.raises(RuntimeError, match="t1 - t0 is not resolved by float64 times"):
            jax.block_until_ready(jax.jit(lambda b: jaxattn.simulate(SA1, X, b, ts=2).final)(t1))
    tiny = jaxattn.simulate(SA1, X, 1e-300, ts=2).final  # a normal span, however small, is integrated
    np.testing.assert_allclose(tiny, X, atol=1e-12)


def test_scalar_times_and_memory_budget_types():
    with pytest.raises(ValueError, match=r"t1 must be a scalar time, got shape \(1,\)"):
        jaxattn.simulate(SA1, X, jnp.array([1.0]))
    with pytest.raises(ValueError, match=r"t0 must be a scalar time"):
        jaxattn.simulate(SA1, X, 1.0, t0=np.zeros(1))
    with pytest.raises(TypeError, match=r"max_memory must be a positive int number of bytes.*'1GB'"):
        jaxattn.simulate(SA1, jnp.stack([X, X]), 1.0, max_memory="1GB")


def test_step_limit_message_names_times_that_differ():
    """The step-limit error printed 'stopped after t = 1e+07 before t1 = 1e+07'; it now shows the digits
    that differ, and blames the time resolution where the remaining span is below it."""
    from jaxattn.solve import SolverStepLimitError, raise_failure

    kw = dict(label="x", t0=0.0, num_steps=10, max_steps=10, step_limit_advice="ADVICE", nonfinite_causes="")
    with pytest.raises(SolverStepLimitError, match=r"after t = 9999999\.5 .*before t1 = 10000000\. ADVICE"):
        raise_failure(diffrax.RESULTS.max_steps_reached, t1=1e7, t_reached=1e7 - 0.5, dtype=jnp.float64, **kw)
    with pytest.raises(SolverStepLimitError, match=r"below the resolution of float32 times"):
        raise_failure(diffrax.RESULTS.max_steps_reached, t1=1e7, t_reached=1e7 - 0.5, dtype=jnp.float32, **kw)
    raise_failure(diffrax.RESULTS.event_occurred, t1=1.0, t_reached=0.5, dtype=jnp.float64, **kw)


def test_spectral_and_particle_solves_share_one_failure_map():
    """The PDE solve reports a step limit and a non-finite state with the same exceptions as simulate."""
    from jaxattn.solve import NonFiniteStateError, SolverStepLimitError
    from jaxattn.spectral import circle

    c0 = circle.mode_coefficients(16, cos={2: 0.1})
    with pytest.raises(SolverStepLimitError, match=r"circle PDE .*max_steps = 2 steps and stopped after t = "):
        circle.solve_circle(c0, 4.0, 5.0, n_save=3, max_steps=2)
    with pytest.raises(RuntimeError, match="max_steps before t1"):
        jax.block_until_ready(jax.jit(lambda t: jaxattn.simulate(SA1, X, t, max_steps=3).final)(1.0))
    assert issubclass(NonFiniteStateError, FloatingPointError) and issubclass(SolverStepLimitError, RuntimeError)


@pytest.mark.parametrize("beta", [800.0, 1e6])
def test_gamma_crossing_time_beyond_float64_says_why(beta):
    """t*(beta) ~ e^beta / (2 beta) for SA (Geshkovski, Letrouit, Polyanskiy, Rigollet 2023, eqs. (4.8), (4.11)):
    beyond beta ~ 709.7 it is no float64. The solve used to stop with diffrax's bare runtime error; now a
    ValueError eagerly (an error under jit) that says why."""
    import jax

    with pytest.raises(ValueError, match="not representable in float64"):
        jaxattn.analysis.gamma_crossing_time(beta, 4)
    with pytest.raises(Exception, match="not representable in float64"):
        jax.block_until_ready(jax.jit(lambda b: jaxattn.analysis.gamma_crossing_time(b, 4))(beta))
    # below the limit the time is finite and follows the e^beta / (2 beta) growth (ratio of two betas)
    ratio = float(jaxattn.analysis.gamma_crossing_time(300.0, 4) / jaxattn.analysis.gamma_crossing_time(290.0, 4))
    assert ratio == pytest.approx(np.exp(10.0) * 290 / 300, rel=0.01)
