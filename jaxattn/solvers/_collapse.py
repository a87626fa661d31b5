r"""Cluster collapse: tokens that have merged are integrated as one particle.

For (SA) and (USA) without a causal mask (Geshkovski et al. 2023 (perspective) eqs. (2.6), (3.11);
the circle form eq. (6.1)) the velocity of token i is a function of x_i and of the *set* of all
tokens: identical tokens have identical velocities, so tokens that coincide at some time coincide
for ever, and n tokens of which m_c sit at x_c move exactly as K weighted particles,

    dx_c/dt = P_{x_c}( sum_k m_k e^{beta <Q x_c, K x_k>} V x_k / sum_k m_k e^{beta <Q x_c, K x_k>} )   (SA)

(USA: divide by n instead). Inside a cluster, though, the tokens' differences contract at rate ~1
(SA; ~m e^beta / n for USA), which bounds every explicit solver's step by its stability limit for
as long as the clusters live, i.e. for the whole metastable phase (Geshkovski, Koubbi, Polyanskiy,
Rigollet 2024: log T_2 ~ beta).

[`CollapsingSolver`][jaxattn.solvers.CollapsingSolver] removes those modes. It keeps the n tokens as the state and a map
``root`` (token -> the representative of its cluster) in its solver state: every evaluation of the
field returns v[root] (a merged token takes its representative's velocity, so it stays an exact
copy: the same stage values, the same arithmetic), and after every step the tokens of different
clusters closer than ``tol`` are merged: the component is moved to its mean (renormalised on the
sphere; on the circle the mean angle offset from the representative) and every member becomes a
copy of it. With exact copies the attention sums over all n tokens *are* the sums with
multiplicities above, so no other field is needed, and the within-cluster differences have zero
velocity: the Jacobian's contracting modes of rate ~1 are gone and the steps follow the slow drift
between clusters.

What a merge changes: it moves each token of the merged component by at most ``tol`` (the
component's diameter) to the component's mean; because the mean is kept, the velocities of the
other tokens change at second order, O(beta tol^2) for SA. So the merge changes a trajectory by
O(tol) in the merged tokens (which were converging to each other anyway) and O(beta tol^2)
elsewhere; ``docs/solving.md`` gives the measured changes against the full solve.

**Not for causal masks.** Under the mask of Karagodin et al. 2024 token k sees only j <= k, so
two coincident tokens j < k have different velocities (k also sees tokens j+1..k), and a later
token that coincides with an earlier one moves away from it at first order; the merge is not
exact there and [`jaxattn.simulate`][jaxattn.solve.simulate] refuses it (``docs/solving.md`` says what holds).
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ..manifolds import SPHERE, AbstractManifold, as_manifold
from ._delegating import AbstractDelegatingSolver

#: default merge distance: the chordal (sphere), Euclidean or angular distance below which two
#: clusters become one
DEFAULT_MERGE_TOL = 1e-8


def has_token_rows(manifold: AbstractManifold) -> bool:
    """Whether a configuration of ``manifold`` is one row (or one angle) per token, which the collapse
    can merge: the sphere, the circle, R^d; not Gram matrices (a token there is a row and a column)."""
    return manifold.event_ndim == 1 or manifold.token_dim((2, 2)) is not None


class _GatherTerm(diffrax.AbstractTerm):
    """``term`` whose vector field is read at each token's representative: v -> v[root]."""

    term: diffrax.AbstractTerm
    root: Int[Array, "*batch n"]
    event_ndim: int = eqx.field(static=True)

    def vf(self, t, y, args):
        return gather_tokens(self.term.vf(t, y, args), self.root, self.event_ndim)

    def contr(self, t0, t1, **kwargs):
        return self.term.contr(t0, t1, **kwargs)

    def prod(self, vf, control):
        return self.term.prod(vf, control)

    def is_vf_expensive(self, t0, t1, y, args):
        return self.term.is_vf_expensive(t0, t1, y, args)


def gather_tokens(x: Array, root: Int[Array, "*batch n"], event_ndim: int) -> Array:
    """x[..., root, :]: every token replaced by its representative (per member of a batch)."""
    index = root if event_ndim == 1 else root[..., None]
    return jnp.take_along_axis(x, jnp.broadcast_to(index, root.shape + x.shape[root.ndim:]), axis=root.ndim - 1)


def _token_norm(d: Array, event_ndim: int) -> Array:
    return jnp.abs(d) if event_ndim == 1 else jnp.linalg.norm(d, axis=-1)


def _components(linked: Array, root: Array) -> Array:
    """The smallest token index of each token's connected component of ``linked`` (which links
    every token to its own representative's cluster), by min-label propagation."""
    n = root.shape[0]

    def step(label):
        return jnp.min(jnp.where(linked, label[None, :], n), axis=1)

    def cond(c):
        return jnp.any(c[0] != c[1])

    def body(c):
        return step(c[0]), c[0]

    label, _ = jax.lax.while_loop(cond, body, (step(root), root))
    return label


def merge_clusters(x: Array, root: Int[Array, " n"], tol: float | Array,
                   manifold: AbstractManifold) -> tuple[Array, Array]:
    """Merge the clusters of one configuration that have tokens closer than ``tol``.

    ``root[i]`` is the representative (smallest index) of token i's cluster, whose tokens are exact
    copies. Distances are |manifold.difference(x_i, x_j)| (chordal on the sphere, the angle on the
    circle). A merged component goes to its mean: its representative plus the mean difference of its
    tokens from it, retracted to the manifold (on the sphere: the normalised mean). Returns the new
    positions and roots; components that did not change keep their positions bit for bit.
    """
    n = root.shape[0]
    k = manifold.event_ndim
    dist = _token_norm(manifold.difference(x[:, None], x[None, :]), k)
    same = root[:, None] == root[None, :]
    close = (dist <= tol) & ~same

    def merge(_):
        label = _components(close | same, root)
        member = (label[:, None] == jnp.arange(n)[None, :]).astype(x.dtype)  # (token, component)
        count = jnp.maximum(jnp.sum(member, axis=0), 1)
        changed = jnp.zeros(n, bool).at[label].max(label != root)  # components that absorbed another
        base = x[label]
        offset = manifold.difference(x, base)
        mean = jnp.tensordot(member.T, offset, axes=1) / (count if k == 1 else count[:, None])
        new = manifold.retract(base + mean[label])
        moved = changed[label] if k == 1 else changed[label][:, None]
        return jnp.where(moved, new, x), label

    # unvmap_any: under vmap the merge runs only when some member has a pair to merge (a merge of a
    # member without one returns it unchanged), not on every step as a select of both branches
    return jax.lax.cond(eqxi.unvmap_any(jnp.any(close)), merge, lambda _: (x, root), None)


class CollapsingSolver(AbstractDelegatingSolver):
    """Wrap a diffrax solver so that tokens closer than ``tol`` are merged and move as one
    particle from then on (module docstring). For fields without a causal mask whose velocity
    of token i depends on x_i and the set of tokens only (SA, USA, their circle forms).

    Args:
        solver: the inner solver (any explicit diffrax solver, e.g. Tsit5 or [`RKC2`][jaxattn.solvers.RKC2]).
        manifold: the field's manifold (``field.manifold``: the sphere, the circle or R^d, or its
            name), which measures distances and takes means ([`AbstractManifold.difference`][jaxattn.manifolds.AbstractManifold.difference]).
        tol: the merge distance (chordal on the sphere, angular on the circle); default 1e-8.
    """

    solver: diffrax.AbstractSolver
    manifold: AbstractManifold = eqx.field(static=True, default=SPHERE, converter=as_manifold)
    tol: Float[Array, ""] = eqx.field(default=DEFAULT_MERGE_TOL, converter=jnp.asarray)  # traced: no recompilation

    def __check_init__(self):
        if not has_token_rows(self.manifold):
            raise ValueError(f"CollapsingSolver merges tokens stored one per row (the sphere, the circle, R^d); "
                             f"a configuration on {self.manifold} is not")

    @property
    def event_ndim(self) -> int:
        return self.manifold.event_ndim

    def _root0(self, y0):
        n = y0.shape[y0.ndim - self.event_ndim]
        batch = y0.shape[: y0.ndim - self.event_ndim]
        return jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), batch + (n,))

    def init(self, terms, t0, t1, y0, args):
        root = self._root0(y0)
        inner = self.solver.init(_GatherTerm(terms, root, self.event_ndim), t0, t1, y0, args)
        return inner, root, jnp.array(False)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        inner, root, merged = solver_state
        # after a merge the inner solver's first-same-as-last evaluation belongs to the unmerged state: a
        # jump makes it evaluate the field at the merged one (else copies would differ by h |v_i - v_j|)
        y1, y_error, dense_info, inner, result = self.solver.step(
            _GatherTerm(terms, root, self.event_ndim), t0, t1, y0, args, inner, made_jump | merged)
        merge = lambda x, r: merge_clusters(x, r, self.tol, self.manifold)  # noqa: E731
        for _ in range(root.ndim - 1):  # an ensemble solved as one batched state
            merge = jax.vmap(merge)
        new_y1, new_root = merge(y1, root)
        return new_y1, y_error, dense_info, (inner, new_root, jnp.any(new_root != root)), result
