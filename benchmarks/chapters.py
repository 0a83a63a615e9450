"""Wall time of the book's chapters at their "book" profile, executed as `make book` does:
`jobs` notebooks side by side, one thread each, into a fresh execution cache."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _book_cache():
    spec = importlib.util.spec_from_file_location("book_cache", ROOT / "tools" / "book_cache.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["book_cache"] = module  # its worker processes find functions by name
    spec.loader.exec_module(module)
    return module


def book_seconds(jobs: int = 2, cache: Path | None = None) -> tuple[dict[str, float], float]:
    """(seconds per chapter, wall seconds of all of them) with `jobs` running at once.

    `cache`: the book's execution cache to fill (emptied first), so that a following
    `make book` renders the chapters without running them again; default a temporary one.
    Raises RuntimeError naming a chapter that failed.
    """
    book_cache = _book_cache()
    with tempfile.TemporaryDirectory() as temporary:
        where = Path(cache or temporary)
        shutil.rmtree(where, ignore_errors=True)
        book_cache.invalidate(where)  # records the pages' keys, as `make book` does
        start = time.perf_counter()
        seconds = book_cache.execute_missing(where, jobs)
        wall = time.perf_counter() - start
    return {Path(name).stem: s for name, s in seconds.items()}, round(wall, 1)
