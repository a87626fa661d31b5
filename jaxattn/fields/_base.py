"""Base class of particle vector fields, the manifolds they live on, and input checks.

A field is a frozen :class:`equinox.Module` whose array leaves (beta, Q, K, V, ...) are
JAX arrays, so ``jax.jit``, ``jax.vmap`` and ``jax.grad`` pass straight through it, and
changing beta does not recompile a solve. Its call signature ``field(t, x, args)`` is
the one diffrax's ``ODETerm`` expects; ``x`` is one configuration:

* ``manifold == "sphere"``: (n, d) tokens on S^{d-1};
* ``manifold == "euclidean"``: (n, d) tokens in R^d;
* ``manifold == "circle"``: (n,) angles theta_i (x_i = (cos theta_i, sin theta_i));
* ``manifold == "gram"``: (n, n) Gram matrices G_ij = <x_i, x_j> of n tokens on a sphere
  (symmetric, positive semidefinite, diag(G) = 1; ``gram.py``).
"""

from __future__ import annotations

import abc
from typing import Literal

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Real


Manifold = Literal["sphere", "euclidean", "circle", "gram"]

#: how far |x_i| may be from 1 before a sphere initial condition is rejected
SPHERE_TOLERANCE = 1e-6


class AbstractField(eqx.Module):
    """A particle vector field dx/dt = F(t, x) for one configuration x.

    Concrete fields define

    * :attr:`manifold` (class variable): where a configuration lives (module docstring);
    * :attr:`dim`: the token dimension d their parameters fix (e.g. the size of V), or ``None``;
    * :attr:`num_tokens`: the number of tokens n their parameters fix (e.g. one natural
      frequency per oscillator), or ``None``;
    * :meth:`velocity`.
    """

    manifold: eqx.AbstractClassVar[Manifold]

    @property
    @abc.abstractmethod
    def dim(self) -> int | None:
        """Token dimension d the parameters fix, or None if any d works."""

    @property
    @abc.abstractmethod
    def num_tokens(self) -> int | None:
        """Number of tokens n the parameters fix, or None if any n works."""

    @abc.abstractmethod
    def velocity(self, t: Float[ArrayLike, ""], x: Array) -> Array:
        """dx/dt at time t for one configuration x (see the module docstring)."""

    def __call__(self, t: Real[ArrayLike, ""], x: Float[ArrayLike, "..."], args=None) -> Array:
        """diffrax's ``ODETerm`` signature: :meth:`velocity` of ``x`` (any array-like, e.g. NumPy)."""
        return self.velocity(t, jnp.asarray(x))

    @property
    def event_ndim(self) -> int:
        """Number of trailing axes of one configuration: 1 on the circle, else 2."""
        return 1 if self.manifold == "circle" else 2

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise ValueError unless ``shape`` is one configuration this field accepts."""
        if self.manifold == "circle":
            if len(shape) != 1:
                raise ValueError(f"a circle configuration is an (n,) array of angles; got shape {shape}")
        elif self.manifold == "gram":
            if len(shape) != 2 or shape[0] != shape[1]:
                raise ValueError(f"a Gram configuration is one square (n, n) matrix G = X X^T; got shape {shape}")
        else:
            if len(shape) != 2:
                raise ValueError(f"a configuration is an (n, d) array of n tokens in R^d; got shape {shape}")
            d = self.dim
            if d is not None and shape[1] != d:
                raise ValueError(
                    f"tokens have dimension d = {shape[1]} but the field's Q/K/V act on d = {d}; "
                    "pass tokens of shape (n, d) matching the matrices"
                )
            if self.manifold == "sphere" and shape[1] < 2:
                raise ValueError(f"the sphere S^(d-1) needs d >= 2, got d = {shape[1]}")
        if shape[0] < 1:
            raise ValueError("need at least one token (n >= 1)")
        n = self.num_tokens
        if n is not None and shape[0] != n:
            raise ValueError(f"the field's parameters fix n = {n} tokens: {n} frequencies but there are "
                             f"{shape[0]} oscillators")


def tangent_projection(x: Float[Array, "*batch n d"], y: Float[Array, "*batch n d"]) -> Float[Array, "*batch n d"]:
    """P_x y = y - <x, y> x / |x|^2, row by row (Karagodin et al. 2024 §1.1).

    The division by |x|^2 (rather than the unit-sphere shortcut y - <x, y> x) makes
    d|x|^2/dt = 0 exactly off the sphere too; the shortcut makes the sphere transversally
    unstable when <x, y> < 0, e.g. for V = -I (docs/paper_003.md, "Long horizons and precision").
    """
    coef = jnp.sum(x * y, axis=-1, keepdims=True) / jnp.sum(x * x, axis=-1, keepdims=True)
    return y - coef * x
