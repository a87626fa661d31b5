"""Training with optax Adam, checkpoints (equinox serialisation) and resume (paper 000 §6.2).

As in the paper (apart from the ``<pad>`` mask, on by default, ``mask_padding=False`` for
the paper's unmasked model; see `.model`): binary cross-entropy on the *softmax* model (tau = 1e-3), Adam with
learning rate 1e-3, batch 64, K = 8 layers; the authors' code also clipped the gradient
norm at 5, which we keep (``grad_clip``). Test metrics are reported for both the softmax
model and the hardmax model it defines (the paper's accuracies are softmax ones; its
interpretation uses hardmax).

A run directory holds ``config.json`` (training and data settings), ``vocab.json``,
``checkpoint.eqx`` (model, optimiser state and epoch, written with
``equinox.tree_serialise_leaves`` after every epoch) and ``history.json``. Training
again with ``resume=True`` continues from the last completed epoch with the same data
split, vocabulary and batch order.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .data import PAD, UNK, SentimentData, Vocabulary, load_csv, load_imdb, load_synthetic
from .model import SentimentClassifier


@dataclasses.dataclass
class TrainConfig:
    """Hyper-parameters (defaults = the paper's, except ``epochs``: the paper ran 100, and ``mask_padding``:
    the paper did not mask ``<pad>``).

    **Arguments:**

    - `dim`: the embedding dimension d, int >= 1; default 2.
    - `num_layers`: the number of layers K, int >= 1; default 8.
    - `tau`: the softmax temperature of training, > 0; default 1e-3.
    - `learning_rate`: Adam's learning rate, > 0; default 1e-3.
    - `batch_size`: int >= 1; default 64.
    - `epochs`: the total number of epochs, int >= 0; default 20.
    - `seed`: the seed of the initialisation and of the batch order; default 0.
    - `grad_clip`: the largest global gradient norm; default 5 (None: no clipping).
    - `float32`: train in float32 instead of float64; default False.
    - `hardmax_eval_every`: evaluate the hardmax model every this many epochs (and at the last), int >= 1; default 1.
    - `init_scale`: the standard deviation of the initial embedding; default 1 (the paper's).
    - `mask_padding`: the key-padding mask of ``<pad>`` (see [`SentimentClassifier`][jaxattn.sentiment.SentimentClassifier]); default True.

    **Raises:**

    - `ValueError`: a non-positive size, negative epochs, or tau/learning_rate <= 0.
    - `TypeError`: ``mask_padding`` is not a bool.
    """

    dim: int = 2
    num_layers: int = 8
    tau: float = 1e-3
    learning_rate: float = 1e-3
    batch_size: int = 64
    epochs: int = 20
    seed: int = 0
    grad_clip: float | None = 5.0
    float32: bool = False
    hardmax_eval_every: int = 1
    init_scale: float = 1.0  # embedding init N(0, init_scale^2); the paper's is 1
    mask_padding: bool = True  # key-padding mask for <pad> (SentimentClassifier); False = the paper's model

    def __post_init__(self):
        for name in ("dim", "num_layers", "batch_size", "hardmax_eval_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")
        if not (self.tau > 0 and self.learning_rate > 0):
            raise ValueError("tau and learning_rate must be > 0")
        if not isinstance(self.mask_padding, bool):
            raise TypeError(f"mask_padding must be a bool, got {self.mask_padding!r}")


@dataclasses.dataclass
class DataConfig:
    """Where the reviews come from and how they are split (stored so a resume sees the same split).

    **Arguments:**

    - `source`: "imdb" (default), "csv" or "synthetic".
    - `csv_path`: the CSV file of source "csv"; default None.
    - `seed`: the seed of the split (and of the synthetic corpus); default 0.
    - `test_fraction`: in (0, 1); default 0.3.
    - `max_reviews`: use at most this many reviews; default None (all).
    - `min_count`: the least count of a word in the vocabulary; default 2 (1 for synthetic data).
    - `num_synthetic`: the number of synthetic reviews; default 4000.
    - `seq_len`: the number of tokens n per review; default 128.
    """

    source: str = "imdb"  # "imdb" | "csv" | "synthetic"
    csv_path: str | None = None
    seed: int = 0
    test_fraction: float = 0.3
    max_reviews: int | None = None
    min_count: int = 2
    num_synthetic: int = 4000
    seq_len: int = 128

    def load(self, vocab: Vocabulary | None = None) -> SentimentData:
        """Load, split and encode the reviews.

        **Arguments:**

        - `vocab`: a saved vocabulary to reuse (resuming); default None (built from the training split).

        **Returns:**

        A [`SentimentData`][jaxattn.sentiment.data.SentimentData].

        **Raises:**

        - `ValueError`: an unknown source, or source "csv" without ``csv_path``.
        """
        common = dict(seed=self.seed, test_fraction=self.test_fraction, max_reviews=self.max_reviews, vocab=vocab,
                      seq_len=self.seq_len)
        if self.source == "imdb":
            return load_imdb(min_count=self.min_count, **common)
        if self.source == "csv":
            if not self.csv_path:
                raise ValueError("source='csv' needs csv_path")
            return load_csv(self.csv_path, min_count=self.min_count, **common)
        if self.source == "synthetic":
            return load_synthetic(self.num_synthetic, **common)
        raise ValueError(f"unknown data source {self.source!r}; use 'imdb', 'csv' or 'synthetic'")


# ------------------------------------------------------------------------- evaluation


@eqx.filter_jit
def _eval_chunk(model, ids, labels, mode):
    logits = jax.vmap(lambda x: model.logit(x, mode))(ids)
    loss = optax.sigmoid_binary_cross_entropy(logits, labels.astype(logits.dtype))
    return jnp.sum(loss), jnp.sum((logits > 0) == (labels == 1))


def evaluate(model: SentimentClassifier, ids: np.ndarray, labels: np.ndarray, mode: str = "hardmax",
             chunk: int = 512) -> dict[str, float]:
    """Mean BCE loss and accuracy of the softmax or hardmax model on (ids, labels).

    **Arguments:**

    - `model`: a [`SentimentClassifier`][jaxattn.sentiment.SentimentClassifier].
    - `ids`: token ids, int (N, n).
    - `labels`: the labels, (N,), 1 = positive.
    - `mode`: "hardmax" (default) or "softmax".
    - `chunk`: reviews per jitted batch; default 512.

    **Returns:**

    ``{"loss": ..., "accuracy": ...}``.
    """
    total_loss, correct = 0.0, 0
    for s in range(0, len(ids), chunk):
        lo, co = _eval_chunk(model, jnp.asarray(ids[s:s + chunk]), jnp.asarray(labels[s:s + chunk]), mode)
        total_loss += float(lo)
        correct += int(co)
    n = max(len(ids), 1)
    return {"loss": total_loss / n, "accuracy": correct / n}


def predict(model: SentimentClassifier, ids: np.ndarray, mode: str = "hardmax", chunk: int = 512) -> np.ndarray:
    """Logits H(zbar) for each review.

    **Arguments:**

    - `model`: a [`SentimentClassifier`][jaxattn.sentiment.SentimentClassifier].
    - `ids`: token ids, int (N, n).
    - `mode`: "hardmax" (default) or "softmax".
    - `chunk`: reviews per jitted batch; default 512.

    **Returns:**

    The logits, a NumPy float array (N,).
    """

    @eqx.filter_jit
    def f(m, x):
        return jax.vmap(lambda r: m.logit(r, mode))(x)

    return np.concatenate([np.asarray(f(model, jnp.asarray(ids[s:s + chunk]))) for s in range(0, len(ids), chunk)])


# ---------------------------------------------------------------------------- training


def _optimizer(cfg: TrainConfig):
    adam = optax.adam(cfg.learning_rate)
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), adam) if cfg.grad_clip else adam


def _new_model(cfg: TrainConfig, vocab_size: int) -> SentimentClassifier:
    dtype = jnp.float32 if cfg.float32 else jnp.result_type(float)
    return SentimentClassifier(vocab_size, cfg.dim, key=jax.random.PRNGKey(cfg.seed), num_layers=cfg.num_layers,
                               tau=cfg.tau, dtype=dtype, init_scale=cfg.init_scale, mask_padding=cfg.mask_padding)


def _save_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def save_checkpoint(run_dir: str | Path, model, opt_state, epoch: int) -> None:
    """Write ``checkpoint.eqx`` atomically (equinox.tree_serialise_leaves).

    **Arguments:**

    - `run_dir`: the run directory.
    - `model`: a [`SentimentClassifier`][jaxattn.sentiment.SentimentClassifier].
    - `opt_state`: the optax state.
    - `epoch`: the number of completed epochs.
    """
    path = Path(run_dir) / "checkpoint.eqx"
    tmp = path.with_suffix(".eqx.tmp")
    eqx.tree_serialise_leaves(tmp, (model, opt_state, jnp.asarray(epoch, dtype=jnp.int32)))
    os.replace(tmp, path)


def _read_json(path: Path, what: str):
    """The JSON value in ``path``; FileNotFoundError/ValueError naming the file when it is missing or malformed."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: a training run directory holds {what}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); it should hold {what}") from None


def _dataclass_from(path: Path, cls, values, defaults: dict | None = None):
    """``cls(**values)`` with messages naming ``path`` for a non-object, unknown or ill-typed settings."""
    if not isinstance(values, dict):
        raise ValueError(f"{path}: the {cls.__name__} settings must be a JSON object, got {values!r:.100}")
    values = {**(defaults or {}), **values}
    unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"{path} has {cls.__name__} settings this version does not know: {sorted(unknown)}; "
                         "it was written by a newer jaxattn, upgrade to load it")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: invalid {cls.__name__} settings: {exc}") from None


def load_run(run_dir: str | Path):
    """(model, vocab, train_config, data_config, history, opt_state, epoch) of a saved run.

    Runs saved before the padding mask existed have no ``mask_padding`` in their
    ``config.json``; they were trained without it and load as ``mask_padding=False``.
    A run without ``checkpoint.eqx`` (no epoch finished yet) has no trained model and raises
    FileNotFoundError; a missing or malformed file raises an error that names it.

    **Arguments:**

    - `run_dir`: the run directory.

    **Returns:**

    ``(model, vocab, train_config, data_config, history, opt_state, epoch)``.

    **Raises:**

    - `FileNotFoundError`: no ``config.json``, ``vocab.json`` or ``checkpoint.eqx``.
    - `ValueError`: a malformed file (named in the message).
    """
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.exists():
        raise FileNotFoundError(f"{run_dir} is not a training run directory (no config.json); "
                                "train one with `jaxattn sentiment train --run-dir DIR`")
    meta = _read_json(cfg_path, 'the run\'s settings, {"train": {...}, "data": {...}}')
    if not (isinstance(meta, dict) and {"train", "data"} <= set(meta)):
        raise ValueError(f'{cfg_path} must hold {{"train": {{...}}, "data": {{...}}}}, got {str(meta)[:100]}')
    cfg = _dataclass_from(cfg_path, TrainConfig, meta["train"], {"mask_padding": False})  # older runs: unmasked
    dcfg = _dataclass_from(cfg_path, DataConfig, meta["data"])
    vocab_path = run_dir / "vocab.json"
    words = _read_json(vocab_path, "the vocabulary, a JSON list of words")
    if not (isinstance(words, list) and len(words) >= 2 and all(isinstance(w, str) for w in words)
            and words[:2] == [PAD, UNK]):
        raise ValueError(f"{vocab_path} must be a JSON list of words starting with {PAD!r}, {UNK!r}")
    vocab = Vocabulary(tuple(words))
    model = _new_model(cfg, len(vocab))
    opt_state = _optimizer(cfg).init(eqx.filter(model, eqx.is_array))
    ckpt = run_dir / "checkpoint.eqx"
    if not ckpt.exists():
        raise FileNotFoundError(f"{ckpt} is missing: the run has no trained model yet (no epoch finished); "
                                "train it (`jaxattn sentiment train --run-dir DIR`) before explaining or reporting")
    try:
        model, opt_state, ep = eqx.tree_deserialise_leaves(ckpt, (model, opt_state, jnp.asarray(0, jnp.int32)))
    except Exception as exc:  # equinox/numpy raise several types for a truncated or mismatched file
        raise ValueError(f"{ckpt} cannot be read as the checkpoint of this run ({type(exc).__name__}: "
                         f"{str(exc)[:200]}): it is truncated, corrupt, or was written for other settings "
                         f"(dim {cfg.dim}, {cfg.num_layers} layers, vocabulary of {len(vocab)} words in {vocab_path})"
                         ) from None
    hist_path = run_dir / "history.json"
    history = _read_json(hist_path, "the per-epoch history, a JSON list") if hist_path.exists() else []
    if not isinstance(history, list):
        raise ValueError(f"{hist_path} must hold a JSON list of per-epoch records")
    return model, vocab, cfg, dcfg, history, opt_state, int(ep)


def train(data: SentimentData, config: TrainConfig, *, run_dir: str | Path | None = None, resume: bool = False,
          data_config: DataConfig | None = None, progress: bool = True,
          log: Callable[[str], None] | None = print) -> tuple[SentimentClassifier, list[dict]]:
    """Train the classifier for ``config.epochs`` epochs (total, counting resumed ones).

    With ``run_dir`` a checkpoint is written after every epoch; ``resume=True`` loads it
    and continues. Returns the model and the per-epoch history (train loss, test loss and
    accuracy of the softmax and hardmax models, alpha, seconds).

    **Arguments:**

    - `data`: the [`SentimentData`][jaxattn.sentiment.data.SentimentData].
    - `config`: the [`TrainConfig`][jaxattn.sentiment.training.TrainConfig].
    - `run_dir`: the run directory (created); default None (nothing written).
    - `resume`: continue the run in ``run_dir``; default False.
    - `data_config`: the [`DataConfig`][jaxattn.sentiment.training.DataConfig] stored with the run; default None.
    - `progress`: show a tqdm progress bar; default True.
    - `log`: called with one line per epoch; default ``print`` (None: silent).

    **Returns:**

    ``(model, history)``: the trained classifier and a list of one dict per epoch.

    **Raises:**

    - `FileNotFoundError`: ``resume`` without a checkpoint in ``run_dir``.
    - `ValueError`: resuming with other settings (except ``epochs``) or another vocabulary.
    """
    from tqdm.auto import tqdm

    log = log or (lambda s: None)
    opt = _optimizer(config)
    start_epoch, history = 0, []
    if run_dir is not None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    if resume:
        if run_dir is None or not (run_dir / "checkpoint.eqx").exists():
            raise FileNotFoundError(f"cannot resume: no checkpoint.eqx in {run_dir}")
        model, vocab, saved_cfg, _, history, opt_state, start_epoch = load_run(run_dir)
        if dataclasses.replace(saved_cfg, epochs=config.epochs) != config:
            raise ValueError(f"the run in {run_dir} was trained with {saved_cfg}; resume with the same settings "
                             "(only --epochs may change; a run with mask_padding=False resumes with "
                             "--no-mask-padding)")
        if vocab.words != data.vocab.words:
            raise ValueError("the data's vocabulary differs from the saved one; load the data with the saved "
                             "vocabulary (DataConfig.load(vocab)) or start a new run directory")
        log(f"resuming from epoch {start_epoch} in {run_dir}")
    else:
        model = _new_model(config, len(data.vocab))
        opt_state = opt.init(eqx.filter(model, eqx.is_array))
        if run_dir is not None:
            _save_json(run_dir / "config.json", {"train": dataclasses.asdict(config),
                                                 "data": dataclasses.asdict(data_config or DataConfig("unknown"))})
            _save_json(run_dir / "vocab.json", list(data.vocab.words))

    @eqx.filter_jit
    def step(model, opt_state, ids, labels):
        def loss_fn(m):
            logits = jax.vmap(lambda x: m.logit(x, "softmax"))(ids)
            return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels.astype(logits.dtype)))

        loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
        updates, opt_state = opt.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    n_train = len(data.train_ids)
    bs = min(config.batch_size, n_train)
    steps = n_train // bs  # the last partial batch is dropped (batches are reshuffled every epoch)
    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        perm = np.random.default_rng([config.seed, epoch]).permutation(n_train)
        losses = []
        bar = tqdm(range(steps), desc=f"d={config.dim} epoch {epoch + 1}/{config.epochs}", disable=not progress,
                   leave=False)
        for s in bar:
            idx = perm[s * bs:(s + 1) * bs]
            model, opt_state, loss = step(model, opt_state, jnp.asarray(data.train_ids[idx]),
                                          jnp.asarray(data.train_labels[idx]))
            losses.append(loss)
            if s % 20 == 0:
                bar.set_postfix(loss=f"{float(loss):.4f}")
        bar.close()
        rec = {"epoch": epoch + 1, "train_loss": float(jnp.mean(jnp.stack(losses))) if losses else float("nan"),
               "alpha": float(model.alpha)}
        soft = evaluate(model, data.test_ids, data.test_labels, "softmax")
        rec.update(test_loss_softmax=soft["loss"], test_acc_softmax=soft["accuracy"])
        if (epoch + 1) % config.hardmax_eval_every == 0 or epoch + 1 == config.epochs:
            hard = evaluate(model, data.test_ids, data.test_labels, "hardmax")
            rec.update(test_loss_hardmax=hard["loss"], test_acc_hardmax=hard["accuracy"])
        rec["seconds"] = time.perf_counter() - t0
        history.append(rec)
        log(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()))
        if run_dir is not None:
            save_checkpoint(run_dir, model, opt_state, epoch + 1)
            _save_json(run_dir / "history.json", history)
    return model, history
