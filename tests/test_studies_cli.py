"""`jaxattn sweep ...` and `jaxattn causal ...` sub-commands (declared in jaxattn.cli, run by jaxattn.studies.cli):
their outputs, their option checks, and their resumption after SIGINT (real subprocesses, interrupted at a known
place)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from jaxattn import cli
from jaxattn.io import strip_provenance


def run(argv):
    return cli.main(argv)


def test_gamma_subcommand_writes_dataset_and_png(tmp_path):
    assert run(["sweep", "gamma", "--out", str(tmp_path), "--betas", "1", "9", "3"]) == 0
    ds = xr.load_dataset(tmp_path / "gamma.nc")
    assert ds.t_star.dims == ("beta",)  # a deterministic sweep: no seed axis
    np.testing.assert_allclose(ds.t_star.values, [4.1145, 8.3879, 177.57], rtol=1e-3)  # beta = 1, 5, 9
    assert (tmp_path / "gamma.png").stat().st_size > 1000
    assert len(list((tmp_path / "points").glob("p*.nc"))) == 3  # one stored point per beta


def test_unknown_ensemble_is_an_error(tmp_path, capsys):
    assert run(["sweep", "phase-diagram", "--out", str(tmp_path), "--kq", "wigner", "--betas", "1", "1", "1",
                "--d", "4", "--batch", "2", "--t1", "1", "--saves", "2"]) == 2  # a wrong value: exit 2
    assert "jaxattn sweep phase-diagram: error: kq must be one of" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["phase-diagram", "circle", "gamma"])
@pytest.mark.parametrize("betas, message", [
    (["1", "0.5", "0"], "0 < MIN <= MAX"),          # used to write an empty dataset and a PNG
    (["1", "2", "nan"], "'nan' is not finite"),
    (["0", "1", "3"], "0 < MIN <= MAX"),
    (["1", "2", "2.5"], "whole number"),
    (["1", "2", "0"], "whole number"),
    (["2", "2", "3"], "MIN < MAX"),
    (["1", "x", "3"], "'x' is not a number"),
])
def test_betas_mean_min_max_num_and_are_checked_before_anything_runs(tmp_path, capsys, command, betas, message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        run(["sweep", command, "--out", str(out), "--betas", *betas])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "--betas" in err
    assert not out.exists()  # nothing written


def test_each_default_is_stated_once_in_the_help(capsys):
    for command in ("phase-diagram", "circle", "gamma"):
        with pytest.raises(SystemExit):
            run(["sweep", command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert text.count("default:") == text.count("(default: ")  # no second spelling of a default
        assert "MIN MAX NUM" in text
        for option in text.split("--")[1:]:
            assert option.count("default") <= 1, option[:200]


def test_causal_fig3_tiny(tmp_path):
    """Paper 003 Fig. 3 statistic at a tiny size: fractions in [0, 1], at least one centre (token 1 is always a
    Renyi centre), the number of clusters never above n; the summary has a quantile dimension."""
    assert run(["causal", "fig3", "--out", str(tmp_path), "--runs", "3", "--n", "12", "--beta", "9",
                "--t1", "5", "--chunk", "2", "--no-progress"]) == 0
    ds = xr.load_dataset(tmp_path / "fig3.nc")
    runs = xr.load_dataset(tmp_path / "causal_statistics.nc")
    np.testing.assert_array_equal(ds.t.values, [0, 1, 2, 5])
    assert ds["quantile"].values.tolist() == [0.1, 0.9]
    for key in ("renyi_ball", "strong_ball", "renyi_cluster", "strong_cluster"):
        q = ds[f"{key}_quantile"]
        assert q.dims == ("quantile", "t") and ds[f"{key}_mean"].dims == ("t",)
        assert np.all((q >= 0) & (q <= 1)), key
        assert np.all(q.sel(quantile=0.1) <= ds[f"{key}_mean"] + 1e-12)
        assert np.all(ds[f"{key}_mean"] <= q.sel(quantile=0.9) + 1e-12)
        assert ds[key + "_mean"].attrs["units"] == "1"
    assert not [v for v in ds.data_vars if v.endswith(("_q10", "_q90"))]
    assert np.all(ds.num_renyi >= 1) and np.all(ds.num_strong <= ds.num_renyi)
    assert np.all((ds.clusters_mean >= 1) & (ds.clusters_mean <= 12))
    assert ds.sizes["member"] == 3 and runs.sizes["chunk"] == 2  # 3 runs stored in 2 chunks
    assert (tmp_path / "fig3.png").stat().st_size > 1000


# ------------------------------------------------------------------------------------- resumption after SIGINT

# Runs `jaxattn ARGS...` with jaxattn.sweeps' point writer wrapped: each stored point leaves a marker
# `done-<pid>-<index>`; told to block after `block_after` points, it creates `waiting-<pid>` after storing that
# many and waits for a file that never comes, so the test interrupts it at a known place.
HARNESS = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from jaxattn.sweeps import engine
    log, block_after, argv = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    write_point = engine.write_point

    def marked(ds, path, index, point, function):
        out = write_point(ds, path, index, point, function)
        Path(log, f"done-{os.getpid()}-{index}").touch()
        if len(list(log.glob(f"done-{os.getpid()}-*"))) == block_after:
            Path(log, f"waiting-{os.getpid()}").touch()
            while not Path(log, "never").exists():
                time.sleep(0.01)
        return out

    engine.write_point = marked
    from jaxattn.cli import main
    sys.exit(main(argv))
    """
)

COMMANDS = {  # each a sweep of 3 points at a tiny size, and the file it ends with
    "gamma": (["sweep", "gamma", "--betas", "1", "9", "3", "--n", "8"], "gamma.nc"),
    "circle": (["sweep", "circle", "--betas", "1", "9", "3", "--times", "1", "2", "--n", "6", "--batch", "3",
                "--no-progress"], "circle.nc"),
    "phase-diagram": (["sweep", "phase-diagram", "--betas", "1", "4", "3", "--d", "4", "--n", "4", "--batch", "3",
                       "--t1", "2", "--saves", "3"], "phase_diagram.nc"),
    "causal-fig3": (["causal", "fig3", "--runs", "5", "--chunk", "2", "--n", "8", "--beta", "9", "--t1", "2",
                     "--no-progress"], "fig3.nc"),
}


def _harness(tmp_path, out, log, block_after, args):
    script = tmp_path / "harness.py"
    script.write_text(HARNESS)
    return subprocess.Popen([sys.executable, str(script), str(log), str(block_after), *args, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _written(log):
    return sorted(int(f.name.split("-")[2]) for f in Path(log).glob("done-*"))


@pytest.mark.parametrize("command", [
    "gamma", pytest.param("circle", marks=pytest.mark.slow), pytest.param("phase-diagram", marks=pytest.mark.slow),
    pytest.param("causal-fig3", marks=pytest.mark.slow)])
def test_every_sweep_command_resumes_after_sigint(tmp_path, command):
    args, product = COMMANDS[command]
    out, log = tmp_path / "out", tmp_path / "log"
    log.mkdir()
    proc = _harness(tmp_path, out, log, 1, args)  # 1) SIGINT once the first point is stored
    try:
        start = time.time()
        while not list(log.glob("waiting-*")):
            if proc.poll() is not None:
                raise AssertionError(f"the command ended early: {proc.communicate()}")
            assert time.time() - start < 240, "the command is too slow"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode != 0 and not (out / product).exists()
    assert _written(log) == [0] and len(list((out / "points").glob("p*.nc"))) == 1  # the stored point is kept
    proc = _harness(tmp_path, out, log, -1, args)  # 2) the same command again: only the missing points
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr.decode()[-3000:]
    assert _written(log) == [0, 1, 2]  # every point computed exactly once over both runs
    # 3) the same files as an uninterrupted run
    assert cli.main([*args, "--out", str(tmp_path / "ref")]) == 0
    resumed, ref = xr.load_dataset(out / product), xr.load_dataset(tmp_path / "ref" / product)
    xr.testing.assert_identical(strip_provenance(resumed), strip_provenance(ref))  # (other command lines)
    assert (out / Path(product).with_suffix(".png")).exists()


# ----------------------------------------------------------------- phase diagram: normalisation, heads, mask, redraws

TINY = ["sweep", "phase-diagram", "--betas", "2", "2", "1", "--d", "3", "--n", "4", "--batch", "3", "--t1", "4",
        "--saves", "3", "--delta", "0.1", "--rtol", "1e-8"]


def _numpy_pair_fraction(theta, delta):
    """Fraction of ordered pairs i != j with <theta_i, theta_j> >= 1 - delta, per member and time (NumPy)."""
    g = np.einsum("...id,...jd->...ij", theta, theta)
    n = theta.shape[-2]
    close = (g >= 1 - delta) & ~np.eye(n, dtype=bool)
    return close.sum(axis=(-2, -1)) / (n * (n - 1))


def test_phase_diagram_with_a_normalisation_scheme_matches_a_direct_solve(tmp_path):
    """``--norm pre-ln --heads 2 --causal --redraw-period 1 --kq ginibre``: the stored P(t) of each member is the
    fraction of clustered direction pairs of the same model solved directly (Pre-LN with two averaged random heads
    re-drawn at t = 1, 2, 3, a causal mask; tokens from radius 1), and lies in [0, 1]."""
    import diffrax
    import jax

    import jaxattn
    from jaxattn import initial
    from jaxattn.fields import NORMALISATIONS, RandomWeights, polar

    out = tmp_path / "pre"
    assert run([*TINY, "--out", str(out), "--kq", "ginibre", "--norm", "pre-ln", "--heads", "2", "--causal",
                "--redraw-period", "1"]) == 0
    ds = xr.load_dataset(out / "phase_diagram.nc")
    P = ds.pair_fraction.isel(beta=0, d=0, kq=0, value=0, seed=0).values  # (member, t)
    assert np.all((P >= 0) & (P <= 1))
    assert ds.attrs["norm"] == "pre-ln" and ds.attrs["heads"] == 2 and ds.attrs["causal"] == 1
    kx, km = jax.random.split(jax.random.PRNGKey(0))  # seed 0: the point's draws
    x0 = initial.uniform_sphere(kx, 4, 3, batch=3)
    field = NORMALISATIONS["preln"](2.0, weights=RandomWeights(km, 3, heads=2, kq="ginibre"), redraw_period=1.0,
                                    causal=True)
    controller = diffrax.PIDController(rtol=1e-11, atol=1e-11, jump_ts=[1.0, 2.0, 3.0])
    expected = np.stack([
        _numpy_pair_fraction(np.asarray(jaxattn.simulate(field, polar(x0[m]), 4.0, ts=3,
                                                         stepsize_controller=controller).xs)[..., :-1], 0.1)
        for m in range(3)])
    np.testing.assert_array_equal(P, expected)
    assert len(set(np.round(P.ravel(), 12))) > 1  # P changes: the comparison is not of constants


def test_post_ln_phase_diagram_is_the_sa_phase_diagram(tmp_path):
    """Post-LN is (SA) on the directions with constant radii (Rigollet 2025, §5.2, s_i = 1): ``--norm post-ln``
    (directions x radii, the identity heads of RandomWeights) gives the P(t) of the default ``--norm sa``."""
    assert run([*TINY, "--out", str(tmp_path / "sa")]) == 0
    assert run([*TINY, "--out", str(tmp_path / "post"), "--norm", "post-ln"]) == 0
    sa, post = (xr.load_dataset(tmp_path / name / "phase_diagram.nc") for name in ("sa", "post"))
    assert sa.attrs["model"] == "SA" and post.attrs["model"].startswith("post-ln")
    np.testing.assert_array_equal(post.pair_fraction.values, sa.pair_fraction.values)
    assert np.ptp(sa.pair_fraction.values) > 0


def test_a_changed_dynamics_flag_never_resumes_stale_points(tmp_path, capsys):
    """Every dynamics flag is part of the sweep's identity (``--kq`` of its grid): rerun in the same folder with one
    flag changed, the sweep is refused (exit 2, nothing recomputed or overwritten) instead of handing back the old
    points; rerun unchanged, it reuses them."""
    out = tmp_path / "out"
    base = [*TINY, "--out", str(out), "--norm", "pre-ln", "--heads", "2"]
    assert run(base) == 0
    before = {p.name: p.stat().st_mtime_ns for p in (out / "points").glob("p*.nc")}
    merged = (out / "phase_diagram.nc").read_bytes()
    for change in (["--norm", "peri-ln"], ["--heads", "3"], ["--causal"], ["--redraw-period", "2"], ["--kq", "goe"]):
        assert run([*base, *change]) == 2, change
        err = capsys.readouterr().err
        assert "error" in err and str(out) in err, change
        assert {p.name: p.stat().st_mtime_ns for p in (out / "points").glob("p*.nc")} == before
        assert (out / "phase_diagram.nc").read_bytes() == merged
    assert run(base) == 0  # unchanged flags: the stored point is reused
    assert {p.name: p.stat().st_mtime_ns for p in (out / "points").glob("p*.nc")} == before


@pytest.mark.parametrize("flags, message", [
    (["--norm", "layernorm"], "argument --norm: invalid choice"),
    (["--heads", "0"], "argument --heads"),
    (["--heads", "1.5"], "argument --heads"),
    (["--redraw-period", "0"], "argument --redraw-period"),
    (["--redraw-period", "nan"], "argument --redraw-period"),
])
def test_bad_dynamics_flags_are_one_line_errors(tmp_path, capsys, flags, message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        run([*TINY, "--out", str(out), *flags])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) <= 2  # usage line + the one error line
    assert not out.exists()


def test_norm_choices_are_the_studies_schemes():
    from jaxattn.fields import NORMALISATIONS
    from jaxattn.studies.paper_002.phase_diagrams import NORMS

    assert cli.PHASE_NORMS == NORMS
    assert {n.replace("-", "") for n in NORMS[1:]} == set(NORMALISATIONS)
