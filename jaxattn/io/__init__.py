"""Reading and writing files: safetensors checkpoints (value spectra) and netCDF sweep storage."""

from .safetensors import (
    ALBERT_ATTENTION_PREFIX as ALBERT_ATTENTION_PREFIX,
    dominant_eigenvalue_is_real_positive as dominant_eigenvalue_is_real_positive,
    plot_value_spectra as plot_value_spectra,
    read_safetensors as read_safetensors,
    value_matrix as value_matrix,
    value_spectra as value_spectra,
    write_safetensors as write_safetensors,
)
