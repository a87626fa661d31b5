"""The result of [`jaxattn.simulate`][jaxattn.simulate]: saved times, states and solver statistics.

A [`Trajectory`][jaxattn.Trajectory] converts to an ``xarray.Dataset`` ([`Trajectory.to_xarray`][jaxattn.solve.Trajectory.to_xarray]), is saved
as netCDF ([`Trajectory.save`][jaxattn.solve.Trajectory.save]) and read back by [`jaxattn.load_trajectory`][jaxattn.load_trajectory]
([`Trajectory.from_xarray`][jaxattn.solve.Trajectory.from_xarray]): arrays bit for bit, dtypes kept, and the field rebuilt from its
class name (attribute ``field_class``), its static parameters (JSON attribute ``field_static``)
and its array parameters (variables ``field.<name>``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from collections.abc import Mapping
from typing import Any, TypedDict

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PyTree

from .. import fields as _fields_package
from ..fields import AbstractField

#: format version of the saved file (attribute ``jaxattn_trajectory``)
TRAJECTORY_FORMAT = 1
#: the file name endings [`Trajectory.save`][jaxattn.solve.Trajectory.save] writes (netCDF, NumPy archive)
TRAJECTORY_SUFFIXES = (".nc", ".npz")
_STATS = ("num_steps", "num_accepted_steps", "num_rejected_steps")


class SolverStats(TypedDict):
    """diffrax's step counts of one solve (a dict, ``stats["num_steps"]``).

    **Attributes:**

    - `num_steps`: steps taken (accepted + rejected), an int array.
    - `num_accepted_steps`: accepted steps, an int array.
    - `num_rejected_steps`: rejected steps, an int array.

    Each is a scalar, or one per member (shape (B,)) when the members took their own steps
    (``ensemble="vmap"``/``"map"``, or a chunked ensemble).
    """

    num_steps: Int[Array, "*solves"]
    num_accepted_steps: Int[Array, "*solves"]
    num_rejected_steps: Int[Array, "*solves"]


class Trajectory(eqx.Module):
    """Result of [`jaxattn.simulate`][jaxattn.simulate]: the saved states x_i(t_k) of the particle system
    (tokens x_i(t) of Geshkovski et al. 2023, "A mathematical perspective on Transformers", eq. (2.6);
    angles theta_i(t) on S^1, eq. (6.1)).

    **Attributes:**

    - `ts`: saved times, float (T,) ((B, T) with a user's ``saveat`` solved member by member,
        ``ensemble="vmap"`` or ``"map"``: each member's own save times).
    - `xs`: states, float (T, n, d) ((T, n) angles on the circle, (T, n, n) Gram matrices); an ensemble
        has a leading batch axis, (B, T, n, d). With a user's ``saveat`` it is diffrax's ``sol.ys``.
    - `t_final`: time reached (t1, or the event time with ``stop_when``), float, shape () or (B,).
    - `stats`: diffrax's solver statistics ([`SolverStats`][jaxattn.solve.SolverStats]:
        ``stats["num_steps"]``, ...).
    - `field`: the [`AbstractField`][jaxattn.AbstractField] that was integrated.
    - `event_occurred`: whether ``stop_when`` ended the solve, bool, shape () or (B,).
    """

    ts: Float[Array, "*members T"]  # (B, T) only with a user's saveat in vmap/map mode (each member's own times)
    xs: Float[Array, "*batch T n d"] | Float[Array, "*batch T n"] | PyTree[Array]  # a SaveAt(fn=...)'s output
    t_final: Float[Array, "*solves"]  # () when the members share one solve (ensemble="batched"), else (B,)
    stats: SolverStats
    field: AbstractField
    event_occurred: Bool[Array, "*solves"]  # like t_final

    @property
    def final(self) -> Float[Array, "*batch n d"] | Float[Array, "*batch n"]:
        """The last saved state(s): xs[..., -1, :, :]."""
        return jnp.take(self.xs, -1, axis=self.xs.ndim - self.field.manifold.event_ndim - 1)

    @property
    def is_ensemble(self) -> bool:
        """Whether ``xs`` holds an ensemble (a leading member axis)."""
        return self.xs.ndim == self.field.event_ndim + 2

    def to_xarray(self):
        """The trajectory as an ``xarray.Dataset`` with CF attributes on every variable.

        Variables: ``x`` (dims ``[member,] t, token, dim``; tokens x_i(t), paper 002 eq. (2.6)) or
        ``theta`` (``[member,] t, token``; angles on S^1, eq. (6.1)); ``t_final``,
        ``event_occurred`` and the solver statistics (dims () or ``member``); ``field.<name>`` for
        each array parameter of the field. The coordinate ``t`` holds the saved times. Attributes:
        ``field_class``, ``field_static`` (JSON of the field's other parameters), ``manifold``.

        **Returns:**

        The ``xarray.Dataset`` (arrays copied to NumPy, dtypes kept).

        **Raises:**

        - `TypeError`: ``xs`` is not one array of shape ``([B,] T, *event)`` (a user's
            ``saveat=SaveAt(fn=...)`` pytree), or the field holds a function that is not one of
            ``jax.nn``/``jax.numpy``'s.
        """
        import xarray as xr

        if not isinstance(self.xs, jax.Array | np.ndarray):
            raise TypeError(f"to_xarray needs xs to be one array, got {type(self.xs).__name__} (a saveat=SaveAt("
                            "fn=...) pytree): convert the fields you need with xarray yourself")
        manifold = self.field.manifold
        event_ndim = manifold.event_ndim
        batch = self.xs.ndim - event_ndim - 1
        if batch not in (0, 1):
            raise TypeError(f"to_xarray expects xs of shape ([B,] T, {', '.join(manifold.event_dims)}), "
                            f"got {self.xs.shape}")
        lead = ("member",) * batch
        token_dims = manifold.event_dims
        name = manifold.variable
        ts = np.asarray(self.ts)
        data: dict[str, Any] = {name: ((*lead, "t", *token_dims), np.asarray(self.xs), _attrs(name))}
        coords: dict[str, Any] = {"token": ("token", np.arange(self.xs.shape[batch + 1]), _attrs("token"))}
        if ts.ndim == 1 and ts.shape[0] == self.xs.shape[batch]:
            coords["t"] = ("t", ts, _attrs("t"))
        else:  # per-member save times (a user's saveat), or no save grid
            data["ts"] = (tuple(f"ts_dim{i}" for i in range(ts.ndim)), ts, _attrs("ts"))
        if batch:
            coords["member"] = ("member", np.arange(self.xs.shape[0]), _attrs("member"))
        for axis, dim in enumerate(token_dims[1:], start=batch + 2):
            coords[dim] = (dim, np.arange(self.xs.shape[axis]), _attrs(dim))
        for key, value in (("t_final", self.t_final), ("event_occurred", self.event_occurred),
                           *((k, self.stats[k]) for k in _STATS)):
            value = np.asarray(value)
            data[key] = (("member",) * value.ndim, value, _attrs(key))
        static, arrays = _module_record(self.field, "field")
        for key, value in arrays.items():
            data[key] = (tuple(f"{key}_dim{i}" for i in range(value.ndim)), value, _field_attrs(key))
        attrs = {"jaxattn_trajectory": TRAJECTORY_FORMAT, "field_class": type(self.field).__name__,
                 "field_module": type(self.field).__module__, "field_static": json.dumps(static),
                 "manifold": manifold.name, "Conventions": "CF-1.11",
                 "title": f"jaxattn trajectory of {type(self.field).__name__}"}
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def save(self, path: str | os.PathLike, *, attrs: Mapping[str, Any] | None = None) -> Path:
        """Write [`to_xarray`][jaxattn.solve.Trajectory.to_xarray] to ``path``: netCDF for ``.nc``, the same dataset in a NumPy archive for
        ``.npz`` (one array per variable, the dimensions and attributes as JSON in ``__schema__``;
        ``numpy.load`` reads it without pickles). [`jaxattn.load_trajectory`][jaxattn.load_trajectory] reads either back exactly.

        The file is written through a temporary file and `os.replace`, so it is complete or absent.
        It carries the provenance attributes ``Conventions``, ``jaxattn_version``, ``source`` and ``history``
        (this call, or the ``jaxattn`` command line that made it).

        **Arguments:**

        - `path`: the file to write, ending in ``.nc`` (netCDF) or ``.npz`` (NumPy archive); parent
            folders are created.
        - `attrs`: extra global attributes (numbers or strings: e.g. the seed that drew the initial
            condition; None values are skipped); default None.

        **Returns:**

        The path written (a ``pathlib.Path``).

        **Raises:**

        - `ValueError`: ``path`` ends in neither ``.nc`` nor ``.npz``.
        - `TypeError`: as [`to_xarray`][jaxattn.solve.Trajectory.to_xarray].
        - `OSError`: the file could not be written; the message names it and the cause (a full disk).
        """
        from .._provenance import provenance, write_error

        path = Path(path)
        kind = path.suffix.lower()
        if kind not in TRAJECTORY_SUFFIXES:
            raise ValueError(f"Trajectory.save writes netCDF (.nc) or NumPy (.npz) files, got {path.name!r}: "
                             "end the path in .nc or .npz")
        ds = self.to_xarray()
        ds.attrs.update({k: v for k, v in (attrs or {}).items() if v is not None})
        ds.attrs.update(provenance(f"jaxattn.simulate of {type(self.field).__name__}",
                                   call=f"Trajectory.save({os.fspath(path)!r})"))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{kind}")
        try:
            if kind == ".nc":
                ds.to_netcdf(tmp)
            else:
                _write_npz(ds, tmp)
            os.replace(tmp, path)
        except (OSError, RuntimeError) as err:
            raise write_error(path, err) from err
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def from_xarray(cls, ds, field: AbstractField | None = None) -> "Trajectory":
        """Rebuild a trajectory from [`to_xarray`][jaxattn.solve.Trajectory.to_xarray]'s dataset.

        The field is rebuilt from the dataset for the built-in fields (``jaxattn.fields``) and its
        parameters checked as its constructor would (beta > 0, finite arrays, ...).

        **Arguments:**

        - `ds`: the ``xarray.Dataset`` of a saved trajectory (attributes ``jaxattn_trajectory``,
            ``field_class``, ``field_static``).
        - `field`: the field to attach, required for a field of a class outside ``jaxattn.fields`` (its
            class name must match the file's); default None: rebuilt from the dataset.

        **Returns:**

        The [`Trajectory`][jaxattn.Trajectory], arrays bit for bit as saved.

        **Raises:**

        - `ValueError`: the dataset is not a saved trajectory, is of a newer format, is damaged (missing
            variables, wrong dimensions, NaN/inf times or states), or its field cannot be rebuilt or
            fails its parameter checks.
        """
        missing = [k for k in ("jaxattn_trajectory", "field_class", "field_static") if k not in ds.attrs]
        if missing:
            raise ValueError(f"this dataset is not a jaxattn trajectory (no {'/'.join(map(repr, missing))} "
                             "attribute): write it with Trajectory.save or Trajectory.to_xarray; other datasets "
                             "(sweeps, PDE solutions) open with xarray.open_dataset")
        try:
            version = int(ds.attrs["jaxattn_trajectory"])
        except (TypeError, ValueError):
            raise ValueError(f"the attribute jaxattn_trajectory = {ds.attrs['jaxattn_trajectory']!r} is not a "
                             "format version: the file is damaged") from None
        if version > TRAJECTORY_FORMAT:
            raise ValueError(f"the file is in trajectory format {version}, newer than this jaxattn reads "
                             f"({TRAJECTORY_FORMAT}): upgrade jaxattn")
        cls_name = str(ds.attrs["field_class"])
        if field is not None:
            if type(field).__name__ != cls_name:
                raise ValueError(f"the file holds a {cls_name} trajectory, but field is a {type(field).__name__}")
        else:
            try:
                static = json.loads(ds.attrs["field_static"])
                if not isinstance(static, dict):
                    raise ValueError(f"a JSON {type(static).__name__}, not an object")
            except ValueError as err:
                raise ValueError(f"the attribute field_static is not the field's parameters ({err}): the file "
                                 "is damaged; pass the field to load_trajectory(path, field=...)") from None
            arrays = {str(k): ds[k].values for k in ds.variables if str(k).startswith("field.")}
            try:
                field = _rebuild_module(cls_name, static, arrays, where=f"{ds.attrs.get('field_module', '?')}.{cls_name}")
            except (KeyError, TypeError, AttributeError) as err:
                raise ValueError(f"the file's {cls_name} parameters cannot be rebuilt ({type(err).__name__}: {err}): "
                                 "the file is damaged; pass the field to load_trajectory(path, field=...)") from None
            _check_loaded_field(field)
        name = field.manifold.variable
        absent = [k for k in (name, "t_final", "event_occurred", *_STATS) if k not in ds.variables]
        if "t" not in ds.coords and "ts" not in ds.variables:
            absent.append("t")
        if absent:
            raise ValueError(f"the trajectory lacks the variables {absent} (a {cls_name} trajectory stores "
                             f"{name!r}, 't', 't_final', 'event_occurred' and the solver statistics): the file is "
                             "damaged or was not written by Trajectory.save")
        xs = ds[name]
        core = ("t", *field.manifold.event_dims)
        if xs.dims not in (core, ("member", *core)):
            raise ValueError(f"{name} has dimensions {xs.dims}; a {cls_name} trajectory stores {name} on "
                             f"([member,] {', '.join(core)}): the file is damaged")
        ts = ds["t"].values if "t" in ds.coords else ds["ts"].values
        if ts.ndim == 1 and ts.shape[0] != xs.sizes["t"]:
            raise ValueError(f"{ts.shape[0]} saved times but {xs.sizes['t']} saved states: the file is damaged")
        for key, values in (("t", ts), (name, xs.values)):
            bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
            if bad:
                raise ValueError(f"{key} holds {bad} NaN/inf values of {np.size(values)}: a solve never saves "
                                 "them (it stops with NonFiniteStateError), so the file is damaged")
        as_jax = lambda key: jnp.asarray(ds[key].values)  # noqa: E731
        return cls(ts=jnp.asarray(ts), xs=jnp.asarray(xs.values), t_final=as_jax("t_final"), stats=SolverStats(
            **{k: as_jax(k) for k in _STATS}), field=field, event_occurred=as_jax("event_occurred"))


def _check_loaded_field(field: AbstractField) -> None:
    """A field rebuilt from a file (its ``__init__`` bypassed) gets the checks ``__init__`` and the solver
    make: every declared parameter rule (beta > 0, ...) and every floating parameter finite
    (``field.parameter_checks()``)."""
    from .._validate import enforce

    enforce(field.parameter_checks(), None, prefix="the file's field parameters are invalid: ")


def _write_npz(ds, path: Path) -> None:
    """``ds`` as a NumPy archive: one array per variable, dims and attributes as JSON in ``__schema__``."""
    schema = {"attrs": {k: _json_attr(v) for k, v in ds.attrs.items()}, "coords": list(map(str, ds.coords)),
              "variables": {str(k): {"dims": list(v.dims), "attrs": {a: _json_attr(b) for a, b in v.attrs.items()}}
                            for k, v in ds.variables.items()}}
    with open(path, "wb") as fh:
        np.savez(fh, __schema__=np.array(json.dumps(schema)), **{str(k): v.values for k, v in ds.variables.items()})


def _json_attr(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value.tolist() if isinstance(value, np.ndarray) else value


def dataset_from_npz(arrays: Mapping[str, np.ndarray]):
    """The dataset [`Trajectory.save`][jaxattn.solve.Trajectory.save] stored in a ``.npz`` archive.

    **Arguments:**

    - `arrays`: the archive's mapping of name to array (``numpy.load``'s ``NpzFile``), with the JSON
        ``__schema__`` entry (dimensions and attributes).

    **Returns:**

    The ``xarray.Dataset`` that was saved.

    **Raises:**

    - `ValueError`: the archive has no ``__schema__`` (not written by
        [`Trajectory.save`][jaxattn.solve.Trajectory.save]) or its schema does not match its arrays.
    """
    import xarray as xr

    if "__schema__" not in arrays:
        raise ValueError("this .npz archive is not a jaxattn trajectory (no '__schema__' entry): write it with "
                         "Trajectory.save(path.npz)")
    try:
        schema = json.loads(str(arrays["__schema__"]))
        spec = schema["variables"]
        coords = {k: (spec[k]["dims"], arrays[k], spec[k]["attrs"]) for k in schema["coords"]}
        data = {k: (v["dims"], arrays[k], v["attrs"]) for k, v in spec.items() if k not in coords}
        return xr.Dataset(data, coords=coords, attrs=schema["attrs"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"the archive's schema does not match its arrays ({type(err).__name__}: {err}): the "
                         "file is damaged") from None


#: CF attributes (long_name, units, description) of the variables of a saved trajectory;
#: [`jaxattn.io.cf.VARIABLES`][jaxattn.io.VARIABLES] includes them
TRAJECTORY_VARIABLES: dict[str, dict[str, str]] = {
    "t": {"long_name": "time (depth)", "units": "1",
          "description": "t: time of the continuous-depth dynamics, layers are time (Geshkovski et al. 2023, "
                         "paper 002 eq. (2.6)); dimensionless"},
    "ts": {"long_name": "saved times", "units": "1",
           "description": "t_k: the times at which the states were saved (per member when 2-d)"},
    "member": {"long_name": "ensemble member", "units": "1",
               "description": "index of one i.i.d. initial condition (or run) of an ensemble"},
    "token": {"long_name": "token index", "units": "1",
              "description": "i = 0..n-1: the index of particle x_i (theta_i on S^1)"},
    "dim": {"long_name": "coordinate index", "units": "1",
            "description": "k = 0..d-1: the component x_i^k of a token in R^d"},
    "x": {"long_name": "token positions", "units": "1",
          "description": "x_i(t): token i at time t, on S^{d-1} for (SA)/(USA) (paper 002 eqs. (2.6), (3.3)) or "
                         "in R^d (paper 001 eq. (1.1))"},
    "theta": {"long_name": "angle", "units": "rad",
              "description": "theta: an angle on S^1, x = (cos theta, sin theta); token angles theta_i(t) of "
                             "paper 002 eq. (6.1), or the grid on which a density is evaluated"},
    "t_final": {"long_name": "final time", "units": "1",
                "description": "time the solve reached: t1, or the time at which stop_when held (per member "
                               "when the members took their own steps)"},
    "event_occurred": {"long_name": "stop_when held", "units": "1",
                       "description": "whether the stop_when event ended the solve (0/1)"},
    "num_steps": {"long_name": "solver steps", "units": "1",
                  "description": "number of steps the adaptive solver took (accepted + rejected)"},
    "num_accepted_steps": {"long_name": "accepted solver steps", "units": "1",
                           "description": "number of accepted steps of the adaptive solver"},
    "num_rejected_steps": {"long_name": "rejected solver steps", "units": "1",
                           "description": "number of rejected steps of the adaptive solver"},
}


def _attrs(name: str) -> dict[str, str]:
    return dict(TRAJECTORY_VARIABLES[name])


def _field_attrs(key: str) -> dict[str, str]:
    param = key.split(".", 1)[1]
    return {"long_name": f"field parameter {param}", "units": "1",
            "description": f"parameter {param} of the integrated field (e.g. beta, Q, K, V of paper 002 "
                           "eq. (2.6)); the field's class and static parameters are the attributes "
                           "field_class and field_static"}


def _function_name(fn: Any) -> str | None:
    """``"jax.nn.relu"`` for a function of jax.nn or jax.numpy, else None."""
    for prefix, namespace in (("jax.nn", jax.nn), ("jax.numpy", jnp)):
        for attr in dir(namespace):
            if not attr.startswith("_") and getattr(namespace, attr, None) is fn:
                return f"{prefix}.{attr}"
    return None


def _module_record(module: eqx.Module, prefix: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(JSON-able description of the parameters, {variable name: array}) of an equinox module."""
    static: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for f in dataclasses.fields(module):
        if f.name not in vars(module):  # an abstract class variable (manifold, normalisation)
            continue
        value = vars(module)[f.name]
        key = f"{prefix}.{f.name}"
        if isinstance(value, jax.Array | np.ndarray | np.generic):
            arrays[key] = np.asarray(value)
            weak = bool(getattr(value, "weak_type", False))
            static[f.name] = {"__array__": key, "weak_type": weak}
        elif isinstance(value, eqx.Module):
            sub_static, sub_arrays = _module_record(value, key)
            static[f.name] = {"__module__": type(value).__name__, "fields": sub_static}
            arrays.update(sub_arrays)
        elif value is None or isinstance(value, bool | int | float | str):
            static[f.name] = value
        elif callable(value) and _function_name(value) is not None:
            static[f.name] = {"__function__": _function_name(value)}
        else:
            raise TypeError(f"cannot save the field parameter {key} = {value!r} ({type(value).__name__}): only "
                            "arrays, numbers, strings, None, equinox modules and jax.nn/jax.numpy functions are "
                            "stored; save ts and xs yourself (np.savez) for such a field")
    return static, arrays


def _rebuild_module(cls_name: str, static: dict[str, Any], arrays: dict[str, np.ndarray], where: str) -> Any:
    """The module of class ``jaxattn.fields.<cls_name>`` with these parameters (``__init__`` bypassed:
    the stored values are the already-converted fields, which ``__init__`` would convert again)."""
    cls = getattr(_fields_package, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, eqx.Module)):
        raise ValueError(f"the file's field is {where}, which is not a built-in jaxattn field; pass the field "
                         "to load_trajectory(path, field=...) to attach it")
    obj = object.__new__(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    if not set(static) <= names:
        raise ValueError(f"the file's {cls_name} has parameters {sorted(set(static) - names)} that this version of "
                         "jaxattn's class lacks; pass the field to load_trajectory(path, field=...)")
    for name, spec in static.items():
        object.__setattr__(obj, name, _rebuild_value(spec, arrays, where))
    return obj


def _rebuild_value(spec: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if isinstance(spec, dict) and "__array__" in spec:
        value = arrays[spec["__array__"]]
        if spec.get("weak_type") and value.ndim == 0:
            return jnp.asarray(value.item())  # a Python scalar: JAX's weak type, the same bits
        return jnp.asarray(value)
    if isinstance(spec, dict) and "__module__" in spec:
        return _rebuild_module(spec["__module__"], spec["fields"], arrays, where)
    if isinstance(spec, dict) and "__function__" in spec:
        prefix, _, attr = spec["__function__"].rpartition(".")
        return getattr(jax.nn if prefix == "jax.nn" else jnp, attr)
    return spec
