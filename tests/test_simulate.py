"""simulate() against theory: invariants, exact solutions, theorems (paper 002 T1, T6-T7,
T11, T14; 003 §1.3 and A2; ensembles; precision; failures)."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.linalg import expm

import jaxattn
from jaxattn.analysis import interaction_energy


def norm_drift(xs):
    return float(np.max(np.abs(np.linalg.norm(np.asarray(xs), axis=-1) - 1.0)))


@pytest.mark.parametrize("unnormalised", [False, True])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_tokens_stay_on_sphere(key, unnormalised, sign):  # 002 T1
    x0 = jaxattn.initial.uniform_sphere(key, 16, 3)
    for beta in (0.5, 2.0, 9.0):
        if unnormalised:
            field = jaxattn.UnnormalisedSelfAttention(beta, V=sign * jnp.eye(3), time_rescaled=beta > 5)
        else:
            field = jaxattn.SelfAttention(beta, V=sign * jnp.eye(3))
        traj = jaxattn.simulate(field, x0, 30.0, ts=61)
        assert norm_drift(traj.xs) <= 1e-9


def test_sphere_drift_issue_setting(key):
    """V = -I, beta = 4, T = 50 with simulate's default settings, SA and USA (a repulsive-value setting that once failed)."""
    x0 = jaxattn.initial.uniform_sphere(key, 32, 3)
    for cls in (jaxattn.SelfAttention, jaxattn.UnnormalisedSelfAttention):
        traj = jaxattn.simulate(cls(4.0, V=-jnp.eye(3)), x0, 50.0)
        assert norm_drift(traj.xs) <= 1e-9


def test_plain_solver_without_retraction_drifts(key):
    """Why the retraction exists: the same solve without it drifts far above 1e-9."""
    x0 = jaxattn.initial.uniform_sphere(key, 32, 3)
    field = jaxattn.UnnormalisedSelfAttention(4.0, V=-jnp.eye(3))
    sol = diffrax.diffeqsolve(diffrax.ODETerm(lambda t, y, a: field(t, y)), diffrax.Tsit5(), 0.0, 50.0, None, x0,
                              stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-6),
                              saveat=diffrax.SaveAt(ts=jnp.linspace(0, 50, 51)), max_steps=100000)
    assert norm_drift(sol.ys) > 1e-8


@pytest.mark.parametrize("unnormalised", [False, True])
def test_energy_monotone_and_dissipation_identity(key, unnormalised):  # 002 T6-T7
    x0 = jaxattn.initial.uniform_sphere(key, 16, 3)
    beta = 2.0
    cls = jaxattn.UnnormalisedSelfAttention if unnormalised else jaxattn.SelfAttention
    for sign in (1.0, -1.0):
        field = cls(beta, V=sign * jnp.eye(3))
        traj = jaxattn.simulate(field, x0, 10.0, ts=101, rtol=1e-10, atol=1e-10)
        E = np.asarray(interaction_energy(traj.xs, beta))
        assert np.all(sign * np.diff(E) >= -1e-10)
        # dE/dt at t = 1 by a centred difference of the trajectory vs the identity
        h = 1e-4
        fine = jaxattn.simulate(field, x0, 1.0 + h, ts=jnp.array([1.0 - h, 1.0, 1.0 + h]), rtol=1e-12, atol=1e-12)
        dE = (interaction_energy(fine.xs[2], beta) - interaction_energy(fine.xs[0], beta)) / (2 * h)
        predicted = jaxattn.analysis.energy_rate(field, fine.xs[1])
        assert abs(float(dE - predicted)) <= 1e-6 * abs(float(predicted))
        assert np.sign(float(predicted)) == sign
    if unnormalised:  # V = I, USA: consensus and E -> e^beta/(2 beta)  (002 T7)
        traj = jaxattn.simulate(cls(beta), x0, 30.0, ts=2)
        assert abs(float(interaction_energy(traj.final, beta)) - np.exp(beta) / (2 * beta)) < 1e-6


def gamma_reference(beta, n, t, unnormalised):
    """Paper 002 eqs. (4.8)-(4.9), integrated independently with scipy."""
    def rhs(_, g):
        g = g[0]
        if unnormalised:
            return [2 / n * np.exp(beta * g) * (1 - g) * ((n - 1) * g + 1)]
        return [2 * np.exp(beta * g) * (1 - g) * ((n - 1) * g + 1) / (np.exp(beta) + (n - 1) * np.exp(beta * g))]

    sol = solve_ivp(rhs, (0, max(t)), [0.0], t_eval=t, method="DOP853", rtol=1e-13, atol=1e-14)
    return sol.y[0]


@pytest.mark.parametrize("unnormalised,beta", [(False, 1.0), (False, 4.0), (True, 1.0)])
def test_orthogonal_initialisation_follows_gamma_ode(unnormalised, beta):  # 002 T11 (Thm 4.6)
    n = d = 8
    ts = np.array([0.5, 1.0, 2.0, 4.0])
    cls = jaxattn.UnnormalisedSelfAttention if unnormalised else jaxattn.SelfAttention
    traj = jaxattn.simulate(cls(beta), jaxattn.initial.orthogonal_frame(n, d), 4.0, ts=ts, rtol=1e-12, atol=1e-12)
    G = np.asarray(jnp.einsum("tid,tjd->tij", traj.xs, traj.xs))
    off = G[:, ~np.eye(n, dtype=bool)]
    assert np.max(off.max(axis=1) - off.min(axis=1)) <= 1e-10
    np.testing.assert_allclose(off.mean(axis=1), gamma_reference(beta, n, ts, unnormalised), atol=1e-8)
    if not unnormalised and beta == 4.0:  # Theorem 4.6's ODE solved by SciPy: gamma(2) = 0.09365213, gamma(4) = 0.33168384
        np.testing.assert_allclose(off.mean(axis=1)[2:], [0.09365213, 0.33168384], atol=1e-8)


def test_d_at_least_n_gives_one_cluster(key):  # 002 T14 (Thm 4.1)
    x0 = jaxattn.initial.uniform_sphere(key, 8, 8, batch=16)
    traj = jaxattn.simulate(jaxattn.SelfAttention(1.0), x0, 40.0, ts=2)
    assert np.all(np.asarray(jaxattn.analysis.min_inner_product(traj.final)) >= 1 - 1e-6)
    traj = jaxattn.simulate(jaxattn.UnnormalisedSelfAttention(1.0), x0, 10.0, ts=2)
    assert np.all(np.asarray(jaxattn.analysis.is_clustered(traj.final, 1e-6)))


def test_single_token_exact_solution(key):  # 003 Lemma 3.1 / (B.1)
    k1, k2 = jax.random.split(key)
    V = np.asarray(jax.random.normal(k1, (3, 3)))
    x0 = jaxattn.initial.uniform_sphere(k2, 1, 3)
    ts = np.array([1.0, 5.0, 10.0])
    traj = jaxattn.simulate(jaxattn.SelfAttention(2.0, V=V), x0, 10.0, ts=ts, rtol=1e-10, atol=1e-10)
    for t, x in zip(ts, np.asarray(traj.xs)):
        y = expm(t * V) @ np.asarray(x0[0])
        np.testing.assert_allclose(x[0], y / np.linalg.norm(y), atol=1e-7)


def test_causal_first_token_never_moves_and_prefix_closure(key):  # 003 Thm 4.1 setting, A2
    k1, k2 = jax.random.split(key)
    x0 = jaxattn.initial.uniform_sphere(k1, 10, 3)
    Q = jax.random.normal(k2, (3, 3))
    field = jaxattn.SelfAttention(9.0, Q, Q, causal=True)
    traj = jaxattn.simulate(field, x0, 20.0, ts=11)
    np.testing.assert_allclose(traj.xs[:, 0], jnp.broadcast_to(x0[0], (11, 3)), atol=1e-15)
    # the first 4 tokens alone evolve as in the full run (to solver tolerance)
    head = jaxattn.simulate(field, x0[:4], 20.0, ts=11, rtol=1e-10, atol=1e-10)
    full = jaxattn.simulate(field, x0, 20.0, ts=11, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(head.xs, full.xs[:, :4], atol=1e-7)


@pytest.mark.slow  # a long end-to-end run; the default suite keeps the shorter checks
def test_vmap_equals_loop_and_batched_within_tolerance(key):
    x0 = jaxattn.initial.uniform_sphere(key, 16, 3, batch=4)
    field = jaxattn.SelfAttention(9.0)
    vm = jaxattn.simulate(field, x0, 10.0, ts=11, ensemble="vmap")
    loop = np.stack([np.asarray(jaxattn.simulate(field, x0[b], 10.0, ts=11).xs) for b in range(4)])
    np.testing.assert_allclose(vm.xs, loop, atol=1e-12)
    mapped = jaxattn.simulate(field, x0, 10.0, ts=11, ensemble="map")
    np.testing.assert_allclose(mapped.xs, loop, atol=1e-12)
    # each member took its own steps (map) rather than the slowest member's count
    np.testing.assert_array_equal(mapped.stats["num_steps"], vm.stats["num_steps"])
    batched = jaxattn.simulate(field, x0, 10.0, ts=11)
    assert batched.xs.shape == vm.xs.shape == (4, 11, 16, 3)
    assert np.max(np.abs(batched.xs - loop)) < 1e-4  # both at rtol = atol = 1e-6
    # the batched error norm is the max over members: tightening the tolerance converges to the loop
    tight = jaxattn.simulate(field, x0, 10.0, ts=11, rtol=1e-10, atol=1e-10)
    ref = jaxattn.simulate(field, x0, 10.0, ts=11, rtol=1e-12, atol=1e-12, ensemble="vmap")
    assert np.max(np.abs(tight.xs - ref.xs)) < 1e-8


def test_auto_ensemble_follows_the_measured_rule(key):
    """auto = per-member steps (map) on a CPU from n = 128 tokens on, one shared step below."""
    from jaxattn.solve import AUTO_MAP_MIN_TOKENS, Batched, Map, Vmap, resolve_ensemble

    assert jax.default_backend() == "cpu"
    assert resolve_ensemble("auto", AUTO_MAP_MIN_TOKENS) == Map()
    assert resolve_ensemble("auto", AUTO_MAP_MIN_TOKENS - 1) == Batched()
    assert resolve_ensemble("auto", AUTO_MAP_MIN_TOKENS, stop_when=bool) == Batched()  # stops together natively
    assert resolve_ensemble("vmap", 4096) == Vmap() and str(Vmap()) == "vmap"
    field = jaxattn.CircleSelfAttention(9.0)
    theta0 = jaxattn.initial.uniform_circle(key, AUTO_MAP_MIN_TOKENS, batch=3)
    auto = jaxattn.simulate(field, theta0, 2.0, ts=3)
    mapped = jaxattn.simulate(field, theta0, 2.0, ts=3, ensemble="map")
    np.testing.assert_array_equal(auto.xs, mapped.xs)
    assert np.asarray(auto.stats["num_steps"]).shape == (3,)  # one step count per member
    assert auto.ts.shape == (3,) and auto.xs.shape == (3, 3, AUTO_MAP_MIN_TOKENS)  # save times shared
    small = jaxattn.simulate(field, theta0[:, :16], 2.0, ts=3)
    assert np.asarray(small.stats["num_steps"]).shape == ()  # one shared step count


def test_float32_and_float64_both_run(key):
    x64 = jaxattn.initial.uniform_sphere(key, 16, 3)
    x32 = x64.astype(jnp.float32)
    a = jaxattn.simulate(jaxattn.SelfAttention(4.0), x64, 5.0, ts=3)
    b = jaxattn.simulate(jaxattn.SelfAttention(4.0), x32, 5.0, ts=3)
    assert a.xs.dtype == jnp.float64 and b.xs.dtype == jnp.float32
    assert np.max(np.abs(np.asarray(a.xs) - np.asarray(b.xs))) < 1e-4
    assert norm_drift(b.xs) < 1e-6


def test_stop_when_clustered(key):
    x0 = jaxattn.initial.uniform_sphere(key, 16, 3)
    traj = jaxattn.simulate(jaxattn.SelfAttention(1.0), x0, 1000.0,
                            stop_when=lambda x: jaxattn.analysis.is_clustered(x, 1e-4))
    assert bool(traj.event_occurred)
    t_stop = float(traj.t_final)
    assert 0 < t_stop < 1000
    assert float(jaxattn.analysis.min_inner_product(traj.final)) >= 1 - 1e-4
    assert np.all(np.isfinite(traj.xs))
    # the event is detected at the end of the first step where it holds, so t_final is
    # accurate to one step: well before it the configuration was not yet clustered
    before = jaxattn.simulate(jaxattn.SelfAttention(1.0), x0, 0.7 * t_stop, ts=2)
    assert float(jaxattn.analysis.min_inner_product(before.final)) < 1 - 1e-4


def test_max_steps_raises_with_time_reached(key):
    x0 = jaxattn.initial.uniform_sphere(key, 16, 3)
    with pytest.raises(jaxattn.SolverStepLimitError, match=r"max_steps = 3 .*stopped after t = "):
        jaxattn.simulate(jaxattn.SelfAttention(9.0), x0, 50.0, max_steps=3)


def test_max_steps_inside_jit_raises(key):
    x0 = jaxattn.initial.uniform_sphere(key, 8, 3)

    @jax.jit
    def run(beta):
        return jaxattn.simulate(jaxattn.SelfAttention(beta), x0, 50.0, max_steps=3).final

    # inside jax.jit the host cannot raise SolverStepLimitError: eqx.error_if surfaces as JAX's runtime error
    with pytest.raises(jax.errors.JaxRuntimeError, match="max_steps"):
        run(9.0).block_until_ready()


def test_gradient_in_beta_matches_finite_differences(key):
    x0 = jaxattn.initial.uniform_sphere(key, 8, 3)

    def loss(beta):
        xT = jaxattn.simulate(jaxattn.SelfAttention(beta), x0, 3.0, ts=2, rtol=1e-10, atol=1e-10).final
        return jnp.mean(xT @ xT.T)

    g = jax.grad(loss)(2.0)
    h = 1e-4
    fd = (loss(2.0 + h) - loss(2.0 - h)) / (2 * h)
    assert abs(float(g - fd)) <= 1e-6 * max(1.0, abs(float(fd)))


def test_backsolve_adjoint_warns(key):
    x0 = jaxattn.initial.uniform_sphere(key, 4, 3)
    with pytest.warns(UserWarning, match="BacksolveAdjoint"):
        jaxattn.simulate(jaxattn.SelfAttention(1.0), x0, 0.1, ts=2, adjoint=diffrax.BacksolveAdjoint())


def test_saveat_passes_through(key):
    """A diffrax SaveAt with a custom fn saves what it says; its values match the default path."""
    x0 = jaxattn.initial.uniform_sphere(key, 8, 3)
    ts = jnp.linspace(0.0, 5.0, 6)
    field = jaxattn.SelfAttention(2.0)
    mean_inner = lambda t, y, args: jnp.mean(y @ y.T)  # noqa: E731
    custom = jaxattn.simulate(field, x0, 5.0, saveat=diffrax.SaveAt(ts=ts, fn=mean_inner))
    default = jaxattn.simulate(field, x0, 5.0, ts=ts)
    # fn sees diffrax's dense interpolant before retraction: equal to solver tolerance
    np.testing.assert_allclose(custom.xs, jnp.mean(jnp.einsum("tid,tjd->tij", default.xs, default.xs), axis=(1, 2)),
                               atol=1e-6)
    steps = jaxattn.simulate(field, x0, 5.0, saveat=diffrax.SaveAt(steps=True), max_steps=200)
    finite = np.isfinite(np.asarray(steps.ts))
    assert finite.sum() == int(steps.stats["num_accepted_steps"]) and float(steps.t_final) == 5.0
    assert norm_drift(steps.xs[finite]) < 1e-12


def test_memory_cap_chunks_ensembles(key):
    """An ensemble above max_memory is solved in chunks; results agree with one solve."""
    x0 = jaxattn.initial.uniform_sphere(key, 8, 3, batch=5)
    field = jaxattn.SelfAttention(4.0)
    per = jaxattn.solve.ensemble_bytes_per_member(8, 3, 11)
    whole = jaxattn.simulate(field, x0, 5.0, ts=11, rtol=1e-10, atol=1e-10)
    chunked = jaxattn.simulate(field, x0, 5.0, ts=11, rtol=1e-10, atol=1e-10, max_memory=2 * per)
    assert chunked.xs.shape == whole.xs.shape and chunked.t_final.shape == (5,)
    assert float(jnp.max(jnp.abs(chunked.xs - whole.xs))) < 1e-8
    vm = jaxattn.simulate(field, x0, 5.0, ts=11, ensemble="vmap", max_memory=2 * per)
    loop = np.stack([np.asarray(jaxattn.simulate(field, x0[b], 5.0, ts=11).xs) for b in range(5)])
    np.testing.assert_allclose(vm.xs, loop, atol=1e-12)


def test_stop_when_means_one_thing_for_every_strategy():
    """The ensemble stops where the condition holds for every member, whatever the strategy (per-member
    steps used to stop each member on its own): one t_final for all members, equal across strategies to
    within a step, and the states there those of an event-free solve to that time."""
    from jaxattn.solve import Chunked, Map

    xb = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(3), 6, 3, batch=4)
    field = jaxattn.SelfAttention(2.0)
    stop = lambda x: jaxattn.analysis.is_clustered(x, 1e-2)  # noqa: E731
    kw = dict(ts=11, rtol=1e-8, atol=1e-8, stop_when=stop)
    alone = jaxattn.simulate(field, xb, 40.0, ts=11, ensemble="map", rtol=1e-8, atol=1e-8,
                             stop_when=None).xs  # no event: the members cluster at different times
    finals = {}
    for ensemble in ("batched", "vmap", "map", Chunked(Map(), 3)):
        traj = jaxattn.simulate(field, xb, 40.0, ensemble=ensemble, **kw)
        t = np.asarray(traj.t_final) * np.ones(4)
        np.testing.assert_array_equal(t, t[0])  # one time for every member
        assert bool(np.all(traj.event_occurred)) and bool(np.all(jax.vmap(stop)(traj.final)))
        reference = jaxattn.simulate(field, xb, float(t[0]), ts=2, ensemble="vmap", rtol=1e-8, atol=1e-8).final
        np.testing.assert_allclose(traj.final, reference, atol=1e-6)
        finals[str(ensemble)] = t[0]
    first_alone = [float(np.argmax(jax.vmap(stop)(alone[i]))) for i in range(4)]
    assert max(first_alone) > min(first_alone)  # a test that could fail: members alone stop apart
    assert max(finals.values()) - min(finals.values()) < 0.05 * min(finals.values())


def test_a_new_strategy_is_one_class(key):
    """An ensemble strategy written here (members in reverse order, then put back) runs through
    simulate and equals Map member by member."""
    from typing import ClassVar

    from jaxattn.solve import AbstractStrategy

    class Reversed(AbstractStrategy):
        name: ClassVar[str] = "reversed"
        one_state: ClassVar[bool] = False

        def integrate(self, solve, x0, t0, ts):
            out = jax.lax.map(lambda x: solve(x, t0, ts, False), x0[::-1])
            return jax.tree_util.tree_map(lambda a: a[::-1] if a.ndim else a, out)

    x0 = jaxattn.initial.uniform_sphere(key, 5, 3, batch=3)
    field = jaxattn.SelfAttention(3.0)
    mine = jaxattn.simulate(field, x0, 2.0, ts=3, ensemble=Reversed())
    mapped = jaxattn.simulate(field, x0, 2.0, ts=3, ensemble="map")
    np.testing.assert_array_equal(mine.xs, mapped.xs)
    np.testing.assert_array_equal(mine.stats["num_steps"], mapped.stats["num_steps"])


def test_global_ensemble_on_one_process_equals_solve_ensemble(key):
    """solve_global_ensemble (one ensemble over every process's devices) is solve_ensemble on one process."""
    from jaxattn.solve import solve_ensemble, solve_global_ensemble

    x0 = jaxattn.initial.uniform_sphere(key, 5, 3, batch=3)
    observe = lambda t, x: {"p": jaxattn.analysis.clustered_pair_fraction(x, 0.1), "x": x}  # noqa: E731
    one = solve_ensemble(jaxattn.SelfAttention(3.0), x0, 2.0, ts=jnp.linspace(0.0, 2.0, 3), observe=observe)
    every = solve_global_ensemble(jaxattn.SelfAttention(3.0), x0, 2.0, ts=jnp.linspace(0.0, 2.0, 3), observe=observe)
    assert one["x"].shape == (3, 3, 5, 3) and one["p"].shape == (3, 3)
    for name in ("x", "p", "num_steps"):
        np.testing.assert_array_equal(one[name], every[name])
    np.testing.assert_allclose(one["x"][:, 0], x0, atol=1e-15)  # t = 0 is x0


# ------------------------------------------------------------------ wrappers forward what diffrax reads


def _field_on(manifold):
    """A field and an initial condition on each manifold (n = 5)."""
    x = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(7), 5, 3)
    return {"sphere": (jaxattn.SelfAttention(1.5), x),
            "circle": (jaxattn.CircleSelfAttention(1.5), jnp.arange(5.0) * 0.9),
            "euclidean": (jaxattn.EuclideanSelfAttention(jnp.eye(3), jnp.eye(3), -jnp.eye(3)), x),
            "gram": (jaxattn.GramSelfAttention(1.5), x @ x.T)}[manifold]


@pytest.mark.parametrize("manifold", ["sphere", "circle", "euclidean", "gram"])
def test_implicit_solvers_run_on_every_manifold(manifold):
    """diffrax's implicit solvers through simulate (they failed: "Type of `other` not understood", "no
    attribute 'root_finder'"): ImplicitEuler agrees with an rtol 1e-12 Tsit5 reference to its first-order
    accuracy, and stays on the manifold."""
    field, x0 = _field_on(manifold)
    reference = jaxattn.simulate(field, x0, 1.0, ts=2, rtol=1e-12, atol=1e-12).final
    implicit = jaxattn.simulate(field, x0, 1.0, ts=2, solver=diffrax.ImplicitEuler()).final
    assert float(jnp.max(jnp.abs(implicit - reference))) < 3e-3
    if manifold == "sphere":  # and a high-order one: Kvaerno5 to 1e-7
        kvaerno = jaxattn.simulate(field, x0, 1.0, ts=2, solver=diffrax.Kvaerno5()).final
        assert float(jnp.max(jnp.abs(kvaerno - reference))) < 1e-7
        assert norm_drift(implicit) < 1e-14


@pytest.mark.slow
@pytest.mark.parametrize("manifold", ["sphere", "circle", "euclidean", "gram"])
@pytest.mark.parametrize("solver", [diffrax.Kvaerno3, diffrax.Kvaerno4, diffrax.Kvaerno5])
def test_implicit_solvers_battery(manifold, solver):
    field, x0 = _field_on(manifold)
    reference = jaxattn.simulate(field, x0, 1.0, ts=2, rtol=1e-12, atol=1e-12).final
    got = jaxattn.simulate(field, x0, 1.0, ts=2, rtol=1e-8, atol=1e-8, solver=solver()).final
    assert float(jnp.max(jnp.abs(got - reference))) < 1e-6


@pytest.mark.parametrize("manifold, adjoint", [("gram", "ForwardMode"), ("circle", "DirectAdjoint")])
def test_forward_mode_jacobian_matches_finite_differences(manifold, adjoint):
    """jax.jacfwd through simulate with ForwardMode/DirectAdjoint (it failed: "can't apply forward-mode
    autodiff to a custom_vjp", "no attribute 'scan_kind'"; on the Gram path two nested wrappers left the
    stage loop checkpointed) equals central differences in beta."""
    field, x0 = _field_on(manifold)
    make = {"gram": jaxattn.GramSelfAttention, "circle": jaxattn.CircleSelfAttention}[manifold]
    final = lambda b: jaxattn.simulate(make(b), x0, 1.0, ts=2, rtol=1e-10, atol=1e-10,  # noqa: E731
                                       adjoint=getattr(diffrax, adjoint)()).final
    jacobian = jax.jacfwd(final)(1.5)
    h = 1e-5
    np.testing.assert_allclose(jacobian, (final(1.5 + h) - final(1.5 - h)) / (2 * h), atol=1e-8)
    assert float(jnp.max(jnp.abs(jacobian))) > 1e-2


@pytest.mark.slow
@pytest.mark.parametrize("manifold", ["sphere", "circle", "euclidean", "gram"])
@pytest.mark.parametrize("adjoint", ["ForwardMode", "DirectAdjoint"])
def test_forward_mode_battery(manifold, adjoint):
    field, x0 = _field_on(manifold)
    if manifold == "euclidean":
        make = lambda b: jaxattn.EuclideanSelfAttention(jnp.eye(3), jnp.eye(3), -jnp.eye(3), beta=b)  # noqa: E731
    else:
        make = {"sphere": jaxattn.SelfAttention, "gram": jaxattn.GramSelfAttention,
                "circle": jaxattn.CircleSelfAttention}[manifold]
    final = lambda b: jaxattn.simulate(make(b), x0, 1.0, ts=2, rtol=1e-10, atol=1e-10,  # noqa: E731
                                       adjoint=getattr(diffrax, adjoint)()).final
    h = 1e-5
    np.testing.assert_allclose(jax.jacfwd(final)(1.5), (final(1.5 + h) - final(1.5 - h)) / (2 * h), atol=1e-8)


def test_retraction_holds_at_every_step_inside_the_solve(key):
    """The per-step retraction keeps the *unretracted* solver state on the sphere to round-off: the norms
    at every step end (SaveAt(steps=True, fn=...) saves |x_i|, which simulate does not retract again) stay
    within 1e-13 of 1 over T = 50 with V = -I, where a solve without the retraction drifts by ~1e-6."""
    x0 = jaxattn.initial.uniform_sphere(key, 16, 3)
    norms = lambda t, y, args: jnp.linalg.norm(y, axis=-1)  # noqa: E731
    for cls in (jaxattn.SelfAttention, jaxattn.UnnormalisedSelfAttention):
        traj = jaxattn.simulate(cls(4.0, V=-jnp.eye(3)), x0, 50.0, saveat=diffrax.SaveAt(steps=True, fn=norms),
                                max_steps=4096)
        reached = np.isfinite(np.asarray(traj.ts))
        assert reached.sum() > 20
        assert float(np.max(np.abs(np.asarray(traj.xs)[reached] - 1.0))) < 1e-13


def test_step_limit_advice_works_for_stiff_usa(key):
    """The max_steps error recommends what measurably works: USA at beta = 12 takes ~33,000 plain Tsit5 steps
    to T = 1 (its clusters contract at rate ~e^beta) but ~800 with the recommended diffrax.Kvaerno3(), which
    agrees with the long Tsit5 solve to the tolerance. simulate's default solver, the cluster collapse
    (jaxattn.solvers), removes those modes: it stays within the step budget and agrees too."""
    x0 = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(0), 16, 3)
    field = jaxattn.UnnormalisedSelfAttention(12.0)
    with pytest.raises(jaxattn.SolverStepLimitError, match=r"solver=diffrax\.Kvaerno3\(\)") as info:
        jaxattn.simulate(field, x0, 1.0, ts=2, max_steps=4000, solver=diffrax.Tsit5())
    assert "time_rescaled=True only rescales time" in str(info.value)
    implicit = jaxattn.simulate(field, x0, 1.0, ts=2, max_steps=4000, solver=diffrax.Kvaerno3())
    assert int(implicit.stats["num_steps"]) < 1500
    explicit = jaxattn.simulate(field, x0, 1.0, ts=2, max_steps=2**16, solver=diffrax.Tsit5())
    assert int(explicit.stats["num_steps"]) > 20 * int(implicit.stats["num_steps"])
    np.testing.assert_allclose(implicit.final, explicit.final, atol=1e-5)
    collapsed = jaxattn.simulate(field, x0, 1.0, ts=2, max_steps=4000)
    np.testing.assert_allclose(collapsed.final, explicit.final, atol=1e-5)
