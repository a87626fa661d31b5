"""Analysis of particle configurations: clusters, attention matrices, energies, statistics, smooth
(differentiable) observables and the scalar gamma ODE of Theorem 4.6 (Geshkovski et al. 2023)."""

from .attention import (
    attention_matrix as attention_matrix,
    trajectory_attention as trajectory_attention,
)
from .clusters import (
    DEFAULT_DELTA as DEFAULT_DELTA,
    DEFAULT_GAP as DEFAULT_GAP,
    DEFAULT_TOL as DEFAULT_TOL,
    cluster_labels as cluster_labels,
    clustered_pair_fraction as clustered_pair_fraction,
    clustered_pair_fraction_of_gram as clustered_pair_fraction_of_gram,
    count_clusters as count_clusters,
    inner_product_statistics as inner_product_statistics,
    is_clustered as is_clustered,
    min_inner_product as min_inner_product,
    pairwise_inner_products as pairwise_inner_products,
)
from .energy import (
    circle_energy as circle_energy,
    energy_rate as energy_rate,
    interaction_energy as interaction_energy,
)
from . import equiangular, gamma, long_context, lost_in_middle, metastable, observables, renyi, staircase
from .equiangular import (
    clustering_rate as clustering_rate,
    equiangular_rhs as equiangular_rhs,
    equiangular_trajectory as equiangular_trajectory,
)
from .gamma import (
    gamma_crossing_time as gamma_crossing_time,
    gamma_rhs as gamma_rhs,
    gamma_trajectory as gamma_trajectory,
)
from .metastable import (
    lemma_5_1_bounds as lemma_5_1_bounds,
    lemma_a2_bounds as lemma_a2_bounds,
    lemma_a2_conditions as lemma_a2_conditions,
    theorem_5_2_conditions as theorem_5_2_conditions,
    theorem_5_2_ratios as theorem_5_2_ratios,
)
from .observables import (
    log_soft_max_pair_distance as log_soft_max_pair_distance,
    mean_inner_product as mean_inner_product,
    soft_clustered_fraction as soft_clustered_fraction,
    soft_min_inner_product as soft_min_inner_product,
    soft_time_to_cluster as soft_time_to_cluster,
)
from .sinkhorn import sinkhorn_transport_cost as sinkhorn_transport_cost
from .renyi import (
    RENYI_CONSTANT as RENYI_CONSTANT,
    cap_fraction as cap_fraction,
    cluster_count_series as cluster_count_series,
    consumed_fraction as consumed_fraction,
    default_delta as default_delta,
    expected_renyi_centres_circle as expected_renyi_centres_circle,
    expected_strong_centres as expected_strong_centres,
    interaction_g as interaction_g,
    interaction_h as interaction_h,
    renyi_centres as renyi_centres,
    strong_renyi_centres as strong_renyi_centres,
    tau_star as tau_star,
    tau_star_table as tau_star_table,
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
    "long_context",
    "lost_in_middle",
    "lemma_5_1_bounds",
    "lemma_a2_bounds",
    "lemma_a2_conditions",
    "log_soft_max_pair_distance",
    "mean_inner_product",
    "metastable",
    "observables",
    "renyi",
    "renyi_centres",
    "sinkhorn_transport_cost",
    "staircase",
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
