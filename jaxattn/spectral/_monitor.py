"""Resolution-monitored diffrax integration shared by the zonal and sphere solvers.

A model passed here is an ``eqx.Module`` with ``__call__(t, y, args)`` on a real state y and two
diagnostics on that state: ``tail(y)`` (largest relative coefficient in the top eighth of the
spectrum) and ``min_density(y)`` (minimum of the density on the quadrature grid, in units where
the uniform density is 1). The circle solver has the same logic inline (its density unit is 1/(2 pi)).
"""

from __future__ import annotations

import warnings

import numpy as np
import diffrax
import equinox as eqx
import jax.numpy as jnp


@eqx.filter_jit
def _run(model, y0, ts, solver, rtol, atol, max_steps, tail_tol, neg_tol, stop):
    def unresolved(t, y, args, **kwargs):
        return (model.tail(y) > tail_tol) | (model.min_density(y) < -neg_tol)

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(model),
        diffrax.Tsit5() if solver is None else solver,
        t0=ts[0],
        t1=ts[-1],
        dt0=None,
        y0=y0,
        saveat=diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=ts), diffrax.SubSaveAt(t1=True)]),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
        event=diffrax.Event(unresolved) if stop else None,
    )
    return sol.ys[0], sol.event_mask, sol.ts[1]


def check_times(t1, ts, n_save):
    if ts is None:
        if t1 is None or not np.isfinite(t1) or t1 <= 0:
            raise ValueError(f"t1 must be a finite time > 0, got {t1!r}")
        ts = np.linspace(0.0, float(t1), n_save)
    ts = np.asarray(ts, dtype=float)
    if ts.ndim != 1 or ts.size < 2 or not np.all(np.diff(ts) > 0) or not np.all(np.isfinite(ts)):
        raise ValueError("ts must be a strictly increasing 1-D array of finite times with >= 2 entries")
    return ts


def solve_monitored(model, y0, ts, *, solver, rtol, atol, max_steps, tail_tol, neg_tol, on_unresolved, label):
    """Integrate; return (ts, ys, tail, min_density, resolved, t_lost) keeping only trustworthy saved times
    for ``on_unresolved="stop"``; warn (or raise) with the time at which resolution was lost."""
    if on_unresolved not in ("stop", "warn", "raise"):
        raise ValueError(f"on_unresolved must be 'stop', 'warn' or 'raise', got {on_unresolved!r}")
    ys, event_mask, t_end = _run(
        model, y0, jnp.asarray(ts), solver, rtol, atol, max_steps, tail_tol, neg_tol, on_unresolved != "warn"
    )
    ys = np.asarray(ys)
    finite = np.all(np.isfinite(ys), axis=-1)
    safe = jnp.asarray(np.where(finite[:, None], ys, 0.0))
    tail = np.asarray(eqx.filter_vmap(model.tail)(safe))
    mind = np.asarray(eqx.filter_vmap(model.min_density)(safe))
    resolved = finite & (tail <= tail_tol) & (mind >= -neg_tol)
    t_lost = float("inf")
    keep = np.ones_like(resolved)
    if not np.all(resolved):
        i = int(np.argmin(resolved))
        t_lost = float(t_end[0]) if bool(event_mask) else float(ts[i])
        msg = (
            f"{label} lost resolution at t ~ {t_lost:.6g} (between saved times {ts[max(i - 1, 0)]:.6g} and "
            f"{ts[i]:.6g}): spectral tail > {tail_tol:g} or density < -{neg_tol:g} x uniform. "
            "Increase the number of modes or switch to particles."
        )
        if on_unresolved == "raise":
            raise RuntimeError(msg)
        if on_unresolved == "stop":
            keep = np.cumprod(resolved).astype(bool)
            msg += f" Returned only the {int(keep.sum())} resolved saved times."
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
    return ts[keep], ys[keep], tail[keep], mind[keep], resolved[keep], t_lost
