"""Paper 000 (Alcalde, Fantuzzi, Zuazua 2024, "Clustering in pure-attention hardmax transformers and its role in
sentiment analysis"): checks that tests/test_hardmax.py and tests/test_sentiment.py do not make, each against an
oracle outside the library (here an independent NumPy implementation of the §6 classifier).
"""

import jax
import numpy as np

from jaxattn.sentiment import DataConfig, TrainConfig, evaluate, train


def _numpy_bce(model, ids, labels, mode):
    """Loss (6.1) of the §6.2 classifier in NumPy, from the trained parameters alone: Z^0 = E[ids], K layers of
    eq. (1.1a) z_i <- z_i + alpha/(1+alpha) (sum_j Lambda_ij z_j - z_i) with A = I and Lambda the hardmax matrix
    (2.3) (uniform on the maximisers of <z_i, z_j>; copies of a word tie exactly) or the softmax (2.6) at
    temperature tau, the mean token zbar over all n positions (the paper's unmasked model), and the binary
    cross-entropy of sigmoid(w . zbar + v)."""
    E, w, v = (np.asarray(a, float) for a in (model.embedding, model.weight, model.bias))
    alpha = float(jax.nn.softplus(model.alpha_raw))
    h = alpha / (1 + alpha)
    Z = E[np.asarray(ids)]  # (reviews, n, d)
    for _ in range(model.num_layers):
        G = np.einsum("rid,rjd->rij", Z, Z)
        if mode == "softmax":
            S = G / model.tau
            Lam = np.exp(S - S.max(axis=-1, keepdims=True))
        else:
            scale = np.abs(np.diagonal(G, axis1=1, axis2=2)).max(axis=-1)[:, None, None]
            Lam = (G >= G.max(axis=-1, keepdims=True) - 1e-12 * scale).astype(float)
        Lam /= Lam.sum(axis=-1, keepdims=True)
        Z = Z + h * (np.einsum("rij,rjd->rid", Lam, Z) - Z)
    logit = Z.mean(axis=1) @ w + v
    y = np.asarray(labels, float)
    return float(np.mean(np.logaddexp(0.0, logit) - y * logit))  # -y log s(l) - (1 - y) log(1 - s(l))


def test_figure_8_softmax_and_hardmax_loss_curves_coincide():  # Fig. 8 (§6.3)
    """Fig. 8: training with the softmax surrogate (tau = 1e-3) and evaluating the loss (6.1) with the softmax and
    with the hardmax model gives "almost identical values" along the whole training. Here: the paper's model
    (d = 2, K = 8, unmasked <pad>) trained with the public API on a small synthetic corpus (560 training and 240
    held-out reviews of 32 tokens; learning rate 0.02 and embedding scale 0.1 so that it learns in 8 epochs).

    * the per-epoch held-out loss curves of the two models (train's history) differ by <= 0.02 at every epoch
      (the acceptance bar) while the loss falls by >= 0.1;
    * at the end, the training-set and held-out losses of both models from the independent NumPy implementation
      equal the library's (1e-9) and the history's last entries, and again differ by <= 0.02 between the modes;
    * the two modes are different models (their losses are not equal to round-off), so the agreement is the
      tau -> 0 limit of (2.6), not the same computation twice."""
    dcfg = DataConfig(source="synthetic", num_synthetic=800, seq_len=32)
    data = dcfg.load()
    cfg = TrainConfig(dim=2, epochs=8, learning_rate=0.02, init_scale=0.1, mask_padding=False)
    model, history = train(data, cfg, data_config=dcfg, progress=False, log=None)

    soft = np.array([rec["test_loss_softmax"] for rec in history])
    hard = np.array([rec["test_loss_hardmax"] for rec in history])
    assert len(soft) == len(hard) == 8
    assert np.abs(soft - hard).max() <= 0.02, np.c_[soft, hard]
    assert soft[-1] <= soft[0] - 0.1 and hard[-1] <= hard[0] - 0.1, np.c_[soft, hard]

    for ids, labels, last in ((data.train_ids, data.train_labels, None), (data.test_ids, data.test_labels, -1)):
        oracle = {mode: _numpy_bce(model, ids, labels, mode) for mode in ("softmax", "hardmax")}
        for mode in ("softmax", "hardmax"):
            assert abs(evaluate(model, ids, labels, mode)["loss"] - oracle[mode]) <= 1e-9, mode
            if last is not None:
                assert abs(history[last][f"test_loss_{mode}"] - oracle[mode]) <= 1e-9, mode
        assert 1e-8 < abs(oracle["softmax"] - oracle["hardmax"]) <= 0.02, oracle
