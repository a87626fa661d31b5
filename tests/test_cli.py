"""The ``jaxattn`` console script: fast start (no heavy imports before a command runs), help texts with
defaults, ``--version``, and the ``simulate``, ``pde`` and ``demo --animate`` commands at tiny sizes.

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
    data = np.load(out)
    theta = data["x"]
    assert theta.shape == (9, 12) and str(data["model"]) == "kuramoto"
    r = np.abs(np.exp(1j * theta).mean(axis=1))
    assert np.all(np.diff(r) >= -1e-7) and r[-1] > r[0]


def test_simulate_rejects_inconsistent_options(tmp_path):
    with pytest.raises(SystemExit, match="init circle"):
        cli.main(["simulate", "--model", "circle", "--init", "sphere", "--out", str(tmp_path / "x.nc")])
    with pytest.raises(SystemExit, match="causal"):
        cli.main(["simulate", "--model", "euclidean", "--causal", "--out", str(tmp_path / "x.nc")])


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
        assert im.n_frames == 60  # 101 saves, 60 frames by default
