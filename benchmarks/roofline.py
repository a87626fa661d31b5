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

The ``max`` assumes the exponentials overlap the products. On one core they do not: both are
vector-FMA work on the same units (XLA's ``exp`` is a polynomial), so the attainable time is at
least their sum, ``t_sum = 4 n^2 d / P_mm + n^2 / P_exp`` (``combine="sum"``). ``--kernel`` reports
the fraction against both bounds: the ``max`` one (stricter, the one used everywhere else here)
and the ``sum`` one (the bound a single core can reach).
"""

from __future__ import annotations

import functools
import json
import statistics

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


def attention_bound_s(n: int, d: int, evaluations: int = 1, dtype: str = "float64", combine: str = "max") -> float:
    """Roofline time of ``evaluations`` dense SA right-hand sides (see module docstring):
    ``combine="max"`` (products and exponentials overlapped) or ``"sum"`` (one core, in sequence)."""
    p = peaks(dtype)
    parts = (4 * n * n * d / p["matmul_flops_per_s"], n * n / p["exp_per_s"])
    if combine not in ("max", "sum"):
        raise ValueError(f"combine must be 'max' or 'sum', got {combine!r}")
    return evaluations * (max(parts) if combine == "max" else sum(parts))


#: batched (B, n, d) shapes of issue 12: ensembles of small configurations
KERNEL_SHAPES = ((128, 32, 128), (1024, 32, 3), (256, 64, 64), (64, 200, 2))


def _ones_column(q, k, v):
    """The previous dense formulation (a ones column returns the row sums), for comparison."""
    dv = v.shape[1]
    v1 = jnp.concatenate([v, jnp.ones((v.shape[0], 1), v.dtype)], axis=1)
    logits = q @ k.T
    e = jnp.exp(logits - jax.lax.stop_gradient(jnp.max(logits, -1, keepdims=True)))
    out = e @ v1
    return out[:, :dv] / out[:, dv:]


def _einsum_softmax(x, beta):
    """The issue's reference: plain batched einsum + softmax + einsum."""
    w = jax.nn.softmax(beta * jnp.einsum("bid,bjd->bij", x, x), axis=-1)
    return jnp.einsum("bij,bjd->bid", w, x)


def kernel_table(shapes=KERNEL_SHAPES, beta: float = 4.0) -> list[list]:
    """One SA attention evaluation on a batch (B, n, d), as the ensemble solve runs it, against the
    roofline of this run: the library's ``attend`` vmapped over members (what ``ensemble="batched"``
    evaluates; n < 128 takes the separate-row-sum path), member by member with ``jax.lax.map``
    (what ``ensemble="auto"`` runs for n >= 128 on a CPU), the previous ones-column formulation
    vmapped, and plain einsum + softmax + einsum."""
    from jaxattn.fields import attend
    from jaxattn.initial import uniform_sphere

    rows = []
    for B, n, d in shapes:
        x = uniform_sphere(jax.random.PRNGKey(0), n, d, batch=B)
        b = jnp.asarray(beta)
        sides = {
            "attend, vmap": jax.jit(jax.vmap(lambda y, b: attend(b * y, y, y), in_axes=(0, None))),
            "attend, lax.map": jax.jit(lambda x, b: jax.lax.map(lambda y: attend(b * y, y, y), x)),
            "ones column, vmap": jax.jit(jax.vmap(lambda y, b: _ones_column(b * y, y, y), in_axes=(0, None))),
            "einsum+softmax+einsum": jax.jit(_einsum_softmax),
        }
        ref = sides["einsum+softmax+einsum"](x, b)
        bound = attention_bound_s(n, d, evaluations=B)
        bound_sum = attention_bound_s(n, d, evaluations=B, combine="sum")
        times = {}
        for name, fn in sides.items():
            err = float(jnp.max(jnp.abs(fn(x, b) - ref)))
            if err > 1e-12:
                raise AssertionError(f"{name} differs from the reference by {err:.3g}")
        for _ in range(5):  # interleaved repeats, medians
            for name, fn in sides.items():
                times.setdefault(name, []).append(time_call(lambda fn=fn: fn(x, b), repeats=1, min_time=0.1)[0])
        base = statistics.median(times["ones column, vmap"])
        for name, ts in times.items():
            t = statistics.median(ts)
            rows.append([f"({B}, {n}, {d})", name, 1e3 * t, f"{100 * bound / t:.0f}%", f"{100 * bound_sum / t:.0f}%",
                         f"{base / t:.2f}x"])
    return rows


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernel", action="store_true",
                        help="also time the batched attention kernel at the issue-12 shapes against the roofline")
    args = parser.parse_args(argv)
    out = {dt: peaks(dt) for dt in ("float64", "float32")}
    print(json.dumps(out, indent=1))
    if args.kernel:
        from benchmarks._measure import print_table

        print_table(["(B, n, d)", "evaluation", "CPU ms", "roofline (max)", "roofline (sum)", "vs ones column"],
                    kernel_table())


if __name__ == "__main__":
    main()
