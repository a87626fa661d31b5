"""Memory-capped ensembles: split a huge ensemble into chunks that fit a byte budget.

``simulate(field, x0, ...)`` on a (batch, n, d) ensemble holds, per member, the saved
states (T n d), ~10 Runge-Kutta stage buffers (n d) and the attention working set
(n * min(n, block) per row block, a few temporaries): about

    bytes_per_member ~ itemsize * (T n d + 10 n d + 4 n min(n, 1024)).

:func:`simulate_chunked` runs ``simulate`` on consecutive chunks of at most
``floor(max_bytes / bytes_per_member)`` members (every chunk but the last has the same
shape, so one compilation serves them all) and concatenates the trajectories. Chunks
are independent solves: in ``ensemble="batched"`` mode each chunk has its own shared
step, so results differ from one unchunked solve at the solver tolerance, not more.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .solve import DEFAULT_NUM_SAVES, Trajectory, simulate

DEFAULT_MAX_BYTES = 2 * 1024**3


def bytes_per_member(n: int, d: int, num_saves: int, itemsize: int = 8) -> int:
    """Estimated peak bytes of one ensemble member (module docstring)."""
    return itemsize * (num_saves * n * d + 10 * n * d + 4 * n * min(n, 1024))


def simulate_chunked(field, x0, t1, *, max_bytes: int = DEFAULT_MAX_BYTES, ts=None, **kwargs) -> Trajectory:
    """``simulate`` over an ensemble in chunks whose estimated memory is <= ``max_bytes``."""
    x0 = jnp.asarray(x0)
    if x0.ndim != field.event_ndim + 1:
        return simulate(field, x0, t1, ts=ts, **kwargs)
    num_saves = DEFAULT_NUM_SAVES if ts is None else (int(ts) if np.ndim(ts) == 0 else len(ts))
    n = x0.shape[1]
    d = x0.shape[2] if x0.ndim == 3 else 1
    per = bytes_per_member(n, d, num_saves, x0.dtype.itemsize)
    chunk = max(1, int(max_bytes // per))
    if chunk >= x0.shape[0]:
        return simulate(field, x0, t1, ts=ts, **kwargs)
    parts = [simulate(field, x0[i:i + chunk], t1, ts=ts, **kwargs) for i in range(0, x0.shape[0], chunk)]
    first = parts[0]
    stats = {k: jnp.concatenate([jnp.broadcast_to(p.stats[k], (p.xs.shape[0],)) for p in parts])
             for k in first.stats}
    return Trajectory(
        ts=first.ts, xs=jnp.concatenate([p.xs for p in parts]),
        t_final=jnp.concatenate([jnp.broadcast_to(p.t_final, (p.xs.shape[0],)) for p in parts]),
        stats=stats, field=first.field,
        event_occurred=jnp.concatenate([jnp.broadcast_to(p.event_occurred, (p.xs.shape[0],)) for p in parts]))
