"""Observables inside the solve: reduce the states to observables at the save times.

An ensemble sweep rarely needs the states themselves, only observables of them at the save
times (the clustered-pair fraction of Geshkovski et al. 2023 (perspective) Figs 2-4, a cluster
count, an energy). Saving the states costs O(batch x T x n x d) memory (250 MB per point of
the paper-002 phase diagram at batch 128, d = 128, 61 saves) and is observed afterwards;
`observables_saveat` instead hands diffrax a ``SaveAt(ts=ts, fn=...)`` whose ``fn``
evaluates ``observe(t, x)`` on the (retracted) states at each save time inside the solve,
so only O(batch x observables x T) numbers are kept.

The states at a save time are the solver's dense interpolant, retracted to the sphere on the
sphere (to diag(G) = 1 for Gram fields), i.e. exactly the states ``simulate`` saves with ``ts``; the
observables therefore equal those of the saved states to round-off (a test). The observables travel
through diffrax as the dict ``observe`` returns, each leaf in its own dtype (so an integer count stays
an exact integer, also above 2^24 with float32 states, where a float32 would round it), and
`unflatten_observables` returns them as (batch, T, ...) NumPy arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ..manifolds import AbstractManifold


#: ``observe(t, x) -> dict | array``: t a scalar save time, x the states (batch, n, d) there
Observe = Callable[[Array, Array], "Mapping[str, Array] | Array"]


def as_observables(out, batch: int) -> dict:
    """``observe``'s output as a dict, each leaf checked to have the member axis first: the one
    normalisation of every observable path.

    **Arguments:**

    - `out`: what ``observe(t, x)`` returned: a mapping of name to array, or one array (then named
        ``"value"``).
    - `batch`: the number of members (int >= 1): the length every leaf's leading axis must have.

    **Returns:**

    A dict of name to array (member axis first).

    **Raises:**

    - `ValueError`: if a leaf is not an array with a leading axis of length ``batch``.
    """
    out = {"value": out} if not isinstance(out, Mapping) else dict(out)
    for key, leaf in out.items():
        shape = getattr(leaf, "shape", None)
        if shape is None or len(shape) == 0 or shape[0] != batch:
            raise ValueError(
                f"observe(t, x) must return arrays with the member axis first (length {batch}); "
                f"{key!r} has shape {shape if shape is not None else type(leaf).__name__}"
            )
    return out


def observable_structure(observe: Observe, x0: Array) -> dict[str, jax.ShapeDtypeStruct]:
    """The names, shapes and dtypes ``observe`` returns on states like ``x0`` (traced with
    ``jax.eval_shape``; nothing is computed).

    **Arguments:**

    - `observe`: ``observe(t, x) -> dict | array``, t a scalar time, x the states ``(batch, *event)``.
    - `x0`: the ensemble's initial states, shape ``(batch, *event)``.

    **Returns:**

    A dict of name to ``jax.ShapeDtypeStruct`` (member axis first).

    **Raises:**

    - `ValueError`: as `as_observables`, if a leaf lacks the member axis.
    """
    t = jax.ShapeDtypeStruct((), x0.dtype)
    x = jax.ShapeDtypeStruct(x0.shape, x0.dtype)
    return as_observables(jax.eval_shape(observe, t, x), x0.shape[0])


def observe_saved(observe: Observe, ts: Array, xs: Array) -> dict[str, np.ndarray]:
    """``observe(t, x)`` at each saved time of saved states: the same numbers as the observables inside
    the solve (`observables_saveat`), to round-off.

    **Arguments:**

    - `observe`: ``observe(t, x) -> dict | array``, t a scalar time, x the states ``(batch, *event)`` at t;
        every returned leaf has the member axis first.
    - `ts`: the save times, shape (T,).
    - `xs`: the saved states, shape ``(batch, T, *event)``.

    **Returns:**

    A dict of name to NumPy array of shape (batch, T, ...) (one array returned by ``observe`` is named
    ``"value"``).

    **Raises:**

    - `ValueError`: if a leaf ``observe`` returns lacks the member axis.
    """
    out = jax.vmap(lambda t, x: as_observables(observe(t, x), x.shape[0]), in_axes=(0, 1), out_axes=1)(ts, xs)
    return {key: np.asarray(value) for key, value in out.items()}


def observables_saveat(observe: Observe, ts: Array, structure: Mapping[str, jax.ShapeDtypeStruct], *,
                       manifold: AbstractManifold, batched: bool) -> diffrax.SaveAt:
    """``SaveAt(ts=ts, fn=...)`` saving ``observe(t, x)`` (a dict of member-first arrays) at each save time.

    **Arguments:**

    - `observe`: ``observe(t, x) -> dict | array`` on states ``(batch, *event)``.
    - `ts`: the save times, shape (T,).
    - `structure`: what ``observe`` returns (`observable_structure`);
        its names fix the saved leaves.
    - `manifold`: the field's [`AbstractManifold`][jaxattn.manifolds.AbstractManifold]; on a constrained one
        the interpolated states are retracted first, as ``simulate`` does for saved states.
    - `batched`: True when the solve's state is the whole ensemble (``ensemble="batched"``); False when it
        is one member (``"vmap"``/``"map"``), where ``observe`` sees a batch of one.

    **Returns:**

    The ``diffrax.SaveAt`` (equal arguments give an equal, static ``SaveAt``: one compilation).
    """
    return diffrax.SaveAt(ts=ts, fn=_SaveObservables(observe, tuple(structure), manifold, batched))


class _SaveObservables(eqx.Module):
    """The ``SaveAt`` fn of `observables_saveat`. A module rather than a closure: equal
    arguments give an equal (static) ``SaveAt``, so repeated solves reuse one compilation as long
    as ``observe`` is the same object (or an equal ``eqx.Module``); a fresh closure per call would
    recompile every solve (measured in benchmarks/README.md, section "Measured: the full runner",
    paragraph "Recompilation")."""

    observe: Callable
    names: tuple[str, ...] = eqx.field(static=True)
    manifold: AbstractManifold = eqx.field(static=True)
    batched: bool = eqx.field(static=True)

    def __call__(self, t, y, args):
        x = self.manifold.retract(y) if self.manifold.constrained else y
        if not self.batched:
            x = x[None]
        out = as_observables(self.observe(t, x), x.shape[0])
        out = {key: jnp.asarray(out[key]) for key in self.names}
        return out if self.batched else {key: value[0] for key, value in out.items()}


def unflatten_observables(saved, structure: Mapping[str, jax.ShapeDtypeStruct]) -> dict[str, np.ndarray]:
    """The observables saved by `observables_saveat` as NumPy arrays of the dtypes ``observe`` returned.

    **Arguments:**

    - `saved`: the solve's saved dict {name: (batch, T, ...)} (``simulate`` returns it this way).
    - `structure`: what ``observe`` returns (`observable_structure`).

    **Returns:**

    A dict of name to NumPy array (batch, T, ...), each in its own dtype (an integer count stays exact).
    """
    return {key: np.asarray(saved[key]).astype(leaf.dtype) for key, leaf in structure.items()}
