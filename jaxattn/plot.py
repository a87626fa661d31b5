"""Matplotlib helpers used by the CLI, the notebooks and the README gallery.

:func:`pyplot` is the one way the library gets ``matplotlib.pyplot`` (imported lazily, so
matplotlib stays optional until something is plotted).
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_circle_trajectories", "plot_sphere_trajectories", "plot_value_spectra", "pyplot"]


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
