"""The ``jaxattn`` console script: fast start (no heavy imports before a command runs), help texts with
defaults, ``--version``, the ``simulate``, ``pde`` and ``demo --animate`` commands at tiny sizes, and the
error layer: every wrong input is one line ``jaxattn <cmd>: error: ...`` with exit status 2 (a wrong
command line) or 1 (another failure), Ctrl-C exits 130, no traceback.

Latency itself is measured in ``benchmarks/cli_latency.py``, never asserted here.
"""

import ast
import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import jaxattn
from jaxattn import cli

HEAVY = ("jax", "diffrax", "equinox", "xarray", "optax", "matplotlib", "scipy", "s2fft")


def _fresh_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_cli_and_parser_import_nothing_heavy():
    """`import jaxattn.cli` and building every sub-parser load none of JAX, diffrax, xarray, optax, ..."""
    out = _fresh_python("import sys, json, jaxattn.cli as c; c.build_parser(); "
                        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    assert json.loads(out) == []


def test_help_and_argument_errors_in_a_fresh_process():
    for argv, rc in ((["--help"], 0), (["simulate", "--model", "nope"], 2), (["sweep"], 2)):
        res = subprocess.run([sys.executable, "-m", "jaxattn.cli", *argv], capture_output=True, text=True)
        assert res.returncode == rc, (argv, res.stderr)
    res = subprocess.run([sys.executable, "-m", "jaxattn.cli", "--version"], capture_output=True, text=True)
    assert res.stdout.strip() == f"jaxattn {jaxattn.__version__}"


def test_version_has_one_source():
    assert jaxattn.__version__ == version("jaxattn")
    toml = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in toml and "jaxattn._version.__version__" in toml


def _actions(parser, path=()):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, path + (name,))
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield path, action


def test_every_option_has_help_and_shows_its_default():
    parser = cli.build_parser()
    for path, action in _actions(parser):
        assert action.help, f"jaxattn {' '.join(path)} {action.dest}: no help text"
    text = cli.build_parser()._subparsers._group_actions[0].choices["sweep"]._subparsers._group_actions[0] \
        .choices["phase-diagram"].format_help()
    assert "(default: 128)" in " ".join(text.split())  # --d and --batch


def test_lazy_top_level_exports_agree():
    """The TYPE_CHECKING import block, _EXPORTS/_SUBMODULES and __all__ list the same names, and each resolves."""
    tree = ast.parse(Path(jaxattn.__file__).read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    static = {}
    for node in block.body:
        for alias in node.names:
            static[alias.name] = node.module or "<submodule>"
    runtime = {**{k: v for k, v in jaxattn._EXPORTS.items()}, **dict.fromkeys(jaxattn._SUBMODULES, "<submodule>")}
    assert static == runtime
    assert set(jaxattn.__all__) == set(runtime)
    for name in jaxattn.__all__:
        assert getattr(jaxattn, name) is not None
    assert jaxattn.plot.animate is not None  # AttributeError before
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        jaxattn.nope


def test_import_jaxattn_still_means_float64():
    out = _fresh_python("import jaxattn, jax.numpy as jnp; print(jnp.ones(2).dtype)")
    assert out.strip() == "float64"


def test_simulate_usa_sphere_netcdf(tmp_path):
    """USA is gradient ascent of E_beta (paper 002 §3.3): the saved energy never decreases; tokens stay on
    S^2; the first saved state is the requested initial condition."""
    import jax

    out = tmp_path / "run.nc"
    assert cli.main(["simulate", "--model", "usa", "--n", "10", "--d", "3", "--beta", "1", "--t1", "3",
                     "--saves", "7", "--seed", "3", "--out", str(out), "--rtol", "1e-8", "--atol", "1e-8"]) == 0
    ds = xr.load_dataset(out)
    x = ds.x.values
    assert x.shape == (7, 10, 3) and ds.attrs["model"] == "usa"
    np.testing.assert_allclose(ds.t.values, np.linspace(0, 3, 7), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(x, axis=-1), 1.0, atol=1e-9)
    np.testing.assert_allclose(x[0], np.asarray(jaxattn.initial.uniform_sphere(jax.random.PRNGKey(3), 10, 3)), atol=1e-14)
    energy = np.asarray(jaxattn.analysis.interaction_energy(x, 1.0))
    assert np.all(np.diff(energy) > 0)
    assert out.with_suffix(".png").stat().st_size > 1000


def test_simulate_kuramoto_npz_order_parameter(tmp_path):
    """Kuramoto with identical frequencies (paper 002 eq. (6.2)): the order parameter |mean e^{i theta}| is
    non-decreasing (gradient flow of it squared)."""
    out = tmp_path / "k.npz"
    assert cli.main(["simulate", "--model", "kuramoto", "--n", "12", "--t1", "4", "--saves", "9",
                     "--out", str(out)]) == 0
    traj = jaxattn.load_trajectory(out)
    theta = np.asarray(traj.xs)
    assert theta.shape == (9, 12) and type(traj.field).__name__ == "Kuramoto"
    r = np.abs(np.exp(1j * theta).mean(axis=1))
    assert np.all(np.diff(r) >= -1e-7) and r[-1] > r[0]


def test_simulate_rejects_inconsistent_options(tmp_path, capsys):
    for argv, text in ((["--model", "circle", "--init", "sphere"], "--model circle needs --init circle"),
                       (["--model", "euclidean", "--causal"], "--causal applies to --model sa, usa and circle"),
                       (["--init", "frame", "--n", "5", "--d", "3"], "--init frame places the n tokens on n orthogonal axes: needs --n <= --d = 3")):
        assert cli.main(["simulate", *argv, "--out", str(tmp_path / "x.nc")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"jaxattn simulate: error: {text}") and err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())


def test_pde_circle_conserves_mass(tmp_path):
    assert cli.main(["pde", "circle", "--out", str(tmp_path), "--K", "48", "--beta", "2", "--t1", "0.05",
                     "--saves", "3"]) == 0
    ds = xr.load_dataset(tmp_path / "pde_circle.nc")
    dtheta = float(ds.theta[1] - ds.theta[0])
    np.testing.assert_allclose(ds.density.sum("theta").values * dtheta, 1.0, atol=1e-10)  # exact for trig polys
    assert ds.density.attrs["units"] == "1/rad" and np.all(ds.min_density > 0)
    assert (tmp_path / "pde_circle.png").stat().st_size > 1000


def test_pde_sphere_mass_and_growth(tmp_path):
    """S_0 = 1 (mass) is conserved; the perturbed zonal mode 2 grows for USA at beta = 5 (its linear rate
    is positive, jaxattn.spectral.linear)."""
    assert cli.main(["pde", "sphere", "--out", str(tmp_path), "--L", "6", "--beta", "5", "--t1", "0.1",
                     "--saves", "3", "--mode", "2"]) == 0
    ds = xr.load_dataset(tmp_path / "pde_sphere.nc")
    np.testing.assert_allclose(ds.power.sel(l=0).values, 1.0, atol=1e-10)
    assert float(ds.power.sel(l=2)[-1]) > float(ds.power.sel(l=2)[0])


def test_demo_animate_writes_a_gif(tmp_path, capsys):
    from PIL import Image

    gif = tmp_path / "demo.gif"
    assert cli.main(["demo", "--n", "6", "--t1", "2", "--output", str(tmp_path / "demo.png"),
                     "--animate", str(gif)]) == 0
    assert "clusters at t = 2" in capsys.readouterr().out
    with Image.open(gif) as im:
        # 401 saves, at most 80 frames spent where the tokens move, then the final state held for 1 s (15 frames)
        assert 30 < im.n_frames <= 80 + 15 and im.size[0] >= 480, (im.n_frames, im.size)


# ------------------------------------------------------------------------------------------ the error layer


def _one_line_error(err: str, command: str, text: str) -> None:
    assert err.startswith(f"jaxattn {command}: error: "), err
    assert text in err, (text, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_errors_are_one_line_in_a_fresh_process(tmp_path):
    """The console script itself (a subprocess): a value the library rejects (exit 2), a usage error found
    at parse time (exit 2), a missing run directory (exit 1); no traceback, nothing written."""
    cases = [
        (["simulate", "--beta", "-1", "--out", str(tmp_path / "a.nc")], 2, "simulate", "beta must be finite and > 0"),
        (["sweep", "gamma", "--betas", "1", "2", "nan", "--out", str(tmp_path / "g")], 2, "sweep gamma",
         "argument --betas: 'nan' is not finite"),
        (["sentiment", "explain", "good film", "--run-dir", str(tmp_path / "missing")], 1, "sentiment explain",
         "missing"),
    ]
    for argv, rc, command, text in cases:
        res = subprocess.run([sys.executable, "-m", "jaxattn.cli", *argv], capture_output=True, text=True)
        assert res.returncode == rc, (argv, res.returncode, res.stderr)
        _one_line_error(res.stderr, command, text)
    assert not list(tmp_path.iterdir())
    res = subprocess.run([sys.executable, "-m", "jaxattn.cli", "--debug", *cases[0][0]], capture_output=True,
                         text=True)
    assert res.returncode == 1 and "Traceback" in res.stderr  # --debug shows it


@pytest.mark.parametrize("argv, rc, command, text", [
    (["simulate", "--out", "x.txt"], 2, "simulate", "--out x.txt must end in .nc (netCDF) or .npz"),
    (["simulate", "--saves", "200000000", "--out", "x.nc"], 2, "simulate",
     "--saves 200000000 would store 200000000 x 32 x 3 float64 states = 154 GB"),
    (["pde", "circle", "--amplitude", "5", "--out", "pde"], 2, "pde circle",
     "--amplitude 5 makes the initial density (1 + 2 a cos(k theta)) / (2 pi) negative: use a value in [-0.5, 0.5]"),
    (["pde", "sphere", "--amplitude", "-3", "--mode", "2", "--out", "pde"], 2, "pde sphere",
     "use a value in [-1, 2]"),  # 1 + a P_2 >= 0 with P_2 in [-1/2, 1]
    (["pde", "sphere", "--mode", "9", "--L", "4", "--out", "pde"], 2, "pde sphere", "--mode must be in 1..3"),
    (["demo", "--animate", "x.png"], 2, "demo", "--animate writes .gif or .mp4 files"),
    (["simulate", "--t1", "inf"], 2, "simulate", "argument --t1: 'inf' is not finite"),
    (["simulate", "--n", "0"], 2, "simulate", "argument --n: 0 is out of range: give an integer >= 1"),
    (["simulate", "--rtol", "0"], 2, "simulate", "argument --rtol: 0 is out of range: give a number > 0"),
])
def test_wrong_input_is_one_line_and_leaves_no_file(tmp_path, monkeypatch, capsys, argv, rc, command, text):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("jaxattn._demo._memory_bytes", lambda: 64 * 10**9)  # the message's numbers, any machine
    try:
        code = cli.main(argv)
    except SystemExit as exit:  # argparse's usage errors
        code = exit.code
    assert code == rc
    _one_line_error(capsys.readouterr().err, command, text)
    assert not list(tmp_path.iterdir())  # validated before anything is written


def test_parser_defaults_never_shadow_an_option():
    """set_defaults of a sub-command (func, on_interrupt) must not override an option of the same name: a
    default ``resume`` once turned every ``sentiment train`` into ``--resume``."""
    parser = cli.build_parser()
    assert parser.parse_args(["sentiment", "train"]).resume is False
    assert parser.parse_args(["sentiment", "train", "--resume"]).resume is True
    for path, action in _actions(parser):
        sub = parser
        for word in path:
            sub = next(a for a in sub._actions if isinstance(a, __import__("argparse")._SubParsersAction)).choices[word]
        assert action.dest not in sub._defaults, (path, action.dest)


def test_every_numeric_option_rejects_non_finite_numbers_at_parse_time():
    """One type helper for every numeric option: none is a bare float/int, and each refuses nan/inf."""
    import argparse

    bare = [(path, a.dest) for path, a in _actions(cli.build_parser()) if a.type in (float, int)]
    assert not bare, f"options parsed with a bare float/int (use cli.FLOAT/POSITIVE/COUNT/INDEX): {bare}"
    for helper in (cli.FLOAT, cli.POSITIVE, cli.COUNT, cli.INDEX):
        for text in ("nan", "inf", "-inf", "abc"):
            with pytest.raises(argparse.ArgumentTypeError):
                helper(text)
    assert cli.FLOAT("-2.5") == -2.5 and cli.COUNT("3") == 3 and cli.INDEX("0") == 0


def test_every_figure_command_takes_dpi_and_format_and_out_says_file_or_dir():
    parser = cli.build_parser()
    actions = {}
    for path, action in _actions(parser):
        actions.setdefault(path, {})[action.dest] = action
    draws = [p for p in actions if p and p[0] in ("demo", "simulate", "pde", "sweep", "causal") or p == ("sentiment", "report")]
    assert len(draws) >= 8
    for path in draws:
        assert {"dpi", "format"} <= set(actions[path]), path
        assert actions[path]["format"].choices == ("png", "svg", "pdf")
    for path, opts in actions.items():
        out = opts.get("output" if path == ("demo",) else "out")
        if out is not None:
            assert out.metavar == ("FILE" if path[0] in ("demo", "simulate") else "DIR"), (path, out.metavar)


def test_library_failures_are_one_line_with_exit_1(tmp_path, capsys, monkeypatch):
    """A failure that is not a wrong value (a solver's step limit, a full disk) exits 1 with its class named."""
    import errno

    monkeypatch.setattr(xr.Dataset, "to_netcdf", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    assert cli.main(["simulate", "--n", "4", "--t1", "0.1", "--saves", "2", "--out", str(tmp_path / "r.nc")]) == 1
    _one_line_error(capsys.readouterr().err, "simulate", "r.nc: the disk is full")
    assert not (tmp_path / "r.nc").exists()


@pytest.mark.slow
def test_a_changed_sweep_grid_is_one_line(tmp_path, capsys):
    argv = ["sweep", "phase-diagram", "--out", str(tmp_path), "--t1", "0.2", "--saves", "2", "--n", "3", "--d", "3",
            "--batch", "2"]
    assert cli.main([*argv, "--betas", "1", "2", "2"]) == 0
    capsys.readouterr()
    assert cli.main([*argv, "--betas", "1", "3", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxattn sweep phase-diagram: error: ") and err.count("\n") == 1, err


@pytest.mark.slow
def test_ctrl_c_exits_130_with_one_line(tmp_path):
    """SIGINT during a resumable sweep: exit 130, one line saying to rerun the same command."""
    import signal
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "jaxattn.cli", "sweep", "phase-diagram", "--out", str(out), "--betas", "1", "9",
           "4000", "--t1", "20", "--n", "16", "--d", "3", "--batch", "8"]
    with open(tmp_path / "stderr.txt", "w") as err_file:  # a file, not a pipe: the progress bar never blocks
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err_file, text=True)
        deadline = time.time() + 300
        while time.time() < deadline and not list(out.glob("points/*.nc")):  # until a first point is stored
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    err = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == "jaxattn sweep phase-diagram: interrupted; rerun the same command to resume"
    assert "Traceback" not in err
    assert 0 < len(list(out.glob("points/*.nc"))) < 4000  # stopped part-way; what was stored stays for the rerun
