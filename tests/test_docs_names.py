"""Every name the README and docs/ use still works, and they cite only what a reader can open.

The pages are read as a user reads them: names are taken from inline code spans and fenced code
blocks of README.md and docs/*.md, and each one is looked up the way Python would
(``importlib.import_module`` of the longest module prefix, then ``getattr`` for the rest):

* every dotted name ``jaxattn.a.b`` anywhere in code;
* every ``from jaxattn... import a, b as c`` and ``import jaxattn.x`` (in code blocks and spans);
* dotted names whose head is an alias bound by such an import on the same page (``sp.solve_circle``
  after ``from jaxattn import spectral as sp``), and, in inline spans, dotted names whose head is
  the short name of a public jaxattn module (``renyi.renyi_centres``, ``paper_002.phase_diagram``,
  ``studies.gradients.fit``): the pages use those in tables after naming the package once;
* bare names continuing a list of spans after a qualified one ("`renyi.tau_star`, `tau_star_table`",
  "`jaxattn.initial`: `uniform_sphere`, ...") are read in that module;
* repository paths in code spans (``benchmarks/x.py``, ``tests/test_x.py``, ``notebooks/x.ipynb``),
  ``python -m benchmarks.x`` modules and relative Markdown links must exist.

The numbers the pages print for ``sp.growth_rates`` / ``sp.dominant_mode`` are checked against SciPy's
Bessel functions. Every Python block of README and docs/ (the README tour included) is executed as
written in a slow test: they compile many solves, about 4.5 CPU-minutes together on one loaded core
(the tour alone ~110 s), too long for the default run.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import textwrap
from pathlib import Path

import pytest

import jaxattn

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CITED_PAGES = [*PAGES, ROOT / "benchmarks" / "README.md"]

FENCE = re.compile(r"^[ \t]*```(\w*)[^\n]*\n(.*?)^[ \t]*```", re.M | re.S)
SPAN = re.compile(r"`([^`\n]+)`")
IDENT = r"[A-Za-z_]\w*"
FULL_NAME = re.compile(rf"(?<![\w./]){IDENT}(?:\.{IDENT})+")
FROM_IMPORT = re.compile(r"\bfrom\s+(jaxattn[\w.]*)\s+import\s+(\([^)]*\)|[^\n#]+)")
PLAIN_IMPORT = re.compile(r"^\s*import\s+([^\n#]+)", re.M)
FILE_SUFFIXES = {"py", "md", "ipynb", "nc", "json", "png", "gif", "csv", "eqx", "toml", "txt"}
PATH = re.compile(r"^(?:benchmarks|tests|notebooks|docs|jaxattn)/[\w./-]*$")
RUN_MODULE = re.compile(r"python -m (benchmarks(?:\.\w+)?)")
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
SEPARATOR = re.compile(r"\s*(?:[,/:↔]|\band\b|\bor\b)?\s*(?:\band\b|\bor\b)?\s*")
BARE = re.compile(rf"^({IDENT})(?:\(.*\))?$")


def _code(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(fenced blocks as (language, body), inline code spans outside them) of a Markdown page."""
    blocks = [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]
    prose = FENCE.sub("", text)
    return blocks, SPAN.findall(prose)


def _imports(code: str) -> tuple[list[str], dict[str, str]]:
    """(dotted names imported, alias -> dotted name) of the jaxattn imports in a piece of code."""
    names, aliases = [], {}
    for module, what in FROM_IMPORT.findall(code):
        for item in what.strip("() \n").replace("\n", " ").split(","):
            item = item.strip()
            if not item:
                continue
            name, _, alias = item.partition(" as ")
            full = f"{module}.{name.strip()}"
            names.append(full)
            aliases[(alias or name).strip()] = full
    for line in PLAIN_IMPORT.findall(code):
        for item in line.split(","):
            name, _, alias = item.strip().partition(" as ")
            name = name.strip()
            if name.split(".")[0] == "jaxattn":
                names.append(name)
                alias = alias.strip()
                aliases[alias or "jaxattn"] = name if alias else "jaxattn"
    return names, aliases


def _public_modules() -> dict[str, list[str]]:
    """Short name -> dotted names of the public jaxattn modules ending in it ('renyi' -> [...])."""
    found: dict[str, list[str]] = {"jaxattn": ["jaxattn"]}
    for info in pkgutil.walk_packages(jaxattn.__path__, "jaxattn."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts):
            continue
        for i in range(1, len(parts)):
            found.setdefault(parts[i], []).append(info.name)
    return found


def resolve(dotted: str):
    """The object a dotted name denotes: import the longest module prefix, getattr the rest."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i])
        try:
            obj = importlib.import_module(prefix)
        except ModuleNotFoundError as error:
            if error.name is not None and not prefix.startswith(error.name):
                raise  # a dependency missing inside the module: reported as broken, with its name
            continue
        break
    else:
        raise ModuleNotFoundError(f"no module named {parts[0]!r}")
    for part in parts[i:]:
        obj = getattr(obj, part)
    return obj


def _strip_suffix(name: str) -> str:
    head, _, last = name.rpartition(".")
    return head if last in FILE_SUFFIXES else name


def names_used(page: Path) -> list[tuple[str, list[str]]]:
    """(name as written, candidate dotted names) of every jaxattn name used on a page."""
    blocks, spans = _code(page.read_text())
    python = [body for lang, body in blocks if lang in ("python", "py", "")]
    imported, aliases = [], {}
    for code in [*python, *spans]:
        n, a = _imports(code)
        imported += n
        aliases.update(a)
    modules = _public_modules()
    used = [(n, [n]) for n in imported]
    used += _lists(FENCE.sub("", page.read_text()), aliases, modules)
    for code, in_span in [(b, False) for b in python] + [(s, True) for s in spans]:
        for name in map(_strip_suffix, FULL_NAME.findall(code)):
            head, _, rest = name.partition(".")
            if not rest:
                continue
            if head == "jaxattn":
                used.append((name, [name]))
            elif head in aliases:
                used.append((name, [f"{aliases[head]}.{rest}"]))
            elif in_span and head in modules:
                used.append((name, [f"{m}.{rest}" for m in modules[head]]))
    return used


def _lists(spans_text: str, aliases: dict[str, str], modules: dict[str, list[str]]):
    """Bare names continuing a list after a qualified one: `renyi.renyi_centres`, `tau_star` -> renyi.tau_star.

    Spans separated only by ',', '/', ':', 'and' or 'or' form a list; a span naming a module (``jaxattn.io``)
    or an attribute of one (``paper_002.wendel_probability``) sets the module the following bare names
    (``hemisphere_margin``) are read in, as a reader reads them.
    """
    used = []
    context: list[str] = []
    previous_end = None
    for m in SPAN.finditer(spans_text):
        if previous_end is None or not SEPARATOR.fullmatch(spans_text[previous_end : m.start()]):
            context = []
        previous_end = m.end()
        span = m.group(1).strip()
        bare = BARE.match(span)
        dotted = FULL_NAME.match(span)
        if dotted and dotted.end() == len(span.split("(")[0]):
            name = _strip_suffix(dotted.group(0))
            head, _, rest = name.partition(".")
            full = [name] if head == "jaxattn" else [f"{aliases[head]}.{rest}"] if head in aliases else [
                f"{mod}.{rest}" for mod in modules.get(head, [])]
            context = []
            for candidate in full:
                try:
                    obj = resolve(candidate)
                except (ImportError, AttributeError):
                    continue
                if inspect.ismodule(obj):  # its attributes, or its sibling modules (`paper_001` / `paper_002`)
                    context += [candidate, candidate.rpartition(".")[0]]
                else:
                    context.append(candidate.rpartition(".")[0])
        elif bare and context:
            used.append((span, [f"{c}.{bare.group(1)}" for c in context]))
        else:
            context = []
    return used


def _resolves(candidates: list[str]) -> bool:
    for candidate in candidates:
        try:
            resolve(candidate)
            return True
        except (ImportError, AttributeError):
            pass
    return False


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_name_on_the_page_resolves(page):
    broken = sorted({name for name, candidates in names_used(page) if not _resolves(candidates)})
    assert not broken, f"{page.relative_to(ROOT)} uses names that no longer exist: {broken}"


def test_the_pages_use_many_names_and_the_check_rejects_wrong_ones():
    """The extractor finds the names (it cannot silently find none) and a moved name fails."""
    readme = {name for name, _ in names_used(ROOT / "README.md")}
    assert {"jaxattn.simulate", "jaxattn.analysis.count_clusters", "jaxattn.value_and_grad_of"} <= readme
    total = sum(len(names_used(page)) for page in PAGES)
    assert total > 150, total
    for moved in ["jaxattn.observables.count_clusters", "jaxattn.spectral._bessel.ive", "jaxattn.io.plot_value_spectra"]:
        assert not _resolves([moved])
    assert resolve("jaxattn.analysis.count_clusters") is jaxattn.analysis.count_clusters
    blocks, spans = _code("text `renyi.tau_star` and\n\n```python\nfrom jaxattn import spectral as sp, grad\n"
                          "sp.nothing_here\n```\n")
    assert spans == ["renyi.tau_star"] and _imports(blocks[0][1])[1]["sp"] == "jaxattn.spectral"
    listed = _lists("`jaxattn.initial`: `uniform_sphere`, `no_such_initial` and `perturb` (`ignored`)", {}, {})
    assert [(name, _resolves(c)) for name, c in listed] == [
        ("uniform_sphere", True), ("no_such_initial", False), ("perturb", True)]


def _paths(page: Path) -> list[str]:
    blocks, spans = _code(page.read_text())
    text = page.read_text()
    out = [s for s in spans if PATH.match(s.split("::")[0]) and not set(s) & set("{}*<>")]
    out += [m.replace(".", "/") + ".py" if "." in m else m for m in RUN_MODULE.findall(text)]
    return out


@pytest.mark.parametrize("page", CITED_PAGES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_file_and_link_on_the_page_exists(page):
    missing = []
    for path in _paths(page):
        file, _, test = path.partition("::")  # tests/test_x.py::test_name names a test function
        if not (ROOT / file).exists() or test and not re.search(rf"^def {test}\(", (ROOT / file).read_text(), re.M):
            missing.append(path)
    for target in LINK.findall(page.read_text()):
        if "://" not in target and not (page.parent / target).exists():
            missing.append(target)
    assert not missing, f"{page.relative_to(ROOT)} points to files that do not exist: {missing}"


OUTSIDE_CITATION = re.compile(r"\bdigest'?s?\b|ecosystem report|research/|shared/", re.I)


@pytest.mark.parametrize("page", CITED_PAGES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pages_cite_only_what_a_reader_can_open(page):
    """Papers (authors, year, equation) and the project's own evidence; never notes outside the repository."""
    hits = [line.strip()[:100] for line in page.read_text().splitlines() if OUTSIDE_CITATION.search(line)]
    assert not hits, f"{page.relative_to(ROOT)} cites notes outside the repository:\n" + "\n".join(hits)


def _python_blocks() -> list:
    params = []
    for page in PAGES:
        blocks, _ = _code(page.read_text())
        # a block that opens with "# fragment" is an excerpt of a larger program (its names are still
        # resolved by the tests above) and is not executed on its own
        python = [body for lang, body in blocks if lang == "python" and not body.lstrip().startswith("# fragment")]
        params += [pytest.param(body, id=f"{page.name}-{i}") for i, body in enumerate(python)]
    return params


@pytest.mark.slow
@pytest.mark.parametrize("code", _python_blocks())
def test_python_blocks_run_as_written(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks that write files (run_sweep) write here
    import matplotlib

    matplotlib.use("Agg")
    exec(compile(textwrap.dedent(code), "<docs>", "exec"), {"__name__": "__docs__"})


@pytest.mark.parametrize("page", [ROOT / "README.md", ROOT / "docs" / "spectral.md"], ids=lambda p: p.name)
def test_printed_growth_rates_are_what_the_code_returns(page):
    """The pages print sp.growth_rates(5.0, 6) and sp.dominant_mode(5.0): check them against k^2 I_k(beta)/beta
    (paper 004, eq. (10) linearised; SciPy's Bessel function as the independent oracle) and the code."""
    from scipy.special import iv

    from jaxattn import spectral as sp

    text = page.read_text()
    found = re.search(r"sp\.growth_rates\(([\d.]+), (\d+)\)[^\n#]*#[^\[\n]*\[([^\]]*)\]", text)
    mode = re.search(r"sp\.dominant_mode\(([\d.]+)\)\s*#\s*(\d+)", text)
    assert found and mode, f"{page.name} no longer prints the growth rates and dominant mode"
    beta, kmax = float(found.group(1)), int(found.group(2))
    printed = [v.strip() for v in found.group(3).replace("...", "").split(",") if v.strip()]
    k = range(kmax + 1)
    exact = [kk**2 * iv(kk, beta) / beta for kk in k]
    code = [float(v) for v in sp.growth_rates(beta, kmax)]
    assert len(printed) >= 3
    for p, e, c in zip(printed, exact, code):  # to half a unit of the last printed digit
        digits = len(p.partition(".")[2])
        assert abs(float(p) - e) <= 0.5 * 10.0**-digits + 1e-12, (p, e)
        assert c == pytest.approx(e, rel=1e-12)
    assert int(sp.dominant_mode(float(mode.group(1)))) == int(mode.group(2)) == int(max(k, key=exact.__getitem__))
