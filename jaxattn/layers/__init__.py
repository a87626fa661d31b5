"""Discrete layer maps (transformer layers iterated as dynamical systems).

* `jaxattn.layers.hardmax`: the pure-attention hardmax transformer of Alcalde,
  Fantuzzi, Zuazua 2024 (eq. (1.1)), its softmax variant (2.6) and the leaders.
* `jaxattn.layers.polytope`: the limit polytope and the attracting set S of
  Theorem 1.1 (NumPy).
"""

from .hardmax import (
    DEFAULT_TIE_RTOL as DEFAULT_TIE_RTOL,
    HardmaxTrajectory as HardmaxTrajectory,
    HardmaxTransformer as HardmaxTransformer,
    SoftmaxTransformer as SoftmaxTransformer,
    attention_sets as attention_sets,
    gram_matrix as gram_matrix,
    hardmax_attention as hardmax_attention,
    hardmax_layers as hardmax_layers,
    hardmax_trajectory as hardmax_trajectory,
    softmax_attention as softmax_attention,
    softmax_layers as softmax_layers,
)
from .polytope import (
    attracting_set as attracting_set,
    cluster_points as cluster_points,
    convex_hull_vertices as convex_hull_vertices,
    in_convex_hull as in_convex_hull,
)
