"""Execute the notebooks in fast mode and store them clean: ``python docs/scripts/notebooks.py [--clean-only] [NAME ...]``.

* executes ``notebooks/NAME.ipynb`` (all of them by default) with ``JAXATTN_FAST=1`` (nbclient, the
  inline backend, PNG figures) and writes it back with its outputs;
* cleans the stored outputs (``--clean-only`` does only this): no absolute local path (a package's own
  file becomes ``jaxattn/...``, an installed package's ``<site-packages>/...``, a temporary folder
  ``<tmp>``), no ``TqdmWarning: IProgress not found`` (installing the dev extra brings ipywidgets), no
  widget state.

``tests/test_notebooks.py`` checks that the committed notebooks are clean (:func:`problems`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"

#: absolute paths of this machine in stored outputs
ABSOLUTE = re.compile(r"(?<![\w.])(?:/(?:work|home|root|tmp|Users|private|var|opt|usr|mnt|scratch)/[^\s\"'\\:,)]*)"
                      r"|(?:[A-Za-z]:\\\\[^\s\"']+)")
_SITE = re.compile(r"/[^\s\"']*?/(?:site|dist)-packages/")
_PACKAGE = re.compile(r"/[^\s\"']*?/(jaxattn/[\w/]+\.py)")
_TMP = re.compile(r"/tmp/[\w.\-]+")


def clean_text(text: str) -> str:
    """``text`` with absolute local paths replaced (module docstring)."""
    text = _SITE.sub("<site-packages>/", text)
    text = _PACKAGE.sub(r"\1", text)
    return _TMP.sub("<tmp>", text)


def clean(nb) -> int:
    """Clean a notebook (an nbformat node) in place; returns the number of outputs changed or dropped."""
    changed = 0
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and "TqdmWarning" in "".join(out.get("text", "")):
                changed += 1
                continue
            data = out.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:  # a progress bar: show its text form
                data.pop("application/vnd.jupyter.widget-view+json")
                changed += 1
                if not data:
                    continue
            for key in ("text",):
                if key in out:
                    new = clean_text("".join(out[key]))
                    changed += new != "".join(out[key])
                    out[key] = new
            for mime in ("text/plain", "text/html", "text/markdown"):
                if mime in data:
                    new = clean_text("".join(data[mime]))
                    changed += new != "".join(data[mime])
                    data[mime] = new
            if out.get("output_type") == "error":
                out["traceback"] = [clean_text(line) for line in out.get("traceback", [])]
            kept.append(out)
        cell["outputs"] = kept
    return changed


def problems(nb) -> list[str]:
    """What is not clean in a notebook's stored outputs (empty when clean)."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", "")) + "".join(
                "".join(v) for k, v in out.get("data", {}).items() if k.startswith("text/"))
            if "TqdmWarning" in text:
                found.append(f"cell {i}: TqdmWarning (install ipywidgets, the dev extra has it)")
            for m in ABSOLUTE.finditer(text):
                found.append(f"cell {i}: absolute path {m.group(0)!r}")
    return found


def execute(path: Path) -> float:
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    os.environ["JAXATTN_FAST"] = "1"
    start = time.time()
    nbclient.NotebookClient(nb, timeout=1200, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    clean(nb)
    nbformat.write(nb, path)
    return time.time() - start


def main(argv=None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook names (default: all)")
    parser.add_argument("--clean-only", action="store_true", help="clean the stored outputs, execute nothing")
    args = parser.parse_args(argv)
    paths = [NOTEBOOKS / (n if n.endswith(".ipynb") else f"{n}.ipynb") for n in args.names] or sorted(
        NOTEBOOKS.glob("*.ipynb"))
    for path in paths:
        if args.clean_only:
            nb = nbformat.read(path, as_version=4)
            n = clean(nb)
            nbformat.write(nb, path)
            print(f"{path.name}: {n} outputs cleaned")
        else:
            print(f"{path.name}: executed in {execute(path):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
