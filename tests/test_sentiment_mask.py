"""The ``<pad>`` mask of the sentiment classifier.

The paper's model (Alcalde, Fantuzzi, Zuazua 2024, §6.2) lets the padding attend and
averages it into the prediction; ``SentimentClassifier(mask_padding=True)`` removes it.
Oracles: (i) a masked review must give the same logit as the same words with any number
of ``<pad>`` appended, or none at all (the real tokens never see the padding); (ii) an
explicit NumPy loop over eq. (1.1a) with C_i taken over the real tokens; (iii) the
``<pad>`` embedding then cannot influence the logit, so its gradient is exactly zero.
"""

from __future__ import annotations

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn.sentiment import analysis
from jaxattn.sentiment.data import PAD_ID, Vocabulary
from jaxattn.layers import hardmax_layers, softmax_layers
from jaxattn.sentiment.model import SentimentClassifier
from jaxattn.sentiment.training import DataConfig, TrainConfig, _optimizer, load_run, save_checkpoint

jax.config.update("jax_enable_x64", True)

VOCAB = 40


def _model(seed: int, mask_padding: bool = True, pad_scale: float = 1.0) -> SentimentClassifier:
    m = SentimentClassifier(VOCAB, 2, key=jax.random.PRNGKey(seed), dtype=jnp.float64, mask_padding=mask_padding)
    return eqx.tree_at(lambda t: t.embedding, m, m.embedding.at[PAD_ID].multiply(pad_scale))


def _padded(real: np.ndarray, n: int) -> jnp.ndarray:
    return jnp.asarray(np.concatenate([real, np.full(n - len(real), PAD_ID)]).astype(np.int32))


@pytest.mark.parametrize("mode", ["softmax", "hardmax"])
def test_masked_logit_is_invariant_to_padding(mode):
    """Appending <pad> (0 to 90 of them) leaves the masked logit unchanged to 1e-12; the unmasked one moves."""
    rng = np.random.default_rng(1)
    for seed in range(3):
        masked, unmasked = _model(seed), _model(seed, mask_padding=False)
        real = rng.integers(2, VOCAB, 12)  # one length: few compilations
        ref = float(masked.logit(jnp.asarray(real, jnp.int32), mode))  # the words alone, no padding at all
        assert ref == pytest.approx(float(unmasked.logit(jnp.asarray(real, jnp.int32), mode)), abs=1e-12)
        moved = 0.0
        for extra in (1, 7, 90):
            ids = _padded(real, len(real) + extra)
            assert float(masked.logit(ids, mode)) == pytest.approx(ref, abs=1e-12)
            moved = max(moved, abs(float(unmasked.logit(ids, mode)) - ref))
        assert moved > 1e-3  # the paper's model does see its padding


def test_masked_trajectory_of_real_tokens_is_invariant_to_padding():
    m = _model(0)
    real = np.random.default_rng(2).integers(2, VOCAB, 12)
    short, long = m.hardmax_trajectory(_padded(real, 12)), m.hardmax_trajectory(_padded(real, 50))
    np.testing.assert_allclose(np.asarray(long.tokens[:, :12]), np.asarray(short.tokens), atol=1e-12, rtol=0)
    np.testing.assert_array_equal(np.asarray(long.leader_layer[:12]), np.asarray(short.leader_layer))
    assert (np.asarray(long.leader_layer[12:]) == -1).all()


def test_pad_is_never_a_leader():
    """A <pad> embedding far out is the largest-norm token, hence a leader at layer 0 of the paper's model
    (the argmax-norm token always leads, paper 000 Lemma 5.1); masked, no <pad> ever leads."""
    rng = np.random.default_rng(3)
    vocab = Vocabulary(("<pad>", "<unk>", *(f"w{i}" for i in range(VOCAB - 2))))
    for seed in range(5):
        masked, unmasked = _model(seed, pad_scale=10.0), _model(seed, mask_padding=False, pad_scale=10.0)
        ids = _padded(rng.integers(2, VOCAB, 20), 64)
        assert 20 in unmasked.hardmax_trajectory(ids).leader_indices()  # the first <pad> leads unmasked
        traj = masked.hardmax_trajectory(ids)
        assert not np.asarray(traj.is_leader)[20:].any() and len(traj.leader_indices()) >= 1
        exp = analysis.review_leaders(masked, np.asarray(ids), vocab)
        assert "<pad>" not in [ld.word for ld in exp.leaders]
        assert "<pad>" in [ld.word for ld in analysis.review_leaders(unmasked, np.asarray(ids), vocab).leaders]
        lead, _, _, logit = analysis.batch_leaders(masked, np.asarray(ids)[None])
        assert not lead[0, 20:].any()
        assert logit[0] == pytest.approx(float(masked.logit(ids, "hardmax")), abs=1e-12)
        # the explanation's mean token is the mean over the real words
        np.testing.assert_allclose(exp.mean_token, np.asarray(traj.final[:20]).mean(0), atol=1e-12)


def _numpy_masked_layers(Z, real, alpha, K, mode, tau=None):
    """Eq. (1.1a) with C_i (hardmax) or the softmax (2.6) over the real keys only, one row at a time."""
    Z = np.array(Z, dtype=np.float64)
    h = alpha / (1 + alpha)
    keys = np.flatnonzero(real)
    for _ in range(K):
        new = Z.copy()
        for i in range(len(Z)):
            s = np.array([Z[i] @ Z[j] for j in keys])
            if mode == "hardmax":
                w = (s == s.max()).astype(float)
            else:
                w = np.exp((s - s.max()) / tau)
            w /= w.sum()
            new[i] = Z[i] + h * (sum(wj * Z[j] for wj, j in zip(w, keys)) - Z[i])
        Z = new
    return Z


def test_masked_layers_match_numpy():
    """Tiny example: the <pad> rows (4 and 5) have the largest norm, so without the mask tokens 0 and 3
    would follow them; with the mask C_i is taken over tokens 0..3 only."""
    Z0 = np.array([[1.0, 0.2], [-0.7, 0.9], [0.3, -1.1], [0.05, 0.1], [3.0, 3.0], [3.0, 3.0]])
    real = np.array([True, True, True, True, False, False])
    alpha, K = 0.6, 6
    got = hardmax_layers(jnp.asarray(alpha), None, jnp.asarray(Z0), K, 0.0, key_mask=jnp.asarray(real))
    np.testing.assert_allclose(np.asarray(got), _numpy_masked_layers(Z0, real, alpha, K, "hardmax"), atol=1e-14)
    got = softmax_layers(jnp.asarray(alpha), None, jnp.asarray(0.3), jnp.asarray(Z0), K, key_mask=jnp.asarray(real))
    np.testing.assert_allclose(np.asarray(got), _numpy_masked_layers(Z0, real, alpha, K, "softmax", 0.3),
                               atol=1e-13)
    # unmasked, tokens 0 and 3 would attend to the <pad> pair at layer 0: the mask changes the dynamics
    G = Z0 @ Z0.T
    assert (np.argmax(G[[0, 3]], axis=1) == 4).all()


def test_pad_embedding_gets_no_gradient_and_all_pad_review_is_defined():
    m = _model(0)
    ids = _padded(np.arange(2, 14), 40)
    for mode in ("softmax", "hardmax"):
        g = jax.grad(lambda mm: mm.logit(ids, mode))(m)
        assert np.isfinite(np.asarray(g.embedding)).all() and np.isfinite(float(g.alpha_raw))
        assert (np.asarray(g.embedding[PAD_ID]) == 0).all()
        assert np.abs(np.asarray(g.embedding[2:14])).sum() > 0
    # a review of <pad> only has no real word: unmasked, its identical tokens stay put, logit = H(E[<pad>])
    allpad = jnp.zeros(8, jnp.int32)
    for mode in ("softmax", "hardmax"):
        assert float(m.logit(allpad, mode)) == pytest.approx(float(m.decision(m.embedding[PAD_ID])), abs=1e-12)


def test_bad_mask_padding_and_old_runs_load_unmasked(tmp_path):
    with pytest.raises(TypeError, match="mask_padding"):
        SentimentClassifier(VOCAB, 2, key=jax.random.PRNGKey(0), mask_padding="yes")
    with pytest.raises(TypeError, match="mask_padding"):
        TrainConfig(mask_padding=1)
    # a run directory written before the mask existed (no mask_padding in config.json)
    cfg = TrainConfig(dim=2, epochs=1, mask_padding=False)
    old_train = {k: v for k, v in cfg.__dict__.items() if k != "mask_padding"}
    (tmp_path / "config.json").write_text(json.dumps({"train": old_train, "data": DataConfig("synthetic").__dict__}))
    words = ["<pad>", "<unk>", *(f"w{i}" for i in range(VOCAB - 2))]
    (tmp_path / "vocab.json").write_text(json.dumps(words))
    trained = _model(7, mask_padding=False)
    with pytest.raises(FileNotFoundError, match="checkpoint.eqx is missing"):  # no epoch finished: no model
        load_run(tmp_path)
    opt_state = _optimizer(cfg).init(eqx.filter(trained, eqx.is_array))
    save_checkpoint(tmp_path, trained, opt_state, 1)
    model, _, loaded_cfg, _, _, _, epoch = load_run(tmp_path)
    ids = _padded(np.arange(2, 12), 30)
    assert loaded_cfg.mask_padding is False and epoch == 1 and model.mask_padding is False
    assert float(model.logit(ids, "hardmax")) == float(trained.logit(ids, "hardmax"))
    meta = json.loads((tmp_path / "config.json").read_text())
    meta["train"]["future_option"] = 1
    (tmp_path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="future_option"):
        load_run(tmp_path)
