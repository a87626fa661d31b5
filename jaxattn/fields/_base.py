"""Base class of particle vector fields, and the declaration of their parameters.

A field is a frozen `equinox.Module` whose array leaves (beta, Q, K, V, ...) are
JAX arrays, so ``jax.jit``, ``jax.vmap`` and ``jax.grad`` pass straight through it, and
changing beta does not recompile a solve. Its call signature ``field(t, x, args)`` is
the one diffrax's ``ODETerm`` expects; ``x`` is one configuration on the field's
`manifold` ([`jaxattn.manifolds`][jaxattn.manifolds]):

* `SPHERE`: (n, d) tokens on S^{d-1};
* `EUCLIDEAN`: (n, d) tokens in R^d;
* `CIRCLE`: (n,) angles theta_i (x_i = (cos theta_i, sin theta_i));
* `GRAM`: (n, n) Gram matrices G_ij = ⟨x_i, x_j⟩ of n tokens on a sphere
  (symmetric, positive semidefinite, diag(G) = 1; ``gram.py``).

Parameters declare what the solver must know about them with [`parameter`][jaxattn.fields.parameter] (dataclass field
metadata), so that no code outside a field reads its parameters by name: a domain rule (``check``,
e.g. beta > 0; run by [`AbstractField.parameter_checks`][jaxattn.fields.AbstractField.parameter_checks] on the host and under ``jax.jit``
alike, also for fields rebuilt from a file without ``__init__``), a ``logit`` role (the scale of the
attention logits beta ⟨Q x, K y⟩, for the overflow diagnosis of [`AbstractField.logit_scale`][jaxattn.fields.AbstractField.logit_scale])
and ``per_token`` (one entry per token: its name in the error when n does not match).
"""


import abc
import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Real

from .._validate import Check, is_concrete, xp
from ..manifolds import (
    SPHERE_TOLERANCE as SPHERE_TOLERANCE,
    AbstractManifold,
    as_manifold,
)

#: the manifold names of earlier versions; a field class may still declare ``manifold = "sphere"``
Manifold = Literal["sphere", "euclidean", "circle", "gram"]


def parameter(*, check: Callable[[Array], Check] | None = None, logit: Literal["scale", "matrix"] | None = None,
              per_token: str | None = None, **kwargs: Any) -> Any:
    """A field parameter (``eqx.field``) with what the solver needs to know about it (module docstring).

    **Arguments:**

    - `check`: the parameter's domain rule, value -> `jaxattn._validate.Check` (e.g.
        `jaxattn._validate.beta_rule`: finite and > 0); default None: no rule beyond finiteness.
    - `logit`: ``"scale"`` (a factor of the attention logits, like beta) or ``"matrix"`` (a matrix
        applied to the tokens inside the logits, like Q and K; its operator norm is the factor);
        default None: not in the logits.
    - `per_token`: the parameter holds one entry per token along its only axis: the plural noun for the
        error message when n does not match (e.g. ``"frequencies"``); default None.
    - `kwargs`: passed to ``equinox.field`` (``static``, ``default``, ``converter``, ...).

    **Returns:**

    The dataclass field (``equinox.field`` with the declarations in its metadata).
    """
    metadata = {key: value for key, value in (("check", check), ("logit", logit), ("per_token", per_token))
                if value is not None}
    return eqx.field(metadata=metadata, **kwargs)


class AbstractField(eqx.Module):
    """A particle vector field dx/dt = F(t, x) for one configuration x.

    Concrete fields define

    * `manifold` (class variable): where a configuration lives, a
      [`AbstractManifold`][jaxattn.manifolds.AbstractManifold] (module docstring; the name ``"sphere"`` etc. is
      accepted and converted);
    * [`dim`][jaxattn.fields.AbstractField.dim]: the token dimension d their parameters fix (e.g. the size of V), or ``None``;
    * [`num_tokens`][jaxattn.fields.AbstractField.num_tokens]: the number of tokens n their parameters fix (e.g. one natural
      frequency per oscillator), or ``None``;
    * [`velocity`][jaxattn.fields.AbstractField.velocity];

    and declare their parameters' rules with [`parameter`][jaxattn.fields.parameter].

    Calling a field, ``field(t, x, args)``, is diffrax's ``ODETerm`` signature.
    """

    manifold: eqx.AbstractClassVar[AbstractManifold]
    #: the velocity of token i is a function of x_i and of the set of all tokens (permuting the tokens
    #: permutes the velocities) when there is no causal mask: see [`exchangeable`][jaxattn.fields.AbstractField.exchangeable]
    exchangeable_tokens: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__.get("manifold")
        if isinstance(declared, str):  # the name form of earlier versions
            cls.manifold = as_manifold(declared)

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
        """The vector field dx/dt = F(t, x) at one configuration (each field's docstring gives its equation).

        **Arguments:**

        - `t`: the time, a scalar (most fields are autonomous and ignore it).
        - `x`: one configuration on the field's manifold: (n, d) tokens, (n,) angles or an (n, n) Gram
            matrix (module docstring); no ensemble axis (``jax.vmap`` for one).

        **Returns:**

        dx/dt, the shape and dtype of ``x`` (tangent to the manifold where it is constrained).
        """

    def __call__(self, t: Real[ArrayLike, ""], x: Float[ArrayLike, "..."], args=None) -> Array:
        """diffrax's ``ODETerm`` signature: [`velocity`][jaxattn.fields.AbstractField.velocity] of ``x``.

        **Arguments:**

        - `t`: the time, a real scalar.
        - `x`: one configuration, any array-like (e.g. NumPy), converted with ``jnp.asarray``.
        - `args`: diffrax's ``args``, ignored (the parameters are the field's own); default None.

        **Returns:**

        ``velocity(t, x)``.
        """
        return self.velocity(t, jnp.asarray(x))

    @property
    def exchangeable(self) -> bool:
        """Whether coincident tokens stay coincident: the class declares exchangeable tokens
        (``exchangeable_tokens``: (SA) and (USA) on the sphere and the circle) and this field has
        neither a causal mask (under it token i sees only j <= i, so two coincident tokens move apart,
        Karagodin et al. 2024) nor a parameter per token. Then tokens merged to round-off move as one
        weighted particle ([`jaxattn.solvers.CollapsingSolver`][jaxattn.solvers.CollapsingSolver], the
        default solver of such fields; ``docs/solving.md``)."""
        return type(self).exchangeable_tokens and not getattr(self, "causal", False) and self.num_tokens is None

    @property
    def event_ndim(self) -> int:
        """Number of trailing axes of one configuration (the manifold's): 1 on the circle, else 2."""
        return self.manifold.event_ndim

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Check that ``shape`` is one configuration this field accepts: the manifold's shape rule, then
        the token dimension and number the parameters fix.

        **Arguments:**

        - `shape`: the shape of one configuration (a tuple of ints, no ensemble axis).

        **Raises:**

        - `ValueError`: the manifold rejects the shape, its token dimension differs from the one Q/K/V
            act on, or its number of tokens differs from the one the parameters fix.
        """
        self.manifold.check_shape(shape)
        d, d_x = self.dim, self.manifold.token_dim(shape)
        if d is not None and d_x is not None and d_x != d:
            raise ValueError(
                f"tokens have dimension d = {d_x} but the field's Q/K/V act on d = {d}; "
                "pass tokens of shape (n, d) matching the matrices"
            )
        n = self.num_tokens
        if n is not None and shape[0] != n:
            what = [f.metadata["per_token"] for f in dataclasses.fields(self) if "per_token" in f.metadata]
            per = f": {n} {what[0]}" if what else ""
            raise ValueError(f"the field's parameters fix n = {n} tokens{per} but there are {shape[0]} tokens")

    def _parameters(self):
        """(name, value, metadata) of each declared parameter that holds an array."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name, None)
            if eqx.is_array(value):
                yield f.name, value, f.metadata

    def parameter_checks(self) -> list[Check]:
        """The rules the field's parameters must satisfy, for the solver to enforce on the host or
        under ``jax.jit`` (`jaxattn._validate.enforce`).

        **Returns:**

        A list of `jaxattn._validate.Check` pairs: each parameter's declared ``check``
        ([`parameter`][jaxattn.fields.parameter]) and every floating array leaf finite, one rule per leaf
        (its name in the message). In float32 the finiteness rules come first: there a cast to the
        tokens' dtype that overflows is the likely cause; otherwise the declared rules, whose messages
        are more specific.
        """
        declared = [meta["check"](value) for _, value, meta in self._parameters() if "check" in meta]
        finite = []
        for path, leaf in jax.tree_util.tree_leaves_with_path(self):
            if not (eqx.is_array(leaf) and jnp.issubdtype(leaf.dtype, jnp.floating)):
                continue
            m = xp(leaf)
            if jnp.finfo(leaf.dtype).bits < 64:
                hint = (f" after the cast to the tokens' dtype {jnp.dtype(leaf.dtype).name} (largest "
                        f"{jnp.finfo(leaf.dtype).max:.3g}): use float64 tokens or smaller parameters")
            else:
                hint = ": rebuild the field with finite parameters"
            finite.append(Check(~m.all(m.isfinite(leaf)),
                                f"the field has NaN or inf parameters ({_leaf_name(path)}){hint}"))
        low_precision = any(jnp.finfo(leaf.dtype).bits < 64 for leaf in jax.tree_util.tree_leaves(self)
                            if eqx.is_array(leaf) and jnp.issubdtype(leaf.dtype, jnp.floating))
        return finite + declared if low_precision else declared + finite

    def logit_scale(self) -> float | None:
        """An upper bound of |attention logit| on unit tokens from the declared ``logit`` parameters:
        |beta| x ||Q||_2 x ||K||_2 (the largest over heads), for the overflow diagnosis of a non-finite
        solve.

        **Returns:**

        The bound (float), or None for a field without logits or with traced parameters.
        """
        if not is_concrete(self):
            return None
        scale = None
        for _, value, meta in self._parameters():
            if meta.get("logit") == "scale":
                scale = (1.0 if scale is None else scale) * float(np.max(np.abs(np.asarray(value, dtype=float))))
        if scale is None:
            return None
        for _, value, meta in self._parameters():
            if meta.get("logit") == "matrix":
                M = np.asarray(value, dtype=float).reshape((-1,) + value.shape[-2:])
                scale *= float(np.max(np.linalg.norm(M, ord=2, axis=(-2, -1))))
        return scale


def _leaf_name(path) -> str:
    return ".".join(str(getattr(k, "name", getattr(k, "key", getattr(k, "idx", k)))) for k in path)
