"""Resumable parameter sweeps: grids x seeds of point functions, stored point by point (``docs/sweeps.md``).

* `.engine`: [`run_sweep`][jaxattn.sweeps.run_sweep] (any number of processes on one directory, resumable after
  any interruption) and [`sweep_points`][jaxattn.sweeps.sweep_points];
* `.identity`: the identity of a point function ([`AbstractPoint`][jaxattn.sweeps.AbstractPoint],
  [`function_identity`][jaxattn.sweeps.function_identity]), recorded in the manifest and in every point file;
* `.claims`: per-point claim files with heartbeats;
* `.storage`: manifest, point files (each records its point and its function), the merge.

One ensemble over the devices of every process is [`jaxattn.solve.solve_global_ensemble`][jaxattn.solve.solve_global_ensemble].
"""

from .claims import Claim as Claim, claim as claim
from .engine import run_sweep as run_sweep, sweep_points as sweep_points
from .identity import (
    AbstractPoint as AbstractPoint,
    function_identity as function_identity,
    identity_hash as identity_hash,
    stable_value as stable_value,
)
from .storage import (
    SweepMismatchError as SweepMismatchError,
    check_manifest as check_manifest,
    merge_points as merge_points,
    move_aside as move_aside,
    point_file_problem as point_file_problem,
    read_manifest as read_manifest,
    write_point as write_point,
)
