"""`import mmnb` and the command line start fast: heavy libraries load on first use."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "pandas", "sklearn", "matplotlib", "scipy")


def _seconds(*args: str) -> float:
    """The best of three wall times of `python args...` (a busy machine adds, never takes)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, capture_output=True, cwd=ROOT)
        best = min(best, time.perf_counter() - start)
    return best


def test_import_mmnb_loads_no_heavy_library() -> None:
    code = f"import sys, mmnb; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    )
    assert out.stdout.strip() == "", f"import mmnb loaded {out.stdout.strip()}"


def test_names_load_on_first_use() -> None:
    import mmnb

    assert mmnb.Claims.__module__ == "mmnb.claims" and mmnb.plots.__name__ == "mmnb.plots"
    assert set(mmnb.__all__) <= set(dir(mmnb))
    assert set(mmnb.__all__) == {*mmnb._MODULE_OF, *mmnb._SUBMODULES}


def test_help_is_fast() -> None:
    """`python -m mmnb --help` within 10 bare interpreter starts (about 3 here)."""
    bare = _seconds("-c", "pass")
    helps = _seconds("-m", "mmnb", "--help")
    assert helps <= 10 * bare + 0.05, f"--help took {helps:.2f} s, python -c pass {bare:.2f} s"
