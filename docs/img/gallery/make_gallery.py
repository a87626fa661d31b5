"""The two galleries: ``python docs/img/gallery/make_gallery.py [--full [NAME ...]] [--out DIR] [--dpi N]``.

* without ``--full``: the README gallery, five small PNGs of figures the library draws, at sizes that run
  in about half a minute on one CPU core (``FIGURES``: a file name and a function returning the figure);
* ``--full``: the full-size gallery of the papers' figures (``FULL``), the docs page ``docs/gallery.md``
  (the notebooks show these beside their fast-mode reruns). Each figure is drawn at the paper's size or,
  where that costs more than about 20 CPU-minutes here, the largest size that fits (the table states both);
  its CPU time (``time.process_time``, compilation included) is measured and written with the PNG to
  ``full/costs.json`` and the table of ``docs/gallery.md``. ``NAME ...`` redraws only those (the others'
  entries are kept), so the gallery can be built in parts; ``--full table`` only rewrites the page.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import jax
import numpy as np

import jaxattn
from jaxattn.plot import plot_circle_trajectories, plot_sphere_trajectories, pyplot
from jaxattn.studies import paper_001, paper_002


def demo_sphere():
    """``jaxattn demo``: (SA) on S^2, n = 32, beta = 9, seed 0, t in [0, 30]."""
    x0 = jaxattn.initial.uniform_sphere(jax.random.PRNGKey(0), 32, 3)
    traj = jaxattn.simulate(jaxattn.SelfAttention(9.0), x0, 30.0)
    return plot_sphere_trajectories(traj, title=r"SA on $S^2$: $n = 32$, $\beta = 9$, seed 0").figure


def circle():
    """(SA) on the circle (paper 002 eq. (6.1)) in angles, n = 16, beta = 4."""
    x0 = jaxattn.initial.uniform_circle(jax.random.PRNGKey(1), 16)
    traj = jaxattn.simulate(jaxattn.CircleSelfAttention(4.0), x0, 20.0, ts=201)
    return plot_circle_trajectories(traj, title=r"SA on $S^1$: $n = 16$, $\beta = 4$").figure


def phase_diagram():
    """Paper 002 Fig. 2 at a small size: n = 8, d = 3, 8 x 16 realisations per beta."""
    with tempfile.TemporaryDirectory() as tmp:
        ds = paper_002.phase_diagram(np.linspace(0.5, 6.0, 12), np.linspace(0.0, 15.0, 31), directory=tmp, n=8,
                                     d=3, batch=16, seeds=8, progress=False)
    return paper_002.plot_phase_diagram(ds).figure


def attention():
    """Paper 001 Thm 2.1 / Fig 3: sorted attention matrices becoming Boolean, n = 20, d = 1."""
    ds = paper_001.boolean_attention(n=20, ts=(0.0, 1.0, 2.0, 4.0))
    return paper_001.plot_attention_matrices(ds)[0].figure


def polytope():
    """Paper 001 Thm 3.1 (V = I): tokens converge to the vertices of the initial convex hull, d = 2."""
    ds = paper_001.rescaled_trajectories(np.eye(2), n=30, t1=8.0, ts=np.linspace(0.0, 8.0, 41))
    return paper_001.plot_tokens(ds).figure


FIGURES = {"demo_sphere.png": demo_sphere, "circle.png": circle, "phase_diagram.png": phase_diagram,
           "attention.png": attention, "polytope.png": polytope}


# ------------------------------------------------------------------------------------------ full size

FULL_DIR = Path(__file__).parent / "full"
#: JAXATTN_FAST=1 draws every full figure at a tiny size (a smoke test of the code; never committed)
SMALL = os.environ.get("JAXATTN_FAST") == "1"


def _size(full, small):
    return small if SMALL else full
GALLERY_PAGE = Path(__file__).resolve().parents[2] / "gallery.md"
#: the largest PNG stored (KB)
MAX_KB = 145


@dataclass(frozen=True)
class FullFigure:
    """A paper figure at full size: where it is from, the paper's size and the size drawn here."""

    title: str
    notebook: str
    paper_size: str
    drawn_size: str
    make: Callable


def full_phase_diagram():
    """Paper 002 Fig. 2: Q = K = V = I, n = 32, d = 128, 90 betas in [0.1, 9], 61 times in [0, 30]."""
    with tempfile.TemporaryDirectory() as tmp:
        ds = paper_002.phase_diagram(np.linspace(0.1, 9.0, _size(90, 3)), np.linspace(0.0, 30.0, _size(61, 5)),
                                     directory=tmp, n=32, d=_size(128, 8), batch=_size(1024, 4), progress=False)
    ax = paper_002.plot_phase_diagram(ds)
    ax.set_title(r"$P(\langle x_i, x_j\rangle \geq 1 - \delta)$: $n = 32$, $d = 128$, 1024 realisations per $\beta$",
                 fontsize=10)
    return ax.figure


def full_circle_metastability():
    """Paper 002 Fig. 3 / Problem 2: mean cluster counts on the circle, n = 32, 200 runs per beta, t up to 3000."""
    ds = paper_002.circle_metastability([1.0, 4.0, 9.0], _size([30.0, 100.0, 300.0, 1000.0, 3000.0], [3.0, 10.0]),
                                        batch=_size(200, 4))
    return paper_002.plot_circle_metastability(ds).figure


def full_causal_fig1():
    """Paper 003 Fig. 1: causal SA on S^2, n = 32, beta = 9, t up to 5000, five value matrices."""
    from jaxattn.studies import causal

    runs = causal.fig1_runs(jax.random.PRNGKey(3), t1=_size(5000.0, 10.0), num_saves=_size(501, 11))
    plt = pyplot()
    fig = plt.figure(figsize=(16, 3.6))
    for i, (panel, traj) in enumerate(runs.items()):
        ax = fig.add_subplot(1, len(runs), i + 1, projection="3d")
        xs = np.asarray(traj.xs)
        for k in range(xs.shape[1]):
            ax.plot(*xs[:, k].T, lw=0.5)
        ax.scatter(*xs[-1].T, color="crimson", s=12)
        ax.set_title(f"({panel}) V = diag{causal.FIG1_VALUES[panel]}", fontsize=9)
    fig.suptitle(r"causal SA on $S^2$: $n = 32$, $\beta = 9$, $t \in [0, 5000]$", fontsize=10)
    return fig


def full_causal_fig3():
    """Paper 003 Fig. 3: consumed fractions of (strong) Renyi centres, 5000 runs, n = 200, beta = 64, T = 500."""
    from jaxattn.studies import causal

    runs = _size(5000, 4)
    stats = causal.causal_statistics(jax.random.PRNGKey(5), runs, chunk=250, **_size({}, dict(n=20, ts=(0, 1, 5))))
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True, layout="constrained")
    t = np.maximum(stats["t"].values, 0.5)
    for ax, kind in zip(axes, ("ball", "cluster")):
        for name, label, colour in (("renyi", "Rényi", "k"), ("strong", "strong Rényi", "crimson")):
            sm = causal.summarise(stats[f"{name}_{kind}"])
            ax.semilogx(t, sm["mean"], color=colour, label=label)
            ax.fill_between(t, sm["q10"], sm["q90"], color=colour, alpha=0.2)
        ax.set(xlabel="t (t = 0 drawn at 0.5)", title=f"consumed ({kind})")
        ax.legend()
    axes[0].set_ylabel("fraction of tokens")
    fig.suptitle(rf"causal SA on $S^1$: $n = 200$, $\beta = 64$, {runs} runs (mean, 10-90% band)", fontsize=10)
    return fig


def full_particles_fig2():
    """Paper 004 Fig. 2: N = 20000 particles on the circle at beta = 5 and 7, trajectories and histograms."""
    from jaxattn.studies import paper_004

    runs = {}
    for beta, T, t_hist, seed in [(5.0, 0.6, 0.3, 12345), (7.0, 0.1, 0.045, 1234)]:
        ts, xs, k, pos = paper_004.figure2_run(beta, _size(20_000, 200), T, seed, n_save=_size(301, 11))
        runs[beta] = (ts, xs, k, pos, t_hist)
    paper_004.plot_figure2(runs)
    return pyplot().gcf()


def full_pde_fig4():
    """Paper 004 Fig. 4: the circle PDE from the uniform density + white noise, beta = 5, K = 192 modes."""
    from jaxattn.studies import paper_004

    tr, _, _ = paper_004.figure4_run(beta=5.0, T=_size(0.5, 0.1), K=_size(192, 48), n_save=_size(101, 11))
    paper_004.plot_figure4(tr, every=10)
    return pyplot().gcf()


FULL = {
    "p002_fig2_phase_diagram.png": FullFigure(
        "Paper 002 Fig. 2: phase diagram, Q = K = V = I", "paper_002_phase_diagrams",
        "n = 32, d = 128, 90 betas x 61 times, 1024 realisations", "the paper's", full_phase_diagram),
    "p002_fig3_circle.png": FullFigure(
        "Paper 002 Fig. 3: metastability on the circle", "paper_002_circle_energy",
        "n = 32, beta in {1, 4, 9}, t up to 3000", "200 runs per beta", full_circle_metastability),
    "p003_fig1_final.png": FullFigure(
        "Paper 003 Fig. 1: causal SA, five value matrices", "paper_003_causal",
        "n = 32, d = 3, beta = 9, t up to 5000", "the paper's", full_causal_fig1),
    "p003_fig3_consumed.png": FullFigure(
        "Paper 003 Fig. 3: tokens consumed by Rényi centres", "paper_003_causal",
        "5000 runs, n = 200, beta = 64, T = 500", "the paper's", full_causal_fig3),
    "p004_fig2_particles.png": FullFigure(
        "Paper 004 Fig. 2: particles on the circle", "paper_004_particles",
        "N = 20000, beta in {5, 7}", "the paper's", full_particles_fig2),
    "p004_fig4_pde.png": FullFigure(
        "Paper 004 Fig. 4: the PDE from noise", "paper_004_pde",
        "beta = 5, sigma = 0.01 on M = 9999 cells, T = 0.5", "K = 192 Fourier modes", full_pde_fig4),
}

_TABLE = re.compile(r"<!-- gallery:start -->.*<!-- gallery:end -->", re.S)


def format_cost(seconds: float) -> str:
    """``"2.7 CPU-s"`` below a minute, else ``"6.3 CPU-min"``."""
    return f"{seconds:.1f} CPU-s" if seconds < 60 else f"{seconds / 60:.1f} CPU-min"


def gallery_table(costs: dict) -> str:
    """The markdown of docs/gallery.md's figures: one section per figure with its sizes and measured cost."""
    rows = ["| figure | paper's size | drawn at | CPU time here | notebook |", "|---|---|---|---|---|"]
    sections = []
    for name, fig in FULL.items():
        cost = costs.get(name)
        cpu = format_cost(cost["cpu_s"]) if cost else "not drawn yet"
        rows.append(f"| [{fig.title}](#{Path(name).stem}) | {fig.paper_size} | {fig.drawn_size} | {cpu} | "
                    f"[{fig.notebook}](notebooks/{fig.notebook}.ipynb) |")
        if cost:
            sections.append(f"### {fig.title} {{#{Path(name).stem}}}\n\n![{fig.title}](img/gallery/full/{name})\n\n"
                            f"{fig.paper_size}; drawn at {fig.drawn_size}; {cpu} ({cost['when']}).")
    return "<!-- gallery:start -->\n" + "\n".join(rows) + "\n\n" + "\n\n".join(sections) + "\n<!-- gallery:end -->"


def make_full(names, out: Path, dpi: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    costs_path = out / "costs.json"
    costs = json.loads(costs_path.read_text()) if costs_path.exists() else {}
    plt = pyplot()
    for name in (names or FULL) if names != ["table"] else []:
        if name not in FULL:
            raise SystemExit(f"unknown figure {name!r}; choose from {', '.join(FULL)}")
        cpu = time.process_time()
        fig = FULL[name].make()
        cpu = time.process_time() - cpu
        for scale in (1.0, 0.85, 0.7, 0.55):  # keep the PNG under MAX_KB: lower the resolution, not the data
            fig.savefig(out / name, dpi=dpi * scale, bbox_inches="tight", pad_inches=0.05)
            if (out / name).stat().st_size < MAX_KB * 1024:
                break
        plt.close(fig)
        size = (out / name).stat().st_size
        costs[name] = {"cpu_s": round(cpu, 1), "kb": round(size / 1024, 1), "when": time.strftime("%Y-%m-%d"),
                       "cores": os.cpu_count()}
        costs_path.write_text(json.dumps(costs, indent=1, sort_keys=True) + "\n")
        print(f"{name:28s} {format_cost(cpu):>14s}  {size / 1024:6.1f} KB", flush=True)
    if out == FULL_DIR:
        page = GALLERY_PAGE.read_text()
        GALLERY_PAGE.write_text(_TABLE.sub(lambda m: gallery_table(costs), page))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", nargs="*", default=None, metavar="NAME",
                        help="draw the full-size gallery (all figures, or those NAMEs) instead of the README's")
    parser.add_argument("--out", type=Path, default=None, help="folder (default: this one, or full/ with --full)")
    parser.add_argument("--dpi", type=int, default=None, help="resolution of the PNGs (default: 80; 70 with --full)")
    args = parser.parse_args(argv)
    if args.full is not None:
        make_full(args.full, args.out or FULL_DIR, args.dpi or 70)
        return
    args.out = args.out or Path(__file__).parent
    args.dpi = args.dpi or 80
    args.out.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    for name, make in FIGURES.items():
        start = time.perf_counter()
        fig = make()
        fig.savefig(args.out / name, dpi=args.dpi, bbox_inches="tight", pad_inches=0.03)
        plt.close(fig)
        size = (args.out / name).stat().st_size / 1024
        print(f"{name:20s} {time.perf_counter() - start:5.1f} s  {size:5.1f} KB")


if __name__ == "__main__":
    main()
