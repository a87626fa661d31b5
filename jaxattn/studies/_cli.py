"""``jaxattn sweep ...``: run a paper reproduction, write its dataset (netCDF) and a PNG.

Sub-commands:

* ``jaxattn sweep phase-diagram --d 128 --betas 0.1 9 30 --t1 30 --batch 128 --out runs/fig2``
  (paper 002 Figs 2-4; ``--kq``/``--value`` pick the random ensembles of Fig 4). Resumable:
  re-running the same command in the same ``--out`` continues where it stopped.
* ``jaxattn sweep circle --betas 1 4 9 --times 30 100 300 --out runs/fig3`` (Fig 3 / T21).
* ``jaxattn sweep gamma --n 32 --delta 0.01 --out runs/gamma`` (t*(beta), eq. (4.11)).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def register(subparsers) -> None:
    parser = subparsers.add_parser("sweep", help="parameter sweeps reproducing papers 001/002 (dataset + PNG)")
    sub = parser.add_subparsers(dest="sweep_command", metavar="SWEEP")

    pd = sub.add_parser("phase-diagram", help="paper 002 Figs 2-4: P(<x_i, x_j> >= 1 - delta) over (beta, t)")
    pd.add_argument("--out", required=True, type=Path, help="output directory (resumable)")
    pd.add_argument("--betas", type=float, nargs=3, default=[0.1, 9.0, 30], metavar=("MIN", "MAX", "NUM"))
    pd.add_argument("--t1", type=float, default=30.0)
    pd.add_argument("--saves", type=int, default=61)
    pd.add_argument("--n", type=int, default=32)
    pd.add_argument("--d", type=int, default=128)
    pd.add_argument("--batch", type=int, default=128)
    pd.add_argument("--seeds", type=int, default=1)
    pd.add_argument("--delta", type=float, default=1e-2)
    pd.add_argument("--kq", default="identity")
    pd.add_argument("--value", default="identity")
    pd.add_argument("--rtol", type=float, default=1e-6)
    pd.set_defaults(func=_phase_diagram)

    ci = sub.add_parser("circle", help="paper 002 Fig 3 / T21: cluster counts on the circle over time")
    ci.add_argument("--out", required=True, type=Path)
    ci.add_argument("--betas", type=float, nargs="+", default=[1.0, 4.0, 9.0])
    ci.add_argument("--times", type=float, nargs="+", default=[10.0, 30.0, 100.0, 300.0])
    ci.add_argument("--n", type=int, default=32)
    ci.add_argument("--batch", type=int, default=200)
    ci.add_argument("--seed", type=int, default=0)
    ci.set_defaults(func=_circle)

    ga = sub.add_parser("gamma", help="paper 002 Thm 4.6: crossing times t*(beta) of the gamma ODE")
    ga.add_argument("--out", required=True, type=Path)
    ga.add_argument("--n", type=int, default=32)
    ga.add_argument("--delta", type=float, default=1e-2)
    ga.add_argument("--betas", type=float, nargs=3, default=[0.1, 9.0, 90], metavar=("MIN", "MAX", "NUM"))
    ga.set_defaults(func=_gamma)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _save_png(ax, path: Path) -> None:
    ax.figure.tight_layout()
    ax.figure.savefig(path, dpi=130)
    print(f"wrote {path}")


def _phase_diagram(args) -> int:
    from . import paper_002 as p2

    betas = np.linspace(args.betas[0], args.betas[1], int(args.betas[2]))
    ts = np.linspace(0.0, args.t1, args.saves)
    ds = p2.phase_diagram(betas, ts, directory=args.out, n=args.n, d=args.d, kq=args.kq, value=args.value,
                          delta=args.delta, batch=args.batch, seeds=args.seeds, rtol=args.rtol, atol=args.rtol)
    print(f"wrote {args.out / 'phase_diagram.nc'}")
    _save_png(p2.plot_phase_diagram(ds), args.out / "phase_diagram.png")
    return 0


def _circle(args) -> int:
    from ..io import atomic_write_netcdf
    from . import paper_002 as p2

    ds = p2.circle_metastability(args.betas, sorted(args.times), n=args.n, batch=args.batch, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_netcdf(ds, args.out / "circle.nc")
    print(f"wrote {args.out / 'circle.nc'}")
    _save_png(p2.plot_circle_metastability(ds), args.out / "circle.png")
    return 0


def _gamma(args) -> int:
    import xarray as xr

    from ..io import atomic_write_netcdf
    from ..plot import pyplot
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
    _save_png(ax, args.out / "gamma.png")
    return 0
