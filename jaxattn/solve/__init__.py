"""Integrate particle fields with diffrax: :func:`simulate` (one configuration or an ensemble),
its result :class:`Trajectory`, the sphere retraction and the ensemble strategies.

* :mod:`._simulate`: :func:`simulate` and :func:`solve_ensemble` (argument handling, failures);
* :mod:`._ensemble`: the strategies "batched"/"vmap"/"map", chunking and device sharding
  (measurement: ``docs/ensembles.md``);
* :mod:`._core`: one ``diffeqsolve`` with its static :class:`SolveConfig`;
* :mod:`._retract`: :class:`RetractingSolver`, which applies a manifold's retraction
  (:mod:`jaxattn.manifolds`) after every step (``docs/solving.md``);
* :mod:`._guard`: :class:`NonFiniteGuard` (a non-finite state ends the solve at once);
* :mod:`._failure`: the one map from ``diffrax.RESULTS`` to an exception (:func:`raise_failure`),
  shared with the spectral solvers;
* :mod:`._trajectory`: :class:`Trajectory`.
"""

from ._ensemble import (
    AUTO_MAP_MIN_TOKENS as AUTO_MAP_MIN_TOKENS,
    DEFAULT_MAX_MEMORY as DEFAULT_MAX_MEMORY,
    Ensemble as Ensemble,
    backend_of as backend_of,
    ensemble_bytes_per_member as ensemble_bytes_per_member,
    ensemble_max_norm as ensemble_max_norm,
    ensemble_mesh as ensemble_mesh,
    resolve_ensemble as resolve_ensemble,
    shard_ensemble as shard_ensemble,
)
from ._failure import is_failure as is_failure, raise_failure as raise_failure
from ._guard import COLLAPSE as COLLAPSE, NonFiniteGuard as NonFiniteGuard, tree_all_finite as tree_all_finite
from ..manifolds import retract_to_sphere as retract_to_sphere, retract_to_unit_diagonal as retract_to_unit_diagonal
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
)
from ._trajectory import (
    TRAJECTORY_VARIABLES as TRAJECTORY_VARIABLES,
    SolverStats as SolverStats,
    Trajectory as Trajectory,
)
