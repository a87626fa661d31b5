"""Timing and one measurement record per (workload, case, implementation), shared by every benchmark.

Every number is a median over repeats of **process CPU time** (``time.process_time``,
comparable to idle-core wall time when pinned with ``taskset -c 0``) and of wall time.
``peak_rss_mb`` is the process's resident-set high-water mark after the case
(``getrusage``): it only grows, so it bounds the memory of everything run so far.
The machine these run on is shared and noisy, so every comparison runs both sides in the
same process. Pin to one core for single-core numbers: ``taskset -c 0 python -m benchmarks``.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field


@dataclass
class Record:
    workload: str
    case: str
    impl: str
    cpu_s: float
    wall_s: float
    peak_rss_mb: float
    baseline: str = ""
    ratio_vs_baseline: float | None = None  # baseline time / this time (> 1: faster)
    roofline_fraction: float | None = None  # roofline-bound time / measured CPU time
    compile_s: float | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _block(out):
    import jax

    jax.block_until_ready(out)
    return out


def time_call(fn: Callable[[], object], repeats: int = 3, min_time: float = 0.02) -> tuple[float, float]:
    """(median CPU s, median wall s) per call; each sample loops until ``min_time`` CPU s."""
    cpu, wall = [], []
    for _ in range(repeats):
        loops, c0, w0 = 0, time.process_time(), time.perf_counter()
        while True:
            _block(fn())
            loops += 1
            if time.process_time() - c0 >= min_time:
                break
        cpu.append((time.process_time() - c0) / loops)
        wall.append((time.perf_counter() - w0) / loops)
    return statistics.median(cpu), statistics.median(wall)


def first_call(fn: Callable[[], object]) -> float:
    """CPU seconds of a first (compiling) call."""
    c0 = time.process_time()
    _block(fn())
    return time.process_time() - c0


def compare(workload: str, case: str, sides: dict[str, Callable[[], object]], baseline: str,
            repeats: int = 3, min_time: float = 0.02, bound_s: float | None = None,
            notes: dict[str, str] | None = None, warmup: bool = True) -> list[Record]:
    """Time every side in this process, interleaved repeat by repeat, and build records.

    The first call of each side is timed separately as its compile (+ first run) time.
    ``warmup=False`` (long workloads, where compilation is a few percent) times one call per
    side, compilation included, and reports no compile time.
    ``bound_s`` is the roofline time of the workload (see :mod:`benchmarks.roofline`).
    """
    samples = {name: ([], []) for name in sides}
    if warmup:
        compile_s = {name: first_call(fn) for name, fn in sides.items()}
    else:
        compile_s, repeats = {}, 1
    for _ in range(repeats):  # interleave, so load changes hit every side alike
        for name, fn in sides.items():
            c, w = time_call(fn, repeats=1, min_time=min_time)
            samples[name][0].append(c)
            samples[name][1].append(w)
    med = {name: (statistics.median(c), statistics.median(w)) for name, (c, w) in samples.items()}
    records = []
    for name in sides:
        cpu, wall = med[name]
        ratio = med[baseline][0] / cpu if baseline in med and name != baseline else None
        records.append(Record(
            workload=workload, case=case, impl=name, cpu_s=cpu, wall_s=wall, peak_rss_mb=peak_rss_mb(),
            baseline=baseline if name != baseline else "(baseline)", ratio_vs_baseline=ratio,
            roofline_fraction=(bound_s / cpu) if bound_s else None,
            compile_s=max(compile_s[name] - cpu, 0.0) if name in compile_s else None,
            note=(notes or {}).get(name, "")))
    return records


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    """Print a Markdown table."""
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}"
        return str(v)

    cells = [[fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
