"""The book builds without executing its code and passes the browser check: what
`make book-fast` and `make check-book-fast` do, run as one test of `make test`'s suite so
that it shares the two workers with the chapters instead of running after them."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)


def test_the_book_builds_unexecuted_and_reads_in_a_browser() -> None:
    build = _run("tools/book_fast.py")
    assert build.returncode == 0, (build.stdout + build.stderr)[-6000:]
    check = _run("tools/check_book.py", "_build/fast/_build/html")
    print(check.stdout, check.stderr)
    assert check.returncode == 0, (check.stdout + check.stderr)[-6000:]
