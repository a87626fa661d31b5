"""jaxattn.plot.animate: a GIF with one frame per chosen saved time, on S^1 (angles), S^2, R^2 and R^3; the
frames are spent where the tokens move (jaxattn.plot.frame_schedule)."""

import jax
import numpy as np
import pytest
from PIL import Image

import jaxattn
from jaxattn.plot import animate, frame_schedule


def _frames(path):
    with Image.open(path) as im:
        return im.n_frames


def test_circle_and_sphere_gifs_have_the_expected_frames(tmp_path):
    key = jax.random.PRNGKey(0)
    circle = jaxattn.simulate(jaxattn.CircleSelfAttention(4.0), jaxattn.initial.uniform_circle(key, 8), 3.0, ts=9)
    # fewer saves than frames, evenly spaced in time: one frame per save
    assert _frames(animate(circle, tmp_path / "c.gif", uniform=1.0, hold=0)) == 9
    sphere = jaxattn.simulate(jaxattn.SelfAttention(4.0), jaxattn.initial.uniform_sphere(key, 8, 3), 3.0, ts=31)
    path = animate(sphere, tmp_path / "s.gif", frames=10, hold=0.5, fps=10)
    assert _frames(path) <= 10 + 5 and path.stat().st_size < 1_000_000  # + the final state held 0.5 s


class _Traj:  # anything with ts and xs animates
    def __init__(self, ts, xs):
        self.ts, self.xs = ts, xs


def test_euclidean_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    ts = np.linspace(0, 1, 5)
    for d in (2, 3):
        xs = np.cumsum(rng.normal(size=(5, 7, d)), axis=0) * 3  # off the sphere: R^d
        assert _frames(animate(_Traj(ts, xs), tmp_path / f"r{d}.gif", uniform=1.0, hold=0)) == 5
    with pytest.raises(ValueError, match="dimension 2 or 3"):
        animate(_Traj(ts, rng.normal(size=(5, 7, 4))), tmp_path / "x.gif")
    with pytest.raises(ValueError, match=".gif or .mp4"):
        animate(_Traj(ts, rng.normal(size=(5, 7, 2))), tmp_path / "x.png")
    with pytest.raises(ValueError, match="NaN"):
        animate(_Traj(ts, np.full((5, 7, 2), np.nan)), tmp_path / "x.gif")


def test_frames_concentrate_where_the_tokens_move():
    """A motion with a fast burst in t in [4, 5] and almost nothing elsewhere: the frame schedule puts the
    share (1 - uniform) of its frames in the burst (equal arc length per frame), uniform = 1 gives even times."""
    ts = np.linspace(0.0, 10.0, 1001)
    speed = np.where((ts >= 4) & (ts < 5), 1.0, 1e-4)  # radians per unit time
    theta = np.cumsum(speed) * (ts[1] - ts[0])
    xs = np.stack([theta, theta + 1.0, theta + 2.0], axis=1)  # (T, 3) angles moving together
    idx = frame_schedule(ts, xs, 50, uniform=0.1)
    in_burst = np.mean((ts[idx] >= 4) & (ts[idx] <= 5))
    assert in_burst > 0.8, in_burst  # a tenth of the time, more than 80% of the frames
    assert idx[0] == 0 and idx[-1] == len(ts) - 1 and np.all(np.diff(idx) > 0)
    even = frame_schedule(ts, xs, 51, uniform=1.0)
    np.testing.assert_allclose(np.diff(ts[even]), 0.2, atol=1e-9)  # evenly spaced in time
    # frame gaps in time are inversely proportional to the speed (equal displacement per frame)
    inside = idx[(ts[idx] > 4.05) & (ts[idx] < 4.95)]
    gaps = np.diff(ts[inside])
    assert gaps.max() < 0.05, gaps  # ~0.9 of 50 frames in one unit of time
    with pytest.raises(ValueError, match="frames must be >= 1"):
        frame_schedule(ts, xs, 0)


def test_frame_schedule_of_a_real_clustering_run():
    """SA on S^2 at beta = 9 moves fast early (clusters form) and slowly later: the schedule's frames are
    denser in time where the measured speed is larger (rank correlation of speed with frame density)."""
    key = jax.random.PRNGKey(0)
    traj = jaxattn.simulate(jaxattn.SelfAttention(9.0), jaxattn.initial.uniform_sphere(key, 16, 3), 30.0, ts=301)
    ts, xs = np.asarray(traj.ts), np.asarray(traj.xs)
    idx = frame_schedule(ts, xs, 40)
    speed = np.linalg.norm(np.diff(xs, axis=0), axis=-1).mean(axis=1) / np.diff(ts)
    half = len(ts) // 2
    early, late = speed[:half].mean(), speed[half:].mean()
    frames_early = np.sum(idx < half)
    assert early > late and frames_early > 40 / 2, (early, late, frames_early)
