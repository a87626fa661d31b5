"""The package's import rules (docs/architecture.md), checked on the source with ``ast``.

1. Layers: a module may import jaxattn code only from its own package or from a lower layer
   (fields -> solve -> analysis / spectral -> studies -> CLI). A lower layer importing a higher
   one makes every change to the higher one a change to the lower one.
2. Private names stay inside their package: no ``from jaxattn.pkg._module import ...`` and no
   ``from jaxattn.pkg.module import _name`` from another package. The top-level private modules
   ``_config``, ``_validate``, ``_special`` and ``_provenance`` are shared by every package by design.
3. The product cites the papers and its own docs, never research notes outside the repository.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jaxattn"

#: layer of each top-level part of jaxattn; a part may import parts of a strictly lower layer
LAYERS = {
    "_config": 0,
    "_validate": 0,
    "_version": 0,
    "_provenance": 0.5,  # above _version: records it
    "_special": 0.5,  # above _validate: kernel_coefficients uses its checks
    "manifolds": 0.75,  # above _validate (its checks); fields, solve, grad, analysis use the manifolds
    "fields": 1,
    "plot": 2,  # uses fields' coordinates (angles_of)
    "layers": 1,
    "solvers": 1.5,  # diffrax solvers (RKC2, cluster collapse): simulate picks among them
    "initial": 2,
    "solve": 2,
    "grad": 3,
    "analysis": 3,
    "io": 3,
    "spectral": 4,
    "studies": 5,
    "sentiment": 5,
    "_demo": 6,
    "cli": 6,
    "__init__": 7,
}
SHARED_PRIVATE = {"_config", "_validate", "_special", "_version", "_provenance"}


def _modules(package: Path):
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).with_suffix("")
        yield path, ("jaxattn",) + rel.parts


def _part(parts: tuple[str, ...]) -> str:
    """Top-level part of a dotted module path below jaxattn ('fields', 'solve', '__init__', ...)."""
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path, parts: tuple[str, ...]):
    """(imported module parts, imported names) for every jaxattn import in one file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = parts[:-1]  # the package a relative import starts from
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "jaxattn":
                    yield tuple(alias.name.split(".")), []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                mod = base + (tuple(node.module.split(".")) if node.module else ())
            elif node.module and node.module.split(".")[0] == "jaxattn":
                mod = tuple(node.module.split("."))
            else:
                continue
            names = [a.name for a in node.names]
            if not node.module:  # "from . import x": x are submodules
                for name in names:
                    yield mod + (name,), []
            else:
                yield mod, names


def _collect(package: Path = PACKAGE):
    layer_violations, private_violations, unknown = [], [], set()
    for path, parts in _modules(package):
        src = _part(parts)
        if src not in LAYERS:
            unknown.add(src)
            continue
        for mod, names in _imports(path, parts):
            dst = _part(mod)
            if dst not in LAYERS:
                unknown.add(dst)
                continue
            where = f"{path.relative_to(package.parent)} imports {'.'.join(mod)}"
            if dst != src and src != "__init__" and LAYERS[dst] >= LAYERS[src]:
                layer_violations.append(where)
            if dst != src and dst not in SHARED_PRIVATE:
                private_mods = [p for p in mod[2:] if p.startswith("_") and p != "__init__"]
                private_names = [n for n in names if n.startswith("_")]
                if private_mods or private_names:
                    private_violations.append(f"{where} ({', '.join(private_mods + private_names)})")
    return layer_violations, private_violations, unknown


def test_every_part_has_a_layer():
    _, _, unknown = _collect()
    assert not unknown, f"add these parts of jaxattn to LAYERS and docs/architecture.md: {sorted(unknown)}"


def test_lower_layers_never_import_higher_ones():
    layer_violations, _, _ = _collect()
    assert not layer_violations, "\n".join(layer_violations)


def test_private_names_stay_inside_their_package():
    _, private_violations, _ = _collect()
    assert not private_violations, "\n".join(private_violations)


def test_the_rules_detect_violations(tmp_path):
    """The checker itself can fail: a fields module importing solve's private module is reported twice."""
    fake = tmp_path / "jaxattn" / "fields"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("from ..solve._simulate import simulate\nfrom jaxattn.studies import sweep\n")
    layer_violations, private_violations, unknown = _collect(tmp_path / "jaxattn")
    assert len(layer_violations) == 2 and len(private_violations) == 1 and not unknown


OUTSIDE_CITATION = re.compile(r"\bdigests?\b|ecosystem report|research/seeds|\.\./shared|shared/research", re.I)


@pytest.mark.parametrize("folder", ["jaxattn", "notebooks"])
def test_no_citation_of_notes_outside_the_repository(folder):
    hits = []
    for path in sorted((ROOT / folder).rglob("*")):
        if path.suffix == ".py":
            lines = path.read_text().splitlines()
        elif path.suffix == ".ipynb":
            nb = json.loads(path.read_text())
            lines = ["".join(cell["source"]) for cell in nb["cells"]]
        else:
            continue
        hits += [f"{path.relative_to(ROOT)}: {line.strip()[:100]}" for line in lines if OUTSIDE_CITATION.search(line)]
    assert not hits, "cite the papers or docs/ instead of:\n" + "\n".join(hits)
