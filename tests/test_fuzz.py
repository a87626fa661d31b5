"""A standing fuzz corpus over the public entry points, eager and jitted.

Every call of a hostile input must end in one of two ways: a **clear error** (``ValueError``/
``TypeError``, :class:`jaxattn.SolverStepLimitError`, :class:`jaxattn.NonFiniteStateError`, or traced a
``RuntimeError`` whose text carries jaxattn's message) or a **finite correct result**, checked
against an independent oracle:

* a jitted call agrees with the eager call: both raise, or both return the same values (the
  checks hold traced);
* solutions on the sphere stay on it (|x_i| = 1), field velocities on the sphere are tangent
  (<x_i, v_i> = 0, paper 002 eq. (2.6)), attention rows are probability vectors, cluster counts lie
  in 1..n, growth rates of mode 0 vanish (mass conservation, paper 004 eq. (5)).

Anything else (a silent NaN, a result off the manifold, an eager error with a silent jitted twin)
is recorded; each test prints its tally (tried / clear error / finite correct / silent) and
asserts zero silent outcomes. The default run keeps ~20-40 examples per entry point (about a
minute on one core); ``-m slow`` runs the same corpus with more examples.
"""

from __future__ import annotations

import dataclasses
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxattn
from jaxattn import spectral
from jaxattn.manifolds import Sphere

KEY = jax.random.PRNGKey(0)
N, D = 4, 3
X = jaxattn.initial.uniform_sphere(KEY, N, D)
THETA = jaxattn.initial.uniform_circle(KEY, N)

#: the phrases that make an error raised through equinox.error_if under jit "clear"
TRACED_MESSAGES = ("jaxattn.simulate:", "beta must be", "must be finite", "off the unit sphere",
                   "non-finite", "max_steps", "overflows float")
CLEAR = (ValueError, TypeError, jaxattn.SolverStepLimitError, jaxattn.NonFiniteStateError)

SCALE = int(os.environ.get("JAXATTN_FUZZ_SCALE", "1"))  # the slow variant multiplies the examples

numbers = st.one_of(
    st.floats(-50, 50, allow_nan=False),
    st.sampled_from([0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e300, -1e-300, 1e-12, 1e30]),
)
positive = st.one_of(st.floats(1e-3, 60.0), st.sampled_from([0.0, -1.0, float("nan"), float("inf"), 1e30, 1e-300]))


@dataclasses.dataclass
class Tally:
    """Outcomes of one entry point's corpus."""

    name: str
    tried: int = 0
    errors: int = 0
    correct: int = 0
    silent: list = dataclasses.field(default_factory=list)

    def run(self, inputs, call, check=None, *, traced: bool = False):
        """Run ``call()``: a clear error, or a result that passes ``check(result)`` (returns a problem or None)."""
        self.tried += 1
        try:
            result = call()
            jax.block_until_ready(result)
        except CLEAR:
            self.errors += 1
            return "error"
        except RuntimeError as exc:
            if traced and any(m in str(exc) for m in TRACED_MESSAGES):
                self.errors += 1
                return "error"
            self.silent.append((inputs, f"unclear {type(exc).__name__}: {str(exc)[:200]}"))
            return "unclear"
        problem = None if check is None else check(result)
        if problem is None and not all(np.all(np.isfinite(np.asarray(leaf)))
                                       for leaf in jax.tree_util.tree_leaves(result) if eqx.is_array(leaf)):
            problem = "non-finite result"
        if problem is not None:
            self.silent.append((inputs, problem))
            return "silent"
        self.correct += 1
        return result

    def finish(self):
        print(f"\nfuzz {self.name}: tried {self.tried}, clear error {self.errors}, "
              f"finite correct {self.correct}, silent {len(self.silent)}")
        assert self.tried == self.errors + self.correct + len(self.silent)
        assert not self.silent, f"{self.name}: silent wrong/non-finite outcomes: {self.silent[:5]}"


def agree(eager, jitted, tally: Tally, inputs, atol=1e-8):
    """The jitted outcome must match the eager one: both errors, or the same values."""
    if isinstance(eager, str) or isinstance(jitted, str):
        if (eager == "error") != (jitted == "error"):
            tally.silent.append((inputs, f"eager {eager if isinstance(eager, str) else 'result'} but jitted "
                                         f"{jitted if isinstance(jitted, str) else 'result'}"))
        return
    for a, b in zip(jax.tree_util.tree_leaves(eager), jax.tree_util.tree_leaves(jitted)):
        if not np.allclose(np.asarray(a), np.asarray(b), atol=atol, rtol=1e-6):
            tally.silent.append((inputs, f"jit differs from eager by {np.max(np.abs(np.asarray(a) - np.asarray(b)))}"))
            return


def on_sphere(xs, tol=1e-9):
    drift = float(np.max(np.abs(np.linalg.norm(np.asarray(xs), axis=-1) - 1)))
    return None if drift <= tol else f"off the sphere by {drift:.3g}"


FIELDS = {
    "sa": lambda b, m: jaxattn.SelfAttention(b, V=m),
    "usa": lambda b, m: jaxattn.UnnormalisedSelfAttention(b, V=m),
    "causal": lambda b, m: jaxattn.SelfAttention(b, Q=m, causal=True),
    "euclidean": lambda b, m: jaxattn.EuclideanSelfAttention(jnp.eye(D), jnp.eye(D), m, beta=b),
    "circle": lambda b, m: jaxattn.CircleSelfAttention(b),
    "kuramoto": lambda b, m: jaxattn.Kuramoto(b),
}


def _matrix(entry):
    return jnp.eye(D).at[0, 1].set(entry)


def _tokens(kind, entry, scale):
    if kind in ("circle", "kuramoto"):
        return THETA.at[0].set(entry)
    x = X.at[0, 0].set(entry) * scale if kind == "euclidean" else X * scale
    return x.at[1, 1].set(entry) if not np.isfinite(entry) else x


@jax.jit
def _velocity_jit(field, x):
    return field.velocity(0.0, x)


#: the default run fuzzes one field per manifold; the slow variant all of them
DEFAULT_KINDS = ("sa", "circle", "euclidean")


@pytest.mark.parametrize("kind", [k if k in DEFAULT_KINDS else pytest.param(k, marks=pytest.mark.slow)
                                  for k in FIELDS])
def test_fuzz_fields_and_simulate(kind):
    """Constructors with hostile parameters; simulate eagerly and under eqx.filter_jit from hostile
    tokens and times; the oracle: eager == jitted, sphere solutions on the sphere, tangent velocities."""
    tally = Tally(f"fields/simulate[{kind}]")
    solve_jit = eqx.filter_jit(lambda f, x, t1: jaxattn.simulate(f, x, t1, ts=3, max_steps=300).xs)

    @settings(max_examples=10 * SCALE, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(beta=positive, entry=numbers, scale=st.sampled_from([1.0, 1.0, 2.0]),
           t1=st.one_of(st.floats(-1.0, 1.0), st.sampled_from([float("nan"), float("inf"), 0.0])))
    def corpus(beta, entry, scale, t1):
        inputs = dict(beta=beta, entry=entry, scale=scale, t1=t1)
        built = tally.run(inputs, lambda: FIELDS[kind](beta, _matrix(entry)))
        if isinstance(built, str):
            return
        field, x = built, _tokens(kind, entry, scale)
        manifold_check = on_sphere if isinstance(field.manifold, Sphere) else None

        def tangent(v):  # <x_i, v_i> = 0 on the sphere
            if not isinstance(field.manifold, Sphere):
                return None
            radial = float(np.max(np.abs(np.sum(np.asarray(v) * np.asarray(x), axis=-1))))
            return None if radial <= 1e-9 * max(1.0, float(np.max(np.abs(np.asarray(v))))) else f"radial {radial}"

        # direct velocity calls: parameters below the overflow range (field.velocity itself does not check
        # for overflow; simulate does, through its non-finite guard: the solves below include 1e300)
        moderate = abs(entry) < 1e30 and beta < 1e30
        if moderate and bool(np.all(np.isfinite(np.asarray(x)))) and (not isinstance(field.manifold, Sphere) or on_sphere(x, 1e-6) is None):
            tally.run(inputs, lambda: field.velocity(0.0, x), tangent)
            tally.run(inputs, lambda: _velocity_jit(field, x), tangent, traced=True)
        eager = tally.run(inputs, lambda: jaxattn.simulate(field, x, t1, ts=3, max_steps=300).xs, manifold_check)
        jitted = tally.run(inputs, lambda: solve_jit(field, jnp.asarray(x), jnp.asarray(t1)), manifold_check,
                           traced=True)
        agree(eager, jitted, tally, inputs)

    corpus()
    tally.finish()


@pytest.mark.parametrize("hostile", [
    False,
    True,
])
def test_fuzz_analysis(hostile):
    """Observables: attention rows are probability vectors, cluster counts in 1..n. ``hostile`` adds
    non-finite tokens, zero/negative/NaN beta and delta."""
    tally = Tally(f"analysis[{'hostile' if hostile else 'valid domain'}]")
    field = jaxattn.SelfAttention(2.0)
    entries = numbers if hostile else st.floats(-1.0, 1.0)
    deltas = st.one_of(st.floats(0, 2), numbers) if hostile else st.floats(1e-6, 1.0)

    @settings(max_examples=15 * SCALE, deadline=None, derandomize=True)
    @given(entry=entries, scale=st.sampled_from([1.0, 2.0, 0.5]), delta=deltas)
    def corpus(entry, scale, delta):
        inputs = dict(entry=entry, scale=scale, delta=delta)
        x = (X * scale).at[0, 0].set(entry)
        if not hostile:  # a configuration on the sphere
            x = jaxattn.initial.project_to_sphere(x)

        def rows(a):
            a = np.asarray(a)
            ok = np.all(a >= 0) and np.allclose(a.sum(-1), 1, atol=1e-9)
            return None if ok else "attention rows are not probability vectors"

        tally.run(inputs, lambda: jaxattn.analysis.attention_matrix(field, x), rows)
        count = tally.run(inputs, lambda: jaxattn.analysis.count_clusters(x, delta=delta),
                          lambda c: None if 1 <= int(c) <= N else f"{int(c)} clusters")
        if not isinstance(count, str):
            tally.run(inputs, lambda: jaxattn.analysis.is_clustered(x, delta))
        tally.run(inputs, lambda: jaxattn.analysis.interaction_energy(x, entry if hostile else 1.0 + entry ** 2))
        tally.run(inputs, lambda: jaxattn.analysis.mean_inner_product(x))

    corpus()
    tally.finish()


def test_fuzz_spectral_linear_theory():
    """Growth rates and dominant modes: gamma_0 = 0 (mass is conserved), dominant_mode maximises the
    rates, jitted rates equal eager ones; dominant_mode under jit is a clear TypeError."""
    tally = Tally("spectral.linear")
    rates_jit = jax.jit(lambda b: spectral.growth_rates(b, 6, 3))

    @settings(max_examples=15 * SCALE, deadline=None, derandomize=True)
    @given(beta=st.one_of(st.floats(1e-3, 500.0), positive), d=st.sampled_from([2, 3, 4, 1]),
           model=st.sampled_from(["usa", "sa", "SA", "xsa"]))
    def corpus(beta, d, model):
        inputs = dict(beta=beta, d=d, model=model)

        def mass(g):
            return None if abs(float(np.asarray(g)[0])) <= 1e-12 else f"gamma_0 = {float(np.asarray(g)[0])}"

        eager = tally.run(inputs, lambda: spectral.growth_rates(beta, 6, d, model), mass)
        k = tally.run(inputs, lambda: spectral.dominant_mode(beta, d, model))
        if not isinstance(eager, str) and not isinstance(k, str) and int(k) <= 6:
            g = np.asarray(eager)
            if g[int(k)] < np.max(g[1:]) * (1 - 1e-9):
                tally.silent.append((inputs, f"dominant_mode {k} does not maximise {g}"))
        if d == 3 and model == "usa":
            agree(tally.run(inputs, lambda: spectral.growth_rates(beta, 6, 3)),
                  tally.run(inputs, lambda: rates_jit(jnp.asarray(beta)), traced=True), tally, inputs, atol=1e-10)
        tally.run(inputs, lambda: jax.jit(spectral.dominant_mode)(beta), traced=True)

    corpus()
    tally.finish()


def test_fuzz_spectral_solvers_and_layers():
    """Initial data constructors, a short circle PDE solve (mass mu_0 = 1 conserved) and the
    hardmax/softmax layer maps (outputs finite, same shape)."""
    tally = Tally("spectral solvers/layers")
    solves = []  # the PDE solve costs seconds: SCALE of them

    @settings(max_examples=6 * SCALE, deadline=None, derandomize=True)
    @given(k=st.sampled_from([1, 2, 9, -1, 0]), amp=numbers, beta=positive, alpha=numbers)
    def corpus(k, amp, beta, alpha):
        inputs = dict(k=k, amp=amp, beta=beta, alpha=alpha)
        c0 = tally.run(inputs, lambda: spectral.mode_coefficients(4, cos={k: amp}))
        tally.run(inputs, lambda: spectral.sphere_zonal_mode(4, {k: amp}))
        if not isinstance(c0, str) and abs(amp) < 0.1 and 1e-3 <= beta <= 5 and len(solves) < SCALE:
            solves.append(beta)
            tally.run(inputs, lambda: spectral.solve_circle(c0, beta, 0.2, n_save=3).coeffs,
                      lambda c: None if np.allclose(np.asarray(c)[:, 0], 1, atol=1e-9) else "mass not conserved")
        for layer in (jaxattn.HardmaxTransformer, jaxattn.SoftmaxTransformer):
            tally.run(inputs, lambda: layer(alpha)(X * (1 if np.isfinite(amp) else amp)),
                      lambda z: None if np.shape(z) == X.shape else f"shape {np.shape(z)}")

    corpus()
    tally.finish()


@pytest.mark.slow
def test_fuzz_slow_variant():
    """The same corpus with 8x the examples (run with ``-m slow``)."""
    import subprocess
    import sys

    env = dict(os.environ, JAXATTN_FUZZ_SCALE="8")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "0", "-q", "-s", "-m", "not slow", __file__],
                          env=env, capture_output=True, text=True)
    print(proc.stdout[-4000:])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


# ----------------------------------------------------------------------------- branch points
#: the switch points of jaxattn._special: the power series for x <= X_SERIES, the downward recurrence
#: started at order mu = nu + ceil(NU_DEBYE - nu) (the number of steps jumps at integer nu), the uniform
#: expansion alone for nu >= NU_DEBYE; x = 0 (I_0(0) = 1)
_SWITCH_X = [(nu, 2.0) for nu in (0.0, 0.5, 1.0, 5.5, 31.0, 31.5, 32.0, 33.0, 40.0)]
_SWITCH_NU = [(32.0, x) for x in (2.5, 10.0, 100.0)] + [(nu, 10.0) for nu in (0.0, 1.0, 31.0, 31.999, 32.001)]


def _mp_log_ive_slopes(nu, x):
    """d/dnu and d/dx of log(e^{-x} I_nu(x)) in 30 digits: d/dx = (I_{nu-1} + I_{nu+1}) / (2 I_nu) - 1 (DLMF 10.29.1)."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 30
    nu, x = mp.mpf(nu), mp.mpf(x)
    i = [mp.besseli(nu + s, x) for s in (-1, 0, 1)]
    return float(mp.diff(lambda v: mp.log(mp.besseli(v, x)), nu)), float((i[0] + i[2]) / (2 * i[1]) - 1)


@pytest.mark.parametrize("traced", [False, True])
def test_bessel_gradients_at_switch_points(traced):
    """jax.grad of log_ive/ive/iv in the argument and in the order at every branch switch of jaxattn._special,
    eagerly and under jit, against 30-digit mpmath. A branch chosen by jnp.minimum/maximum splits the
    derivative between the two sides at a tie: d/dx ive(0, x) at x = 2 came out halved (-0.0466, true -0.0932)."""
    from jaxattn import _special as S

    points = _SWITCH_X + _SWITCH_NU + [(0.0, 1.0), (3.0, 1.0)]
    nu, x = (jnp.asarray([p[i] for p in points]) for i in (0, 1))
    ref = np.array([_mp_log_ive_slopes(*p) for p in points])  # (d/dnu, d/dx)

    def slopes(n, y):
        return (jax.grad(S.log_ive, argnums=0)(n, y), jax.grad(S.log_ive, argnums=1)(n, y),
                jax.grad(S.ive, argnums=1)(n, y), jax.grad(S.iv, argnums=1)(n, y))

    ours = (jax.jit(jax.vmap(slopes)) if traced else jax.vmap(slopes))(nu, x)
    ive = np.asarray(S.ive(nu, x))
    expected = (ref[:, 0], ref[:, 1], ive * ref[:, 1], ive * np.exp(np.asarray(x)) * (ref[:, 1] + 1))
    for name, a, b in zip(("d/dnu log_ive", "d/dx log_ive", "d/dx ive", "d/dx iv"), ours, expected):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-12, atol=1e-15, err_msg=f"{name} at (nu, x) = {points}")


def test_bessel_gradient_at_zero_argument():
    """x = 0: e^{-x} I_0(x) = 1 - x + x^2/4 + ..., so d/dx ive(0, x) = -1 there (the series branch, not a constant)."""
    from jaxattn import _special as S

    for g in (jax.grad(S.ive, argnums=1), jax.jit(jax.grad(S.ive, argnums=1))):
        assert float(g(0.0, 0.0)) == pytest.approx(-1.0, abs=1e-15)
    assert float(S.log_ive(0.0, 0.0)) == 0.0 and float(S.log_ive(1.5, 0.0)) == -np.inf


def _central_difference(f, b, h=1e-3):
    """Five-point central difference (error O(h^4)); h = 1e-3 keeps the ~1e-14 relative difference between
    two Bessel branches evaluated on either side of a switch point below 1e-10 of the slope."""
    v = [np.asarray(f(b + s * h), dtype=float) for s in (-2, -1, 1, 2)]
    return (v[0] - 8 * v[1] + 8 * v[2] - v[3]) / (12 * h)


def test_kernel_and_rate_gradients_at_the_series_switch():
    """Every function of beta built on the Bessel functions, differentiated at beta = X_SERIES = 2 (where the
    Bessel branches switch) and just off it, eagerly (forward mode) and under jit (reverse mode), against float64
    central differences (five points, ~1e-10 relative). growth_rates(b, 4, model="sa")[3] had d/dbeta 0.0085 at
    beta = 2 (true 0.227)."""
    from jaxattn import spectral
    from jaxattn.fields import legendre_coefficients, scaled_bessel_weights

    functions = {
        "kernel_coefficients d=2": lambda b: spectral.kernel_coefficients(b, 6, 2),
        "kernel_coefficients d=3": lambda b: spectral.kernel_coefficients(b, 6, 3),
        "log_kernel_coefficients d=4": lambda b: spectral.log_kernel_coefficients(b, 6, 4),
        "growth_rates sa d=2": lambda b: spectral.growth_rates(b, 4, 2, model="sa"),
        "growth_rates usa d=3": lambda b: spectral.growth_rates(b, 4, 3, model="usa"),
        "growth_rates sa d=5": lambda b: spectral.growth_rates(b, 4, 5, model="sa"),
        "legendre_coefficients": lambda b: legendre_coefficients(b, 6),
        "scaled_bessel_weights": lambda b: scaled_bessel_weights(b, 6),
    }

    def every(b):
        return jnp.concatenate([f(b) for f in functions.values()])

    names = [name for name, f in functions.items() for _ in range(f(2.0).shape[0])]
    forward, reverse = jax.jacfwd(every), jax.jit(jax.jacrev(every))
    for b in (2.0, 2.0 + 1e-3, 2.0 - 1e-3):
        ref = _central_difference(every, b)
        for ours in (forward(b), reverse(b)):
            bad = ~np.isclose(np.asarray(ours), ref, rtol=1e-8, atol=1e-11)
            assert not bad.any(), [(names[i], float(ours[i]), ref[i]) for i in np.flatnonzero(bad)]


@pytest.mark.parametrize("suffix", [".nc", ".npz"])
def test_fuzz_damaged_trajectory_files(tmp_path_factory, suffix):
    """Every loader of a saved trajectory, fed damaged copies of a valid file (truncated at any length,
    bytes overwritten anywhere): a clear ``ValueError`` naming the file, or a trajectory of the saved
    shape whose times are the saved ones (a flipped byte inside the state data can only change values,
    which no format without checksums can detect; a changed shape is never returned)."""
    folder = tmp_path_factory.mktemp("damaged")
    traj = jaxattn.simulate(jaxattn.SelfAttention(1.0), X, 1.0, ts=4)
    good = traj.save(folder / f"good{suffix}").read_bytes()
    tally = Tally(f"load_trajectory[{suffix}]")

    @settings(max_examples=25 * SCALE, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(cut=st.one_of(st.just(len(good)), st.integers(0, len(good))), flips=st.lists(st.tuples(st.integers(0, len(good) - 1),
                                                                   st.integers(0, 255)), max_size=4))
    def corpus(cut, flips):
        data = bytearray(good[:cut])
        for at, value in flips:
            if at < len(data):
                data[at] = value
        path = folder / f"case{suffix}"
        path.write_bytes(bytes(data))
        inputs = dict(cut=cut, flips=flips)

        def same_axes(loaded):
            if np.shape(loaded.xs) != np.shape(traj.xs) or np.shape(loaded.ts) != np.shape(traj.ts):
                return f"shapes {np.shape(loaded.ts)}, {np.shape(loaded.xs)}"
            if bytes(data) == good and not np.array_equal(np.asarray(loaded.xs), np.asarray(traj.xs)):
                return "the undamaged file loads other values"
            return None

        tally.run(inputs, lambda: jaxattn.load_trajectory(path), same_axes)

    corpus()
    tally.finish()


class _Affine:
    """A callable object whose result depends on its state (a sweep's point function)."""

    def __init__(self, scale, offset, key):
        self.scale, self.offset, self.key = scale, offset, key

    def __call__(self, beta):
        return self.scale * beta + self.offset


def test_fuzz_sweep_identities():
    """The identity of a sweep's point function decides whether stored points are reused, so it must
    change with anything that changes the result: callable objects with equal reprs but other state
    (floats, arrays, typed PRNG keys), and functions with other code or closures. Oracle: two identities
    are equal exactly when the two states are equal bit for bit, and one object hashes the same twice."""
    from jaxattn import sweeps

    tally = Tally("sweeps.function_identity")
    values = st.one_of(st.floats(-5, 5, allow_nan=False), st.sampled_from([0.0, -0.0, 1e-300, 1.0]))

    @settings(max_examples=30 * SCALE, deadline=None, derandomize=True)
    @given(a=st.tuples(values, values, st.integers(0, 3)), b=st.tuples(values, values, st.integers(0, 3)))
    def corpus(a, b):
        f, g = (_Affine(s, jnp.asarray([o]), jax.random.key(k)) for s, o, k in (a, b))
        # equal bits (-0.0 and 0.0 differ: 1/x tells them apart, so a sweep must not share their points)
        same_state = np.float64(a[0]).tobytes() == np.float64(b[0]).tobytes() and \
            np.float64(a[1]).tobytes() == np.float64(b[1]).tobytes() and a[2] == b[2]

        def verdict():
            hf = sweeps.identity_hash(sweeps.function_identity(f))
            hg = sweeps.identity_hash(sweeps.function_identity(g))
            return (hf == hg), sweeps.identity_hash(sweeps.function_identity(f)) == hf

        def consistent(result):
            equal, stable = result
            if not stable:
                return "the hash of one object changed between calls"
            if equal != same_state:
                return f"identities {'equal' if equal else 'differ'} for states {a} and {b}"
            return None

        tally.run(dict(a=a, b=b), verdict, consistent)

    corpus()

    def shifted_by(offset):  # closures: the captured value is part of the identity
        return lambda beta: beta + offset

    hashes = [sweeps.identity_hash(sweeps.function_identity(shifted_by(o))) for o in (1.0, 2.0, 1.0)]
    tally.run(dict(closures=(1.0, 2.0, 1.0)), lambda: hashes,
              lambda h: None if h[0] != h[1] and h[0] == h[2] else f"closure identities {h}")
    tally.finish()
