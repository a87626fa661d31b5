"""Start-up latency of the ``jaxattn`` console script against a bare ``python -c pass``.

Prints a table of median wall times over ``--repeats`` fresh processes (the console script's cost is
the Python start-up plus ``import jaxattn.cli`` and argparse): ``jaxattn --help``, ``jaxattn --version``,
an argument error, and, for scale, ``python -c "import jaxattn; jaxattn.simulate"`` (what a command
pays once it runs: JAX, diffrax, equinox). Pin with ``taskset -c 0``.

    taskset -c 0 python -m benchmarks.cli_latency --repeats 7
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def _wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="fresh processes per command (default 7)")
    args = parser.parse_args(argv)
    script = shutil.which("jaxattn")
    exe = [script] if script else [sys.executable, "-m", "jaxattn.cli"]
    cases = {
        "python -c pass (baseline)": [sys.executable, "-c", "pass"],
        "jaxattn --help": exe + ["--help"],
        "jaxattn --version": exe + ["--version"],
        "jaxattn simulate --model nope (error)": exe + ["simulate", "--model", "nope"],
        "import jaxattn; jaxattn.simulate": [sys.executable, "-c", "import jaxattn; jaxattn.simulate"],
    }
    rows = []
    for name, cmd in cases.items():
        _wall(cmd)  # warm the file cache
        rows.append((name, statistics.median(_wall(cmd) for _ in range(args.repeats))))
    base = rows[0][1]
    print(f"| command | median wall s ({args.repeats} runs) | ratio to baseline |\n|---|---|---|")
    for name, t in rows:
        print(f"| {name} | {t:.3f} | {t / base:.1f}x |")


if __name__ == "__main__":
    main()
