"""Datasets people can read later (netCDF with CF attributes, provenance).

* ``Trajectory.save`` / ``jaxattn.load_trajectory`` round-trip exactly: every array bit for bit
  with its dtype, the field equal (``equinox.tree_equal``) and, as an independent check, the
  rebuilt field gives the same velocities as the original on a fresh configuration.
* Every variable (data and coordinate) of every netCDF file the library writes carries
  ``long_name``, ``units`` and ``description`` (CF conventions), and every file says what made it
  (``Conventions``, ``jaxattn_version``, ``source``, ``history``): the files are produced by the
  library's own writers (the console commands, the sweeps, ``Trajectory.save``) and walked
  (all of them: slow, about 1-3 minutes; the cheap writers in the default run).
* The phase-diagram file holds what its figure shows (``probability`` = the mean of
  ``pair_fraction`` over seeds and members, ``t_star`` from the gamma ODE), and
  ``causal_statistics`` returns a dataset with a ``member`` coordinate.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import jaxattn
from jaxattn import cli
from jaxattn.io import PROVENANCE, REQUIRED, describe, missing_attributes

KEY = jax.random.PRNGKey(3)


def _sphere(n=6, d=3, batch=None, dtype=jnp.float64):
    return jaxattn.initial.uniform_sphere(KEY, n, d, batch=batch, dtype=dtype)


def _cases():
    d = 3
    q = jax.random.normal(jax.random.PRNGKey(1), (2, d, d))
    return {
        "sa_qkv_ff_causal": (jaxattn.SelfAttention(2.0, Q=q[0], K=q[1], V=-jnp.eye(d), causal=True,
                                                   feedforward=jaxattn.FeedForward(0.1 * jnp.eye(d), jnp.ones(d))),
                             _sphere(), {}),
        "sa_two_heads": (jaxattn.SelfAttention(1.5, V=jnp.stack([jnp.eye(d), -jnp.eye(d)])), _sphere(), {}),
        "usa_time_rescaled": (jaxattn.UnnormalisedSelfAttention(3.0, time_rescaled=True), _sphere(), {}),
        "ensemble_vmap_stop_when": (jaxattn.SelfAttention(4.0), _sphere(batch=3),
                                    dict(ensemble="vmap", stop_when=lambda x: jaxattn.analysis.is_clustered(x, 0.5))),
        "ensemble_batched": (jaxattn.SelfAttention(1.0), _sphere(batch=2), dict(ensemble="batched")),
        "float32": (jaxattn.SelfAttention(1.0), _sphere(dtype=jnp.float32), {}),
        "euclidean": (jaxattn.EuclideanSelfAttention(jnp.eye(2), jnp.eye(2), -jnp.eye(2), beta=0.5),
                      jaxattn.initial.uniform_cube(KEY, 5, 2), {}),
        "rescaled": (jaxattn.RescaledSelfAttention(jnp.eye(2), jnp.eye(2), jnp.eye(2)),
                     jaxattn.initial.uniform_cube(KEY, 5, 2), {}),
        "circle_fourier": (jaxattn.CircleSelfAttention(3.0, evaluator="fourier"),
                           jaxattn.initial.uniform_circle(KEY, 7), {}),
        "kuramoto_omega": (jaxattn.Kuramoto(2.0, omega=jnp.linspace(-0.1, 0.1, 7)),
                           jaxattn.initial.uniform_circle(KEY, 7), {}),
        "frozen_centres": (jaxattn.FrozenCentresCircleAttention(4.0, jnp.array([0.0, 2.0]), jnp.array([1.0, 2.0])),
                           jaxattn.initial.uniform_circle(KEY, 7), {}),
    }


CASES = _cases()


def _assert_bit_identical(a, b, where):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (where, a.dtype, b.dtype, a.shape, b.shape)
    assert a.tobytes() == b.tobytes(), where


def _fake_trajectory(field, x0, kw):
    """A Trajectory of the shapes and dtypes simulate returns, without solving (storage is the point)."""
    batch = x0.shape[:1] if x0.ndim == field.event_ndim + 1 else ()
    shared = not batch or kw.get("ensemble") == "batched"
    solves = () if shared else batch
    ts = jnp.linspace(0.0, 1.0, 5, dtype=x0.dtype)
    xs = jnp.broadcast_to(jnp.expand_dims(x0, len(batch)), (*batch, 5, *x0.shape[len(batch):]))
    xs = xs + 1e-3 * jnp.sin(jnp.arange(xs.size, dtype=x0.dtype)).reshape(xs.shape)  # not round numbers
    steps = jnp.arange(1, 1 + int(np.prod(solves, dtype=int)), dtype=jnp.int64).reshape(solves) + 6
    return jaxattn.Trajectory(ts=ts, xs=xs, t_final=jnp.full(solves, 0.875, x0.dtype),
                              stats={"num_steps": steps, "num_accepted_steps": steps - 1,
                                     "num_rejected_steps": jnp.ones_like(steps)},
                              field=field, event_occurred=jnp.arange(int(np.prod(solves, dtype=int))).reshape(
                                  solves) % 2 == 0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_save_load_round_trip_is_exact(tmp_path, name):
    field, x0, kw = CASES[name]
    # one real solve (ensemble, per-member steps and events); the others store arrays of its shapes
    traj = (jaxattn.simulate(field, x0, 1.0, ts=5, **kw) if name == "ensemble_vmap_stop_when"
            else _fake_trajectory(field, x0, kw))
    path = traj.save(tmp_path / f"{name}.nc")
    back = jaxattn.load_trajectory(path)

    assert type(back) is type(traj) and type(back.field) is type(field)
    for attr in ("ts", "xs", "t_final", "event_occurred"):
        _assert_bit_identical(getattr(traj, attr), getattr(back, attr), attr)
    assert set(back.stats) == set(traj.stats)
    for k in traj.stats:
        _assert_bit_identical(traj.stats[k], back.stats[k], k)
    assert bool(eqx.tree_equal(traj.field, back.field))
    assert bool(eqx.tree_equal(traj, back))
    # an independent check that the field is the same model: equal velocities on a fresh configuration
    probe = x0[0] if traj.is_ensemble else x0
    probe = probe + 0.01 * jnp.cos(jnp.arange(probe.size, dtype=probe.dtype)).reshape(probe.shape)
    _assert_bit_identical(field(0.3, probe), back.field(0.3, probe), "velocity")
    # and it solves on: the reloaded trajectory's final state continues the same dynamics
    assert back.final.shape == traj.final.shape and back.is_ensemble == traj.is_ensemble


def test_to_xarray_layout_and_attributes():
    traj = _fake_trajectory(jaxattn.SelfAttention(2.0), _sphere(batch=2), dict(ensemble="vmap"))
    ds = traj.to_xarray()
    assert ds["x"].dims == ("member", "t", "token", "dim") and ds.sizes == {
        **ds.sizes, "member": 2, "t": 5, "token": 6, "dim": 3}
    np.testing.assert_array_equal(ds["t"].values, np.asarray(traj.ts))
    assert ds["num_steps"].dims == ("member",)
    assert ds.attrs["field_class"] == "SelfAttention" and ds.attrs["manifold"] == "sphere"
    assert missing_attributes(ds) == {}
    ds = _fake_trajectory(jaxattn.CircleSelfAttention(1.0), jaxattn.initial.uniform_circle(KEY, 5), {}).to_xarray()
    assert ds["theta"].dims == ("t", "token") and ds["theta"].attrs["units"] == "rad"
    assert missing_attributes(ds) == {}


class _MyField(jaxattn.AbstractField):
    """dx_i/dt = -a x_i in R^d (not a built-in field)."""

    a: jax.Array
    manifold = "euclidean"
    dim = None
    num_tokens = None

    def __init__(self, a):
        self.a = jnp.asarray(a)

    def velocity(self, t, x):
        return -self.a * x


def test_custom_field_needs_to_be_passed_back(tmp_path):
    field = _MyField(0.5)
    x0 = jaxattn.initial.uniform_cube(KEY, 4, 2)
    traj = jaxattn.simulate(field, x0, 2.0, ts=3, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(traj.final, x0 * np.exp(-1.0), rtol=1e-8)  # the exact solution
    path = traj.save(tmp_path / "mine.nc")
    with pytest.raises(ValueError, match=r"not a built-in jaxattn field.*field=") as err:
        jaxattn.load_trajectory(path)
    assert "mine.nc" in str(err.value)
    back = jaxattn.load_trajectory(path, field=field)
    _assert_bit_identical(traj.xs, back.xs, "xs")
    with pytest.raises(ValueError, match="holds a _MyField trajectory"):
        jaxattn.load_trajectory(path, field=jaxattn.SelfAttention(1.0))


def test_unsavable_field_and_foreign_file_say_what_to_do(tmp_path):
    ff = jaxattn.FeedForward(jnp.eye(3), jnp.zeros(3), activation=lambda z: z ** 3)
    traj = _fake_trajectory(jaxattn.SelfAttention(1.0, feedforward=ff), _sphere(), {})
    with pytest.raises(TypeError, match="cannot save the field parameter field.feedforward.activation"):
        traj.save(tmp_path / "x.nc")
    assert not list(tmp_path.iterdir())  # nothing half-written
    xr.Dataset({"a": ("i", [1.0])}).to_netcdf(tmp_path / "other.nc")
    with pytest.raises(ValueError, match="not a jaxattn trajectory"):
        jaxattn.load_trajectory(tmp_path / "other.nc")
    with pytest.raises(FileNotFoundError):
        jaxattn.load_trajectory(tmp_path / "absent.nc")


def test_missing_attributes_detects_and_describe_fills():
    ds = xr.Dataset({"pair_fraction": (("member", "t"), np.zeros((2, 3))), "mystery": ("t", np.zeros(3))},
                    coords={"t": ("t", [0.0, 1.0, 2.0], {"units": "s"})})
    assert missing_attributes(ds) == {"pair_fraction": list(REQUIRED), "mystery": list(REQUIRED),
                                      "t": ["long_name", "description"]}
    filled = describe(ds)
    assert missing_attributes(filled) == {"mystery": list(REQUIRED)}  # unknown names are not invented
    assert filled["t"].attrs["units"] == "s"  # the writer's own attributes win
    assert "delta" in filled["pair_fraction"].attrs["description"]
    assert ds["pair_fraction"].attrs == {}  # the caller's dataset is untouched


def _walk_netcdf(root):
    files = sorted(p for p in root.rglob("*.nc") if "corrupt" not in p.parts)
    problems = {}
    for path in files:
        with xr.open_dataset(path) as ds:
            missing = missing_attributes(ds)
            absent = [key for key in PROVENANCE if not str(ds.attrs.get(key, "")).strip()]
        if absent:  # what made the file: Conventions, version, source, history
            missing["(global)"] = absent
        if missing:
            problems[str(path.relative_to(root))] = missing
    return files, problems


def test_cheap_writers_files_are_described(tmp_path, capsys):
    """The writers that solve little (gamma ODE, Trajectory.save); the slow test below runs them all."""
    assert cli.main(["sweep", "gamma", "--out", str(tmp_path / "gamma"), "--betas", "0.5", "2", "3"]) == 0
    _fake_trajectory(*CASES["frozen_centres"][:2], {}).save(tmp_path / "traj.nc")
    capsys.readouterr()
    files, problems = _walk_netcdf(tmp_path)
    assert {p.name for p in files if p.parent.name != "points"} == {"gamma.nc", "traj.nc"} and problems == {}, problems
    assert len([p for p in files if p.parent.name == "points"]) == 3  # gamma's point files (one per beta), walked too


@pytest.mark.slow
def test_every_file_the_library_writes_is_described(tmp_path, capsys):
    """Runs every writer at toy size and walks every variable of every netCDF file it left."""
    out = tmp_path
    assert cli.main(["simulate", "--model", "sa", "--n", "5", "--d", "3", "--t1", "0.5", "--saves", "3",
                     "--out", str(out / "sim" / "sphere.nc")]) == 0
    assert cli.main(["simulate", "--model", "circle", "--n", "5", "--t1", "0.5", "--saves", "3",
                     "--out", str(out / "sim" / "circle.nc")]) == 0
    assert cli.main(["pde", "circle", "--out", str(out / "pde"), "--K", "16", "--t1", "0.02", "--saves", "3"]) == 0
    assert cli.main(["pde", "sphere", "--out", str(out / "pde"), "--L", "4", "--t1", "0.02", "--saves", "3"]) == 0
    assert cli.main(["sweep", "gamma", "--out", str(out / "gamma"), "--betas", "0.5", "2", "3"]) == 0
    assert cli.main(["sweep", "circle", "--out", str(out / "circle"), "--betas", "1", "1", "1", "--times", "0.5", "1",
                     "--n", "5", "--batch", "2", "--no-progress"]) == 0
    assert cli.main(["sweep", "phase-diagram", "--out", str(out / "pd"), "--betas", "0.5", "2", "2", "--t1", "0.5",
                     "--saves", "3", "--n", "4", "--d", "3", "--batch", "2", "--seeds", "2"]) == 0
    assert cli.main(["causal", "fig3", "--out", str(out / "fig3"), "--runs", "2", "--n", "6", "--beta", "4",
                     "--t1", "2", "--no-progress"]) == 0
    jaxattn.simulate(jaxattn.SelfAttention(1.0), _sphere(), 0.2, ts=2).save(out / "traj.nc")
    capsys.readouterr()

    files, problems = _walk_netcdf(out)
    names = {p.name for p in files}
    assert {"sphere.nc", "circle.nc", "pde_circle.nc", "pde_sphere.nc", "gamma.nc", "phase_diagram.nc",
            "fig3.nc", "traj.nc"} <= names, names
    # every sweep's point files, walked too: gamma 3 betas, circle 1, phase diagram 2 betas x 2 seeds, fig3 1 chunk
    assert len([p for p in files if p.parent.name == "points"]) == 3 + 1 + 4 + 1
    assert problems == {}, problems

    # the phase-diagram file holds what its figure shows
    pd = xr.load_dataset(out / "pd" / "phase_diagram.nc")
    np.testing.assert_allclose(pd["probability"], pd["pair_fraction"].mean(("seed", "member")), rtol=0, atol=1e-15)
    assert pd["probability"].isel(t=0).values.ravel().tolist() == [0.0, 0.0]  # uniform starts: no clustered pairs
    t_star = [float(jaxattn.analysis.gamma_crossing_time(b, 4, 1e-2)) for b in pd.beta.values]
    np.testing.assert_allclose(pd["t_star"], t_star, rtol=1e-12)
    assert {"member", "seed"} <= set(pd.pair_fraction.dims)
    # fig3: per-run variables on the member coordinate
    fig3 = xr.load_dataset(out / "fig3" / "fig3.nc")
    assert fig3["num_renyi"].dims == ("member",) and fig3.sizes["member"] == 2


@pytest.mark.slow
def test_causal_statistics_is_a_described_dataset():
    from jaxattn.studies.paper_003 import causal_statistics

    ts = (0.0, 1.0, 3.0)
    out = causal_statistics(KEY, 3, n=8, beta=4.0, ts=ts, chunk=2, return_angles=True)
    assert isinstance(out, xr.Dataset) and missing_attributes(out) == {}
    assert out["renyi_ball"].dims == ("member", "t") and out.sizes["member"] == 3
    np.testing.assert_array_equal(out["t"], ts)
    # dict-style reads as before, and the statistics are the fractions they claim to be
    assert np.all((out["strong_ball"] <= out["renyi_ball"]) & (out["renyi_ball"] <= 1))
    counts = jaxattn.analysis.renyi.cluster_count_series(jnp.asarray(out["angles"].values))
    np.testing.assert_array_equal(np.asarray(counts), out["clusters"].values)
    # run 0 of the angles starts where a fresh draw with the first chunk's key starts
    key0 = jax.random.split(KEY, 2)[0]
    np.testing.assert_array_equal(out["angles"].values[:2, 0], np.asarray(jaxattn.initial.uniform_circle(key0, 8,
                                                                                                         batch=2)))


def test_trajectory_variables_cover_every_dataclass_field():
    """Everything a Trajectory holds is written: one variable per array field (and stats key)."""
    names = {f.name for f in dataclasses.fields(jaxattn.Trajectory)}
    assert names == {"ts", "xs", "t_final", "stats", "field", "event_occurred"}, (
        "Trajectory gained a field: store it in to_xarray and read it in from_xarray")
