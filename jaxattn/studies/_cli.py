"""``jaxattn sweep ...``: run a paper reproduction, write its dataset (netCDF) and a PNG.

Sub-commands:

* ``jaxattn sweep phase-diagram --d 128 --betas 0.1 9 30 --t1 30 --batch 128 --out runs/fig2``
  (paper 002 Figs 2-4; ``--kq``/``--value`` pick the random ensembles of Fig 4). Resumable:
  re-running the same command in the same ``--out`` continues where it stopped.
* ``jaxattn sweep circle --betas 1 4 9 --times 30 100 300 --out runs/fig3`` (Fig 3 / T21).
* ``jaxattn sweep gamma --n 32 --delta 0.01 --out runs/gamma`` (t*(beta), eq. (4.11)).
* ``jaxattn causal fig3 --runs 100 --n 200 --beta 64 --out runs/fig3`` (paper 003 Fig. 3).

The runners; the arguments are declared in `jaxattn.cli` (so ``--help`` imports nothing heavy).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _save_png(ax, path: Path, args) -> None:
    """The figure at ``path`` with the suffix and resolution of ``--format``/``--dpi``."""
    from ..plot import save_figure

    if ax.figure.get_layout_engine() is None:  # figures made with layout="constrained" keep it
        ax.figure.tight_layout()
    print(f"wrote {save_figure(ax.figure, path, dpi=args.dpi, format=args.format)}")


def phase_diagram_command(args) -> int:
    from . import paper_002 as p2

    betas = np.linspace(args.betas[0], args.betas[1], int(args.betas[2]))
    ts = np.linspace(0.0, args.t1, args.saves)
    ds = p2.phase_diagram(betas, ts, directory=args.out, n=args.n, d=args.d, kq=args.kq, value=args.value,
                          delta=args.delta, batch=args.batch, seeds=args.seeds, rtol=args.rtol, atol=args.rtol)
    print(f"wrote {args.out / 'phase_diagram.nc'}")
    _save_png(p2.plot_phase_diagram(ds), args.out / "phase_diagram.png", args)
    return 0


def circle_command(args) -> int:
    import xarray as xr
    from tqdm.auto import tqdm

    from ..io import atomic_write_netcdf
    from . import paper_002 as p2

    parts = [p2.circle_metastability([beta], sorted(args.times), n=args.n, batch=args.batch, seed=args.seed)
             for beta in tqdm(args.betas, desc="sweep circle (beta)", unit="beta", disable=args.no_progress)]
    ds = xr.concat(parts, dim="beta")  # one beta at a time: the same initial angles for every beta
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_netcdf(ds, args.out / "circle.nc")
    print(f"wrote {args.out / 'circle.nc'}")
    _save_png(p2.plot_circle_metastability(ds), args.out / "circle.png", args)
    return 0


def gamma_command(args) -> int:
    import xarray as xr

    from ..io import atomic_write_netcdf
    from ..plot import parameter_title, pyplot
    from ..analysis import gamma_crossing_time

    betas = np.linspace(args.betas[0], args.betas[1], int(args.betas[2]))
    t_star = [float(gamma_crossing_time(b, args.n, args.delta)) for b in betas]
    ds = xr.Dataset({"t_star": ("beta", t_star)}, coords={"beta": betas},
                    attrs=dict(n=args.n, delta=args.delta, model="SA", paper="002 eq. (4.11)"))
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_netcdf(ds, args.out / "gamma.nc")
    _, ax = pyplot().subplots(figsize=(5, 3.5))
    ax.semilogx(ds.t_star, ds.beta)
    ax.set_xlabel(r"$t^*(\beta)$")
    ax.set_ylabel(r"$\beta$")
    ax.set_title(parameter_title("SA, crossing times of the $\\gamma$ ODE", n=args.n, delta=args.delta), fontsize=10)
    _save_png(ax, args.out / "gamma.png", args)
    return 0


#: the save times of paper 003's Fig. 3 (cut at --t1)
FIG3_TIMES = (0, 1, 2, 5, 10, 20, 50, 75, 100, 150, 200, 300, 500)


def causal_fig3_command(args) -> int:
    """Karagodin, Polyanskiy, Rigollet 2024, Fig. 3: consumed fractions and cluster counts over time."""
    import jax
    import xarray as xr

    from ..io import atomic_write_netcdf
    from ..plot import pyplot
    from .causal import causal_statistics, summarise

    ts = [t for t in FIG3_TIMES if t < args.t1] + [args.t1]
    raw = causal_statistics(jax.random.PRNGKey(args.seed), args.runs, n=args.n, beta=args.beta, ts=ts,
                            chunk=min(args.chunk, args.runs), progress=not args.no_progress)
    names = {"renyi_ball": "fraction of tokens within 1/sqrt(beta) of a Renyi centre",
             "strong_ball": "fraction of tokens within 1/sqrt(beta) of a strong Renyi centre",
             "renyi_cluster": "fraction of tokens in the cluster of a Renyi centre",
             "strong_cluster": "fraction of tokens in the cluster of a strong Renyi centre",
             "clusters": "number of clusters (circular gaps larger than the cluster gap)"}
    data = {}
    for key, text in names.items():
        summary = summarise(raw[key])
        for stat, values in summary.items():
            data[f"{key}_{stat}"] = ("t", values, {"long_name": f"{text} ({stat} over runs)", "units": "1"})
    data["num_renyi"] = ("member", raw["num_renyi"].values,
                         {"long_name": "number of Renyi centres at t = 0", "units": "1"})
    data["num_strong"] = ("member", raw["num_strong"].values,
                          {"long_name": "number of strong Renyi centres at t = 0", "units": "1"})
    data["steps"] = ("member", raw["steps"].values, {"long_name": "solver steps", "units": "1"})
    ds = xr.Dataset(data, coords={"t": raw["t"], "member": raw["member"]},
                    attrs=dict(n=args.n, beta=args.beta, runs=args.runs, seed=args.seed, model="causal SA on S^1",
                               paper="Karagodin, Polyanskiy, Rigollet 2024, Fig. 3"))
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_netcdf(ds, args.out / "fig3.nc")
    print(f"wrote {args.out / 'fig3.nc'}")
    _, axes = pyplot().subplots(1, 2, figsize=(9, 3.5))
    t = np.maximum(ds.t.values, 0.5)  # log axis: t = 0 drawn at 0.5
    for key, label in (("renyi_ball", "Rényi"), ("strong_ball", "strong Rényi")):
        line, = axes[0].semilogx(t, ds[f"{key}_mean"], "o-", label=label)
        axes[0].fill_between(t, ds[f"{key}_q10"], ds[f"{key}_q90"], color=line.get_color(), alpha=0.2)
    axes[0].set(xlabel="t (t = 0 drawn at 0.5)", ylabel="consumed fraction", ylim=(0, 1.02))
    axes[0].legend()
    axes[1].semilogx(t, ds["clusters_mean"], "o-")
    axes[1].fill_between(t, ds["clusters_q10"], ds["clusters_q90"], alpha=0.2)
    axes[1].set(xlabel="t (t = 0 drawn at 0.5)", ylabel="clusters")
    axes[0].figure.suptitle(rf"causal SA on $S^1$: n = {args.n}, $\beta$ = {args.beta:g}, {args.runs} runs")
    _save_png(axes[0], args.out / "fig3.png", args)
    print(f"  Renyi centres at t = 0: {ds.num_renyi.mean().item():.2f} on average; clusters at t = {args.t1:g}: "
          f"{ds.clusters_mean.values[-1]:.2f} on average")
    return 0
