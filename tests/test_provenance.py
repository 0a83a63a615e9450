"""Provenance: a run's notebook and code identity, and what changes it."""

from __future__ import annotations

import json
from pathlib import Path

from mmnb.provenance import differences, module_closure, provenance

ROOT = Path(__file__).resolve().parents[1]


def _notebook(path: Path, code: str, markdown: str = "# a page") -> Path:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": markdown},
        {"cell_type": "code", "metadata": {}, "source": code, "outputs": []},
    ]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4}))
    return path


def test_the_code_hash_follows_the_imported_modules(tmp_path: Path) -> None:
    package = tmp_path / "mmnb"
    package.mkdir()
    (package / "__init__.py").write_text('__version__ = "9.9"\n')
    (package / "a.py").write_text("from mmnb import b\n")
    (package / "b.py").write_text("X = 1\n")
    (package / "c.py").write_text("Y = 1\n")
    notebook = _notebook(tmp_path / "nb.ipynb", "import mmnb.a\n%matplotlib inline")
    assert {p.name for p in module_closure("import mmnb.a", package)} == {
        "__init__.py",
        "a.py",
        "b.py",
    }
    first = provenance(notebook, package)
    assert first["mmnb_version"] == "9.9" and first["notebook"] == str(notebook)
    (package / "c.py").write_text("Y = 2\n")  # not imported: same code
    assert provenance(notebook, package) == first
    _notebook(notebook, "import mmnb.a\n%matplotlib inline", markdown="# new words")
    assert provenance(notebook, package) == first  # prose does not change a result
    (package / "b.py").write_text("X = 2\n")  # imported through a: other code
    second = provenance(notebook, package)
    assert second["code_sha256"] != first["code_sha256"]
    assert differences(first, second) == [
        f"made by other mmnb code {first['code_sha256']} (now {second['code_sha256']})"
    ]
    assert differences(None, second) == ["it has no record of the notebook and code that made it"]


def test_a_chapter_hashes_its_world() -> None:
    chapter = ROOT / "chapters" / "01_snr.ipynb"
    from mmnb.provenance import notebook_code

    files = {p.relative_to(ROOT).as_posix() for p in module_closure(notebook_code(chapter))}
    assert "mmnb/worlds/snr/world.py" in files and "mmnb/claims.py" in files
