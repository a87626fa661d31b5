"""(SA) in Gram space: the dynamics of the inner products G = X X^T instead of the tokens X.

For Q = K = V = I the (SA) system of Geshkovski, Letrouit, Polyanskiy, Rigollet, "A mathematical
perspective on Transformers" (2023), eq. (2.6),

    dx_i/dt = P_{x_i}( sum_j A_ij x_j ),   A_ij = exp(beta ⟨x_i, x_j⟩) / Z_i,   Z_i = sum_k exp(beta ⟨x_i, x_k⟩),

depends on the tokens only through their inner products, and it closes on the Gram matrix
G_ij = ⟨x_i, x_j⟩. With P_x y = y - ⟨x, y⟩ x / |x|^2 ([`jaxattn.manifolds.tangent_projection`][jaxattn.manifolds.tangent_projection]),
dX/dt = A X - D X with D = diag(⟨x_i, (A X)_i⟩ / |x_i|^2) = diag((A G)_ii / G_ii), hence

    dG/dt = dX X^T + X dX^T = S + S^T,   S = A G - D G,   A = row-softmax(beta G).

This is an exact reformulation, not an approximation: every x_i(t) stays in span{x_j(0)} and
G(t) = X(t) X(t)^T for the (SA) solution X(t) (a test compares both to 1e-8). The diagonal is
conserved exactly by the flow (dG_ii/dt = 2 ((A G)_ii - D_ii G_ii) = 0), the sphere constraint
|x_i| = 1 reads diag(G) = 1, and a solve retracts to it after each step with
G -> D^{-1/2} G D^{-1/2}, D = diag(G) ([`jaxattn.manifolds.retract_to_unit_diagonal`][jaxattn.manifolds.retract_to_unit_diagonal], the Gram
image of x_i -> x_i / |x_i|). Symmetry is kept exactly (S + S^T is symmetric in floating point).

Cost: one right-hand side is O(n^3) (one n x n product) on an n x n state instead of O(n^2 d) on
an n x d state, a cut whenever d > n (at the phase diagram's n = 32, d = 128 of Figs 2-4: measured in
benchmarks/README.md, section "Phase diagram: work-precision", paragraph "What the Gram formulation
bought").
Every observable that depends only on inner products (the clustered-pair fraction of Figs 2-4,
min_{i,j} ⟨x_i, x_j⟩, the interaction energy E_beta of eq. (3.5)) is read off G directly;
``jaxattn.studies.paper_002.phase_diagram`` uses this path automatically where it applies.
The tokens themselves are not recovered (only up to a rotation: any X with X X^T = G).
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._validate import beta_rule, check_beta
from ..manifolds import GRAM, Gram
from ._attention import attention_weights
from ._base import AbstractField, parameter


class GramSelfAttention(AbstractField):
    """(SA) with Q = K = V = I on the Gram matrix G = X X^T (module docstring):

        dG/dt = S + S^T,   S = A G - diag((A G)_ii / G_ii) G,   A = row-softmax(beta G)

    (Geshkovski et al. 2023 (perspective), eq. (2.6) written for G_ij = ⟨x_i, x_j⟩). A
    configuration is one symmetric positive semidefinite (n, n) matrix with unit diagonal (the
    correlation matrices, `jaxattn.manifolds.GRAM`); ``jaxattn.simulate`` retracts every step to
    diag(G) = 1. Integrating it from G0 = X0 X0^T gives X(t) X(t)^T of ``SelfAttention(beta)``
    from X0, at O(n^3) instead of O(n^2 d) per evaluation.

    **Arguments:**

    - `beta`: the inverse temperature, a finite scalar > 0.

    **Raises:**

    - `ValueError`: beta not a finite scalar > 0.
    - `TypeError`: beta is not real-valued.
    """

    beta: Float[Array, ""] = parameter(check=beta_rule, logit="scale")

    manifold: ClassVar[Gram] = GRAM
    num_tokens: ClassVar[None] = None

    def __init__(self, beta: float | ArrayLike):
        self.beta = check_beta(beta)

    @property
    def dim(self) -> None:
        return None

    def velocity(self, t, x: Float[Array, "n n"]) -> Float[Array, "n n"]:
        """dG/dt = S + S^T, S = A G - diag((A G)_ii / G_ii) G, A = row-softmax(beta G) (class docstring).

        **Arguments:**

        - `t`: the time (unused: the field is autonomous).
        - `x`: the Gram matrix G, float (n, n), symmetric with unit diagonal.

        **Returns:**

        dG/dt, float (n, n): exactly symmetric in floating point, with zero diagonal up to round-off.
        """
        a = attention_weights(self.beta * x)  # row softmax of beta <x_i, x_j>, the (SA) weights
        ag = a @ x
        s = ag - (jnp.diagonal(ag) / jnp.diagonal(x))[:, None] * x
        return s + s.T


#: how a solve may integrate a field that closes on the Gram matrix ([`gram_formulation`][jaxattn.fields.gram_formulation])
FORMULATIONS = ("auto", "gram", "tokens")


def gram_of(x: Float[ArrayLike, "... n d"]) -> Float[Array, "... n n"]:
    """The Gram matrices G = X X^T, the inner products G_ij = ⟨x_i, x_j⟩ of each configuration.

    **Arguments:**

    - `x`: tokens, float (..., n, d) (any leading ensemble axes).

    **Returns:**

    Float (..., n, n), symmetric positive semidefinite (unit diagonal for tokens on the sphere).
    """
    x = jnp.asarray(x)
    return jnp.einsum("...id,...jd->...ij", x, x)


def closes_on_gram(field: AbstractField) -> bool:
    """Whether ``field``'s dynamics close on G = X X^T as [`GramSelfAttention`][jaxattn.GramSelfAttention] (module docstring).

    **Arguments:**

    - `field`: any [`AbstractField`][jaxattn.AbstractField].

    **Returns:**

    True for (SA) ([`SelfAttention`][jaxattn.SelfAttention]) with Q = K = V = I, softmax attention (not [`Sinkhorn`][jaxattn.Sinkhorn]), no
    causal mask and no feed-forward sublayer; False otherwise.
    """
    from .sphere import SelfAttention

    return (isinstance(field, SelfAttention) and field.Q is None and field.K is None and field.V is None
            and not field.causal and field.feedforward is None and field.normalisation == "softmax")


def prefers_gram(exact: bool, n: int, d: int, formulation: str = "auto") -> bool:
    """The library's choice of formulation ([`FORMULATIONS`][jaxattn.fields.FORMULATIONS]): Gram space or tokens.

    ``"auto"`` takes Gram space where it is exact and cheaper, d > n: then the n x n state and the O(n^3)
    right-hand side are smaller than the (n, d) tokens and the O(n^2 d) one (the saving at n = 32,
    d = 128 is measured in benchmarks/README.md, section "Phase diagram: work-precision").

    **Arguments:**

    - `exact`: whether the field closes on the Gram matrix ([`closes_on_gram`][jaxattn.fields.closes_on_gram]).
    - `n`: the number of tokens.
    - `d`: the token dimension.
    - `formulation`: ``"auto"`` (default), ``"gram"`` (refused unless ``exact``) or ``"tokens"``.

    **Returns:**

    True to integrate in Gram space.

    **Raises:**

    - `ValueError`: an unknown ``formulation``, or ``"gram"`` for a field that does not close on G.
    """
    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation must be one of {FORMULATIONS}, got {formulation!r}")
    if formulation == "gram" and not exact:
        raise ValueError("formulation='gram' needs (SA) with Q = K = V = I (no mask, no feed-forward): the dynamics "
                         "close on the Gram matrix only then. Use 'auto' or 'tokens'")
    return formulation == "gram" or (formulation == "auto" and exact and d > n)


def gram_formulation(field: AbstractField, x0: Float[ArrayLike, "*batch n d"],
                     formulation: str = "auto") -> tuple[AbstractField, Array]:
    """The field and initial condition a solve should integrate: ``(GramSelfAttention(beta), X0 X0^T)`` where
    [`prefers_gram`][jaxattn.fields.prefers_gram] chooses Gram space (an exact reformulation, module docstring), else ``(field, x0)``.

    Use it only for observables of inner products (the clustered-pair fraction, min ⟨x_i, x_j⟩, the
    interaction energy): Gram space does not keep the tokens themselves. ``isinstance(result[0],
    GramSelfAttention)`` tells which one was chosen.

    **Arguments:**

    - `field`: the field to integrate.
    - `x0`: its initial tokens, float (..., n, d) (an ensemble too).
    - `formulation`: ``"auto"`` (default), ``"gram"`` or ``"tokens"`` ([`prefers_gram`][jaxattn.fields.prefers_gram]).

    **Returns:**

    ``(GramSelfAttention(field.beta), X0 X0^T)`` (float (..., n, n)) in Gram space, else
    ``(field, x0)``.

    **Raises:**

    - `ValueError`: as [`prefers_gram`][jaxattn.fields.prefers_gram].
    """
    x0 = jnp.asarray(x0)
    if prefers_gram(closes_on_gram(field), x0.shape[-2], x0.shape[-1], formulation):
        return GramSelfAttention(field.beta), gram_of(x0)
    return field, x0
