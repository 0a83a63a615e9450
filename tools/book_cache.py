"""Key the book's execution cache on the mmnb code and data each page uses.

    python tools/book_cache.py [--cache _build/.jupyter_cache]

jupyter-cache (``execute_notebooks: cache``) re-executes a page only when the page's own
code cells change. A page also depends on the ``mmnb`` modules it imports (and on what
those import), on data files it reads, and on the pinned versions. This script, run by
``make book`` before ``jupyter-book build``, computes for every executable page of the
book a key over those files; when a page's key changed since the last build, it drops
the page's cache record and touches the page, so that Sphinx reads it again and
jupyter-cache executes it again. Pages whose key did not change keep their outputs.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "mmnb"
ALWAYS = ("constraints.txt", "pyproject.toml")  # versions and dependencies
MAGIC = re.compile(r"^\s*[%!]")


def book_pages(root: Path = ROOT) -> list[Path]:
    """The executable pages listed in the table of contents (notebooks, MyST notebooks)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part.get("chapters", [])]
    found = []
    for name in files:
        for suffix in (".ipynb", ".md"):
            path = root / f"{name}{suffix}"
            if path.exists() and (suffix == ".ipynb" or "{code-cell}" in path.read_text()):
                found.append(path)
    return found


def page_code(path: Path) -> str:
    """The page's code cells, IPython magics and shell lines replaced by `pass`."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    else:
        sources = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", path.read_text(), re.S)
    lines = [
        re.sub(r"[%!].*", "pass", line) if MAGIC.match(line) else line
        for src in sources
        for line in src.splitlines()
    ]
    return "\n".join(lines)


def _module_file(name: str, root: Path) -> Path | None:
    base = root / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imports(tree: ast.AST, current: str | None) -> set[str]:
    """Dotted mmnb module names imported by a module (current: its package, for `from .`)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level and current:
                parent = current.split(".")
                parent = parent[: len(parent) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}
    return {n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")}


def module_closure(code: str, root: Path = ROOT) -> set[Path]:
    """Files of every mmnb module the code imports, directly or through other modules."""
    try:
        tree = ast.parse(code)
    except SyntaxError:  # unparsable page: depend on the whole package
        return set((root / PACKAGE).rglob("*.py"))
    todo = [(name, None) for name in _imports(tree, None)]
    seen: set[Path] = set()
    while todo:
        name, _ = todo.pop()
        parts = name.split(".")
        # importing a.b.c runs a/__init__, a/b/__init__ and a/b/c
        for i in range(1, len(parts) + 1):
            path = _module_file(".".join(parts[:i]), root)
            if path is None or path in seen:
                continue
            seen.add(path)
            is_package = path.name == "__init__.py"
            package = ".".join(parts[:i] if is_package else parts[: i - 1])
            todo += [(n, None) for n in _imports(ast.parse(path.read_text()), package)]
    return seen


def data_files(code: str, page: Path, root: Path = ROOT) -> set[Path]:
    """Files of the repository named by string literals in the code (data the page reads)."""
    found = set()
    for literal in re.findall(r"""["']([\w./-]+\.\w+)["']""", code):
        for base in (page.parent, root):
            path = (base / literal).resolve()
            if path.is_file() and root in path.parents:
                found.add(path)
    return found


def page_key(page: Path, root: Path = ROOT) -> str:
    code = page_code(page)
    files = module_closure(code, root) | data_files(code, page, root)
    files |= {root / name for name in ALWAYS if (root / name).exists()}
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def invalidate(cache_dir: Path, root: Path = ROOT) -> list[Path]:
    """Drop the cache records of pages whose key changed; returns those pages."""
    keys_file = cache_dir / "mmnb_keys.json"
    old = json.loads(keys_file.read_text()) if keys_file.exists() else {}
    new = {p.relative_to(root).as_posix(): page_key(p, root) for p in book_pages(root)}
    changed = [root / name for name, key in new.items() if old.get(name) != key]
    if changed and cache_dir.exists():
        from jupyter_cache import get_cache

        cache = get_cache(cache_dir)
        stale = {str(p.resolve()) for p in changed}
        for record in cache.list_cache_records():
            if str(Path(record.uri).resolve()) in stale:
                cache.remove_cache(record.pk)
    for page in changed:
        page.touch()  # Sphinx reads a page again only when it looks modified
    cache_dir.mkdir(parents=True, exist_ok=True)
    keys_file.write_text(json.dumps(new, indent=1, sort_keys=True))
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=ROOT / "_build" / ".jupyter_cache")
    args = parser.parse_args(argv)
    changed = invalidate(args.cache)
    for page in changed:
        print(f"book_cache: {page.relative_to(ROOT)} will run again (its code or mmnb changed)")
    if not changed:
        print("book_cache: every page's mmnb code and data are unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
