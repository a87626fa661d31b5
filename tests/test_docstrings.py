"""Every public function, class and method has a structured docstring (the diffrax style), so that the
API pages say what each argument is and what comes back:

* a summary line (then the equation it implements and the paper it comes from, which this test cannot
  judge);
* ``**Arguments:**`` with one bullet per argument of the signature (``- `name`: ...``; ``self`` and
  ``cls`` excepted) whenever the callable takes arguments; a class lists its constructor's arguments
  under ``**Arguments:**`` (or ``**Attributes:**`` for a result users read rather than build);
* ``**Returns:**`` whenever it returns something other than None (the return annotation says so, or,
  without one, a ``return value`` in its body);
* ``**Raises:**`` whenever its body raises an exception itself;
* no raw ``<a, b>`` outside code spans, which Markdown would swallow as an HTML tag (inner products are
  written ⟨x_i, x_j⟩), and no accidental emphasis: asterisks of maths (``t*``, ``(*batch, n, d)``) belong
  in code spans, or Markdown italicises the text between two of them (checked where the docs extra
  provides ``markdown``).

Public means: a name without a leading underscore that a package ``__init__`` re-exports, or that a public
module (no underscore in its dotted path) defines, plus the shared argument rules of ``jaxattn._validate``
and ``jaxattn.analysis._checks``. ``MODULES`` lists the modules covered so far.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap

import pytest

#: the modules whose public callables follow the rule (the rest of the package is converted next)
MODULES = [
    "jaxattn.solve._core",
    "jaxattn.solve._ensemble",
    "jaxattn.solve._failure",
    "jaxattn.solve._guard",
    "jaxattn.solve._observe",
    "jaxattn.solve._retract",
    "jaxattn.solve._simulate",
    "jaxattn.solve._trajectory",
    "jaxattn.manifolds",
    "jaxattn.grad",
    "jaxattn._validate",
    "jaxattn.initial",
    "jaxattn.layers.hardmax",
    "jaxattn.layers.polytope",
    "jaxattn.plot",
    "jaxattn.io.trajectory",
    "jaxattn.io.cf",
    "jaxattn.io.netcdf",
    "jaxattn.io.safetensors",
    "jaxattn.sweeps.claims",
    "jaxattn.sweeps.engine",
    "jaxattn.sweeps.identity",
    "jaxattn.sweeps.storage",
    "jaxattn.fields._base",
    "jaxattn.fields.sphere",
    "jaxattn.fields.circle",
    "jaxattn.fields.euclidean",
    "jaxattn.fields.gram",
    "jaxattn.fields._attention",
    "jaxattn.fields._fourier",
    "jaxattn.fields._harmonics",
    "jaxattn.fields.clusters",
    "jaxattn.fields.decay",
    "jaxattn.fields.gaussian",
    "jaxattn.fields.noisy",
    "jaxattn.fields.normalised",
    "jaxattn.fields.random_weights",
    "jaxattn.solvers._choice",
    "jaxattn.solvers._collapse",
    "jaxattn.solvers._delegating",
    "jaxattn.solvers._rkc",
    "jaxattn.analysis.attention",
    "jaxattn.analysis.clusters",
    "jaxattn.analysis.energy",
    "jaxattn.analysis._checks",
    "jaxattn.analysis.metastable",
    "jaxattn.analysis.observables",
    "jaxattn.analysis.gamma",
    "jaxattn.analysis.equiangular",
    "jaxattn.analysis.long_context",
    "jaxattn.analysis.lost_in_middle",
    "jaxattn.analysis.sinkhorn",
    "jaxattn.analysis.staircase",
    "jaxattn.analysis.renyi",
    "jaxattn.spectral._base",
    "jaxattn.spectral._gegenbauer",
    "jaxattn.spectral.linear",
    "jaxattn.spectral.circle",
    "jaxattn.spectral.sphere",
    "jaxattn.spectral.zonal",
    "jaxattn.spectral.bridge",
    "jaxattn.spectral.noisy",
    "jaxattn.spectral.gradients",
    "jaxattn.sentiment.model",
    "jaxattn.sentiment.data",
    "jaxattn.sentiment.analysis",
    "jaxattn.sentiment.cli",
    "jaxattn.sentiment.plots",
    "jaxattn.sentiment.training",
    "jaxattn.studies.cli",
    "jaxattn.studies.euler",
    "jaxattn.studies.paper_000",
    "jaxattn.studies.paper_002.circle",
    "jaxattn.studies.paper_002.euler",
    "jaxattn.studies.paper_002.phase_diagrams",
    "jaxattn.studies.paper_002.repulsion",
    "jaxattn.studies.paper_002.saddles",
    "jaxattn.studies.paper_002.small_beta",
    "jaxattn.studies.paper_002.wendel",
    "jaxattn.studies.normalisation",
    "jaxattn.studies.field_models",
    "jaxattn.studies.gradients",
    "jaxattn.studies.paper_001",
    "jaxattn.studies.paper_003",
    "jaxattn.studies.paper_004",
    "jaxattn.studies.figures",
    "jaxattn.cli",
]
#: private modules whose unprefixed names are public rules all the same
RULE_MODULES = {"jaxattn._validate", "jaxattn.analysis._checks"}

CODE_SPAN = re.compile(r"``.*?``|`[^`\n]*`", re.S)
RAW_HTML = re.compile(r"<[A-Za-z\\][^<>\n`]*>")
SECTION = re.compile(r"^\*\*(Arguments|Attributes|Returns|Raises|Yields):\*\*\s*$", re.M)
BULLET = re.compile(r"^\s*- (.*?):", re.M)
NAME = re.compile(r"`(\**\w+)`")


def _is_public_module(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("."))


def _public(module_name: str) -> list[tuple[str, object]]:
    """The public functions and classes a module defines (see the module docstring)."""
    module = importlib.import_module(module_name)
    package = importlib.import_module(module_name.rpartition(".")[0])
    found = []
    for name, obj in vars(module).items():
        if name.startswith("_") or not (inspect.isclass(obj) or callable(obj)):
            continue
        target = inspect.unwrap(obj) if hasattr(obj, "__wrapped__") else obj
        if getattr(target, "__module__", None) != module_name:
            continue  # imported from elsewhere
        exported = getattr(package, name, None) is obj
        if exported or _is_public_module(module_name) or module_name in RULE_MODULES:
            found.append((f"{module_name}.{name}", obj))
    return found


def _sections(doc: str) -> dict[str, str]:
    """``{"Arguments": text, "Returns": text, ...}`` of a docstring."""
    parts = SECTION.split(doc)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _listed(section: str) -> set[str]:
    """The names in backticks before the colon of each bullet of a section."""
    return {n.lstrip("*") for bullet in BULLET.findall(section) for n in NAME.findall(bullet)}


def _body(func) -> list[ast.stmt] | None:
    """The statements of a function's own body (nested functions and classes excluded), or None."""
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return None
    tree = ast.parse(source)
    node = next((n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
    if node is None:
        return None
    own = []
    stack = list(node.body)
    while stack:
        stmt = stack.pop()
        own.append(stmt)
        for child in ast.iter_child_nodes(stmt):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                stack.append(child)
    return own


def _returns_value(func, signature: inspect.Signature) -> bool:
    annotation = signature.return_annotation
    if annotation in (None, "None"):
        return False
    if annotation is not inspect.Signature.empty:
        return True
    body = _body(func) or []
    return any(isinstance(n, ast.Return) and n.value is not None and not (
        isinstance(n.value, ast.Constant) and n.value.value is None) for n in body)


def _raises(func) -> bool:
    return any(isinstance(n, ast.Raise) for n in (_body(func) or []))


def _problems_of_callable(label: str, func, doc: str | None, skip_first: bool) -> list[str]:
    if not doc:
        return [f"{label}: no docstring"]
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return []
    params = [p.name for p in signature.parameters.values()]
    if skip_first and params and params[0] in ("self", "cls"):
        params = params[1:]
    sections = _sections(doc)
    problems = []
    if params:
        if "Arguments" not in sections:
            problems.append(f"{label}: takes {params} but has no **Arguments:** section")
        else:
            missing = [p for p in params if p not in _listed(sections["Arguments"])]
            if missing:
                problems.append(f"{label}: **Arguments:** has no bullet for {missing}")
    if _returns_value(func, signature) and "Returns" not in sections and "Yields" not in sections:
        problems.append(f"{label}: returns a value but has no **Returns:** section")
    if _raises(func) and "Raises" not in sections:
        problems.append(f"{label}: raises but has no **Raises:** section")
    return problems


def _problems_of_class(label: str, cls) -> list[str]:
    doc = cls.__doc__ and inspect.cleandoc(cls.__doc__)
    if not doc:
        return [f"{label}: no docstring"]
    problems = []
    abstract = inspect.isabstract(cls) or cls.__name__.startswith("Abstract")
    own_init = any("__init__" in vars(k) for k in cls.__mro__ if k.__module__.startswith("jaxattn"))
    dataclass_like = hasattr(cls, "__dataclass_fields__") or hasattr(cls, "_fields")
    if not abstract and (own_init or dataclass_like) and not issubclass(cls, BaseException):
        try:
            params = [p for p in inspect.signature(cls).parameters]
        except (TypeError, ValueError):
            params = []
        init = vars(cls).get("__init__")
        init_doc = inspect.getdoc(init) if init is not None and init.__doc__ else ""
        sections = {**_sections(doc), **_sections(init_doc or "")}
        for base in cls.__mro__[1:]:  # "the arguments of [`AbstractBase`][...]": the base's constructor's too
            if base.__module__.startswith("jaxattn") and f"`{base.__name__}`" in doc and base.__doc__:
                base_sections = _sections(inspect.cleandoc(base.__doc__))  # a result's base lists Attributes
                inherited = base_sections.get("Arguments", "") + base_sections.get("Attributes", "")
                if inherited:
                    sections["Arguments"] = sections.get("Arguments", "") + inherited
                    break
        listed = _listed(sections.get("Arguments", "") + sections.get("Attributes", ""))
        if params and not ({"Arguments", "Attributes"} & sections.keys()):
            problems.append(f"{label}: the constructor takes {params} but the class has no **Arguments:** section")
        elif params:
            missing = [p for p in params if p not in listed]
            if missing:
                problems.append(f"{label}: **Arguments:** has no bullet for {missing}")
    fields = getattr(cls, "__dataclass_fields__", {})
    for name, member in vars(cls).items():
        if (name.startswith("_") and name != "__call__") or name in fields:
            continue  # private, or a field's default value
        where = f"{label}.{name}"
        if isinstance(member, property):
            if not inspect.getdoc(getattr(cls, name)):
                problems.append(f"{where}: property without a docstring")
            continue
        if isinstance(member, (classmethod, staticmethod)):
            func = getattr(cls, name)
            problems += _problems_of_callable(where, func, inspect.getdoc(func), skip_first=False)
            continue
        if not inspect.isfunction(member):
            continue  # class variables, dataclass fields, NamedTuple accessors
        problems += _problems_of_callable(where, member, _method_doc(cls, name, member), skip_first=True)
    return problems


def _method_doc(cls, name: str, member) -> str | None:
    """A method's docstring; one without sections that implements a method of a jaxattn base class is
    documented by the base's sections (one line such as "As the base's ``step``, with ..." suffices, as
    in diffrax, instead of a copy of the base's argument list)."""
    doc = inspect.getdoc(member)
    if doc and _sections(doc):
        return doc
    for base in cls.__mro__[1:]:
        inherited = vars(base).get(name)
        if inherited is not None and base.__module__.startswith("jaxattn") and inherited.__doc__:
            base_doc = inspect.cleandoc(inherited.__doc__)
            if _sections(base_doc):
                return (doc or "") + "\n\n" + base_doc
    return doc


def _raw_html(module_name: str) -> list[str]:
    """``<a, b>`` outside code spans in the docstrings of a module's source."""
    module = importlib.import_module(module_name)
    tree = ast.parse(inspect.getsource(module))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            for hit in RAW_HTML.findall(CODE_SPAN.sub("", doc or "")):
                where = getattr(node, "name", module_name)
                problems.append(f"{module_name}.{where}: {hit!r} renders as an HTML tag; write ⟨...⟩ or a code span")
    return problems


def _problems(module_name: str) -> list[str]:
    problems = _raw_html(module_name)
    for label, obj in _public(module_name):
        if inspect.isclass(obj):
            problems += _problems_of_class(label, obj)
        else:
            func = inspect.unwrap(obj) if hasattr(obj, "__wrapped__") else obj
            problems += _problems_of_callable(label, func, inspect.getdoc(func), skip_first=False)
    return problems


#: what intended emphasis looks like: words (``*every*``); anything else between two asterisks is maths
WORDS = re.compile(r"^\w[\w\s\-']*$")


def _accidental_emphasis(module_name: str) -> list[str]:
    """Italic runs of the rendered docstrings of a module that are not words (asterisks of maths)."""
    markdown = pytest.importorskip("markdown")
    tree = ast.parse(inspect.getsource(importlib.import_module(module_name)))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            html = markdown.markdown(doc or "", extensions=["admonition", "tables"])
            for hit in re.findall(r"<em>(.*?)</em>", html, re.S):
                if not WORDS.match(hit):
                    where = getattr(node, "name", module_name)
                    problems.append(f"{module_name}.{where}: *{hit}* renders in italics; put the maths in a code span")
    return problems


@pytest.mark.parametrize("module_name", MODULES)
def test_docstrings_render_without_accidental_emphasis(module_name):
    problems = _accidental_emphasis(module_name)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("module_name", MODULES)
def test_public_callables_have_structured_docstrings(module_name):
    problems = _problems(module_name)
    assert not problems, "\n".join(problems)


def test_the_rule_catches_a_missing_section():
    """The checker itself: an argument without a bullet, a value without **Returns:**, a raise without
    **Raises:** are each reported; a complete docstring passes."""

    def complete(x: int, *, scale: float = 1.0) -> float:
        """Scale x.

        **Arguments:**

        - `x`: an integer.
        - `scale`: a factor.

        **Returns:**

        x times scale.

        **Raises:**

        - `ValueError`: never.
        """
        if x is None:
            raise ValueError("x")
        return x * scale

    def incomplete(x: int, y: int):
        """Add.

        **Arguments:**

        - `x`: an integer.
        """
        if y is None:
            raise ValueError("y")
        return x + y

    assert _problems_of_callable("complete", complete, inspect.getdoc(complete), skip_first=False) == []
    problems = _problems_of_callable("incomplete", incomplete, inspect.getdoc(incomplete), skip_first=False)
    assert len(problems) == 3, problems
    assert "['y']" in problems[0] and "**Returns:**" in problems[1] and "**Raises:**" in problems[2]
    # an inner product in angle brackets is an HTML tag to Markdown, unless in a code span or ⟨...⟩
    assert RAW_HTML.findall(CODE_SPAN.sub("", "P_x y = y - <x, y> x")) == ["<x, y>"]
    assert not RAW_HTML.findall(CODE_SPAN.sub("", "``y - <x, y> x``, ⟨x, y⟩, 0 < t <= 1"))
    assert WORDS.match("every") and not WORDS.match("(beta) with gamma_beta(t")


def test_an_implementing_method_is_documented_by_its_base():
    """A method without sections that implements a documented method of a jaxattn base class takes the
    base's sections; without such a base it is reported."""

    class Base:
        """A base."""

        def step(self, x: int) -> int:
            """One step.

            **Arguments:**

            - `x`: the state.

            **Returns:**

            The next state.
            """
            raise NotImplementedError

    class Undocumented:
        """A base without sections."""

        def step(self, x: int) -> int:
            """One step."""
            return x

    class Child(Base):
        """A child."""

        def step(self, x: int) -> int:
            """As the base's ``step``, doubled."""
            return 2 * x

    class Orphan(Undocumented):
        """An orphan."""

        def step(self, x: int) -> int:
            """As the base's ``step``, doubled."""
            return 2 * x

    for cls in (Base, Undocumented, Child, Orphan):
        cls.__module__ = "jaxattn.example"
    assert _problems_of_class("Child", Child) == []
    assert any("no **Arguments:**" in p for p in _problems_of_class("Orphan", Orphan))
