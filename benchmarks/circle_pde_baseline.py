r"""NumPy re-implementation of the paper-004 authors' Lax–Friedrichs solver of the circle PDE (issue 8).

The authors' ``PDESimulation`` (``gbruno16/transformers-metastability``, ``experiments.ipynb``; PyTorch
float64) solves the USA mean-field continuity equation on S^1,

    d_t u + d_theta( u (W' * u) ) = 0,     W'(theta) = -e^{beta cos theta} sin theta,

with u a density w.r.t. d theta (mass 1, uniform = 1/(2 pi)), i.e. the velocity is
v(theta) = -\int sin(theta - w) e^{beta cos(theta - w)} u(w) dw. This is exactly the equation of
:func:`jaxattn.spectral.circle.solve_circle` (``model="usa"``, ``sign=+1``; there W = beta^{-1} e^{beta cos},
v = d_theta(W * mu), the same time variable as the particle ODE dtheta_i/dt = -(1/N) sum_j e^{beta cos} sin).

Their scheme, reproduced here step for step:
* grid ``X = linspace(0, 2 pi, n_points)[:-1]``: M = n_points - 1 points theta_j = 2 pi j / M (the grid
  of ``CircleModel.density``), dx = 2 pi / M;
* dt = 0.02 dx;
* velocity by a **direct O(M^2) circular convolution** each step: ``conv1d`` of the doubled kernel
  ``dx * W'(X)`` (length 2M) against u, i.e. a rectangle/trapezoid-rule quadrature of W' * u on the grid;
* Lax–Friedrichs: u_j <- (u_{j-1} + u_{j+1})/2 - dt/(2 dx) (f_{j+1} - f_{j-1}), f = u v, periodic.

Here the convolution is either one matrix-vector product with the precomputed circulant
C_ij = dx W'(theta_{(i-j) mod M}) (BLAS gemv; the same O(M^2) arithmetic as ``conv1d``, which on CPU is
im2col + GEMM) or ``np.convolve`` of the doubled kernel, whichever is faster at that M
(:func:`velocity_operator`). An FFT convolution (O(M log M)) would be much
faster at large M, but it is **not** what the authors ran, so it is not used.

Deliberate departures (both available as flags, off by default):
* ``torch.nn.functional.conv1d`` is a cross-correlation, so the authors' velocity is
  sum_j W'(theta_i + theta_j) u_j, which equals the convolution only for data even about theta = 0
  (docs/spectral.md erratum 3: sin modes decay instead of growing). ``correlate=True`` reproduces it
  (``np.correlate``, exactly conv1d's semantics, or a Hankel matrix; same cost). The benchmark data (a cos 3 theta perturbation)
  are even, so both give the same numbers there.
* the authors' step allocates ``uvals = torch.zeros(M)`` without a dtype, i.e. float32, so every step
  is rounded to float32 before being stored in the float64 history. ``store_float32=True`` reproduces
  that; by default everything is float64.
* their loop stops at (int(T/dt) - 1) dt, slightly short of T; here dt = T / ceil(T / (0.02 dx)) <= 0.02 dx
  so the run ends exactly at T. They also store every step (M x steps, 3.2 GB at M = 10^4); here only the
  final state is kept.

``python -m benchmarks.circle_pde_baseline [--quick]`` prints the cost/accuracy comparison against
``solve_circle`` (both in this process, interleaved; CPU time = ``time.process_time``).
"""

from __future__ import annotations

import argparse
import math
import warnings

import numpy as np

TWO_PI = 2 * math.pi


def lf_grid(M: int) -> np.ndarray:
    """The authors' grid: theta_j = 2 pi j / M, j = 0..M-1 (``linspace(0, 2 pi, M + 1)[:-1]``)."""
    return np.arange(M) * (TWO_PI / M)


def lf_steps(M: int, t1: float, dt_factor: float = 0.02) -> int:
    """Number of Lax–Friedrichs steps to reach t1 with dt <= dt_factor * dx."""
    return max(1, math.ceil(t1 / (dt_factor * TWO_PI / M) - 1e-9))


def doubled_kernel(M: int, beta: float) -> np.ndarray:
    """The authors' ``dW``: dx W'(theta_j) for j = 0..M-1, repeated twice (length 2M)."""
    theta = lf_grid(M)
    return np.tile(-np.exp(beta * np.cos(theta)) * np.sin(theta) * (TWO_PI / M), 2)


def interaction_matrix(M: int, beta: float, correlate: bool = False) -> np.ndarray:
    """C with (C u)_i = dx sum_j W'(theta_i - theta_j) u_j (``correlate``: W'(theta_i + theta_j), the authors' conv1d)."""
    dW = doubled_kernel(M, beta)[:M]
    i = np.arange(M)
    idx = (i[:, None] + i[None, :]) % M if correlate else (i[:, None] - i[None, :]) % M
    return np.ascontiguousarray(dW[idx])


def velocity_operator(M: int, beta: float, correlate: bool = False, method: str = "auto"):
    """u -> v = (W' * u) on the grid by a direct O(M^2) sum (no FFT).

    ``"gemv"``: one product with the precomputed circulant (Hankel if ``correlate``) matrix;
    ``"convolve"``: ``np.convolve`` (``np.correlate`` if ``correlate``: exactly torch's ``conv1d``) of the
    doubled kernel, as the authors. Both are direct sums; ``"auto"`` takes the faster on one core
    (measured: gemv 6e-6 s vs convolve 1.4e-5 s at M = 256, 1.35e-4 vs 1.6e-4 at M = 1024, but 1.5e-3 vs
    5.5e-4 at M = 2048, where the 32 MB matrix no longer fits in cache): gemv up to M = 1024.
    """
    if method == "auto":
        method = "gemv" if M <= 1024 else "convolve"
    if method == "gemv":
        C = interaction_matrix(M, beta, correlate)
        return lambda u: C @ u
    if method != "convolve":
        raise ValueError(f"method must be 'auto', 'gemv' or 'convolve', got {method!r}")
    dW = doubled_kernel(M, beta)
    if correlate:  # conv1d(dW, u, padding="valid")[:M]: out_i = sum_j dW[i + j] u_j
        return lambda u: np.correlate(dW, u, "valid")[:M]
    # np.convolve(dW, u, "valid")[i] = sum_j dW[i + M - 1 - j] u_j = (W' * u) at theta_{i-1}
    return lambda u: np.convolve(dW, u, "valid")[1:]


def lax_friedrichs_circle(u0, beta: float, t1: float, dt_factor: float = 0.02, *, correlate: bool = False,
                          store_float32: bool = False, method: str = "auto", velocity=None) -> np.ndarray:
    """u(t1) on the grid :func:`lf_grid` from point values ``u0`` (M,) by the authors' Lax–Friedrichs scheme.

    O(M^2) per step (direct convolution, as the authors; ``method``: see :func:`velocity_operator`),
    ceil(t1 / (dt_factor dx)) steps. ``velocity``: a precomputed :func:`velocity_operator` (otherwise built
    here, once). Mass dx sum u is conserved to round-off (telescoping fluxes) unless ``store_float32``.
    """
    u = np.array(u0, dtype=np.float64)
    if u.ndim != 1 or u.shape[0] < 3:
        raise ValueError(f"u0 must be 1-D point values on M >= 3 grid points, got shape {u.shape}")
    if not (t1 > 0 and dt_factor > 0):
        raise ValueError(f"need t1 > 0 and dt_factor > 0, got {t1}, {dt_factor}")
    M = u.shape[0]
    v = velocity_operator(M, beta, correlate, method) if velocity is None else velocity
    n = lf_steps(M, t1, dt_factor)
    lam = (t1 / n) / (2 * (TWO_PI / M))  # dt / (2 dx)
    for _ in range(n):
        f = u * v(u)
        u = 0.5 * (np.roll(u, 1) + np.roll(u, -1)) - lam * (np.roll(f, -1) - np.roll(f, 1))
        if store_float32:
            u = u.astype(np.float32).astype(np.float64)
    return u


def errors(u: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(L2, Linf) of u - ref on a uniform grid of [0, 2 pi): L2 = sqrt(2 pi / M sum e^2) (norm of L^2(d theta))."""
    e = np.asarray(u) - np.asarray(ref)
    return float(np.sqrt(TWO_PI / e.shape[0] * np.sum(e * e))), float(np.max(np.abs(e)))


# ----------------------------------------------------------------------------------------------
# the comparison (cost and accuracy of both sides at one (beta, eps, T))


def compare_case(beta: float = 5.0, t1: float = 0.25, eps: float = 1e-3, k: int = 3, K: int = 64,
                 Ms=(256, 1024), K_ref: int = 256, repeats: int = 3, workload: str = "circle pde",
                 loose: tuple[float, float] | None = (1e-6, 1e-8)):
    """Time ``solve_circle`` (K modes; default tolerances rtol 1e-10, atol 1e-12, and ``loose`` = (rtol, atol)
    if given) and Lax–Friedrichs (each M) from
    rho_0 = 1/(2 pi) + eps cos(k theta), interleaved in this process, and give each side's L2/Linf error
    at t1 against ``solve_circle`` at K_ref modes, rtol 1e-13 (its resolution monitor must pass).

    Returns the records of :func:`benchmarks._measure.compare`, baseline = LF at the largest M; each
    record's ``extra`` has ``l2_error``, ``linf_error`` (and ``steps`` for LF).
    """
    import jax.numpy as jnp

    from benchmarks._measure import compare
    from jaxattn.spectral.circle import density_on_grid, mode_coefficients, solve_circle

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # an unresolved reference is no reference
        ref = solve_circle(mode_coefficients(K_ref, cos={k: eps}), beta, t1, n_save=2, rtol=1e-13, atol=1e-15)
    c_ref = ref.coeffs[-1]
    c0 = mode_coefficients(K, cos={k: eps})
    theta_fine = lf_grid(max(4 * K_ref, 1024))
    jax_name = f"jaxattn solve_circle K={K}"
    sides, grid = {}, {}  # grid: LF side -> M
    for tol in [None] + ([loose] if loose else []):
        name = jax_name if tol is None else f"{jax_name} rtol={tol[0]:g}"
        kw = {} if tol is None else dict(rtol=tol[0], atol=tol[1])
        sides[name] = (lambda kw=kw: solve_circle(c0, beta, t1, n_save=2, **kw).coeffs)
    for M in Ms:
        u0 = 1 / TWO_PI + eps * np.cos(k * lf_grid(M))
        v = velocity_operator(M, beta)
        name = f"numpy Lax-Friedrichs M={M}"
        sides[name] = (lambda u0=u0, v=v: lax_friedrichs_circle(u0, beta, t1, velocity=v))
        grid[name] = M
    baseline = f"numpy Lax-Friedrichs M={max(Ms)}"
    case = f"USA beta={beta:g} rho0=1/2pi+{eps:g}cos{k} T={t1:g}"
    # timed first (so its first call is the compile), errors after
    recs = compare(workload, case, sides, baseline, repeats=repeats, min_time=0.0)
    err = {}
    for name, fn in sides.items():
        if name in grid:
            theta = lf_grid(grid[name])
            err[name] = errors(fn(), np.asarray(density_on_grid(c_ref, jnp.asarray(theta))))
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)  # must be resolved to t1
                c_jax = fn()[-1]
            err[name] = errors(density_on_grid(c_jax, theta_fine), density_on_grid(c_ref, theta_fine))
    rho_max = float(jnp.max(density_on_grid(c_ref, theta_fine)))
    cpu = {r.impl: r.cpu_s for r in recs}
    for r in recs:
        l2, linf = err[r.impl]
        r.extra.update(l2_error=l2, linf_error=linf, ref_K=K_ref, ref_rho_max=rho_max)
        r.note = f"err vs K={K_ref} ref: L2 {l2:.1e}, Linf {linf:.1e} (max rho {rho_max:.2f})"
        if r.impl in grid:
            r.extra.update(steps=lf_steps(grid[r.impl], t1), M=grid[r.impl])
            r.roofline_fraction = None
            r.note += f"; {r.extra['steps']} steps, {cpu[r.impl] / cpu[jax_name]:.3g}x jaxattn's CPU time"
        else:
            r.note += "; resolved to T (monitor passed)"
    return recs


# beta = 5 stops at T = 0.25: from 1e-3 cos 3theta the solution collapses into three clusters soon after
# (the K = 256 reference loses resolution at t = 0.31, K = 64 at 0.25), so no grid method has a T = 1
# answer to compare; beta = 1 (gamma_3 = 0.2, linear) runs to T = 1.
CASES_QUICK = [dict(beta=5.0, t1=0.25, K=64, Ms=(128, 256))]
CASES_FULL = [dict(beta=5.0, t1=0.25, K=64, Ms=(256, 1024, 2048)),
              dict(beta=1.0, t1=1.0, K=32, Ms=(256, 1024))]


def run(quick: bool, workload: str = "circle pde"):
    """The runner's ``circle_pde`` records: :func:`compare_case` over the quick or full cases."""
    records = []
    for case in (CASES_QUICK if quick else CASES_FULL):
        big = max(case["Ms"]) >= 2048
        records += compare_case(**case, repeats=1 if big else 3, workload=workload)
    return records


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small M only (a few seconds)")
    args = p.parse_args(argv)
    print("| case | impl | CPU s | wall s | CPU / jaxattn's | L2 error | Linf error | LF steps |")
    print("|---|---|---|---|---|---|---|---|")
    records = run(args.quick)
    for r in records:
        jax_cpu = next(q.cpu_s for q in records if q.case == r.case and q.impl.startswith("jaxattn"))
        print(f"| {r.case} | {r.impl} | {r.cpu_s:.3g} | {r.wall_s:.3g} | {r.cpu_s / jax_cpu:.3g} | "
              f"{r.extra['l2_error']:.2e} | {r.extra['linf_error']:.2e} | {r.extra.get('steps', '')} |")
    return records


if __name__ == "__main__":
    main()
