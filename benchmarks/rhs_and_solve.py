"""One right-hand side and one full solve: jaxattn vs a plain NumPy RK4 (h = 0.1).

Workload: (SA) on S^{d-1}, Q = K = V = I, beta = 9, tokens uniform on the sphere.

* RHS: one evaluation of the vector field (jaxattn: jit-compiled, row-blocked above
  n = 1024; NumPy: dense exp(beta X X^T), row-normalised, projected).
* Solve: jaxattn ``simulate`` (Tsit5 + PID, rtol = atol = 1e-6, sphere retraction) vs
  NumPy RK4 with h = 0.1 and renormalisation after each step, the scheme of the papers'
  scripts (anchors report), to time T (T = 10 for n <= 1024; T = 1 at n = 4096 to keep
  the baseline affordable; both sides use the same T).

With the ``torch`` extra installed (``pip install -e '.[torch]'``), torchdiffeq dopri5 with
rtol = atol = 1e-6 on the same equation, T and save times (one thread;
:mod:`benchmarks.torch_baseline`) adds three columns: its solve time, jaxattn's speed-up
over it and max |x(T) diff| vs jaxattn.

All sides run in the same process; times are CPU seconds (median of repeats). Pin to one
core for single-core figures: ``taskset -c 0 python -m benchmarks.rhs_and_solve``.
``--quick`` runs n in {32, 256} only.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import jaxattn
from benchmarks import torch_baseline
from benchmarks._measure import print_table, time_call


def numpy_sa_rhs(x: np.ndarray, beta: float) -> np.ndarray:
    logits = beta * (x @ x.T)
    logits -= logits.max(axis=1, keepdims=True)
    w = np.exp(logits)
    w /= w.sum(axis=1, keepdims=True)
    y = w @ x
    return y - np.sum(x * y, axis=1, keepdims=True) * x


def numpy_rk4(x: np.ndarray, beta: float, t1: float, h: float = 0.1) -> np.ndarray:
    for _ in range(int(round(t1 / h))):
        k1 = numpy_sa_rhs(x, beta)
        k2 = numpy_sa_rhs(x + 0.5 * h * k1, beta)
        k3 = numpy_sa_rhs(x + 0.5 * h * k2, beta)
        k4 = numpy_sa_rhs(x + h * k3, beta)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ns", type=int, nargs="+", default=[32, 256, 1024, 4096])
    parser.add_argument("--ds", type=int, nargs="+", default=[3, 64])
    parser.add_argument("--beta", type=float, default=9.0)
    parser.add_argument("--quick", action="store_true", help="n in {32, 256} only")
    args = parser.parse_args(argv)
    ns = [32, 256] if args.quick else args.ns
    beta = args.beta
    field = jaxattn.SelfAttention(beta)
    rhs = jax.jit(lambda x: field(0.0, x))
    have_torch = torch_baseline.available()
    rows = []
    for n in ns:
        for d in args.ds:
            x0 = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(0), n, d)
            xn = np.asarray(x0)
            t1 = 10.0 if n <= 1024 else 1.0
            rhs(x0).block_until_ready()
            t_rhs = time_call(lambda: rhs(x0), min_time=0.05)[0]
            t_rhs_np = time_call(lambda: numpy_sa_rhs(xn, beta), repeats=3, min_time=0.05)[0]
            err = float(np.max(np.abs(np.asarray(rhs(x0)) - numpy_sa_rhs(xn, beta))))
            c0 = time.process_time()
            traj = jaxattn.simulate(field, x0, t1, ts=2)
            traj.xs.block_until_ready()
            compile_and_run = time.process_time() - c0
            t_solve = time_call(lambda: jaxattn.simulate(field, x0, t1, ts=2).xs, repeats=3 if n <= 1024 else 1,
                                min_time=0.0)[0]
            solve_repeats = 3 if n <= 256 else 1
            t_np = time_call(lambda: numpy_rk4(xn, beta, t1), repeats=solve_repeats, min_time=0.0)[0]
            diff = float(np.max(np.abs(np.asarray(traj.final) - numpy_rk4(xn, beta, t1)))) if n <= 256 else float("nan")
            row = [n, d, 1e3 * t_rhs, 1e3 * t_rhs_np, t_rhs_np / t_rhs, err, t1,
                   int(traj.stats["num_steps"]), t_solve, t_np, t_np / t_solve, diff,
                   max(compile_and_run - t_solve, 0.0)]
            if have_torch:
                torch_solve = torch_baseline.make_solver(xn, beta, t1, num_saves=2)
                torch_final = torch_solve()[-1]
                t_torch = time_call(torch_solve, repeats=solve_repeats, min_time=0.0)[0]
                row += [t_torch, t_torch / t_solve, float(np.max(np.abs(np.asarray(traj.final) - torch_final)))]
            rows.append(row)
    print(f"SA on S^(d-1), beta = {beta:g}; CPU time, median of repeats; NumPy RK4 h = 0.1 + renormalisation")
    headers = ["n", "d", "RHS ms", "NumPy RHS ms", "RHS speed-up", "max |RHS diff|", "T", "steps",
               "solve s", "NumPy RK4 s", "solve speed-up", "max |x(T) diff|", "compile s"]
    if have_torch:
        headers += ["torchdiffeq dopri5 s", "speed-up vs torch", "max |x(T) diff| torch"]
    else:
        print(f"(no torchdiffeq columns: {torch_baseline.NOT_INSTALLED})")
    print_table(headers, rows)


if __name__ == "__main__":
    main()
