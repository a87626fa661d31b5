"""Reading and writing files: saved trajectories ([`load_trajectory`][jaxattn.load_trajectory]), netCDF sweep storage, safetensors
checkpoints (value spectra), the CF attributes of every variable and the provenance of every file (`.cf`)."""

from .cf import (
    PROVENANCE as PROVENANCE,
    REQUIRED as REQUIRED,
    VARIABLES as VARIABLES,
    describe as describe,
    missing_attributes as missing_attributes,
    stamp as stamp,
    strip_provenance as strip_provenance,
)
from .netcdf import (
    Claim as Claim,
    atomic_write_netcdf as atomic_write_netcdf,
    atomic_write_text as atomic_write_text,
    check_manifest as check_manifest,
    claim as claim,
    merge_points as merge_points,
    move_aside as move_aside,
    netcdf_attr as netcdf_attr,
    netcdf_engine as netcdf_engine,
    point_file_problem as point_file_problem,
    read_manifest as read_manifest,
    remove_stale_temporaries as remove_stale_temporaries,
)
from .trajectory import (
    check_declared_sizes as check_declared_sizes,
    load_trajectory as load_trajectory,
)
from .safetensors import (
    ALBERT_ATTENTION_PREFIX as ALBERT_ATTENTION_PREFIX,
    dominant_eigenvalue_is_real_positive as dominant_eigenvalue_is_real_positive,
    read_safetensors as read_safetensors,
    value_matrix as value_matrix,
    value_spectra as value_spectra,
    write_safetensors as write_safetensors,
)
