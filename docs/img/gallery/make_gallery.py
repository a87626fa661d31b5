"""Regenerate the README gallery: ``python docs/img/gallery/make_gallery.py [--out DIR] [--dpi 80]``.

Five small PNGs of figures the library draws, at sizes that run in about half a minute on one CPU core.
Each entry of ``FIGURES`` is a file name and a function that returns the matplotlib figure.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

import jaxattn
from jaxattn.plot import plot_circle_trajectories, plot_sphere_trajectories, pyplot
from jaxattn.studies import figures, paper_001, paper_002


def demo_sphere():
    """``jaxattn demo``: (SA) on S^2, n = 32, beta = 9, seed 0, t in [0, 30]."""
    x0 = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(0), 32, 3)
    traj = jaxattn.simulate(jaxattn.SelfAttention(9.0), x0, 30.0)
    return plot_sphere_trajectories(traj, title=r"SA on $S^2$: $n = 32$, $\beta = 9$, seed 0").figure


def circle():
    """(SA) on the circle (paper 002 eq. (6.1)) in angles, n = 16, beta = 4."""
    x0 = jaxattn.initial.uniform_circle(jax.random.PRNGKey(1), 16)
    traj = jaxattn.simulate(jaxattn.CircleSelfAttention(4.0), x0, 20.0, ts=201)
    return plot_circle_trajectories(traj, title=r"SA on $S^1$: $n = 16$, $\beta = 4$").figure


def phase_diagram():
    """Paper 002 Fig. 2 at a small size: n = 8, d = 3, 8 x 16 realisations per beta."""
    with tempfile.TemporaryDirectory() as tmp:
        ds = paper_002.phase_diagram(np.linspace(0.5, 6.0, 12), np.linspace(0.0, 15.0, 31), directory=tmp, n=8,
                                     d=3, batch=16, seeds=8, progress=False)
    return figures.plot_phase_diagram(ds).figure


def attention():
    """Paper 001 Thm 2.1 / Fig 3: sorted attention matrices becoming Boolean, n = 20, d = 1."""
    ds = paper_001.boolean_attention(n=20, ts=(0.0, 1.0, 2.0, 4.0))
    return figures.plot_attention_matrices(ds)[0].figure


def polytope():
    """Paper 001 Thm 3.1 (V = I): tokens converge to the vertices of the initial convex hull, d = 2."""
    ds = paper_001.rescaled_trajectories(np.eye(2), n=30, t1=8.0, ts=np.linspace(0.0, 8.0, 41))
    return figures.plot_tokens(ds).figure


FIGURES = {"demo_sphere.png": demo_sphere, "circle.png": circle, "phase_diagram.png": phase_diagram,
           "attention.png": attention, "polytope.png": polytope}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent, help="folder (default: this one)")
    parser.add_argument("--dpi", type=int, default=80, help="resolution of the PNGs (default: 80)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    for name, make in FIGURES.items():
        start = time.perf_counter()
        fig = make()
        fig.savefig(args.out / name, dpi=args.dpi, bbox_inches="tight", pad_inches=0.03)
        plt.close(fig)
        size = (args.out / name).stat().st_size / 1024
        print(f"{name:20s} {time.perf_counter() - start:5.1f} s  {size:5.1f} KB")


if __name__ == "__main__":
    main()
