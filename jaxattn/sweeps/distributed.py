"""One ensemble sharded over the devices of every process of a ``jax.distributed`` job (``docs/scaling.md``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

__all__ = ["solve_global_ensemble"]


def solve_global_ensemble(
    field: Any,
    x0_local: Any,
    t1: float,
    *,
    ts: Any,
    observe: Callable[[Any, Any], Mapping[str, Any] | Any],
    **simulate_kwargs: Any,
) -> dict[str, np.ndarray]:
    """One ensemble sharded over the devices of **every** process (``jax.distributed``).

    Every process calls this with its own members ``x0_local`` (shape (b_k, n, d); the
    sizes may differ); the global ensemble is their concatenation in process order. Each
    part is padded with copies of its first member to a common multiple of the local device
    count (duplicates leave the max-over-members error norm, hence every step, unchanged),
    assembled with :func:`jax.make_array_from_process_local_data` on a one-axis mesh over
    ``jax.devices()`` ordered by process, and integrated by :func:`jaxattn.simulate` as one
    batched state: one SPMD program over all processes, whose shared step is the same as
    a one-process solve of the whole ensemble. ``observe(ts, xs)`` returns arrays with the
    member axis first; they are gathered to every process (padding dropped) as NumPy
    arrays of length ``sum_k b_k``, with ``num_steps``. With one process this is
    :func:`solve_ensemble` over the local devices.
    """
    from jax.experimental import multihost_utils

    from ..solve import simulate

    if simulate_kwargs.get("ensemble", "batched") != "batched":
        raise ValueError("solve_global_ensemble integrates the ensemble as one batched state")
    simulate_kwargs["ensemble"] = "batched"
    local = np.asarray(x0_local)
    if local.ndim < 2 or local.shape[0] < 1:
        raise ValueError(f"x0_local needs a leading member axis with >= 1 member, got shape {local.shape}")
    processes, rank = jax.process_count(), jax.process_index()
    sizes = np.asarray(multihost_utils.process_allgather(np.array([local.shape[0]]))).reshape(-1)
    shapes = multihost_utils.process_allgather(np.array(local.shape[1:]))
    if not np.all(np.asarray(shapes).reshape(processes, -1) == np.array(local.shape[1:])):
        raise ValueError(f"every process must pass members of one shape; this one has {local.shape[1:]}, "
                         f"all: {np.asarray(shapes).reshape(processes, -1).tolist()}")
    per_device = -(-int(sizes.max()) // jax.local_device_count())
    per_process = per_device * jax.local_device_count()
    padded = np.concatenate([local, np.repeat(local[:1], per_process - local.shape[0], axis=0)])
    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    mesh = jax.sharding.Mesh(np.array(devices), ("batch",))
    spec = jax.sharding.PartitionSpec("batch", *([None] * (local.ndim - 1)))
    x0 = jax.make_array_from_process_local_data(jax.sharding.NamedSharding(mesh, spec), padded,
                                                (processes * per_process, *local.shape[1:]))
    traj = simulate(field, x0, t1, ts=ts, **simulate_kwargs)
    obs = observe(traj.ts, traj.xs)
    single = not isinstance(obs, Mapping)
    obs = {"value": obs} if single else dict(obs)
    keep = np.concatenate([np.arange(k * per_process, k * per_process + int(sizes[k])) for k in range(processes)])
    out = {}
    for key, value in obs.items():
        if getattr(value, "ndim", 0) == 0 or value.shape[0] != processes * per_process:
            raise ValueError(f"observe must return arrays with the member axis first (length "
                             f"{processes * per_process}); {key!r} has shape {getattr(value, 'shape', ())}")
        full = np.asarray(multihost_utils.process_allgather(value, tiled=True))
        out[key] = full[keep]
    steps = traj.stats["num_steps"]
    out["num_steps"] = np.asarray(steps.addressable_data(0) if isinstance(steps, jax.Array) else steps)
    return out
