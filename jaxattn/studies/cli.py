"""The runners of ``jaxattn sweep ...`` and ``jaxattn causal ...``: a study's data, its file and its figure.

Sub-commands (arguments declared in `jaxattn.cli`, so ``--help`` imports nothing heavy):

* ``jaxattn sweep phase-diagram --d 128 --betas 0.1 9 30 --t1 30 --batch 128 --out runs/fig2``
  (paper 002 Figs 2-4; ``--kq``/``--value`` pick the random ensembles of Fig 4; ``--norm``, ``--heads``,
  ``--causal``, ``--redraw-period`` the normalisation scheme, random heads, mask and weight redraws of
  [`phase_field`][jaxattn.studies.paper_002.phase_diagrams.phase_field]);
* ``jaxattn sweep circle --betas 1 9 3 --times 30 100 300 --out runs/fig3`` (Fig 3 / Problem 2);
* ``jaxattn sweep gamma --n 32 --delta 0.01 --out runs/gamma`` (t*(beta), eq. (4.11));
* ``jaxattn causal fig3 --runs 100 --n 200 --beta 64 --out runs/fig3`` (paper 003 Fig. 3).

Every command is a resumable sweep in its ``--out`` folder ([`jaxattn.sweeps`][jaxattn.sweeps]: one file per
finished point under ``OUT/points``): interrupted, the same command continues where it stopped and
ends with the same files as an uninterrupted run. ``--betas MIN MAX NUM`` means NUM values from MIN
to MAX in every command.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["causal_fig3_command", "circle_command", "gamma_command", "phase_diagram_command"]


def _save_figure(ax, path: Path, args) -> None:
    """The figure at ``path`` with the suffix and resolution of ``--format``/``--dpi``."""
    from ..plot import save_figure

    if ax.figure.get_layout_engine() is None:  # figures made with layout="constrained" keep it
        ax.figure.tight_layout()
    print(f"wrote {save_figure(ax.figure, path, dpi=args.dpi, format=args.format)}")


def _betas(args) -> np.ndarray:
    low, high, num = args.betas  # checked by the parser (jaxattn.cli)
    return np.linspace(low, high, int(num))


def phase_diagram_command(args) -> int:
    """``jaxattn sweep phase-diagram``: paper 002 Figs 2-4 (`.paper_002.phase_diagram`).

    **Arguments:**

    - `args`: the parsed ``argparse.Namespace`` (options declared in `jaxattn.cli`).

    **Returns:**

    The exit status, 0.
    """
    from . import figures
    from . import paper_002 as p2

    ts = np.linspace(0.0, args.t1, args.saves)
    ds = p2.phase_diagram(_betas(args), ts, directory=args.out, n=args.n, d=args.d, kq=args.kq, value=args.value,
                          delta=args.delta, batch=args.batch, seeds=args.seeds, rtol=args.rtol, atol=args.rtol,
                          norm=args.norm, heads=args.heads, causal=args.causal, redraw_period=args.redraw_period)
    print(f"wrote {args.out / 'phase_diagram.nc'}")
    _save_figure(figures.plot_phase_diagram(ds), args.out / "phase_diagram.png", args)
    return 0


def circle_command(args) -> int:
    """``jaxattn sweep circle``: paper 002 Fig 3 / Problem 2 (`.paper_002.circle_metastability`), one
    point per beta, the same initial angles for every beta.

    **Arguments:**

    - `args`: the parsed ``argparse.Namespace`` (options declared in `jaxattn.cli`).

    **Returns:**

    The exit status, 0.
    """
    from . import figures
    from . import paper_002 as p2

    ds = p2.circle_metastability(_betas(args), sorted(args.times), n=args.n, batch=args.batch, seed=args.seed,
                                 directory=args.out, progress=not args.no_progress)
    print(f"wrote {args.out / 'circle.nc'}")
    _save_figure(figures.plot_circle_metastability(ds), args.out / "circle.png", args)
    return 0


def gamma_command(args) -> int:
    """``jaxattn sweep gamma``: paper 002 Thm 4.6 (`.paper_002.crossing_times`), one point per beta.

    **Arguments:**

    - `args`: the parsed ``argparse.Namespace`` (options declared in `jaxattn.cli`).

    **Returns:**

    The exit status, 0.
    """
    from . import figures
    from . import paper_002 as p2

    ds = p2.crossing_times(_betas(args), n=args.n, delta=args.delta, directory=args.out)
    print(f"wrote {args.out / 'gamma.nc'}")
    _save_figure(figures.plot_gamma_crossing_times(ds), args.out / "gamma.png", args)
    return 0


def causal_fig3_command(args) -> int:
    """``jaxattn causal fig3``: Karagodin, Polyanskiy, Rigollet 2024, Fig. 3 ([`.paper_003.causal_statistics`][jaxattn.studies.paper_003.causal_statistics],
    one point per chunk of runs; the summary [`.paper_003.fig3_summary`][jaxattn.studies.paper_003.fig3_summary] in ``OUT/fig3.nc``).

    **Arguments:**

    - `args`: the parsed ``argparse.Namespace`` (options declared in `jaxattn.cli`).

    **Returns:**

    The exit status, 0.
    """
    import jax

    from ..io import atomic_write_netcdf
    from . import figures
    from . import paper_003 as p3

    ts = [t for t in p3.FIG3_TIMES if t < args.t1] + [args.t1]
    stats = p3.causal_statistics(jax.random.PRNGKey(args.seed), args.runs, n=args.n, beta=args.beta, ts=ts,
                                 chunk=min(args.chunk, args.runs), progress=not args.no_progress,
                                 directory=args.out)
    summary = p3.fig3_summary(stats)
    summary.attrs.update(seed=args.seed)
    atomic_write_netcdf(summary, args.out / "fig3.nc")
    print(f"wrote {args.out / 'fig3.nc'} (per-run statistics: {args.out / 'causal_statistics.nc'})")
    axes = figures.plot_paper003_fig3(summary)
    _save_figure(axes[0], args.out / "fig3.png", args)
    print(f"  Renyi centres at t = 0: {summary.num_renyi.mean().item():.2f} on average; clusters at t = {args.t1:g}: "
          f"{summary.clusters_mean.values[-1]:.2f} on average")
    return 0
