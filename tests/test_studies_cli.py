"""`jaxattn sweep ...` sub-commands (registered by jaxattn.studies._cli)."""

import argparse

import numpy as np
import pytest
import xarray as xr

from jaxattn.studies import _cli


def run(argv):
    parser = argparse.ArgumentParser()
    _cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_gamma_subcommand_writes_dataset_and_png(tmp_path):
    assert run(["sweep", "gamma", "--out", str(tmp_path), "--betas", "1", "9", "3"]) == 0
    ds = xr.load_dataset(tmp_path / "gamma.nc")
    np.testing.assert_allclose(ds.t_star.values, [4.1145, 8.3879, 177.57], rtol=1e-3)  # beta = 1, 5, 9
    assert (tmp_path / "gamma.png").stat().st_size > 1000


def test_unknown_ensemble_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="kq"):
        run(["sweep", "phase-diagram", "--out", str(tmp_path), "--kq", "wigner", "--betas", "1", "1", "1",
             "--d", "4", "--batch", "2", "--t1", "1", "--saves", "2"])
