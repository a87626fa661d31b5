"""Sweeps shared by several real processes on this machine (docs/scaling.md).

* 2 processes of one ``jax.distributed`` job (gloo CPU collectives, 2 forced host devices each,
  coordinator on a free 127.0.0.1 port) split a sweep and merge it once; the merged dataset is
  identical to a one-process run, and one ensemble sharded over all 4 devices of both processes
  takes the same steps and gives the same states as a one-device solve;
* 3 processes of a ``jax.distributed`` job are SIGKILLed mid-way (each holds a claim); a rerun
  with 2 processes takes the dead claims over and completes: every point computed exactly once;
* 3 independent processes (no coordinator) on one directory, one of them SIGKILLed while it holds
  a claim: the two others take its point over; every point computed exactly once, merged once.

Every computation leaves a marker file (``done-<seed>-<beta>-<pid>-<token>``) written after the
point is computed and before it is returned; a worker told to block does so *before* computing,
creates ``waiting-<pid>`` and waits for a signal that never comes, so the test kills it at a known
place (no sleeps racing the scheduler). Workers are always killed in ``finally``.
"""

import functools
import json
import os
import signal
import socket
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
from jaxattn import sweeps as sw
from jaxattn.io import strip_provenance
from jaxattn.solve import solve_ensemble

WORKER = textwrap.dedent(
    """
    import functools, json, os, sys, time, uuid
    from pathlib import Path
    mode, port, nproc, rank, directory, log, block_after, kind = sys.argv[1:9]
    nproc, rank, block_after = int(nproc), int(rank), int(block_after)
    import jax
    if mode == "dist":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=nproc,
                                   process_id=rank)
    import jax.numpy as jnp, numpy as np, xarray as xr
    import jaxattn
    from jaxattn import sweeps as sw
    from jaxattn.solve import solve_global_ensemble
    from jaxattn.sweeps import engine

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from points import GRID, SEEDS, solve_point, cheap_point

    merge_points = engine.merge_points
    def counted_merge(*args, **kwargs):  # count the merges
        Path(log, f"merged-{os.getpid()}").touch()
        return merge_points(*args, **kwargs)
    engine.merge_points = counted_merge

    def gate():
        mine = len(list(Path(log).glob(f"done-*-{os.getpid()}-*")))
        if 0 <= block_after <= mine:
            Path(log, f"waiting-{os.getpid()}").touch()
            while not Path(log, "never").exists():
                time.sleep(0.01)

    def marked(fn):
        def point(seed, beta, scale):
            gate()
            ds = fn(seed, beta, scale)
            Path(log, f"done-{seed}-{beta}-{os.getpid()}-{uuid.uuid4().hex[:6]}").touch()
            return ds
        return point

    fn = functools.partial(marked(solve_point if kind == "solve" else cheap_point), scale=1.0)
    ds = sw.run_sweep(fn, GRID, seeds=SEEDS, directory=directory, name="demo", attrs={"n": 6},
                      progress=False, poll_interval=0.02)
    if kind == "solve":  # one ensemble over every process's devices
        x0 = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(3), 6, 3, batch=5)
        part = x0[:3] if jax.process_index() == 0 else x0[3:]
        obs = solve_global_ensemble(jaxattn.SelfAttention(3.0), part, 4.0, ts=jnp.linspace(0.0, 4.0, 5),
                                       observe=lambda t, x: {"x": x})
        np.savez(Path(log, f"global-{rank}.npz"), x=obs["x"], steps=obs["num_steps"],
                 devices=len(jax.devices()), local=len(jax.local_devices()))
    print("DONE", jax.process_count(), len(jax.devices()), flush=True)
    """
)

POINTS = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np, xarray as xr
    import jaxattn
    from jaxattn.analysis import clustered_pair_fraction
    from jaxattn.solve import solve_ensemble

    GRID = {"beta": [0.5, 2.0, 4.0]}
    SEEDS = [0, 1, 2]

    def solve_point(seed, beta, scale):  # a batched SA ensemble on this process's devices
        x0 = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(seed), 6, 3, batch=5)
        ts = jnp.linspace(0.0, 4.0, 5)
        obs = solve_ensemble(jaxattn.SelfAttention(scale * beta), x0, 4.0, ts=ts,
                             observe=lambda t, x: {"p": clustered_pair_fraction(x, 1e-2), "x": x})
        return xr.Dataset({"p": (("member", "t"), obs["p"]), "x_final": (("member", "token", "dim"), obs["x"][:, -1]),
                           "steps": obs["num_steps"]}, coords={"t": np.asarray(ts)})

    def cheap_point(seed, beta, scale):  # deterministic, no solve: for the kill tests
        rng = np.random.default_rng(seed)
        return xr.Dataset({"v": ("k", scale * beta * rng.standard_normal(4))})
    """
)

TOTAL = 9


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def workspace(tmp_path):
    (tmp_path / "worker.py").write_text(WORKER)
    (tmp_path / "points.py").write_text(POINTS)
    (tmp_path / "log").mkdir()
    procs = []
    yield tmp_path, procs
    for p in procs:  # always cleaned up, whatever happened
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)
        for stream in (p.stdout, p.stderr):
            if stream is not None:
                stream.close()


def _start(ws, procs, mode, nproc, rank, block_after=-1, kind="cheap", port=0, devices=2):
    tmp, _ = ws, None
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               JAX_PLATFORMS="cpu")
    p = subprocess.Popen([sys.executable, str(tmp / "worker.py"), mode, str(port), str(nproc), str(rank),
                          str(tmp / "run"), str(tmp / "log"), str(block_after), kind],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    procs.append(p)
    return p


def _wait_until(condition, procs, what, timeout=240):
    start = time.time()
    while not condition():
        for p in procs:
            if p.poll() is not None and p.returncode != 0:
                raise AssertionError(f"a worker died waiting for {what}: {p.communicate()[1].decode()[-3000:]}")
        if time.time() - start > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _finish(procs, timeout=240):
    for p in procs:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            raise
        assert p.returncode == 0, err.decode()[-3000:]
        assert b"DONE" in out


def _computed(log):
    names = [f.name.split("-") for f in Path(log).glob("done-*")]
    return sorted((int(n[1]), float(n[2])) for n in names)


def _reference(tmp_path, kind):
    sys.path.insert(0, str(tmp_path))
    try:
        import points  # the workers' point functions, in this process
    finally:
        sys.path.remove(str(tmp_path))
    fn = points.solve_point if kind == "solve" else points.cheap_point
    ref = sw.run_sweep(functools.partial(fn, scale=1.0), points.GRID, seeds=points.SEEDS,
                       directory=tmp_path / f"ref-{kind}", name="demo", attrs={"n": 6}, progress=False)
    # the workers' point function wraps fn with markers: another function, the same data
    return _without_identity(ref)


def _without_identity(ds):
    ds = strip_provenance(ds)
    return ds.drop_attrs(deep=False).assign_attrs({k: v for k, v in ds.attrs.items() if k != "sweep_function"})


def _merged(run):
    return _without_identity(xr.load_dataset(run / "demo.nc"))


ALL_POINTS = sorted((s, b) for b in (0.5, 2.0, 4.0) for s in (0, 1, 2))


@pytest.mark.slow  # a long end-to-end run; the default suite keeps the shorter checks
def test_two_process_jax_distributed_sweep_equals_one_process(workspace):
    tmp, procs = workspace
    port = _free_port()
    workers = [_start(tmp, procs, "dist", 2, rank, kind="solve", port=port) for rank in range(2)]
    _finish(workers)
    assert _computed(tmp / "log") == ALL_POINTS                     # each point once
    assert len(list((tmp / "log").glob("merged-*"))) == 1          # merged once (by process 0)
    pids = {f.name.split("-")[3] for f in (tmp / "log").glob("done-*")}
    assert len(pids) == 2                                           # both processes computed points
    merged = _merged(tmp / "run")
    ref = _reference(tmp, "solve")
    xr.testing.assert_identical(merged, ref)
    # one ensemble over 2 processes x 2 devices: same steps, same states as one device here
    g0, g1 = (np.load(tmp / "log" / f"global-{r}.npz") for r in range(2))
    assert int(g0["devices"]) == 4 and int(g0["local"]) == 2
    x0 = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(3), 6, 3, batch=5)
    one = solve_ensemble(jaxattn.SelfAttention(3.0), x0, 4.0, ts=jnp.linspace(0.0, 4.0, 5),
                         observe=lambda t, x: {"x": x})
    assert g0["x"].shape == one["x"].shape == (5, 5, 6, 3)
    assert int(g0["steps"]) == int(g1["steps"]) == int(one["num_steps"])
    np.testing.assert_array_equal(g0["x"], g1["x"])
    np.testing.assert_allclose(g0["x"], one["x"], rtol=0, atol=1e-13)


def test_killed_distributed_job_is_completed_by_a_rerun(workspace):
    tmp, procs = workspace
    port = _free_port()
    job = [_start(tmp, procs, "dist", 3, rank, block_after=1, port=port) for rank in range(3)]
    # each process computes its first point, claims its next one and blocks before computing it
    _wait_until(lambda: all((tmp / "log" / f"waiting-{p.pid}").exists() for p in job), job, "3 blocked workers")
    job[1].send_signal(signal.SIGKILL)  # one process dies mid-way ...
    job[1].wait(timeout=30)
    for p in (job[0], job[2]):          # ... and the job with it (as SLURM ends a job whose task failed)
        p.kill()
        p.wait(timeout=30)
    assert len(_computed(tmp / "log")) == 3
    held = [c for c in (tmp / "run" / "claims").glob("p*.*") if c.stat().st_mtime > 0]
    assert len(held) == 3               # the dead processes' claims are still held (released ones: mtime 0)
    before = {f.name: f.stat().st_mtime_ns for f in (tmp / "run" / "points").glob("p*.nc")}
    assert len(before) == 3 and not (tmp / "run" / "demo.nc").exists()

    port = _free_port()                 # the rerun: 2 processes take the dead claims over at once
    rerun = [_start(tmp, procs, "dist", 2, rank, port=port) for rank in range(2)]
    _finish(rerun)
    assert _computed(tmp / "log") == ALL_POINTS                  # nothing lost, nothing computed twice
    assert len(list((tmp / "log").glob("merged-*"))) == 1
    after = {f.name: f.stat().st_mtime_ns for f in (tmp / "run" / "points").glob("p*.nc")}
    assert len(after) == TOTAL and all(after[k] == v for k, v in before.items())
    xr.testing.assert_identical(_merged(tmp / "run"), _reference(tmp, "cheap"))


def test_three_independent_processes_share_a_directory_and_take_over_a_dead_claim(workspace):
    tmp, procs = workspace
    blocked = _start(tmp, procs, "solo", 1, 0, block_after=0, devices=1)  # claims a point and blocks
    _wait_until(lambda: (tmp / "log" / f"waiting-{blocked.pid}").exists(), [blocked], "the blocked worker")
    others = [_start(tmp, procs, "solo", 1, 0, devices=1) for _ in range(2)]
    # the two others compute every other point, then wait on the blocked worker's live claim
    _wait_until(lambda: len(_computed(tmp / "log")) == TOTAL - 1, others, "8 points")
    assert not (tmp / "run" / "demo.nc").exists()
    blocked.send_signal(signal.SIGKILL)
    blocked.wait(timeout=30)
    _finish(others)                                               # they take the dead claim over
    assert _computed(tmp / "log") == ALL_POINTS                  # exactly once each
    assert len(list((tmp / "log").glob("merged-*"))) == 1        # merged once
    pids = {f.name.split("-")[3] for f in (tmp / "log").glob("done-*")}
    assert pids <= {str(p.pid) for p in others}                   # (how they split it is the scheduler's)
    xr.testing.assert_identical(_merged(tmp / "run"), _reference(tmp, "cheap"))
    assert json.loads((tmp / "run" / "manifest.json").read_text())["function"]["bound"]["keywords"] == \
        {"scale": 1.0}
