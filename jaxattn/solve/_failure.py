"""How a solve that did not reach t1 is reported: one map from ``diffrax.RESULTS`` to an exception.

Every solve in the package ([`jaxattn.simulate`][jaxattn.simulate], ``jaxattn.spectral``'s monitored PDE solve) runs
with ``throw=False`` and carries diffrax's ``RESULTS`` in its output; [`raise_failure`][jaxattn.solve.raise_failure] turns a
failed result into the exception the user sees on the host (naming the time reached), and
`failure_checks` into the same messages as `jaxattn._validate.Check` pairs for
``equinox.error_if`` when the solve runs under the user's ``jax.jit``/``grad``/``vmap``:

* ``max_steps_reached``: [`SolverStepLimitError`][jaxattn.SolverStepLimitError] (a ``RuntimeError``), with the advice the caller
  passes, or, where the remaining span is below the floating-point resolution of the times, that cause;
* ``nonfinite``: [`NonFiniteStateError`][jaxattn.NonFiniteStateError] (a ``FloatingPointError``), with the likely causes the caller
  passes (e.g. `jaxattn.solve.nonfinite_causes`);
* any other failure (an implicit solver's nonlinear solve diverged, ...): ``RuntimeError`` with diffrax's own
  message.

``successful`` and ``event_occurred`` are not failures.
"""

from collections.abc import Callable

import diffrax
import jax.numpy as jnp
import numpy as np

from .._validate import Check

#: resolvable time spans hold at least this many floating-point spacings of the times (see
#: `jaxattn._validate.time_rules`)
TIME_RESOLUTION = 1024


class SolverStepLimitError(RuntimeError):
    """The solver used up ``max_steps`` before reaching ``t1``."""


class NonFiniteStateError(FloatingPointError):
    """The state became NaN/inf during the solve (a ``FloatingPointError``; the solve stops there at once,
    see [`NonFiniteGuard`][jaxattn.solve.NonFiniteGuard]).

    **Arguments:**

    - `message`: the message (what failed, when, the likely causes).
    - `t`: the time at which the state became non-finite (float; also the attribute ``t``).
    - `num_steps`: the solver steps taken until then (int; also the attribute ``num_steps``).
    """

    def __init__(self, message: str, t: float, num_steps: int):
        super().__init__(message)
        self.t = t
        self.num_steps = num_steps


def is_failure(result) -> object:
    """Where a solve failed: it did not end successfully or by its event.

    **Arguments:**

    - `result`: a ``diffrax.RESULTS`` value, one per solve or an array of them (one per member).

    **Returns:**

    A boolean array of ``result``'s shape: True where the result is neither ``successful`` nor
    ``event_occurred``.
    """
    return (result != diffrax.RESULTS.successful) & (result != diffrax.RESULTS.event_occurred)


def failure_checks(result, *, label: str, step_limit_advice: str, nonfinite_causes: str) -> list[Check]:
    """The failures of a traced solve as rules for ``equinox.error_if`` (`jaxattn._validate.enforce`).

    **Arguments:**

    - `result`: the solve's ``diffrax.RESULTS`` (one, or one per member).
    - `label`: the name of the caller, which begins every message (e.g. ``"jaxattn.simulate"``).
    - `step_limit_advice`: what to do when ``max_steps`` is reached (text appended to that message).
    - `nonfinite_causes`: the likely causes of a non-finite state (text appended to that message).

    **Returns:**

    Three `jaxattn._validate.Check` pairs (step limit, non-finite state, any other failure): the
    messages of [`raise_failure`][jaxattn.solve.raise_failure] without the times, which the host cannot
    read under ``jit``.
    """
    step_limit = result == diffrax.RESULTS.max_steps_reached
    nonfinite = result == diffrax.RESULTS.nonfinite
    return [
        Check(jnp.any(step_limit), f"{label}: the solver reached max_steps before t1. {step_limit_advice} "
                                   "(outside jit the error names the time reached)."),
        Check(jnp.any(nonfinite), f"{label}: the state became non-finite (the solve stopped there; outside jit "
                                  f"the error names the time). {nonfinite_causes}"),
        Check(jnp.any(is_failure(result) & ~step_limit & ~nonfinite),
              f"{label}: the diffrax solve failed before t1 (neither max_steps nor a non-finite state, e.g. an "
              "implicit solver's nonlinear solve diverged); check the solver, the parameters and the initial "
              "condition."),
    ]


def reached_time(t: float, t0: float, t1: float) -> float:
    """A time reached by a solve, rounded to 1e-9 of the span.

    t0 + round((t - t0) / (t1 - t0), 9) (t1 - t0): the null step that ends a solve at a non-finite
    state ([`NonFiniteGuard`][jaxattn.solve.NonFiniteGuard]) is <= 1e-12 of the span, so the rounding
    reports the time the state broke down.

    **Arguments:**

    - `t`: the time reached (float).
    - `t0`: start of the solve (float).
    - `t1`: end of the solve (float, != t0).

    **Returns:**

    The rounded time (float).
    """
    span = t1 - t0
    return t0 + round((t - t0) / span, 9) * span


def _distinct(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` printed with as many digits as they need to differ."""
    for digits in (6, 9, 12, 17):
        sa, sb = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if sa != sb:
            return sa, sb
    return f"{a!r}", f"{b!r}"


def raise_failure(result, *, label: str, t0: float, t1: float, t_reached, num_steps, max_steps: int,
                  dtype, step_limit_advice: str, nonfinite_causes: "str | Callable[[], str]") -> None:
    """Raise the exception of the first failure in ``result``; nothing for a successful solve or an event.

    **Arguments:**

    - `result`: the solve's ``diffrax.RESULTS`` (one result, or an array with one per member).
    - `label`: the name of the caller, which begins every message (e.g. ``"jaxattn.simulate"``).
    - `t0`: start of the solve (float).
    - `t1`: end of the solve (float).
    - `t_reached`: the time each solve reached (scalar, or one per member like ``result``).
    - `num_steps`: the steps taken (scalar or per member; the largest is reported).
    - `max_steps`: the step limit of the solve (int).
    - `dtype`: the dtype of the times (float32 or float64): it decides whether the span left is below
        the resolution of the times.
    - `step_limit_advice`: what to do when ``max_steps`` is reached.
    - `nonfinite_causes`: the likely causes of a non-finite state: text, or a function returning it,
        called only for a non-finite state.

    **Raises:**

    - [`NonFiniteStateError`][jaxattn.NonFiniteStateError]: a member's state became NaN/inf (with the
        earliest time at which one did).
    - [`SolverStepLimitError`][jaxattn.SolverStepLimitError]: a member used up ``max_steps`` (with the
        time reached, or the cause when the span left is below the resolution of the times).
    - `RuntimeError`: any other diffrax failure (with diffrax's message).
    """
    values = np.asarray(getattr(result, "_value", result)).reshape(-1)
    if np.all((values == int(diffrax.RESULTS.successful._value)) | (values == int(diffrax.RESULTS.event_occurred._value))):
        return
    t_reached = np.broadcast_to(np.asarray(t_reached, dtype=float).reshape(-1), values.shape)
    steps = int(np.max(np.asarray(num_steps)))

    def first(item):
        hit = values == int(item._value)
        return float(np.min(t_reached[hit])) if hit.any() else None

    t = first(diffrax.RESULTS.nonfinite)
    if t is not None:
        t = reached_time(t, t0, t1)
        causes = nonfinite_causes() if callable(nonfinite_causes) else nonfinite_causes
        raise NonFiniteStateError(
            f"{label}: the state became non-finite at t = {t:.6g} (after {steps} solver steps; the solve stopped "
            f"there). {causes}", t, steps)
    t = first(diffrax.RESULTS.max_steps_reached)
    if t is not None:
        shown, end = _distinct(t, t1)
        spacing = float(np.spacing(np.asarray(max(abs(t), abs(t1)), dtype=dtype)))
        if t1 - t < TIME_RESOLUTION * spacing:
            cause = (f"The remaining span t1 - t = {t1 - t:.3g} is below the resolution of "
                     f"{np.dtype(dtype).name} times there (spacing {spacing:.3g}): steps cannot advance. Shift "
                     "the times towards 0 or integrate in float64.")
        else:
            cause = step_limit_advice
        raise SolverStepLimitError(
            f"{label}: the solver took max_steps = {max_steps} steps and stopped after t = {shown} (the last "
            f"save time it reached) before t1 = {end}. {cause}")
    bad = values[~np.isin(values, [int(diffrax.RESULTS.successful._value),
                                   int(diffrax.RESULTS.event_occurred._value)])]
    if bad.size:
        message = diffrax.RESULTS._index_to_message[int(bad[0])]
        raise RuntimeError(f"{label}: the diffrax solve failed before t1 = {t1:.6g} ({message}): neither max_steps "
                           "nor a non-finite state, e.g. an implicit solver's nonlinear solve diverged; check the "
                           "solver, the parameters and the initial condition")
