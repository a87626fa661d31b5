"""Figures 9 and 10 of paper 000 (through `jaxattn.plot.pyplot`; imported lazily by the CLI)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from .data import Vocabulary
from .model import SentimentClassifier


def plot_review(ax, model: SentimentClassifier, ids: np.ndarray, vocab: Vocabulary, *, title: str = "",
                max_labels: int = 12):
    """Figure 9 panel: hardmax token trajectories of one review in d = 2.

    Circles: tokens at layer 0 (faint) and K; grey lines: their paths; stars: leaders,
    labelled by word; black triangle: the mean token; dashed line: H(z) = w.z + v = 0
    with the positive half-plane green and the negative one red. With the model's padding
    mask (the default) the ``<pad>`` tokens are left out: they take no part in the prediction.

    **Arguments:**

    - `ax`: a Matplotlib axes.
    - `model`: a [`SentimentClassifier`][jaxattn.sentiment.SentimentClassifier] with d = 2.
    - `ids`: the token ids of the review, int (n,).
    - `vocab`: the model's vocabulary.
    - `title`: the panel's title; default "".
    - `max_labels`: label at most this many leaders (those with the largest |H|); default 12.

    **Returns:**

    ``ax``.

    **Raises:**

    - `ValueError`: the model's d is not 2.
    """
    import jax.numpy as jnp

    if model.dim != 2:
        raise ValueError(f"Figure 9 needs a d = 2 model, this one has d = {model.dim}")
    traj = model.hardmax_trajectory(jnp.asarray(ids), store_attention=False)
    mask = model.padding_mask(jnp.asarray(ids))
    keep = np.ones(len(ids), bool) if mask is None else np.asarray(mask)
    Z = np.asarray(traj.tokens)[:, keep]
    ids = np.asarray(ids)[keep]
    lead = np.flatnonzero(np.isin(np.flatnonzero(keep), traj.leader_indices()))
    for i in range(Z.shape[1]):
        ax.plot(Z[:, i, 0], Z[:, i, 1], color="0.7", lw=0.5, zorder=1)
    ax.scatter(Z[0, :, 0], Z[0, :, 1], s=8, facecolors="none", edgecolors="0.6", zorder=2, label="layer 0")
    ax.scatter(Z[-1, :, 0], Z[-1, :, 1], s=14, color="tab:blue", zorder=3, label=f"layer {Z.shape[0] - 1}")
    ax.scatter(Z[-1, lead, 0], Z[-1, lead, 1], marker="*", s=160, color="gold", edgecolors="k", zorder=4,
               label="leaders")
    w, v = np.asarray(model.weight), float(model.bias)
    H = Z[-1, lead] @ w + v
    for rank, i in enumerate(lead[np.argsort(-np.abs(H))]):
        if rank < max_labels:
            ax.annotate(vocab.words[int(ids[i])], Z[-1, i], xytext=(4, 4), textcoords="offset points", fontsize=8)
    zbar = Z[-1].mean(0)
    ax.scatter([zbar[0]], [zbar[1]], marker="^", s=90, color="k", zorder=5, label="mean token")
    pts = Z.reshape(-1, 2)
    lo, hi = pts.min(0), pts.max(0)
    pad = 0.15 * (hi - lo) + 1e-3
    lo, hi = lo - pad, hi + pad
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    side = w[0] * xx + w[1] * yy + v
    ax.contourf(xx, yy, side, levels=[-np.inf, 0, np.inf], colors=["#f4c7c3", "#c8e6c9"], alpha=0.5, zorder=0)
    ax.contour(xx, yy, side, levels=[0], colors="k", linestyles="--", linewidths=1)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_title(title)
    return ax


def figure9(model: SentimentClassifier, ids_pos: np.ndarray, ids_neg: np.ndarray, vocab: Vocabulary):
    """Figure 9: one positive and one negative review side by side.

    **Arguments:**

    - `model`: a [`SentimentClassifier`][jaxattn.sentiment.SentimentClassifier] with d = 2.
    - `ids_pos`: the token ids of the positive review, int (n,).
    - `ids_neg`: the token ids of the negative review, int (n,).
    - `vocab`: the model's vocabulary.

    **Returns:**

    The Matplotlib figure.
    """
    from ..plot import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    plot_review(axes[0], model, ids_pos, vocab, title="positive review")
    plot_review(axes[1], model, ids_neg, vocab, title="negative review")
    axes[0].legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def figure10(counts: Counter, top: int = 15, title: str = "most frequent leaders with |H| >= 2"):
    """Figure 10: histogram of the ``top`` most frequent far-from-boundary leader words.

    **Arguments:**

    - `counts`: word counts (as returned by [`far_leader_counts`][jaxattn.sentiment.analysis.far_leader_counts]).
    - `top`: how many words; default 15.
    - `title`: the title; default "most frequent leaders with |H| >= 2".

    **Returns:**

    The Matplotlib figure.
    """
    from ..plot import pyplot

    plt = pyplot()
    items = counts.most_common(top)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar([w for w, _ in items], [c for _, c in items], color="tab:blue")
    ax.set_ylabel("count")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=60)
    fig.tight_layout()
    return fig


def pick_reviews(model: SentimentClassifier, ids: np.ndarray, labels: np.ndarray, *, confidence: float = 0.99,
                 index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A confidently and correctly classified positive and negative review (as the authors chose them).

    Falls back to any correctly classified review of the label, then to any review of the label.

    **Arguments:**

    - `model`: a [`SentimentClassifier`][jaxattn.sentiment.SentimentClassifier].
    - `ids`: token ids, int (N, n).
    - `labels`: the labels, (N,), 1 = positive.
    - `confidence`: the least hardmax probability of the predicted label; default 0.99.
    - `index`: which of the candidates (clipped to their number); default 0.

    **Returns:**

    ``(ids_pos, ids_neg)``: the token ids of the two reviews.
    """
    from .training import predict

    logit = predict(model, ids, "hardmax")
    p = 1 / (1 + np.exp(-logit))
    picks = []
    for lab in (1, 0):
        ok = (labels == lab) & ((p > 0.5) == (lab == 1))
        conf = ok & ((p > confidence) if lab else (p < 1 - confidence))
        cand = np.flatnonzero(conf) if conf.any() else np.flatnonzero(ok)
        if len(cand) == 0:
            cand = np.flatnonzero(labels == lab)
        picks.append(ids[cand[min(index, len(cand) - 1)]])
    return picks[0], picks[1]
