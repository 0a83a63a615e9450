"""Wall time of the book's chapters at their "book" profile, executed as `make book` does:
`jobs` notebooks side by side, one thread each, into a fresh execution cache."""

from __future__ import annotations

import importlib.util
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


def book_seconds(jobs: int = 2) -> tuple[dict[str, float], float]:
    """(seconds per chapter, wall seconds of all of them) with `jobs` running at once.

    Raises RuntimeError naming a chapter that failed.
    """
    book_cache = _book_cache()
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        seconds = book_cache.execute_missing(Path(cache), jobs)
        wall = time.perf_counter() - start
    return {Path(name).stem: s for name, s in seconds.items()}, round(wall, 1)
