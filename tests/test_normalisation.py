"""Normalisation schemes as speed regulation (Karagodin, Ge, Polyanskiy, Rigollet 2025; Rigollet 2025, §5.2):
the field against a NumPy double loop, the equiangular reduction and its closed forms at beta = 0, and the
asymptotic rates reproduced from particle runs (docs/normalisation.md).

Oracles: a NumPy double loop of eq. (NA) with the speed factors of the schemes, an independent SciPy solve of
the scalar equiangular ODEs written out below, and closed forms at beta = 0 derived by hand (docs/normalisation.md,
"Equiangular reduction").
"""

import math

import diffrax

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

import jaxattn
from jaxattn.analysis.equiangular import clustering_rate, equiangular_rhs, equiangular_trajectory
from jaxattn.fields import (
    MixLNAttention,
    NGPTAttention,
    PeriLNAttention,
    PostLNAttention,
    PreLNAttention,
    SqrtScaledAttention,
    cartesian,
    polar,
)

ALPHA, TAU = 0.2, 1.0


def scheme(name, beta, *args, **kwargs):
    """The field of scheme ``name`` (the names of the oracles below)."""
    extra = {"mix": {"tau": TAU}, "ngpt": {"alpha": ALPHA}}.get(name, {})
    cls = {"post": PostLNAttention, "pre": PreLNAttention, "peri": PeriLNAttention, "mix": MixLNAttention,
           "ngpt": NGPTAttention, "sqrt": SqrtScaledAttention}[name]
    return cls(beta, *args, **kwargs, **extra)


SCHEMES = ["post", "pre", "peri", "mix", "ngpt", "sqrt"]


# ------------------------------------------------------------------------------------------ NumPy oracles


def numpy_field(x, t, scheme, beta, Q=None, K=None, V=None, causal=False, unnormalised=False):
    """Eq. (NA) with the speed factors and radial rates of the schemes, token by token (double loop)."""
    n, d1 = x.shape
    d = d1 - 1
    theta, r = x[:, :d], x[:, d]
    H = 1 if V is None else V.shape[0]
    Q = np.stack([np.eye(d)] * H) if Q is None else Q
    K = np.stack([np.eye(d)] * H) if K is None else K
    V = np.stack([np.eye(d)] * H) if V is None else V
    out = np.zeros_like(x)
    for i in range(n):
        A = np.zeros(d)
        for h in range(H):
            js = range(i + 1) if causal else range(n)
            w = np.array([math.exp(beta * (Q[h] @ theta[i]) @ (K[h] @ theta[j])) for j in js])
            norm = len(w) if unnormalised else w.sum()
            A += sum(w[k] * (V[h] @ theta[j]) for k, j in enumerate(js)) / norm
        a, nA = theta[i] @ A, np.linalg.norm(A)
        s, rdot = {
            "post": (1.0, 0.0), "pre": (r[i], a), "peri": (r[i] * nA, a / nA), "ngpt": (nA / ALPHA, 0.0),
            "sqrt": (math.sqrt(t + 1), 0.0), "mix": (1.0, 0.0) if t <= TAU else (r[i], a),
        }[scheme]
        out[i, :d] = (A - a * theta[i]) / s
        out[i, d] = rdot
    return out


def scalar_rhs(name, beta, n, t, y):
    """(drho/dt, dr/dt) of the scalar equiangular ODE of each scheme (docs/normalisation.md)."""
    rho, r = y
    Z = math.exp(beta) + (n - 1) * math.exp(beta * rho)
    F = 2 * math.exp(beta * rho) * (1 - rho) * ((n - 1) * rho + 1) / Z
    a = (math.exp(beta) + (n - 1) * rho * math.exp(beta * rho)) / Z
    nA = math.sqrt(math.exp(2 * beta) + 2 * (n - 1) * rho * math.exp(beta * (1 + rho))
                   + math.exp(2 * beta * rho) * (n - 1) * (1 + (n - 2) * rho)) / Z
    return {"post": (F, 0.0), "pre": (F / r, a), "peri": (F / (r * nA), a / nA), "ngpt": (ALPHA * F / nA, 0.0),
            "sqrt": (F / math.sqrt(t + 1), 0.0), "mix": (F, 0.0) if t <= TAU else (F / r, a)}[name]


def equiangular_scipy(name, beta, n, ts, rho0=0.0, r0=1.0):
    """(rho, r) at ts from the scalar ODE, SciPy DOP853."""
    sol = solve_ivp(lambda t, y: scalar_rhs(name, beta, n, t, y), (0, ts[-1]), [rho0, r0], t_eval=ts,
                    method="DOP853", rtol=1e-12, atol=1e-14)
    return sol.y


def beta_zero_closed_form(scheme, t, n):
    """rho(t) at beta = 0 from rho(0) = 0, r(0) = 1 (derived in docs/normalisation.md)."""
    if scheme == "post":
        return (math.exp(2 * t) - 1) / (math.exp(2 * t) + n - 1)
    if scheme == "peri":
        return 1 - 1 / ((t + n**-0.5) ** 2 + (n - 1) / n)
    if scheme == "ngpt":
        return (n * math.tanh(ALPHA * t + math.atanh(n**-0.5)) ** 2 - 1) / (n - 1)
    if scheme == "pre":  # 1 - rho = 1 / r^2, t = (r - 1) + (sqrt(c)/2) log[((r - sqrt c)(1 + sqrt c)) / ((r + sqrt c)(1 - sqrt c))]
        sc = math.sqrt((n - 1) / n)

        def time_of(r):
            return (r - 1) + sc / 2 * math.log((r - sc) * (1 + sc) / ((r + sc) * (1 - sc))) - t

        return 1 - 1 / brentq(time_of, 1.0, t + 2.0, xtol=1e-15, rtol=1e-15) ** 2
    raise ValueError(scheme)


# ----------------------------------------------------------------------------------------------- the field


def random_state(key, n, d, radius=True):
    k1, k2 = jax.random.split(key)
    theta = jaxattn.initial.uniform_sphere(k1, n, d)
    r = jax.random.uniform(k2, (n,), minval=0.5, maxval=2.0) if radius else jnp.ones(n)
    return jnp.concatenate([theta, r[:, None]], axis=1)


@pytest.mark.parametrize("name", SCHEMES)
def test_velocity_matches_numpy_double_loop(key, name):
    x = random_state(key, 7, 4)
    for t in (0.5, 2.0) if name in ("mix", "sqrt") else (0.5,):  # both sides of tau; a time-dependent speed
        got = scheme(name, 1.7)(t, x)
        np.testing.assert_allclose(got, numpy_field(np.asarray(x), t, name, 1.7), rtol=0, atol=1e-13)


@pytest.mark.parametrize("name", ["pre", "peri", "ngpt"])
def test_velocity_heads_causal_unnormalised(key, name):
    """Two heads with random Q, K, V, a causal mask, and (USA) attention: the same double loop."""
    k1, k2 = jax.random.split(key)
    n, d, H = 6, 3, 2
    x = random_state(k1, n, d)
    Q, K, V = (np.asarray(jax.random.normal(k, (H, d, d))) / d for k in jax.random.split(k2, 3))
    for unnormalised in (False, True):
        field = scheme(name, 2.0, Q, K, V, causal=True, unnormalised=unnormalised)
        expected = numpy_field(np.asarray(x), 1.0, name, 2.0, Q, K, V, causal=True, unnormalised=unnormalised)
        np.testing.assert_allclose(field(1.0, x), expected, rtol=0, atol=1e-13)


def test_post_ln_is_self_attention(key):
    """Post-LN moves the directions by (SA) (and (USA) when unnormalised) and keeps every radius."""
    x = random_state(key, 9, 5)
    for unnormalised, plain in ((False, jaxattn.SelfAttention(3.0)), (True, jaxattn.UnnormalisedSelfAttention(3.0))):
        v = PostLNAttention(3.0, unnormalised=unnormalised)(0.3, x)
        np.testing.assert_allclose(v[:, :-1], plain(0.3, x[:, :-1]), rtol=0, atol=1e-14)
        np.testing.assert_array_equal(v[:, -1], 0.0)


def test_polar_cartesian_roundtrip(key):
    x = 3.0 * jax.random.normal(key, (5, 4))
    s = polar(x)
    np.testing.assert_allclose(np.linalg.norm(s[:, :-1], axis=1), 1.0, atol=1e-15)
    np.testing.assert_allclose(cartesian(s), x, atol=1e-14)


def test_pre_and_peri_ln_are_the_ambient_equations(key):
    """Polar form = ambient form: d(r theta)/dt = A(theta) (Pre-LN) and A/|A| (Peri-LN), Rigollet 2025 §5.2."""
    x = random_state(key, 6, 4)
    theta, r = x[:, :-1], x[:, -1:]
    A = jaxattn.SelfAttention(1.2).attention_output(theta)
    for cls, ambient in ((PreLNAttention, A), (PeriLNAttention, A / jnp.linalg.norm(A, axis=-1, keepdims=True))):
        v = cls(1.2)(0.0, x)
        np.testing.assert_allclose(v[:, -1:] * theta + r * v[:, :-1], ambient, atol=1e-14)


# ------------------------------------------------------------------------------- the equiangular reduction


TIMES = np.array([0.5, 1, 2, 5, 10, 20, 50.0])  # one length: one compilation per scheme serves every test


@pytest.mark.parametrize("beta", [1.0, 4.0])
def test_equiangular_trajectory_matches_scipy(beta):
    """The library's reduction (solved in u = -log(1 - rho)) against SciPy on rho; spot values at beta = 1."""
    for name in SCHEMES:
        rho, r = equiangular_scipy(name, beta, 8, TIMES)
        eps, r_got = equiangular_trajectory(scheme(name, beta), 8, TIMES)
        np.testing.assert_allclose(1 - np.asarray(eps), rho, rtol=0, atol=2e-9, err_msg=name)
        np.testing.assert_allclose(r_got, r, rtol=1e-9, err_msg=name)
        if beta == 1.0 and name == "pre":
            assert abs(1 - float(eps[3]) - 0.924026) < 1e-6 and abs(float(r_got[6]) - 49.1920) < 1e-4
        if beta == 1.0 and name == "peri":
            assert abs(1 - float(eps[3]) - 0.948833) < 1e-6


def test_equiangular_rhs_matches_scalar_rhs():
    for name in SCHEMES:
        for t, rho, r in ((0.5, 0.3, 1.2), (3.0, 0.9, 4.0), (2.0, -0.1, 0.7)):
            drho, dr = equiangular_rhs(t, rho, r, scheme(name, 2.0), 5)
            np.testing.assert_allclose([float(drho), float(dr)], scalar_rhs(name, 2.0, 5, t, (rho, r)),
                                       rtol=1e-13, atol=1e-15, err_msg=name)
            drho, _ = equiangular_rhs(t, rho, r, PostLNAttention(2.0, unnormalised=True), 5)  # (USA): (2/n) e^{beta rho}...
            assert abs(float(drho) - 2 / 5 * math.exp(2.0 * rho) * (1 - rho) * (4 * rho + 1)) < 1e-13


@pytest.mark.parametrize("name", ["post", "pre", "peri", "ngpt"])
def test_beta_zero_closed_forms(name):  # F-02
    ts = TIMES
    eps, r = equiangular_trajectory(scheme(name, 1.0), 8, ts, beta=0.0)
    expected = np.array([beta_zero_closed_form(name, t, 8) for t in ts])
    np.testing.assert_allclose(1 - np.asarray(eps), expected, rtol=0, atol=1e-9)
    if name in ("pre", "peri"):  # 1 - rho = 1/r^2 at beta = 0
        np.testing.assert_allclose(np.asarray(eps) * np.asarray(r) ** 2, 1.0, rtol=1e-9)
    if name == "peri":
        assert abs(beta_zero_closed_form("peri", 2.0, 8) - 0.8440962418) < 1e-10


def test_clustering_rate_of_exact_laws():
    ts = np.linspace(10, 20, 101)
    np.testing.assert_allclose(clustering_rate(ts, 3 * np.exp(-2 * ts)), 2.0, rtol=1e-12)
    np.testing.assert_allclose(clustering_rate(ts, 3 / ts**2, speed=ts)[1:-1], 2.0, rtol=1e-3)
    with pytest.raises(ValueError, match="1 - rho must be > 0"):
        clustering_rate(ts, np.zeros_like(ts))


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("make, match", [
    (lambda: NGPTAttention(1.0, alpha=0.0), "alpha"), (lambda: NGPTAttention(1.0, alpha=-1.0), "alpha"),
    (lambda: NGPTAttention(1.0, alpha=float("nan")), "alpha"), (lambda: MixLNAttention(1.0, tau=0.0), "tau"),
    (lambda: MixLNAttention(1.0, tau=float("inf")), "tau"),
    (lambda: NGPTAttention(1.0, alpha=np.array([0.1, 0.2])), "scalar"),
    (lambda: PreLNAttention(-1.0), "beta"), (lambda: PeriLNAttention(float("nan")), "beta"),
    (lambda: PreLNAttention(1.0, redraw_period=1.0), "redraw_period re-draws random weights"),
])
def test_bad_parameters_raise_eagerly(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_equiangular_bad_arguments():
    with pytest.raises(ValueError, match="rho0"):
        equiangular_trajectory(PreLNAttention(1.0), 8, [1.0], rho0=1.0)
    with pytest.raises(ValueError, match="r0"):
        equiangular_trajectory(PreLNAttention(1.0), 8, [1.0], r0=0.0)
    with pytest.raises(ValueError, match="beta"):
        equiangular_trajectory(PreLNAttention(1.0), 8, [1.0], beta=-1.0)
    with pytest.raises(TypeError, match="normalisation scheme"):
        equiangular_trajectory(jaxattn.SelfAttention(1.0), 8, [1.0])
    with pytest.raises(ValueError, match="Q = K = V = I"):
        equiangular_trajectory(PreLNAttention(1.0, causal=True), 8, [1.0])


# ----------------------------------------------------------------------------- particle runs (n = d = 8)

ORTHOGONAL = polar(jnp.eye(8))  # theta_i(0) = e_i, r_i(0) = 1


def particle_run(name, beta, ts):
    """The full (theta, r) particle flow from the orthogonal start: 1 - rho of the pair (0, 1) computed as
    |theta_0 - theta_1|^2 / 2 (exact far below the float64 resolution of rho itself), all Gram entries, radii.
    Every call has 7 save times, so one compilation per scheme serves every test."""
    field = scheme(name, beta)
    controller = diffrax.PIDController(rtol=1e-12, atol=1e-12, jump_ts=[TAU] if name == "mix" else None)
    traj = jaxattn.simulate(field, ORTHOGONAL, float(ts[-1]), ts=ts, stepsize_controller=controller)
    theta = np.asarray(traj.xs[..., :-1])
    eps = 0.5 * np.sum((theta[:, 0] - theta[:, 1]) ** 2, axis=-1)
    return eps, np.einsum("tid,tjd->tij", theta, theta), np.asarray(traj.xs[..., -1])


@pytest.mark.parametrize("name", SCHEMES)
def test_full_flow_is_the_equiangular_reduction(name):  # F-01
    """Every off-diagonal Gram entry and every radius follow the scalar ODE to 1e-9 (beta = 1 and 4)."""
    off = ~np.eye(8, dtype=bool)
    for beta in (1.0, 4.0):
        _, gram, r = particle_run(name, beta, TIMES)
        rho, r_ref = equiangular_scipy(name, beta, 8, TIMES)
        assert np.max(np.abs(gram[:, off] - rho[:, None])) < 1e-9
        assert np.max(np.abs(r - r_ref[:, None])) < 1e-9 * max(1.0, float(np.max(r_ref)))


def _centred(ts, eps, k, speed):
    """The regulated rate at ts[k] from its neighbours (clustering_rate on three times)."""
    return float(clustering_rate(ts[k - 1:k + 2], eps[k - 1:k + 2], speed[k - 1:k + 2])[1])


def test_post_ln_rate_is_exponential():  # F-03: 1 - rho ~ e^{-2t}
    ts = np.array([0.0, 9.99, 10.0, 10.01, 19.99, 20.0, 20.01])
    eps, _, _ = particle_run("post", 1.0, ts)
    for k in (2, 5):
        assert abs(_centred(ts, eps, k, np.ones(7)) - 2.0) < 1e-3


@pytest.mark.parametrize("name, constant", [("pre", 1.533), ("peri", 1.533), ("mix", 0.734)])
def test_pre_peri_mix_ln_rates_are_inverse_square(name, constant):  # F-04, F-05, F-08: 1 - rho ~ C / t^2
    ts = np.array([0.0, 999.0, 1000.0, 1001.0, 9990.0, 10000.0, 10010.0])
    eps, _, r = particle_run(name, 1.0, ts)
    for k in (2, 5):
        assert abs(_centred(ts, eps, k, ts) - 2.0) < 0.01  # the exponent of the power law
    assert abs(ts[5] ** 2 * eps[5] / constant - 1) < 0.01
    assert abs(r[5, 0] / ts[5] - 1) < (1e-3 if name != "peri" else 1e-4)  # r ~ t


def test_ngpt_rate_is_two_alpha():  # F-06: 1 - rho ~ e^{-2 alpha t}
    ts = np.array([0.0, 39.99, 40.0, 40.01, 59.99, 60.0, 60.01])
    eps, _, _ = particle_run("ngpt", 1.0, ts)
    for k in (2, 5):
        assert abs(_centred(ts, eps, k, np.ones(7)) - 2 * ALPHA) < 1e-3


def test_sqrt_scaling_rate():  # F-07: 1 - rho ~ exp(-4 sqrt(t + 1))
    ts = np.array([0.0, 99.99, 100.0, 100.01, 119.99, 120.0, 120.01])
    eps, _, _ = particle_run("sqrt", 1.0, ts)
    for k in (2, 5):
        assert abs(_centred(ts, eps, k, np.sqrt(ts + 1)) - 2.0) < 1e-3


def test_bad_states_and_parameters_under_jit():
    """A non-positive radius, NaN and non-positive scheme parameters: the same messages eagerly and under jit."""
    x0 = ORTHOGONAL
    with pytest.raises(ValueError, match="radius"):
        jaxattn.simulate(PreLNAttention(1.0), x0.at[2, -1].set(0.0), 1.0)
    with pytest.raises(ValueError, match="NaN"):
        jaxattn.simulate(PreLNAttention(1.0), x0.at[2, -1].set(jnp.nan), 1.0)
    with pytest.raises(RuntimeError, match="radius"):
        jax.block_until_ready(jax.jit(lambda x: jaxattn.simulate(PreLNAttention(1.0), x, 1.0, ts=2).final)(
            x0.at[2, -1].set(-1.0)))
    run = jax.jit(lambda a, b, p: jaxattn.simulate(
        NGPTAttention(b, alpha=a, weights=jaxattn.fields.RandomWeights(jax.random.PRNGKey(0), 8), redraw_period=p),
        x0, 1.0, ts=2).final)
    for args, match in (((-0.2, 1.0, 1.0), "alpha"), ((0.2, -1.0, 1.0), "beta"), ((0.2, 1.0, 0.0), "redraw_period"),
                        ((jnp.nan, 1.0, 1.0), "alpha")):
        with pytest.raises(RuntimeError, match=match):
            jax.block_until_ready(run(*args))
    jax.block_until_ready(run(0.2, 1.0, 1.0))


def test_vmap_and_gradients(key):
    """jax.vmap over beta equals the solves one by one; d(sum_i r_i(T))/d beta against central finite differences
    (Peri-LN, the scheme with both speed and radius depending on |A|). Ensembles: tests/test_simuformer.py."""
    x0 = polar(jax.random.normal(key, (1, 5, 4)))
    kw = dict(ts=2, rtol=1e-10, atol=1e-10)

    def radius(beta):
        return jnp.sum(jaxattn.simulate(PeriLNAttention(beta), x0[0], 2.0, **kw).final[:, -1])

    np.testing.assert_allclose(jax.vmap(radius)(jnp.array([1.0, 1.5])), [radius(1.0), radius(1.5)], rtol=1e-9)
    h = 1e-5
    fd = (radius(1.5 + h) - radius(1.5 - h)) / (2 * h)
    np.testing.assert_allclose(jax.grad(radius)(1.5), fd, rtol=1e-5)


def test_rates_study_data():
    """The figure data of docs/normalisation.md: particles and the equiangular theory agree, the regulated
    rate reaches its limit 2 (the notebook's figure, at reduced size)."""
    from jaxattn.studies.normalisation import normalisation_rates

    rates = normalisation_rates(schemes=("preln",))
    for name, ds in rates.items():
        np.testing.assert_allclose(ds.one_minus_rho, ds.theory_one_minus_rho, rtol=1e-3)  # 1e-3 at 5e-17
        assert abs(float(ds.rate[-2]) - 2.0) < 0.01 and abs(float(ds.theory_rate[-2]) - 2.0) < 0.01, name


def test_phase_diagram_study_data(key):
    """The notebook's phase diagrams per scheme (reduced size): Post-LN's directions are (SA)'s from the same
    starts, no pair starts clustered, and at beta = 1 every scheme has one cluster by t = 1000 (the small-beta
    regime of Geshkovski et al. 2023 (perspective))."""
    from jaxattn.studies.normalisation import normalisation_phase_diagram

    ds = normalisation_phase_diagram(key, betas=(1.0,), ts=(0.0, 1.0, 1000.0), n=4, members=2,
                                     schemes=("postln", "preln"))
    np.testing.assert_allclose(ds.fraction.sel(scheme="postln"), ds.reference, atol=1e-12)
    np.testing.assert_array_equal(ds.fraction.isel(time=0), 0.0)
    np.testing.assert_array_equal(ds.fraction.isel(time=-1), 1.0)
    assert float(ds.fraction.sel(scheme="preln", beta=1.0).isel(time=1)) < 1.0  # Pre-LN has not clustered at t = 1
