"""The notebooks: committed executed, and each figure checked by assertions on the numbers it shows.

Two kinds of test:

* default suite (fast, nothing executed): every notebook is committed executed (every code cell has an
  execution count, no error output), its figures are embedded PNGs (so it renders when browsed) and the file
  stays small, its first cell says in which mode it was executed, and **every cell that draws a figure is
  followed by assertions** (in the same cell or the next code cell) on the numbers the figure shows. The
  asserted bounds come from the papers' predictions or an independent quantity and hold in fast mode and at
  full size.
* marked ``notebook`` (``python -m pytest -m notebook``; ``.ci/run`` runs it): re-executes every notebook in
  fast mode (``JAXATTN_FAST=1``) in memory; an exception or a broken assertion in any cell fails the test
  (nbclient raises ``CellExecutionError``). The files on disk are never rewritten (checked).
"""

import hashlib
import pathlib
import re

import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
IDS = [p.name for p in NOTEBOOKS]

#: a code cell draws a figure if it shows or creates one
DRAWS = re.compile(r"plt\.show\(|plt\.figure\(|plt\.subplots\(|\bplot_\w+\(|\bfigure\d*\(")
ASSERTS = re.compile(r"^\s*assert\b|\bnp\.testing\.assert_|\bcheck\(", re.M)
MAX_BYTES = 2_000_000


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_notebooks_found():
    assert len(NOTEBOOKS) >= 8, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_committed_executed_with_png_figures(path):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=4)
    size = path.stat().st_size
    assert size < MAX_BYTES, (f"{path.name} is {size / 1e6:.2f} MB: lower the figure dpi (InlineBackend) or drop "
                              "large text outputs, then re-execute it")
    first = "".join(nb.cells[0].source)
    assert re.search(r"executed in fast mode", first, re.I), (
        f"{path.name}: its first cell must say that the committed outputs come from fast mode (JAXATTN_FAST=1)")
    cells = _code_cells(nb)
    unexecuted = [i for i, c in enumerate(cells) if c.get("execution_count") is None]
    assert not unexecuted, (f"{path.name}: code cells {unexecuted} were never executed; execute the notebook "
                            "with JAXATTN_FAST=1 (nbclient) and commit it with its outputs")
    errors = [o.get("ename") for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name} was committed with errors {errors}"
    images = [k for c in cells for o in c.get("outputs", []) for k in o.get("data", {}) if k.startswith("image/")]
    drawing = [c for c in cells if DRAWS.search("".join(c.source))]
    if drawing:
        assert images, f"{path.name} draws figures but embeds none: execute it with the inline backend"
    assert set(images) <= {"image/png"}, f"{path.name} embeds {set(images)}: set InlineBackend.figure_formats = ['png']"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_figure_cell_is_followed_by_assertions(path):
    nbformat = pytest.importorskip("nbformat")
    cells = _code_cells(nbformat.read(path, as_version=4))
    unchecked = []
    for i, cell in enumerate(cells):
        src = "".join(cell.source)
        if not DRAWS.search(src):
            continue
        nxt = "".join(cells[i + 1].source) if i + 1 < len(cells) else ""
        if not (ASSERTS.search(src) or ASSERTS.search(nxt)):
            unchecked.append(src.splitlines()[0])
    assert not unchecked, (f"{path.name}: figure cells without assertions on what they show (add `assert` lines "
                           f"from the paper's prediction in that cell or the next): {unchecked}")


def _cleaner():
    import importlib.util

    path = pathlib.Path(__file__).parent.parent / "docs" / "scripts" / "notebooks.py"
    spec = importlib.util.spec_from_file_location("notebooks_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_stored_outputs_hold_no_local_paths_or_tqdm_warnings(path):
    """Outputs are stored clean (``python docs/scripts/notebooks.py`` executes and cleans them)."""
    nbformat = pytest.importorskip("nbformat")
    found = _cleaner().problems(nbformat.read(path, as_version=4))
    assert not found, f"{path.name}: {found}; run python docs/scripts/notebooks.py --clean-only {path.stem}"


def test_the_cleaner_finds_and_removes_what_it_must():
    """The check above is not vacuous: a dirty notebook is flagged, and cleaning it leaves nothing to flag."""
    nbformat = pytest.importorskip("nbformat")
    cleaner = _cleaner()
    out = [nbformat.v4.new_output("stream", name="stderr", text="/home/u/venv/lib/python3.11/site-packages/tqdm/auto.py:21: "
                                  "TqdmWarning: IProgress not found\n"),
           nbformat.v4.new_output("stream", name="stdout", text="sweeps in /tmp/tmpab12cd\n"),
           nbformat.v4.new_output("stream", name="stderr", text="/work/main/jaxattn/studies/paper_004.py:203: "
                                  "RuntimeWarning: lost\n")]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=out)])
    assert len(cleaner.problems(nb)) == 4
    cleaner.clean(nb)
    assert cleaner.problems(nb) == []
    texts = [o["text"] for o in nb.cells[0].outputs]
    assert texts == ["sweeps in <tmp>\n", "jaxattn/studies/paper_004.py:203: RuntimeWarning: lost\n"]


def test_figure_detector_is_not_vacuous():
    """The two regexes above recognise what they must (a test that cannot fail is a defect)."""
    assert DRAWS.search("p1.plot_tokens(poly); plt.show()") and not DRAWS.search("x = np.ones(3)")
    assert ASSERTS.search("x = 1\nassert x > 0, x") and not ASSERTS.search("print('assert nothing')")


def _execute(nb, directory, nbclient):
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=False,
                                     resources={"metadata": {"path": str(directory)}})
    client.execute()  # raises CellExecutionError on an exception or a failed assertion


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_in_fast_mode(path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("JAXATTN_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    nb = nbformat.read(path, as_version=4)
    _execute(nb, path.parent, nbclient)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before, f"executing {path.name} rewrote the file"


@pytest.mark.notebook
def test_a_broken_assertion_in_a_notebook_fails(tmp_path):
    """The harness itself: a notebook whose check fails makes the run raise (so CI goes red)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 0.5"),
                                         nbformat.v4.new_code_cell("assert x > 0.9, x")])
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="AssertionError"):
        _execute(nb, tmp_path, nbclient)
