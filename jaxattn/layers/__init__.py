"""Discrete layer maps (transformer layers iterated as dynamical systems).

* :mod:`jaxattn.layers.hardmax`: the pure-attention hardmax transformer of paper 000,
  its softmax variant, leaders, the limit polytope and the attracting set.
"""

from .hardmax import (
    DEFAULT_TIE_RTOL,
    HardmaxTrajectory,
    HardmaxTransformer,
    SoftmaxTransformer,
    attention_sets,
    attracting_set,
    cluster_points,
    convex_hull_vertices,
    figure2_tokens,
    gram_matrix,
    hardmax_attention,
    in_convex_hull,
    softmax_attention,
)

__all__ = [
    "DEFAULT_TIE_RTOL",
    "HardmaxTrajectory",
    "HardmaxTransformer",
    "SoftmaxTransformer",
    "attention_sets",
    "attracting_set",
    "cluster_points",
    "convex_hull_vertices",
    "figure2_tokens",
    "gram_matrix",
    "hardmax_attention",
    "in_convex_hull",
    "softmax_attention",
]
