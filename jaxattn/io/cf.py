"""CF-style attributes of the variables in the files jaxattn writes (CF conventions 1.11, §3.1-3.2).

Every variable (data and coordinate) of every netCDF file the library writes carries

* ``long_name``: a human-readable name;
* ``units``: a UDUNITS string, ``"1"`` for dimensionless quantities (times of the dynamics are
  dimensionless: layers are time, paper 002 §2);
* ``description``: what it is, with the paper's symbol and equation.

[`VARIABLES`][jaxattn.io.VARIABLES] is the one catalogue of these texts, keyed by variable name; [`describe`][jaxattn.io.describe]
fills in what a dataset's writer left out (a writer's own attributes win), and
[`missing_attributes`][jaxattn.io.missing_attributes] lists what is still missing. [`jaxattn.io.atomic_write_netcdf`][jaxattn.io.atomic_write_netcdf]
calls [`describe`][jaxattn.io.describe] on every dataset it writes, and [`stamp`][jaxattn.io.stamp]: the global attributes that say
what made a file (``Conventions``, ``jaxattn_version``, ``source``, ``history``; CF §2.6).
"""

from __future__ import annotations

from collections.abc import Hashable

import xarray as xr

from .._provenance import KEYS as PROVENANCE
from .._provenance import provenance
from ..solve import TRAJECTORY_VARIABLES

__all__ = ["PROVENANCE", "REQUIRED", "VARIABLES", "describe", "missing_attributes", "stamp", "strip_provenance"]

#: the attributes every variable carries
REQUIRED = ("long_name", "units", "description")


def _v(long_name: str, units: str, description: str) -> dict[str, str]:
    return {"long_name": long_name, "units": units, "description": description}


_FRACTIONS = {
    "renyi_ball": "fraction of tokens within 1/sqrt(beta) of a Renyi centre",
    "strong_ball": "fraction of tokens within 1/sqrt(beta) of a strong Renyi centre",
    "renyi_cluster": "fraction of tokens in the cluster of a Renyi centre",
    "strong_cluster": "fraction of tokens in the cluster of a strong Renyi centre",
}

#: name -> {long_name, units, description}
VARIABLES: dict[str, dict[str, str]] = {
    **TRAJECTORY_VARIABLES,  # t, member, token, dim, x, theta, ts, t_final, event_occurred, num_*steps
    # ------------------------------------------------------------------ coordinates
    "seed": _v("random seed", "1", "seed of jax.random.PRNGKey drawing a point's initial conditions"),
    "run": _v("run index", "1", "index of an independent run (uniform i.i.d. initial angles)"),
    "beta": _v("inverse temperature", "1",
               "beta: inverse temperature of the attention softmax e^{beta <Q x_i, K x_j>} "
               "(paper 002 eq. (2.3))"),
    "d": _v("ambient dimension", "1", "d: tokens lie on S^{d-1} in R^d (paper 002 §2)"),
    "kq": _v("query/key ensemble", "1",
             "random ensemble of the query and key matrices Q, K (paper 002 Fig. 4: identity, ginibre, goe)"),
    "value": _v("value ensemble", "1",
                "random ensemble of the value matrix V (paper 002 Fig. 4: identity, ginibre, wishart, qk)"),
    "l": _v("spherical-harmonic degree", "1", "l: degree of the spherical harmonics Y_lm on S^2"),
    # ------------------------------------------------------------------ trajectories
    "steps": _v("solver steps", "1", "number of steps the adaptive solver took for one run"),
    # ------------------------------------------------------------------ paper 002 sweeps
    "pair_fraction": _v("fraction of clustered pairs", "1",
                        "P_m(t) = #{(i, j), i != j : <x_i(t), x_j(t)> >= 1 - delta} / (n (n - 1)) for one "
                        "ensemble member m (paper 002 §4, Figs 2-4)"),
    "probability": _v("probability that a pair is clustered", "1",
                      "P(<x_i(t), x_j(t)> >= 1 - delta): the mean of pair_fraction over seeds and members, "
                      "the colour of paper 002 Figs 2-4"),
    "t_star": _v("crossing time of the gamma curve", "1",
                 "t*(beta): the time at which gamma_beta(t) = 1 - delta, gamma solving paper 002 eq. (4.11) "
                 "(the dashed curve of Figs 2-4)"),
    "clusters": _v("number of clusters", "1",
                   "number of clusters: arcs of S^1 separated by circular gaps larger than the cluster gap "
                   "(paper 002 Fig. 3; paper 003 Fig. 3)"),
    "one_cluster": _v("collapsed to one cluster", "1", "whether all tokens form one cluster (0/1)"),
    # ------------------------------------------------------------------ paper 003 (causal)
    **{k: _v(text, "1", f"{text} (Karagodin, Polyanskiy, Rigollet 2024, Figs 2-3; Renyi centres: Def. 4.1)")
       for k, text in _FRACTIONS.items()},
    "num_renyi": _v("number of Renyi centres", "1",
                    "number of Renyi centres of the initial angles (Karagodin, Polyanskiy, Rigollet 2024, Def. 4.1)"),
    "num_strong": _v("number of strong Renyi centres", "1",
                     "number of strong Renyi centres of the initial angles (Karagodin, Polyanskiy, Rigollet "
                     "2024, Def. 4.1)"),
    "angles": _v("token angles", "rad", "theta_i(t) of (CSA) on S^1 (Karagodin, Polyanskiy, Rigollet 2024, "
                 "eq. (CSA-2d))"),
    # ------------------------------------------------------------------ mean-field PDE
    "density": _v("density", "1/rad",
                  "rho(t, theta): density of the tokens w.r.t. d theta, solving the continuity equation "
                  "(paper 002 eq. (2.10)) on S^1"),
    "energy": _v("interaction energy", "1",
                 "E_beta[rho](t) = (1 / 2 beta) iint e^{beta <x, y>} drho(x) drho(y) (paper 002 eq. (3.5))"),
    "min_density": _v("minimum of the density", "1/rad",
                      "min_x rho(t, x): where it turns negative the truncated solution is lost (t_lost)"),
    "power": _v("harmonic power", "1",
                "S_l(t) = sum_m |c_lm(t)|^2: the power of degree l of the density on S^2 (paper 002 eq. (2.10))"),
}
#: the summaries of jaxattn.studies.causal.summarise: <statistic>_<stat>
_STATS = {"mean": "mean over runs", "q10": "0.1 quantile over runs", "q90": "0.9 quantile over runs"}


def _lookup(name: Hashable) -> dict[str, str] | None:
    name = str(name)
    if name in VARIABLES:
        return VARIABLES[name]
    base, _, stat = name.rpartition("_")
    if base in VARIABLES and stat in _STATS:
        entry = VARIABLES[base]
        return {"long_name": f"{entry['long_name']} ({_STATS[stat]})", "units": entry["units"],
                "description": f"{_STATS[stat]} of: {entry['description']}"}
    return None


def describe(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with ``long_name``, ``units`` and ``description`` filled in from [`VARIABLES`][jaxattn.io.VARIABLES].

    Attributes the writer set are kept; only missing (or blank) ones are added. A variable
    ``<name>_<stat>`` (stat ``mean``, ``q10``, ``q90``) is described from ``<name>``'s entry. Variables
    not in the catalogue are left as they are ([`missing_attributes`][jaxattn.io.missing_attributes] names them).

    **Arguments:**

    - `ds`: an ``xarray.Dataset`` (not changed).

    **Returns:**

    A shallow copy of ``ds`` with the attributes filled in.
    """
    ds = ds.copy()
    for name in list(ds.variables):
        entry = _lookup(name)
        if entry is None:
            continue
        attrs = ds.variables[name].attrs
        for key in REQUIRED:
            if not str(attrs.get(key, "")).strip():
                attrs[key] = entry[key]
    return ds


def missing_attributes(ds: xr.Dataset) -> dict[str, list[str]]:
    """The variables of ``ds`` lacking one of the [`REQUIRED`][jaxattn.io.REQUIRED] attributes (or having it blank).

    **Arguments:**

    - `ds`: an ``xarray.Dataset``.

    **Returns:**

    ``{variable: [missing attribute, ...]}`` (empty when every variable is described).
    """
    out = {}
    for name, var in ds.variables.items():
        missing = [key for key in REQUIRED if not str(var.attrs.get(key, "")).strip()]
        if missing:
            out[str(name)] = missing
    return out


def stamp(ds: xr.Dataset, source: str | None = None, call: str | None = None) -> xr.Dataset:
    """``ds`` with the global attributes that say what made it (on a shallow copy).

    ``Conventions`` (CF-1.11), ``jaxattn_version``, ``source`` (``"jaxattn <version>: <source>"``) and
    ``history`` (``"<UTC time>: <the jaxattn command line>"``, or the Python ``call`` and the script it ran
    in). A ``source`` or ``history`` the dataset already has is kept (a file re-written keeps its origin);
    [`jaxattn.io.atomic_write_netcdf`][jaxattn.io.atomic_write_netcdf] stamps every dataset it writes,
    so a writer only passes ``source`` when it wants to say more, e.g. for a sweep's merged dataset:

    ```python
    ds = stamp(ds, source="jaxattn.studies.run_sweep of paper_002.phase_diagram")
    ```

    **Arguments:**

    - `ds`: an ``xarray.Dataset`` (not changed).
    - `source`: what made the data; default None: the dataset's ``title``, else ``"jaxattn"``.
    - `call`: the Python call that made it, recorded in ``history`` outside the ``jaxattn`` command;
        default None.

    **Returns:**

    A shallow copy of ``ds`` with the provenance attributes set.
    """
    ds = ds.copy()
    what = source or str(ds.attrs.get("title", "")).strip() or "jaxattn"
    ds.attrs.update(provenance(what, call=call, attrs=ds.attrs))
    return ds


def strip_provenance(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` without the provenance attributes [`stamp`][jaxattn.io.stamp] adds: two files of the same
    data written at different times or by different commands compare identical after it
    (``xarray.testing.assert_identical(strip_provenance(a), strip_provenance(b))``).

    **Arguments:**

    - `ds`: an ``xarray.Dataset`` (not changed).

    **Returns:**

    A shallow copy of ``ds`` without ``Conventions``, ``jaxattn_version``, ``source``, ``history``.
    """
    ds = ds.copy()
    for key in PROVENANCE:
        ds.attrs.pop(key, None)
    return ds
