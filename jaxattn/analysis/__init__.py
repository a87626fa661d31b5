"""Analysis of particle configurations: clusters, attention matrices, energies, statistics."""

from .attention import attention_matrix, trajectory_attention
from .clusters import (
    DEFAULT_DELTA,
    DEFAULT_GAP,
    DEFAULT_TOL,
    cluster_labels,
    clustered_pair_fraction,
    count_clusters,
    inner_product_statistics,
    is_clustered,
    min_inner_product,
    pairwise_inner_products,
)
from .energy import circle_energy, energy_rate, interaction_energy

__all__ = [
    "DEFAULT_DELTA",
    "DEFAULT_GAP",
    "DEFAULT_TOL",
    "attention_matrix",
    "circle_energy",
    "cluster_labels",
    "clustered_pair_fraction",
    "count_clusters",
    "energy_rate",
    "inner_product_statistics",
    "interaction_energy",
    "is_clustered",
    "min_inner_product",
    "pairwise_inner_products",
    "trajectory_attention",
]
