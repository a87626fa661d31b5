"""Argument checks shared by every package: one place for each rule and its message.

Each ``check_*`` returns the validated value (converted where useful) and raises
``ValueError``/``TypeError`` with a message that says what is wrong and how to fix it.

A rule that must also hold for traced values (inside ``jax.jit``/``vmap``/``grad``) is written once
as a function returning `Check` pairs (violated, message); `enforce` then raises the
message on the host where the values are concrete, or attaches it with ``equinox.error_if``
where they are traced, so the user reads the same text either way (eagerly with the offending
value appended).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

_T = TypeVar("_T")

#: the attention models of the mean-field papers: normalised SA and unnormalised USA
MODELS = ("usa", "sa")


def is_concrete(*trees) -> bool:
    """Whether values can be checked on the host: no leaf of ``trees`` is a JAX tracer.

    **Arguments:**

    - `trees`: any pytrees (arrays, numbers, fields, None).

    **Returns:**

    True when no leaf is a tracer (bool).
    """
    leaves = jax.tree_util.tree_leaves(trees)
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)


class Check(NamedTuple):
    """One rule evaluated on values (a named tuple), raised or attached by `enforce`.

    **Arguments:**

    - `violated`: a Python/NumPy bool where the values are concrete and a traced boolean array where
        they are not (`xp` picks the array module); any True entry is a violation.
    - `message`: what is wrong and how to fix it. A ``{got}`` in it is replaced by ``", got "`` +
        ``shown()`` on the host and dropped when traced.
    - `shown`: a function formatting the concrete offending value, or None (default).
    """

    violated: Any
    message: str
    shown: Callable[[], str] | None = None


def xp(*values):
    """The array module a rule computes with.

    **Arguments:**

    - `values`: the values the rule reads (any pytrees).

    **Returns:**

    ``numpy`` where every value is concrete (checks on the host), ``jax.numpy`` where one is traced.
    """
    return np if is_concrete(values) else jnp


def _eager_message(check: Check) -> str:
    try:
        got = f", got {check.shown()}" if check.shown is not None else ""
    except jax.errors.JAXTypeError:  # concrete verdict on a traced value (e.g. under eager jax.grad)
        got = ""
    return check.message.replace("{got}", got)


def enforce(checks: Iterable[Check], attach: _T, *, prefix: str = "", error: type[Exception] = ValueError) -> _T:
    """Raise or attach every rule of ``checks``: one message eagerly and under ``jax.jit``/``vmap``/``grad``.

    **Arguments:**

    - `checks`: the `Check` pairs.
    - `attach`: any pytree of arrays the traced rules are attached to with ``equinox.error_if`` (so they
        raise the same message, without the value, when the computation runs); None: only the concrete
        rules are checked (a host-side check).
    - `prefix`: text put before every message (e.g. ``"jaxattn.simulate: "``); default ``""``.
    - `error`: the exception class a concrete violation raises; default ``ValueError``.

    **Returns:**

    ``attach``, with the traced rules attached.

    **Raises:**

    - `error`: (``ValueError`` by default) at the first concrete violated rule, with
        ``prefix + message`` and the offending value. A traced violation raises at run time
        through ``equinox.error_if`` (``JaxRuntimeError``/``EquinoxRuntimeError``).
    """
    for check in checks:
        if isinstance(check.violated, (bool, np.bool_, np.ndarray)) or is_concrete(check.violated):
            if bool(np.any(check.violated)):
                raise error(prefix + _eager_message(check))
        elif attach is not None:
            attach = eqx.error_if(attach, jnp.any(check.violated), prefix + check.message.replace("{got}", ""))
    return attach


def beta_rule(beta, *, allow_zero: bool = False) -> Check:
    """The rule of an inverse temperature: finite and > 0.

    **Arguments:**

    - `beta`: the inverse temperature, a scalar or an array (every entry is checked), concrete or traced.
    - `allow_zero`: accept beta = 0 as well, where a formula has a beta = 0 limit; default False.

    **Returns:**

    The `Check`.
    """
    m = xp(beta)
    b = m.asarray(beta)
    bad = ~m.all(m.isfinite(b) & ((b >= 0) if allow_zero else (b > 0)))
    if allow_zero:
        message = "beta must be finite and >= 0 (an inverse temperature){got}"
    else:
        message = ("beta must be finite and > 0 (an inverse temperature){got}. For the beta = 0 model use "
                   "jaxattn.Kuramoto on the circle or a small beta (the field is smooth in beta).")
    return Check(bad, message, lambda: _show(b))


def _show(value) -> str:
    v = np.asarray(value)
    return str(float(v)) if v.ndim == 0 else np.array2string(v, threshold=8)


def finite_rule(value, name: str) -> Check:
    """The rule: every entry finite (no NaN/inf).

    **Arguments:**

    - `value`: an array (concrete or traced).
    - `name`: its name in the message.

    **Returns:**

    The `Check` (on the host it counts the NaN/inf entries).
    """
    m = xp(value)
    bad = ~m.all(m.isfinite(m.asarray(value)))
    return Check(bad, f"{name} must be finite (no NaN or inf){{got}}",
                 lambda: f"{int(np.sum(~np.isfinite(np.asarray(value))))} NaN/inf entries")


def as_float_array(value, name: str) -> Array:
    """Convert to a floating JAX array, keeping float32 inputs float32.

    **Arguments:**

    - `value`: array-like of real numbers (floats, ints, bools), or a tracer (kept traced).
    - `name`: its name in the message.

    **Returns:**

    A floating JAX array (integers and bools become the default float, float64).

    **Raises:**

    - `TypeError`: ``value`` is not array-like, or not real-valued (e.g. complex or strings).
    """
    if isinstance(value, jax.core.Tracer):
        return value if jnp.issubdtype(value.dtype, jnp.floating) else value.astype(float)
    try:
        arr = jnp.asarray(value)
    except TypeError as exc:
        raise TypeError(f"{name} must be array-like of numbers, got {type(value).__name__}") from exc
    if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)
            or arr.dtype == bool):
        raise TypeError(f"{name} must be real-valued, got dtype {arr.dtype}")
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    return arr


def check_beta(beta, *, scalar: bool = True, allow_zero: bool = False) -> Array:
    """Validate an inverse temperature (`beta_rule`). Values of tracers cannot be read and are not checked.

    **Arguments:**

    - `beta`: the inverse temperature: finite and > 0.
    - `scalar`: require a scalar; default True (False accepts an array of betas).
    - `allow_zero`: accept beta = 0, where a formula has a beta = 0 limit; default False.

    **Returns:**

    ``beta`` as a floating JAX array.

    **Raises:**

    - `TypeError`: ``beta`` is not real-valued.
    - `ValueError`: ``beta`` is not a scalar (with ``scalar``), not finite, or <= 0 (< 0 with
        ``allow_zero``).
    """
    arr = as_float_array(beta, "beta")
    if scalar and arr.ndim != 0:
        raise ValueError(f"beta must be a scalar, got shape {arr.shape}")
    if is_concrete(arr):
        enforce([beta_rule(np.asarray(arr, dtype=float), allow_zero=allow_zero)], None)
    return arr


def host_beta(beta) -> float:
    """A concrete inverse temperature as a Python float, checked with `beta_rule` (for host-side
    computations such as choosing a truncation).

    **Arguments:**

    - `beta`: a concrete scalar, finite and > 0.

    **Returns:**

    ``float(beta)``.

    **Raises:**

    - `ValueError`: ``beta`` is not finite or <= 0.
    - `TypeError`: ``beta`` is not a number (``float`` fails on a tracer with JAX's own
        ``ConcretizationTypeError``).
    """
    value = float(beta)
    enforce([beta_rule(value)], None)
    return value


def as_finite_array(value, name: str, ndim: int | tuple[int, ...] | None = None, expected: str = "") -> Array:
    """`as_float_array`, then the rank ``ndim`` and `check_finite`.

    **Arguments:**

    - `value`: array-like of real numbers.
    - `name`: its name in the messages.
    - `ndim`: the allowed number of axes (an int, or a tuple of several); default None: any.
    - `expected`: the accepted shape in words for the error, e.g. ``"a matrix (m, d)"``; default ``""``.

    **Returns:**

    A floating JAX array.

    **Raises:**

    - `TypeError`: ``value`` is not real-valued array-like.
    - `ValueError`: a wrong number of axes, or (concrete values) NaN/inf entries.
    """
    arr = as_float_array(value, name)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if allowed is not None and arr.ndim not in allowed:
        raise ValueError(f"{name} must be {expected or f'an array with {ndim} axes'}, got shape {arr.shape}")
    check_finite(arr, name)
    return arr


def check_finite(x: ArrayLike, name: str) -> None:
    """Check that a concrete array has no NaN/inf (host-side NumPy; a tracer is not checked).

    **Arguments:**

    - `x`: array-like.
    - `name`: its name in the message.

    **Raises:**

    - `ValueError`: ``x`` is concrete and has NaN/inf entries (the message counts them).
    """
    if is_concrete(x):
        finite = np.isfinite(np.asarray(x))
        if not finite.all():
            raise ValueError(f"{name} contains {int(finite.size - finite.sum())} NaN/inf entries; pass finite values")


def check_model(model: str) -> str:
    """Validate the attention model of the mean-field papers: normalised (SA) or unnormalised (USA).

    **Arguments:**

    - `model`: ``"sa"`` or ``"usa"``, case-insensitive.

    **Returns:**

    The name lower-cased.

    **Raises:**

    - `ValueError`: anything else.
    """
    if not isinstance(model, str) or model.lower() not in MODELS:
        raise ValueError(f"model must be one of {MODELS} (normalised SA or unnormalised USA), got {model!r}")
    return model.lower()


def check_sign(sign) -> int:
    """Validate the sign of V = +-I: +1 (attractive) or -1 (repulsive).

    **Arguments:**

    - `sign`: +1 or -1.

    **Returns:**

    The sign as an int.

    **Raises:**

    - `ValueError`: anything else.
    """
    if sign not in (1, -1):
        raise ValueError(f"sign must be +1 (V = +I, attractive) or -1 (V = -I, repulsive), got {sign!r}")
    return int(sign)


def check_dim(d) -> int:
    """Validate an ambient dimension d >= 2 (the sphere S^(d-1)).

    **Arguments:**

    - `d`: a Python or NumPy integer (not a bool), >= 2.

    **Returns:**

    ``d`` as an int.

    **Raises:**

    - `ValueError`: ``d`` is not an integer >= 2.
    """
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 2:
        raise ValueError(f"d must be an integer >= 2 (sphere S^(d-1)), got {d!r}")
    return int(d)


def check_nonneg_int(name: str, k) -> int:
    """Validate a non-negative Python or NumPy integer (not a bool).

    **Arguments:**

    - `name`: its name in the message.
    - `k`: the value, an integer >= 0.

    **Returns:**

    ``k`` as an int.

    **Raises:**

    - `TypeError`: ``k`` is not a non-negative integer.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise TypeError(f"{name} must be a non-negative int, got {k!r}")
    return int(k)


def check_positive(name: str, value) -> None:
    """Check that every entry of a concrete ``value`` is finite and > 0 (tracers are not checked).

    **Arguments:**

    - `name`: its name in the message.
    - `value`: a number or array-like.

    **Raises:**

    - `TypeError`: ``value`` is not real-valued.
    - `ValueError`: an entry is NaN/inf or <= 0.
    """
    if not is_concrete(value):
        return
    try:
        v = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be real-valued, got {value!r}") from exc
    if not (np.all(np.isfinite(v)) and np.all(v > 0)):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


# ----------------------------------------------------------------------------------------- times

#: a time span must hold at least this many floating-point spacings of its times (`time_rules`)
TIME_RESOLUTION = 1024


def time_rules(t0, t1, dtype=None) -> list[Check]:
    """The rules of an integration interval: t0 and t1 finite, t1 > t0, and the span resolved.

    Resolved: t1 - t0 >= `TIME_RESOLUTION` x spacing(max(|t0|, |t1|)) in ``dtype``. A span below that
    (float32 t0 = 1e8, t1 = 1e8 + 1: the two round to the same number) cannot be integrated honestly.

    **Arguments:**

    - `t0`: the start time, a scalar (concrete or traced).
    - `t1`: the end time, a scalar.
    - `dtype`: the precision the solve runs in (float32/float64); default None: the resolution rule is
        skipped.

    **Returns:**

    A list of `Check` pairs (2, or 3 with ``dtype``).
    """
    m = xp(t0, t1)
    finite = m.isfinite(t0) & m.isfinite(t1)
    checks = [Check(~finite, "t0 and t1 must be finite{got}", lambda: f"t0 = {t0}, t1 = {t1}"),
              Check(finite & ~(m.asarray(t1) > m.asarray(t0)), "t1 must be greater than t0{got}",
                    lambda: f"t0 = {t0}, t1 = {t1}")]
    if dtype is not None:
        a0, a1 = m.asarray(t0, dtype=dtype), m.asarray(t1, dtype=dtype)
        if m is jnp:  # a verdict, not a value: no derivative (nextafter has none)
            a0, a1 = jax.lax.stop_gradient(a0), jax.lax.stop_gradient(a1)
        # the spacing is floored at the smallest normal number: XLA on CPU flushes subnormals to zero, so a
        # span of subnormal times (t1 = 5e-324) compares differently eager and traced; refused in both
        tiny = np.finfo(dtype).tiny
        spacing = m.maximum(m.spacing(m.maximum(m.abs(a0), m.abs(a1))), m.asarray(tiny, dtype=dtype))
        name = np.dtype(dtype).name
        checks.append(Check(
            finite & ~(m.asarray(t1) <= m.asarray(t0)) & ~((a1 - a0) >= TIME_RESOLUTION * spacing),
            f"t1 - t0 is not resolved by {name} times: near max(|t0|, |t1|) neighbouring {name} numbers are too far "
            f"apart for {TIME_RESOLUTION} distinct times in [t0, t1]{{got}}. Shift the times towards 0 (t0 = 0; the "
            "fields do not depend on t unless they say so) or integrate in float64",
            lambda: f"t0 = {t0}, t1 = {t1}, {name} spacing {float(spacing):.3g}"))
    return checks


def check_save_times(ts, *, t0=None, t1=None, strict: bool = False, min_count: int = 1, name: str = "ts",
                     dtype=None, where: str = ""):
    """Validate save times: a 1-d array of finite, ordered times inside [t0, t1]; checked on the host, or
    through ``equinox.error_if`` where traced (`enforce`).

    **Arguments:**

    - `ts`: the save times, array-like.
    - `t0`: the lower bound, or None (default: none).
    - `t1`: the upper bound, or None (default: none).
    - `strict`: require increasing times (default False: non-decreasing).
    - `min_count`: the fewest times accepted; default 1.
    - `name`: their name in the messages; default ``"ts"``.
    - `dtype`: the dtype of the result; default None: the default float.
    - `where`: the message prefix (e.g. ``"jaxattn.simulate: "``); default ``""``.

    **Returns:**

    The save times as a JAX array of ``dtype`` (with the traced rules attached).

    **Raises:**

    - `ValueError`: not 1-d or fewer than ``min_count`` times; NaN/inf; out of order or outside the
        bounds (concrete values; traced ones raise through ``equinox.error_if`` at run time).
    """
    ts = jnp.asarray(ts, dtype=jnp.result_type(float) if dtype is None else dtype)
    if ts.ndim != 1 or ts.shape[0] < min_count:
        raise ValueError(f"{name} must be a 1-d array of at least {min_count} save time"
                         f"{'s' if min_count > 1 else ''}, got shape {ts.shape}")
    m = xp(ts, t0, t1)
    v = np.asarray(ts) if m is np else ts
    finite = m.all(m.isfinite(v))
    step = m.diff(v)
    ordered = m.all(step > 0) if strict else m.all(step >= 0)
    inside = m.asarray(True)
    if t0 is not None:
        inside = inside & (v[0] >= t0)
    if t1 is not None:
        inside = inside & (v[-1] <= t1)
    if t0 is not None:
        bounds = "inside [t0, t1]" if t1 is not None else (">= 0" if _is_zero(t0) else ">= t0")
    else:
        bounds = "<= t1" if t1 is not None else ""
    rule = f"{name} must be {'increasing' if strict else 'non-decreasing'}" + (f" and {bounds}" if bounds else "")
    shown = lambda: (f"{name} from {float(v[0])} to {float(v[-1])}"  # noqa: E731
                     + (f" with t0 = {t0}" if t0 is not None else "") + (f", t1 = {t1}" if t1 is not None else ""))
    checks = [Check(~finite, f"{name} must be finite (NaN or inf save times){{got}}",
                    lambda: f"{int(np.sum(~np.isfinite(np.asarray(v))))} NaN or inf"),
              Check(finite & ~(ordered & inside), rule + "{got}", shown)]
    return enforce(checks, ts, prefix=where)


def _is_zero(value) -> bool:
    return is_concrete(value) and float(value) == 0.0


def tolerance_rules(rtol, atol) -> list[Check]:
    """The rule of the tolerances of an adaptive step-size controller: finite, >= 0 and not both zero (a
    pure relative or absolute tolerance is fine).

    **Arguments:**

    - `rtol`: the relative tolerance (scalar or array, concrete or traced).
    - `atol`: the absolute tolerance.

    **Returns:**

    A list of one `Check`.
    """
    m = xp(rtol, atol)
    r, a = m.asarray(rtol), m.asarray(atol)
    good = (m.all(m.isfinite(r)) & m.all(m.isfinite(a)) & m.all(r >= 0) & m.all(a >= 0)
            & m.all((r > 0) | (a > 0)))
    return [Check(~good, "rtol and atol must be finite, >= 0 and not both zero{got}",
                  lambda: f"rtol = {rtol!r}, atol = {atol!r}")]


def positive_rule(value, name: str, meaning: str = "") -> Check:
    """The rule: every entry finite and > 0.

    **Arguments:**

    - `value`: a scalar or array (concrete or traced).
    - `name`: its name in the message.
    - `meaning`: text after "must be finite and > 0" (e.g. why); default ``""``.

    **Returns:**

    The `Check`.
    """
    m = xp(value)
    v = m.asarray(value)
    return Check(~m.all(m.isfinite(v) & (v > 0)), f"{name} must be finite and > 0{meaning}{{got}}",
                 lambda: _show(v))


def interval_rule(value, name: str, low: float, high: float, *, closed_high: bool = False, meaning: str = "") -> Check:
    """The rule: low < value < high (<= high with ``closed_high``), finite.

    **Arguments:**

    - `value`: a scalar or array (concrete or traced; every entry is checked).
    - `name`: its name in the message.
    - `low`: the open lower bound.
    - `high`: the upper bound.
    - `closed_high`: accept ``value == high``; default False.
    - `meaning`: text after the interval in the message; default ``""``.

    **Returns:**

    The `Check`.
    """
    m = xp(value)
    v = m.asarray(value)
    upper = (v <= high) if closed_high else (v < high)
    interval = f"({low:g}, {high:g}{']' if closed_high else ')'}"
    return Check(~m.all(m.isfinite(v) & (v > low) & upper), f"{name} must be in {interval}{meaning}{{got}}",
                 lambda: _show(v))


def pair_delta_rule(delta) -> Check:
    """The rule of the closeness threshold of a pair of unit tokens, ⟨x_i, x_j⟩ >= 1 - delta: delta in
    (0, 2] (inner products lie in [-1, 1], so delta = 2 makes every pair close; 0 would need exact
    coincidence).

    **Arguments:**

    - `delta`: the threshold (scalar or array, concrete or traced).

    **Returns:**

    The `Check`.
    """
    return interval_rule(delta, "delta", 0.0, 2.0, closed_high=True,
                         meaning=" (pairs are delta-close when <x_i, x_j> >= 1 - delta)")


def crossing_delta_rule(delta) -> Check:
    """The rule of the level 1 - delta that gamma_beta(t), rising from gamma(0) = 0 to 1, crosses
    (Geshkovski et al. 2023, "A mathematical perspective on Transformers", Theorem 4.6): delta in (0, 1).

    **Arguments:**

    - `delta`: the level's distance from 1 (scalar or array, concrete or traced).

    **Returns:**

    The `Check`.
    """
    return interval_rule(delta, "delta", 0.0, 1.0, meaning=" for a crossing of 1 - delta from gamma(0) = 0")
