"""Integrate particle fields with diffrax: [`simulate`][jaxattn.simulate] (one configuration or an ensemble),
its result [`Trajectory`][jaxattn.Trajectory], the sphere retraction and the ensemble strategies.

* `._simulate`: [`simulate`][jaxattn.simulate] and [`solve_ensemble`][jaxattn.solve.solve_ensemble] (argument handling, failures);
* `._ensemble`: [`AbstractEnsemble`][jaxattn.solve.AbstractEnsemble], the strategies [`Batched`][jaxattn.solve.Batched], [`Vmap`][jaxattn.solve.Vmap],
  [`Map`][jaxattn.solve.Map] and the wrappers [`Chunked`][jaxattn.solve.Chunked], [`Sharded`][jaxattn.solve.Sharded], [`GlobalSharded`][jaxattn.solve.GlobalSharded]
  (measurement: ``docs/ensembles.md``);
* `._core`: one ``diffeqsolve`` with its static `SolveConfig`;
* `._retract`: [`RetractingSolver`][jaxattn.RetractingSolver], which applies a manifold's retraction
  ([`jaxattn.manifolds`][jaxattn.manifolds]) after every step (``docs/solving.md``);
* `._guard`: [`NonFiniteGuard`][jaxattn.solve.NonFiniteGuard] (a non-finite state ends the solve at once);
* `._failure`: the one map from ``diffrax.RESULTS`` to an exception ([`raise_failure`][jaxattn.solve.raise_failure]),
  shared with the spectral solvers;
* `._trajectory`: [`Trajectory`][jaxattn.Trajectory].
"""

from ._ensemble import (
    AUTO_MAP_MIN_TOKENS as AUTO_MAP_MIN_TOKENS,
    DEFAULT_MAX_MEMORY as DEFAULT_MAX_MEMORY,
    STRATEGIES as STRATEGIES,
    AbstractEnsemble as AbstractEnsemble,
    AbstractStrategy as AbstractStrategy,
    Batched as Batched,
    Chunked as Chunked,
    Ensemble as Ensemble,
    GlobalSharded as GlobalSharded,
    Map as Map,
    Sharded as Sharded,
    Single as Single,
    Vmap as Vmap,
    backend_of as backend_of,
    ensemble_bytes_per_member as ensemble_bytes_per_member,
    ensemble_max_norm as ensemble_max_norm,
    ensemble_mesh as ensemble_mesh,
    resolve_ensemble as resolve_ensemble,
    shard_ensemble as shard_ensemble,
    stop_together as stop_together,
)
from ._failure import is_failure as is_failure, raise_failure as raise_failure
from ._observe import observe_saved as observe_saved
from ._guard import COLLAPSE as COLLAPSE, NonFiniteGuard as NonFiniteGuard, tree_all_finite as tree_all_finite
from ._retract import RetractingSolver as RetractingSolver
from ._simulate import (
    DEFAULT_ATOL as DEFAULT_ATOL,
    DEFAULT_MAX_STEPS as DEFAULT_MAX_STEPS,
    DEFAULT_NUM_SAVES as DEFAULT_NUM_SAVES,
    DEFAULT_RTOL as DEFAULT_RTOL,
    NonFiniteStateError as NonFiniteStateError,
    SolverStepLimitError as SolverStepLimitError,
    check_initial_tokens as check_initial_tokens,
    simulate as simulate,
    solve_ensemble as solve_ensemble,
    solve_global_ensemble as solve_global_ensemble,
)
from ._trajectory import (
    TRAJECTORY_SUFFIXES as TRAJECTORY_SUFFIXES,
    TRAJECTORY_VARIABLES as TRAJECTORY_VARIABLES,
    dataset_from_npz as dataset_from_npz,
    SolverStats as SolverStats,
    Trajectory as Trajectory,
)
