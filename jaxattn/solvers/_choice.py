"""The solver [`jaxattn.simulate`][jaxattn.solve.simulate] uses when none is given: chosen from the field.

Measured (``docs/solving.md``, "Long solves"; ``benchmarks/longtime.py``): for fields whose tokens are
exchangeable ([`AbstractField.exchangeable`][jaxattn.fields.AbstractField.exchangeable]: (SA) and
(USA) on the sphere and on the circle without a causal mask) the explicit solvers spend the
metastable phase at their stability limit (a token contracts onto its cluster at rate ~1), and the
cluster collapse removes those modes: Tsit5 inside a
[`CollapsingSolver`][jaxattn.solvers.CollapsingSolver] merging tokens closer than
`MERGE_FACTOR` x max(rtol, atol). Every other field gets Tsit5. RKC2 is not a default: at
simulate's default tolerance (1e-6) it costs as much as Tsit5 on the causal workloads with a larger
error (it is second order); it wins at the loose tolerances of the causal Fig. 3 statistic, where
the study picks it (``jaxattn.studies``).
"""

from __future__ import annotations

import diffrax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Real

from ..fields import AbstractField
from ._collapse import CollapsingSolver, has_token_rows

#: the default merge distance in units of the solver's tolerance: an adaptive solve holds the tokens of a
#: cluster apart at about its tolerance (the contracting modes are resolved only to it), so the merge
#: distance must exceed it for merges to happen at all (measured: none at 1e-8 with rtol = atol = 1e-6)
MERGE_FACTOR = 10.0


def merge_tolerance(rtol: Real[ArrayLike, ""], atol: Real[ArrayLike, ""]) -> Array:
    """The merge distance of the default collapse: `MERGE_FACTOR` x max(rtol, atol)."""
    return MERGE_FACTOR * jnp.maximum(jnp.asarray(rtol), jnp.asarray(atol))


def default_solver(field: AbstractField, rtol: Real[ArrayLike, ""] = 1e-6,
                   atol: Real[ArrayLike, ""] = 1e-6, shared_step: bool = False,
                   forward_mode: bool = False) -> diffrax.AbstractSolver:
    """Tsit5 with the cluster collapse (merge distance [`merge_tolerance`][jaxattn.solvers.merge_tolerance])
    for fields with exchangeable tokens on a manifold of token rows, plain Tsit5 otherwise (module
    docstring) and for an ensemble integrated with one shared step (``shared_step``, the "batched"
    strategy: there the members merge at different times, the step is set by the member with the most
    unmerged clusters, and the collapse measured 1.3-1.6x slower: (SA) on S^2, n = 32, beta = 4 and 9,
    T = 50 and 500, 16 members), and for forward-mode differentiation (``forward_mode``: the adjoint is
    ``diffrax.ForwardMode`` or ``DirectAdjoint``, which set the Runge-Kutta stage loop's kind on the
    solver through one wrapper, the solve's own guard, and would not reach through a second). Pass
    ``solver=`` to [`jaxattn.simulate`][jaxattn.solve.simulate] for another choice, e.g.
    ``diffrax.Tsit5()`` for the solve without merges."""
    if field.exchangeable and has_token_rows(field.manifold) and not (shared_step or forward_mode):
        return CollapsingSolver(diffrax.Tsit5(), field.manifold, merge_tolerance(rtol, atol))
    return diffrax.Tsit5()
