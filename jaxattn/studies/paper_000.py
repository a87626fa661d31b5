"""Reproduction of Figure 2 of Alcalde, Fantuzzi, Zuazua 2024 (paper 000).

*Clustering in pure-attention hardmax transformers and its role in sentiment analysis*
(arXiv 2407.01602; SIAM J. Math. Data Sci. 2025). Figure 2 shows the hardmax layers
(eq. (1.1), alpha = 0.5, A = I) on four 2-D token sets: A (triangular polytope), B (a
leader that emerges at layer 1), C (square polytope) and D (tokens tied between two
vertices that converge to non-vertex points of the attracting set S of (4.1)).

The layer map is `jaxattn.layers.hardmax`, the polytope and S are
`jaxattn.layers.polytope`; Figures 9-10 and Table 1 (the sentiment classifier of §6)
are `jaxattn.sentiment`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from ..layers import HardmaxTransformer, attracting_set, convex_hull_vertices
from .figures import fill_convex_polygon

__all__ = ["figure2", "figure2_tokens"]

Row = Literal["A", "B", "C", "D"]


def figure2_tokens(row: Row, seed: int = 0) -> np.ndarray:
    """Initial tokens of the paper's Figure 2 rows (from the authors' ``dynamics.ipynb``).

    Rows A, C and D add uniform random tokens (seeded here; the authors set no seed),
    row B is fully deterministic. Use alpha = 0.5, A = I and 30 layers as in the paper.
    """
    rng = np.random.default_rng(seed)
    if row == "A":  # triangular polytope
        fixed = [(1, 1), (0.5, -0.5), (-1, -1), (0.3, -0.2), (0.1, -0.2)]
        rand = np.vstack([rng.uniform(0, 1, (2, 2)), rng.uniform(-1, 0, (2, 2))])
    elif row == "B":  # emerging leader
        fixed = [(1, 1 / 3), (-1 / 12, 1 / 12), (-1, -1), (0, 1 / 4), (-0.3, -0.7), (-0.6, -0.9),
                 (0.8, 0.1), (0.6, 0.15)]
        rand = np.zeros((0, 2))
    elif row == "C":  # square polytope
        fixed = [(1, 1), (1, -1), (-1, -1), (-1, 1)]
        rand = rng.uniform(-0.5, 0.5, (6, 2))
    elif row == "D":  # non-leader clusters
        fixed = [(1, 1), (1, -1), (-1, -1), (-1, 1), (-0.5, 0), (0.5, 0)]
        rand = rng.uniform(-0.5, 0.5, (4, 2))
    else:
        raise ValueError(f"row must be one of 'A', 'B', 'C', 'D', got {row!r}")
    return np.vstack([np.asarray(fixed, dtype=np.float64), rand])


def figure2(rows: Sequence[Row] = ("A", "B", "C", "D"), layers: Sequence[int] = (0, 1, 2, 5, 30),
            alpha: float = 0.5, seed: int = 0):
    """Figure 2: tokens of each row at the given layers (alpha, A = I).

    Colour: the first token each one attends to; gold stars: tokens with C_i(Z^k) = {i}
    (leaders, Definition 1.1). The last column shades conv(leader limits) and marks the
    computed attracting set S (red crosses, origin excluded). Returns the figure.
    """
    from ..plot import pyplot

    plt = pyplot()
    K = max(layers)
    fig, axes = plt.subplots(len(rows), len(layers), figsize=(2.6 * len(layers), 2.6 * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        traj = HardmaxTransformer(alpha, num_layers=K).trajectory(figure2_tokens(row, seed))
        Z, leads = np.asarray(traj.tokens), np.asarray(traj.leads)
        for c, k in enumerate(layers):
            ax = axes[r, c]
            follow = [C[0] for C in traj.attention_sets(k)]
            ax.scatter(Z[k, :, 0], Z[k, :, 1], c=follow, cmap="tab10", vmin=0, vmax=9, s=25,
                       marker="o", edgecolors="k", linewidths=0.3)
            ax.scatter(Z[k, leads[k], 0], Z[k, leads[k], 1], marker="*", s=180, c="gold", edgecolors="k")
            if c == len(layers) - 1:
                V = convex_hull_vertices(Z[-1])
                fill_convex_polygon(ax, V, alpha=0.2, color="tab:blue")
                S = attracting_set(V)
                ax.scatter(S[:, 0], S[:, 1], marker="x", c="r", s=40)
            ax.set_xlim(-1.3, 1.3)
            ax.set_ylim(-1.3, 1.3)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"k = {k}")
            if c == 0:
                ax.set_ylabel(f"row {row}")
    fig.tight_layout()
    return fig
