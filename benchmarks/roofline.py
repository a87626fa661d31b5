"""This machine's roofline, measured in the same run as the workloads.

Two peaks on one core, float64 (or the requested dtype), each the median of repeats:

* P_mm: XLA GEMM throughput, 2 N^3 flops for an N x N product (N = 1024);
* P_exp: XLA ``exp`` throughput (exps per second), the best of an in-cache array (2^16
  entries, where a fresh 8 MB output no longer pays page faults) and a 1024 x 1024 array:
  the higher peak makes the bound stricter (an earlier version used only the large array,
  whose page faults made the bound 1.5-2x too lenient on this machine).

A self-attention right-hand side (SA/USA, Q = K = V = I) needs 4 n^2 d matmul flops
(Gram matrix x x^T and the product w x) and n^2 exponentials, so
its roofline time is

    t_bound = max( 4 n^2 d / P_mm , n^2 / P_exp ),

and a workload's *roofline fraction* is t_bound / (measured CPU time). A solve counts one
bound per RHS evaluation. Run alone: ``taskset -c 0 python -m benchmarks.roofline``.
"""

from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp

from benchmarks._measure import time_call


@functools.lru_cache(maxsize=None)
def peaks(dtype: str = "float64", size: int = 1024) -> dict:
    """{'matmul_flops_per_s': P_mm, 'exp_per_s': P_exp} for this process's core."""
    key = jax.random.PRNGKey(0)
    a = jax.random.normal(key, (size, size), dtype=dtype)
    b = jax.random.normal(jax.random.PRNGKey(1), (size, size), dtype=dtype)
    mm = jax.jit(lambda a, b: a @ b)
    ex = jax.jit(jnp.exp)
    mm(a, b).block_until_ready()
    t_mm, _ = time_call(lambda: mm(a, b), repeats=5, min_time=0.1)
    exp_rates = {}
    for arr in (a[:64].reshape(-1), a):  # 2^16 entries (in cache) and size x size
        ex(arr).block_until_ready()
        t_ex, _ = time_call(lambda arr=arr: ex(arr), repeats=5, min_time=0.1)
        exp_rates[arr.size] = arr.size / t_ex
    return {"matmul_flops_per_s": 2 * size**3 / t_mm, "exp_per_s": max(exp_rates.values()),
            "exp_per_s_by_size": exp_rates, "dtype": dtype, "size": size}


def attention_bound_s(n: int, d: int, evaluations: int = 1, dtype: str = "float64") -> float:
    """Roofline time of ``evaluations`` dense SA right-hand sides (see module docstring)."""
    p = peaks(dtype)
    return evaluations * max(4 * n * n * d / p["matmul_flops_per_s"], n * n / p["exp_per_s"])


def main(argv=None):
    out = {dt: peaks(dt) for dt in ("float64", "float32")}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
