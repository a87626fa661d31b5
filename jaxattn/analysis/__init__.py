"""Analysis of particle configurations: clusters, attention matrices, energies, statistics, smooth
(differentiable) observables and the scalar gamma ODE of Theorem 4.6 (Geshkovski et al. 2023)."""

from .attention import attention_matrix, trajectory_attention
from .clusters import (
    DEFAULT_DELTA,
    DEFAULT_GAP,
    DEFAULT_TOL,
    cluster_labels,
    clustered_pair_fraction,
    clustered_pair_fraction_of_gram,
    count_clusters,
    inner_product_statistics,
    is_clustered,
    min_inner_product,
    pairwise_inner_products,
)
from .energy import circle_energy, energy_rate, interaction_energy
from . import equiangular
from .equiangular import clustering_rate, equiangular_rhs, equiangular_trajectory
from . import gamma, metastable, observables, renyi
from .gamma import gamma_crossing_time, gamma_rhs, gamma_trajectory
from .metastable import (
    lemma_5_1_bounds,
    lemma_a2_bounds,
    lemma_a2_conditions,
    theorem_5_2_conditions,
    theorem_5_2_ratios,
)
from .observables import (
    log_soft_max_pair_distance,
    mean_inner_product,
    soft_clustered_fraction,
    soft_min_inner_product,
    soft_time_to_cluster,
)
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
    "clustering_rate",
    "equiangular",
    "equiangular_rhs",
    "equiangular_trajectory",
    "RENYI_CONSTANT",
    "cap_fraction",
    "cluster_count_series",
    "consumed_fraction",
    "default_delta",
    "expected_renyi_centres_circle",
    "expected_strong_centres",
    "gamma",
    "gamma_crossing_time",
    "gamma_rhs",
    "gamma_trajectory",
    "interaction_g",
    "interaction_h",
    "lemma_5_1_bounds",
    "lemma_a2_bounds",
    "lemma_a2_conditions",
    "log_soft_max_pair_distance",
    "mean_inner_product",
    "metastable",
    "observables",
    "renyi",
    "renyi_centres",
    "soft_clustered_fraction",
    "soft_min_inner_product",
    "soft_time_to_cluster",
    "strong_renyi_centres",
    "tau_star",
    "tau_star_table",
    "theorem_5_2_conditions",
    "theorem_5_2_ratios",
    "DEFAULT_DELTA",
    "DEFAULT_GAP",
    "DEFAULT_TOL",
    "attention_matrix",
    "circle_energy",
    "cluster_labels",
    "clustered_pair_fraction",
    "clustered_pair_fraction_of_gram",
    "count_clusters",
    "energy_rate",
    "inner_product_statistics",
    "interaction_energy",
    "is_clustered",
    "min_inner_product",
    "pairwise_inner_products",
    "trajectory_attention",
]
