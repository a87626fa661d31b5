"""Reverse-mode cost of jax.grad through simulate: time over a forward solve, and peak memory.

    python -m benchmarks.gradients            # n in {32, 256, 1024} (the lead runs this alone)
    python -m benchmarks.gradients --quick    # n in {16, 32}, to check it runs

Setting (``docs/gradients.md``): SA, d = 3, beta = 9, T = 10, Tsit5 + PID rtol = atol = 1e-6,
L = mean_{i != j} <x_i(T), x_j(T)>; dL/dbeta by the recursive-checkpoint adjoint (the default).

* Time: ``time.process_time`` medians (benchmarks/_measure.py) of the jitted forward L(beta) and the
  jitted value_and_grad, both in this process, after compilation.
* Memory: XLA's compiled memory analysis (``jax.jit(f).lower(...).compile().memory_analysis()``):
  temp + output + argument bytes of each compiled program, i.e. the peak working set the compiler
  planned, not the process RSS.
* Table 2 (n = 32 unless --n): memory against the number of steps (longer T, fixed checkpoints) and
  against ``checkpoints``: the adjoint's memory is set by the checkpoints, not the step count.
"""

from __future__ import annotations

import argparse
import math

import jax
import jax.numpy as jnp

import jaxattn
from jaxattn.analysis import mean_inner_product
from jaxattn.grad import checkpointed_adjoint

from ._measure import print_table, time_call


def _programs(x0, T, checkpoints=None, rtol=1e-6):
    adjoint = checkpointed_adjoint(checkpoints)

    def loss(beta):
        tr = jaxattn.simulate(jaxattn.SelfAttention(beta), x0, T, ts=2, rtol=rtol, atol=rtol, adjoint=adjoint)
        return mean_inner_product(tr.final)

    def steps(beta):
        tr = jaxattn.simulate(jaxattn.SelfAttention(beta), x0, T, ts=2, rtol=rtol, atol=rtol, adjoint=adjoint)
        return tr.stats["num_steps"]

    return jax.jit(loss), jax.jit(jax.value_and_grad(loss)), jax.jit(steps)


def _default_checkpoints(max_steps: int = 65536) -> int:
    """equinox's default for checkpoints=None: the smallest c with (c+1)(c+2)/2 > max_steps."""
    return math.floor(-1.5 + math.sqrt(2 * max_steps + 0.25)) + 1


def _peak_bytes(fn, *args) -> int | None:
    try:
        m = fn.lower(*args).compile().memory_analysis()
    except Exception:  # backend without memory analysis
        return None
    if m is None:
        return None
    return int(m.temp_size_in_bytes + m.output_size_in_bytes + m.argument_size_in_bytes)


def _mib(b):
    return "n/a" if b is None else f"{b / 2**20:.2f}"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    p.add_argument("--n", type=int, default=32, help="n for the memory-scaling table")
    args = p.parse_args(argv)
    ns = [16, 32] if args.quick else [32, 256, 1024]
    repeats = 1 if args.quick else 3
    beta = jnp.asarray(9.0)
    key = jax.random.PRNGKey(0)

    rows = []
    for n in ns:
        x0 = jaxattn.initial.uniform_sphere(key, n, 3)
        fwd, grad, steps = _programs(x0, 10.0)
        fwd(beta).block_until_ready()
        jax.block_until_ready(grad(beta))
        t_f = time_call(lambda: fwd(beta), repeats=repeats, min_time=0.05)[0]
        t_g = time_call(lambda: grad(beta)[1], repeats=repeats, min_time=0.05)[0]
        rows.append([n, int(steps(beta)), t_f * 1e3, t_g * 1e3, t_g / t_f,
                     _mib(_peak_bytes(fwd, beta)), _mib(_peak_bytes(grad, beta))])
    print("\nReverse mode vs forward: SA, d = 3, beta = 9, T = 10, rtol = atol = 1e-6, default checkpoints")
    print_table(["n", "steps", "forward ms", "value+grad ms", "ratio", "forward MiB", "grad MiB"], rows)

    n = args.n if not args.quick else 16
    x0 = jaxattn.initial.uniform_sphere(key, n, 3)
    rows = []
    for T, cp in [(10.0, None), (40.0, None), (160.0, None), (10.0, 2), (10.0, 8), (10.0, 32), (160.0, 8),
                  (160.0, 32)]:
        fwd, grad, steps = _programs(x0, T, cp)
        fwd(beta).block_until_ready()
        jax.block_until_ready(grad(beta))
        t_f = time_call(lambda: fwd(beta), repeats=repeats, min_time=0.05)[0]
        t_g = time_call(lambda: grad(beta)[1], repeats=repeats, min_time=0.05)[0]
        rows.append([T, f"default ({_default_checkpoints()})" if cp is None else cp, int(steps(beta)), t_g / t_f,
                     _mib(_peak_bytes(grad, beta))])
    print(f"\nMemory of the adjoint against steps and checkpoints (n = {n}, state {n * 3 * 8} bytes)")
    print_table(["T", "checkpoints", "steps", "grad/forward time", "grad MiB"], rows)


if __name__ == "__main__":
    main()
