"""Particle vector fields: self-attention dynamics on the sphere, in R^d and on the circle."""

from ._attention import attend, attention_weights
from ._base import AbstractField, tangent_projection
from ._fourier import fourier_circle_velocity, fourier_modes, truncation_error
from .circle import CircleSelfAttention, FrozenCentresCircleAttention, Kuramoto, angles_of, embed_angles
from .euclidean import EuclideanSelfAttention, RescaledSelfAttention
from .sphere import FeedForward, SelfAttention, UnnormalisedSelfAttention

__all__ = [
    "AbstractField",
    "CircleSelfAttention",
    "EuclideanSelfAttention",
    "FeedForward",
    "FrozenCentresCircleAttention",
    "Kuramoto",
    "RescaledSelfAttention",
    "SelfAttention",
    "UnnormalisedSelfAttention",
    "angles_of",
    "attend",
    "attention_weights",
    "embed_angles",
    "fourier_circle_velocity",
    "fourier_modes",
    "tangent_projection",
    "truncation_error",
]
