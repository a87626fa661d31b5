"""Parameter sweeps and paper reproductions (issue 3)."""

from . import sweep
from .sweep import run_sweep, shard_ensemble, solve_ensemble

__all__ = ["run_sweep", "shard_ensemble", "solve_ensemble", "sweep"]
