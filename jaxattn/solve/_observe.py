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
observables therefore equal those of the saved states to round-off (a test). The observables travel through diffrax as one
(batch, K) array per save time (the leaves of ``observe``'s output flattened and cast to the
state's dtype; integers and booleans survive exactly, as they are small counts) and
`unflatten_observables` restores them as (batch, T, ...) arrays.
"""

from __future__ import annotations

import math
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
    """``observe``'s output as a dict (one array: ``{"value": array}``), each leaf checked to have the member
    axis first (length ``batch``): the one normalisation of every observable path."""
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
    """The names, shapes (member axis first) and dtypes ``observe`` returns on states like ``x0``
    (traced with `jax.eval_shape`; nothing is computed)."""
    t = jax.ShapeDtypeStruct((), x0.dtype)
    x = jax.ShapeDtypeStruct(x0.shape, x0.dtype)
    return as_observables(jax.eval_shape(observe, t, x), x0.shape[0])


def observe_saved(observe: Observe, ts: Array, xs: Array) -> dict[str, np.ndarray]:
    """``observe(t, x)`` at each saved time of the states ``xs`` (batch, T, ...), stacked to (batch, T, ...):
    the same numbers as `observables_saveat` inside the solve (to round-off)."""
    out = jax.vmap(lambda t, x: as_observables(observe(t, x), x.shape[0]), in_axes=(0, 1), out_axes=1)(ts, xs)
    return {key: np.asarray(value) for key, value in out.items()}


def observables_saveat(observe: Observe, ts: Array, structure: Mapping[str, jax.ShapeDtypeStruct], *,
                       manifold: AbstractManifold, batched: bool) -> diffrax.SaveAt:
    """``SaveAt(ts=ts, fn=...)`` saving ``observe(t, x)`` flattened to (batch, K) at each save time.

    ``batched``: the solve's state is the whole ensemble (``ensemble="batched"``); otherwise it
    is one member (``"vmap"``/``"map"``) and ``observe`` sees a batch of one. ``manifold``: the
    field's manifold, whose retraction (on constrained manifolds) is applied to the interpolated
    states first, as ``simulate`` does for saved states.
    """
    return diffrax.SaveAt(ts=ts, fn=_SaveObservables(observe, tuple(structure), manifold, batched))


class _SaveObservables(eqx.Module):
    """The ``SaveAt`` fn of `observables_saveat`. A module rather than a closure: equal
    arguments give an equal (static) ``SaveAt``, so repeated solves reuse one compilation as long
    as ``observe`` is the same object (or an equal ``eqx.Module``); a fresh closure per call would
    recompile every solve (measured: ~3 CPU s per call at n = 32, d = 128)."""

    observe: Callable
    names: tuple[str, ...] = eqx.field(static=True)
    manifold: AbstractManifold = eqx.field(static=True)
    batched: bool = eqx.field(static=True)

    def __call__(self, t, y, args):
        x = self.manifold.retract(y) if self.manifold.constrained else y
        if not self.batched:
            x = x[None]
        out = as_observables(self.observe(t, x), x.shape[0])
        flat = jnp.concatenate([jnp.reshape(out[k], (x.shape[0], -1)).astype(y.dtype) for k in self.names],
                               axis=1)
        return flat if self.batched else flat[0]


def unflatten_observables(flat, structure: Mapping[str, jax.ShapeDtypeStruct]) -> dict[str, np.ndarray]:
    """(batch, T, K) saved by `observables_saveat` -> {name: (batch, T, ...)} NumPy arrays."""
    flat = np.asarray(flat)
    out, start = {}, 0
    for key, leaf in structure.items():
        size = math.prod(leaf.shape[1:])
        part = flat[..., start:start + size].reshape(flat.shape[:2] + leaf.shape[1:])
        if np.issubdtype(leaf.dtype, np.bool_):
            part = part > 0.5
        elif not np.issubdtype(leaf.dtype, np.floating):
            part = np.rint(part)
        out[key] = part.astype(leaf.dtype)
        start += size
    return out
