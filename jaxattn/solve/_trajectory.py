"""The result of :func:`jaxattn.simulate`: saved times, states and solver statistics."""

from __future__ import annotations

from typing import TypedDict

import equinox as eqx
from jaxtyping import Array, Bool, Float, Int

from ..fields import AbstractField


class SolverStats(TypedDict):
    """diffrax's step counts of one solve: a scalar each, or one per member (shape (B,)) when the
    members took their own steps (``ensemble="vmap"``/``"map"``, or a chunked ensemble)."""

    num_steps: Int[Array, "*solves"]
    num_accepted_steps: Int[Array, "*solves"]
    num_rejected_steps: Int[Array, "*solves"]


class Trajectory(eqx.Module):
    """Result of :func:`jaxattn.simulate`.

    * ``ts``: (T,) saved times;
    * ``xs``: (T, n, d) states ((T, n) angles on the circle); an ensemble has a leading
      batch axis, (B, T, n, d). With a user's ``saveat`` it is diffrax's ``sol.ys``;
    * ``t_final``: time reached (t1, or the event time with ``stop_when``); shape () or (B,);
    * ``stats``: diffrax's solver statistics (:class:`SolverStats`: ``stats["num_steps"]``, ...);
    * ``field``: the field that was integrated;
    * ``event_occurred``: whether ``stop_when`` ended the solve; shape () or (B,).
    """

    ts: Float[Array, " T"]
    xs: Float[Array, "*batch T n d"] | Float[Array, "*batch T n"]
    t_final: Float[Array, "*solves"]  # () when the members share one solve (ensemble="batched"), else (B,)
    stats: SolverStats
    field: AbstractField
    event_occurred: Bool[Array, "*solves"]  # like t_final

    @property
    def final(self) -> Float[Array, "*batch n d"] | Float[Array, "*batch n"]:
        """The last saved state(s): xs[..., -1, :, :]."""
        return self.xs[..., -1, :, :] if self.field.event_ndim == 2 else self.xs[..., -1, :]

    @property
    def is_ensemble(self) -> bool:
        return self.xs.ndim == self.field.event_ndim + 2
