"""The documentation site a user navigates: API pages that lead with the entry points, docstrings in the
site's markup (no literal Sphinx roles), the notebooks and the full-size gallery rendered as pages.

The cheap checks read the sources; ``test_site_builds_strict_without_literal_roles`` (slow) builds the site
with ``mkdocs build --strict`` into a temporary folder and reads the HTML.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: a Sphinx role as it would render literally on a mkdocstrings page
ROLE = re.compile(r":(?:py:)?(?:func|class|mod|attr|meth|data|obj|exc):`")


def _hook():
    spec = importlib.util.spec_from_file_location("readme_links", ROOT / "docs" / "hooks" / "readme_links.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Config:
    config_file_path = str(ROOT / "mkdocs.yml")


def test_api_pages_lead_with_the_entry_points():
    hook = _hook()
    for page, first in (("solve", ["simulate", "Trajectory", "solve_ensemble"]),
                        ("fields", ["SelfAttention", "UnnormalisedSelfAttention", "CircleSelfAttention"]),
                        ("io", ["load_trajectory"])):
        text = (ROOT / "docs" / "api" / f"{page}.md").read_text()
        expanded = hook._expand_members(text, _Config())
        blocks = re.findall(r"^::: jaxattn\.\w+\.(\w+)\n    options:\n      heading_level: 2$", expanded, re.M)
        assert blocks[: len(first)] == first, (page, blocks[:5])
        constants = [i for i, name in enumerate(blocks) if name.isupper()]
        assert not constants or min(constants) > max(i for i, n in enumerate(blocks) if not n.isupper()), (
            f"{page}: constants must come after every function and class: {blocks}")
    with pytest.raises(ValueError, match="does not re-export"):
        hook.ordered(["a", "B"], ["nope"])


def test_docstrings_have_no_sphinx_roles():
    """Sphinx roles (``:func:`x```) render as literal text on the mkdocstrings pages; the docstrings use the
    site's markup: ``[`x`][jaxattn.x]`` cross-references or inline code."""
    offenders = {str(p.relative_to(ROOT)): len(ROLE.findall(p.read_text()))
                 for p in sorted((ROOT / "jaxattn").rglob("*.py"))}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"run python docs/scripts/convert_roles.py: {offenders}"


def test_every_notebook_is_a_page_of_the_site():
    nav = (ROOT / "mkdocs.yml").read_text()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"notebooks/{nb.name}" in nav, nb.name
    assert "gallery.md" in nav and "mkdocs-jupyter" in nav
    assert (ROOT / "docs" / "notebooks").resolve() == (ROOT / "notebooks").resolve()  # the symlink the site reads


@pytest.mark.slow
def test_site_builds_strict_without_literal_roles(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("mkdocs_jupyter")
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1",
                                                                         **__import__("os").environ})
    assert res.returncode == 0, res.stderr[-3000:]
    pages = sorted((tmp_path / "api").rglob("*.html"))
    assert len(pages) >= 8
    literal = {str(p.relative_to(tmp_path)): len(ROLE.findall(p.read_text())) for p in pages}
    assert not any(literal.values()), literal
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        assert (tmp_path / "notebooks" / nb.stem / "index.html").exists(), nb.name
    assert "img/gallery/full/" in (tmp_path / "gallery" / "index.html").read_text()
