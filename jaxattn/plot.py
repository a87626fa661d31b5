"""Matplotlib helpers used by the CLI, the notebooks and the README gallery.

:func:`pyplot` is the one way the library gets ``matplotlib.pyplot`` (imported lazily, so
matplotlib stays optional until something is plotted).
"""

from __future__ import annotations

import numpy as np

__all__ = ["animate", "plot_circle_trajectories", "plot_sphere_trajectories", "plot_value_spectra", "pyplot"]


def pyplot():
    """``matplotlib.pyplot``, switched to the non-interactive Agg backend unless a notebook
    (inline) backend is active."""
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        try:
            matplotlib.use("Agg", force=False)
        except Exception:  # pragma: no cover - a GUI backend already in use
            pass
    import matplotlib.pyplot as plt

    return plt


def plot_sphere_trajectories(trajectory, ax=None, *, member: int = 0, title: str | None = None):
    """Draw token paths on S^2 (start: small dots, end: large dots) on a wireframe sphere."""
    plt = pyplot()
    xs = np.asarray(trajectory.xs)
    if trajectory.is_ensemble:
        xs = xs[member]
    if xs.shape[-1] != 3:
        raise ValueError(f"plot_sphere_trajectories needs tokens in R^3, got d = {xs.shape[-1]}")
    if ax is None:
        fig = plt.figure(figsize=(6, 6))
        ax = fig.add_subplot(projection="3d")
    u, v = np.mgrid[0 : 2 * np.pi : 40j, 0 : np.pi : 20j]
    ax.plot_wireframe(np.cos(u) * np.sin(v), np.sin(u) * np.sin(v), np.cos(v), color="0.85", lw=0.4)
    colours = plt.cm.viridis(np.linspace(0, 1, xs.shape[1]))
    for i in range(xs.shape[1]):
        ax.plot(xs[:, i, 0], xs[:, i, 1], xs[:, i, 2], color=colours[i], lw=1.0)
    ax.scatter(*xs[0].T, color=colours, s=8, depthshade=False)
    ax.scatter(*xs[-1].T, color="crimson", s=40, depthshade=False, label=f"t = {float(trajectory.ts[-1]):g}")
    ax.set_box_aspect((1, 1, 1))
    ax.set_axis_off()
    ax.legend(loc="upper left")
    if title:
        ax.set_title(title)
    return ax


def plot_circle_trajectories(trajectory, ax=None, *, member: int = 0):
    """Angles theta_i(t) against t (paper 002 Fig 3 style)."""
    plt = pyplot()
    xs = np.asarray(trajectory.xs)
    if trajectory.is_ensemble:
        xs = xs[member]
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.asarray(trajectory.ts), np.mod(xs, 2 * np.pi), lw=0.8)
    ax.set_xlabel("t")
    ax.set_ylabel(r"$\theta_i(t)$")
    return ax


def plot_value_spectra(eigenvalues, heads=None, *, axes=None):
    """Scatter of each head's value-matrix eigenvalues in the complex plane.

    Geshkovski, Letrouit, Polyanskiy, Rigollet 2023, Fig. 10 style; ``eigenvalues`` is the
    (num_heads, dk) output of :func:`jaxattn.io.value_spectra`.
    """
    plt = pyplot()
    lam = np.atleast_2d(eigenvalues)
    heads = list(range(lam.shape[0]) if heads is None else heads)
    if axes is None:
        _, axes = plt.subplots(1, len(heads), figsize=(3.2 * len(heads), 3.2), squeeze=False)
        axes = axes[0]
    for ax, h in zip(np.atleast_1d(axes), heads):
        ax.scatter(lam[h].real, lam[h].imag, color="crimson", edgecolor="k", s=18)
        ax.axhline(0, color="0.7", lw=0.5)
        ax.axvline(0, color="0.7", lw=0.5)
        ax.set_aspect("equal")
        ax.set_title(f"Eigenvalues of value matrix for head {h + 1}")
    return axes


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


def animate(trajectory, path, *, member: int = 0, frames: int = 60, fps: int = 12, dpi: int = 80,
            size: float = 4.0, title: str | None = None):
    """Write an animation of the tokens x_i(t) of a trajectory: a GIF, or an MP4 if ``path`` ends in .mp4.

    ``trajectory`` is a :class:`jaxattn.Trajectory` (or anything with ``ts`` (T,) and ``xs`` (T, n) angles or
    (T, n, d) points; ensembles draw ``member``). Tokens are drawn on S^1 (angles or unit vectors in R^2),
    S^2 (unit vectors in R^3; tokens on the far side of the sphere from the viewer are faded), or in R^2 / R^3
    with fixed axes covering the whole path. ``frames`` saved times (evenly spaced indices, first and last
    included; at most T) become frames shown at ``fps`` frames per second; every frame is labelled with its t.

    GIFs use matplotlib's Pillow writer (no ffmpeg needed); MP4 needs ffmpeg on the PATH.
    Returns the path written.
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
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    idx = np.unique(np.round(np.linspace(0, len(ts) - 1, min(frames, len(ts)))).astype(int))
    space = _token_space(xs)
    n = xs.shape[1]
    colours = plt.cm.viridis(np.linspace(0, 1, n))
    fig = plt.figure(figsize=(size, size))
    if space == "S2":
        ax = fig.add_subplot(projection="3d", computed_zorder=False)
        u, v = np.mgrid[0 : 2 * np.pi : 30j, 0 : np.pi : 15j]
        ax.plot_wireframe(np.cos(u) * np.sin(v), np.sin(u) * np.sin(v), np.cos(v), color="0.85", lw=0.3)
        ax.set_box_aspect((1, 1, 1))
        ax.set_axis_off()
        ax.set(xlim=(-1, 1), ylim=(-1, 1), zlim=(-1, 1))
        elev, azim = np.radians(ax.elev), np.radians(ax.azim)
        view = np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)])
        scat = ax.scatter(*xs[0].T, s=22, depthshade=False)

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
