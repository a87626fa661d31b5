"""Phase diagram of paper 002 (Fig 2): jaxattn sweep vs the authors' Euler scheme.

Workload (issue 3 "done when"): SA, Q = K = V = I, n = 32, d = 128, delta = 1e-2,
beta on the paper's grid linspace(0.1, 9, 90), t in [0, 30], 128 realisations per beta,
the clustered-pair fraction P(<x_i, x_j> >= 1 - delta) on a time grid.

Compared, on the **same** initial conditions and in the same process (CPU seconds,
``time.process_time``, so other load on the machine does not count):

* ``jaxattn``: :func:`jaxattn.studies.paper_002.phase_diagram`, i.e. the resumable sweep
  engine, one jit-compiled batched Tsit5 solve per beta (max-over-members error control,
  sphere retraction, rtol = atol = 1e-6 by default), results written to netCDF;
* ``euler``: the authors' ``phase-diagrams.py`` scheme, x <- normalise(x + h softmax(beta X X^T) X),
  h = 0.1, as the library implements it (:func:`jaxattn.studies.paper_002.euler_renormalise`,
  jit-compiled and batched over realisations; their code is the same loop in torch);

and both are scored against a tight-tolerance reference (jaxattn, rtol = atol = 1e-10) on
the same draws: the max and mean absolute error of P over the (beta, t) grid. The Euler
scheme's O(h) time stretch (~1 + h e^beta/(e^beta + n - 1), ``docs/errata.md``) shows up as
its error near the phase boundary; ``--euler-h`` adds finer steps to show what equal
accuracy costs it.

Run (alone on the machine): ``python -m benchmarks.phase_diagram`` (full size, minutes),
or ``python -m benchmarks.phase_diagram --quick`` (seconds; small d, few betas).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxattn  # noqa: F401  (float64)
from benchmarks._measure import print_table
from jaxattn.analysis import clustered_pair_fraction
from jaxattn.studies import paper_002 as p2


def draws(seed: int, batch: int, n: int, d: int) -> np.ndarray:
    """The initial conditions phase_diagram uses for this seed (same key split)."""
    kx, _ = jax.random.split(jax.random.PRNGKey(seed))
    return np.asarray(jaxattn.initial.uniform_sphere(kx, n, d, batch=batch))


def euler_fraction(x0: np.ndarray, beta: float, h: float, ts: np.ndarray, delta: float) -> np.ndarray:
    """The authors' scheme (:func:`jaxattn.studies.paper_002.euler_renormalise`, jit-compiled) from
    ``x0``; returns the mean clustered-pair fraction at ``ts`` (multiples of ``h``)."""
    steps = np.rint(ts / h).astype(int)
    if not np.allclose(steps * h, ts, atol=1e-9):
        raise ValueError("time grid must be multiples of h")
    x, k, out = jnp.asarray(x0), 0, np.empty(len(ts))
    for j, target in enumerate(steps):
        if target > k:  # equal segments on a uniform grid: one compilation per h
            x = p2.euler_renormalise(jnp.asarray(beta), x, h, int(target - k))[-1]
            k = target
        out[j] = float(jnp.mean(clustered_pair_fraction(x, delta)))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small run (d = 16, 6 betas, batch 32, t <= 12, Euler h in {0.1, 0.01})")
    parser.add_argument("--betas", type=int, default=90, help="number of betas in linspace(0.1, 9)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--d", type=int, default=128)
    parser.add_argument("--t1", type=float, default=30.0)
    parser.add_argument("--dt-save", type=float, default=0.5)
    parser.add_argument("--delta", type=float, default=1e-2)
    parser.add_argument("--rtol", type=float, default=1e-6)
    parser.add_argument("--euler-h", type=float, nargs="+", default=[0.1])
    parser.add_argument("--no-reference", action="store_true", help="skip the tight-tolerance reference")
    args = parser.parse_args(argv)
    if args.quick:
        args.betas, args.batch, args.d, args.t1 = 6, 32, 16, 12.0
        if args.euler_h == [0.1]:
            args.euler_h = [0.1, 0.01]  # what equal accuracy costs the Euler scheme
    betas = np.linspace(0.1, 9.0, args.betas)
    ts = np.round(np.arange(0.0, args.t1 + 1e-9, args.dt_save), 10)
    x0 = draws(0, args.batch, args.n, args.d)
    print(f"phase diagram: n={args.n} d={args.d} batch={args.batch} betas={len(betas)} "
          f"t in [0, {args.t1}] ({len(ts)} saves), delta={args.delta}, devices={len(jax.devices())}")

    def jax_run(rtol, directory):
        return p2.phase_diagram(betas, ts, directory=directory, n=args.n, d=args.d, batch=args.batch,
                                seeds=[0], delta=args.delta, rtol=rtol, atol=rtol, progress=False)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # compile once outside the timing (a one-beta sweep of the same shapes)
        p2.phase_diagram(betas[:1], ts, directory=f"{tmp}/warm", n=args.n, d=args.d, batch=args.batch,
                         seeds=[0], delta=args.delta, rtol=args.rtol, atol=args.rtol, progress=False)
        cpu, wall = time.process_time(), time.perf_counter()
        ds = jax_run(args.rtol, f"{tmp}/fast")
        jax_cpu, jax_wall = time.process_time() - cpu, time.perf_counter() - wall
        p_jax = ds.probability.squeeze().transpose("beta", "t").values
        steps = ds.num_steps.squeeze().values
        p_ref = None
        if not args.no_reference:
            cpu = time.process_time()
            ref = jax_run(1e-10, f"{tmp}/ref")
            ref_cpu = time.process_time() - cpu
            p_ref = ref.probability.squeeze().transpose("beta", "t").values

    def score(p):
        if p_ref is None:
            return float("nan"), float("nan")
        err = np.abs(p - p_ref)
        return float(err.max()), float(err.mean())

    rows.append(["jaxattn Tsit5 sweep", f"rtol {args.rtol:g}", jax_cpu, jax_wall, *score(p_jax),
                 f"{int(steps.min())}-{int(steps.max())} steps/beta"])
    euler = {}
    for h in args.euler_h:
        euler_fraction(x0, betas[0], h, ts[:2], args.delta)  # compile outside the timing
        cpu, wall = time.process_time(), time.perf_counter()
        p_e = np.stack([euler_fraction(x0, b, h, ts, args.delta) for b in betas])
        euler[h] = (time.process_time() - cpu, time.perf_counter() - wall, p_e)
        rows.append(["Euler+renormalise (authors)", f"h {h:g}", euler[h][0], euler[h][1], *score(p_e),
                     f"{int(round(args.t1 / h))} steps/beta"])
    if p_ref is not None:
        rows.append(["reference (jaxattn)", "rtol 1e-10", ref_cpu, float("nan"), 0.0, 0.0, ""])
    print_table(["method", "setting", "CPU s", "wall s", "max |P - P_ref|", "mean |P - P_ref|", "work"], rows)
    h0 = args.euler_h[0]
    print(f"\nCPU-time ratio euler(h={h0:g}) / jaxattn = {euler[h0][0] / jax_cpu:.2f}")
    if p_ref is not None:
        # where the Euler bias is largest
        b, t = np.unravel_index(np.argmax(np.abs(euler[h0][2] - p_ref)), p_ref.shape)
        print(f"largest Euler error at beta = {betas[b]:.2f}, t = {ts[t]:g}: "
              f"P_euler = {euler[h0][2][b, t]:.3f}, P_jaxattn = {p_jax[b, t]:.3f}, P_ref = {p_ref[b, t]:.3f}")


if __name__ == "__main__":
    main()
