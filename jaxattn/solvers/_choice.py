"""The solver [`jaxattn.simulate`][jaxattn.solve.simulate] uses when none is given: chosen from the field.

Measured (the timings are in ``docs/solving.md``, "Long solves"; ``benchmarks/longtime.py``): for fields whose tokens are
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
    """The merge distance of the default collapse: `MERGE_FACTOR` x max(rtol, atol).

    **Arguments:**

    - `rtol`: the solve's relative tolerance, a real scalar.
    - `atol`: the solve's absolute tolerance, a real scalar.

    **Returns:**

    A float scalar array, ``10 * max(rtol, atol)``.
    """
    return MERGE_FACTOR * jnp.maximum(jnp.asarray(rtol), jnp.asarray(atol))


#: the largest n for which simulate's default collapses clusters: a merge builds (n, n) tables of pairs
#: (8 n^2 bytes each, 32 MiB at n = 2048; at n = 64000 an 8-member ensemble asked for 74 GB)
MAX_COLLAPSE_TOKENS = 2048


def default_solver(field: AbstractField, rtol: Real[ArrayLike, ""] = 1e-6,
                   atol: Real[ArrayLike, ""] = 1e-6, shared_step: bool = False,
                   forward_mode: bool = False, num_tokens: int | None = None) -> diffrax.AbstractSolver:
    """Tsit5 with the cluster collapse (merge distance [`merge_tolerance`][jaxattn.solvers.merge_tolerance])
    for fields with exchangeable tokens on a manifold of token rows, plain Tsit5 otherwise (module
    docstring) and for an ensemble integrated with one shared step (``shared_step``, the "batched"
    strategy: there the members merge at different times, the step is set by the member with the most
    unmerged clusters, and the collapse is slower: docs/solving.md, "Long solves"), and for forward-mode
    differentiation (``forward_mode``: the adjoint is ``diffrax.ForwardMode`` or ``DirectAdjoint``: the
    default path differentiates the solve without merges; a
    [`CollapsingSolver`][jaxattn.solvers.CollapsingSolver] passed as ``solver=`` runs under them too). Pass
    ``solver=`` to [`jaxattn.simulate`][jaxattn.solve.simulate] for another choice, e.g.
    ``diffrax.Tsit5()`` for the solve without merges.

    **Arguments:**

    - `field`: the field to be solved (its ``exchangeable`` flag and manifold decide).
    - `rtol`: the solve's relative tolerance; default 1e-6 (sets the merge distance).
    - `atol`: the solve's absolute tolerance; default 1e-6.
    - `shared_step`: bool, default False: an ensemble integrated as one batched state with one step.
    - `forward_mode`: bool, default False: the solve is differentiated in forward mode.
    - `num_tokens`: the number of tokens n, or None (default: unknown). Above
        [`MAX_COLLAPSE_TOKENS`][jaxattn.solvers.MAX_COLLAPSE_TOKENS] plain Tsit5: a merge compares every pair
        of tokens, (n, n) tables that would not fit in memory at n ~ 10^4 and more.

    **Returns:**

    A ``diffrax.AbstractSolver``: a [`CollapsingSolver`][jaxattn.solvers.CollapsingSolver] around
    ``diffrax.Tsit5()``, or ``diffrax.Tsit5()``.
    """
    too_many = num_tokens is not None and num_tokens > MAX_COLLAPSE_TOKENS
    if field.exchangeable and has_token_rows(field.manifold) and not (shared_step or forward_mode or too_many):
        return CollapsingSolver(diffrax.Tsit5(), field.manifold, merge_tolerance(rtol, atol))
    return diffrax.Tsit5()
