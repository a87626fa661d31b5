"""Ensemble strategies: shared-step batched state vs ``jax.vmap`` vs ``jax.lax.map`` of the solve.

Prints CPU ms per trajectory for batch sizes 1-2048 and n in {32, 256}, SA on S^2 with
beta = 9, T = 10, Tsit5 + PID(1e-6), plus the step counts: "batched" takes one shared step
count for the whole ensemble (its error norm is the max over members), "vmap" runs every
member's own steps in lockstep until the slowest is done, "map" solves members one after
another with their own steps. This is the measurement behind ``simulate``'s default
``ensemble="batched"``. Run alone: ``taskset -c 0 python -m benchmarks.ensembles``.
Large cases are timed once (``--max-work`` caps n x batch; default 256 x 2048).

``--workload phase`` / ``--workload circle`` (issue 12 item 6) measure the strategies on the sweeps
themselves, CPU s per member, one core: the paper 002 phase-diagram runs (SA on S^127, n = 32,
beta = 4, T = 30, 61 saves, Tsit5 rtol 1e-5, clustered-pair fraction; "batched c" = the members
solved c at a time by ``solve_ensemble(in_solve=True)`` as ``paper_002.phase_diagram`` calls it)
and the circle metastability sweep (SA on S^1, n = 32, beta = 4, t up to 300, rtol 1e-7). The n = 200
causal runs are measured by ``python -m benchmarks.causal_statistics --work-precision``.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

import jaxattn
from benchmarks._measure import print_table, time_call
from jaxattn.solve import solve_ensemble

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


def measure_workload(workload: str, batch: int = 128, chunks=(16, 32, 128)) -> list[list]:
    """CPU s per member of each ensemble strategy (and batched chunk size) on a sweep's own runs."""
    import time

    import jax.numpy as jnp

    from jaxattn.analysis import clustered_pair_fraction

    if workload == "phase":
        field, t1, ts, rtol = jaxattn.SelfAttention(4.0), 30.0, jnp.linspace(0.0, 30.0, 61), 1e-5
        x0 = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(0), 32, 128, batch=batch)
    else:
        field, t1, ts, rtol = jaxattn.CircleSelfAttention(4.0), 300.0, jnp.asarray([0.0, 10.0, 30.0, 100.0, 300.0]), 1e-7
        x0 = jaxattn.initial.uniform_circle(jax.random.PRNGKey(0), 32, batch=batch)

    def embed(xs):
        return jnp.stack([jnp.cos(xs), jnp.sin(xs)], -1) if workload == "circle" else xs

    def observe_in_solve(t, x):
        return clustered_pair_fraction(embed(x), 1e-2)

    def run(mode, chunk):
        out = []
        for i in range(0, batch, chunk):
            part = x0[i:i + chunk]
            if mode == "batched":
                out.append(solve_ensemble(field, part, t1, ts=ts, observe=observe_in_solve, in_solve=True,
                                                  rtol=jnp.asarray(rtol), atol=jnp.asarray(rtol))["value"])
            else:
                traj = jaxattn.simulate(field, part, t1, ts=ts, rtol=jnp.asarray(rtol), atol=jnp.asarray(rtol),
                                        ensemble=mode, max_steps=2**20)
                out.append(np.asarray(clustered_pair_fraction(embed(traj.xs), 1e-2)))
        return np.concatenate(out)

    rows, ref = [], None
    for mode, cs in (("batched", chunks), ("vmap", (chunks[0], batch)), ("map", (batch,))):
        for chunk in cs:
            run(mode, chunk)  # compile
            c0 = time.process_time()
            value = run(mode, chunk)
            cpu = (time.process_time() - c0) / batch
            ref = value if ref is None else ref
            rows.append([workload, mode, chunk, 1e3 * cpu, float(np.max(np.abs(value - ref)))])
            print(rows[-1], flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 64, 512, 2048])
    parser.add_argument("--ns", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--beta", type=float, default=9.0)
    parser.add_argument("--t1", type=float, default=10.0)
    parser.add_argument("--max-work", type=int, default=256 * 2048, help="skip cases with n x batch above this")
    parser.add_argument("--workload", choices=("phase", "circle"), default=None,
                        help="measure the strategies on a sweep's own runs instead (issue 12 item 6)")
    args = parser.parse_args(argv)
    if args.workload:
        rows = measure_workload(args.workload, batch=128 if args.workload == "phase" else 192)
        print_table(["workload", "ensemble", "members per solve", "CPU ms per member",
                     "max |P - P(first row)|"], rows)
        return
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
