"""One trajectory schema, files that say what made them, and loaders that refuse damaged or hostile files.

* ``jaxattn simulate --out run.nc|run.npz`` writes what :meth:`Trajectory.save` writes, so
  :func:`jaxattn.load_trajectory` reads it back: the first saved state is the initial condition the
  seed draws (an independent draw) and the rebuilt field gives the same velocities.
* Every file the project writes (a trajectory, a dataset through :func:`jaxattn.io.atomic_write_netcdf`)
  carries ``Conventions``, ``jaxattn_version``, ``source`` and a ``history`` holding the full command
  line or the Python call; the extension is checked.
* A few-kB file that declares 24 GB of data is refused before anything is read; wrong dimensions,
  NaN states, missing attributes and a field with beta = -5 get messages naming the file and the fault.
* A write that fails on a full disk (ENOSPC, or netCDF's bare "NetCDF: HDF error") names the file and
  the cause, and leaves neither the file nor a temporary behind.
"""

from __future__ import annotations

import errno
import json
import shlex
import shutil
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import jaxattn
from jaxattn import cli
from jaxattn.io import PROVENANCE, atomic_write_netcdf, check_declared_sizes, stamp

KEY = jax.random.PRNGKey(3)


def _traj(beta=2.0, n=5):
    x0 = jaxattn.initial.uniform_sphere(KEY, n, 3)
    return jaxattn.simulate(jaxattn.SelfAttention(beta), x0, 0.5, ts=4)


@pytest.mark.parametrize("suffix", [".nc", ".npz"])
def test_cli_files_load_with_load_trajectory(tmp_path, suffix, capsys):
    out = tmp_path / f"run{suffix}"
    argv = ["simulate", "--model", "sa", "--n", "6", "--d", "3", "--beta", "2", "--t1", "1", "--saves", "5",
            "--seed", "7", "--out", str(out)]
    assert cli.main(argv) == 0
    capsys.readouterr()
    traj = jaxattn.load_trajectory(out)
    x0 = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(7), 6, 3)
    np.testing.assert_allclose(np.asarray(traj.xs[0]), np.asarray(x0), rtol=0, atol=1e-15)
    np.testing.assert_allclose(np.asarray(traj.ts), np.linspace(0, 1, 5), atol=1e-12)
    probe = x0 + 0.1
    np.testing.assert_allclose(traj.field(0.0, probe), jaxattn.SelfAttention(2.0)(0.0, probe), rtol=0, atol=0)
    # continues the same dynamics: re-solving from the loaded t = 0 state reproduces the loaded final state
    again = jaxattn.simulate(traj.field, traj.xs[0], 1.0, ts=5)
    np.testing.assert_allclose(np.asarray(again.final), np.asarray(traj.final), atol=1e-12)
    attrs = (xr.open_dataset(out).attrs if suffix == ".nc"
             else json.loads(str(np.load(out)["__schema__"]))["attrs"])
    assert set(PROVENANCE) <= set(attrs), attrs
    assert attrs["history"].endswith(shlex.join(["jaxattn", *argv])), attrs["history"]
    assert attrs["jaxattn_version"] == jaxattn.__version__ and attrs["seed"] == 7


def test_library_files_say_what_made_them(tmp_path):
    traj = _traj()
    for name in ("a.nc", "a.npz"):
        back_attrs = jaxattn.load_trajectory(traj.save(tmp_path / name))  # loads
        assert back_attrs.xs.shape == traj.xs.shape
    ds = xr.open_dataset(tmp_path / "a.nc")
    assert ds.attrs["Conventions"] == "CF-1.11" and "Trajectory.save(" in ds.attrs["history"]
    assert ds.attrs["source"] == f"jaxattn {jaxattn.__version__}: jaxattn.simulate of SelfAttention"
    # a dataset written through the shared writer: stamped, and a source given by the writer kept
    path = atomic_write_netcdf(xr.Dataset({"energy": ("t", [1.0, 2.0])}, coords={"t": [0.0, 1.0]}),
                               tmp_path / "e.nc", source="a test")
    attrs = xr.open_dataset(path).attrs
    assert set(PROVENANCE) <= set(attrs) and attrs["source"].endswith(": a test")
    kept = stamp(xr.Dataset(attrs={"history": "2020: earlier", "source": "elsewhere"}))
    assert kept.attrs["history"] == "2020: earlier" and kept.attrs["source"] == "elsewhere"


def test_wrong_extensions_are_refused(tmp_path):
    traj = _traj()
    with pytest.raises(ValueError, match=r"\.nc or \.npz"):
        traj.save(tmp_path / "x.txt")
    with pytest.raises(ValueError, match=r"end in \.nc"):
        atomic_write_netcdf(xr.Dataset(), tmp_path / "x.txt")
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------ hostile files


def test_a_small_netcdf_declaring_24_gb_is_refused_before_reading(tmp_path):
    netCDF4 = pytest.importorskip("netCDF4")
    path = tmp_path / "hostile.nc"
    good = _traj().to_xarray()
    with netCDF4.Dataset(path, "w") as nc:
        for dim, size in (("t", 200_000_000), ("token", 5), ("dim", 3)):
            nc.createDimension(dim, size)
        nc.createVariable("x", "f8", ("t", "token", "dim"))  # declared, never written: fill values
        nc.setncatts({k: v for k, v in good.attrs.items()})
    assert path.stat().st_size < 100_000
    with pytest.raises(ValueError, match=r"hostile\.nc: variable 'x' declares 200000000 x 5 x 3 float64 values "
                                         r"\(24\.0 GB\), but the file holds"):
        jaxattn.load_trajectory(path)
    # the honest file passes the same check, and its declared size is what it stores
    honest = _traj().save(tmp_path / "honest.nc")
    assert 0 < check_declared_sizes(honest) <= honest.stat().st_size


def test_a_small_npz_declaring_a_huge_array_is_refused(tmp_path):
    path = tmp_path / "hostile.npz"
    header = {"descr": "<f8", "fortran_order": False, "shape": (200_000_000, 5, 3)}
    with zipfile.ZipFile(path, "w") as zf, zf.open("x.npy", "w") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        fh.write(b"\0" * 64)
    with pytest.raises(ValueError, match=r"declares shape \(200000000, 5, 3\)"):
        jaxattn.load_trajectory(path)


def _write(ds, path):
    ds.to_netcdf(path)
    return path


@pytest.mark.parametrize("case, match", [
    ("missing_attribute", r"no 'field_static' attribute"),
    ("beta_negative", r"field parameters are invalid: beta must be finite and > 0"),
    ("nan_parameter", r"field parameters are invalid: .*(NaN|finite)"),
    ("nan_state", r"x holds 1 NaN/inf values"),
    ("wrong_dims", r"x has dimensions \('t', 'token'\)"),
    ("missing_variable", r"lacks the variables \['t_final'\]"),
    ("bad_static", r"field_static is not the field's parameters"),
    ("times_mismatch", r"4 saved times but 3 saved states"),
])
def test_damaged_trajectories_get_clear_errors(tmp_path, case, match):
    ds = _traj().to_xarray()
    if case == "missing_attribute":
        del ds.attrs["field_static"]
    elif case == "beta_negative":
        ds["field.beta"] = ds["field.beta"] * 0 - 5.0
    elif case == "nan_parameter":
        ds["field.beta"] = ds["field.beta"] * np.nan
    elif case == "nan_state":
        x = ds["x"].values.copy()
        x[1, 2, 0] = np.nan
        ds["x"] = (ds["x"].dims, x)
    elif case == "wrong_dims":
        ds = ds.drop_vars("x").assign(x=(("t", "token"), np.zeros((4, 5))))
    elif case == "missing_variable":
        ds = ds.drop_vars("t_final")
    elif case == "bad_static":
        ds.attrs["field_static"] = "[1, 2"
    elif case == "times_mismatch":
        ds = ds.isel(t=slice(0, 3)).drop_vars("t").assign(ts=(("ts_dim0",), np.linspace(0, 1, 4)))
    path = _write(ds, tmp_path / f"{case}.nc")
    with pytest.raises(ValueError, match=rf"{case}\.nc: .*{match}"):
        jaxattn.load_trajectory(path)


def test_not_a_netcdf_file_is_named(tmp_path):
    path = tmp_path / "junk.nc"
    path.write_bytes(b"not a netCDF file" * 10)
    with pytest.raises(ValueError, match=r"junk\.nc: not a readable netCDF file"):
        jaxattn.load_trajectory(path)


# ------------------------------------------------------------------------------------------ a full disk


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _hdf_error(*args, **kwargs):
    raise RuntimeError("NetCDF: HDF error")


@pytest.mark.parametrize("failure", [_enospc, _hdf_error], ids=["ENOSPC", "HDF error"])
def test_full_disk_names_the_file_and_the_cause(tmp_path, monkeypatch, failure):
    monkeypatch.setattr(xr.Dataset, "to_netcdf", failure)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=4096))  # what a full disk reports
    traj = _traj()
    for write in (lambda: traj.save(tmp_path / "run.nc"),
                  lambda: atomic_write_netcdf(traj.to_xarray(), tmp_path / "sweep.nc")):
        with pytest.raises(OSError, match=r"could not write .*(run|sweep)\.nc: the disk is full \(0\.0 MiB free"):
            write()
    assert not list(tmp_path.iterdir())  # no partial file, no temporary


def test_other_write_failures_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(xr.Dataset, "to_netcdf", _hdf_error)  # with plenty of free space: not "full"
    with pytest.raises(OSError, match=r"could not write .*run\.nc: RuntimeError: NetCDF: HDF error"):
        _traj().save(tmp_path / "run.nc")


def test_loaded_field_keeps_jax_semantics():
    """The rebuilt field is a pytree of arrays like the original (grad through a loaded field works)."""
    traj = _traj(beta=1.5)
    back = jaxattn.Trajectory.from_xarray(traj.to_xarray())
    g = jax.grad(lambda f: jnp.sum(f(0.0, traj.xs[0])))(back.field)
    g0 = jax.grad(lambda f: jnp.sum(f(0.0, traj.xs[0])))(traj.field)
    np.testing.assert_allclose(g.beta, g0.beta, rtol=0, atol=0)
