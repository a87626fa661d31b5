"""The identity of a sweep's point function: what a finished point was computed with.

A sweep directory may only ever hold points of one point function with one set of bound
parameters: its identity is recorded in ``manifest.json`` and, as a hash, in every point file,
and a rerun whose identity differs is refused ([`SweepMismatchError`][jaxattn.sweeps.SweepMismatchError]) instead of being
handed the old points. The identity is a JSON value built from what the function *is*, never
from memory addresses or reprs, so it is equal in every process that builds the same function:

* an [`AbstractPoint`][jaxattn.sweeps.AbstractPoint] (recommended for sweeps meant to be resumed across code changes,
  and what every sweep of [`jaxattn.studies`][jaxattn.studies] uses): its class's declared ``identity_name``
  and ``identity_version`` and the values of its fields. Nothing else: moving or editing the
  class keeps its sweeps resumable, and its author bumps ``identity_version`` when a change
  alters the results;
* a function (module level, nested, a lambda): its module-qualified name, a hash of its
  bytecode, names and constants (two lambdas on one line differ), its defaults and the values
  of its closure cells; a `functools.partial` adds its bound arguments, a bound method
  its instance. Editing the function's code therefore starts a new sweep;
* any other callable object: its class's qualified name, the bytecode of its ``__call__`` and
  its state (dataclass fields, else ``vars(obj)``): ``P(1)`` and ``P(2)`` differ.

Values enter by [`stable_value`][jaxattn.sweeps.stable_value]: numbers, strings, lists, mappings as themselves, arrays by
a hash of their bytes with shape and dtype, dataclasses (equinox modules) by their fields, other
objects by their class and ``vars``. Module-level globals that a function reads are not part of
its identity.
"""


import abc
import dataclasses
import functools
import hashlib
import json
import math
import re
import types
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import equinox as eqx
import jax
import numpy as np

__all__ = ["AbstractPoint", "function_identity", "identity_hash", "stable_value"]

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_MAX_DEPTH = 8


class AbstractPoint(eqx.Module):
    """A sweep's point function with an explicit identity: a declared name and version plus its fields.

    Subclass it with the point's fixed parameters as fields and ``__call__(seed, **params)``
    computing one point (``params``: the values of the sweep's grid)::

        class PairFractionPoint(AbstractPoint):
            identity_name: ClassVar[str] = "mylab.pair_fraction"
            identity_version: ClassVar[int] = 1
            n: int
            delta: float

            def __call__(self, seed, beta):
                ...
                return xr.Dataset(...)

        run_sweep(PairFractionPoint(n=32, delta=1e-2), {"beta": [1.0, 4.0]}, directory="runs/p")

    Its identity ([`function_identity`][jaxattn.sweeps.function_identity]) is ``identity_name``, ``identity_version`` and the
    fields' values, so a sweep stays resumable when the class moves to another module or its code
    is refactored; bump ``identity_version`` when a change alters the points it computes (old
    sweep directories are then refused instead of being mixed with new points).
    """

    identity_name: eqx.AbstractClassVar[str]
    identity_version: ClassVar[int] = 1

    @abc.abstractmethod
    def __call__(self, seed: int, **params: Any) -> Any:
        """One point of the sweep.

        **Arguments:**

        - `seed`: the PRNG seed (absent in a sweep with ``seeds=None``).
        - `params`: the grid values of the point, by the grid's names.

        **Returns:**

        An ``xarray.Dataset``.
        """


def _code_digest(code: types.CodeType, h: Any) -> None:
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    h.update(repr(code.co_varnames).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_digest(const, h)
        else:
            h.update(repr(const).encode())


def _code_hash(code: types.CodeType | None) -> str | None:
    if code is None:
        return None
    h = hashlib.sha256()
    _code_digest(code, h)
    return h.hexdigest()[:16]


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', None) or '?'}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def stable_value(value: Any, _depth: int = 0) -> Any:
    """A JSON value that identifies ``value`` in every process that builds it (no memory addresses).

    Numbers, strings, ``None``, lists/tuples and mappings (keys sorted) stand for themselves
    (non-finite floats as their repr); NumPy and JAX arrays by a SHA-256 of their bytes with shape
    and dtype; functions, partials and callable objects by [`function_identity`][jaxattn.sweeps.function_identity]; dataclasses
    (equinox modules) by their class and fields; other objects by their class and ``vars``; what
    has none of these by its repr with memory addresses removed.

    **Arguments:**

    - `value`: any Python value.
    - `_depth`: the nesting depth reached (internal; leave it at 0). Deeper than 8 levels a value is ``"..."``.

    **Returns:**

    A JSON-serialisable value.
    """
    if _depth > _MAX_DEPTH:
        return "..."
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, np.generic):
        return stable_value(value.item(), _depth)
    if isinstance(value, (list, tuple)):
        return [stable_value(v, _depth + 1) for v in value]
    if isinstance(value, Mapping):
        return {str(k): stable_value(v, _depth + 1) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (np.ndarray, jax.Array)):
        if jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):  # a typed PRNG key: its raw data
            value = jax.random.key_data(value)
        arr = np.asarray(value)
        return {"array": hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()[:16],
                "shape": list(arr.shape), "dtype": str(arr.dtype)}
    if isinstance(value, (types.FunctionType, functools.partial, types.MethodType, AbstractPoint)):
        return function_identity(value, _depth=_depth + 1)
    if isinstance(value, type):
        return {"class": _qualname(value)}
    if isinstance(value, types.ModuleType):
        return {"module": value.__name__}
    state = _state(value)
    if state is not None:
        return {"class": _qualname(type(value)), "state": stable_value(state, _depth + 1)}
    return _ADDRESS.sub("", repr(value))


def _state(obj: Any) -> dict[str, Any] | None:
    """The fields of a dataclass instance, else ``vars(obj)`` (with ``__slots__``), else ``None``."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if hasattr(obj, f.name)}
    state = dict(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if isinstance(slot, str) and slot not in ("__dict__", "__weakref__") and hasattr(obj, slot):
                state[slot] = getattr(obj, slot)
    return state if state or hasattr(obj, "__dict__") else None


def function_identity(fn: Callable[..., Any], *, _depth: int = 0) -> dict[str, Any]:
    """The identity of a point function, recorded in a sweep's manifest and point files.

    **Arguments:**

    - `fn`: an [`AbstractPoint`][jaxattn.sweeps.AbstractPoint], a function, a `functools.partial` of one, a bound
        method or any other callable object.
    - `_depth`: the nesting depth reached (internal; leave it at 0).

    **Returns:**

    A JSON object (the module docstring says what enters it):

    * [`AbstractPoint`][jaxattn.sweeps.AbstractPoint]: ``{"point": identity_name, "version": identity_version,
      "fields": {...}}``;
    * a function: ``{"function": module.qualname, "code": bytecode hash, "bound": {...}}``
      with ``bound`` holding a partial's ``args``/``keywords``, a bound method's ``self``,
      the ``closure`` cells, ``defaults`` and ``kwdefaults``;
    * another callable object: ``{"object": module.qualname of its class, "code": hash of its
      ``__call__``, "state": its fields or ``vars``}``.
    """
    if isinstance(fn, AbstractPoint):
        fields = {f.name: stable_value(getattr(fn, f.name), _depth + 1) for f in dataclasses.fields(fn)}
        return {"point": type(fn).identity_name, "version": type(fn).identity_version, "fields": fields}
    bound: dict[str, Any] = {}
    while isinstance(fn, functools.partial):
        bound.setdefault("args", []).extend(stable_value(list(fn.args), _depth))
        bound.setdefault("keywords", {}).update(stable_value(dict(fn.keywords), _depth))
        fn = fn.func
    if isinstance(fn, AbstractPoint):
        return {**function_identity(fn, _depth=_depth), "bound": bound}
    if isinstance(fn, types.MethodType):
        bound["self"] = stable_value(fn.__self__, _depth + 1)
        fn = fn.__func__
    code = getattr(fn, "__code__", None)
    if not isinstance(fn, (types.FunctionType, types.BuiltinFunctionType)) and code is None:
        call = getattr(type(fn), "__call__", None)
        out = {"object": _qualname(type(fn)), "code": _code_hash(getattr(call, "__code__", None)),
               "state": stable_value(_state(fn) or {}, _depth + 1)}
        return {**out, "bound": bound} if bound else out
    closure = getattr(fn, "__closure__", None)
    if closure and code is not None:
        cells = {}
        for var, cell in zip(code.co_freevars, closure):
            try:
                cells[var] = stable_value(cell.cell_contents, _depth + 1)
            except ValueError:  # an empty cell
                cells[var] = None
        bound["closure"] = cells
    if getattr(fn, "__defaults__", None):
        bound["defaults"] = stable_value(list(fn.__defaults__), _depth + 1)
    if getattr(fn, "__kwdefaults__", None):
        bound["kwdefaults"] = stable_value(dict(fn.__kwdefaults__), _depth + 1)
    return {"function": _qualname(fn), "code": _code_hash(code), "bound": bound}


def identity_hash(identity: Mapping[str, Any]) -> str:
    """A short SHA-256 hash (hex) of an identity, stored in every point file.

    **Arguments:**

    - `identity`: a [`function_identity`][jaxattn.sweeps.function_identity].

    **Returns:**

    24 hexadecimal digits (a str).
    """
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]
