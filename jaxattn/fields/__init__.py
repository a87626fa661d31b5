"""Particle vector fields: self-attention dynamics on the sphere, in R^d and on the circle, and
(SA) in Gram space (``gram.py``: the n x n inner products instead of the n x d tokens).

Every field is an [`AbstractField`][jaxattn.AbstractField] (``field(t, x)``, diffrax's ``ODETerm`` signature).
Evaluators of the attention sums, one module each: dense and row-blocked ([`attend`][jaxattn.fields.attend],
``_attention.py``), Bessel-Fourier modes on the circle (``_fourier.py``) and spherical harmonics
on S^2 (``_harmonics.py``); the fields pick one with their ``evaluator`` argument.
"""

from ._attention import (
    Sinkhorn as Sinkhorn,
    attend as attend,
    attention_weights as attention_weights,
    default_block_size as default_block_size,
    sinkhorn_potentials as sinkhorn_potentials,
)
from ._base import (
    SPHERE_TOLERANCE as SPHERE_TOLERANCE,
    AbstractField as AbstractField,
    parameter as parameter,
)
from ._fourier import (
    fourier_circle_velocity as fourier_circle_velocity,
    fourier_modes as fourier_modes,
    scaled_bessel_weights as scaled_bessel_weights,
    truncation_error as truncation_error,
)
from .clusters import WeightedCircleAttention as WeightedCircleAttention
from .decay import (
    AlibiCircleAttention as AlibiCircleAttention,
    check_decay as check_decay,
    positional_weights as positional_weights,
)
from .gaussian import (
    GaussianAttention as GaussianAttention,
    empirical_gaussian_state as empirical_gaussian_state,
    gaussian_moments as gaussian_moments,
    gaussian_sinkhorn_coupling as gaussian_sinkhorn_coupling,
    gaussian_state as gaussian_state,
)
from .gram import (
    FORMULATIONS as FORMULATIONS,
    GramSelfAttention as GramSelfAttention,
    closes_on_gram as closes_on_gram,
    gram_formulation as gram_formulation,
    gram_of as gram_of,
    prefers_gram as prefers_gram,
)
from ._harmonics import (
    legendre_coefficients as legendre_coefficients,
    sphere_attention_harmonics as sphere_attention_harmonics,
    truncation_degree as truncation_degree,
)
from .circle import (
    CircleSelfAttention as CircleSelfAttention,
    FrozenCentresCircleAttention as FrozenCentresCircleAttention,
    Kuramoto as Kuramoto,
    angles_of as angles_of,
    embed_angles as embed_angles,
)
from .euclidean import (
    AbstractEuclideanAttention as AbstractEuclideanAttention,
    EuclideanSelfAttention as EuclideanSelfAttention,
    RescaledSelfAttention as RescaledSelfAttention,
)
from .normalised import (
    NORMALISATIONS as NORMALISATIONS,
    AbstractNormalisedAttention as AbstractNormalisedAttention,
    MixLNAttention as MixLNAttention,
    NGPTAttention as NGPTAttention,
    PeriLNAttention as PeriLNAttention,
    PostLNAttention as PostLNAttention,
    PreLNAttention as PreLNAttention,
    SqrtScaledAttention as SqrtScaledAttention,
    cartesian as cartesian,
    directions as directions,
    polar as polar,
    radii as radii,
)
from .noisy import AbstractStochasticField as AbstractStochasticField, NoisyField as NoisyField
from .random_weights import (
    KQ_ENSEMBLES as KQ_ENSEMBLES,
    VALUE_ENSEMBLES as VALUE_ENSEMBLES,
    RandomWeights as RandomWeights,
    random_attention_matrices as random_attention_matrices,
)
from .sphere import (
    AbstractSphereAttention as AbstractSphereAttention,
    FeedForward as FeedForward,
    SelfAttention as SelfAttention,
    UnnormalisedSelfAttention as UnnormalisedSelfAttention,
)
