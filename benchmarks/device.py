"""Device suite: every part of jaxattn on whatever backend JAX sees, in one prepared command.

    PYTHONPATH=. python3 -m benchmarks.device --out /tmp/device          # full (<= 8 min on an H200)
    python -m benchmarks.device --quick --out /tmp/device-quick          # tiny sizes (CI, CPU)
    python -m benchmarks.device --only accuracy dense_rhs --out ...      # some sections

Writes ``device.json`` (every row, the backend, versions, which optional packages are present)
and ``device.md`` (one markdown table per section; also printed) to ``--out``. Sections:

* ``accuracy`` (a): every model, fast path, solve mode, gradient and spectral solver on the
  device against a small float64 reference computed **on the CPU in the same run**
  (``jax.devices("cpu")``) -- the same code pinned to the CPU, a NumPy oracle of the equation,
  the dense kernel (for the Fourier / harmonics fast paths), a central finite difference (for
  ``jax.grad`` through ``simulate``) or an exact value; max abs difference / scale against a
  tolerance per row;
* ``phase_diagram`` (b): Geshkovski et al. 2023 (perspective) Fig. 2 at the paper's full size:
  90 betas in [0.1, 9] x 2^10 realisations, n = 32, d = 128, Q = K = V = I, t in [0, 30]
  (:func:`jaxattn.studies.paper_002.phase_diagram`; compiled by a one-beta warm-up first);
* ``dense_rhs`` (c): one dense SA right-hand side, n = 4096 ... 65536, d in {3, 64}, float64 and
  float32, against the roofline max(4 n^2 d / P_mm, n^2 / P_exp) (as :mod:`benchmarks.roofline`)
  with the device's matmul and ``exp`` throughput measured in this run; at n = 4096 and the
  largest n also every row-block size, to check the kernel dispatch
  (:func:`jaxattn.fields.default_block_size`, which reads the backend);
* ``ensembles`` (d): batch 1 ... 16384 of SA on S^2 (n = 32, beta = 9, T = 10) as "batched",
  "vmap" and "map", per-member wall time, and what ``ensemble="auto"`` picks on this backend;
* ``fast_paths`` (e): one circle Bessel-Fourier RHS at n = 10^7 and one S^2 harmonics RHS at
  n = 10^6;
* ``gradients`` (f): value+grad / forward wall-time ratio through ``simulate`` (as
  :mod:`benchmarks.gradients`).

Times are **wall** seconds (``time.perf_counter`` around ``jax.block_until_ready``; on an
accelerator process CPU time does not measure the device), medians of repeats after a first
(compiling) call, whose wall time is reported as ``first_s``. Every section has a time budget;
a case that would not fit is skipped and its row says so, and so is a row that needs a package
this machine lacks (s2fft: the S^2 PDE; without netCDF4 sweeps write with the next engine; POT is
only an optional cross-check of the tests). A section that raises is recorded as failed and the suite goes on.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import jaxattn  # noqa: F401  (float64 by default)
from jaxattn.fields import default_block_size
from jaxattn.solve import resolve_ensemble

SECTIONS = ["accuracy", "phase_diagram", "dense_rhs", "ensembles", "fast_paths", "gradients"]

#: seconds each section may take (the full suite's total stays under 8 minutes with start-up)
BUDGET_S = {"accuracy": 90, "phase_diagram": 100, "dense_rhs": 90, "ensembles": 90, "fast_paths": 40,
            "gradients": 40}
#: quick mode runs every row (its budgets only stop a runaway)
QUICK_BUDGET_S = {name: 600 for name in SECTIONS}

OPTIONAL = ("s2fft", "ot", "netCDF4", "h5netcdf")


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# --------------------------------------------------------------------------- timing


def _ready(out):
    return jax.block_until_ready(out)


def first_wall(fn: Callable[[], object]) -> float:
    """Wall seconds of one (compiling) call."""
    t0 = time.perf_counter()
    _ready(fn())
    return time.perf_counter() - t0


def wall(fn: Callable[[], object], repeats: int = 3, min_wall: float = 0.02, max_loops: int = 200) -> float:
    """Median over ``repeats`` of the wall seconds per call; each sample loops until ``min_wall``."""
    samples = []
    for _ in range(repeats):
        loops, t0 = 0, time.perf_counter()
        while True:
            _ready(fn())
            loops += 1
            if time.perf_counter() - t0 >= min_wall or loops >= max_loops:
                break
        samples.append((time.perf_counter() - t0) / loops)
    return statistics.median(samples)


class Budget:
    """A section's deadline: ``fits(estimate)`` says whether a case of that many seconds still fits."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.deadline = time.perf_counter() + seconds

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def fits(self, estimate_s: float = 0.0) -> bool:
        return self.left() > max(estimate_s, 0.0)

    def skip_note(self, estimate_s: float = 0.0) -> str:
        est = f" (estimated {estimate_s:.3g} s)" if estimate_s > 0 else ""
        return f"skipped: section time budget of {self.seconds:g} s spent{est}"


def _skip_row(row: dict, note: str) -> dict:
    return {**row, "status": "skipped", "note": note}


#: one compiled ``field(0, x)`` for every right-hand side in the suite: the field is an argument
#: (a pytree), so equal field structures and shapes share one compilation across sections
apply_field = eqx.filter_jit(lambda field, x: field(0.0, x))


# --------------------------------------------------------------------------- (a) accuracy


def _cpu():
    return jax.devices("cpu")[0]


def _to_numpy(tree):
    """Every leaf as a float64 (or complex128) NumPy array on the host."""
    def host(a):
        a = np.asarray(a)
        return a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)

    return jax.tree_util.tree_map(host, tree)


def _platform_of(tree) -> str:
    for leaf in jax.tree_util.tree_leaves(tree):
        if isinstance(leaf, jax.Array):
            return ",".join(sorted({d.platform for d in leaf.devices()}))
    return "host"


def on_cpu(compute: Callable[[], object]):
    """``compute()`` with every array it creates placed on (and every jit compiled for) the CPU.

    When the default device already is that CPU the call runs as is: a ``jax.default_device``
    context is part of the compilation cache key, and entering it would compile everything twice.
    """
    if jax.devices()[0] == _cpu():
        return _to_numpy(compute())
    with jax.default_device(_cpu()):
        return _to_numpy(compute())


def compare_row(check: str, reference: str, value, ref, tol: float, platform_: str, note: str = "") -> dict:
    """One accuracy row: max |value - ref| over all leaves, relative to max(1, max |ref|)."""
    diffs, scales = [], []
    for a, b in zip(jax.tree_util.tree_leaves(value), jax.tree_util.tree_leaves(ref), strict=True):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            raise ValueError(f"{check}: shapes differ, {a.shape} vs {b.shape}")
        diffs.append(float(np.max(np.abs(a - b))) if a.size else 0.0)
        scales.append(float(np.max(np.abs(b))) if b.size else 0.0)
    diff, scale = max(diffs), max(1.0, *scales)
    ok = bool(np.isfinite(diff) and diff / scale <= tol)
    return {"check": check, "reference": reference, "device": platform_, "max_abs_diff": diff,
            "scale": scale, "tol": tol, "status": "ok" if ok else "FAIL", "note": note}


def _sphere_points(rng: np.random.Generator, n: int, d: int, batch: int | None = None) -> np.ndarray:
    x = rng.standard_normal((n, d) if batch is None else (batch, n, d))
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _numpy_attention(x, beta, Q=None, K=None, V=None, causal=False, normalisation="softmax", shift=0.0):
    """NumPy oracle of paper 002 eqs. (2.3)-(2.6) before the projection: sum_j w_ij V x_j."""
    q = x if Q is None else x @ Q.T
    k = x if K is None else x @ K.T
    v = x if V is None else x @ V.T
    logits = beta * q @ k.T
    n = x.shape[0]
    mask = np.tril(np.ones((n, n), bool)) if causal else np.ones((n, n), bool)
    w = np.where(mask, np.exp(logits), 0.0)
    if normalisation == "softmax":
        w = w / w.sum(axis=1, keepdims=True)
    else:
        w = w * np.exp(-shift) / mask.sum(axis=1, keepdims=True)
    return w @ v


def _project(x, y):
    return y - np.sum(x * y, axis=-1, keepdims=True) * x / np.sum(x * x, axis=-1, keepdims=True)


def accuracy_checks(quick: bool) -> list[tuple[str, str, Callable[[], object], Callable[[], object], float, str]]:
    """(check, reference kind, device compute, reference compute, tolerance, needs) for every part."""
    import jaxattn as ja
    from jaxattn import spectral as sp
    from jaxattn.layers import HardmaxTransformer

    rng = np.random.default_rng(0)
    x48 = _sphere_points(rng, 48, 8)
    x700 = _sphere_points(rng, 700, 3)
    x300 = _sphere_points(rng, 300, 3)
    x16 = _sphere_points(rng, 16, 3)
    xb = _sphere_points(rng, 16, 3, batch=4)
    xe = rng.standard_normal((24, 4))
    Qr, Kr = rng.standard_normal((2, 3, 8)) / 3.0, rng.standard_normal((2, 3, 8)) / 3.0
    Vh = rng.standard_normal((2, 8, 8)) / 3.0
    Q4, K4, V4 = (rng.standard_normal((4, 4)) / 2.0 for _ in range(3))
    theta = rng.uniform(-np.pi, np.pi, 400)
    centres = rng.uniform(-np.pi, np.pi, 3)
    omega = rng.standard_normal(400) * 0.1
    Z = rng.standard_normal((12, 2))
    j = jnp.asarray

    def rhs(field_fn, x):  # the field and x are built where the call runs (device or CPU)
        return lambda: apply_field(field_fn(), j(x))

    def numpy_ref(f):
        return lambda: f()

    checks = [
        ("SA rhs n=48 d=8 beta=4", "numpy oracle", rhs(lambda: ja.SelfAttention(4.0), x48),
         numpy_ref(lambda: _project(x48, _numpy_attention(x48, 4.0))), 1e-12, ""),
        ("SA rhs n=700 d=3 beta=9 (default dispatch)", "numpy oracle", rhs(lambda: ja.SelfAttention(9.0), x700),
         numpy_ref(lambda: _project(x700, _numpy_attention(x700, 9.0))), 1e-12, ""),
        ("SA rhs n=700 d=3 beta=9 block_size=256", "numpy oracle",
         rhs(lambda: ja.SelfAttention(9.0, block_size=256), x700),
         numpy_ref(lambda: _project(x700, _numpy_attention(x700, 9.0))), 1e-12, ""),
        ("SA rhs 2 heads Q,K rectangular, V", "numpy oracle",
         rhs(lambda: ja.SelfAttention(2.0, j(Qr), j(Kr), j(Vh)), x48),
         numpy_ref(lambda: _project(x48, sum(_numpy_attention(x48, 2.0, Qr[h], Kr[h], Vh[h]) for h in range(2)))),
         1e-12, ""),
        ("SA rhs causal n=48 d=8", "numpy oracle", rhs(lambda: ja.SelfAttention(4.0, causal=True), x48),
         numpy_ref(lambda: _project(x48, _numpy_attention(x48, 4.0, causal=True))), 1e-12, ""),
        ("SA rhs feedforward", "cpu", rhs(lambda: ja.SelfAttention(
            4.0, feedforward=ja.fields.FeedForward(j(np.eye(8) * 0.5), j(np.full(8, 0.1)))), x48), None, 1e-12, ""),
        ("USA rhs n=48 d=8 beta=4", "numpy oracle", rhs(lambda: ja.UnnormalisedSelfAttention(4.0), x48),
         numpy_ref(lambda: _project(x48, _numpy_attention(x48, 4.0, normalisation="mean"))), 1e-12, ""),
        ("USA rhs time_rescaled beta=6 causal", "numpy oracle",
         rhs(lambda: ja.UnnormalisedSelfAttention(6.0, causal=True, time_rescaled=True), x48),
         numpy_ref(lambda: _project(x48, _numpy_attention(x48, 6.0, causal=True, normalisation="mean", shift=6.0))),
         1e-12, ""),
        ("Euclidean rhs n=24 d=4", "numpy oracle", rhs(lambda: ja.EuclideanSelfAttention(j(Q4), j(K4), j(V4)), xe),
         numpy_ref(lambda: _numpy_attention(xe, 1.0, Q4, K4, V4)), 1e-12, ""),
        ("Rescaled rhs t=0 n=24 d=4", "cpu", rhs(lambda: ja.RescaledSelfAttention(j(Q4), j(K4), j(V4)), xe),
         None, 1e-12, ""),
        ("circle dense rhs n=400 beta=9", "cpu", rhs(lambda: ja.CircleSelfAttention(9.0), theta), None, 1e-12, ""),
        ("circle dense rhs unnormalised causal", "cpu",
         rhs(lambda: ja.CircleSelfAttention(3.0, unnormalised=True, causal=True), theta), None, 1e-12, ""),
        ("circle fourier rhs n=400 beta=9", "dense on cpu",
         rhs(lambda: ja.CircleSelfAttention(9.0, evaluator="fourier"), theta),
         rhs(lambda: ja.CircleSelfAttention(9.0), theta), 1e-10, ""),
        ("circle fourier rhs causal beta=64", "dense on cpu",
         rhs(lambda: ja.CircleSelfAttention(64.0, causal=True, evaluator="fourier"), theta),
         rhs(lambda: ja.CircleSelfAttention(64.0, causal=True), theta), 1e-10, ""),
        ("frozen-centres circle rhs", "cpu",
         rhs(lambda: ja.FrozenCentresCircleAttention(8.0, j(centres), 2.0), theta), None, 1e-12, ""),
        ("Kuramoto rhs", "cpu", rhs(lambda: ja.Kuramoto(1.5, j(omega)), theta), None, 1e-12, ""),
        ("S^2 harmonics rhs n=300 beta=4", "dense on cpu",
         rhs(lambda: ja.SelfAttention(4.0, evaluator="harmonics"), x300),
         rhs(lambda: ja.SelfAttention(4.0), x300), 1e-10, ""),
        ("hardmax transformer 6 layers", "cpu",
         lambda: HardmaxTransformer(0.5, num_layers=6)(j(Z)), None, 1e-12, ""),
        ("simulate SA n=16 beta=4 T=5", "cpu",
         lambda: ja.simulate(ja.SelfAttention(4.0), j(x16), 5.0, ts=3).xs, None, 1e-8, ""),
    ]
    for mode in ("batched", "vmap", "map"):
        checks.append((f"simulate ensemble={mode} batch=4", "cpu",
                       lambda mode=mode: ja.simulate(ja.SelfAttention(4.0), j(xb), 5.0, ts=3, ensemble=mode).xs,
                       None, 1e-8, ""))

    coeffs = sp.mode_coefficients(32, cos={3: 0.01})
    checks.append(("spectral solve_circle K=32 beta=3 T=0.1", "cpu",
                   lambda: sp.solve_circle(j(coeffs), 3.0, 0.1, n_save=3).coeffs, None, 1e-8, ""))
    checks.append(("spectral solve_sphere L=8 beta=2 T=0.05", "cpu",
                   lambda: sp.solve_sphere(sp.sphere_zonal_mode(8, {2: 0.05}), 2.0, 0.05, n_save=2).coeffs,
                   None, 1e-8, "s2fft"))
    phi, m = 0.05, 16
    eq = np.stack([np.cos(2 * np.pi * np.arange(m) / m), np.sin(2 * np.pi * np.arange(m) / m), np.zeros(m)], 1)
    rot = np.array([[np.cos(phi), -np.sin(phi), 0], [np.sin(phi), np.cos(phi), 0], [0, 0, 1]])
    checks.append(("W1 on S^2 (bridge.wasserstein_sphere)", "exact: rotation angle",
                   lambda: np.asarray(sp.wasserstein_sphere(eq, eq @ rot.T)), lambda: np.asarray(phi), 1e-9, ""))
    return checks


def section_accuracy(quick: bool, budget: Budget) -> dict:
    rows = []
    for check, reference, device_fn, ref_fn, tol, needs in accuracy_checks(quick):
        row = {"check": check, "reference": reference, "tol": tol}
        if needs and not have(needs):
            rows.append(_skip_row(row, f"skipped: needs {needs}, not installed here"))
            continue
        if quick and needs == "s2fft":  # its Wigner precomputes alone cost ~10 CPU-s
            rows.append(_skip_row(row, "skipped in --quick (s2fft precomputes take ~10 CPU-s; "
                                       "tests/test_spectral_sphere.py covers it on the CPU)"))
            continue
        if not budget.fits():
            rows.append(_skip_row(row, budget.skip_note()))
            continue
        t0 = time.perf_counter()
        value = device_fn()
        platform_ = _platform_of(value)
        ref = on_cpu(ref_fn if ref_fn is not None else device_fn)
        rows.append({**compare_row(check, reference, _to_numpy(value), ref, tol, platform_),
                     "wall_s": time.perf_counter() - t0})
    return {"rows": rows, "notes": [
        "max_abs_diff over all entries; status ok when max_abs_diff / scale <= tol, scale = max(1, max |reference|); "
        "wall_s = both computations, compilation included; the gradient is checked in the gradients section"],
        "columns": ["check", "reference", "device", "max_abs_diff", "scale", "tol", "status", "wall_s", "note"]}


# --------------------------------------------------------------------------- (b) phase diagram


def section_phase_diagram(quick: bool, budget: Budget) -> dict:
    from jaxattn.io import netcdf_engine
    from jaxattn.studies import paper_002 as p2

    if quick:  # the shapes of the accuracy section's batched solve (its compilation is reused)
        nb, batch, n, d, t1 = 3, 4, 16, 3, 1.0
    else:
        nb, batch, n, d, t1 = 90, 1024, 32, 128, 30.0
    betas = np.linspace(0.1, 9.0, nb)
    ts = np.round(np.arange(0.0, t1 + 1e-9, 0.5), 10)
    kwargs = dict(n=n, d=d, batch=batch, seeds=[0], delta=1e-2, progress=False)
    note = f"netCDF engine {netcdf_engine()}; first_s = one-beta warm-up (compile)"
    with tempfile.TemporaryDirectory() as tmp:
        first = first_wall(lambda: p2.phase_diagram(betas[:1], ts, directory=f"{tmp}/warm", **kwargs).probability.values)
        per_beta = first_wall(lambda: p2.phase_diagram(betas[-1:], ts, directory=f"{tmp}/one", **kwargs).probability.values)
        fit = max(1, min(nb, int(budget.left() / (1.5 * per_beta))))
        if fit < nb:  # keep the suite inside its time: fewer betas, said in the row
            betas = betas[np.linspace(0, nb - 1, fit).round().astype(int)]
            note += f"; only {fit} of {nb} betas fit the {budget.seconds:g} s budget ({per_beta:.2g} s per beta)"
        t0 = time.perf_counter()
        ds = p2.phase_diagram(betas, ts, directory=f"{tmp}/full", **kwargs)
        p = ds.probability.squeeze().transpose("beta", "t").values
        elapsed = time.perf_counter() - t0
    steps = ds.num_steps.values
    row = {"case": f"{len(betas)} betas x {batch} realisations, n={n} d={d} T={t1:g} ({len(ts)} saves)",
           "wall_s": elapsed, "first_s": first, "steps": f"{int(steps.min())}-{int(steps.max())}",
           "P(T) at beta min / max": f"{p[0, -1]:.3f} / {p[-1, -1]:.3f}",
           "status": "ok" if np.all((p >= 0) & (p <= 1)) else "FAIL", "note": note}
    if not quick:
        row["goal"] = "< 10 s wall on one H200"
    return {"rows": [row], "columns": ["case", "wall_s", "first_s", "steps", "P(T) at beta min / max", "status", "note"]}


# --------------------------------------------------------------------------- (c) dense RHS


def peaks(dtype: str, quick: bool) -> dict:
    """This device's GEMM flop/s (2 N^3 per N x N product) and ``exp``/s, medians of repeats."""
    size = 256 if quick else 8192
    entries = 2**16 if quick else 2**26
    rng = np.random.default_rng(1)
    a = jnp.asarray(rng.standard_normal((size, size)), dtype=dtype)
    b = jnp.asarray(rng.standard_normal((size, size)), dtype=dtype)
    e = jnp.asarray(rng.uniform(-1, 1, entries), dtype=dtype)
    mm, ex = jax.jit(lambda a, b: a @ b), jax.jit(jnp.exp)
    _ready(mm(a, b))
    _ready(ex(e))
    t_mm = wall(lambda: mm(a, b), repeats=5, min_wall=0.05)
    t_ex = wall(lambda: ex(e), repeats=5, min_wall=0.05)
    return {"matmul_flops_per_s": 2 * size**3 / t_mm, "exp_per_s": entries / t_ex, "matmul_size": size,
            "exp_entries": entries}


def dense_bound_s(n: int, d: int, peak: dict) -> float:
    """Roofline time of one dense SA RHS (Q = K = V = I): max(4 n^2 d / P_mm, n^2 / P_exp)."""
    return max(4 * n * n * d / peak["matmul_flops_per_s"], n * n / peak["exp_per_s"])


def section_dense_rhs(quick: bool, budget: Budget) -> dict:
    import jaxattn as ja

    ns = [256, 512] if quick else [4096, 8192, 16384, 32768, 65536]
    dtypes = ["float64", "float32"]
    backend = jax.default_backend()
    rng = np.random.default_rng(2)
    rows, notes = [], []
    peak = {dt: peaks(dt, quick) for dt in dtypes}
    for dt, p in peak.items():
        notes.append(f"{dt} peaks measured in this run: GEMM {p['matmul_flops_per_s'] / 1e9:.4g} GFLOP/s "
                     f"(N = {p['matmul_size']}), exp {p['exp_per_s'] / 1e9:.4g} Gexp/s ({p['exp_entries']} entries)")
    last = None  # (n, wall) of the previous case: O(n^2) estimates of the next
    for dt in dtypes:
        for d in ((3,) if quick else (3, 64)):
            for n in ns:
                x = jnp.asarray(_sphere_points(rng, n, d), dtype=dt)
                blocks = [None]
                if n in (ns[0], ns[-1]):
                    blocks += [b for b in (0, 256, 1024, 4096) if b < n and (b or n * n <= 2**28)]
                for block in blocks:
                    chosen = default_block_size(n, backend) if block is None else block
                    row = {"case": f"SA n={n} d={d} {dt}", "block_size": (f"default ({chosen})" if block is None
                                                                          else str(block)),
                           "bound_s": dense_bound_s(n, d, peak[dt])}
                    estimate = 1.0 + 4 * last[1] * (n / last[0]) ** 2 if last else 0.0  # compile + 4 calls
                    if not budget.fits(estimate):
                        rows.append(_skip_row(row, budget.skip_note(estimate)))
                        continue
                    field = ja.SelfAttention(9.0, block_size=block)
                    first = first_wall(lambda: apply_field(field, x))
                    t = wall(lambda: apply_field(field, x), repeats=3, min_wall=0.02 if quick else 0.1)
                    last = (n, t)
                    rows.append({**row, "wall_s": t, "first_s": first, "roofline": row["bound_s"] / t,
                                 "status": "ok", "note": ""})
    return {"rows": rows, "notes": notes, "peaks": peak,
            "columns": ["case", "block_size", "wall_s", "bound_s", "roofline", "first_s", "status", "note"]}


# --------------------------------------------------------------------------- (d) ensembles


def section_ensembles(quick: bool, budget: Budget) -> dict:
    import jaxattn as ja

    # quick: the shapes of the accuracy section's ensemble rows (n = 16, batch 4, 3 saves), whose
    # compiled solves are reused; full: n = 32 up to batch 16384, and n = 256 (where a CPU maps)
    cases = [(16, 4)] if quick else [(32, b) for b in (1, 16, 256, 1024, 4096, 16384)] + [
        (256, b) for b in (1, 64, 1024)]
    backend = jax.default_backend()
    field = ja.SelfAttention(9.0)
    rng = np.random.default_rng(3)
    per_member: dict[tuple[int, str], float] = {}
    rows = []
    for n, batch in cases:
        x0 = jnp.asarray(_sphere_points(rng, n, 3, batch=batch))
        measured = {}
        for mode in ("batched", "vmap", "map"):
            row = {"case": f"n={n} d=3 batch={batch}", "mode": mode}
            estimate = 3 * per_member.get((n, mode), 0.0) * batch
            if not budget.fits(estimate):
                rows.append(_skip_row(row, budget.skip_note(estimate)))
                continue
            run = lambda mode=mode: ja.simulate(field, x0, 10.0, ts=3, ensemble=mode)  # noqa: E731
            first = first_wall(lambda: run().xs)
            traj = run()
            t = wall(lambda: run().xs, repeats=1 if batch >= 1024 else 3, min_wall=0.0)
            per_member[(n, mode)] = t / batch
            measured[mode] = t
            steps = np.asarray(traj.stats["num_steps"])
            rows.append({**row, "wall_s": t, "ms_per_member": 1e3 * t / batch, "first_s": first,
                         "steps": f"{int(steps.max())}" if mode != "map" else f"{steps.mean():.1f} mean",
                         "status": "ok", "note": ""})
        auto = resolve_ensemble("auto", n, backend).name
        fastest = min(measured, key=measured.get) if measured else "-"
        for r in rows[-3:]:
            if r["case"] == f"n={n} d=3 batch={batch}" and r["mode"] == auto:
                r["note"] = f"auto picks {auto} on {backend}; fastest measured: {fastest}"
    return {"rows": rows, "columns": ["case", "mode", "wall_s", "ms_per_member", "steps", "first_s", "status", "note"]}


# --------------------------------------------------------------------------- (e) fast paths


def section_fast_paths(quick: bool, budget: Budget) -> dict:
    import jaxattn as ja
    from jaxattn.fields import fourier_modes, truncation_degree

    # quick: the accuracy section's fields and sizes, whose compiled RHS are reused
    n_circle = 400 if quick else 10_000_000
    n_sphere, beta_sphere = (300, 4.0) if quick else (1_000_000, 9.0)
    rng = np.random.default_rng(4)
    theta = jnp.asarray(rng.uniform(-np.pi, np.pi, n_circle))
    xs = jnp.asarray(_sphere_points(rng, n_sphere, 3))
    circle = [(9.0, False), (64.0, True)] if quick else [(b, c) for b in (9.0, 64.0) for c in (False, True)]
    cases = [(f"circle fourier n={n_circle:.0e} beta={b:g}{' causal' if c else ''}",
              ja.CircleSelfAttention(b, causal=c, evaluator="fourier"), theta, f"M = {fourier_modes(b)} modes",
              "< 0.1 s on one H200" if not (quick or c) and b == 9.0 else "")
             for b, c in circle]
    cases.append((f"S^2 harmonics n={n_sphere:.0e} beta={beta_sphere:g}",
                  ja.SelfAttention(beta_sphere, evaluator="harmonics"), xs,
                  f"L = {truncation_degree(beta_sphere, n_sphere)}", ""))
    rows = []
    for case, field, x, note, goal in cases:
        row = {"case": case, "note": note, "goal": goal}
        if not budget.fits():
            rows.append(_skip_row(row, budget.skip_note()))
            continue
        first = first_wall(lambda: apply_field(field, x))
        out = apply_field(field, x)
        finite = bool(jnp.all(jnp.isfinite(out)))
        t = wall(lambda: apply_field(field, x), repeats=3, min_wall=0.05)
        rows.append({**row, "wall_s": t, "first_s": first, "status": "ok" if finite else "FAIL (non-finite)"})
    return {"rows": rows, "columns": ["case", "wall_s", "first_s", "goal", "status", "note"]}


# --------------------------------------------------------------------------- (f) gradients


def section_gradients(quick: bool, budget: Budget) -> dict:
    from benchmarks.gradients import _programs

    import jaxattn as ja

    rows = []
    beta = jnp.asarray(9.0)
    for n in ([8] if quick else [32, 256, 1024]):
        row = {"case": f"SA n={n} d=3 beta=9 T=10, dL/dbeta"}
        if not budget.fits():
            rows.append(_skip_row(row, budget.skip_note()))
            continue
        x0 = ja.initial.uniform_sphere(jax.random.PRNGKey(0), n, 3)
        fwd, grad, _ = _programs(x0, 10.0)
        first_f = first_wall(lambda: fwd(beta))
        first_g = first_wall(lambda: grad(beta))
        t_f = wall(lambda: fwd(beta), repeats=3, min_wall=0.02)
        t_g = wall(lambda: grad(beta), repeats=3, min_wall=0.02)
        value_grad = grad(beta)
        check = compare_row(row["case"], "cpu", _to_numpy(value_grad), on_cpu(lambda: grad(jnp.asarray(9.0))),
                            1e-8, _platform_of(value_grad))
        rows.append({**row, "forward_s": t_f, "value_and_grad_s": t_g, "ratio": t_g / t_f,
                     "first_s": first_f + first_g, "dL/dbeta": float(value_grad[1]),
                     "max_abs_diff vs cpu": check["max_abs_diff"], "status": check["status"], "note": ""})
    return {"rows": rows, "notes": [
        "L = mean_{i != j} <x_i(T), x_j(T)>, Tsit5 + PID 1e-6, recursive checkpointing (benchmarks.gradients); "
        "(value, dL/dbeta) checked against the same program on the CPU (status ok at relative 1e-8)"],
        "columns": ["case", "forward_s", "value_and_grad_s", "ratio", "first_s", "dL/dbeta", "max_abs_diff vs cpu",
                    "status", "note"]}


RUNNERS = {"accuracy": section_accuracy, "phase_diagram": section_phase_diagram, "dense_rhs": section_dense_rhs,
           "ensembles": section_ensembles, "fast_paths": section_fast_paths, "gradients": section_gradients}


# --------------------------------------------------------------------------- output


def _fmt(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3g}"
    return "" if v is None else str(v)


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [f"# jaxattn device suite ({'quick' if meta['quick'] else 'full'})", "",
             f"backend **{meta['backend']}**, devices: {', '.join(meta['devices'])}; jax {meta['jax']}, "
             f"Python {meta['python']}; total wall {meta['wall_s']:.1f} s; optional packages: "
             + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in meta["optional_packages"].items()), ""]
    for name in SECTIONS:
        if name not in result["sections"]:
            continue
        sec = result["sections"][name]
        lines += [f"## {name}", "", f"status: {sec['status']}; wall {sec.get('wall_s', float('nan')):.1f} s "
                  f"(budget {sec.get('budget_s', float('nan')):g} s)", ""]
        for note in sec.get("notes", []):
            lines += [f"* {note}"]
        if sec.get("notes"):
            lines.append("")
        cols = sec.get("columns", [])
        if sec.get("rows"):
            lines.append("| " + " | ".join(cols) + " |")
            lines.append("|" + "|".join("---" for _ in cols) + "|")
            for row in sec["rows"]:
                lines.append("| " + " | ".join(_fmt(row.get(c)) for c in cols) + " |")
            lines.append("")
    return "\n".join(lines)


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def run(quick: bool = False, only: list[str] | None = None, budget_scale: float = 1.0) -> dict:
    start = time.perf_counter()
    budgets = QUICK_BUDGET_S if quick else BUDGET_S
    result = {"meta": {
        "quick": quick, "backend": jax.default_backend(),
        "devices": [f"{d.platform}:{getattr(d, 'device_kind', '?')}" for d in jax.devices()],
        "jax": jax.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "x64": bool(jax.config.jax_enable_x64),
        "optional_packages": {m: have(m) for m in OPTIONAL},
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }, "sections": {}}
    for name in SECTIONS:
        if only and name not in only:
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        budget = Budget(budgets[name] * budget_scale)
        try:
            sec = RUNNERS[name](quick, budget)
            failed = [r for r in sec["rows"] if str(r.get("status", "")).startswith("FAIL")]
            sec["status"] = f"{len(failed)} rows FAIL" if failed else "ok"
        except Exception as exc:  # record and go on: one prepared run must report every section
            sec = {"status": f"failed: {type(exc).__name__}: {exc}"[:300], "rows": [],
                   "traceback": traceback.format_exc()}
        sec["wall_s"] = time.perf_counter() - t0
        sec["cpu_s"] = time.process_time() - c0
        sec["budget_s"] = budget.seconds
        result["sections"][name] = sec
        print(f"[device] {name}: {sec['status']} ({sec['wall_s']:.1f} s wall, {sec['cpu_s']:.1f} s CPU)",
              file=sys.stderr, flush=True)
    result["meta"]["wall_s"] = time.perf_counter() - start
    return _json_safe(result)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI on a CPU, well under a minute)")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "device"),
                        help="directory for device.json and device.md")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiply every section's time budget")
    args = parser.parse_args(argv)
    result = run(args.quick, args.only, args.budget_scale)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "device.json"), "w") as fh:
        json.dump(result, fh, indent=1)
    table = markdown(result)
    with open(os.path.join(args.out, "device.md"), "w") as fh:
        fh.write(table + "\n")
    print(table)
    return result


if __name__ == "__main__":
    main()
