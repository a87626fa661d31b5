"""Matplotlib helpers used by the CLI, the notebooks and the README gallery.

`pyplot` is the one way the library gets ``matplotlib.pyplot`` (imported lazily, so
matplotlib stays optional until something is plotted).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "FIGURE_FORMATS",
    "animate",
    "cell_edges",
    "circle_paths",
    "frame_schedule",
    "log_limits",
    "parameter_title",
    "plot_attention",
    "plot_circle_trajectories",
    "plot_sphere_trajectories",
    "plot_value_spectra",
    "pyplot",
    "save_figure",
]

#: the figure files the library and the ``jaxattn`` command write (``--format``): raster PNG, vector SVG/PDF
FIGURE_FORMATS = ("png", "svg", "pdf")
#: the default resolution of raster figures (``--dpi``)
DEFAULT_DPI = 150


def pyplot():
    """``matplotlib.pyplot``, imported lazily and switched to the non-interactive Agg backend unless a
    notebook (inline) backend is active.

    **Returns:**

    The ``matplotlib.pyplot`` module.
    """
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        try:
            matplotlib.use("Agg", force=False)
        except Exception:  # pragma: no cover - a GUI backend already in use
            pass
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, *, dpi: int | None = None, format: str | None = None, close: bool = True):
    """Write a matplotlib figure; the one way the ``jaxattn`` commands write figures.

    The file's metadata say what made it (the jaxattn version, and the ``jaxattn`` command line or the
    script). The figure is trimmed to its drawn content; parent folders are created.

    **Arguments:**

    - `fig`: the matplotlib figure.
    - `path`: the file to write (str or path-like); its suffix is replaced by ``format``, so
        ``--format pdf`` turns ``run.png`` into ``run.pdf``.
    - `dpi`: the resolution of raster output, > 0; default None: `DEFAULT_DPI` = 150 (vector formats
        keep text and lines as vectors).
    - `format`: ``"png"``, ``"svg"`` or ``"pdf"`` (case-insensitive); default None: the path's suffix,
        else png.
    - `close`: close the figure after writing; default True.

    **Returns:**

    The path written (a ``pathlib.Path``).

    **Raises:**

    - `ValueError`: an unknown format or suffix, or a non-positive dpi.
    - `OSError`: the file could not be written (the message names it and the cause).
    """
    from pathlib import Path

    from ._provenance import current_command, write_error
    from ._version import __version__

    path = Path(path)
    fmt = (format or path.suffix.lstrip(".") or "png").lower()
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"figures are written as {', '.join(FIGURE_FORMATS)}, got {fmt!r} ({path.name})")
    if dpi is not None and not dpi > 0:
        raise ValueError(f"dpi must be > 0, got {dpi}")
    path = path.with_suffix(f".{fmt}")
    path.parent.mkdir(parents=True, exist_ok=True)
    made, command = f"jaxattn {__version__}", current_command()  # what made the file, in its metadata
    metadata = {"png": {"Software": made, "Source": command}, "svg": {"Creator": made, "Description": command},
                "pdf": {"Creator": made, "Subject": command}}[fmt]
    try:
        fig.savefig(path, dpi=dpi or DEFAULT_DPI, format=fmt, bbox_inches="tight", pad_inches=0.03,
                    metadata=metadata)
    except OSError as err:
        raise write_error(path, err) from err
    finally:
        if close:
            pyplot().close(fig)
    return path


_GREEK = {"alpha", "beta", "gamma", "delta", "tau", "theta", "mu", "sigma", "omega"}


def parameter_title(what: str, **params) -> str:
    """A figure title that states the parameters: ``parameter_title("SA on $S^1$", n=32, beta=4)`` is
    ``"SA on $S^1$: $n = 32$, $\\beta = 4$"``.

    The convention of every figure the project draws: the model, then each parameter the figure depends
    on (numbers with ``:g``; Greek names as symbols; a sequence as ``$\\beta \\in [min, max]$ (k values)``).

    **Arguments:**

    - `what`: the model or quantity shown (matplotlib mathtext allowed).
    - `params`: the parameters, name = value: a number, a sequence of numbers (shown as its range and
        count) or a string (shown as ``name value``); Greek names (alpha, beta, gamma, delta, tau,
        theta, mu, sigma, omega) become symbols.

    **Returns:**

    The title (str); ``what`` alone when no parameter is given.
    """
    parts = []
    for name, value in params.items():
        symbol = f"\\{name}" if name in _GREEK else name
        if isinstance(value, str):
            parts.append(f"{name} {value}")
            continue
        arr = np.asarray(value, dtype=float)
        if arr.ndim == 0:
            text = f"{float(arr):g}"
        elif arr.size == 1:
            text = f"{float(arr.ravel()[0]):g}"
        else:
            parts.append(f"${symbol} \\in [{arr.min():g}, {arr.max():g}]$ ({arr.size} values)")
            continue
        parts.append(f"${symbol} = {text}$")
    return f"{what}: {', '.join(parts)}" if parts else what


def log_limits(values, *, floor: float = 1e-12, pad: float = 1.5) -> tuple[float, float]:
    """y-limits of a log axis that show the data, not its exact zeros.

    Values that are exactly 0 (a mode absent from the initial condition) or below ``floor`` times the
    largest value are ignored, so the axis is not stretched to 1e-300 and the curves stay readable;
    the limits are padded by the factor ``pad``.

    **Arguments:**

    - `values`: array-like of any shape (NaN/inf and values <= 0 are ignored).
    - `floor`: values below ``floor`` x the largest are ignored; default 1e-12.
    - `pad`: the factor the limits are widened by, >= 1; default 1.5.

    **Returns:**

    ``(low, high)``, floats.

    **Raises:**

    - `ValueError`: no positive finite value to show.
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        raise ValueError("log_limits needs at least one positive finite value")
    top = float(v.max())
    low = float(v[v >= floor * top].min())
    return low / pad, top * pad


def cell_edges(centres) -> np.ndarray:
    """Edges of the pcolormesh cells around the points of a sorted 1-d grid (length K + 1 for K points).

    Inner edges are the midpoints between neighbours; the outer edges are the grid's own first and last
    values, so no cell reaches past the sampled range (the outer cells are half cells). A single point
    gets the cell [c - 1/2, c + 1/2].

    **Arguments:**

    - `centres`: the grid, a non-empty, strictly increasing 1-d array-like of K points.

    **Returns:**

    The K + 1 edges, a float NumPy array.

    **Raises:**

    - `ValueError`: ``centres`` is not a non-empty 1-d grid or is not strictly increasing.
    """
    c = np.asarray(centres, dtype=float)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"cell_edges needs a non-empty 1-d grid, got shape {c.shape}")
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    if np.any(np.diff(c) <= 0):
        raise ValueError("cell_edges needs a strictly increasing grid (sort it first)")
    return np.concatenate([c[:1], 0.5 * (c[1:] + c[:-1]), c[-1:]])


def _view_direction(ax) -> np.ndarray:
    """Unit vector from the origin towards the viewer of a 3-D axes (its elevation and azimuth)."""
    elev, azim = np.radians(ax.elev), np.radians(ax.azim)
    return np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)])


def plot_sphere_trajectories(trajectory, ax=None, *, member: int = 0, title: str | None = None,
                             back_alpha: float = 0.2):
    """Draw token paths x_i(t) on $S^2$ over a wireframe sphere.

    Each token has its own colour (viridis); its start x_i(0) is a small open circle of that colour
    and its end x_i(T) a large crimson dot, both explained in the legend. Path segments, start and end
    points on the far side of the sphere from the viewer are drawn behind the wireframe with opacity
    ``back_alpha``, so the front hemisphere reads clearly. The axes are zoomed so that the sphere fills
    the figure (no empty margins); the legend sits in one row below it.

    **Arguments:**

    - `trajectory`: a [`jaxattn.Trajectory`][jaxattn.Trajectory] (or anything with ``ts`` (T,) and ``xs``)
        of tokens in R^3: ``xs`` of shape (T, n, 3), or (B, T, n, 3) for an ensemble.
    - `ax`: a 3-D matplotlib axes to draw into; default None: a new 5 x 5 inch figure.
    - `member`: the ensemble member drawn; default 0.
    - `title`: the axes title; default None: no title.
    - `back_alpha`: opacity of what lies on the far side, in [0, 1]; default 0.2.

    **Returns:**

    The axes.

    **Raises:**

    - `ValueError`: the states are not (T, n, 3), or ``back_alpha`` is outside [0, 1].
    """
    from matplotlib.collections import LineCollection  # noqa: F401  (Line3DCollection needs it loaded)
    from matplotlib.lines import Line2D
    from mpl_toolkits.mplot3d.art3d import Line3DCollection

    plt = pyplot()
    xs = np.asarray(trajectory.xs, dtype=float)
    if getattr(trajectory, "is_ensemble", False):
        xs = xs[member]
    if xs.ndim != 3 or xs.shape[-1] != 3:
        raise ValueError(f"plot_sphere_trajectories needs tokens in R^3 of shape (T, n, 3), got {xs.shape}")
    if not 0 <= back_alpha <= 1:
        raise ValueError(f"back_alpha must be in [0, 1], got {back_alpha}")
    if ax is None:
        fig = plt.figure(figsize=(5, 5))
        ax = fig.add_subplot(projection="3d", computed_zorder=False)
        fig.subplots_adjust(left=0, right=1, bottom=0.07, top=0.93 if title else 1)
    ax.computed_zorder = False  # draw in the order below: back, sphere, front
    view = _view_direction(ax)
    n = xs.shape[1]
    colours = plt.cm.viridis(np.linspace(0, 1, n))
    seg = np.stack([xs[:-1], xs[1:]], axis=2)  # (T-1, n, 2, 3)
    front_seg = (seg.mean(axis=2) @ view) >= 0  # (T-1, n)
    rgba = np.broadcast_to(colours, seg.shape[:2] + (4,)).copy()
    for front, z in ((False, 1), (True, 3)):
        mask = front_seg == front
        c = rgba[mask]
        c[:, 3] = 1.0 if front else back_alpha
        ax.add_collection3d(Line3DCollection(seg[mask], colors=c, linewidths=1.0, zorder=z))
    u, v = np.mgrid[0 : 2 * np.pi : 25j, 0 : np.pi : 13j]
    ax.plot_wireframe(np.cos(u) * np.sin(v), np.sin(u) * np.sin(v), np.cos(v), color="0.8", lw=0.3, zorder=2)
    t_end = float(np.asarray(trajectory.ts)[-1])
    for k, (size, face) in enumerate(((14, "none"), (45, "crimson"))):
        pts = xs[0] if k == 0 else xs[-1]
        front = (pts @ view) >= 0
        for mask, z, alpha in ((~front, 1, back_alpha), (front, 4, 1.0)):
            if not mask.any():
                continue
            edge = colours[mask].copy() if k == 0 else np.array([[0.1, 0.1, 0.1, 1.0]] * int(mask.sum()))
            edge[:, 3] = alpha
            fc = "none" if k == 0 else np.array([[0.86, 0.08, 0.24, alpha]] * int(mask.sum()))
            ax.scatter(*pts[mask].T, s=size, facecolors=fc, edgecolors=edge, linewidths=0.8 if k == 0 else 0.4,
                       depthshade=False, zorder=z)
    handles = [
        Line2D([], [], ls="none", marker="o", mfc="none", mec=colours[n // 2], ms=4, label="start, $t = 0$"),
        Line2D([], [], color=colours[n // 2], lw=1.0, label="path $x_i(t)$ (faded: far side)"),
        Line2D([], [], ls="none", marker="o", mfc="crimson", mec="0.1", ms=7, label=f"end, $t = {t_end:g}$"),
    ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.02), ncol=3, fontsize=8, frameon=False,
              handletextpad=0.3, columnspacing=1.0)  # below the sphere, where it hides no path
    ax.set(xlim=(-1, 1), ylim=(-1, 1), zlim=(-1, 1))
    ax.set_box_aspect((1, 1, 1), zoom=1.5)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10, pad=0)
    return ax


def circle_paths(ts, theta) -> tuple[np.ndarray, np.ndarray]:
    """Angle paths theta_i(t) drawn modulo 2 pi without wrap-around jumps.

    ``theta`` (T, n) angles are unwrapped in time and folded into [0, 2 pi); where a path crosses a
    multiple of 2 pi between two saved times the line is cut there: the crossing time t_c (linear
    interpolation) gets a point on the edge it leaves (2 pi or 0), a NaN (the break), and a point on
    the edge it enters.

    **Arguments:**

    - `ts`: the saved times, float (T,).
    - `theta`: angles (radians), float (T, n) (or (T,) for one token).

    **Returns:**

    ``(t, y)``, each float (L, n) with NaN padding, ready for ``ax.plot(t, y)``; no two consecutive
    finite points of a column differ by more than pi.

    **Raises:**

    - `ValueError`: ``theta`` is not (T, n) with T = len(ts).
    """
    ts = np.asarray(ts, dtype=float)
    theta = np.asarray(theta, dtype=float)
    if theta.ndim == 1:
        theta = theta[:, None]
    if theta.ndim != 2 or theta.shape[0] != ts.shape[0]:
        raise ValueError(f"theta must be (T, n) angles with T = len(ts) = {ts.shape[0]}, got shape {theta.shape}")
    two_pi = 2 * np.pi
    cols_t, cols_y = [], []
    for i in range(theta.shape[1]):
        u = np.unwrap(theta[:, i])
        k = np.floor(u / two_pi)
        pt, py = [ts[0]], [u[0] - two_pi * k[0]]
        for j in range(1, len(ts)):
            a, b = k[j - 1], k[j]
            step = 1.0 if b > a else -1.0
            lo_t, lo_u = ts[j - 1], u[j - 1]
            for m in np.arange(a, b, step):  # every multiple of 2 pi crossed between saves j-1 and j
                edge = two_pi * (m + (step > 0))
                tc = lo_t + (ts[j] - lo_t) * (edge - lo_u) / (u[j] - lo_u)
                leave, enter = (two_pi, 0.0) if step > 0 else (0.0, two_pi)
                pt += [tc, np.nan, tc]
                py += [leave, np.nan, enter]
            pt.append(ts[j])
            py.append(u[j] - two_pi * b)
        cols_t.append(pt)
        cols_y.append(py)
    L = max(map(len, cols_t))
    out_t = np.full((L, len(cols_t)), np.nan)
    out_y = np.full((L, len(cols_t)), np.nan)
    for i, (pt, py) in enumerate(zip(cols_t, cols_y)):
        out_t[: len(pt), i] = pt
        out_y[: len(py), i] = py
    return out_t, out_y


def plot_circle_trajectories(trajectory, ax=None, *, member: int = 0, title: str | None = None):
    """Angles theta_i(t) in [0, 2 pi) against t, lines cut where they wrap (the style of Geshkovski et al.
    2023 (perspective), Fig. 3).

    Paths are drawn by `circle_paths`, so a token crossing 0 = 2 pi leaves the top edge and
    re-enters at the bottom without a vertical jump.

    **Arguments:**

    - `trajectory`: a [`jaxattn.Trajectory`][jaxattn.Trajectory] (or anything with ``ts`` (T,) and ``xs``)
        whose ``xs`` holds angles (T, n) or unit vectors (T, n, 2) on S^1 (with a leading member axis
        for an ensemble).
    - `ax`: a matplotlib axes to draw into; default None: a new 6 x 3.5 inch figure.
    - `member`: the ensemble member drawn; default 0.
    - `title`: the axes title; default None: ``"n tokens on S^1"``.

    **Returns:**

    The axes.

    **Raises:**

    - `ValueError`: the states are neither angles (T, n) nor points (T, n, 2).
    """
    plt = pyplot()
    xs = np.asarray(trajectory.xs, dtype=float)
    if getattr(trajectory, "is_ensemble", False):
        xs = xs[member]
    if xs.ndim == 3 and xs.shape[-1] == 2:
        from .fields import angles_of  # in [0, 2 pi), the axis range below

        xs = np.asarray(angles_of(xs))
    if xs.ndim != 2:
        raise ValueError(f"plot_circle_trajectories needs angles (T, n) or points (T, n, 2), got shape {xs.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    t, y = circle_paths(trajectory.ts, xs)
    colours = plt.cm.viridis(np.linspace(0, 0.9, xs.shape[1]))
    for i in range(xs.shape[1]):
        ax.plot(t[:, i], y[:, i], lw=0.9, color=colours[i])
    ts = np.asarray(trajectory.ts, dtype=float)
    ax.set_xlim(ts[0], ts[-1])
    ax.set_ylim(0, 2 * np.pi)
    ax.set_yticks([0, np.pi / 2, np.pi, 3 * np.pi / 2, 2 * np.pi],
                  ["0", r"$\pi/2$", r"$\pi$", r"$3\pi/2$", r"$2\pi$"])
    ax.set_xlabel("$t$")
    ax.set_ylabel(r"$\theta_i(t)$")
    ax.set_title(title if title is not None else f"{xs.shape[1]} tokens on $S^1$", fontsize=10)
    return ax


def plot_attention(P, ax=None, *, title: str | None = None, colorbar: bool = True, vmax: float | None = 1.0,
                   cmap: str = "Blues"):
    """Heatmap of an (n, n) attention matrix P_ij (row i: query token, column j: key token).

    Tokens are numbered from 1 on both axes (ticks at up to 6 indices), as in Geshkovski, Letrouit,
    Polyanskiy, Rigollet, "The emergence of clusters in self-attention dynamics" (2023), Figs 3 and 11; a colour bar labelled
    $P_{ij}$ is attached unless ``colorbar=False``.

    **Arguments:**

    - `P`: the attention matrix, float (n, m) (rows: queries, columns: keys), entries in [0, 1].
    - `ax`: a matplotlib axes to draw into; default None: a new figure.
    - `title`: the axes title; default None: no title.
    - `colorbar`: attach a colour bar; default True (False: draw one for several panels yourself from
        the returned image, ``ax.images[0]``).
    - `vmax`: the top of the colour scale; default 1; None scales to the data.
    - `cmap`: a matplotlib colour map name; default ``"Blues"``.

    **Returns:**

    The axes.

    **Raises:**

    - `ValueError`: ``P`` is not one 2-d matrix.
    """
    plt = pyplot()
    P = np.asarray(P, dtype=float)
    if P.ndim != 2:
        raise ValueError(f"plot_attention needs one (n, m) matrix, got shape {P.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 3.2), layout="constrained")
    im = ax.imshow(P, cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
    for axis, size in ((ax.xaxis, P.shape[1]), (ax.yaxis, P.shape[0])):
        ticks = np.unique(np.round(np.linspace(0, size - 1, min(size, 6))).astype(int))
        axis.set_ticks(ticks, [str(k + 1) for k in ticks])
    ax.set_xlabel("key token $j$", fontsize=9)
    ax.set_ylabel("query token $i$", fontsize=9)
    ax.tick_params(labelsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label="$P_{ij}$", shrink=0.85)
    return ax


def plot_value_spectra(eigenvalues, heads=None, *, axes=None):
    """Scatter of each head's value-matrix eigenvalues in the complex plane (the style of Geshkovski,
    Letrouit, Polyanskiy, Rigollet 2023 (emergence), Fig. 10).

    **Arguments:**

    - `eigenvalues`: complex (num_heads, dk) (or (dk,) for one head), e.g. the output of
        [`jaxattn.io.value_spectra`][jaxattn.io.value_spectra].
    - `heads`: the 0-based heads to draw, one panel each; default None: every head.
    - `axes`: the matplotlib axes, one per head; default None: a new row of panels.

    **Returns:**

    The axes (an array of matplotlib axes).
    """
    plt = pyplot()
    lam = np.atleast_2d(eigenvalues)
    heads = list(range(lam.shape[0]) if heads is None else heads)
    if axes is None:
        _, axes = plt.subplots(1, len(heads), figsize=(3.2 * len(heads), 3.4), squeeze=False, layout="constrained")
        axes = axes[0]
    for ax, h in zip(np.atleast_1d(axes), heads):
        ax.scatter(lam[h].real, lam[h].imag, color="crimson", edgecolor="k", s=18)
        ax.axhline(0, color="0.7", lw=0.5)
        ax.axvline(0, color="0.7", lw=0.5)
        ax.set_aspect("equal")
        ax.set_xlabel(r"$\mathrm{Re}\,\lambda$")
        ax.set_ylabel(r"$\mathrm{Im}\,\lambda$")
        ax.set_title(f"eigenvalues of $V$, head {h + 1}", fontsize=10)
    return axes


def frame_schedule(ts, xs, frames: int, *, uniform: float = 0.1) -> np.ndarray:
    """Indices of the saved states to show as ``frames`` animation frames, spaced by the motion.

    The frames are equally spaced in the arc length of the motion, s(t_k) = sum over saved steps of the
    mean token displacement |x_i(t_{j+1}) - x_i(t_j)| (angles: the wrapped angle difference), blended with
    time: the schedule follows w(t) = (1 - ``uniform``) s(t) / s(T) + ``uniform`` (t - t_0) / (T - t_0).
    Where the tokens move fast the frames are dense; a long metastable stretch gets few frames (a fraction
    ``uniform`` of them, so that time still visibly passes). ``uniform=1`` gives evenly spaced times.

    **Arguments:**

    - `ts`: the saved times, float (T,).
    - `xs`: the saved states, float (T, n) angles or (T, n, d) points.
    - `frames`: the most frames wanted, an int >= 1.
    - `uniform`: the weight of time against arc length, in [0, 1]; default 0.1.

    **Returns:**

    Increasing indices into ``ts`` (a NumPy int array), first and last included, at most ``frames`` of
    them (fewer when the saved times are too coarse to place them all).

    **Raises:**

    - `ValueError`: ``frames`` < 1, ``uniform`` outside [0, 1], or ``xs`` and ``ts`` of different lengths.
    """
    ts = np.asarray(ts, dtype=float)
    xs = np.asarray(xs, dtype=float)
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if not 0 <= uniform <= 1:
        raise ValueError(f"uniform must be in [0, 1], got {uniform}")
    if ts.ndim != 1 or xs.shape[0] != ts.shape[0]:
        raise ValueError(f"xs has {xs.shape[0]} saved states but ts has shape {ts.shape}")
    T = ts.shape[0]
    if T == 1 or frames == 1:
        return np.array([T - 1] if frames == 1 else [0])
    step = np.diff(xs, axis=0)
    if xs.ndim == 2:  # angles: the shortest way round
        step = np.angle(np.exp(1j * step))
        dist = np.abs(step).mean(axis=1)
    else:
        dist = np.linalg.norm(step, axis=-1).mean(axis=1)
    arc = np.concatenate([[0.0], np.cumsum(dist)])
    span = ts[-1] - ts[0]
    time = (ts - ts[0]) / span if span > 0 else np.linspace(0, 1, T)
    w = (1 - uniform) * (arc / arc[-1] if arc[-1] > 0 else time) + uniform * time
    targets = np.linspace(0.0, 1.0, min(frames, T))
    idx = np.clip(np.searchsorted(w, targets, side="left"), 0, T - 1)
    # the saved state nearest each target (searchsorted gives the first at or above it)
    below = np.clip(idx - 1, 0, T - 1)
    idx = np.where(np.abs(w[below] - targets) < np.abs(w[idx] - targets), below, idx)
    idx[0], idx[-1] = 0, T - 1
    return np.unique(idx)


def _token_space(xs: np.ndarray) -> str:
    """'circle' (angles), 'S1', 'S2', 'R2' or 'R3' for states of shape (T, n) or (T, n, d)."""
    if xs.ndim == 2:
        return "circle"
    d = xs.shape[-1]
    if d not in (2, 3):
        raise ValueError(f"animate draws tokens in dimension 2 or 3 (or angles), got d = {d}; project first "
                         "(e.g. onto the first two or three coordinates)")
    on_sphere = np.max(np.abs(np.linalg.norm(xs, axis=-1) - 1.0)) < 1e-6
    return (f"S{d - 1}" if on_sphere else f"R{d}")


def animate(trajectory, path, *, member: int = 0, frames: int = 80, fps: int = 15, dpi: int = 96,
            size: float = 5.0, title: str | None = None, uniform: float = 0.1, hold: float = 1.0):
    """Write an animation of the tokens x_i(t) of a trajectory: a GIF, or an MP4 if ``path`` ends in .mp4.

    Tokens are drawn on S^1 (angles or unit vectors in R^2), S^2 (unit vectors in R^3; tokens on the far
    side of the sphere from the viewer are faded), or in R^2 / R^3 with fixed axes covering the whole
    path. The saved states shown are chosen by `frame_schedule`: equally spaced in the arc length of the
    motion (blended with time by ``uniform``), so the frames go where the tokens move and a metastable
    stretch passes quickly; every frame is labelled with its t. Save the trajectory densely (e.g.
    ``ts=401``) so that the schedule has states to choose from. GIFs use matplotlib's Pillow writer (no
    ffmpeg needed); MP4 needs ffmpeg on the PATH.

    **Arguments:**

    - `trajectory`: a [`jaxattn.Trajectory`][jaxattn.Trajectory] (or anything with ``ts`` (T,) and ``xs``
        (T, n) angles or (T, n, d) points, d = 2 or 3), finite.
    - `path`: the file to write, ending in ``.gif`` or ``.mp4``.
    - `member`: the ensemble member drawn; default 0.
    - `frames`: the most saved states shown, >= 1; default 80.
    - `fps`: frames per second; default 15.
    - `dpi`: resolution; default 96 (with ``size`` 5: 480 x 480 pixels).
    - `size`: the picture's side in inches; default 5.
    - `title`: the figure title; default None: ``"n tokens on <space>"``.
    - `uniform`: the weight of time against arc length in the schedule, in [0, 1]; default 0.1.
    - `hold`: seconds the last frame is held, >= 0; default 1.

    **Returns:**

    The path written (a ``pathlib.Path``).

    **Raises:**

    - `RuntimeError`: an ``.mp4`` path without ffmpeg on the PATH.
    - `ValueError`: another suffix; ``xs`` and ``ts`` of different lengths; NaN/inf states; ``hold`` < 0;
        tokens in a dimension other than 2 or 3 (or angles); a bad ``frames``/``uniform``.
    """
    from pathlib import Path

    from matplotlib import animation

    plt = pyplot()
    path = Path(path)
    mp4 = path.suffix.lower() == ".mp4"
    if mp4 and not animation.writers.is_available("ffmpeg"):
        raise RuntimeError(f"writing {path} needs ffmpeg on the PATH; install it, or write a GIF (path ending "
                           "in .gif), which needs only Pillow")
    if not mp4 and path.suffix.lower() != ".gif":
        raise ValueError(f"animate writes .gif or .mp4 files, got {path.name!r}")
    ts = np.asarray(trajectory.ts, dtype=float)
    xs = np.asarray(trajectory.xs, dtype=float)
    if getattr(trajectory, "is_ensemble", False):
        xs = xs[member]
    if xs.shape[0] != ts.shape[0]:
        raise ValueError(f"xs has {xs.shape[0]} saved states but ts has {ts.shape[0]} times")
    if not np.all(np.isfinite(xs)):
        raise ValueError("the trajectory contains NaN or inf; nothing sensible to draw")
    if hold < 0:
        raise ValueError(f"hold must be >= 0 seconds, got {hold}")
    idx = frame_schedule(ts, xs, frames, uniform=uniform)
    idx = np.concatenate([idx, np.full(int(round(hold * fps)), idx[-1])])  # rest on the final state
    space = _token_space(xs)
    n = xs.shape[1]
    colours = plt.cm.viridis(np.linspace(0, 1, n))
    fig = plt.figure(figsize=(size, size))
    if space == "S2":
        ax = fig.add_subplot(projection="3d", computed_zorder=False)
        u, v = np.mgrid[0 : 2 * np.pi : 30j, 0 : np.pi : 15j]
        ax.plot_wireframe(np.cos(u) * np.sin(v), np.sin(u) * np.sin(v), np.cos(v), color="0.85", lw=0.3)
        ax.set_box_aspect((1, 1, 1), zoom=1.45)  # the sphere fills the frame
        fig.subplots_adjust(left=0, right=1, bottom=0, top=0.95)
        ax.set_axis_off()
        ax.set(xlim=(-1, 1), ylim=(-1, 1), zlim=(-1, 1))
        view = _view_direction(ax)
        scat = ax.scatter(*xs[0].T, s=36, depthshade=False)

        def draw(k):
            x = xs[k]
            rgba = colours.copy()
            rgba[:, 3] = np.where(x @ view >= 0, 1.0, 0.2)  # far side faded
            scat._offsets3d = tuple(x.T)
            scat.set_facecolor(rgba)
            scat.set_edgecolor(rgba)
    elif space == "R3":
        ax = fig.add_subplot(projection="3d")
        lo, hi = xs.min(axis=(0, 1)), xs.max(axis=(0, 1))
        pad = 0.05 * np.maximum(hi - lo, 1e-12)
        ax.set(xlim=(lo[0] - pad[0], hi[0] + pad[0]), ylim=(lo[1] - pad[1], hi[1] + pad[1]),
               zlim=(lo[2] - pad[2], hi[2] + pad[2]))
        scat = ax.scatter(*xs[0].T, s=22, color=colours, depthshade=True)

        def draw(k):
            scat._offsets3d = tuple(xs[k].T)
    else:
        ax = fig.add_subplot()
        ax.set_aspect("equal")
        if space in ("circle", "S1"):
            pts = np.stack([np.cos(xs), np.sin(xs)], -1) if space == "circle" else xs
            phi = np.linspace(0, 2 * np.pi, 200)
            ax.plot(np.cos(phi), np.sin(phi), color="0.8", lw=1)
            ax.set(xlim=(-1.15, 1.15), ylim=(-1.15, 1.15))
            ax.set_axis_off()
        else:
            pts = xs
            lo, hi = xs.min(axis=(0, 1)), xs.max(axis=(0, 1))
            pad = 0.05 * np.maximum(hi - lo, 1e-12)
            ax.set(xlim=(lo[0] - pad[0], hi[0] + pad[0]), ylim=(lo[1] - pad[1], hi[1] + pad[1]))
        scat = ax.scatter(*pts[0].T, s=22, color=colours, zorder=3)

        def draw(k):
            scat.set_offsets(pts[k])
    manifold = {"circle": "$S^1$", "S1": "$S^1$", "S2": "$S^2$", "R2": r"$\mathbb{R}^2$", "R3": r"$\mathbb{R}^3$"}
    label = fig.text(0.02, 0.02, "", fontsize=9)
    fig.suptitle(title or f"{n} tokens on {manifold[space]}", fontsize=10)

    def update(frame):
        k = idx[frame]
        draw(k)
        label.set_text(f"t = {ts[k]:.3g}")
        return (scat, label)

    anim = animation.FuncAnimation(fig, update, frames=len(idx), blit=False)
    writer = animation.FFMpegWriter(fps=fps) if mp4 else animation.PillowWriter(fps=fps)
    anim.save(path, writer=writer, dpi=dpi)
    plt.close(fig)
    return path
