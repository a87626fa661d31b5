"""Parameter sweeps and paper reproductions (issue 3).

* `.sweep`: grids x seeds of jit-compiled, device-sharded ensemble solves written to
  netCDF point by point, resumable after any interruption ([`run_sweep`][jaxattn.studies.run_sweep]).
* `.paper_000`: Figure 2 of paper 000 (hardmax layers, leaders, attracting set).
* `.paper_001`, `.paper_002`: reproductions of the figures and theorems of
  papers 001 and 002 (datasets + plot helpers).
* `.paper_004`: Figs. 2-5 of paper 004 (particles and the mean-field PDE; data + plots).
"""

from . import causal, figures, gradients, paper_000, paper_001, paper_002, paper_004, sweep
from .gradients import (
    checkpointed_adjoint,
    circle_pde_value_and_grad,
    clustering_sensitivity_along_boundary,
    fit,
    fit_beta_to_clustering_time,
    maximise_metastable_lifetime,
    value_and_grad_of,
)
from .sweep import (
    SweepMismatchError,
    function_identity,
    run_sweep,
    shard_ensemble,
    solve_ensemble,
    solve_global_ensemble,
)

__all__ = [
    "SweepMismatchError",
    "causal",
    "checkpointed_adjoint",
    "circle_pde_value_and_grad",
    "clustering_sensitivity_along_boundary",
    "figures",
    "fit",
    "fit_beta_to_clustering_time",
    "function_identity",
    "gradients",
    "maximise_metastable_lifetime",
    "value_and_grad_of",
    "paper_000",
    "paper_001",
    "paper_002",
    "paper_004",
    "run_sweep",
    "shard_ensemble",
    "solve_ensemble",
    "solve_global_ensemble",
    "sweep",
]
