"""Reading a saved [`jaxattn.Trajectory`][jaxattn.Trajectory] back: [`load_trajectory`][jaxattn.load_trajectory].

[`jaxattn.Trajectory.save`][jaxattn.solve.Trajectory.save] writes a netCDF file or a NumPy archive of the same dataset
([`jaxattn.Trajectory.to_xarray`][jaxattn.solve.Trajectory.to_xarray]: the saved times, the states, the solver statistics and the
field's parameters, with CF attributes on every variable and the provenance attributes of every
file the project writes); [`load_trajectory`][jaxattn.load_trajectory] reads either back exactly: the arrays bit for bit
with their dtypes, and the field rebuilt for the built-in fields of [`jaxattn.fields`][jaxattn.fields].

A file is never trusted: before any array is read, the sizes its header declares are checked against
the bytes the file holds ([`check_declared_sizes`][jaxattn.io.check_declared_sizes]), so a small damaged or hostile file cannot
make the reader allocate gigabytes; then the dimensions, the values (no NaN/inf) and the field's
parameters (beta > 0) are checked, each with a message that names the file.
"""

from __future__ import annotations

import os
import tokenize
import zipfile
from pathlib import Path

import numpy as np
import xarray as xr

from ..fields import AbstractField
from ..solve import Trajectory, dataset_from_npz

__all__ = ["check_declared_sizes", "load_trajectory"]

#: the largest ratio of data to stored bytes that compression can give (zlib's limit is about 1032:1)
MAX_COMPRESSION = 1100
#: bytes a file may declare beyond what it holds (headers, small attributes)
SLACK = 1 << 16


def load_trajectory(path: str | os.PathLike, field: AbstractField | None = None) -> Trajectory:
    """The [`jaxattn.Trajectory`][jaxattn.Trajectory] saved at ``path`` by [`jaxattn.Trajectory.save`][jaxattn.solve.Trajectory.save]
    (or by ``jaxattn simulate --out``).

    **Arguments:**

    - `path`: a netCDF (``.nc``) file or NumPy archive (``.npz``) written by
        [`jaxattn.Trajectory.save`][jaxattn.solve.Trajectory.save].
    - `field`: the field to attach; needed only for a field class outside [`jaxattn.fields`][jaxattn.fields]
        (the built-in fields are rebuilt from the file); default None.

    **Returns:**

    The [`jaxattn.Trajectory`][jaxattn.Trajectory]: the arrays bit for bit with their dtypes.

    **Raises:**

    - `FileNotFoundError`: no file at ``path``.
    - `IsADirectoryError`: ``path`` is a folder.
    - `ValueError`: the file is not a saved trajectory, declares more data than it holds, has the
        wrong dimensions, NaN/inf values or invalid field parameters (beta <= 0), or its field
        cannot be rebuilt (the message says to pass ``field``). Every message names the file.
    """
    where = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no trajectory file at {where!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{where} is a folder; load_trajectory reads one .nc or .npz file")
    try:
        check_declared_sizes(path)
        ds = _read_npz(path) if Path(path).suffix.lower() == ".npz" else _read_netcdf(path)
        return Trajectory.from_xarray(ds, field=field)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def check_declared_sizes(path: str | os.PathLike) -> int:
    """Check, without reading any array, that the data a netCDF file or ``.npz`` archive declares fits in
    the bytes it holds.

    Uncompressed data must fit in the file (plus a small slack, `SLACK` = 64 kiB, for headers);
    compressed variables may declare up to `MAX_COMPRESSION` = 1100 times the bytes they store (zlib's
    limit is about 1032:1).

    **Arguments:**

    - `path`: the file (``.npz`` is read as a NumPy archive, anything else as netCDF).

    **Returns:**

    The declared number of bytes (int; 0 where netCDF4 is not installed).

    **Raises:**

    - `ValueError`: the file declares more data than it can hold (damaged or hostile), or its header
        cannot be read.
    - `FileNotFoundError`: no file at ``path``.
    """
    path = Path(path)
    size = path.stat().st_size
    if path.suffix.lower() == ".npz":
        return _npz_declared(path, size)
    try:
        import netCDF4
    except ImportError:  # pragma: no cover - netCDF4 is a dependency
        return 0
    try:
        nc = netCDF4.Dataset(path, "r")
    except OSError as err:
        raise ValueError(f"not a readable netCDF file ({err}); Trajectory.save writes .nc or .npz files") from None
    total = 0
    try:
        for name, var in _walk_variables(nc):
            nbytes = int(np.prod(var.shape, dtype=object)) * np.dtype(var.dtype).itemsize if var.dtype != str else 0
            filters = var.filters() or {}
            compressed = any(bool(filters.get(k)) for k in ("zlib", "szip", "zstd", "bzip2", "blosc"))
            limit = (MAX_COMPRESSION * size if compressed else size) + SLACK
            if nbytes > limit:
                shape = " x ".join(map(str, var.shape))
                raise ValueError(f"variable {name!r} declares {shape} {np.dtype(var.dtype).name} values "
                                 f"({_bytes(nbytes)}), but the file holds {_bytes(size)}: it is damaged or not "
                                 "a trajectory; nothing was read")
            total += nbytes
    finally:
        nc.close()
    return total


def _walk_variables(nc):
    yield from nc.variables.items()
    for group in nc.groups.values():
        yield from _walk_variables(group)


#: what zipfile and numpy raise on a damaged archive: a bad CRC or directory, truncated data, an entry's
#: array header that no longer parses (numpy reads it with the tokenizer)
_DAMAGED_NPZ = (zipfile.BadZipFile, OSError, EOFError, SyntaxError, tokenize.TokenError)


def _npz_declared(path: Path, size: int) -> int:
    total = 0
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.compress_size > size:
                    raise ValueError(f"entry {info.filename!r} claims {_bytes(info.compress_size)} in a file of "
                                     f"{_bytes(size)}: the archive is damaged")
                with zf.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    shape, _, dtype = (np.lib.format.read_array_header_1_0(fh) if version == (1, 0)
                                       else np.lib.format.read_array_header_2_0(fh))
                nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
                stored = info.compress_size * (MAX_COMPRESSION if info.compress_type != zipfile.ZIP_STORED else 1)
                if nbytes > stored + SLACK:
                    raise ValueError(f"entry {info.filename!r} declares shape {tuple(shape)} of {dtype} "
                                     f"({_bytes(nbytes)}), but stores {_bytes(info.compress_size)}: the archive is "
                                     "damaged or hostile; nothing was read")
                total += nbytes
    except _DAMAGED_NPZ as err:
        raise ValueError(f"not a readable .npz archive ({type(err).__name__}: {err})") from None
    return total


def _bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # pragma: no cover


def _read_netcdf(path) -> xr.Dataset:
    with xr.open_dataset(path) as ds:
        return ds.load()


def _read_npz(path) -> xr.Dataset:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except _DAMAGED_NPZ as err:
        raise ValueError(f"not a readable .npz archive ({type(err).__name__}: {err})") from None
    return dataset_from_npz(arrays)
