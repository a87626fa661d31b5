"""The sweep engine: datasets, atomic resumable storage (real SIGINT/SIGKILL of a sweep
subprocess), device sharding (4 forced host devices vs 1), input errors."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import jaxattn
from jaxattn import io
from jaxattn.studies import sweep as sw

# A real sweep: each point is a batched SA ensemble solve reduced to clustered-pair
# fractions on a time grid. The worker logs every point it computes (to count
# recomputations) and sleeps a little so that the test can interrupt it mid-way.
WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    import jax, jax.numpy as jnp, numpy as np, xarray as xr
    import jaxattn
    from jaxattn.analysis import clustered_pair_fraction
    from jaxattn.studies.sweep import run_sweep, solve_ensemble

    directory, log, pause = sys.argv[1], sys.argv[2], float(sys.argv[3])

    def point(seed, beta):
        x0 = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(seed), 6, 3, batch=5)
        ts = jnp.linspace(0.0, 4.0, 5)
        obs = solve_ensemble(jaxattn.SelfAttention(beta), x0, 4.0, ts=ts,
                             observe=lambda ts, xs: {"p": clustered_pair_fraction(xs, 1e-2),
                                                     "x": xs[:, -1]})
        with open(log, "a") as fh:
            fh.write(json.dumps({"seed": seed, "beta": beta}) + "\\n")
        time.sleep(pause)
        return xr.Dataset({"p": (("member", "t"), obs["p"]),
                           "x_final": (("member", "token", "dim"), obs["x"])},
                          coords={"t": np.asarray(ts)})

    run_sweep(point, {"beta": [0.5, 2.0, 4.0]}, seeds=[0, 1, 2], directory=directory,
              name="demo", attrs={"n": 6, "d": 3}, progress=False)
    print("DONE")
    """
)

GRID = {"beta": [0.5, 2.0, 4.0]}
SEEDS = [0, 1, 2]


def _worker_point():
    """The worker's point function, importable in-process (same code path)."""
    ns = {}
    src = WORKER.split("run_sweep(point")[0].replace(
        "directory, log, pause = sys.argv[1], sys.argv[2], float(sys.argv[3])", "")
    exec(src, ns)  # noqa: S102 - the test's own worker source
    return ns


def _start(script, directory, log, pause, env=None):
    return subprocess.Popen([sys.executable, str(script), str(directory), str(log), str(pause)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _wait_for_points(directory, count, proc, timeout=120):
    start = time.time()
    while time.time() - start < timeout:
        files = list((Path(directory) / "points").glob("p*.nc"))
        if len(files) >= count:
            return files
        if proc.poll() is not None:
            raise AssertionError(f"worker ended early: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError("worker too slow")


def test_killed_sweep_resumes_without_recomputing(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    run_dir, log = tmp_path / "run", tmp_path / "computed.jsonl"
    total = len(GRID["beta"]) * len(SEEDS)

    # 1) SIGINT (KeyboardInterrupt) after >= 2 points, 2) SIGKILL after >= 5 points
    for sig, count in ((signal.SIGINT, 2), (signal.SIGKILL, 5)):
        proc = _start(script, run_dir, log, pause=0.25)
        _wait_for_points(run_dir, count, proc)
        proc.send_signal(sig)
        proc.wait(timeout=60)
        assert proc.returncode != 0
        assert list((run_dir / "points").glob("*.tmp")) == []  # nothing half-written is left
        assert not (run_dir / "demo.nc").exists()
    before = {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in (run_dir / "points").glob("p*.nc")}
    assert 5 <= len(before) < total
    computed_before = len(log.read_text().splitlines())

    # 3) restart with the same arguments: only the missing points are computed
    proc = _start(script, run_dir, log, pause=0.0)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"DONE" in out
    after = {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in (run_dir / "points").glob("p*.nc")}
    assert len(after) == total
    assert all(after[name] == before[name] for name in before)  # finished points untouched
    assert len(log.read_text().splitlines()) - computed_before == total - len(before)
    # every point was computed once, plus at most the one in flight at each interruption
    assert total <= len(log.read_text().splitlines()) <= total + 2

    # 4) the same dataset as an uninterrupted run (in-process, fresh directory)
    ns = _worker_point()
    ns["log"], ns["pause"] = str(tmp_path / "ref.jsonl"), 0.0
    ref = sw.run_sweep(ns["point"], GRID, seeds=SEEDS, directory=tmp_path / "ref", name="demo",
                       attrs={"n": 6, "d": 3}, progress=False)
    resumed = xr.load_dataset(run_dir / "demo.nc")
    xr.testing.assert_identical(resumed, ref)
    assert resumed.p.dims == ("beta", "seed", "member", "t")
    assert resumed.attrs["n"] == 6 and json.loads(resumed.attrs["sweep_grid"]) == GRID
    # physics sanity: at small beta the clustered fraction grows with t (Thm 5.2 regime)
    assert float(resumed.p.sel(t=4.0, beta=0.5).mean()) > float(resumed.p.sel(t=0.0, beta=0.5).mean()) + 0.2

    # 5) a finished sweep re-run returns the stored result without computing anything
    n_log = len(log.read_text().splitlines())
    again = sw.run_sweep(ns["point"], GRID, seeds=SEEDS, directory=tmp_path / "ref", name="demo",
                         attrs={"n": 6, "d": 3}, progress=False)
    xr.testing.assert_identical(again, ref)
    assert len(log.read_text().splitlines()) == n_log

    # 6) other arguments in the same directory are refused
    with pytest.raises(sw.SweepMismatchError):
        sw.run_sweep(ns["point"], {"beta": [0.5]}, seeds=SEEDS, directory=tmp_path / "ref", name="demo",
                     attrs={"n": 6, "d": 3}, progress=False)


DEVICE_SCRIPT = textwrap.dedent(
    """
    import sys
    import jax, jax.numpy as jnp, numpy as np
    import jaxattn
    from jaxattn.studies.sweep import shard_ensemble, solve_ensemble
    x0 = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(3), 6, 3, batch=5)
    xs, batch = shard_ensemble(x0)
    assert batch == 5 and xs.shape[0] % len(jax.devices()) == 0
    obs = solve_ensemble(jaxattn.SelfAttention(3.0), x0, 4.0, ts=jnp.linspace(0.0, 4.0, 5),
                         observe=lambda ts, xs: {"x": xs})
    np.savez(sys.argv[1], x=obs["x"], steps=obs["num_steps"], devices=len(jax.devices()),
             shards=len(xs.sharding.device_set))
    """
)


def test_four_devices_equal_one_device(tmp_path):
    script = tmp_path / "devices.py"
    script.write_text(DEVICE_SCRIPT)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    out4 = tmp_path / "four.npz"
    subprocess.run([sys.executable, str(script), str(out4)], env=env, check=True, capture_output=True,
                   timeout=180)
    four = np.load(out4)
    assert int(four["devices"]) == 4 and int(four["shards"]) == 4  # really sharded over 4
    # the one-device run, in this process (same shapes as the sweep worker: one compilation)
    x0 = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(3), 6, 3, batch=5)
    one = sw.solve_ensemble(jaxattn.SelfAttention(3.0), x0, 4.0, ts=jnp.linspace(0.0, 4.0, 5),
                            observe=lambda ts, xs: {"x": xs})
    assert four["x"].shape == one["x"].shape == (5, 5, 6, 3)
    assert int(four["steps"]) == int(one["num_steps"])
    np.testing.assert_allclose(four["x"], one["x"], rtol=0, atol=1e-13)
    with pytest.raises(ValueError, match="member axis"):  # observables must keep the member axis
        sw.solve_ensemble(jaxattn.SelfAttention(3.0), x0, 4.0, ts=jnp.linspace(0.0, 4.0, 5),
                          observe=lambda ts, xs: jnp.mean(xs))


def test_grid_and_point_errors(tmp_path):
    def point(seed, beta):
        return xr.Dataset({"v": ("t", np.array([beta, seed], float))})

    with pytest.raises(TypeError):
        sw.run_sweep(point, {"beta": [np.eye(2)]}, directory=tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="repeated"):
        sw.run_sweep(point, {"beta": [1.0, 1.0]}, directory=tmp_path / "b", progress=False)
    with pytest.raises(ValueError, match="reserved"):
        sw.run_sweep(point, {"seed": [1]}, directory=tmp_path / "c", progress=False)
    with pytest.raises(TypeError, match="xarray"):
        sw.run_sweep(lambda seed, beta: 1.0, {"beta": [1.0]}, directory=tmp_path / "d", progress=False)

    def nan_point(seed, beta):
        return xr.Dataset({"v": ("t", np.array([np.nan]))})

    with pytest.raises(ValueError, match="NaN"):
        sw.run_sweep(nan_point, {"beta": [1.0]}, directory=tmp_path / "e", progress=False)
    ds = sw.run_sweep(point, {"beta": [2.0, 1.0]}, seeds=2, directory=tmp_path / "f", progress=False)
    assert list(ds.beta.values) == [2.0, 1.0]  # grid order is kept, not sorted
    np.testing.assert_array_equal(ds.v.sel(beta=1.0, seed=1).values, [1.0, 1.0])


def test_concurrent_run_of_one_directory_is_refused(tmp_path):
    held = io.lock_directory(tmp_path)  # as if another process were running this sweep
    try:
        with pytest.raises(RuntimeError, match="another process"):
            sw.run_sweep(lambda seed, beta: xr.Dataset({"v": beta}), {"beta": [1.0]}, directory=tmp_path,
                         progress=False)
    finally:
        held.close()
    ds = sw.run_sweep(lambda seed, beta: xr.Dataset({"v": beta}), {"beta": [1.0]}, directory=tmp_path,
                      progress=False)
    assert float(ds.v.item()) == 1.0


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "x.nc"
    io.atomic_write_netcdf(xr.Dataset({"a": ("i", [1.0, 2.0])}), path)

    def boom(self, *args, **kwargs):
        Path(args[0]).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", boom)
    with pytest.raises(OSError):
        io.atomic_write_netcdf(xr.Dataset({"a": ("i", [3.0])}), path)
    monkeypatch.undo()
    assert xr.load_dataset(path).a.values.tolist() == [1.0, 2.0]  # old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["x.nc"]  # no temp file left
