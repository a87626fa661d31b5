"""Parameter sweeps and paper reproductions (issue 3).

* :mod:`.sweep`: grids x seeds of jit-compiled, device-sharded ensemble solves written to
  netCDF point by point, resumable after any interruption (:func:`run_sweep`).
* :mod:`.paper_001`, :mod:`.paper_002`: reproductions of the figures and theorems of
  papers 001 and 002 (datasets + plot helpers).
"""

from . import causal, paper_001, paper_002, sweep
from .sweep import SweepMismatchError, run_sweep, shard_ensemble, solve_ensemble

__all__ = [
    "SweepMismatchError",
    "causal",
    "paper_001",
    "paper_002",
    "run_sweep",
    "shard_ensemble",
    "solve_ensemble",
    "sweep",
]
