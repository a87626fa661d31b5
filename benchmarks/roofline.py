"""This machine's roofline, measured in the same run as the workloads.

Two peaks on one core, float64 (or the requested dtype), each the median of repeats:

* P_mm: XLA GEMM throughput, 2 N^3 flops for an N x N product (N = 1024);
* P_exp: XLA ``exp`` throughput on a 1024 x 1024 array (exps per second).

A self-attention right-hand side (SA/USA, Q = K = V = I) needs 4 n^2 d matmul flops
(Gram matrix x x^T and the product w x) and n^2 exponentials (ecosystem report §1), so
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
    ex(a).block_until_ready()
    t_mm, _ = time_call(lambda: mm(a, b), repeats=5, min_time=0.1)
    t_ex, _ = time_call(lambda: ex(a), repeats=5, min_time=0.1)
    return {"matmul_flops_per_s": 2 * size**3 / t_mm, "exp_per_s": size * size / t_ex,
            "dtype": dtype, "size": size}


def attention_bound_s(n: int, d: int, evaluations: int = 1, dtype: str = "float64") -> float:
    """Roofline time of ``evaluations`` dense SA right-hand sides (see module docstring)."""
    p = peaks(dtype)
    return evaluations * max(4 * n * n * d / p["matmul_flops_per_s"], n * n / p["exp_per_s"])


def main(argv=None):
    out = {dt: peaks(dt) for dt in ("float64", "float32")}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
