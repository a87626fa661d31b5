"""Phase diagram of paper 002 (Fig 2): jaxattn sweep vs the authors' Euler scheme.

Workload (issue 3 "done when"): SA, Q = K = V = I, n = 32, d = 128, delta = 1e-2,
beta on the paper's grid linspace(0.1, 9, 90), t in [0, 30], 128 realisations per beta,
the clustered-pair fraction P(<x_i, x_j> >= 1 - delta) on a time grid.

Compared, on the **same** initial conditions and in the same process (CPU seconds,
``time.process_time``, so other load on the machine does not count):

* ``jaxattn``: :func:`jaxattn.studies.paper_002.phase_diagram` at its defaults, i.e. the resumable
  sweep engine, one jit-compiled batched solve per beta (max-over-members error control, the
  clustered-pair fraction evaluated inside the solve), results written to netCDF. Here
  (Q = K = V = I, d > n) it integrates the Gram matrices G = X X^T
  (:class:`jaxattn.fields.GramSelfAttention`, an exact reformulation, O(n^3) per step instead of
  O(n^2 d));
* ``euler``: the authors' ``phase-diagrams.py`` scheme, x <- normalise(x + h softmax(beta X X^T) X),
  h = 0.1, as one compiled loop batched over realisations (the step of
  :func:`jaxattn.studies.euler.euler_renormalise`; their code is the same loop in torch);

and both are scored against a tight-tolerance reference on the same draws (jaxattn on the **tokens**,
Tsit5 rtol = atol = 1e-10: a formulation independent of the Gram path): the max and mean absolute
error of P over the (beta, t) grid. The Euler scheme's O(h) time stretch
(~1 + h e^beta/(e^beta + n - 1), ``docs/errata.md``) shows up as its error near the phase boundary;
``--euler-h`` adds finer steps to show what equal accuracy costs it.

``--work-precision`` runs the work-precision study of issue 12 (solvers x tolerances x precisions,
the Euler step sweep, a PNG and the goals with their measured numbers; benchmarks/README.md,
"Phase diagram: work-precision").

Run (alone on the machine): ``python -m benchmarks.phase_diagram`` (full size, minutes),
or ``python -m benchmarks.phase_diagram --quick`` (seconds; small d, few betas).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxattn  # noqa: F401  (float64)
from benchmarks._measure import print_table
from jaxattn.analysis import clustered_pair_fraction
from jaxattn.studies import paper_002 as p2


def draws(seed: int, batch: int, n: int, d: int) -> np.ndarray:
    """The initial conditions phase_diagram uses for this seed (same key split)."""
    kx, _ = jax.random.split(jax.random.PRNGKey(seed))
    return np.asarray(jaxattn.initial.uniform_sphere(kx, n, d, batch=batch))


# --------------------------------------------------------------------------- work-precision (issue 12)

#: the solver knob of the study: tolerances for the adaptive solvers, steps for the authors' Euler
WP_RTOLS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)
WP_RTOLS_FLOAT32 = (1e-2, 1e-3, 1e-4, 1e-5)  # float32 resolves no tighter tolerance
WP_EULER_H = (0.2, 0.1, 0.05, 0.02, 0.01)
WP_SOLVERS = ("tsit5", "dopri5", "bosh3", "heun")
WP_RTOLS_TOKENS = (1e-3, 1e-5, 1e-7)  # the token-space comparison curve (it costs 5-10x the Gram one)


def _phase_sweep(betas, ts, delta, size, solver, rtol, precision, formulation="auto"):
    """Mean clustered-pair fraction (beta, t) and the mean steps per beta of one
    ``paper_002.phase_diagram`` sweep (seed 0, the draws of :func:`draws`), run as a user runs it:
    the resumable sweep engine, in-solve observables, netCDF written to a fresh directory. With
    ``formulation="auto"`` (Q = K = V = I, d > n) it integrates the Gram matrices."""
    n, d, batch = size
    with tempfile.TemporaryDirectory() as tmp:
        ds = p2.phase_diagram(betas, ts, directory=tmp, n=n, d=d, batch=batch, seeds=[0], delta=delta, rtol=rtol,
                              atol=rtol, solver=solver, precision=precision, formulation=formulation,
                              progress=False)
    prob = ds.probability.squeeze([dim for dim in ("d", "kq", "value") if dim in ds.probability.dims])
    p = prob.transpose("beta", "t").values.astype(float)
    return p, int(np.mean(ds.num_steps.values)), ds.attrs["formulation"]


@functools.partial(jax.jit, static_argnames=("steps_per_save", "num_saves", "delta"))
def _euler_observed(beta, x0, h, steps_per_save: int, num_saves: int, delta: float):
    """The authors' step x <- normalise(x + h softmax(beta x x^T) x) (as
    :func:`jaxattn.studies.euler.euler_renormalise`), the mean pair fraction observed every
    ``steps_per_save`` steps inside one compiled loop (no states stored): the fastest form of
    their scheme, so the comparison is not flattered by Python overhead."""
    def step(_, x):
        a = jax.nn.softmax(beta * jnp.einsum("bid,bjd->bij", x, x), axis=-1)
        y = x + h * jnp.einsum("bij,bjd->bid", a, x)
        return y / jnp.linalg.norm(y, axis=-1, keepdims=True)

    def segment(x, _):
        x = jax.lax.fori_loop(0, steps_per_save, step, x)
        return x, jnp.mean(clustered_pair_fraction(x, delta))

    _, p = jax.lax.scan(segment, x0, None, length=num_saves - 1)
    return jnp.concatenate([jnp.mean(clustered_pair_fraction(x0, delta))[None], p])


def _euler_grid(x0, betas, ts, delta, h):
    k = int(round((ts[1] - ts[0]) / h))
    if not np.allclose(np.arange(len(ts)) * k * h, ts - ts[0], atol=1e-9):
        raise ValueError(f"the save grid must be uniform with spacing a multiple of h = {h}")
    x = jnp.asarray(x0)
    return np.stack([np.asarray(_euler_observed(jnp.asarray(b), x, h, k, len(ts), delta)) for b in betas])


def numpy_euler_grid(x0: np.ndarray, betas, ts, delta: float, h: float) -> np.ndarray:
    """The authors' scheme in plain NumPy (float64, the issue's baseline: their ``phase-diagrams.py``
    is the same batched loop in torch): x <- normalise(x + h softmax(beta X X^T) X), the mean
    clustered-pair fraction every save. Run it with one BLAS thread (``OMP_NUM_THREADS=1``)."""
    k = int(round((ts[1] - ts[0]) / h))
    n = x0.shape[-2]
    off = ~np.eye(n, dtype=bool)

    def pair_fraction(x):
        g = np.einsum("bid,bjd->bij", x, x)
        return np.mean(np.sum((g >= 1 - delta) & off, axis=(-2, -1)) / (n * (n - 1)))

    out = np.empty((len(betas), len(ts)))
    for b, beta in enumerate(betas):
        x = np.array(x0, dtype=np.float64)
        out[b, 0] = pair_fraction(x)
        for s in range(1, len(ts)):
            for _ in range(k):
                logits = beta * (x @ np.swapaxes(x, -1, -2))
                logits -= logits.max(axis=-1, keepdims=True)
                a = np.exp(logits)
                a /= a.sum(axis=-1, keepdims=True)
                y = x + h * (a @ x)
                x = y / np.linalg.norm(y, axis=-1, keepdims=True)
            out[b, s] = pair_fraction(x)
    return out


def _cpu(fn):
    """(result, CPU seconds) of one call."""
    c0 = time.process_time()
    out = fn()
    return out, time.process_time() - c0


def work_precision(betas, ts, delta: float, size=(32, 128, 64), *, rtols=WP_RTOLS, rtols32=WP_RTOLS_FLOAT32,
                   euler_h=WP_EULER_H, solvers=WP_SOLVERS, tokens_curve: bool = True, repeats: int = 1,
                   reference_rtol: float = 1e-10, max_rtol_heun: float = 1e-6):
    """Error vs CPU time of every method on the same draws; returns the table rows.

    ``size`` = (n, d, batch). Error: max over the (beta, t) grid of |P - P_ref|, P the mean
    clustered-pair fraction and P_ref the **token-space** Tsit5 solve at rtol = atol =
    ``reference_rtol`` (float64): an independent formulation, so the Gram path that
    ``phase_diagram`` takes for Q = K = V = I, d > n is checked, not only timed. jaxattn rows are
    ``paper_002.phase_diagram`` sweeps (formulation "auto"); ``tokens_curve`` adds the first solver in
    token space (float64) for comparison. Heun (order 2) is run down to ``max_rtol_heun`` only (its
    step count grows like rtol^{-1/2}: minutes per point below). CPU time: the whole beta sweep,
    compilation excluded (a warm-up call per compiled configuration), median of ``repeats``.
    """
    x0 = draws(0, size[2], size[0], size[1])

    def sweep(solver, rtol, precision, formulation="auto", grid=betas):
        return _phase_sweep(grid, ts, delta, size, solver, rtol, precision, formulation)

    ref, ref_cpu = _cpu(lambda: sweep("tsit5", reference_rtol, "float64", "tokens"))  # compile included
    p_ref = ref[0]
    results = []

    def timed(method, precision, knob, fn, formulation="euler"):
        fn(betas[:1])  # compile on one beta (the knob is traced: one compilation per method and precision)
        samples = [_cpu(lambda: fn(betas)) for _ in range(repeats)]
        (p, steps, *path), cpu = samples[0][0], float(np.median([c for _, c in samples]))
        results.append(dict(method=method, precision=precision, knob=knob, cpu_s=cpu,
                            formulation=path[0] if path else formulation,
                            max_err=float(np.max(np.abs(p - p_ref))),
                            mean_err=float(np.mean(np.abs(p - p_ref))), steps=steps))
        print(f"  {method:8s} {precision} {results[-1]['formulation']:6s} {knob:>10s}: {cpu:7.2f} CPU s, "
              f"max err {results[-1]['max_err']:.2e}, ~{steps} steps/beta", flush=True)

    def euler(h):
        steps = int(round((ts[-1] - ts[0]) / h))
        timed("euler", "float64", f"h {h:g}", lambda grid, h=h, steps=steps: (_euler_grid(x0, grid, ts, delta, h), steps),
              "tokens")

    def ours(solver, formulation="auto", tolerances=((("float64", rtols), ("float32", rtols32)))):
        for precision, tols in tolerances:
            for rtol in tols:
                if solver == "heun" and rtol < max_rtol_heun:
                    continue
                timed(solver, precision, f"rtol {rtol:.0e}",
                      lambda grid, s=solver, r=rtol, p=precision: sweep(s, r, p, formulation, grid))

    # most informative first (the output streams): Euler h = 0.1 (the authors' setting), the default
    # solver, the other Euler steps, then the other solvers
    first = [h for h in euler_h if h == 0.1]
    for h in first:
        euler(h)
    for solver in solvers[:1]:
        ours(solver)
    for h in euler_h:
        if h not in first:
            euler(h)
    for solver in solvers[1:]:
        ours(solver)
    if tokens_curve:  # what the Gram formulation saves: the first solver on the (n, d) tokens
        ours(solvers[0], "tokens", (("float64", [r for r in rtols if r in WP_RTOLS_TOKENS]),))
    return results, ref_cpu


def plot_work_precision(results, path: str, title: str) -> None:
    from jaxattn.plot import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    groups = {}
    for r in results:
        groups.setdefault((r["method"], r["precision"], r["formulation"]), []).append(r)
    for (method, precision, formulation), rows in groups.items():
        tokens = formulation == "tokens" and method != "euler"
        style = dict(marker="s" if method == "euler" else ("^" if tokens else "o"),
                     ls="--" if precision == "float32" else (":" if tokens else "-"),
                     color="k" if method == "euler" else ("grey" if tokens else None))
        label = ("Euler + renormalise (authors), h" if method == "euler" else
                 f"{method} {precision} {formulation}, rtol")
        ax.loglog([r["cpu_s"] for r in rows], [max(r["max_err"], 1e-9) for r in rows], label=label, **style)
        for r in rows[:: max(1, len(rows) - 1)]:
            ax.annotate(r["knob"].split()[1], (r["cpu_s"], max(r["max_err"], 1e-9)), fontsize=7)
    ax.axhline(1e-3, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("CPU seconds (one core, compile excluded)")
    ax.set_ylabel(r"max$_{\beta,t}$ |P - P$_{ref}$|")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    print(f"wrote {path}")


def goals(results) -> list[str]:
    """The issue-12 goals, each stated with the measured numbers of this run."""
    lines = []
    euler = {r["knob"]: r for r in results if r["method"] == "euler"}
    ours = [r for r in results if r["method"] != "euler" and r["formulation"] != "tokens"]
    for knob, e in euler.items():
        better = [r for r in ours if r["max_err"] < e["max_err"]]
        best = max(better, key=lambda r: e["cpu_s"] / r["cpu_s"]) if better else None
        if best is None:
            lines.append(f"Euler {knob} (err {e['max_err']:.2e}): no jaxattn setting is more accurate")
            continue
        ratio = e["cpu_s"] / best["cpu_s"]
        lines.append(f"Euler {knob} (err {e['max_err']:.2e}, {e['cpu_s']:.2f} s): {best['method']} {best['precision']} "
                     f"{best['knob']} err {best['max_err']:.2e} at {ratio:.1f}x less CPU time "
                     f"[goal >= 5x: {'met' if ratio >= 5 else 'MISSED'}]")
    default = [r for r in ours if r["method"] == p2.phase_diagrams.DEFAULT_SOLVER and r["precision"] == p2.phase_diagrams.DEFAULT_PRECISION
               and r["knob"] == f"rtol {p2.phase_diagrams.DEFAULT_RTOL:.0e}"]
    if default and "h 0.1" in euler:
        r, e = default[0], euler["h 0.1"]
        speed = e["cpu_s"] / r["cpu_s"]
        lines.append(f"default ({r['method']} {r['knob']} {r['precision']}): max err {r['max_err']:.2e} "
                     f"[goal <= 1e-3: {'met' if r['max_err'] <= 1e-3 else 'MISSED'}], {speed:.2f}x faster than "
                     f"Euler h 0.1 [goal >= 3x: {'met' if speed >= 3 else 'MISSED'}]")
    return lines


def main_work_precision(args) -> None:
    if args.full:
        args.betas, args.batch = 90, 1024
    betas = np.linspace(0.1, 9.0, args.betas)
    ts = np.round(np.arange(0.0, args.t1 + 1e-9, args.dt_save), 10)
    title = (f"paper 002 phase diagram: n={args.n} d={args.d}, {args.betas} betas x {args.batch} draws, "
             f"t in [0, {args.t1:g}] ({len(ts)} saves), delta={args.delta:g}")
    print("work-precision:", title, flush=True)
    kw = {}
    if args.quick:
        kw = dict(rtols=(1e-3, 1e-5), rtols32=(1e-3,), euler_h=(0.1, 0.02), solvers=("tsit5", "bosh3"))
    kw.setdefault("solvers", tuple(args.solvers))
    c0 = time.process_time()
    if args.from_json:  # re-report a finished run (table, goals against today's defaults, plot)
        with open(args.from_json) as f:
            saved = json.load(f)
        results, ref_cpu, title, total = saved["results"], saved["reference_cpu_s"], saved["title"], saved["total_cpu_s"]
    else:
        results, ref_cpu = work_precision(betas, ts, args.delta, (args.n, args.d, args.batch), repeats=args.repeats,
                                          tokens_curve=not args.no_tokens_curve, **kw)
        total = time.process_time() - c0
    rows = [[r["method"], r["precision"], r["formulation"], r["knob"], r["cpu_s"], r["max_err"], r["mean_err"],
             r["steps"]] for r in results]
    print_table(["method", "precision", "state", "knob", "CPU s", "max |P - P_ref|", "mean |P - P_ref|",
                 "steps/beta"], rows)
    print(f"reference: tsit5 float64 tokens rtol 1e-10, {ref_cpu:.2f} CPU s")
    for line in goals(results):
        print(line)
    if args.plot:
        plot_work_precision(results, args.plot, title)
        if not args.from_json:
            path = os.path.splitext(args.plot)[0] + ".json"
            with open(path, "w") as f:
                json.dump(dict(title=title, results=results, reference_cpu_s=ref_cpu, total_cpu_s=total), f, indent=1)
            print(f"wrote {path}")
    print(f"whole work-precision run: {total:.0f} CPU s (compilations included)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-precision", action="store_true",
                        help="error vs CPU time of Tsit5/Dopri5/Bosh3/Heun (float64, float32) and the authors' "
                             "Euler (default size 10 betas x 64 draws; --full: 90 x 1024)")
    parser.add_argument("--full", action="store_true", help="with --work-precision: the paper's full grid")
    parser.add_argument("--solvers", nargs="+", default=list(WP_SOLVERS), choices=list(WP_SOLVERS),
                        help="with --work-precision: the jaxattn solvers (the first is timed first)")
    parser.add_argument("--no-tokens-curve", action="store_true",
                        help="with --work-precision: skip the token-space curve of the first solver")
    parser.add_argument("--from-json", default="",
                        help="with --work-precision: re-report the results a run saved (the JSON beside its PNG)")
    parser.add_argument("--repeats", type=int, default=1, help="with --work-precision: timing repeats (median)")
    parser.add_argument("--plot", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                       "phase_diagram_work_precision.png"),
                        help="with --work-precision: the PNG to write ('' for none)")
    parser.add_argument("--quick", action="store_true", help="small run (d = 16, 6 betas, batch 32, t <= 12, Euler h in {0.1, 0.01})")
    parser.add_argument("--betas", type=int, default=90, help="number of betas in linspace(0.1, 9)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--d", type=int, default=128)
    parser.add_argument("--t1", type=float, default=30.0)
    parser.add_argument("--dt-save", type=float, default=0.5)
    parser.add_argument("--delta", type=float, default=1e-2)
    parser.add_argument("--rtol", type=float, default=p2.phase_diagrams.DEFAULT_RTOL,
                        help="jaxattn's tolerance (default: paper_002.phase_diagram's)")
    parser.add_argument("--euler-h", type=float, nargs="+", default=[0.1])
    parser.add_argument("--numpy-euler", action="store_true",
                        help="also time the authors' scheme in plain NumPy at the first --euler-h (the issue's "
                             "baseline; set OMP_NUM_THREADS=1)")
    parser.add_argument("--no-reference", action="store_true", help="skip the tight-tolerance reference")
    parser.add_argument("--reference-formulation", choices=["tokens", "auto"], default="tokens",
                        help="the reference's state: the (n, d) tokens (independent of the Gram path; default) or "
                             "phase_diagram's choice (Gram where d > n: 5-10x cheaper on large grids)")
    args = parser.parse_args(argv)
    if args.work_precision:
        if not any(a.startswith("--betas") for a in (argv or sys.argv[1:])):
            args.betas = 10
        if not any(a.startswith("--batch") for a in (argv or sys.argv[1:])):
            args.batch = 64
        if not any(a.startswith("--dt-save") for a in (argv or sys.argv[1:])):
            args.dt_save = 0.6  # a multiple of every Euler h (0.5 is not one of h = 0.2)
        if args.quick:  # n < d: the Gram path, as at full size
            args.betas, args.batch, args.n, args.d, args.t1 = 4, 16, 8, 16, 12.0
        return main_work_precision(args)
    if args.quick:
        args.betas, args.batch, args.d, args.t1 = 6, 32, 16, 12.0
        if args.euler_h == [0.1]:
            args.euler_h = [0.1, 0.01]  # what equal accuracy costs the Euler scheme
    betas = np.linspace(0.1, 9.0, args.betas)
    ts = np.round(np.arange(0.0, args.t1 + 1e-9, args.dt_save), 10)
    x0 = draws(0, args.batch, args.n, args.d)
    print(f"phase diagram: n={args.n} d={args.d} batch={args.batch} betas={len(betas)} "
          f"t in [0, {args.t1}] ({len(ts)} saves), delta={args.delta}, devices={len(jax.devices())}")

    def jax_run(rtol, directory, formulation="auto"):
        return p2.phase_diagram(betas, ts, directory=directory, n=args.n, d=args.d, batch=args.batch,
                                seeds=[0], delta=args.delta, rtol=rtol, atol=rtol, formulation=formulation,
                                progress=False)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # compile once outside the timing (a one-beta sweep of the same shapes)
        p2.phase_diagram(betas[:1], ts, directory=f"{tmp}/warm", n=args.n, d=args.d, batch=args.batch,
                         seeds=[0], delta=args.delta, rtol=args.rtol, atol=args.rtol, progress=False)
        cpu, wall = time.process_time(), time.perf_counter()
        ds = jax_run(args.rtol, f"{tmp}/fast")
        jax_cpu, jax_wall = time.process_time() - cpu, time.perf_counter() - wall
        p_jax = ds.probability.squeeze().transpose("beta", "t").values
        steps = ds.num_steps.squeeze().values
        p_ref = None
        if not args.no_reference:
            cpu = time.process_time()
            ref = jax_run(1e-10, f"{tmp}/ref", args.reference_formulation)
            ref_cpu = time.process_time() - cpu
            p_ref = ref.probability.squeeze().transpose("beta", "t").values

    def score(p):
        if p_ref is None:
            return float("nan"), float("nan")
        err = np.abs(p - p_ref)
        return float(err.max()), float(err.mean())

    rows.append([f"jaxattn {p2.phase_diagrams.DEFAULT_SOLVER} sweep ({ds.attrs['formulation']})", f"rtol {args.rtol:g}", jax_cpu,
                 jax_wall, *score(p_jax),
                 f"{int(steps.min())}-{int(steps.max())} steps/beta"])
    euler = {}
    for h in args.euler_h:
        _euler_grid(x0, betas[:1], ts, args.delta, h)  # compile outside the timing
        cpu, wall = time.process_time(), time.perf_counter()
        p_e = _euler_grid(x0, betas, ts, args.delta, h)
        euler[h] = (time.process_time() - cpu, time.perf_counter() - wall, p_e)
        rows.append(["Euler+renormalise (authors)", f"h {h:g}", euler[h][0], euler[h][1], *score(p_e),
                     f"{int(round(args.t1 / h))} steps/beta"])
    if args.numpy_euler:
        h = args.euler_h[0]
        cpu, wall = time.process_time(), time.perf_counter()
        p_np = numpy_euler_grid(x0, betas, ts, args.delta, h)
        euler[("numpy", h)] = (time.process_time() - cpu, time.perf_counter() - wall, p_np)
        rows.append(["Euler+renormalise (authors), NumPy", f"h {h:g}", *euler[("numpy", h)][:2], *score(p_np),
                     f"{int(round(args.t1 / h))} steps/beta"])
    if p_ref is not None:
        rows.append([f"reference (jaxattn {ref.attrs['formulation']})", "rtol 1e-10", ref_cpu, float("nan"), 0.0, 0.0,
                     ""])
    print_table(["method", "setting", "CPU s", "wall s", "max |P - P_ref|", "mean |P - P_ref|", "work"], rows)
    h0 = args.euler_h[0]
    print(f"\nCPU-time ratio euler(h={h0:g}) / jaxattn = {euler[h0][0] / jax_cpu:.2f}")
    if ("numpy", h0) in euler:
        print(f"CPU-time ratio NumPy euler(h={h0:g}) / jaxattn = {euler[('numpy', h0)][0] / jax_cpu:.2f}")
    if p_ref is not None:
        # where the Euler bias is largest
        b, t = np.unravel_index(np.argmax(np.abs(euler[h0][2] - p_ref)), p_ref.shape)
        print(f"largest Euler error at beta = {betas[b]:.2f}, t = {ts[t]:g}: "
              f"P_euler = {euler[h0][2][b, t]:.3f}, P_jaxattn = {p_jax[b, t]:.3f}, P_ref = {p_ref[b, t]:.3f}")


if __name__ == "__main__":
    main()
