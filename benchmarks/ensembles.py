"""Ensemble strategies: shared-step batched state vs ``jax.vmap`` vs ``jax.lax.map`` of the solve.

Prints CPU ms per trajectory for batch sizes 1-2048 and n in {32, 256}, SA on S^2 with
beta = 9, T = 10, Tsit5 + PID(1e-6), plus the step counts: "batched" takes one shared step
count for the whole ensemble (its error norm is the max over members), "vmap" runs every
member's own steps in lockstep until the slowest is done, "map" solves members one after
another with their own steps. This is the measurement behind ``simulate``'s default
``ensemble="batched"``. Run alone: ``taskset -c 0 python -m benchmarks.ensembles``.
Large cases are timed once (``--max-work`` caps n x batch; default 256 x 2048).
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

import jaxattn
from benchmarks._measure import print_table, time_call

MODES = ("batched", "vmap", "map")


def measure(n: int, batch: int, beta: float = 9.0, t1: float = 10.0, repeats: int = 3) -> dict:
    """CPU seconds per trajectory and step counts of each ensemble mode for one (n, batch)."""
    field = jaxattn.SelfAttention(beta)
    x0 = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(0), n, 3, batch=batch)
    out = {}
    for mode in MODES:
        run = lambda mode=mode: jaxattn.simulate(field, x0, t1, ts=2, ensemble=mode)  # noqa: E731
        traj = run()  # compile
        out[mode] = time_call(lambda: run().xs, repeats=repeats, min_time=0.05)[0] / batch
        out[mode + "_steps"] = int(np.max(np.asarray(traj.stats["num_steps"])))
        out[mode + "_mean_steps"] = float(np.mean(np.asarray(traj.stats["num_steps"])))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 64, 512, 2048])
    parser.add_argument("--ns", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--beta", type=float, default=9.0)
    parser.add_argument("--t1", type=float, default=10.0)
    parser.add_argument("--max-work", type=int, default=256 * 2048, help="skip cases with n x batch above this")
    args = parser.parse_args(argv)
    rows = []
    for n in args.ns:
        for batch in args.batches:
            if n * batch > args.max_work:
                continue
            m = measure(n, batch, args.beta, args.t1, repeats=1 if n * batch >= 256 * 256 else 3)
            best = min(MODES, key=lambda k: m[k])
            rows.append([n, batch] + [1e3 * m[k] for k in MODES] + [best, m["batched_steps"],
                        m["vmap_steps"], f"{m['map_mean_steps']:.1f}"])
    print(f"SA on S^2, beta = {args.beta:g}, T = {args.t1:g}; CPU ms per trajectory (median of 3; 1 for big cases)")
    print_table(["n", "batch", "batched ms", "vmap ms", "map ms", "fastest", "batched steps",
                 "vmap (max) steps", "map mean steps"], rows)


if __name__ == "__main__":
    main()
