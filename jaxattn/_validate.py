"""Argument checks shared by every package: one place for each rule and its message.

Each ``check_*`` returns the validated value (converted where useful) and raises
``ValueError``/``TypeError`` with a message that says what is wrong and how to fix it.

A rule that must also hold for traced values (inside ``jax.jit``/``vmap``/``grad``) is written once
as a function returning :class:`Check` pairs (violated, message); :func:`enforce` then raises the
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
from jaxtyping import Array

_T = TypeVar("_T")

#: the attention models of the mean-field papers: normalised SA and unnormalised USA
MODELS = ("usa", "sa")


def is_concrete(*trees) -> bool:
    """True when no leaf is a tracer (so values can be checked on the host)."""
    leaves = jax.tree_util.tree_leaves(trees)
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)


class Check(NamedTuple):
    """One rule evaluated on values: ``violated`` is a Python/NumPy bool where the values are concrete
    and a traced boolean array where they are not (:func:`xp` picks the array module); ``message``
    says what is wrong and how to fix it. A ``{got}`` in the message is replaced by ``", got "`` +
    ``shown()`` on the host (``shown`` formats the concrete offending value) and dropped when traced."""

    violated: Any
    message: str
    shown: Callable[[], str] | None = None


def xp(*values):
    """NumPy where every value is concrete (checks on the host), ``jax.numpy`` where one is traced."""
    return np if is_concrete(values) else jnp


def _eager_message(check: Check) -> str:
    try:
        got = f", got {check.shown()}" if check.shown is not None else ""
    except jax.errors.JAXTypeError:  # concrete verdict on a traced value (e.g. under eager jax.grad)
        got = ""
    return check.message.replace("{got}", got)


def enforce(checks: Iterable[Check], attach: _T, *, prefix: str = "", error: type[Exception] = ValueError) -> _T:
    """Raise or attach every rule of ``checks``: a concrete violated rule raises ``error(prefix + message)``
    at once; a traced rule is attached to ``attach`` (any pytree of arrays, returned) with
    ``equinox.error_if``, so it raises the same message (without the value) when the computation runs.
    With ``attach=None`` only the concrete rules are checked (a host-side check)."""
    for check in checks:
        if is_concrete(check.violated):
            if bool(np.any(check.violated)):
                raise error(prefix + _eager_message(check))
        elif attach is not None:
            attach = eqx.error_if(attach, jnp.any(check.violated), prefix + check.message.replace("{got}", ""))
    return attach


def beta_rule(beta, *, allow_zero: bool = False) -> Check:
    """An inverse temperature: finite and > 0 (>= 0 with ``allow_zero``, where a formula has a beta = 0 limit)."""
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
    """Every entry finite (no NaN/inf)."""
    m = xp(value)
    bad = ~m.all(m.isfinite(m.asarray(value)))
    return Check(bad, f"{name} must be finite (no NaN or inf){{got}}",
                 lambda: f"{int(np.sum(~np.isfinite(np.asarray(value))))} NaN/inf entries")


def positive_rule(value, name: str) -> Check:
    """Every entry finite and > 0 (a rate, a time, a noise level, a radius)."""
    m = xp(value)
    v = m.asarray(value)
    return Check(~m.all(m.isfinite(v) & (v > 0)), f"{name} must be finite and > 0{{got}}", lambda: _show(v))


def as_float_array(value, name: str) -> Array:
    """Convert to a floating JAX array, keeping float32 inputs float32."""
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
    """Validate an inverse temperature (:func:`beta_rule`): finite and > 0 (>= 0 with ``allow_zero``);
    a scalar unless ``scalar=False``.

    Returns ``beta`` as a floating array. Values of tracers cannot be read and are not checked.
    """
    arr = as_float_array(beta, "beta")
    if scalar and arr.ndim != 0:
        raise ValueError(f"beta must be a scalar, got shape {arr.shape}")
    if is_concrete(arr):
        enforce([beta_rule(np.asarray(arr, dtype=float), allow_zero=allow_zero)], None)
    return arr


def as_finite_array(value, name: str, ndim: int | tuple[int, ...] | None = None, expected: str = "") -> Array:
    """:func:`as_float_array`, then the rank ``ndim`` (one or several allowed) and :func:`check_finite`.

    ``expected`` names the accepted shape in the error, e.g. ``"a matrix (m, d)"``.
    """
    arr = as_float_array(value, name)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if allowed is not None and arr.ndim not in allowed:
        raise ValueError(f"{name} must be {expected or f'an array with {ndim} axes'}, got shape {arr.shape}")
    check_finite(arr, name)
    return arr


def check_finite(x: Array, name: str) -> None:
    """Raise ValueError if a concrete array has NaN/inf (host-side numpy: works inside jit)."""
    if is_concrete(x):
        finite = np.isfinite(np.asarray(x))
        if not finite.all():
            raise ValueError(f"{name} contains {int(finite.size - finite.sum())} NaN/inf entries; pass finite values")


def check_model(model: str) -> str:
    """'sa' or 'usa' (case-insensitive), lower-cased."""
    if not isinstance(model, str) or model.lower() not in MODELS:
        raise ValueError(f"model must be one of {MODELS} (normalised SA or unnormalised USA), got {model!r}")
    return model.lower()


def check_sign(sign) -> int:
    """+1 (V = +I, attractive) or -1 (V = -I, repulsive)."""
    if sign not in (1, -1):
        raise ValueError(f"sign must be +1 (V = +I, attractive) or -1 (V = -I, repulsive), got {sign!r}")
    return int(sign)


def check_dim(d) -> int:
    """An ambient dimension d >= 2 (the sphere S^(d-1))."""
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 2:
        raise ValueError(f"d must be an integer >= 2 (sphere S^(d-1)), got {d!r}")
    return int(d)


def check_nonneg_int(name: str, k) -> int:
    """A non-negative Python or NumPy integer (not a bool)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise TypeError(f"{name} must be a non-negative int, got {k!r}")
    return int(k)


def check_positive(name: str, value) -> None:
    """Every entry of a concrete ``value`` is finite and > 0 (tracers are not checked)."""
    if not is_concrete(value):
        return
    try:
        v = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be real-valued, got {value!r}") from exc
    if not (np.all(np.isfinite(v)) and np.all(v > 0)):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")

