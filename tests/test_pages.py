"""Chapter pages show the science, not the plumbing: static checks of every notebook.

- Measured numbers in prose come from the run via myst-nb's glue
  (``{glue:text}`name:.3f` ``), never typed. As far as a static test can tell: a number
  with two or more decimals (``0.31``, ``1.25``) or a percentage (``87%``) in markdown,
  outside math, code and roles, is taken for a measured number. Numbers that are not
  measured here (a paper's reported value, a threshold, a setting) are declared in the
  same cell with an HTML comment, which the rendered book does not show:
  ``<!-- typed: 0.69 10% -->``.
- Drawing-only cells (every statement draws: ``plt``, ``fig``, ``ax*``, ``mmnb.plots``)
  are tagged ``hide-input``: the page shows the figure, not the plotting code.
- Code lines fit the page: the book's code column holds 89 characters (87 in a cell
  tagged ``hide-input``, whose toggle takes room); the test allows 88 and 86.
"""

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
MAX_LINE = 88
MAX_LINE_HIDE_INPUT = 86

TYPED = re.compile(r"<!--\s*typed:(.*?)-->", re.S)
NOT_PROSE = [
    re.compile(p, re.S)
    for p in (
        r"<!--.*?-->",  # comments
        r"```.*?```|~~~.*?~~~",  # fenced blocks (code, directives)
        r"\$\$.*?\$\$",  # display math
        r"(?<!\\)\$[^$\n]+?(?<!\\)\$",  # inline math
        r"\{[\w:-]+\}`[^`]*`",  # roles: {glue:text}`x:.3f`, {cite}`key`, {doc}`...`
        r"`[^`]*`",  # inline code
        r"\]\([^)]*\)",  # link targets
        r"https?://\S+",  # URLs
        r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}",  # amsmath environments
    )
]
NUMBER = re.compile(r"(?<![\w.,])[-+−]?\d+\.\d{2,}(?![\w.])|(?<![\w.])\d+(?:\.\d+)?\s?%")


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def typed_numbers(markdown: str) -> list[tuple[str, str]]:
    """(number, context) for each number in the prose that looks measured."""
    allowed = {n.strip(" ,;") for block in TYPED.findall(markdown) for n in block.split()}
    prose = markdown
    for pattern in NOT_PROSE:
        prose = pattern.sub(" ", prose)
    found = []
    for match in NUMBER.finditer(prose):
        number = match.group(0).replace(" ", "")
        if number.lstrip("+-−") in allowed or number in allowed:
            continue
        context = " ".join(prose[max(0, match.start() - 50) : match.end() + 30].split())
        found.append((number, context))
    return found


def test_typed_numbers_are_found_and_can_be_declared():
    text = (
        "The probe reaches 0.293 here, $\\tau = 0.07$, `lr=0.001`, {glue:text}`acc:.3f`,\n"
        "about 87% of it; the paper reports 0.69 and drops 10% <!-- typed: 0.69 10% -->"
    )
    assert [n for n, _ in typed_numbers(text)] == ["0.293", "87%"]
    assert typed_numbers("chance is 0.5 and 2000 steps, Chapter 3.2") == []


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_measured_numbers_in_prose_are_glued(path):
    offenders = []
    for i, cell in enumerate(_cells(path)):
        if cell["cell_type"] != "markdown":
            continue
        for number, context in typed_numbers("".join(cell["source"])):
            offenders.append(f"  cell {i} (id {cell.get('id', '?')}): {number!r} in “{context}”")
    if offenders:
        pytest.fail(
            f"{path.name}: numbers typed into the prose; glue them from the run "
            "({glue:text}`name:.3f`), or, if not measured here (a paper's value, a "
            "threshold), declare them in the cell with <!-- typed: ... -->:\n"
            + "\n".join(offenders),
            pytrace=False,
        )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_code_lines_fit_the_page(path):
    offenders = []
    for i, cell in enumerate(_cells(path)):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] != "code" or {"remove-cell", "remove-input"} & set(tags):
            continue
        limit = MAX_LINE_HIDE_INPUT if "hide-input" in tags else MAX_LINE
        for n, line in enumerate("".join(cell["source"]).splitlines(), 1):
            if len(line) > limit:
                offenders.append(f"  cell {i} line {n}: {len(line)} > {limit}: {line.strip()}")
    if offenders:
        pytest.fail(
            f"{path.name}: code lines wider than the page:\n" + "\n".join(offenders),
            pytrace=False,
        )


def test_every_mmnb_module_is_on_the_api_page():
    """api.md documents every module of the package (add an automodule for new ones)."""
    api = (ROOT / "api.md").read_text()
    listed = set(re.findall(r"^\.\. automodule:: (\S+)", api, re.M))
    modules = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in (ROOT / "mmnb").rglob("*.py")
        if path.name not in ("__init__.py", "__main__.py")
    }
    # a world package is documented by its docstring, then one block per file
    modules |= {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "mmnb" / "worlds").glob("*/__init__.py")
    }
    assert not modules - listed, f"api.md lacks automodule blocks for {sorted(modules - listed)}"
    gone = sorted(listed - modules)
    assert not gone, f"api.md documents modules that are gone: {gone}"


def test_mmnb_glue_stores_numpy_and_torch_scalars_as_numbers(monkeypatch):
    import IPython.display
    import numpy as np
    import torch

    from mmnb.glue import glue

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda data, **k: shown.append(data))
    for value in (np.float32(0.25), torch.tensor(0.25), np.array(0.25)):
        glue("x", value, display=False)
        assert shown[-1]["application/papermill.record/text/plain"] == "0.25"


DRAWING_ROOTS = {"plt", "fig", "figure", "ax", "axes", "axs", "cbar", "im", "plots"}


def _root(node) -> list[str]:
    """Dotted name a call chain starts from: `axes[0].set(...)` -> ["axes", "set"]."""
    parts = []
    while not isinstance(node, ast.Name):
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return []
    return [node.id, *reversed(parts)]


def _draws(statement: ast.stmt) -> bool:
    if isinstance(statement, (ast.For, ast.With)):
        return all(map(_draws, statement.body)) and not getattr(statement, "orelse", [])
    if not isinstance(statement, (ast.Expr, ast.Assign)) or not isinstance(
        statement.value, ast.Call
    ):
        return False
    root = _root(statement.value)
    return bool(root) and (
        root[0] in DRAWING_ROOTS or root[0].startswith("ax") or root[:2] == ["mmnb", "plots"]
    )


def drawing_only(source: str) -> bool:
    try:
        tree = ast.parse(re.sub(r"(?m)^(\s*)[%!].*$", r"\1pass", source))
    except SyntaxError:
        return False
    body = [s for s in tree.body if not isinstance(s, ast.Pass)]  # magics
    return bool(body) and all(map(_draws, body))


def test_drawing_only_is_recognised():
    assert drawing_only("fig, axes = mmnb.plots.panels(2)\nfor ax in axes:\n    ax.plot([1])")
    assert not drawing_only("fig, ax = plt.subplots()\nx = train(cfg)\nax.plot(x)")
    assert drawing_only("%matplotlib inline\nplt.plot([1])")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_drawing_only_cells_hide_their_code(path):
    untagged = [
        f"  cell {i}: {''.join(cell['source']).splitlines()[0]}"
        for i, cell in enumerate(_cells(path))
        if cell["cell_type"] == "code"
        and not {"hide-input", "remove-input", "remove-cell"}
        & set(cell.get("metadata", {}).get("tags", []))
        and drawing_only("".join(cell["source"]))
    ]
    if untagged:
        pytest.fail(
            f"{path.name}: drawing-only cells without the hide-input tag:\n" + "\n".join(untagged),
            pytrace=False,
        )


HIDDEN_TAGS = {"remove-cell", "hide-input", "remove-input", "hide-cell"}


def _names(tree: ast.AST, ctx: type) -> set[str]:
    found = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}
    if ctx is ast.Store:
        found |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments) for a in n.args}
        found |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    return found


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_no_hidden_cell_defines_what_visible_code_uses(path):
    """A reader sees every name the visible code uses being made: a cell whose code the page
    hides (after the setup cell) defines nothing that a later visible cell reads."""
    code = [c for c in _cells(path) if c["cell_type"] == "code"]
    hidden_names: dict[str, int] = {}
    offenders = []
    for i, cell in enumerate(code[1:], 1):
        tags = set(cell["metadata"].get("tags", []))
        source = "".join(cell["source"])
        tree = ast.parse("\n".join(x for x in source.splitlines() if not x.startswith("%")))
        stored = _names(tree, ast.Store)
        hidden = bool(tags & HIDDEN_TAGS) and "parameters" not in tags
        if not hidden:
            for name in sorted((_names(tree, ast.Load) - stored) & set(hidden_names)):
                offenders.append(
                    f"cell {i} reads {name!r}, made in hidden cell {hidden_names[name]}"
                )
        for name in stored:
            if hidden:
                hidden_names[name] = i
            else:
                hidden_names.pop(name, None)
    assert not offenders, f"{path.name}: " + "; ".join(offenders)
