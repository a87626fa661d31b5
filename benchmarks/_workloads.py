"""The runner's own workloads: one RHS, one solve, ensembles, the S^2 fast path.

Each function returns a list of :class:`benchmarks._measure.Record`; both sides of every
comparison run in this process, interleaved (``_measure.compare``).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxattn
from benchmarks._measure import Record, compare, peak_rss_mb
from benchmarks.rhs_and_solve import numpy_rk4, numpy_sa_rhs
from benchmarks.roofline import attention_bound_s


def _rhs(field):
    """A jitted x -> field(0, x) (fields are pytrees: close over them, don't hash them)."""
    return jax.jit(lambda x: field(0.0, x))


def rhs(quick: bool) -> list[Record]:
    """One SA right-hand side: jaxattn dense (row-blocked above n = 256) vs NumPy dense."""
    beta = 9.0
    records = []
    for n in ([256, 1024] if quick else [256, 1024, 2048, 4096]):
        for d in (3, 64):
            x = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(0), n, d)
            xn = np.asarray(x)
            dense = _rhs(jaxattn.SelfAttention(beta))
            sides = {"jaxattn dense": lambda: dense(x), "numpy dense": lambda: numpy_sa_rhs(xn, beta)}
            if d == 3:
                fast = _rhs(jaxattn.SelfAttention(beta, evaluator="harmonics"))
                sides["jaxattn harmonics"] = lambda: fast(x)
            recs = compare("rhs", f"SA n={n} d={d} beta={beta:g}", sides, "numpy dense",
                           repeats=3 if quick else 5, bound_s=attention_bound_s(n, d))
            if d == 3:
                err = float(jnp.max(jnp.abs(fast(x) - dense(x))))
                for r in recs:
                    if r.impl == "jaxattn harmonics":
                        r.roofline_fraction = None  # O(n L^2): the dense roofline does not apply
                        r.note = f"max|diff| vs dense {err:.1e}"
            records += recs
    return records


def solve(quick: bool) -> list[Record]:
    """One solve to T = 10: simulate (Tsit5 + PID 1e-6) vs NumPy RK4 h = 0.1 (+ DOP853 at n = 32).

    With the ``torch`` extra installed, torchdiffeq dopri5 (rtol = atol = 1e-6, same T and
    save times, one thread; :mod:`benchmarks.torch_baseline`) is a further side at every n;
    its note gives its CPU time as a multiple of jaxattn's and max |x(T) diff| vs jaxattn.
    """
    from scipy.integrate import solve_ivp

    from benchmarks import torch_baseline
    have_torch = torch_baseline.available()

    grid = [(32, 3, 1.0), (32, 3, 9.0)] if quick else [
        (n, d, b) for n in (32, 256, 1024) for d in (3, 64) for b in (1.0, 9.0)]
    records = []
    for n, d, beta in grid:
        t1 = 10.0
        x = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(0), n, d)
        xn = np.asarray(x)
        field = jaxattn.SelfAttention(beta)
        sides = {"jaxattn Tsit5 1e-6": lambda: jaxattn.simulate(field, x, t1, ts=2).xs,
                 "numpy RK4 h=0.1": lambda: numpy_rk4(xn, beta, t1)}
        if n <= 32:
            def dop853():
                f = lambda t, y: numpy_sa_rhs(y.reshape(n, d), beta).ravel()  # noqa: E731
                return solve_ivp(f, (0.0, t1), xn.ravel(), method="DOP853", rtol=1e-6, atol=1e-6).y
            sides["scipy DOP853 1e-6"] = dop853
        if have_torch:
            torch_solve = torch_baseline.make_solver(xn, beta, t1, num_saves=2)
            sides[torch_baseline.IMPL] = torch_solve
        traj = jaxattn.simulate(field, x, t1, ts=2)
        evals = 6 * int(traj.stats["num_steps"]) + 2
        big = n >= 1024
        case = f"SA n={n} d={d} beta={beta:g} T={t1:g}"
        recs = compare("solve", case, sides, "numpy RK4 h=0.1",
                       repeats=1 if big else 3, min_time=0.0, bound_s=attention_bound_s(n, d, evals))
        jax_cpu = next(r.cpu_s for r in recs if r.impl == "jaxattn Tsit5 1e-6")
        for r in recs:
            if r.impl.startswith("numpy"):
                r.roofline_fraction = attention_bound_s(n, d, 400) / r.cpu_s
            elif r.impl.startswith("scipy"):
                r.roofline_fraction = None
            elif r.impl == torch_baseline.IMPL:
                diff = float(np.max(np.abs(torch_solve()[-1] - np.asarray(traj.final))))
                r.roofline_fraction = attention_bound_s(n, d, torch_solve.nfe) / r.cpu_s
                r.extra.update(ratio_vs_jaxattn=r.cpu_s / jax_cpu, max_diff_vs_jaxattn=diff, nfe=torch_solve.nfe)
                r.note = (f"{r.cpu_s / jax_cpu:.2g}x jaxattn's CPU time; {torch_solve.nfe} RHS evals; "
                          f"max|x(T) diff| vs jaxattn {diff:.1e}" + ("" if diff <= 1e-4 else " (> 1e-4!)"))
            else:
                r.note = f"{int(traj.stats['num_steps'])} steps"
        if not have_torch:
            recs.append(Record("solve", case, torch_baseline.IMPL, float("nan"), float("nan"), peak_rss_mb(),
                               note=torch_baseline.NOT_INSTALLED))
        records += recs
    return records


def ensembles(quick: bool) -> list[Record]:
    """Shared-step batched state vs vmap vs lax.map of the adaptive solve (SA S^2, beta = 9, T = 10)."""
    # n = 256 x batch 2048 (about 7 CPU-min for the three modes) is left to ``benchmarks.ensembles``
    cases = [(32, 1), (32, 64)] if quick else (
        [(32, b) for b in (1, 16, 128, 512, 2048)] + [(256, b) for b in (1, 16, 128, 512)])
    records = []
    field = jaxattn.SelfAttention(9.0)
    for n, batch in cases:
        x = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(0), n, 3, batch=batch)
        sides = {mode: (lambda mode=mode: jaxattn.simulate(field, x, 10.0, ts=2, ensemble=mode).xs)
                 for mode in ("batched", "vmap", "map")}
        big = n * batch >= 256 * 128
        recs = compare("ensembles", f"n={n} d=3 batch={batch}", sides, "vmap", repeats=1 if big else 3,
                       min_time=0.0, warmup=not big)
        steps = {mode: np.asarray(jaxattn.simulate(field, x[:min(batch, 64)], 10.0, ts=2,
                                                   ensemble=mode).stats["num_steps"])
                 for mode in ("batched", "map")}
        for r in recs:
            r.extra["per_member_cpu_s"] = r.cpu_s / batch
            r.note = f"{1e3 * r.cpu_s / batch:.3g} ms/member"
            if r.impl == "batched":
                r.note += f"; {int(steps['batched'])} shared steps (first {min(batch, 64)} members)"
            elif r.impl == "map":
                r.note += f"; {steps['map'].mean():.1f} steps/member on average"
        records += recs
    return records


def _fast_path(workload: str, case: str, x, fast_field, dense_field, fast_name: str, note: str) -> list[Record]:
    """One RHS of a fast evaluator, against the dense kernel when ``dense_field`` is given."""
    fast = _rhs(fast_field)
    sides = {fast_name: lambda: fast(x)}
    if dense_field is not None:
        dense = _rhs(dense_field)
        sides = {"jaxattn dense": lambda: dense(x), **sides}
    recs = compare(workload, case, sides, "jaxattn dense" if dense_field is not None else fast_name,
                   repeats=3, min_time=0.0)
    for r in recs:
        if r.impl == fast_name:
            r.note = note
            if dense_field is not None:
                r.note += f"; max|diff| vs dense {float(jnp.max(jnp.abs(fast(x) - dense(x)))):.1e}"
    return recs


def fast_sphere(quick: bool) -> list[Record]:
    """The S^2 harmonics RHS at large n (goal: n = 10^5 under 1 s); dense only where affordable."""
    from jaxattn.fields import truncation_degree

    beta = 9.0
    records = []
    for n in ([4096] if quick else [10_000, 100_000]):
        x = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(0), n, 3)
        records += _fast_path("fast S^2 rhs", f"SA n={n} d=3 beta={beta:g}", x,
                              jaxattn.SelfAttention(beta, evaluator="harmonics"),
                              jaxattn.SelfAttention(beta) if n <= 10_000 else None,
                              "jaxattn harmonics", f"L = {truncation_degree(beta, n)}")
    return records


def fast_circle(quick: bool) -> list[Record]:
    """The circle Bessel-Fourier RHS at large n (goal: n = 10^6 under 1 s), causal and not."""
    records = []
    for n in ([20_000] if quick else [16_384, 1_000_000]):
        theta = jax.random.uniform(jax.random.PRNGKey(0), (n,), minval=-np.pi, maxval=np.pi)
        for beta in (9.0, 64.0):
            for causal in (False, True):
                records += _fast_path(
                    "fast circle rhs", f"{'causal ' if causal else ''}SA n={n} beta={beta:g}", theta,
                    jaxattn.CircleSelfAttention(beta, causal=causal, evaluator="fourier"),
                    jaxattn.CircleSelfAttention(beta, causal=causal) if n <= 20_000 else None,
                    "jaxattn fourier", f"M = {jaxattn.fields.fourier_modes(beta)} modes")
    return records


def external(name: str, quick: bool, argv_quick: list[str] | None = None,
             argv_full: list[str] | None = None) -> list[Record]:
    """Run ``benchmarks.<name>.main`` in-process (``--quick`` or ``argv_full``); record its time and output."""
    import contextlib
    import importlib
    import io

    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except ImportError as exc:
        return [Record(name, "-", "(skipped)", float("nan"), float("nan"), peak_rss_mb(),
                       note=f"module benchmarks.{name} not present ({exc.__class__.__name__})")]
    argv = (argv_quick if argv_quick is not None else ["--quick"]) if quick else list(argv_full or [])
    buf = io.StringIO()
    c0, w0 = time.process_time(), time.perf_counter()
    try:
        with contextlib.redirect_stdout(buf):
            module.main(argv)
        note = "own table below"
    except (Exception, SystemExit) as exc:  # report, keep the runner going (argparse exits on a bad argv)
        note = f"failed: {exc.__class__.__name__}: {exc}"[:200]
    rec = Record(name, " ".join(argv) or "(full)", f"benchmarks.{name}", time.process_time() - c0,
                 time.perf_counter() - w0, peak_rss_mb(), note=note)
    rec.extra["output"] = buf.getvalue()
    return [rec]


def circle_pde(quick: bool) -> list[Record]:
    """The USA continuity equation on S^1: jaxattn ``solve_circle`` (pseudo-spectral, K modes) vs the
    authors' NumPy Lax-Friedrichs (:mod:`benchmarks.circle_pde_baseline`, direct O(M^2) convolution,
    dt = 0.02 dx) from rho_0 = 1/(2pi) + 1e-3 cos 3theta. Every note gives that side's L2/Linf error at T
    against ``solve_circle`` at K = 256, rtol 1e-13; baseline = LF at the largest M.
    """
    try:
        from benchmarks import circle_pde_baseline
    except ImportError as exc:
        return [Record("circle pde", "-", "(skipped)", float("nan"), float("nan"), peak_rss_mb(),
                       note=f"solve_circle not available ({exc})")]
    return circle_pde_baseline.run(quick, workload="circle pde")
