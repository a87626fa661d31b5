"""Fig. 3 statistic of paper 003 at full size: jaxattn vs a faithful NumPy forward-Euler baseline.

Workload (paper 003 Fig. 3; ``docs/paper_003.md``): ``--runs`` runs (5000 at full size) of causal self-attention on
the circle, n = 200, beta = 64, Q = K = V = I, t in [0, 500]; Rényi / strong Rényi centres at t = 0
(delta = 4 beta^{-1/2}), consumed fractions and cluster counts at sparse save times.

* jaxattn: adaptive ``--solver`` (default Bosh3, ``--rtol`` = atol = 1e-4: the library default, chosen by
  ``--work-precision``), ``--chunk`` runs per compiled call, each run
  with its own steps (``--ensemble map``, default; "batched" shares one step per chunk and
  "vmap" runs members in lockstep), with the ``--evaluator`` circle field ("dense" O(n^2)
  kernel, default and faster at n = 200, or "fourier" O(n M) modes).
* baseline: the first author's scheme in NumPy (explicit Euler h = 0.05 on the attention output,
  then renormalisation; 10 000 steps to t = 500), run in the same process on ``--baseline-runs``
  runs and **extrapolated linearly per run** to ``--runs`` (its cost is exactly proportional to the
  number of runs: same steps for every run).

Both sides report process CPU time (the machine is shared) and wall time. Usage:
``taskset -c 0 python -m benchmarks.causal_statistics --runs 5000`` (full size; long), or
``--runs 40 --baseline-runs 4 --t1 50`` to check that it works.

``--work-precision`` (issue 12): the error of the statistic against a tight reference (jaxattn
Tsit5 rtol = atol = 1e-10 on the same ``--runs`` draws; default 24 runs, t in [0, 500]) against
CPU time per run, for jaxattn over solvers x rtol and the NumPy Euler at h in {0.1, 0.05, 0.02};
then the ensemble strategies (map / vmap / batched x chunk) at the chosen setting. Error = max
over the four consumed fractions and the save times of |mean over runs - reference mean| (what
Fig. 3 plots); also the per-run max. Writes ``benchmarks/results/causal_work_precision.{json,png}``.
``taskset -c 1 python -m benchmarks.causal_statistics --work-precision`` (~6 CPU-min).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

import jaxattn  # noqa: F401  (float64)
from benchmarks._euler import xla_euler
from jaxattn.solvers import RKC2
from jaxattn.studies.causal import causal_statistics, fig3_statistics, numpy_euler_causal_circle, summarise

RESULTS = Path(__file__).parent / "results"
FRACTIONS = ("renyi_ball", "strong_ball", "renyi_cluster", "strong_cluster")
SOLVERS = {"Tsit5": diffrax.Tsit5, "Bosh3": diffrax.Bosh3, "Heun": diffrax.Heun, "Dopri5": diffrax.Dopri5,
           "RKC2": RKC2, "Kvaerno3": diffrax.Kvaerno3}
STAGES = {"Tsit5": 6, "Bosh3": 3, "Heun": 2, "Dopri5": 6, "RKC2": None, "Kvaerno3": None}  # right-hand sides per accepted step (FSAL)
#: rtol = atol swept per solver (Heun below 1e-5 takes > 2500 steps per run: left out to keep the study short)
RTOLS = {"Tsit5": (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8), "Bosh3": (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7),
         "Heun": (1e-2, 1e-3, 1e-4, 1e-5), "Dopri5": (1e-2, 1e-3, 1e-4, 1e-6), "RKC2": (1e-2, 1e-3, 1e-4, 1e-5, 1e-6),
         "Kvaerno3": (1e-3,)}  # implicit (ESDIRK 3(2)): a Newton solve with an n x n Jacobian per step
#: (solver, rtols) also run in float32 (the statistic's check against the float64 reference is the point)
RTOLS_FLOAT32 = {"RKC2": (1e-2, 1e-3, 1e-4), "Bosh3": (1e-3, 1e-4)}
EULER_H = (0.1, 0.05, 0.02)


def statistic_error(stats, ref) -> tuple[float, float]:
    """(max |mean over runs - reference mean|, max per-run |difference|) over the consumed fractions and times."""
    mean = max(float(np.max(np.abs(np.asarray(stats[k]).mean(0) - np.asarray(ref[k]).mean(0)))) for k in FRACTIONS)
    run = max(float(np.max(np.abs(np.asarray(stats[k]) - np.asarray(ref[k])))) for k in FRACTIONS)
    return mean, run


def work_precision(runs: int = 24, *, n: int = 200, beta: float = 64.0, t1: float = 500.0, seed: int = 1,
                   solvers=tuple(SOLVERS), euler_h=EULER_H, ensembles: bool = True) -> dict:
    """Error of the Fig. 3 statistic vs CPU time per run, every method on the same ``runs`` draws."""
    ts = np.array([t for t in (0, 5, 10, 20, 50, 75, 150, 300, 500) if t < t1] + [t1])
    theta0 = np.asarray(jaxattn.initial.uniform_circle(jax.random.PRNGKey(seed), n, batch=runs))

    def jax_run(solver, rtol, ensemble="map", chunk=runs, precision="float64"):
        return causal_statistics(jax.random.PRNGKey(0), runs, n=n, beta=beta, ts=ts, chunk=chunk, solver=solver,
                                 rtol=rtol, atol=rtol, ensemble=ensemble, theta0=theta0, precision=precision)

    def timed(fn):
        c0 = time.process_time()
        out = fn()
        return out, (time.process_time() - c0) / runs

    ref, ref_cpu = timed(lambda: jax_run(diffrax.Tsit5(), 1e-10))
    rows = [dict(method="reference Tsit5", knob=1e-10, cpu_per_run=ref_cpu, steps=float(ref["steps"].mean()),
                 err_mean=0.0, err_run=0.0)]
    print(f"# causal Fig. 3 statistic, work-precision: {runs} runs, n = {n}, beta = {beta:g}, t in [0, {t1:g}], "
          f"save times {ts.tolist()}; CPU s per run (compilation excluded: one warm-up per solver)", flush=True)
    runs_of = [(name, "float64", RTOLS[name]) for name in solvers]
    runs_of += [(name, "float32", RTOLS_FLOAT32[name]) for name in solvers if name in RTOLS_FLOAT32]
    for name, precision, rtols in runs_of:
        solver = SOLVERS[name]()
        label = f"jaxattn {name}" + (" float32" if precision == "float32" else "")
        jax_run(solver, rtols[0], precision=precision)  # compile (rtol is an array: one compilation per precision)
        for rtol in rtols:
            out, cpu = timed(lambda: jax_run(solver, rtol, precision=precision))
            e_mean, e_run = statistic_error(out, ref)
            rows.append(dict(method=label, knob=rtol, cpu_per_run=cpu, steps=float(out["steps"].mean()),
                             err_mean=e_mean, err_run=e_run))
            print(f"{label:22s} rtol {rtol:7.0e}: {cpu:.4f} CPU-s/run, {out['steps'].mean():6.1f} steps, "
                  f"error {e_mean:.2e} (per run {e_run:.3f})", flush=True)
    for method, euler in (("NumPy Euler", lambda h: numpy_euler_causal_circle(theta0, beta, ts, h=h)),
                          ("XLA Euler", lambda h: xla_euler(theta0, beta, ts, h, causal=True, angles=True))):
        for h in euler_h:
            if method == "XLA Euler":
                euler(h)  # compile
            c0 = time.process_time()
            angles = euler(h)
            cpu = (time.process_time() - c0) / runs
            e_mean, e_run = statistic_error(jax.tree_util.tree_map(np.asarray, fig3_statistics(angles, beta)), ref)
            rows.append(dict(method=method, knob=h, cpu_per_run=cpu, steps=t1 / h, err_mean=e_mean, err_run=e_run))
            print(f"{method} h = {h:g}: {cpu:.4f} CPU-s/run, error {e_mean:.2e} (per run {e_run:.3f})", flush=True)

    euler = next(r for r in rows if r["method"] == "NumPy Euler" and r["knob"] == 0.05)
    xla = next((r for r in rows if r["method"] == "XLA Euler" and r["knob"] == 0.05), None)
    ok = [r for r in rows if r["method"].startswith("jaxattn") and r["err_mean"] <= euler["err_mean"]
          and r["err_run"] <= euler["err_run"]]
    best = min(ok, key=lambda r: r["cpu_per_run"]) if ok else None
    result = dict(runs=runs, n=n, beta=beta, t1=t1, ts=ts.tolist(), rows=rows, best=best,
                  speedup_vs_euler_005=(euler["cpu_per_run"] / best["cpu_per_run"]) if best else None,
                  speedup_vs_xla_euler_005=(xla["cpu_per_run"] / best["cpu_per_run"]) if best and xla else None)
    if best:
        print(f"cheapest jaxattn setting at equal or better error than Euler h = 0.05: {best['method']} rtol "
              f"{best['knob']:g}, {best['cpu_per_run']:.4f} CPU-s/run: {result['speedup_vs_euler_005']:.1f}x the NumPy "
              f"Euler, {result['speedup_vs_xla_euler_005'] or float('nan'):.1f}x the XLA-compiled one "
              f"(error {best['err_mean']:.2e} vs {euler['err_mean']:.2e})", flush=True)
    if ensembles:  # at the library default (Bosh3, rtol 1e-4)
        solver, rtol = diffrax.Bosh3(), 1e-4
        ens_rows = []
        for mode, chunks in (("map", (8, runs)), ("vmap", (8, runs)), ("batched", (8, runs))):
            for chunk in chunks:
                jax_run(solver, rtol, mode, chunk)  # compile
                out, cpu = timed(lambda: jax_run(solver, rtol, mode, chunk))
                e_mean, e_run = statistic_error(out, ref)
                ens_rows.append(dict(ensemble=mode, chunk=chunk, cpu_per_run=cpu, steps=float(out["steps"].mean()),
                                     err_mean=e_mean))
                print(f"ensemble {mode:8s} chunk {chunk:4d}: {cpu:.4f} CPU-s/run, {out['steps'].mean():6.1f} steps "
                      f"(batched: the chunk's shared count), error {e_mean:.2e}", flush=True)
        result["ensembles"] = ens_rows
    return result


def float32_check(runs: int = 192, *, n: int = 200, beta: float = 64.0, t1: float = 500.0, seed: int = 2,
                  solver: str = "RKC2", rtol: float = 1e-3, chunk: int = 48) -> dict:
    """The Fig. 3 statistic of the same ``runs`` draws in float32 and in float64 (same solver and tolerance),
    both against the float64 Tsit5 rtol 1e-10 reference: is the plotted statistic unchanged by float32?"""
    ts = np.array([t for t in (0, 5, 10, 20, 50, 75, 150, 300, 500) if t < t1] + [t1])
    theta0 = np.asarray(jaxattn.initial.uniform_circle(jax.random.PRNGKey(seed), n, batch=runs))

    def run(solver_, rtol_, precision):
        c0 = time.process_time()
        out = causal_statistics(jax.random.PRNGKey(0), runs, n=n, beta=beta, ts=ts, chunk=chunk, solver=solver_,
                                rtol=rtol_, atol=rtol_, theta0=theta0, precision=precision)
        return out, (time.process_time() - c0) / runs

    ref, ref_cpu = run(diffrax.Tsit5(), 1e-10, "float64")
    out = {}
    for precision in ("float64", "float32"):
        run(SOLVERS[solver](), rtol, precision)  # compile
        out[precision] = run(SOLVERS[solver](), rtol, precision)
    e64, e32 = statistic_error(out["float64"][0], ref), statistic_error(out["float32"][0], ref)
    d_mean, d_run = statistic_error(out["float32"][0], out["float64"][0])
    same = float(np.mean([np.all(np.asarray(out["float32"][0][k]) == np.asarray(out["float64"][0][k]), axis=1)
                          for k in FRACTIONS], axis=0).mean())
    result = dict(runs=runs, solver=solver, rtol=rtol, ts=ts.tolist(), reference_cpu_per_run=ref_cpu,
                  float64=dict(cpu_per_run=out["float64"][1], err_mean=e64[0], err_run=e64[1]),
                  float32=dict(cpu_per_run=out["float32"][1], err_mean=e32[0], err_run=e32[1]),
                  float32_vs_float64=dict(diff_mean=d_mean, diff_run=d_run, runs_identical=same))
    print(f"# float32 check, {runs} runs, {solver} rtol {rtol:g}: float64 {out['float64'][1]:.4f} CPU-s/run, error of the "
          f"mean {e64[0]:.2e} (per run {e64[1]:.3f}); float32 {out['float32'][1]:.4f} CPU-s/run, error {e32[0]:.2e} "
          f"(per run {e32[1]:.3f}); float32 - float64: mean {d_mean:.2e}, per run {d_run:.3f}, fraction of runs whose "
          f"four consumed fractions are identical at every time {same:.3f}", flush=True)
    return result


#: the circle sweep's rows: (label, solver factory (None: simulate's default), rtols, ensemble, precision)
CIRCLE_ROWS = (
    ("Tsit5 (plain)", diffrax.Tsit5, (1e-3, 1e-4, 1e-5, 1e-6), "vmap", "float64"),
    ("Bosh3 (plain)", diffrax.Bosh3, (1e-3, 1e-4), "vmap", "float64"),
    ("default (Tsit5 + collapse at 10 rtol)", None, (1e-3, 1e-4, 1e-5, 1e-6), "vmap", "float64"),
    ("default (Tsit5 + collapse at 10 rtol)", None, (1e-3, 1e-4, 1e-5), "map", "float64"),
    ("default (Tsit5 + collapse at 10 rtol)", None, (1e-3, 1e-4, 1e-5), "map", "float32"),
    ("Tsit5 (plain)", diffrax.Tsit5, (1e-4, 1e-5), "vmap", "float32"),
)


def circle_work_precision(batch: int = 64, *, n: int = 32, betas=(4.0, 9.0), ts=(0.0, 10.0, 30.0, 100.0, 300.0),
                          seed: int = 0, rows_of=CIRCLE_ROWS, euler_h=EULER_H) -> dict:
    """The circle metastability sweep (``jaxattn sweep circle``: paper_002.circle_metastability, SA on S^1,
    n = 32, t up to 300) at ``batch`` draws per beta: error of the mean cluster count and of the mean
    clustered-pair fraction (max over beta and t) against Tsit5 rtol 1e-10 (no merges), vs CPU s per member;
    the authors' Euler in NumPy and compiled by XLA on the same draws."""
    from jaxattn.studies.paper_002 import circle_metastability
    from jaxattn.analysis import clustered_pair_fraction, count_clusters

    ts = np.asarray(ts, dtype=float)
    theta0 = jaxattn.initial.uniform_circle(jax.random.PRNGKey(seed), n, batch=batch)
    members = batch * len(betas)

    def jax_run(solver, rtol, ensemble="vmap", precision="float64"):
        return circle_metastability(list(betas), ts, n=n, batch=batch, x0=theta0.astype(precision), solver=solver,
                                    rtol=jnp.asarray(rtol, precision), atol=jnp.asarray(rtol, precision),
                                    ensemble=ensemble)

    def err(ds, ref):
        return (float(np.max(np.abs(ds.clusters.mean("member") - ref.clusters.mean("member")))),
                float(np.max(np.abs(ds.pair_fraction.mean("member") - ref.pair_fraction.mean("member")))))

    c0 = time.process_time()
    ref = jax_run(diffrax.Tsit5(), 1e-10)
    rows = [dict(method="reference Tsit5", knob=1e-10, cpu_per_member=(time.process_time() - c0) / members,
                 err_clusters=0.0, err_pairs=0.0)]
    print(f"# circle metastability sweep, work-precision: SA on S^1, n = {n}, betas {list(betas)}, {batch} draws "
          f"per beta, save times {ts.tolist()}", flush=True)
    for label, make, rtols, ensemble, precision in rows_of:
        solver = lambda: None if make is None else make()  # noqa: E731
        jax_run(solver(), rtols[0], ensemble, precision)  # compile
        for rtol in rtols:
            c0 = time.process_time()
            ds = jax_run(solver(), rtol, ensemble, precision)
            cpu = (time.process_time() - c0) / members
            e_c, e_p = err(ds, ref)
            method = f"jaxattn {label}, {ensemble}" + (", float32" if precision == "float32" else "")
            rows.append(dict(method=method, knob=rtol, cpu_per_member=cpu, err_clusters=e_c, err_pairs=e_p))
            print(f"{method:55s} rtol {rtol:7.0e}: {1e3 * cpu:.2f} CPU-ms/member, error of mean clusters "
                  f"{e_c:.3f}, of mean pair fraction {e_p:.2e}", flush=True)
    for method, euler in (("NumPy Euler", lambda b, h: numpy_euler_causal_circle(np.asarray(theta0), b, ts, h=h,
                                                                                  causal=False)),
                          ("XLA Euler", lambda b, h: xla_euler(theta0, b, ts, h, angles=True))):
        for h in euler_h:
            e_c = e_p = cpu = 0.0
            for i, beta in enumerate(betas):
                if method == "XLA Euler":
                    euler(beta, h)  # compile
                c0 = time.process_time()
                angles = euler(beta, h)
                cpu += time.process_time() - c0
                th = jnp.asarray(angles)
                x = jnp.stack([jnp.cos(th), jnp.sin(th)], -1)
                clusters = np.asarray(count_clusters(th, manifold="circle", gap=0.1)).mean(0)
                pairs = np.asarray(clustered_pair_fraction(x, 1e-2)).mean(0)
                e_c = max(e_c, float(np.max(np.abs(clusters - ref.clusters.isel(beta=i).mean("member").values))))
                e_p = max(e_p, float(np.max(np.abs(pairs - ref.pair_fraction.isel(beta=i).mean("member").values))))
            rows.append(dict(method=method, knob=h, cpu_per_member=cpu / members, err_clusters=e_c, err_pairs=e_p))
            print(f"{method} h = {h:g}: {1e3 * cpu / members:.2f} CPU-ms/member, error of mean clusters {e_c:.3f}, "
                  f"of mean pair fraction {e_p:.2e}", flush=True)
    return dict(n=n, betas=list(betas), batch=batch, ts=ts.tolist(), rows=rows)


def plot(result, path):
    from jaxattn.plot import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    methods = dict.fromkeys(r["method"] for r in result["rows"] if r["method"] != "reference Tsit5")
    floor = 0.5 / (result["runs"] * result["n"])  # below one token in all runs: plotted at this floor
    for m in methods:
        rs = [r for r in result["rows"] if r["method"] == m]
        ax.loglog([r["cpu_per_run"] for r in rs], [max(r["err_mean"], floor) for r in rs],
                  "s--" if "Euler" in m else "o-", label=m)
        for r in rs:
            ax.annotate(f"{r['knob']:g}", (r["cpu_per_run"], max(r["err_mean"], floor)), fontsize=6)
    ax.axhline(floor, color="grey", lw=0.5)
    ax.set_xlabel("CPU s per run (one core)")
    ax.set_ylabel("max |error| of mean consumed fractions")
    ax.set_title(f"causal Fig. 3 statistic, {result['runs']} runs, n = {result['n']} (grey line: error 0)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--baseline-runs", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=250)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--beta", type=float, default=64.0)
    parser.add_argument("--t1", type=float, default=500.0)
    parser.add_argument("--evaluator", choices=("dense", "fourier"), default="dense")
    parser.add_argument("--ensemble", choices=("map", "vmap", "batched"), default=None,
                        help="default: map for the causal runs, vmap with --circle (the measured best of each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-precision", action="store_true",
                        help="error of the statistic vs CPU time (issue 12); --runs defaults to 24 there")
    parser.add_argument("--solver", choices=tuple(SOLVERS), default="Bosh3")
    parser.add_argument("--rtol", type=float, default=1e-4, help="rtol = atol (default: the library default)")
    parser.add_argument("--circle", action="store_true",
                        help="work-precision of the circle metastability sweep instead (64 draws per beta)")
    parser.add_argument("--solvers", nargs="+", choices=tuple(SOLVERS), default=None,
                        help="with --work-precision: the jaxattn solvers (default: all)")
    parser.add_argument("--euler-h", type=float, nargs="+", default=None,
                        help="with --work-precision: the Euler steps (default 0.1 0.05 0.02)")
    parser.add_argument("--no-ensembles", action="store_true", help="with --work-precision: skip the ensemble rows")
    parser.add_argument("--float32-check", type=int, default=0, metavar="RUNS",
                        help="the statistic in float32 vs float64 (RKC2 rtol 1e-3) on RUNS draws, against the reference")
    parser.add_argument("--tag", default="", help="suffix of the results file names (a study split into parts)")
    args = parser.parse_args(argv)
    if args.float32_check:
        result = float32_check(args.float32_check)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"causal_float32_check{args.tag}.json").write_text(json.dumps(result, indent=1))
        return
    if args.circle:
        result = circle_work_precision(euler_h=tuple(args.euler_h or EULER_H))
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "causal_circle_work_precision.json").write_text(json.dumps(result, indent=1))
        print(f"wrote {RESULTS / 'causal_circle_work_precision.json'}")
        return
    args.ensemble = args.ensemble or "map"
    if args.work_precision:
        runs = 24 if args.runs == 5000 else args.runs
        result = work_precision(runs, n=args.n, beta=args.beta, t1=args.t1, solvers=tuple(args.solvers or SOLVERS),
                                euler_h=tuple(args.euler_h or EULER_H), ensembles=not args.no_ensembles)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"causal_work_precision{args.tag}.json").write_text(json.dumps(result, indent=1))
        plot(result, RESULTS / f"causal_work_precision{args.tag}.png")
        print(f"wrote {RESULTS / 'causal_work_precision.json'} and .png")
        return
    ts = np.array([t for t in (0, 5, 10, 20, 50, 75, 150, 300, 500) if t <= args.t1] or [0.0])
    if ts[-1] != args.t1:
        ts = np.append(ts, args.t1)
    key = jax.random.PRNGKey(args.seed)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    out = causal_statistics(key, args.runs, n=args.n, beta=args.beta, ts=ts, chunk=args.chunk,
                            evaluator=args.evaluator, ensemble=args.ensemble, return_angles=False,
                            solver=SOLVERS[args.solver](), rtol=args.rtol, atol=args.rtol)
    cpu_jax, wall_jax = time.process_time() - cpu0, time.perf_counter() - wall0

    nb = min(args.baseline_runs, args.runs)
    theta0 = np.asarray(jaxattn.initial.uniform_circle(jax.random.PRNGKey(args.seed + 1), args.n, batch=nb))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    numpy_euler_causal_circle(theta0, args.beta, ts, h=0.05)
    cpu_np, wall_np = time.process_time() - cpu0, time.perf_counter() - wall0
    scale = args.runs / nb

    print(f"# Fig. 3 statistic: runs = {args.runs}, n = {args.n}, beta = {args.beta}, t1 = {args.t1}, "
          f"jax devices = {jax.devices()}")
    for name in ("renyi_ball", "strong_ball", "renyi_cluster", "strong_cluster", "clusters"):
        s = summarise(out[name])
        print(f"{name:15s} " + "  ".join(f"t={t:g}: {m:.3f} [{a:.2f},{b:.2f}]"
                                         for t, m, a, b in zip(ts, s["mean"], s["q10"], s["q90"])))
    steps = np.asarray(out["steps"])
    print(f"mean #Rényi centres {out['num_renyi'].mean():.3f}, #strong {out['num_strong'].mean():.3f}; "
          f"solver steps per run: mean {steps.mean():.1f}, max {steps.max()}; RHS evaluations per run "
          f"({args.solver}, {STAGES[args.solver]} per step): {STAGES[args.solver] * steps.mean():.0f} (Euler: {int(round(args.t1 / 0.05))})")
    print(f"jaxattn ({args.evaluator}, {args.ensemble}, {args.solver} rtol {args.rtol:g}, chunks of {args.chunk}): {cpu_jax:.1f} CPU-s, "
          f"{wall_jax:.1f} s wall (includes compilation)")
    print(f"NumPy Euler h=0.05 baseline: measured {cpu_np:.1f} CPU-s / {wall_np:.1f} s wall on {nb} runs; "
          f"extrapolated x{scale:.0f} per run to {args.runs} runs: {cpu_np * scale:.1f} CPU-s, "
          f"{wall_np * scale:.1f} s wall")
    print(f"ratio (baseline / jaxattn, CPU): {cpu_np * scale / cpu_jax:.2f}")


if __name__ == "__main__":
    main()
