"""The ``jaxattn`` console script.

Sub-commands live in their own modules; each exposes ``register(subparsers)`` which adds
an ``argparse`` sub-parser whose ``func`` attribute runs it. Modules are imported lazily so
``jaxattn --help`` stays fast and an optional extra that is not installed only disables its
own sub-command.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: modules providing sub-commands, in the order they are listed by ``--help``
SUBCOMMAND_MODULES = (
    "jaxattn._demo",
    "jaxattn.studies._cli",
    "jaxattn.sentiment.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxattn",
        description="Self-attention dynamics as interacting particle systems (JAX + diffrax).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # an optional part that is not installed
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
