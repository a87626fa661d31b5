"""Time of one SA right-hand side vs n on S^2 (log-log): O(n^2) dense vs O(n L^2) harmonics.

Writes ``scaling.json`` and ``scaling.png`` (to ``--out``, default ``benchmarks/results``).
Dense: the row-blocked kernel; harmonics: ``evaluator="harmonics"`` at tol 1e-13, whose
degree L grows slowly with n (the SA bound has a factor n), so its slope is ~1.
Run: ``taskset -c 0 python -m benchmarks.scaling [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os

import jax

import jaxattn


def _rhs(field):
    """A jitted x -> field(0, x) (fields are pytrees: close over them, don't hash them)."""
    return jax.jit(lambda x: field(0.0, x))
from benchmarks._measure import time_call

DENSE_NS = [256, 512, 1024, 2048, 4096, 8192]
FAST_NS = [256, 1024, 4096, 16384, 65536, 100_000]


def run(quick: bool = False, beta: float = 9.0) -> dict:
    dense_ns = DENSE_NS[:3] if quick else DENSE_NS
    fast_ns = FAST_NS[:3] if quick else FAST_NS
    out = {"beta": beta, "dense": [], "harmonics": []}
    for kind, ns in (("dense", dense_ns), ("harmonics", fast_ns)):
        field = _rhs(jaxattn.SelfAttention(beta, evaluator=kind))
        for n in ns:
            x = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(0), n, 3)
            field(x).block_until_ready()
            cpu, wall = time_call(lambda: field(x), repeats=3 if n <= 16384 else 1, min_time=0.0)
            out[kind].append({"n": n, "cpu_s": cpu, "wall_s": wall})
    return out


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for kind, marker in (("dense", "o"), ("harmonics", "s")):
        pts = result[kind]
        ax.loglog([p["n"] for p in pts], [p["cpu_s"] for p in pts], marker=marker, label=kind)
    n0 = result["dense"][0]
    ns = [p["n"] for p in result["harmonics"]]
    ax.loglog(ns, [n0["cpu_s"] * (n / n0["n"]) ** 2 for n in ns], "k:", lw=0.8, label="~ n^2")
    f0 = result["harmonics"][-1]
    ax.loglog(ns, [f0["cpu_s"] * n / f0["n"] for n in ns], "k--", lw=0.8, label="~ n")
    ax.set_xlabel("n tokens on S^2")
    ax.set_ylabel("CPU s per right-hand side (1 core)")
    ax.set_title(f"SA, beta = {result['beta']:g}, float64")
    ax.set_ylim(top=max(p["cpu_s"] for p in result["dense"] + result["harmonics"]) * 3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    result = run(args.quick)
    with open(os.path.join(args.out, "scaling.json"), "w") as fh:
        json.dump(result, fh, indent=1)
    plot(result, os.path.join(args.out, "scaling.png"))
    for kind in ("dense", "harmonics"):
        print(kind, " ".join(f"n={p['n']}: {p['cpu_s']:.3g}s" for p in result[kind]))


if __name__ == "__main__":
    main()
