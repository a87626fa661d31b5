"""`jaxattn sweep ...` and `jaxattn causal ...` sub-commands (declared in jaxattn.cli, run by jaxattn.studies._cli)."""

import numpy as np
import pytest
import xarray as xr

from jaxattn import cli


def run(argv):
    return cli.main(argv)


def test_gamma_subcommand_writes_dataset_and_png(tmp_path):
    assert run(["sweep", "gamma", "--out", str(tmp_path), "--betas", "1", "9", "3"]) == 0
    ds = xr.load_dataset(tmp_path / "gamma.nc")
    np.testing.assert_allclose(ds.t_star.values, [4.1145, 8.3879, 177.57], rtol=1e-3)  # beta = 1, 5, 9
    assert (tmp_path / "gamma.png").stat().st_size > 1000


def test_unknown_ensemble_is_an_error(tmp_path, capsys):
    assert run(["sweep", "phase-diagram", "--out", str(tmp_path), "--kq", "wigner", "--betas", "1", "1", "1",
                "--d", "4", "--batch", "2", "--t1", "1", "--saves", "2"]) == 2  # a wrong value: exit 2
    assert "jaxattn sweep phase-diagram: error: kq must be one of" in capsys.readouterr().err


def test_causal_fig3_tiny(tmp_path):
    """Paper 003 Fig. 3 statistic at a tiny size: fractions in [0, 1], everything consumed at t = 0 by the
    Renyi centres' balls only partially, at least one centre (token 1 is always a Renyi centre), and the
    number of clusters never above n."""
    assert run(["causal", "fig3", "--out", str(tmp_path), "--runs", "3", "--n", "12", "--beta", "9",
                "--t1", "5", "--no-progress"]) == 0
    ds = xr.load_dataset(tmp_path / "fig3.nc")
    np.testing.assert_array_equal(ds.t.values, [0, 1, 2, 5])
    for key in ("renyi_ball", "strong_ball", "renyi_cluster", "strong_cluster"):
        assert np.all((ds[f"{key}_q10"] >= 0) & (ds[f"{key}_q90"] <= 1)), key
        assert np.all(ds[f"{key}_q10"] <= ds[f"{key}_mean"] + 1e-12) and np.all(ds[f"{key}_mean"] <= ds[f"{key}_q90"] + 1e-12)
        assert ds[key + "_mean"].attrs["units"] == "1"
    assert np.all(ds.num_renyi >= 1) and np.all(ds.num_strong <= ds.num_renyi)
    assert np.all((ds.clusters_mean >= 1) & (ds.clusters_mean <= 12))
    assert (tmp_path / "fig3.png").stat().st_size > 1000
