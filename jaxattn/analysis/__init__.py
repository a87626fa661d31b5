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
from . import renyi
from .renyi import (
    RENYI_CONSTANT,
    cap_fraction,
    cluster_count_series,
    consumed_fraction,
    default_delta,
    expected_renyi_centres_circle,
    expected_strong_centres,
    interaction_g,
    interaction_h,
    renyi_centres,
    strong_renyi_centres,
    tau_star,
    tau_star_table,
)

__all__ = [
    "RENYI_CONSTANT",
    "cap_fraction",
    "cluster_count_series",
    "consumed_fraction",
    "default_delta",
    "expected_renyi_centres_circle",
    "expected_strong_centres",
    "interaction_g",
    "interaction_h",
    "renyi",
    "renyi_centres",
    "strong_renyi_centres",
    "tau_star",
    "tau_star_table",
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
