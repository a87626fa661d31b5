"""jaxattn: self-attention dynamics as interacting particle systems.

Tokens are particles, layers are time. See README.md for a tour; the public API is
re-exported here and nothing else lives in this file. Importing jaxattn turns on JAX's
float64 mode (see :mod:`jaxattn._config`).
"""

from . import _config  # noqa: F401  (float64 by default)
from . import analysis, fields, grad, initial, io, layers, sentiment, solve, spectral, studies
from .fields import (
    AbstractField,
    CircleSelfAttention,
    EuclideanSelfAttention,
    FeedForward,
    FrozenCentresCircleAttention,
    Kuramoto,
    RescaledSelfAttention,
    SelfAttention,
    UnnormalisedSelfAttention,
)
from .grad import checkpointed_adjoint, fit, value_and_grad_of
from .layers import HardmaxTransformer, SoftmaxTransformer
from .solve import RetractingSolver, SolverStepLimitError, Trajectory, simulate

__version__ = "0.1.0"

__all__ = [
    "AbstractField",
    "CircleSelfAttention",
    "EuclideanSelfAttention",
    "FeedForward",
    "FrozenCentresCircleAttention",
    "HardmaxTransformer",
    "Kuramoto",
    "RescaledSelfAttention",
    "RetractingSolver",
    "SelfAttention",
    "SoftmaxTransformer",
    "SolverStepLimitError",
    "Trajectory",
    "UnnormalisedSelfAttention",
    "analysis",
    "checkpointed_adjoint",
    "fields",
    "fit",
    "grad",
    "initial",
    "io",
    "layers",
    "sentiment",
    "simulate",
    "solve",
    "spectral",
    "studies",
    "value_and_grad_of",
]
