"""Interpretation of a trained classifier through its hardmax leaders (paper 000 §6.3).

* `explain`: the leaders of one review (word, position, layer determined, H value).
* `leader_statistics`: Table 1 (number of leaders per review m, its spread, and
  the mean fraction m_0/m determined at layer 0).
* `far_leader_counts`: Figure 10's counts: leader words with |H(z)| >= 2 at layer K
  in correctly classified test reviews (each distinct leader word once per review).

Leaders follow `jaxattn.layers.hardmax`: a word leads if its token's attention set
contains only copies of itself at some layer k <= K; repeated words count once. With the
model's padding mask (``SentimentClassifier.mask_padding``, the default) ``<pad>`` is
never a leader and the mean token is taken over the real words, as in the prediction.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import Counter

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .data import PAD_ID, UNK_ID, Vocabulary, tokenize
from .model import SentimentClassifier


@dataclasses.dataclass
class Leader:
    """A leader of a review: a word whose token's attention set holds only copies of itself from some layer on.

    **Attributes:**

    - `word`: the word.
    - `position`: the first position of the word in the (truncated, padded) review.
    - `layer`: the layer at which it became a leader.
    - `decision`: H(z) = w . z + v at its final position (> 0: the positive side).
    - `point`: its final position z^K, a tuple of d floats.
    """

    word: str
    position: int  # first position of the word in the (truncated, padded) review
    layer: int  # layer at which it became a leader
    decision: float  # H(z) = w . z + v at its final position (>0: positive side)
    point: tuple[float, ...]  # final position z^K


@dataclasses.dataclass
class Explanation:
    """The hardmax leaders and the predictions of one review ([`explain`][jaxattn.sentiment.analysis.explain]).

    **Attributes:**

    - `words`: the review's n tokens as words (``<pad>`` and ``<unk>`` included).
    - `prob_hardmax`: the probability of "positive" with the hardmax layer.
    - `prob_softmax`: the probability of "positive" with the softmax layer.
    - `leaders`: the [`Leader`][jaxattn.sentiment.analysis.Leader]s (each word once).
    - `mean_token`: the pooled final token zbar, a tuple of d floats.
    - `warning`: set when the prediction does not rest on any known word; default None.
    """

    words: list[str]
    prob_hardmax: float
    prob_softmax: float
    leaders: list[Leader]
    mean_token: tuple[float, ...]
    warning: str | None = None  # set when the prediction does not rest on any known word

    def format(self) -> str:
        """The explanation as text: the warning, the prediction, then the leaders sorted by |H|.

        **Returns:**

        A multi-line string.
        """
        label = "positive" if self.prob_hardmax > 0.5 else "negative"
        lines = [f"warning: {self.warning}"] if self.warning else []
        lines += [f"prediction: {label} (hardmax p = {self.prob_hardmax:.4f}, softmax p = {self.prob_softmax:.4f})",
                 f"{len(self.leaders)} leaders (sorted by |H|; H > 0 pushes towards positive):"]
        for ld in sorted(self.leaders, key=lambda l: -abs(l.decision)):
            lines.append(f"  {ld.word:<20s} H = {ld.decision:+8.3f}   position {ld.position:3d}   leader from layer "
                         f"{ld.layer}")
        return "\n".join(lines)


def encode_text(text: str, vocab: Vocabulary, seq_len: int = 128) -> np.ndarray:
    """Token ids of one text, tokenised like the training data and truncated / padded to ``seq_len``.

    **Arguments:**

    - `text`: a review.
    - `vocab`: the model's vocabulary.
    - `seq_len`: the number of tokens n; default 128.

    **Returns:**

    A NumPy int32 array (seq_len,).
    """
    return vocab.encode([tokenize(text)], seq_len)[0]


def review_leaders(model: SentimentClassifier, ids: np.ndarray, vocab: Vocabulary) -> Explanation:
    """Leaders and predictions of one encoded review.

    **Arguments:**

    - `model`: a trained [`SentimentClassifier`][jaxattn.sentiment.SentimentClassifier].
    - `ids`: the token ids of the review, int (n,).
    - `vocab`: the model's vocabulary.

    **Returns:**

    An [`Explanation`][jaxattn.sentiment.analysis.Explanation] (without ``warning``).
    """
    ids = jnp.asarray(ids)
    traj = model.hardmax_trajectory(ids, store_attention=False)
    final = np.asarray(traj.final)
    H = np.asarray(model.decision(traj.final))
    leaders = [Leader(vocab.words[int(ids[i])], int(i), int(traj.leader_layer[i]), float(H[i]),
                      tuple(float(v) for v in final[i])) for i in traj.leader_indices()]
    zbar = np.asarray(model.pool(traj.final, model.padding_mask(ids)))
    return Explanation(vocab.decode(np.asarray(ids)), float(model(ids, "hardmax")), float(model(ids, "softmax")),
                       leaders, tuple(float(v) for v in zbar))


def unknown_words_warning(ids: np.ndarray, text: str | None = None) -> str | None:
    """A warning when a review has no word of the vocabulary: its prediction then reflects only the ``<unk>``
    (or ``<pad>``) embedding, the same for every such text, and says nothing about the review.

    **Arguments:**

    - `ids`: the token ids of the review, int (n,).
    - `text`: the review's text (unused); default None.

    **Returns:**

    The warning, or None when the review has a known word.
    """
    ids = np.asarray(ids)
    if np.any((ids != PAD_ID) & (ids != UNK_ID)):
        return None
    n_unknown = int(np.sum(ids == UNK_ID))
    what = (f"all {n_unknown} words of the review are unknown to the model's vocabulary (<unk>)" if n_unknown
            else "the review has no words left after tokenisation (HTML, stop words and non-letters are removed)")
    return (f"{what}: the prediction below is the model's output for an empty/unknown review, the same for every "
            "such text, not a judgement of this one")


def explain(model: SentimentClassifier, vocab: Vocabulary, text: str, seq_len: int = 128) -> Explanation:
    """Tokenise ``text`` like the training data (n = ``seq_len`` words, padded) and return its leaders.

    A text with no word of the vocabulary gets `Explanation.warning` (printed first by ``format``) and a
    ``UserWarning``: its prediction does not depend on the text.

    **Arguments:**

    - `model`: a trained [`SentimentClassifier`][jaxattn.sentiment.SentimentClassifier].
    - `vocab`: the model's vocabulary.
    - `text`: the review.
    - `seq_len`: the number of tokens n; default 128.

    **Returns:**

    An [`Explanation`][jaxattn.sentiment.analysis.Explanation].
    """
    ids = encode_text(text, vocab, seq_len)
    out = review_leaders(model, ids, vocab)
    out.warning = unknown_words_warning(ids)
    if out.warning:
        warnings.warn(out.warning, UserWarning, stacklevel=2)
    return out


@eqx.filter_jit
def _batch_leaders(model, ids):
    def one(x):
        t = model.hardmax_trajectory(x, store_attention=False)
        own = t.first_copy == jnp.arange(x.shape[0])
        lead = t.is_leader & own
        H = model.decision(t.final)
        logit = model.decision(model.pool(t.final, model.padding_mask(x)))
        return lead, t.leader_layer, H, logit

    return jax.vmap(one)(ids)


def batch_leaders(model: SentimentClassifier, ids: np.ndarray, chunk: int = 256):
    """For each review: distinct-leader mask (N, n), leader layers (N, n), H at layer K (N, n), hardmax logit (N,).

    **Arguments:**

    - `model`: a trained [`SentimentClassifier`][jaxattn.sentiment.SentimentClassifier].
    - `ids`: token ids, int (N, n).
    - `chunk`: reviews per jitted batch; default 256.

    **Returns:**

    ``(lead, layer, H, logit)``: NumPy arrays bool (N, n), int (N, n), float (N, n), float (N,).
    """
    outs = [tuple(np.asarray(o) for o in _batch_leaders(model, jnp.asarray(ids[s:s + chunk])))
            for s in range(0, len(ids), chunk)]
    return tuple(np.concatenate(parts) for parts in zip(*outs))


def leader_statistics(model: SentimentClassifier, ids: np.ndarray, chunk: int = 256) -> dict[str, float]:
    """Table 1 row: mean, std, min, max of the number of leaders m, and mean(m_0 / m).

    **Arguments:**

    - `model`: a trained [`SentimentClassifier`][jaxattn.sentiment.SentimentClassifier].
    - `ids`: token ids, int (N, n).
    - `chunk`: reviews per jitted batch; default 256.

    **Returns:**

    A dict with keys "d", "m_mean", "m_std", "m_min", "m_max", "m0_over_m", "reviews".
    """
    lead, layer, _, _ = batch_leaders(model, ids, chunk)
    m = lead.sum(1)
    m0 = (lead & (layer == 0)).sum(1)
    return {"d": model.dim, "m_mean": float(m.mean()), "m_std": float(m.std()), "m_min": int(m.min()),
            "m_max": int(m.max()), "m0_over_m": float(np.mean(m0 / np.maximum(m, 1))), "reviews": int(len(ids))}


def far_leader_counts(model: SentimentClassifier, ids: np.ndarray, labels: np.ndarray, vocab: Vocabulary, *,
                      far: float = 2.0, include_special: bool = False, chunk: int = 256) -> Counter:
    """Figure 10's counts: leader words with |H(z^K)| >= ``far`` in correctly classified (hardmax) reviews.

    ``<pad>`` and ``<unk>`` are left out unless ``include_special``.

    **Arguments:**

    - `model`: a trained [`SentimentClassifier`][jaxattn.sentiment.SentimentClassifier].
    - `ids`: token ids, int (N, n).
    - `labels`: the labels, (N,), 1 = positive.
    - `vocab`: the model's vocabulary.
    - `far`: the least |H(z^K)|; default 2.
    - `include_special`: count ``<pad>`` and ``<unk>`` too; default False.
    - `chunk`: reviews per jitted batch; default 256.

    **Returns:**

    A ``collections.Counter`` of words.
    """
    lead, _, H, logit = batch_leaders(model, ids, chunk)
    correct = (logit > 0) == (np.asarray(labels) == 1)
    sel = lead & (np.abs(H) >= far) & correct[:, None]
    if not include_special:
        sel &= (ids != PAD_ID) & (ids != UNK_ID)
    return Counter(vocab.words[int(w)] for w in np.asarray(ids)[sel])


def format_table1(rows: list[dict]) -> str:
    """Table 1 of the paper as a Markdown table.

    **Arguments:**

    - `rows`: dicts returned by [`leader_statistics`][jaxattn.sentiment.analysis.leader_statistics].

    **Returns:**

    A Markdown table, one line per row.
    """
    lines = ["| d | mean m | std m | min m | max m | mean(m_0/m) | reviews |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['d']} | {r['m_mean']:.3f} | {r['m_std']:.3f} | {r['m_min']} | {r['m_max']} | "
                     f"{r['m0_over_m']:.3f} | {r['reviews']} |")
    return "\n".join(lines)


def format_histogram(counts: Counter, top: int = 15, width: int = 40) -> str:
    """Figure 10 as text: the most frequent far-from-the-line leaders with a bar of ``#``.

    **Arguments:**

    - `counts`: word counts, as returned by [`far_leader_counts`][jaxattn.sentiment.analysis.far_leader_counts].
    - `top`: how many words; default 15.
    - `width`: the length of the longest bar; default 40.

    **Returns:**

    One line per word (or a note when there are none).
    """
    items = counts.most_common(top)
    if not items:
        return "(no leaders far from the decision line)"
    big = items[0][1]
    return "\n".join(f"{w:<18s} {c:6d} {'#' * max(1, round(width * c / big))}" for w, c in items)
