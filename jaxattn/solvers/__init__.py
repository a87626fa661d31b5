"""diffrax solvers for long, mildly stiff particle solves (layer between ``fields`` and ``solve``).

* `_rkc.py`: [`RKC2`][jaxattn.solvers.RKC2], the damped second-order Runge-Kutta-Chebyshev method (stability
  interval ~0.65 s^2 for s stages), for Jacobians with eigenvalues near the negative real axis;
* `_delegating.py`: [`AbstractDelegatingSolver`][jaxattn.solvers.AbstractDelegatingSolver], the one base of every solver
  wrapper (diffrax reads the wrapped solver's attributes on the wrapper);
* `_collapse.py`: [`CollapsingSolver`][jaxattn.solvers.CollapsingSolver], the cluster collapse: tokens closer
  than a tolerance are merged and move as one particle (exact for (SA)/(USA) without a causal mask).

Measurements and the choice ``simulate`` makes among them: ``docs/solving.md``.
"""

from ._delegating import (
    AbstractDelegatingSolver as AbstractDelegatingSolver,
    AbstractStepWrapper as AbstractStepWrapper,
)
from ._rkc import DEFAULT_DAMPING as DEFAULT_DAMPING, RKC2 as RKC2, stability_bound as stability_bound
from ._collapse import (
    DEFAULT_MERGE_TOL as DEFAULT_MERGE_TOL,
    CollapsingSolver as CollapsingSolver,
    gather_tokens as gather_tokens,
    has_token_rows as has_token_rows,
    merge_clusters as merge_clusters,
)
from ._choice import (
    MAX_COLLAPSE_TOKENS as MAX_COLLAPSE_TOKENS,
    MERGE_FACTOR as MERGE_FACTOR,
    default_solver as default_solver,
    merge_tolerance as merge_tolerance,
)
