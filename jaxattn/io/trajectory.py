"""Reading a saved :class:`jaxattn.Trajectory` back: :func:`load_trajectory`.

:meth:`jaxattn.Trajectory.save` writes a netCDF file (:meth:`jaxattn.Trajectory.to_xarray`: the
saved times, the states, the solver statistics and the field's parameters, with CF attributes
on every variable); :func:`load_trajectory` reads it back exactly: the arrays bit for bit with
their dtypes, and the field rebuilt for the built-in fields of :mod:`jaxattn.fields`.
"""

from __future__ import annotations

import os

import xarray as xr

from ..fields import AbstractField
from ..solve import Trajectory

__all__ = ["load_trajectory"]


def load_trajectory(path: str | os.PathLike, field: AbstractField | None = None) -> Trajectory:
    """The :class:`jaxattn.Trajectory` saved at ``path`` by :meth:`jaxattn.Trajectory.save`.

    Args:
        path: a netCDF file written by :meth:`jaxattn.Trajectory.save`.
        field: the field to attach; needed only for a field class outside :mod:`jaxattn.fields`
            (the built-in fields are rebuilt from the file).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a saved trajectory, or its field cannot be rebuilt (the
            message says to pass ``field``).
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no trajectory file at {os.fspath(path)!r}")
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    try:
        return Trajectory.from_xarray(ds, field=field)
    except ValueError as err:
        raise ValueError(f"{os.fspath(path)}: {err}") from None
