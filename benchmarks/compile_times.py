"""Compile time per standard model (goal: < 10 s each, users sit in notebooks).

CPU seconds of ``jit(...).lower(...).compile()`` (tracing + XLA), for one RHS and one
``simulate`` of each standard field, and one ``jax.grad`` through a solve.
Run: ``taskset -c 0 python -m benchmarks.compile_times``.
"""

from __future__ import annotations

import time

import equinox as eqx
import jax
import jax.numpy as jnp

import jaxattn
from benchmarks._measure import Record, peak_rss_mb


def _compile_s(fn, *args) -> float:
    c0 = time.process_time()
    jax.jit(fn).lower(*args).compile()
    return time.process_time() - c0


def _models(quick: bool):
    x = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(0), 32, 3)
    theta = jnp.linspace(0.0, 6.0, 32)
    yield "SA sphere", jaxattn.SelfAttention(9.0), x
    yield "USA sphere", jaxattn.UnnormalisedSelfAttention(9.0, time_rescaled=True), x
    yield "causal SA", jaxattn.SelfAttention(9.0, causal=True), x
    yield "SA harmonics", jaxattn.SelfAttention(9.0, evaluator="harmonics"), x
    if not quick:
        yield "SA d=64", jaxattn.SelfAttention(1.0), jaxattn.initial.uniform_sphere(jax.random.PRNGKey(0), 32, 64)
        yield "circle SA", jaxattn.CircleSelfAttention(5.0), theta


def run(quick: bool = False) -> list[Record]:
    records = []
    for name, field, x in _models(quick):
        t_rhs = _compile_s(lambda x: field(0.0, x), x)

        def solve(x):
            return jaxattn.simulate(field, x, 10.0, ts=2).xs

        t_solve = _compile_s(solve, x)
        rec = Record("compile", name, "jit compile", t_rhs + t_solve, float("nan"), peak_rss_mb(),
                     compile_s=t_solve, note=f"RHS {t_rhs:.2f} s, simulate {t_solve:.2f} s")
        if name == "SA sphere":
            def loss(beta):
                f = eqx.tree_at(lambda m: m.beta, field, beta)
                return jnp.sum(jaxattn.simulate(f, x, 10.0, ts=2).final[:, 0])

            t_grad = _compile_s(jax.grad(loss), jnp.asarray(9.0))
            rec.note += f", grad d/dbeta of a solve {t_grad:.2f} s"
            rec.extra["grad_compile_s"] = t_grad
        rec.extra.update(rhs_compile_s=t_rhs, simulate_compile_s=t_solve)
        records.append(rec)
    return records


def main(argv=None):
    from benchmarks._measure import print_table

    rows = [[r.case, r.extra["rhs_compile_s"], r.extra["simulate_compile_s"], r.extra.get("grad_compile_s", "")]
            for r in run(quick=bool(argv and "--quick" in argv))]
    print_table(["model", "RHS compile s", "simulate compile s", "grad compile s"], rows)


if __name__ == "__main__":
    main()
