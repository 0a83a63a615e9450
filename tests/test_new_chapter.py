"""`tools/new_chapter.py` makes a chapter that passes the book's checks as generated."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ["test_worlds.py", "test_notebooks.py", "test_pages.py", "test_configs.py"]


def test_a_new_chapter_passes_the_checks_and_runs(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, tracked):
        source = ROOT / name.decode()
        if source.is_file():
            target = repo / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    env = {**os.environ, "PYTHONPATH": str(repo), "MMNB_THREADS": "1", "MMNB_PROGRESS": "0"}
    tool = [sys.executable, "tools/new_chapter.py", "toy_world"]
    made = subprocess.run(
        [*tool, "--number", "07", "--title", "A toy world"],
        cwd=repo, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    again = subprocess.run([*tool, "--number", "07", "--title", "A toy world"], cwd=repo,
                           env=env, capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 2 and "exists already" in again.stderr
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "mmnb", "tests", "chapters"],
        cwd=repo, capture_output=True, text=True,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout
    tests = [f"tests/{name}" for name in [*CHECKS, "test_toy_world.py"]]
    checked = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
         *tests], cwd=repo, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout[-3000:]
    out = tmp_path / "run"
    ran = subprocess.run(
        [sys.executable, "-m", "mmnb", "run", "chapters/07_toy_world.ipynb", "--out", str(out)],
        cwd=repo, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    claims = json.loads((out / "metrics.json").read_text())["claims"]
    assert [c["kind"] for c in claims] == ["prediction", "control"]
