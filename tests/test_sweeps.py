"""The sweep engine (jaxattn.sweeps): datasets, atomic resumable storage (real SIGINT/SIGKILL of a sweep
subprocess), device sharding (4 forced host devices vs 1), input errors, and the identity checks that keep
a stale or misplaced point from ever being reused."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import jaxattn
from jaxattn.io import strip_provenance
from jaxattn import io
from jaxattn import sweeps as sw
from jaxattn.solve import shard_ensemble, solve_ensemble

# A real sweep: each point is a batched SA ensemble solve reduced to clustered-pair
# fractions on a time grid. The worker leaves a marker per point it computes (to count
# recomputations); told to block after `block_after` points of its own, it creates
# `waiting-<pid>` before computing the next one and waits for a file that never comes, so
# the test interrupts it at a known place (no sleep racing the scheduler).
WORKER = textwrap.dedent(
    """
    import json, os, sys, time, uuid
    from pathlib import Path
    import jax, jax.numpy as jnp, numpy as np, xarray as xr
    import jaxattn
    from jaxattn.analysis import clustered_pair_fraction
    from jaxattn.solve import solve_ensemble
    from jaxattn.sweeps import run_sweep

    directory, log, block_after = sys.argv[1], sys.argv[2], int(sys.argv[3])

    def point(seed, beta):
        if 0 <= block_after <= len(list(Path(log).glob(f"done-*-{os.getpid()}-*"))):
            Path(log, f"waiting-{os.getpid()}").touch()
            while not Path(log, "never").exists():
                time.sleep(0.01)
        x0 = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(seed), 6, 3, batch=5)
        ts = jnp.linspace(0.0, 4.0, 5)
        obs = solve_ensemble(jaxattn.SelfAttention(beta), x0, 4.0, ts=ts,
                             observe=lambda t, x: {"p": clustered_pair_fraction(x, 1e-2), "x": x})
        Path(log, f"done-{seed}-{beta}-{os.getpid()}-{uuid.uuid4().hex[:6]}").touch()
        return xr.Dataset({"p": (("member", "t"), obs["p"]),
                           "x_final": (("member", "token", "dim"), obs["x"][:, -1])},
                          coords={"t": np.asarray(ts)})

    run_sweep(point, {"beta": [0.5, 2.0, 4.0]}, seeds=[0, 1, 2], directory=directory,
              name="demo", attrs={"n": 6, "d": 3}, progress=False)
    print("DONE")
    """
)

GRID = {"beta": [0.5, 2.0, 4.0]}
SEEDS = [0, 1, 2]


def _worker_point(log):
    """The worker's point function, importable in-process (same code path)."""
    ns = {"__name__": "__main__"}  # the worker's module: the same function identity
    src = WORKER.split("run_sweep(point")[0].replace(
        "directory, log, block_after = sys.argv[1], sys.argv[2], int(sys.argv[3])",
        f"log, block_after = {str(log)!r}, -1")
    exec(src, ns)  # noqa: S102 - the test's own worker source
    return ns


def _start(script, directory, log, block_after):
    return subprocess.Popen([sys.executable, str(script), str(directory), str(log), str(block_after)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(path, proc, timeout=240):
    start = time.time()
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"worker ended early: {proc.communicate()}")
        if time.time() - start > timeout:
            raise AssertionError("worker too slow")
        time.sleep(0.02)


def _computed(log):
    return len(list(Path(log).glob("done-*")))


@pytest.mark.slow  # a long end-to-end run; the default suite keeps the shorter checks
def test_killed_sweep_resumes_without_recomputing(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    run_dir, log = tmp_path / "run", tmp_path / "log"
    log.mkdir()
    total = len(GRID["beta"]) * len(SEEDS)

    # 1) SIGINT (KeyboardInterrupt) after 2 points, 2) SIGKILL after 3 more: each time the
    # worker is blocked inside its next point, holding that point's claim
    for sig, count in ((signal.SIGINT, 2), (signal.SIGKILL, 3)):
        proc = _start(script, run_dir, log, block_after=count)
        try:
            _wait_for(log / f"waiting-{proc.pid}", proc)
            proc.send_signal(sig)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        assert proc.returncode != 0
        assert list((run_dir / "points").glob("*.tmp")) == []  # nothing half-written is left
        assert not (run_dir / "demo.nc").exists()
    before = {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in (run_dir / "points").glob("p*.nc")}
    assert len(before) == _computed(log) == 5

    # 3) restart with the same arguments: only the missing points are computed (the SIGKILLed
    # worker's claim is taken over at once: its pid is dead)
    proc = _start(script, run_dir, log, block_after=-1)
    try:
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"DONE" in out
    after = {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in (run_dir / "points").glob("p*.nc")}
    assert len(after) == total
    assert all(after[name] == before[name] for name in before)  # finished points untouched
    assert _computed(log) == total  # every point computed exactly once

    # 4) the same dataset as an uninterrupted run (in-process, fresh directory)
    (tmp_path / "ref-log").mkdir()
    ns = _worker_point(tmp_path / "ref-log")
    ref = sw.run_sweep(ns["point"], GRID, seeds=SEEDS, directory=tmp_path / "ref", name="demo",
                       attrs={"n": 6, "d": 3}, progress=False)
    resumed = xr.load_dataset(run_dir / "demo.nc")
    xr.testing.assert_identical(strip_provenance(resumed), strip_provenance(ref))
    assert resumed.p.dims == ("beta", "seed", "member", "t")
    assert resumed.attrs["n"] == 6 and json.loads(resumed.attrs["sweep_grid"]) == GRID
    # physics sanity: at small beta the clustered fraction grows with t (Thm 5.2 regime)
    assert float(resumed.p.sel(t=4.0, beta=0.5).mean()) > float(resumed.p.sel(t=0.0, beta=0.5).mean()) + 0.2

    # 5) a finished sweep re-run returns the stored result without computing anything
    n_log = _computed(tmp_path / "ref-log")
    again = sw.run_sweep(ns["point"], GRID, seeds=SEEDS, directory=tmp_path / "ref", name="demo",
                         attrs={"n": 6, "d": 3}, progress=False)
    xr.testing.assert_identical(again, ref)
    assert _computed(tmp_path / "ref-log") == n_log

    # 6) other arguments in the same directory are refused
    with pytest.raises(sw.SweepMismatchError):
        sw.run_sweep(ns["point"], {"beta": [0.5]}, seeds=SEEDS, directory=tmp_path / "ref", name="demo",
                     attrs={"n": 6, "d": 3}, progress=False)


DEVICE_SCRIPT = textwrap.dedent(
    """
    import sys
    import jax, jax.numpy as jnp, numpy as np
    import jaxattn
    from jaxattn.solve import shard_ensemble, solve_ensemble
    x0 = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(3), 6, 3, batch=5)
    xs, batch = shard_ensemble(x0)
    assert batch == 5 and xs.shape[0] % len(jax.devices()) == 0
    obs = solve_ensemble(jaxattn.SelfAttention(3.0), x0, 4.0, ts=jnp.linspace(0.0, 4.0, 5),
                         observe=lambda t, x: {"x": x})
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
    one = solve_ensemble(jaxattn.SelfAttention(3.0), x0, 4.0, ts=jnp.linspace(0.0, 4.0, 5),
                         observe=lambda t, x: {"x": x})
    assert four["x"].shape == one["x"].shape == (5, 5, 6, 3)
    assert int(four["steps"]) == int(one["num_steps"])
    np.testing.assert_allclose(four["x"], one["x"], rtol=0, atol=1e-13)
    with pytest.raises(ValueError, match="member axis"):  # observables must keep the member axis
        solve_ensemble(jaxattn.SelfAttention(3.0), x0, 4.0, ts=jnp.linspace(0.0, 4.0, 5),
                       observe=lambda t, x: jnp.mean(x))


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


def test_claims_admit_one_owner_and_take_over_dead_expired_or_released_ones(tmp_path):
    import threading

    first = sw.claim(tmp_path, "p1", expiry=60.0)
    assert first is not None and first.path.name == "p1.0"
    assert sw.claim(tmp_path, "p1", expiry=60.0) is None          # held (live owner): refused
    first.release()                                                # released: taken at once
    second = sw.claim(tmp_path, "p1", expiry=60.0)
    assert second.path.name == "p1.1" and first.lost() and not first.renew()

    def foreign(key, owner, age):
        path = tmp_path / f"{key}.0"
        path.write_text(json.dumps(owner))
        os.utime(path, (time.time() - age, time.time() - age))
        return sw.Claim(path)

    other_host = {"host": "elsewhere", "boot": "b", "pid": 1}
    foreign("q", other_host, age=10.0)                             # another machine, fresh heartbeat
    assert sw.claim(tmp_path, "q", expiry=60.0) is None
    old = foreign("r", other_host, age=120.0)                      # heartbeat older than the expiry
    assert sw.claim(tmp_path, "r", expiry=60.0).path.name == "r.1" and old.lost()
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(done.stdout)                                    # a process of this host that has ended
    foreign("s", {"host": io.HOST, "boot": io.BOOT, "pid": dead_pid}, age=0.0)
    assert sw.claim(tmp_path, "s", expiry=60.0).path.name == "s.1"  # dead owner here: at once

    # 16 racing takeovers of one stale claim: exactly one wins (O_CREAT | O_EXCL)
    foreign("t", other_host, age=120.0)
    start, won = threading.Barrier(16), []

    def race():
        start.wait()
        won.append(sw.claim(tmp_path, "t", expiry=60.0))

    threads = [threading.Thread(target=race) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(c is not None for c in won) == 1


def test_claim_is_renewed_while_a_point_is_computed(tmp_path):
    seen = []

    def slow_point(seed, beta):  # waits until the heartbeat has renewed its claim twice
        claim_file = tmp_path / "claims" / "p000000.0"
        first = claim_file.stat().st_mtime_ns
        deadline = time.time() + 60
        while len(seen) < 2 and time.time() < deadline:
            now = claim_file.stat().st_mtime_ns
            if now > (seen[-1] if seen else first):
                seen.append(now)
            time.sleep(0.01)
        return xr.Dataset({"v": beta})

    sw.run_sweep(slow_point, {"beta": [1.0]}, directory=tmp_path, progress=False, claim_expiry=0.2)
    assert len(seen) == 2
    assert (tmp_path / "claims" / "merge.0").stat().st_mtime == 0  # released after the merge


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


# --------------------------------------------------------------------------- storage faults

CALLS: list = []  # the points computed by the module-level point functions below


def _counted_point(seed, beta):
    CALLS.append((seed, beta))
    return xr.Dataset({"v": ("t", np.array([beta, seed], float))})


def _scaled_point(seed, beta, scale):
    CALLS.append((seed, beta, scale))
    return xr.Dataset({"v": ("t", np.array([scale * beta, seed], float))})


def test_zero_byte_and_truncated_point_files_are_moved_aside_and_recomputed(tmp_path):
    grid = {"beta": [1.0, 2.0, 3.0]}
    ref = sw.run_sweep(_counted_point, grid, seeds=2, directory=tmp_path, name="s", progress=False)
    files = sorted((tmp_path / "points").glob("p*.nc"))
    assert len(files) == 6
    files[0].write_bytes(b"")                                   # zero bytes
    files[3].write_bytes(files[3].read_bytes()[: files[3].stat().st_size // 2])  # truncated
    (tmp_path / "s.nc").unlink()
    CALLS.clear()
    with pytest.warns(UserWarning, match="unusable") as record:
        again = sw.run_sweep(_counted_point, grid, seeds=2, directory=tmp_path, name="s", progress=False)
    messages = " ".join(str(w.message) for w in record)
    assert files[0].name in messages and files[3].name in messages  # each bad file is named
    assert sorted(CALLS) == [(0, 1.0), (1, 2.0)]                # exactly the two bad points, once
    xr.testing.assert_identical(strip_provenance(again), strip_provenance(ref))  # rewritten: a new history
    aside = sorted(p.name for p in (tmp_path / "corrupt").iterdir())
    assert len(aside) == 2 and aside[0].startswith(files[0].name) and aside[1].startswith(files[3].name)
    CALLS.clear()  # a further rerun computes nothing and warns nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sw.run_sweep(_counted_point, grid, seeds=2, directory=tmp_path, name="s", progress=False)
    assert CALLS == []


def test_corrupt_manifest_names_the_file_and_the_fix(tmp_path):
    sw.run_sweep(_counted_point, {"beta": [1.0]}, directory=tmp_path, progress=False)
    (tmp_path / "manifest.json").write_text('{"name": "sweep", "grid": {"be')
    with pytest.raises(ValueError, match=r"manifest\.json.*not valid JSON.*delete"):
        sw.run_sweep(_counted_point, {"beta": [1.0]}, directory=tmp_path, progress=False)


def test_point_function_identity(tmp_path):
    import functools

    def ds(v):
        return xr.Dataset({"v": ("t", np.array([v]))})

    # two different lambdas in one directory: refused (it used to return the first one's results)
    sw.run_sweep(lambda seed, beta: ds(beta), {"beta": [1.0]}, directory=tmp_path / "a", progress=False)
    with pytest.raises(sw.SweepMismatchError, match="function"):
        sw.run_sweep(lambda seed, beta: ds(2 * beta), {"beta": [1.0]}, directory=tmp_path / "a",
                     progress=False)
    # closures over different values differ; over equal values match
    def make(scale):
        return lambda seed, beta: ds(scale * beta)

    assert sw.function_identity(make(2.0)) == sw.function_identity(make(2.0))
    assert sw.function_identity(make(2.0)) != sw.function_identity(make(3.0))

    def with_field(field):  # a closure over an equinox module: its array leaves count (repr: f64[])
        return lambda seed, beta: field

    assert sw.function_identity(with_field(jaxattn.SelfAttention(2.0))) == \
        sw.function_identity(with_field(jaxattn.SelfAttention(2.0)))
    assert sw.function_identity(with_field(jaxattn.SelfAttention(2.0))) != \
        sw.function_identity(with_field(jaxattn.SelfAttention(3.0)))
    # a functools.partial resumes (its repr holds a memory address) and differs by its bound arguments
    CALLS.clear()
    first = sw.run_sweep(functools.partial(_scaled_point, scale=2.0), {"beta": [1.0, 2.0]},
                         directory=tmp_path / "p", progress=False)
    again = sw.run_sweep(functools.partial(_scaled_point, scale=2.0), {"beta": [1.0, 2.0]},
                         directory=tmp_path / "p", progress=False)
    assert len(CALLS) == 2  # the second run computed nothing
    xr.testing.assert_identical(strip_provenance(first), strip_provenance(again))
    with pytest.raises(sw.SweepMismatchError, match="function"):
        sw.run_sweep(functools.partial(_scaled_point, scale=3.0), {"beta": [1.0, 2.0]},
                     directory=tmp_path / "p", progress=False)
    ident = sw.function_identity(functools.partial(_scaled_point, scale=2.0))
    assert ident["function"].endswith("_scaled_point") and ident["bound"]["keywords"] == {"scale": 2.0}
    assert "0x" not in json.dumps(ident)  # no memory address


def test_stale_temporary_files_are_removed(tmp_path):
    sw.run_sweep(_counted_point, {"beta": [1.0]}, directory=tmp_path, progress=False)
    old = tmp_path / "points" / ".p000000-abc.nc.otherhost.12345.deadbeef.tmp"
    dead = tmp_path / "points" / f".p000000-abc.nc.{io.HOST}.{2**22 + 7}.deadbeef.tmp"
    top = tmp_path / ".sweep.nc.otherhost.1.beef.tmp"
    for f in (old, dead, top):
        f.write_bytes(b"partial")
    os.utime(old, (0, 0))
    os.utime(top, (0, 0))
    sw.run_sweep(_counted_point, {"beta": [1.0]}, directory=tmp_path, progress=False)
    assert not old.exists() and not dead.exists() and not top.exists()


# --------------------------------------------------------------------------- never a stale or misplaced point


class _Scaled:
    """A callable object whose repr does not show its state (the identity must hash the state)."""

    def __init__(self, k):
        self.k = k

    def __call__(self, seed, beta):
        CALLS.append((seed, beta, self.k))
        return xr.Dataset({"v": ("t", np.array([self.k * beta, seed], float))})


def test_a_callable_object_is_identified_by_its_state(tmp_path):
    assert repr(_Scaled(1)).split(" at ")[0] == repr(_Scaled(2)).split(" at ")[0]
    assert sw.function_identity(_Scaled(1)) == sw.function_identity(_Scaled(1))
    assert sw.function_identity(_Scaled(1)) != sw.function_identity(_Scaled(2))
    first = sw.run_sweep(_Scaled(1), {"beta": [1.0, 2.0]}, directory=tmp_path, progress=False)
    with pytest.raises(sw.SweepMismatchError, match="function"):  # it used to return P(1)'s points
        sw.run_sweep(_Scaled(2), {"beta": [1.0, 2.0]}, directory=tmp_path, progress=False)
    np.testing.assert_array_equal(first.v.sel(t=0) if "t" in first.coords else first.v[..., 0],
                                  [[1.0], [2.0]])


def test_after_the_manifest_is_deleted_another_function_gets_no_old_point(tmp_path):
    ref = sw.run_sweep(_Scaled(1), {"beta": [1.0, 2.0]}, seeds=2, directory=tmp_path, name="s", progress=False)
    (tmp_path / "manifest.json").unlink()  # as the corrupt-manifest message suggests
    with pytest.raises(sw.SweepMismatchError, match="did not compute"):
        sw.run_sweep(_Scaled(2), {"beta": [1.0, 2.0]}, seeds=2, directory=tmp_path, name="s", progress=False)
    # the same function resumes: nothing recomputed, the same result (the refused run wrote its manifest:
    # remove it again, as its message says)
    (tmp_path / "manifest.json").unlink()
    (tmp_path / "s.nc").unlink()
    CALLS.clear()
    again = sw.run_sweep(_Scaled(1), {"beta": [1.0, 2.0]}, seeds=2, directory=tmp_path, name="s", progress=False)
    assert CALLS == []
    xr.testing.assert_identical(strip_provenance(again), strip_provenance(ref))  # merged again: a new history
    # every point file records its point and function, the merged file the function
    rec = sw.storage.point_record(xr.load_dataset(sorted((tmp_path / "points").glob("p*.nc"))[3]))
    assert rec[0] == 3 and rec[1] == {"beta": 2.0, "seed": 1}
    assert rec[2] == ref.attrs["sweep_function"] == sw.identity_hash(sw.function_identity(_Scaled(1)))


def test_a_point_file_copied_over_another_is_moved_aside_and_recomputed(tmp_path):
    ref = sw.run_sweep(_Scaled(1), {"beta": [1.0, 2.0, 3.0]}, directory=tmp_path, name="s", progress=False)
    files = sorted((tmp_path / "points").glob("p*.nc"))
    files[2].write_bytes(files[0].read_bytes())  # a valid point file, at the wrong place
    (tmp_path / "s.nc").unlink()
    CALLS.clear()
    with pytest.warns(UserWarning, match=r"holds point 0 .* not point 2"):
        again = sw.run_sweep(_Scaled(1), {"beta": [1.0, 2.0, 3.0]}, directory=tmp_path, name="s", progress=False)
    assert CALLS == [(0, 3.0, 1)]  # exactly the overwritten point, once
    xr.testing.assert_identical(strip_provenance(again), strip_provenance(ref))
    assert len(list((tmp_path / "corrupt").iterdir())) == 1


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/jaxattn-escaped", "a/b", "..", "", ".hidden"])
def test_a_sweep_name_is_a_plain_file_name(tmp_path, name):
    run_dir = tmp_path / "x" / "y"
    with pytest.raises(ValueError, match="plain file name"):
        sw.run_sweep(_counted_point, {"beta": [1.0]}, directory=run_dir, name=name, progress=False)
    assert not run_dir.exists()  # nothing written anywhere
    assert not Path("/tmp/jaxattn-escaped.nc").exists()


def test_an_empty_claim_file_is_taken_over_at_once_with_a_warning(tmp_path):
    # a claim file with no owner record (a writer killed between creating and writing it, a full disk)
    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / "p000000.0").write_bytes(b"")
    with pytest.warns(UserWarning, match="records no owner"):
        held = sw.claim(tmp_path / "claims", "p000000", expiry=300.0)  # it used to block for 300 s
    assert held is not None and held.path.name == "p000000.1"
    held.release()
    (tmp_path / "claims" / "p000001.0").write_text("{garbage")
    start = time.time()
    with pytest.warns(UserWarning, match="records no owner"):
        ds = sw.run_sweep(_counted_point, {"beta": [1.0, 2.0]}, directory=tmp_path, progress=False)
    assert time.time() - start < 60 and ds.v.shape == (2, 1, 2)
    # claims made by claim() are never seen without their owner: created complete, exclusively
    made = sw.claim(tmp_path / "claims", "q", expiry=300.0)
    assert json.loads(made.path.read_text())["pid"] == os.getpid()


class _PowerPoint(sw.AbstractPoint):
    identity_name = "tests.power"
    identity_version = 1
    exponent: float

    def __call__(self, seed: int, beta: float):
        CALLS.append((seed, beta, self.exponent))
        return xr.Dataset({"v": ((), beta ** self.exponent)})


def test_an_abstract_point_is_identified_by_its_declared_name_version_and_fields(tmp_path):
    class Moved(sw.AbstractPoint):  # another class, another module path, the same declared identity
        identity_name = "tests.power"
        identity_version = 1
        exponent: float

        def __call__(self, seed: int, beta: float):
            raise AssertionError("never called: every point is stored")

    class Bumped(Moved):
        identity_version = 2

    assert sw.function_identity(_PowerPoint(2.0)) == {"point": "tests.power", "version": 1,
                                                       "fields": {"exponent": 2.0}}
    assert sw.function_identity(Moved(2.0)) == sw.function_identity(_PowerPoint(2.0))
    assert sw.function_identity(_PowerPoint(3.0)) != sw.function_identity(_PowerPoint(2.0))
    ref = sw.run_sweep(_PowerPoint(2.0), {"beta": [2.0, 3.0]}, directory=tmp_path, progress=False)
    np.testing.assert_array_equal(ref.v.values[:, 0], [4.0, 9.0])
    (tmp_path / "sweep.nc").unlink()
    moved = sw.run_sweep(Moved(2.0), {"beta": [2.0, 3.0]}, directory=tmp_path, progress=False)
    xr.testing.assert_identical(strip_provenance(moved), strip_provenance(ref))  # resumable after a move
    with pytest.raises(sw.SweepMismatchError, match="function"):
        sw.run_sweep(Bumped(2.0), {"beta": [2.0, 3.0]}, directory=tmp_path, progress=False)


def test_a_deterministic_sweep_has_no_seed_axis(tmp_path):
    ds = sw.run_sweep(lambda beta: xr.Dataset({"v": ((), 2 * beta)}), {"beta": [1.0, 2.0]}, seeds=None,
                      directory=tmp_path, progress=False)
    assert ds.v.dims == ("beta",) and ds.v.values.tolist() == [2.0, 4.0]


def test_a_directory_of_an_older_storage_format_is_refused(tmp_path):
    sw.run_sweep(_counted_point, {"beta": [1.0]}, directory=tmp_path, progress=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    del manifest["format"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(sw.SweepMismatchError, match="older jaxattn"):
        sw.run_sweep(_counted_point, {"beta": [1.0]}, directory=tmp_path, progress=False)
