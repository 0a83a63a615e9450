"""tools/book_cache.py: a page runs again exactly when the code it depends on changes."""

import importlib.util
import json
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("book_cache", ROOT / "tools" / "book_cache.py")
book_cache = importlib.util.module_from_spec(spec)
sys.modules["book_cache"] = book_cache  # worker processes find its functions by name
spec.loader.exec_module(book_cache)


def _notebook(path: Path, *sources: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, path)


@pytest.fixture
def book(tmp_path):
    """A tiny book: two chapters, each importing its own world, and a data file."""
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n  - chapters:\n"
        "      - file: chapters/a\n      - file: chapters/b\n"
    )
    (tmp_path / "intro.md").write_text("# Intro\n")
    pkg = tmp_path / "mmnb"
    (pkg / "worlds").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from mmnb import core\n")
    (pkg / "core.py").write_text("X = 1\n")
    (pkg / "unused.py").write_text("Y = 1\n")
    (pkg / "worlds" / "__init__.py").write_text("")
    (pkg / "worlds" / "a.py").write_text("from mmnb.worlds import helper\n")
    (pkg / "worlds" / "helper.py").write_text("H = 1\n")
    (pkg / "worlds" / "b.py").write_text("from .. import core\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "table.csv").write_text("a,b\n")
    (tmp_path / "chapters").mkdir()
    _notebook(
        tmp_path / "chapters" / "a.ipynb",
        'import sys\nif "google.colab" in sys.modules:\n    %pip install -q mmnb\n',
        "from mmnb.worlds import a",
    )
    _notebook(
        tmp_path / "chapters" / "b.ipynb",
        "import mmnb.worlds.b as b\nimport pandas as pd\npd.read_csv('../data/table.csv')",
    )
    return tmp_path


def _keys(root: Path) -> dict[str, str]:
    return {p.name: book_cache.page_key(p, root) for p in book_cache.book_pages(root)}


def test_dependencies_are_the_imported_modules_and_read_files(book):
    a, b = book_cache.book_pages(book)
    deps = {
        p.name: {
            f.relative_to(book).as_posix()
            for f in book_cache.module_closure(book_cache.page_code(p), book)
            | book_cache.data_files(book_cache.page_code(p), p, book)
        }
        for p in (a, b)
    }
    assert deps["a.ipynb"] == {
        "mmnb/__init__.py",
        "mmnb/core.py",
        "mmnb/worlds/__init__.py",
        "mmnb/worlds/a.py",
        "mmnb/worlds/helper.py",
    }
    assert deps["b.ipynb"] == {
        "mmnb/__init__.py",
        "mmnb/core.py",
        "mmnb/worlds/__init__.py",
        "mmnb/worlds/b.py",
        "data/table.csv",
    }


@pytest.mark.parametrize(
    "edited, changes",
    [
        ("mmnb/worlds/helper.py", {"a.ipynb"}),  # imported by a's world only
        ("mmnb/core.py", {"a.ipynb", "b.ipynb"}),  # imported by the package itself
        ("data/table.csv", {"b.ipynb"}),  # read by b
        ("mmnb/unused.py", set()),  # imported by nobody
    ],
)
def test_a_key_changes_exactly_when_a_dependency_changes(book, edited, changes):
    before = _keys(book)
    path = book / edited
    path.write_text(path.read_text() + "# edited\n")
    after = _keys(book)
    assert {name for name in before if before[name] != after[name]} == changes


def test_invalidate_drops_the_cache_record_of_a_changed_page_only(book):
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache_dir = book / "_build" / ".jupyter_cache"
    cache = get_cache(cache_dir)
    pages = book_cache.book_pages(book)
    for page in pages:
        cache.cache_notebook_bundle(
            CacheBundleIn(nbformat.read(page, 4), str(page)), check_validity=False
        )
    assert book_cache.invalidate(cache_dir, book) == pages  # first build: no keys yet
    for page in pages:  # the build executes them again
        cache.cache_notebook_bundle(
            CacheBundleIn(nbformat.read(page, 4), str(page)), check_validity=False
        )
    assert book_cache.invalidate(cache_dir, book) == []  # nothing changed
    assert len(cache.list_cache_records()) == 2
    (book / "mmnb" / "worlds" / "helper.py").write_text("H = 2\n")
    assert [p.name for p in book_cache.invalidate(cache_dir, book)] == ["a.ipynb"]
    assert [Path(r.uri).name for r in cache.list_cache_records()] == ["b.ipynb"]
    keys = json.loads((cache_dir / "mmnb_keys.json").read_text())
    assert set(keys) == {"chapters/a.ipynb", "chapters/b.ipynb"}


def _plain_book(root: Path, **pages: str) -> Path:
    """A book of one-cell notebooks (no mmnb import), page name → code."""
    toc = "".join(f"      - file: chapters/{name}\n" for name in pages)
    (root / "_toc.yml").write_text(f"format: jb-book\nroot: intro\nparts:\n  - chapters:\n{toc}")
    (root / "intro.md").write_text("# Intro\n")
    (root / "_config.yml").write_text("execute:\n  timeout: 60\n  allow_errors: false\n")
    (root / "chapters").mkdir()
    for name, code in pages.items():
        _notebook(root / "chapters" / f"{name}.ipynb", code)
    return root


def test_missing_pages_are_executed_side_by_side_cached_and_not_run_again(tmp_path, monkeypatch):
    from jupyter_cache import get_cache

    monkeypatch.delenv("MMNB_THREADS", raising=False)
    book = _plain_book(
        tmp_path, a="import os\nprint(os.environ.get('MMNB_THREADS'))", b="print(6 * 7)"
    )
    cache_dir = book / "_build" / ".jupyter_cache"
    run = lambda: book_cache.execute_missing(cache_dir, 2, book, book / "_config.yml")  # noqa: E731
    assert set(run()) == {"chapters/a.ipynb", "chapters/b.ipynb"}
    assert run() == {}  # everything is cached: nothing runs again
    cache = get_cache(cache_dir)
    _, nb = cache.merge_match_into_notebook(nbformat.read(book / "chapters" / "a.ipynb", 4))
    assert nb.cells[0].outputs[0]["text"].strip() == "1"  # one thread per kernel


def test_a_failing_page_is_named_and_the_others_are_cached(tmp_path):
    book = _plain_book(tmp_path, good="x = 1", bad="raise ValueError('broken page')")
    cache_dir = book / "_build" / ".jupyter_cache"
    with pytest.raises(RuntimeError, match=r"failed to execute: chapters/bad\.ipynb$"):
        book_cache.execute_missing(cache_dir, 2, book, book / "_config.yml")
    from jupyter_cache import get_cache

    cache = get_cache(cache_dir)
    cache.match_cache_notebook(nbformat.read(book / "chapters" / "good.ipynb", 4))  # cached
    with pytest.raises(KeyError):
        cache.match_cache_notebook(nbformat.read(book / "chapters" / "bad.ipynb", 4))


def test_operators_at_a_line_start_are_code_not_magics(tmp_path):
    """`!=` or `%` continuing an expression stays code (the page must still parse)."""
    page = tmp_path / "p.ipynb"
    _notebook(page, "%pip install x\n!ls\nok = (1\n    != 2)\nr = (7\n    % 3)\nimport mmnb")
    code = book_cache.page_code(page)
    assert code.splitlines()[:2] == ["pass", "pass"]
    assert "!= 2)" in code and "% 3)" in code
    compile(code, "page", "exec")
