"""jaxattn.plot.animate: a GIF with one frame per chosen saved time, on S^1 (angles), S^2, R^2 and R^3."""

import jax
import numpy as np
import pytest
from PIL import Image

import jaxattn
from jaxattn.plot import animate


def _frames(path):
    with Image.open(path) as im:
        return im.n_frames


def test_circle_and_sphere_gifs_have_the_expected_frames(tmp_path):
    key = jax.random.PRNGKey(0)
    circle = jaxattn.simulate(jaxattn.CircleSelfAttention(4.0), jaxattn.initial.uniform_circle(key, 8), 3.0, ts=9)
    assert _frames(animate(circle, tmp_path / "c.gif")) == 9  # fewer saves than frames: one frame per save
    sphere = jaxattn.simulate(jaxattn.SelfAttention(4.0), jaxattn.initial.uniform_sphere(key, 8, 3), 3.0, ts=31)
    path = animate(sphere, tmp_path / "s.gif", frames=10)
    assert _frames(path) == 10 and path.stat().st_size < 1_000_000


class _Traj:  # anything with ts and xs animates
    def __init__(self, ts, xs):
        self.ts, self.xs = ts, xs


def test_euclidean_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    ts = np.linspace(0, 1, 5)
    for d in (2, 3):
        xs = np.cumsum(rng.normal(size=(5, 7, d)), axis=0) * 3  # off the sphere: R^d
        assert _frames(animate(_Traj(ts, xs), tmp_path / f"r{d}.gif")) == 5
    with pytest.raises(ValueError, match="dimension 2 or 3"):
        animate(_Traj(ts, rng.normal(size=(5, 7, 4))), tmp_path / "x.gif")
    with pytest.raises(ValueError, match=".gif or .mp4"):
        animate(_Traj(ts, rng.normal(size=(5, 7, 2))), tmp_path / "x.png")
    with pytest.raises(ValueError, match="NaN"):
        animate(_Traj(ts, np.full((5, 7, 2), np.nan)), tmp_path / "x.gif")
