"""Fig. 3 statistic of paper 003 at full size: jaxattn vs a faithful NumPy forward-Euler baseline.

Workload (paper 003 Fig. 3; ``docs/paper_003.md``): ``--runs`` runs (5000 at full size) of causal self-attention on
the circle, n = 200, beta = 64, Q = K = V = I, t in [0, 500]; Rényi / strong Rényi centres at t = 0
(delta = 4 beta^{-1/2}), consumed fractions and cluster counts at sparse save times.

* jaxattn: adaptive Tsit5 (rtol = atol = 1e-6), ``--chunk`` runs per compiled call, each run
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
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import jaxattn  # noqa: F401  (float64)
from jaxattn.studies.causal import causal_statistics, numpy_euler_causal_circle, summarise


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--baseline-runs", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=250)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--beta", type=float, default=64.0)
    parser.add_argument("--t1", type=float, default=500.0)
    parser.add_argument("--evaluator", choices=("dense", "fourier"), default="dense")
    parser.add_argument("--ensemble", choices=("map", "vmap", "batched"), default="map")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    ts = np.array([t for t in (0, 5, 10, 20, 50, 75, 150, 300, 500) if t <= args.t1] or [0.0])
    if ts[-1] != args.t1:
        ts = np.append(ts, args.t1)
    key = jax.random.PRNGKey(args.seed)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    out = causal_statistics(key, args.runs, n=args.n, beta=args.beta, ts=ts, chunk=args.chunk,
                            evaluator=args.evaluator, ensemble=args.ensemble, return_angles=False)
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
    steps = out["steps"]
    print(f"mean #Rényi centres {out['num_renyi'].mean():.3f}, #strong {out['num_strong'].mean():.3f}; "
          f"solver steps per run: mean {steps.mean():.1f}, max {steps.max()}; RHS evaluations per run "
          f"(Tsit5, 6 per step + 1): {6 * steps.mean() + 1:.0f} (Euler: {int(round(args.t1 / 0.05))})")
    print(f"jaxattn ({args.evaluator}, {args.ensemble}, Tsit5 rtol 1e-6, chunks of {args.chunk}): {cpu_jax:.1f} CPU-s, "
          f"{wall_jax:.1f} s wall (includes compilation)")
    print(f"NumPy Euler h=0.05 baseline: measured {cpu_np:.1f} CPU-s / {wall_np:.1f} s wall on {nb} runs; "
          f"extrapolated x{scale:.0f} per run to {args.runs} runs: {cpu_np * scale:.1f} CPU-s, "
          f"{wall_np * scale:.1f} s wall")
    print(f"ratio (baseline / jaxattn, CPU): {cpu_np * scale / cpu_jax:.2f}")


if __name__ == "__main__":
    main()
