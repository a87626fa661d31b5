"""Plot helpers for notebooks/paper_000_hardmax.ipynb (Figure 2 gallery of paper 000)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from jaxattn.layers.hardmax import HardmaxTransformer, attracting_set, convex_hull_vertices, figure2_tokens


def figure2(rows=("A", "B", "C", "D"), layers=(0, 1, 2, 5, 30), alpha=0.5, seed=0):
    """Figure 2: tokens at selected layers; stars = tokens with C_i = {i}; last column shades conv(leaders)
    and marks the computed attracting set S (crosses)."""
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
                if len(V) >= 3:
                    cen = V.mean(0)
                    order = np.argsort(np.arctan2(*(V - cen).T[::-1]))
                    ax.fill(V[order, 0], V[order, 1], alpha=0.2, color="tab:blue")
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
