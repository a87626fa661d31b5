"""jaxattn.plot and the study plots draw what the data say: cells on the sampled grid, circle paths
without wrap-around jumps, far-side paths of the sphere faded, colour bars and index labels on attention
matrices, titles stating n and d, mathtext labels; and the README gallery is small and complete.

Every check is against data built here with a known answer (no solves: uniform rotations on the circle,
tokens placed at the viewer's near and far poles, hand-made datasets), so the file runs in seconds.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from jaxattn.plot import (
    cell_edges,
    circle_paths,
    plot_attention,
    plot_circle_trajectories,
    plot_sphere_trajectories,
    plot_value_spectra,
    pyplot,
)
from jaxattn.studies import paper_001, paper_002

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "docs" / "img" / "gallery"
plt = pyplot()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


class _Traj:  # anything with ts and xs plots
    def __init__(self, ts, xs):
        self.ts, self.xs = np.asarray(ts), np.asarray(xs)


def _texts(fig) -> list[str]:
    """Every non-empty text of a figure: titles, axis labels, legend entries, colour-bar labels."""
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")) if t.get_text().strip()]


def _no_bare_symbols(fig):
    """Greek and S^k appear only inside mathtext ($...$), never as 'beta' or 'S^2' in plain text."""
    for text in _texts(fig):
        plain = re.sub(r"\$[^$]*\$", "", text)
        assert not re.search(r"\b(beta|delta|gamma|theta)\b|S\^", plain), text


# ------------------------------------------------------------------------------- phase diagram


def _phase_dataset(betas, ts, *, n=8, d=3, delta=1e-2):
    """A dataset shaped like paper_002.phase_diagram's: probability(beta, d, t) = a known ramp."""
    B, T = np.meshgrid(betas, ts, indexing="ij")
    prob = np.clip(T / (1 + B) / 3, 0, 1)[:, None, :]
    return xr.Dataset({"probability": (("beta", "d", "t"), prob), "t_star": ("beta", 2.0 + np.asarray(betas))},
                      coords={"beta": betas, "d": [d], "t": ts}, attrs=dict(n=n, delta=delta))


def test_cell_edges_are_midpoints_clamped_to_the_grid():
    np.testing.assert_allclose(cell_edges([0.0, 1.0, 2.0, 4.0]), [0.0, 0.5, 1.5, 3.0, 4.0])
    np.testing.assert_allclose(cell_edges([3.0]), [2.5, 3.5])
    with pytest.raises(ValueError, match="increasing"):
        cell_edges([1.0, 0.5])


def test_phase_diagram_cells_cover_exactly_the_sampled_grid():
    betas = np.array([4.0, 0.5, 1.0, 2.0, 6.0])  # unsorted and non-uniform on purpose
    ts = np.linspace(0.0, 10.0, 6)
    ds = _phase_dataset(betas, ts)
    ax = paper_002.plot_phase_diagram(ds)
    mesh = ax.collections[0]
    xy = mesh.get_coordinates()  # (rows + 1, cols + 1, 2): rows along beta, columns along t
    b = np.sort(betas)
    b_edges = np.r_[b[0], (b[1:] + b[:-1]) / 2, b[-1]]  # no cell reaches past the first / last beta
    t_edges = np.r_[ts[0], (ts[1:] + ts[:-1]) / 2, ts[-1]]
    np.testing.assert_allclose(xy[:, 0, 1], b_edges)
    np.testing.assert_allclose(xy[0, :, 0], t_edges)
    np.testing.assert_allclose(ax.get_ylim(), (b[0], b[-1]))
    np.testing.assert_allclose(ax.get_xlim(), (ts[0], ts[-1]))
    # each cell shows the probability of its own (beta, t): the ramp, sorted by beta
    expected = ds.sortby("beta").probability.isel(d=0).transpose("beta", "t").values
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(expected.shape), expected)
    title = ax.get_title()
    assert "n = 8" in title and "d = 3" in title and r"\delta = 0.01" in title
    assert ax.get_xlabel() and ax.get_ylabel() and ax.figure.axes[-1].get_ylabel()  # colour bar labelled
    _no_bare_symbols(ax.figure)


# ------------------------------------------------------------------------------- circle


def test_circle_paths_break_exactly_where_the_angle_wraps():
    ts = np.linspace(0.0, 20.0, 201)
    theta0 = np.array([0.3, 5.0])
    theta = theta0 + np.outer(ts, [1.0, -0.7])  # uniform rotations, one each way
    t, y = circle_paths(ts, theta)
    for i, (w, t0) in enumerate(zip([1.0, -0.7], theta0)):
        end = np.flatnonzero(np.isfinite(t[:, i]))[-1] + 1  # columns are NaN-padded to a common length
        ti, yi = t[:end, i], y[:end, i]
        ok = np.isfinite(yi[1:]) & np.isfinite(yi[:-1])
        assert np.all(np.abs(np.diff(yi)[ok]) <= 0.2)  # no jump: one save moves 0.1 rad at most
        assert np.all((yi[np.isfinite(yi)] >= 0) & (yi[np.isfinite(yi)] <= 2 * np.pi))
        # the breaks sit at the exact crossing times of multiples of 2 pi (linear motion: exact)
        k = np.arange(1, 5) if w > 0 else np.arange(0, -3, -1)
        crossings = (2 * np.pi * k - t0) / w
        crossings = np.sort(crossings[(crossings > 0) & (crossings < 20)])
        breaks = np.flatnonzero(np.isnan(yi))
        assert len(breaks) == len(crossings) >= 2
        np.testing.assert_allclose(ti[breaks - 1], crossings, atol=1e-12)
        np.testing.assert_allclose(ti[breaks + 1], crossings, atol=1e-12)
        assert set(yi[breaks - 1]) == ({2 * np.pi} if w > 0 else {0.0})  # leaves at the top going up
        # away from the breaks the curve is the angle mod 2 pi
        keep = np.isfinite(yi)
        np.testing.assert_allclose(np.mod(yi[keep] - (t0 + w * ti[keep]) + 1e-9, 2 * np.pi), 1e-9, atol=1e-9)
    # the naive drawing np.mod(theta) does jump by ~2 pi: the property above is not vacuous
    assert np.abs(np.diff(np.mod(theta, 2 * np.pi), axis=0)).max() > 6


def test_plot_circle_trajectories_draws_no_vertical_jumps():
    ts = np.linspace(0.0, 12.0, 121)
    xs = np.array([0.1, 2.0, 6.2]) + np.outer(ts, [0.9, -1.3, 0.4])
    ax = plot_circle_trajectories(_Traj(ts, xs), title=r"$n = 3$ tokens on $S^1$")
    assert len(ax.lines) == 3
    for line in ax.lines:
        y = np.asarray(line.get_ydata(), float)
        ok = np.isfinite(y[1:]) & np.isfinite(y[:-1])
        assert np.abs(np.diff(y)[ok]).max() < np.pi
    # unit vectors in R^2 give the same paths as their angles
    ax2 = plot_circle_trajectories(_Traj(ts, np.stack([np.cos(xs), np.sin(xs)], -1)))
    for a, b in zip(ax.lines, ax2.lines):
        np.testing.assert_allclose(a.get_ydata(), b.get_ydata(), atol=1e-9)
    assert ax.get_xlabel() == "$t$" and ax.get_ylabel() == r"$\theta_i(t)$"
    _no_bare_symbols(ax.figure)


# ------------------------------------------------------------------------------- sphere


def _near_far_trajectory(view, n_steps=20):
    """Token 0 circles the pole facing the viewer, token 1 the opposite pole."""
    view = view / np.linalg.norm(view)
    e1 = np.cross(view, [0.0, 0.0, 1.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(view, e1)
    phi = np.linspace(0, np.pi, n_steps)
    ring = 0.5 * (np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2)
    near = np.sqrt(0.75) * view + ring
    far = -np.sqrt(0.75) * view + ring
    return _Traj(np.linspace(0.0, 5.0, n_steps), np.stack([near, far], axis=1))


def test_sphere_paths_on_the_far_side_are_faded_and_drawn_behind():
    fig = plt.figure(figsize=(4, 4))
    ax = fig.add_subplot(projection="3d")
    elev, azim = np.radians(ax.elev), np.radians(ax.azim)
    view = np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)])
    plot_sphere_trajectories(_near_far_trajectory(view), ax, back_alpha=0.25)
    fig.canvas.draw()  # 3-D collections report their (projected) segments once drawn
    from mpl_toolkits.mplot3d.art3d import Line3DCollection

    paths = [c for c in ax.collections if isinstance(c, Line3DCollection) and c.get_linewidth()[0] == 1.0]
    alpha = {c.get_zorder(): set(np.round(c.get_colors()[:, 3], 6)) for c in paths}
    sizes = {c.get_zorder(): len(c.get_segments()) for c in paths}
    assert alpha == {1: {0.25}, 3: {1.0}}  # back faded, front opaque
    assert sizes == {1: 19, 3: 19}  # 19 segments per token: the far token's are all at the back
    assert not ax.computed_zorder  # drawn in zorder: back paths, sphere (2), front paths
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("start" in t for t in legend) and any("end" in t for t in legend)


def test_sphere_figure_has_no_empty_margins():
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(5, 12, 3))
    xs /= np.linalg.norm(xs, axis=-1, keepdims=True)
    ax = plot_sphere_trajectories(_Traj(np.arange(5.0), xs), title=r"SA on $S^2$: $n = 12$")
    buf = io.BytesIO()
    ax.figure.savefig(buf, format="png", dpi=40, bbox_inches="tight", pad_inches=0.02)
    buf.seek(0)
    img = plt.imread(buf)[..., :3]
    ink = np.argwhere(img.min(-1) < 0.95)
    h, w = img.shape[:2]
    (r0, c0), (r1, c1) = ink.min(0), ink.max(0)
    margins = np.array([r0 / h, (h - 1 - r1) / h, c0 / w, (w - 1 - c1) / w])  # top, bottom, left, right
    assert np.all(margins < 0.08), margins  # a default 3-D axes leaves 0.2-0.25 on each side
    _no_bare_symbols(ax.figure)


# ------------------------------------------------------------------------------- attention, paper 001


def test_attention_matrix_has_colour_bar_and_one_based_index_labels():
    P = np.random.default_rng(1).dirichlet(np.ones(9), size=7)  # 7 queries x 9 keys
    ax = plot_attention(P, title="$t = 0$")
    im = ax.images[0]
    np.testing.assert_array_equal(im.get_array(), P)  # row i = query i, not transposed
    assert im.colorbar is not None and im.colorbar.ax.get_ylabel() == "$P_{ij}$"
    xt = [t.get_text() for t in ax.get_xticklabels()]
    yt = [t.get_text() for t in ax.get_yticklabels()]
    assert xt[0] == "1" and xt[-1] == "9" and yt[0] == "1" and yt[-1] == "7"
    assert "key" in ax.get_xlabel() and "query" in ax.get_ylabel()


def test_paper_001_attention_panels_share_a_colour_bar():
    n, times = 6, [0.0, 1.0, 3.0]
    P = np.random.default_rng(2).dirichlet(np.ones(n), size=(1, len(times), n))
    ds = xr.Dataset({"P": (("seed", "t", "token", "token2"), P), "rank": (("seed", "t"), [[6, 3, 2]])},
                    coords={"seed": [0], "t": times})
    axes = paper_001.plot_attention_matrices(ds)
    fig = axes[0].figure
    assert len(fig.axes) == len(times) + 1  # three panels and one colour bar
    assert fig.axes[-1].get_ylabel() == "$P_{ij}(t)$"
    for ax, t, r, p in zip(axes, times, [6, 3, 2], P[0]):
        assert ax.get_title() == f"$t = {t:g}$, rank {r}"
        np.testing.assert_array_equal(ax.images[0].get_array(), p)
        assert ax.get_xlabel()


def test_paper_001_tokens_are_labelled():
    z = np.random.default_rng(3).uniform(-5, 5, size=(1, 4, 10, 2))
    ds = xr.Dataset({"z": (("seed", "t", "token", "dim"), z)}, coords={"seed": [0], "t": [0.0, 1.0, 2.0, 3.0]})
    ax = paper_001.plot_tokens(ds)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("$z_1$", "$z_2$")
    assert "n = 10" in ax.get_title()
    assert len(ax.get_legend().get_texts()) == 2
    axes = plot_value_spectra(np.array([[1.0 + 0.5j, 1.0 - 0.5j, -0.2]]))
    assert axes[0].get_xlabel() and axes[0].get_ylabel() and "$V$" in axes[0].get_title()


# ------------------------------------------------------------------------------- README gallery


def test_gallery_pngs_are_small_made_by_the_script_and_shown_in_the_readme():
    sys.path.insert(0, str(GALLERY))
    try:
        import make_gallery
    finally:
        sys.path.remove(str(GALLERY))
    readme = (ROOT / "README.md").read_text()
    names = list(make_gallery.FIGURES)
    assert 4 <= len(names) <= 6
    for name in names:
        png = GALLERY / name
        assert png.exists() and png.stat().st_size < 80_000, name
        assert f"docs/img/gallery/{name}" in readme, name
    assert sorted(p.name for p in GALLERY.glob("*.png")) == sorted(names)  # no stale images


# ------------------------------------------------------------------------------- limits, titles, files


def test_log_limits_ignore_exact_zeros():
    from jaxattn.plot import log_limits

    low, high = log_limits([0.0, 0.0, 1e-5, 3e-5, 1e-9, 1e-320])
    assert 1e-9 / 2 < low < 1e-9 and 3e-5 < high < 1e-4
    with pytest.raises(ValueError, match="positive"):
        log_limits([0.0, np.nan])


def test_sphere_pde_plot_axis_shows_the_data(tmp_path):
    """jaxattn pde sphere from 1 + a P_2: modes other than l = 2 are exactly 0 at t = 0; the log axis spans
    the curves (not 1e-314), and only degrees that carry power are drawn (odd ones hold round-off only)."""
    from jaxattn import cli

    assert cli.main(["pde", "sphere", "--out", str(tmp_path), "--L", "6", "--beta", "5", "--t1", "0.1",
                     "--saves", "5", "--mode", "2", "--format", "svg"]) == 0
    ds = xr.load_dataset(tmp_path / "pde_sphere.nc")
    assert (tmp_path / "pde_sphere.svg").read_text().lstrip().startswith("<?xml")  # a vector figure
    from jaxattn._demo import sphere_power_axes

    _, ax = pyplot().subplots()
    sphere_power_axes(ax, ds.t.values, ds.power.values)
    low, high = ax.get_ylim()
    s2 = ds.power.sel(l=2).values
    assert high / s2.max() < 2 and low > 1e-16 * s2.max(), (low, high)  # within decades of the data
    labels = [line.get_label() for line in ax.get_lines()]
    # odd degrees are not excited from P_2 (parity): round-off (< 1e-30), not drawn
    assert "$\\ell = 2$" in labels and "$\\ell = 1$" not in labels, labels
    assert float(ds.power.sel(l=1).max()) < 1e-30 and float(ds.power.sel(l=4)[0]) == 0.0
    pyplot().close(ax.figure)


def test_parameter_title_and_save_figure(tmp_path):
    from jaxattn.plot import parameter_title, save_figure

    assert parameter_title("SA on $S^1$", n=32, beta=4.0, delta=0.01) == \
        "SA on $S^1$: $n = 32$, $\\beta = 4$, $\\delta = 0.01$"
    assert parameter_title("x", beta=[1, 2, 3]) == "x: $\\beta \\in [1, 3]$ (3 values)"
    fig, _ = pyplot().subplots(figsize=(2, 2))
    png = save_figure(fig, tmp_path / "a.png", dpi=50)
    pdf = save_figure(pyplot().subplots()[0], tmp_path / "a.png", format="pdf")
    assert png.suffix == ".png" and pdf == tmp_path / "a.pdf" and pdf.read_bytes().startswith(b"%PDF")
    from PIL import Image

    with Image.open(png) as im:
        assert max(im.size) <= 2 * 50 + 10  # 2 inches at 50 dpi (trimmed)
        assert im.text["Software"].startswith("jaxattn ") and im.text["Source"]  # what made it
    with pytest.raises(ValueError, match="png, svg, pdf"):
        save_figure(pyplot().subplots()[0], tmp_path / "a.jpg")


def test_full_size_gallery_is_drawn_costed_and_shown_in_the_notebooks():
    """docs/gallery.md shows every full-size figure of make_gallery.FULL with its measured CPU cost, each PNG is
    small, and the notebook it belongs to shows it beside its fast-mode rerun."""
    import json

    sys.path.insert(0, str(GALLERY))
    try:
        import make_gallery
    finally:
        sys.path.remove(str(GALLERY))
    costs = json.loads((GALLERY / "full" / "costs.json").read_text())
    page = (ROOT / "docs" / "gallery.md").read_text()
    assert set(costs) == set(make_gallery.FULL)
    assert sorted(p.name for p in (GALLERY / "full").glob("*.png")) == sorted(make_gallery.FULL)  # none stale
    for name, fig in make_gallery.FULL.items():
        assert (GALLERY / "full" / name).stat().st_size < 150_000, name
        assert f"](img/gallery/full/{name})" in page and make_gallery.format_cost(costs[name]["cpu_s"]) in page, name
        notebook = (ROOT / "notebooks" / f"{fig.notebook}.ipynb").read_text()
        assert f"../docs/img/gallery/full/{name}" in notebook, (name, fig.notebook)
    assert make_gallery.gallery_table(costs) in page  # the page is what the script writes
