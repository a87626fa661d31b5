"""Time of one SA right-hand side vs n (log-log): O(n^2) dense vs the O(n) fast paths.

Writes ``scaling.json`` and ``scaling.png`` (to ``--out``, default ``benchmarks/results``).
Left panel, S^2: dense row-blocked kernel vs ``evaluator="harmonics"`` at tol 1e-13, whose
degree L grows slowly with n (the SA bound has a factor n), so its slope is ~1. Right panel,
S^1 with the causal mask (paper 003, beta = 64): dense vs ``evaluator="fourier"``
(O(n M), M = 70 modes), up to n = 10^6.
Run: ``taskset -c 0 python -m benchmarks.scaling [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os

import jax

import jaxattn


from benchmarks._measure import time_call

DENSE_NS = [256, 512, 1024, 2048, 4096, 8192]
FAST_NS = [256, 1024, 4096, 16384, 65536, 100_000]
CIRCLE_DENSE_NS = [256, 1024, 4096, 16384]
CIRCLE_FAST_NS = [256, 1024, 4096, 16384, 65536, 262_144, 1_000_000]
CIRCLE_BETA = 64.0


def _rhs(field):
    """A jitted x -> field(0, x) (fields are pytrees: close over them, don't hash them)."""
    return jax.jit(lambda x: field(0.0, x))


def _time(field, x, n) -> dict:
    field(x).block_until_ready()
    cpu, wall = time_call(lambda: field(x), repeats=3 if n <= 16384 else 1, min_time=0.0)
    return {"n": n, "cpu_s": cpu, "wall_s": wall}


def run(quick: bool = False, beta: float = 9.0) -> dict:
    dense_ns = DENSE_NS[:3] if quick else DENSE_NS
    fast_ns = FAST_NS[:3] if quick else FAST_NS
    out = {"beta": beta, "dense": [], "harmonics": [], "circle_beta": CIRCLE_BETA,
           "circle_dense": [], "circle_fourier": []}
    for kind, ns in (("dense", dense_ns), ("harmonics", fast_ns)):
        field = _rhs(jaxattn.SelfAttention(beta, evaluator=kind))
        for n in ns:
            out[kind].append(_time(field, jaxattn.initial.uniform_sphere(jax.random.PRNGKey(0), n, 3), n))
    circle_dense = CIRCLE_DENSE_NS[:2] if quick else CIRCLE_DENSE_NS
    circle_fast = CIRCLE_FAST_NS[:3] if quick else CIRCLE_FAST_NS
    for kind, ns in (("dense", circle_dense), ("fourier", circle_fast)):
        field = _rhs(jaxattn.CircleSelfAttention(CIRCLE_BETA, causal=True, evaluator=kind))
        for n in ns:
            out["circle_" + kind].append(_time(field, jaxattn.initial.uniform_circle(jax.random.PRNGKey(0), n), n))
    return out


def _panel(ax, slow, fast, labels, title, xlabel):
    for pts, label, marker in ((slow, labels[0], "o"), (fast, labels[1], "s")):
        ax.loglog([p["n"] for p in pts], [p["cpu_s"] for p in pts], marker=marker, label=label)
    ns = [p["n"] for p in fast]
    s0, f0 = slow[0], fast[-1]
    ax.loglog(ns, [s0["cpu_s"] * (n / s0["n"]) ** 2 for n in ns], "k:", lw=0.8, label="~ n^2")
    ax.loglog(ns, [f0["cpu_s"] * n / f0["n"] for n in ns], "k--", lw=0.8, label="~ n")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.set_ylim(top=max(p["cpu_s"] for p in slow + fast) * 3)
    ax.legend()


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    circle = bool(result.get("circle_fourier"))
    fig, axes = plt.subplots(1, 2 if circle else 1, figsize=(10.5 if circle else 5.5, 4), squeeze=False)
    _panel(axes[0, 0], result["dense"], result["harmonics"], ("dense", "harmonics"),
           f"SA on S^2, beta = {result['beta']:g}, float64", "n tokens on S^2")
    axes[0, 0].set_ylabel("CPU s per right-hand side (1 core)")
    if circle:
        _panel(axes[0, 1], result["circle_dense"], result["circle_fourier"], ("dense", "fourier"),
               f"causal SA on S^1, beta = {result['circle_beta']:g}", "n tokens on S^1")
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
    for kind in ("dense", "harmonics", "circle_dense", "circle_fourier"):
        print(kind, " ".join(f"n={p['n']}: {p['cpu_s']:.3g}s" for p in result[kind]))


if __name__ == "__main__":
    main()
