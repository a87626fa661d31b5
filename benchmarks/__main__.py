"""``python -m benchmarks``: run every workload and print one comparison table.

Columns: workload, case, implementation, CPU s (median; pin with ``taskset -c 0`` for
one-core figures), wall s (median), process peak RSS (MB, high-water mark so far),
ratio vs the baseline of the same row group (baseline time / this time: > 1 is faster),
fraction of the roofline measured in this same run (:mod:`benchmarks.roofline`), compile
s (first call minus a warm call) and a note. Every comparison runs both sides in this
process, interleaved repeat by repeat. Results go to ``--out`` as ``results.json`` and
``results.csv`` (and ``scaling.png`` when the scaling workload runs).

Workloads (``--only`` picks a subset): rhs, solve, ensembles, fast_sphere, fast_circle,
compile, scaling, and the other benchmark modules: phase_diagram, causal_statistics,
gradients (run at the reduced sizes of ``RUNNER_ARGV``; the modules' own defaults are the
papers' full sizes), phase_diagram_wp (the phase-diagram work-precision study at its reduced
size, 10 betas x 64 draws, writing ``phase_diagram_work_precision.png``), longtime (SA on the
circle to T = 500 and 10^4, writing ``longtime_circle.json``; ~5 CPU-min at full size) and circle_pde
(``jaxattn.spectral.circle.solve_circle``).

    taskset -c 0 python -m benchmarks --quick            # ~minutes, small sizes
    taskset -c 0 python -m benchmarks                    # full sizes (< 20 min idle core)
    python -m benchmarks --quick --only rhs compile
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time

import jax

WORKLOADS = ["rhs", "solve", "ensembles", "fast_sphere", "fast_circle", "compile", "scaling",
             "phase_diagram", "phase_diagram_wp", "causal_statistics", "longtime", "gradients", "circle_pde"]

#: sizes the runner uses for the standalone benchmark modules (their own defaults are the
#: papers' full sizes, which take 6-20 CPU-minutes each: run those modules directly)
RUNNER_ARGV = {
    "phase_diagram": ["--betas", "30", "--batch", "64"],
    "causal_statistics": ["--runs", "500", "--baseline-runs", "4"],
}

HEADERS = ["workload", "case", "impl", "CPU s", "wall s", "peak RSS MB", "vs baseline", "roofline",
           "compile s", "note"]


def _run_workload(name: str, quick: bool, out_dir: str):
    from benchmarks import _workloads as w

    if name == "rhs":
        return w.rhs(quick)
    if name == "solve":
        return w.solve(quick)
    if name == "ensembles":
        return w.ensembles(quick)
    if name == "fast_sphere":
        return w.fast_sphere(quick)
    if name == "compile":
        from benchmarks import compile_times
        return compile_times.run(quick)
    if name == "scaling":
        from benchmarks import scaling
        from benchmarks._measure import Record, peak_rss_mb
        c0, w0 = time.process_time(), time.perf_counter()
        result = scaling.run(quick)
        scaling.plot(result, os.path.join(out_dir, "scaling.png"))
        with open(os.path.join(out_dir, "scaling.json"), "w") as fh:
            json.dump(result, fh, indent=1)
        records = []
        for kind in ("dense", "harmonics"):
            for p in result[kind]:
                records.append(Record("scaling", f"SA n={p['n']} d=3 beta={result['beta']:g}", kind, p["cpu_s"],
                                      p["wall_s"], peak_rss_mb()))
        for kind in ("dense", "fourier"):
            for p in result["circle_" + kind]:
                records.append(Record("scaling", f"causal SA S^1 n={p['n']} beta={result['circle_beta']:g}", kind,
                                      p["cpu_s"], p["wall_s"], peak_rss_mb()))
        records[-1].note = f"plot: {os.path.join(out_dir, 'scaling.png')} (total {time.process_time() - c0:.0f} CPU s)"
        return records
    if name == "circle_pde":
        return w.circle_pde(quick)
    if name == "fast_circle":
        return w.fast_circle(quick)
    if name == "phase_diagram_wp":  # the work-precision study (issue 12), reduced: 10 betas x 64 draws
        plot = ["--plot", os.path.join(out_dir, "phase_diagram_work_precision.png")]
        return w.external("phase_diagram", quick, argv_quick=["--work-precision", "--quick", *plot],
                          argv_full=["--work-precision", *plot])
    if name == "longtime":  # long-time workload (circle, T = 500 and 10^4): its results file in out_dir
        return w.external("longtime", quick, argv_full=["--out", out_dir])
    return w.external(name, quick, argv_full=RUNNER_ARGV.get(name))


def _fmt(v):
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        return "nan" if v != v else f"{v:.3g}"
    return str(v)


def print_table(records) -> None:
    from benchmarks._measure import print_table as _print

    rows = [[r.workload, r.case, r.impl, r.cpu_s, r.wall_s, r.peak_rss_mb,
             _fmt(r.ratio_vs_baseline) + ("x" if r.ratio_vs_baseline else ""),
             (f"{100 * r.roofline_fraction:.0f}%" if r.roofline_fraction else ""),
             _fmt(r.compile_s), r.note] for r in records]
    _print(HEADERS, rows)


def write(records, meta: dict, out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as fh:
        json.dump({"meta": meta, "records": [r.as_dict() for r in records]}, fh, indent=1, default=str)
    with open(os.path.join(out_dir, "results.csv"), "w", newline="") as fh:
        writer = csv.writer(fh)
        fields = ["workload", "case", "impl", "cpu_s", "wall_s", "peak_rss_mb", "baseline",
                  "ratio_vs_baseline", "roofline_fraction", "compile_s", "note"]
        writer.writerow(fields)
        for r in records:
            d = r.as_dict()
            writer.writerow([d[f] for f in fields])


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (minutes)")
    parser.add_argument("--only", nargs="+", choices=WORKLOADS, help="run only these workloads")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"),
                        help="directory for results.json / results.csv / scaling.png")
    args = parser.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    os.makedirs(args.out, exist_ok=True)
    from benchmarks.roofline import peaks

    t0 = time.perf_counter()
    p64 = peaks("float64")
    meta = {"quick": args.quick, "python": sys.version.split()[0], "jax": jax.__version__,
            "machine": platform.machine(), "cpu_affinity": sorted(os.sched_getaffinity(0)),
            "roofline_float64": p64}
    print(f"roofline (float64, this run): matmul {p64['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s, "
          f"exp {p64['exp_per_s'] / 1e9:.2f} Gexp/s; cores {meta['cpu_affinity']}", flush=True)
    records = []
    for name in args.only or WORKLOADS:
        c0 = time.perf_counter()
        print(f"... {name}", file=sys.stderr, flush=True)
        records += _run_workload(name, args.quick, args.out)
        print(f"    {name} took {time.perf_counter() - c0:.0f} s wall", file=sys.stderr, flush=True)
    meta["total_wall_s"] = time.perf_counter() - t0
    print_table(records)
    for r in records:
        if r.extra.get("output"):
            print(f"\n### {r.workload} ({r.impl} {r.case})\n{r.extra['output'].rstrip()}")
    write(records, meta, args.out)
    print(f"\nwrote {os.path.join(args.out, 'results.json')} and results.csv; total {meta['total_wall_s']:.0f} s wall")
    return records


if __name__ == "__main__":
    main()
