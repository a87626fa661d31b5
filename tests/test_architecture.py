"""The package's import rules (docs/architecture.md), checked on the source with ``ast``.

1. Layers: a module may import jaxattn code only from its own package or from a lower layer
   (fields -> solve -> analysis / io -> spectral / sweeps -> studies -> CLI). A lower layer importing a higher
   one makes every change to the higher one a change to the lower one.
2. Private names stay inside their package: no ``from jaxattn.pkg._module import ...`` and no
   ``from jaxattn.pkg.module import _name`` from another package. The top-level private modules
   ``_config``, ``_validate``, ``_special`` and ``_provenance`` are shared by every package by design.
3. The product cites the papers and its own docs, never research notes outside the repository.
4. One home per idea: a function is defined once (the sweep engine in ``sweeps``, the ensemble solves in
   ``solve``, the PDE adjoint in ``spectral``), and ``studies`` re-exports no library name, only its studies.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import types
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
    "sweeps": 4,
    "studies": 5,
    "sentiment": 5,
    "_demo": 5.5,  # the console commands of cli.py that need no study (demo, simulate, pde)
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


# ------------------------------------------------------------------ imports written as strings


#: an entry point written as a string, ``"jaxattn.module:attribute"``
ENTRY_POINT = re.compile(r"^jaxattn(?:\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")
#: a dotted jaxattn module path (the argument of ``importlib.import_module``)
MODULE_PATH = re.compile(r"^jaxattn(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _string_imports(tree: ast.AST):
    """Imports made at run time from strings: entry points such as ``"jaxattn.studies.cli:command"``
    anywhere, and the string argument of ``importlib.import_module(...)`` / ``import_module(...)``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and ENTRY_POINT.match(node.value):
            module, _, name = node.value.partition(":")
            yield tuple(module.split(".")), [name]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            value = node.args[0].value
            if func == "import_module" and isinstance(value, str) and MODULE_PATH.match(value):
                yield tuple(value.split(".")), []


def _imports(path: Path, parts: tuple[str, ...]):
    """(imported module parts, imported names) for every jaxattn import in one file, including the
    imports written as strings (:func:`_string_imports`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = parts[:-1]  # the package a relative import starts from
    yield from _string_imports(tree)
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


@pytest.mark.parametrize("folder", ["jaxattn", "tests", "notebooks"])
def test_no_citation_of_notes_outside_the_repository(folder):
    hits = citation_violations(_source_lines(folder), OUTSIDE_CITATION)
    assert not hits, "cite the papers or docs/ instead of:\n" + "\n".join(hits)


def test_string_imports_are_seen(tmp_path):
    """An import written as a string (an entry point, ``importlib.import_module``) obeys the same rules."""
    fake = tmp_path / "jaxattn" / "fields"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text('import importlib\nRUNNER = "jaxattn.studies._cli:command"\n'
                                 'MESSAGE = "jaxattn.simulate: not an import"\n'
                                 'importlib.import_module("jaxattn.solve._core")\n')
    layer_violations, private_violations, unknown = _collect(tmp_path / "jaxattn")
    assert len(layer_violations) == 2 and len(private_violations) == 2 and not unknown


# ------------------------------------------------------------------ abstract or final (equinox's rule)


def _package_classes() -> list[type]:
    """Every ``eqx.Module`` subclass defined in jaxattn (all modules imported)."""
    import pkgutil

    import equinox as eqx

    import jaxattn

    for info in pkgutil.walk_packages(jaxattn.__path__, "jaxattn."):
        importlib.import_module(info.name)
    seen, out = set(), []
    stack = list(eqx.Module.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] == "jaxattn":
            out.append(cls)
    return sorted(out, key=lambda c: (c.__module__, c.__qualname__))


def _is_abstract_member(value) -> bool:
    value = value.fget if isinstance(value, property) else value
    return bool(getattr(value, "__isabstractmethod__", False))


def abstract_final_violations(classes: list[type]) -> list[str]:
    """equinox's abstract/final pattern (https://docs.kidger.site/equinox/pattern/): a class that is
    subclassed is abstract (named ``Abstract*``); a class never overrides a concrete method (or
    property) of a jaxattn base class. Dunder methods that dataclasses generate are exempt."""
    defined = {cls for cls in classes}
    out = []
    for cls in classes:
        children = [c for c in cls.__subclasses__() if c in defined]
        if children and not cls.__name__.startswith("Abstract"):
            out.append(f"{cls.__module__}.{cls.__qualname__} is subclassed by "
                       f"{', '.join(c.__qualname__ for c in children)} but is not abstract (Abstract*)")
        for name, value in vars(cls).items():
            if name.startswith("__") and name != "__call__":
                continue
            if not (callable(value) or isinstance(value, property)):
                continue
            for base in cls.__mro__[1:]:
                if base in defined and name in vars(base):
                    if not _is_abstract_member(vars(base)[name]):
                        out.append(f"{cls.__module__}.{cls.__qualname__}.{name} overrides the concrete "
                                   f"{base.__qualname__}.{name}")
                    break
    return out


def test_every_module_class_is_abstract_or_final():
    violations = abstract_final_violations(_package_classes())
    assert not violations, "\n".join(violations)


def test_abstract_final_rule_can_fail():
    import abc

    import equinox as eqx

    class Base(eqx.Module):  # subclassed but not abstract
        def velocity(self):
            return 1

    class Child(Base):  # overrides a concrete method
        def velocity(self):
            return 2

    class AbstractOk(eqx.Module):
        @abc.abstractmethod
        def velocity(self): ...

    class Ok(AbstractOk):
        def velocity(self):
            return 3

    violations = abstract_final_violations([Base, Child, AbstractOk, Ok])
    assert len(violations) == 2 and all("Base" in v or "Child" in v for v in violations)


# ------------------------------------------------------------------ re-exports


def reexport_form_violations(path: Path) -> list[str]:
    """In a package ``__init__.py`` every name imported from a module is re-exported in the
    ``from .module import name as name`` form (PEP 484's explicit re-export); ``from . import sub``
    of a submodule is allowed as it is."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("jaxattn")):
            if node.level and not node.module:
                continue  # from . import submodule
            for alias in node.names:
                if alias.name != "*" and alias.asname != alias.name and not alias.name.startswith("_"):
                    if alias.name == "__version__":
                        continue
                    out.append(f"{path.relative_to(path.parents[2] if path.parent != PACKAGE else ROOT)}: "
                               f"from {'.' * node.level}{node.module or ''} import {alias.name} "
                               f"(write `{alias.name} as {alias.name}`)")
    return out


def test_reexports_use_the_x_as_x_form():
    violations = [v for path in sorted(PACKAGE.rglob("__init__.py")) for v in reexport_form_violations(path)]
    assert not violations, "\n".join(violations)


def test_reexport_form_rule_can_fail(tmp_path):
    pkg = tmp_path / "jaxattn" / "fields"
    pkg.mkdir(parents=True)
    init = pkg / "__init__.py"
    init.write_text("from . import circle\nfrom .circle import A as A\nfrom .circle import B\n")
    assert len(reexport_form_violations(init)) == 1


def foreign_reexports(package_name: str) -> list[str]:
    """Names a top-level sub-package's ``__init__`` re-exports from ANOTHER top-level sub-package:
    each public name has one home (its package; the top-level ``jaxattn`` namespace re-exports the
    entry points)."""
    init = PACKAGE.joinpath(*package_name.split(".")[1:], "__init__.py")
    module = importlib.import_module(package_name)
    home = package_name.split(".")[1]
    tree = ast.parse(init.read_text(), filename=str(init))
    out = []
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom):
            continue
        for alias in node.names:
            name = alias.asname or alias.name
            obj = getattr(module, name, None)
            origin = getattr(obj, "__module__", None)
            if name.startswith("_") or inspect.ismodule(obj) or not isinstance(origin, str):
                continue
            parts = origin.split(".")
            # a shared private module (_special, ...) has no public home of its own: its names live where
            # they are re-exported
            if parts[0] == "jaxattn" and len(parts) > 1 and parts[1] != home and not parts[1].startswith("_"):
                out.append(f"{package_name}.{name} re-exports {origin}.{getattr(obj, '__qualname__', name)}")
    return out


def _subpackages() -> list[str]:
    return sorted(f"jaxattn.{p.name}" for p in PACKAGE.iterdir()
                  if (p / "__init__.py").exists() and not p.name.startswith("_"))


@pytest.mark.parametrize("package_name", _subpackages())
def test_one_public_path_per_name(package_name):
    violations = foreign_reexports(package_name)
    assert not violations, "import these from their home package instead:\n" + "\n".join(violations)


# ------------------------------------------------------------------ what the sources cite

#: a tracker number ("issue 12", "issues 3-4", "task 7"): a reader of the package cannot open the tracker
TRACKER_NUMBER = re.compile(r"\b(?:issues?|tasks?)\s*#?\s*\d+", re.I)
#: the files that define these patterns (they name what they forbid)
CHECKERS = {"tests/test_architecture.py", "tests/test_docs_names.py"}


def _source_lines(folder: str):
    for path in sorted((ROOT / folder).rglob("*")):
        rel = str(path.relative_to(ROOT))
        if rel in CHECKERS:
            continue
        if path.suffix == ".py":
            lines = path.read_text().splitlines()
        elif path.suffix == ".ipynb":
            nb = json.loads(path.read_text())
            lines = ["".join(cell["source"]) for cell in nb["cells"]]
        else:
            continue
        yield from ((rel, line) for line in lines)


def citation_violations(lines, pattern: re.Pattern) -> list[str]:
    return [f"{rel}: {line.strip()[:100]}" for rel, line in lines if pattern.search(line)]


@pytest.mark.parametrize("folder", ["jaxattn", "tests", "notebooks"])
def test_no_tracker_numbers(folder):
    hits = citation_violations(_source_lines(folder), TRACKER_NUMBER)
    assert not hits, "say what the code does and cite papers or docs/, not the tracker:\n" + "\n".join(hits)


def test_citation_rules_can_fail():
    lines = [("x.py", "# the work-precision study of issue 12"), ("y.py", "# the digest's bound"),
             ("z.py", "# Geshkovski et al. 2023, eq. (2.6)")]
    assert len(citation_violations(lines, TRACKER_NUMBER)) == 1
    assert len(citation_violations(lines, OUTSIDE_CITATION)) == 1


#: an absolute path of a local machine in stored notebook output
LOCAL_PATH = re.compile(r"(?:/work/|/root/|/home/[A-Za-z]|/Users/[A-Za-z]|/tmp/|[A-Z]:\\\\Users)")


def notebook_path_violations(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    out = []
    for i, cell in enumerate(nb["cells"]):
        text = json.dumps(cell.get("outputs", [])) + json.dumps(cell.get("metadata", {}))
        for match in LOCAL_PATH.finditer(text):
            out.append(f"{path.name} cell {i}: ...{text[max(0, match.start() - 40):match.end() + 40]}...")
    return out


def test_notebook_outputs_hold_no_local_paths(tmp_path):
    violations = [v for path in sorted((ROOT / "notebooks").glob("*.ipynb")) for v in notebook_path_violations(path)]
    assert not violations, "strip local absolute paths from stored outputs:\n" + "\n".join(violations)
    bad = tmp_path / "bad.ipynb"
    bad.write_text(json.dumps({"cells": [{"cell_type": "code", "source": [], "metadata": {},
                                          "outputs": [{"text": "/work/main/jaxattn/solve.py:3: Warning"}]}]}))
    assert len(notebook_path_violations(bad)) == 1


#: function name -> the package that holds its one definition
HOMES = {
    "solve_global_ensemble": "solve",
    "solve_ensemble": "solve",
    "run_sweep": "sweeps",
    "function_identity": "sweeps",
    "claim": "sweeps",
    "merge_points": "sweeps",
    "circle_pde_value_and_grad": "spectral",
    "euler_renormalise": "studies",
}


def _definitions(package: Path = PACKAGE) -> dict[str, list[str]]:
    """Function name -> the modules (paths relative to the package's parent) that define it at any depth."""
    out: dict[str, list[str]] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.setdefault(node.name, []).append(str(path.relative_to(package.parent)))
    return out


def _home_problems(package: Path = PACKAGE) -> list[str]:
    defs = _definitions(package)
    problems = []
    for name, home in HOMES.items():
        where = defs.get(name, [])
        if len(where) != 1 or not where[0].startswith(f"jaxattn/{home}/"):
            problems.append(f"{name} must be defined once, in jaxattn/{home}/: defined in {where}")
    return problems


def test_each_moved_function_has_one_definition_in_its_package():
    assert not _home_problems(), "\n".join(_home_problems())


def test_the_home_rule_detects_a_second_copy(tmp_path):
    """The checker can fail: a copy of solve_global_ensemble in a study is reported."""
    fake = tmp_path / "jaxattn"
    for part, text in [("solve/_simulate.py", "def solve_global_ensemble(): ...\n"),
                       ("studies/sweep.py", "def solve_global_ensemble(): ...\n")]:
        (fake / part).parent.mkdir(parents=True, exist_ok=True)
        (fake / part).write_text(text)
    assert any(p.startswith("solve_global_ensemble") for p in _home_problems(fake))


def _public(module) -> dict[str, object]:
    """The public names of ``module`` (its ``__all__``, else its names without a leading underscore), less
    third-party modules (the test run's jaxtyping import hook puts ``jaxtyping`` into every module)."""
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    values = {n: getattr(module, n) for n in names}
    return {n: v for n, v in values.items()
            if not (isinstance(v, types.ModuleType) and not v.__name__.startswith("jaxattn"))}


def test_studies_exports_only_its_studies_and_no_library_name():
    """``jaxattn.studies`` holds only study modules; sweeps/spectral names are not re-exported by solve or grad."""
    studies = importlib.import_module("jaxattn.studies")
    exported = _public(studies)
    not_studies = [n for n, v in exported.items()
                   if not (isinstance(v, types.ModuleType) and v.__name__ == f"jaxattn.studies.{n}")]
    assert not not_studies, f"jaxattn.studies re-exports library names: {not_studies}"
    library = set()
    for name in ("jaxattn.solve", "jaxattn.grad", "jaxattn.sweeps", "jaxattn.spectral"):
        library |= set(_public(importlib.import_module(name)))
    for name in ("gradients", "paper_002", "paper_003", "figures"):
        module = importlib.import_module(f"jaxattn.studies.{name}")
        again = sorted(n for n in getattr(module, "__all__", []) if n in library)
        assert not again, f"jaxattn.studies.{name}.__all__ re-exports {again}"
    sweeps = importlib.import_module("jaxattn.sweeps")
    assert not set(_public(sweeps)) & set(_public(importlib.import_module("jaxattn.solve")))
    spectral = importlib.import_module("jaxattn.spectral")
    assert spectral.circle_pde_value_and_grad.__module__ == "jaxattn.spectral.gradients"
