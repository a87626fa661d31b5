"""jaxattn: self-attention dynamics as interacting particle systems.

Tokens are particles, layers are time. See README.md for a tour; the public API is
re-exported here and nothing else lives in this file. Importing jaxattn turns on JAX's
float64 mode (see `jaxattn._config`).

The re-exports are lazy (PEP 562): ``import jaxattn`` imports neither JAX nor any sub-package,
so the ``jaxattn`` console script answers ``--help`` at once; ``jaxattn.simulate``,
``from jaxattn import SelfAttention``, ``jaxattn.plot``... import their sub-package on first use.
The names are listed twice, in the ``TYPE_CHECKING`` block (for type checkers and readers) and
in ``_EXPORTS`` (at run time); ``tests/test_cli.py`` checks that the two lists agree.
"""

import importlib as _importlib
import os as _os
import sys as _sys
from typing import TYPE_CHECKING

from ._version import __version__ as __version__

# float64 by default: now if JAX is already imported, otherwise through JAX's own switch, which
# JAX reads when it is first imported (jaxattn._config repeats the switch on first use)
if "jax" in _sys.modules:
    from . import _config  # noqa: F401
elif _os.environ.get("JAXATTN_ENABLE_X64", "1") != "0" and "JAX_ENABLE_X64" not in _os.environ:
    _os.environ["JAX_ENABLE_X64"] = "1"
    _SET_JAX_ENV = True

if TYPE_CHECKING:
    from . import (analysis, fields, grad, initial, io, layers, manifolds, plot, sentiment, solve, solvers, spectral,
                   studies, sweeps)
    from .fields import (
        AbstractField as AbstractField,
        CircleSelfAttention as CircleSelfAttention,
        EuclideanSelfAttention as EuclideanSelfAttention,
        FeedForward as FeedForward,
        FrozenCentresCircleAttention as FrozenCentresCircleAttention,
        GramSelfAttention as GramSelfAttention,
        Kuramoto as Kuramoto,
        MixLNAttention as MixLNAttention,
        NGPTAttention as NGPTAttention,
        NoisyField as NoisyField,
        PeriLNAttention as PeriLNAttention,
        PostLNAttention as PostLNAttention,
        PreLNAttention as PreLNAttention,
        RescaledSelfAttention as RescaledSelfAttention,
        SelfAttention as SelfAttention,
        Sinkhorn as Sinkhorn,
        SqrtScaledAttention as SqrtScaledAttention,
        UnnormalisedSelfAttention as UnnormalisedSelfAttention,
    )
    from .grad import (
        checkpointed_adjoint as checkpointed_adjoint,
        fit as fit,
        value_and_grad_of as value_and_grad_of,
    )
    from .io import load_trajectory as load_trajectory
    from .layers import (
        HardmaxTransformer as HardmaxTransformer,
        SoftmaxTransformer as SoftmaxTransformer,
    )
    from .solve import (
        NonFiniteStateError as NonFiniteStateError,
        RetractingSolver as RetractingSolver,
        SolverStepLimitError as SolverStepLimitError,
        Trajectory as Trajectory,
        simulate as simulate,
    )

__all__ = [
    "AbstractField",
    "CircleSelfAttention",
    "EuclideanSelfAttention",
    "FeedForward",
    "FrozenCentresCircleAttention",
    "GramSelfAttention",
    "HardmaxTransformer",
    "Kuramoto",
    "MixLNAttention",
    "NGPTAttention",
    "NoisyField",
    "NonFiniteStateError",
    "PeriLNAttention",
    "PostLNAttention",
    "PreLNAttention",
    "RescaledSelfAttention",
    "RetractingSolver",
    "SelfAttention",
    "Sinkhorn",
    "SoftmaxTransformer",
    "SolverStepLimitError",
    "SqrtScaledAttention",
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
    "load_trajectory",
    "manifolds",
    "plot",
    "sentiment",
    "simulate",
    "solve",
    "solvers",
    "spectral",
    "studies",
    "sweeps",
    "value_and_grad_of",
]

#: sub-packages imported on first attribute access
_SUBMODULES = frozenset({"analysis", "fields", "grad", "initial", "io", "layers", "manifolds", "plot", "sentiment",
                         "solve", "solvers", "spectral", "studies", "sweeps"})
#: re-exported name -> the sub-package it comes from
_EXPORTS = {
    **dict.fromkeys(["AbstractField", "CircleSelfAttention", "EuclideanSelfAttention", "FeedForward",
                     "FrozenCentresCircleAttention", "GramSelfAttention", "Kuramoto", "RescaledSelfAttention", "SelfAttention",
                     "Sinkhorn", "UnnormalisedSelfAttention", "MixLNAttention", "NGPTAttention", "NoisyField", "PeriLNAttention",
                     "PostLNAttention", "PreLNAttention", "SqrtScaledAttention"], "fields"),
    **dict.fromkeys(["checkpointed_adjoint", "fit", "value_and_grad_of"], "grad"),
    **dict.fromkeys(["HardmaxTransformer", "SoftmaxTransformer"], "layers"),
    "load_trajectory": "io",
    **dict.fromkeys(["NonFiniteStateError", "RetractingSolver", "SolverStepLimitError", "Trajectory", "simulate"],
                    "solve"),
}


def __getattr__(name: str):
    if name not in _SUBMODULES and name not in _EXPORTS:
        raise AttributeError(f"module 'jaxattn' has no attribute {name!r}")
    from . import _config  # noqa: F401  (float64 now that JAX is being imported)

    if globals().pop("_SET_JAX_ENV", False):  # JAX has read it; do not pass it on to subprocesses
        _os.environ.pop("JAX_ENABLE_X64", None)
    if name in _SUBMODULES:
        value = _importlib.import_module(f".{name}", __name__)
    else:
        value = getattr(_importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
