"""MkDocs hook: the home page is the README (``{{ README }}`` in docs/index.md is replaced by it);
``{{ members jaxattn.pkg first second ... }}`` in an API page documents every name the package re-exports:
the names listed first (the entry points), then the other functions and classes, then the constants
(UPPER_CASE names), so that a page leads with what a user calls.

The README's links are relative to the repository root: on the site, ``docs/X`` is the page
``X``, and a file outside ``docs/`` (benchmarks/README.md) is named as text, not linked.
"""

import re
from pathlib import Path

_OUTSIDE = re.compile(r"\]\((?!https?://|#)([^)\s]+)\)")


def on_page_markdown(markdown, page, config, **kwargs):
    markdown = _expand_members(markdown, config)
    if page.file.src_uri != "index.md" or "{{ README }}" not in markdown:
        return markdown
    readme = (Path(config.config_file_path).parent / "README.md").read_text()
    readme = re.sub(r"\A# [^\n]*\n", "", readme)  # the page has its own title
    readme = readme.replace("](docs/", "](")
    readme = _OUTSIDE.sub(lambda m: m.group(0) if not m.group(1).startswith(("benchmarks/", "notebooks/", "tests/"))
                          else f"] (`{m.group(1)}` in the repository)", readme)
    return markdown.replace("{{ README }}", readme)


_MEMBERS = re.compile(r"^\{\{ members ([\w.]+)((?: \w+)*) \}\}$", re.M)


def _exported(config, module: str) -> list[str]:
    """The public names a package's ``__init__.py`` re-exports (``from .x import a as a``, ``__all__``)."""
    import ast

    root = Path(config.config_file_path).parent
    tree = ast.parse((root / Path(*module.split(".")) / "__init__.py").read_text())
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:  # not "from . import submodule"
            names += [a.asname or a.name for a in node.names]
    return [n for n in dict.fromkeys(names) if not n.startswith("_")]


def ordered(names: list[str], first: list[str]) -> list[str]:
    """``first`` (in that order), then the other names in source order with UPPER_CASE constants last."""
    missing = [n for n in first if n not in names]
    if missing:
        raise ValueError(f"{{{{ members }}}} lists {missing}, which the package does not re-export")
    rest = [n for n in names if n not in first]
    return first + [n for n in rest if not n.isupper()] + [n for n in rest if n.isupper()]


def _expand_members(markdown, config):
    """``{{ members jaxattn.pkg a b }}`` -> one ``::: jaxattn.pkg.name`` block per re-exported name, a and b first."""
    def block(m):
        names = ordered(_exported(config, m.group(1)), m.group(2).split())
        return "\n\n".join(f"::: {m.group(1)}.{name}\n    options:\n      heading_level: 2" for name in names)

    return _MEMBERS.sub(block, markdown)
