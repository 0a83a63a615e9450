"""Where a run's results came from: the notebook, its code, the mmnb code it imports.

`provenance(notebook)` is recorded in every run's `run.json` and shown in
`results.csv`; a finished run whose notebook or code differs from the current one is
refused (or redone on request) instead of being mixed into one table. The code hash is
the key of the book's execution cache: the files of every `mmnb` module that the
notebook's code imports, directly or through other modules. Imports nothing heavy.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from pathlib import Path
from typing import Any

__all__ = ["IDENTITY", "differences", "module_closure", "notebook_code", "provenance"]

PACKAGE = "mmnb"
ROOT = Path(__file__).resolve().parent  # the mmnb package folder
# what must match for a finished run to count as this notebook's run
IDENTITY = ("notebook_sha256", "code_sha256", "mmnb_version")
# a magic (%pip, %%time) or shell line (!ls), not an operator (`!=`, `%` continuing a line)
_MAGIC = re.compile(r"^(\s*)(?:%%?|!)(?=[A-Za-z]).*$", re.MULTILINE)


def notebook_code(notebook: str | Path) -> str:
    """The notebook's code cells (what runs; markdown and outputs do not change a result),
    IPython magics and shell lines replaced by `pass`."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    sources = [
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in cells
        if c["cell_type"] == "code"
    ]
    return "\n\n".join(_MAGIC.sub(r"\1pass", s) for s in sources)


def _imports(tree: ast.AST, current: str | None) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level and current:
                parts = current.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}
    return {n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")}


def _module_file(name: str, root: Path) -> Path | None:
    base = root.parent / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_closure(code: str, root: Path = ROOT) -> set[Path]:
    """The files of every mmnb module `code` imports, directly or through other modules
    (all of the package's files when the code does not parse)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set(root.rglob("*.py"))
    todo = list(_imports(tree, None))
    seen: set[Path] = set()
    while todo:
        parts = todo.pop().split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b and a.b.c
            path = _module_file(".".join(parts[:i]), root)
            if path is None or path in seen:
                continue
            seen.add(path)
            package = ".".join(parts[:i] if path.name == "__init__.py" else parts[: i - 1])
            try:
                todo += _imports(ast.parse(path.read_text()), package)
            except SyntaxError:
                continue
    return seen


def _version(root: Path = ROOT) -> str:
    found = re.search(r'^__version__\s*=\s*"([^"]+)"', (root / "__init__.py").read_text(), re.M)
    return found.group(1) if found else "unknown"


def provenance(notebook: str | Path, root: Path = ROOT) -> dict[str, Any]:
    """The notebook's path and code hash, the mmnb version and the hash of the mmnb code
    it imports (short hex digests)."""
    notebook = Path(notebook).resolve()
    code = notebook_code(notebook)
    digest = hashlib.sha256()
    for path in sorted(module_closure(code, root)):
        digest.update(path.relative_to(root.parent).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return {
        "notebook": str(notebook),
        "notebook_sha256": hashlib.sha256(code.encode()).hexdigest()[:16],
        "mmnb_version": _version(root),
        "code_sha256": digest.hexdigest()[:16],
    }


def differences(recorded: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """What differs between a finished run's recorded provenance and the current one
    (empty when it is this notebook's run with this code)."""
    if not recorded:
        return ["it has no record of the notebook and code that made it"]
    words = {
        "notebook_sha256": "made by other notebook code",
        "code_sha256": "made by other mmnb code",
        "mmnb_version": "made by mmnb version",
    }
    found = []
    for key in IDENTITY:
        if recorded.get(key) != current.get(key):
            text = f"{words[key]} {recorded.get(key)} (now {current.get(key)})"
            if key == "notebook_sha256" and recorded.get("notebook") != current.get("notebook"):
                text = f"made by another notebook, {recorded.get('notebook')} {recorded.get(key)}"
            found.append(text)
    return found
