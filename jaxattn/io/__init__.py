"""Reading and writing files: safetensors checkpoints (value spectra), atomic netCDF writes, saved
trajectories (:func:`load_trajectory`) and the CF attributes of every file (:mod:`.cf`)."""

from .cf import (
    REQUIRED as REQUIRED,
    VARIABLES as VARIABLES,
    describe as describe,
    missing_attributes as missing_attributes,
)
from .netcdf import (
    BOOT as BOOT,
    HOST as HOST,
    atomic_write_netcdf as atomic_write_netcdf,
    atomic_write_text as atomic_write_text,
    netcdf_attr as netcdf_attr,
    netcdf_engine as netcdf_engine,
    process_alive as process_alive,
    remove_stale_temporaries as remove_stale_temporaries,
)
from .trajectory import load_trajectory as load_trajectory
from .safetensors import (
    ALBERT_ATTENTION_PREFIX as ALBERT_ATTENTION_PREFIX,
    dominant_eigenvalue_is_real_positive as dominant_eigenvalue_is_real_positive,
    read_safetensors as read_safetensors,
    value_matrix as value_matrix,
    value_spectra as value_spectra,
    write_safetensors as write_safetensors,
)
