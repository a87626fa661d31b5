"""Timing helpers shared by the benchmarks.

The machine these run on is shared and noisy, so every figure is **process CPU time**
(``time.process_time``) and the median over repeats, and every comparison runs both
sides in the same process. Pin to one core for single-core numbers:
``taskset -c 0 python -m benchmarks.rhs_and_solve``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def cpu_time(fn: Callable[[], object], repeats: int = 3, min_time: float = 0.05) -> float:
    """Median CPU seconds of ``fn()`` (each sample loops until ``min_time`` has passed)."""
    samples = []
    for _ in range(repeats):
        loops, start = 0, time.process_time()
        while True:
            out = fn()
            if hasattr(out, "block_until_ready"):
                out.block_until_ready()
            loops += 1
            elapsed = time.process_time() - start
            if elapsed >= min_time:
                break
        samples.append(elapsed / loops)
    return statistics.median(samples)


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
