"""Reproduction of Figure 2 of Alcalde, Fantuzzi, Zuazua 2024 (paper 000).

*Clustering in pure-attention hardmax transformers and its role in sentiment analysis*
(arXiv 2407.01602; SIAM J. Math. Data Sci. 2025). Figure 2 shows the hardmax layers
(eq. (1.1), alpha = 0.5, A = I) on four 2-D token sets: A (triangular polytope), B (a
leader that emerges at layer 1), C (square polytope) and D (tokens tied between two
vertices that converge to non-vertex points of the attracting set S of (4.1)).

The layer map is `jaxattn.layers.hardmax`, the polytope and S are
`jaxattn.layers.polytope`, the figure is [`jaxattn.studies.figures.plot_paper000_fig2`][jaxattn.studies.figures.plot_paper000_fig2]; Figures 9-10 and Table 1 (the sentiment classifier of §6)
are `jaxattn.sentiment`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["Row", "figure2_tokens"]

Row = Literal["A", "B", "C", "D"]


def figure2_tokens(row: Row, seed: int = 0) -> np.ndarray:
    """Initial tokens of the paper's Figure 2 rows (from the authors' ``dynamics.ipynb``).

    Rows A, C and D add uniform random tokens (seeded here; the authors set no seed),
    row B is fully deterministic. Use alpha = 0.5, A = I and 30 layers as in the paper.

    **Arguments:**

    - `row`: "A", "B", "C" or "D".
    - `seed`: the seed of the random tokens; default 0.

    **Returns:**

    The tokens, a NumPy float64 array (n, 2).

    **Raises:**

    - `ValueError`: an unknown row.
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


