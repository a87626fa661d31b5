"""Convert the Sphinx roles in jaxattn's docstrings to the docs site's markup (mkdocstrings/autorefs).

``python docs/scripts/convert_roles.py [--check]`` rewrites every ``:func:`x```, ``:class:``, ``:mod:``,
``:attr:``, ``:meth:``, ``:data:``, ``:obj:``, ``:exc:`` role in ``jaxattn/**/*.py``:

* to a cross-reference ``[`x`][identifier]`` when ``x`` names an object the site renders (the
  identifiers in the ``objects.inv`` of a fresh ``mkdocs build``; ``x`` is resolved like Python resolves
  it from the docstring's module: as written, then relative to the module and each package above it,
  aliases followed to the object they re-export), so the API pages link to it;
* to inline code ```x``` otherwise (Python's own objects, private helpers that have no page).

``~a.b.c`` is shown as ``c``, as Sphinx shows it. The conversion is idempotent: run it again after a
merge brings new docstrings. ``--check`` changes nothing and exits 1 if a role is left.
``tests/test_docs_names.py`` (``test_docstrings_have_no_sphinx_roles``) keeps the source free of them.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROLE = re.compile(r":(?:py:)?(func|class|mod|attr|meth|data|obj|exc):`([^`]+)`")


def rendered_identifiers() -> set[str]:
    """The identifiers the site renders: ``objects.inv`` of ``mkdocs build`` into a temporary folder."""
    with tempfile.TemporaryDirectory() as site:
        subprocess.run([sys.executable, "-m", "mkdocs", "build", "--quiet", "--site-dir", site], cwd=ROOT,
                       check=True, env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
        raw = (Path(site) / "objects.inv").read_bytes()
    body = zlib.decompress(raw.split(b"\n", 4)[4]).decode()
    return {line.split(" ", 1)[0] for line in body.splitlines() if " py:" in line}


def _griffe():
    import griffe

    return griffe.load("jaxattn", search_paths=[str(ROOT)], resolve_aliases=True, resolve_external=False)


def _member(pkg, path: str):
    obj = pkg
    try:
        for name in path.split(".")[1:]:
            obj = obj.members[name]
    except (KeyError, AttributeError):
        return None
    return obj


def _final(pkg, path: str) -> str | None:
    """The canonical path of the object ``path`` names (aliases followed), or None."""
    parts = path.split(".")
    if parts[0] != "jaxattn":
        return None
    obj = pkg
    try:
        for name in parts[1:]:
            obj = obj.get_member(name) if hasattr(obj, "get_member") else obj.members[name]
        while getattr(obj, "is_alias", False):
            obj = obj.final_target
    except Exception:  # noqa: BLE001 - any failure means: not resolvable
        return None
    return obj.path


def make_resolver(identifiers: set[str]):
    pkg = _griffe()
    canonical: dict[str, str] = {}
    public = lambda s: (sum(part.startswith("_") for part in s.split(".")), s.count("."), s)  # noqa: E731
    for ident in sorted(identifiers, key=public):  # prefer the shortest public path to an object
        final = _final(pkg, ident)
        if final is not None:
            canonical.setdefault(final, ident)

    def resolve(target: str, module: str) -> str | None:
        if target.startswith("."):  # relative to the module's package
            base = module.rsplit(".", 1)[0]
            while target.startswith(".."):
                base, target = base.rsplit(".", 1)[0], target[1:]
            target = f"{base}{target}"
        candidates = [target]
        if not target.startswith("jaxattn"):
            parts = module.split(".")
            mod = _member(pkg, module)
            classes = [c for c in getattr(mod, "members", {}).values()
                       if not getattr(c, "is_alias", True) and c.is_class]
            candidates += [f"{module}.{c.name}.{target}" for c in classes]  # a method named inside its class
            candidates += [".".join(parts[:i] + [target]) for i in range(len(parts), 0, -1)]
        for cand in candidates:
            final = _final(pkg, cand)
            if final is not None and final in canonical:
                return canonical[final]
        return next((cand for cand in candidates if cand in identifiers), None)

    return resolve


def convert(text: str, module: str, resolve) -> str:
    def sub(m: re.Match) -> str:
        target = m.group(2).strip()
        shown = target.lstrip("~!")
        if target.startswith("~"):
            shown = shown.rsplit(".", 1)[-1]
        ident = resolve(target.lstrip("~!").rstrip("()"), module)
        return f"[`{shown}`][{ident}]" if ident else f"`{shown}`"

    return ROLE.sub(sub, text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a role is left")
    args = parser.parse_args(argv)
    files = sorted((ROOT / "jaxattn").rglob("*.py"))
    left = {f: len(ROLE.findall(f.read_text())) for f in files}
    left = {f: k for f, k in left.items() if k}
    if args.check:
        for f, k in left.items():
            print(f"{f.relative_to(ROOT)}: {k} Sphinx roles")
        return 1 if left else 0
    if not left:
        print("no Sphinx roles left")
        return 0
    resolve = make_resolver(rendered_identifiers())
    linked = code = 0
    for f in left:
        module = ".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        text = f.read_text()
        new = convert(text, module, resolve)
        linked += new.count("][") - text.count("][")
        f.write_text(new)
    code = sum(left.values()) - linked
    print(f"converted {sum(left.values())} roles in {len(left)} files: {linked} cross-references, {code} inline code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
