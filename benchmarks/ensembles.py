"""Ensemble strategies: one batched state with a shared step vs ``jax.vmap`` of the solve.

Prints CPU ms per trajectory for batch sizes and n, SA on S^2 with beta = 9, T = 10,
Tsit5 + PID(1e-6). This is the measurement behind ``simulate``'s default
``ensemble="batched"``. Run: ``taskset -c 0 python -m benchmarks.ensembles``.
"""

from __future__ import annotations

import argparse

import jax

import jaxattn
from benchmarks._timing import cpu_time, print_table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--ns", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--beta", type=float, default=9.0)
    parser.add_argument("--t1", type=float, default=10.0)
    args = parser.parse_args(argv)
    field = jaxattn.SelfAttention(args.beta)
    rows = []
    for n in args.ns:
        for batch in args.batches:
            if n * batch > 256 * 64:
                continue
            x0 = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(0), n, 3, batch=batch)
            times = {}
            for mode in ("batched", "vmap"):
                run = lambda: jaxattn.simulate(field, x0, args.t1, ts=2, ensemble=mode).xs  # noqa: E731
                run()  # compile
                times[mode] = cpu_time(run, repeats=3) / batch
            traj_b = jaxattn.simulate(field, x0, args.t1, ts=2)
            traj_v = jaxattn.simulate(field, x0, args.t1, ts=2, ensemble="vmap")
            rows.append([n, batch, 1e3 * times["batched"], 1e3 * times["vmap"],
                         times["vmap"] / times["batched"], int(traj_b.stats["num_steps"]),
                         int(traj_v.stats["num_steps"].max())])
    print(f"SA on S^2, beta = {args.beta:g}, T = {args.t1:g}; CPU ms per trajectory (median of 3)")
    print_table(["n", "batch", "batched ms", "vmap ms", "vmap/batched", "batched steps", "vmap max steps"], rows)


if __name__ == "__main__":
    main()
