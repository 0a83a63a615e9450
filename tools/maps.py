"""Make, and check, the chapters' regime maps (`make maps`).

    python tools/maps.py                 # every chapter whose world declares a map
    python tools/maps.py 01_snr --jobs 2 # one chapter, two notebooks at a time
    python tools/maps.py --scheduler tcp://host:8786   # the same sweep on a Dask cluster
    python tools/maps.py --check         # exit 1 when a stored map is stale (missing: a warning)

Each map is a `python -m mmnb sweep` of the chapter notebook over its two axes
(`mmnb.maps.RegimeMap.grid`, theory checks off) into a scratch folder (`_build/maps/`;
finished runs are kept, so an interrupted `make maps` resumes), then reduced to
`data/maps/<chapter>/cells.csv` with `provenance.json` beside it (command, package
version, commit, date, machine, wall time, the chapter's code key). A map is stale when
the key differs: the chapter's code cells, the `mmnb` modules they import, or the pinned
versions changed since it was made (the same files as the book's execution cache, read
as syntax trees: formatting, comments and docstrings do not stale a map).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pyproject.toml read as lines, a key of its own
    tomllib = None
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _book_cache():
    if "book_cache" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "book_cache", Path(__file__).with_name("book_cache.py")
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["book_cache"] = module
        spec.loader.exec_module(module)
    return sys.modules["book_cache"]


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return tree


def semantic_text(source: str) -> str:
    """What the code does, without its layout: the syntax tree with comments, docstrings
    and formatting dropped (the text itself when it does not parse). Reformatting a
    notebook or rewording a docstring does not stale a map; changing a statement does."""
    try:
        return ast.dump(_strip_docstrings(ast.parse(source)))
    except SyntaxError:
        return source


def pinned_text(path: Path, text: str) -> str:
    """What a version file pins, without its comments: pyproject.toml's dependencies
    (required and optional) and Python bound, constraints.txt's requirement lines. A
    reworded comment there does not stale a map; a changed pin does."""
    if path.name == "pyproject.toml" and tomllib is not None:
        project = tomllib.loads(text).get("project", {})
        keys = ("dependencies", "optional-dependencies", "requires-python")
        return json.dumps({key: project.get(key) for key in keys}, sort_keys=True)
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def code_key(chapter: str, root: Path = ROOT) -> str:
    """The chapter's code cells, the `mmnb` files they import (as `semantic_text`) and the
    pinned versions, hashed: a map made under another key was made by other code."""
    cache = _book_cache()
    page = root / "chapters" / f"{chapter}.ipynb"
    code = cache.page_code(page)
    files = cache.module_closure(code, root)
    files |= {root / name for name in cache.ALWAYS if (root / name).exists()}
    digest = hashlib.sha256(semantic_text(code).encode() + b"\0")
    for path in sorted(files):
        text = path.read_text()
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        text = semantic_text(text) if path.suffix == ".py" else pinned_text(path, text)
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()


def _commit(root: Path) -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "mmnb", "chapters"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+uncommitted" if dirty else "")


def _machine() -> str:
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.node()} | {platform.machine()} | {os.cpu_count()} cores | {device}"


def chapters_with_maps(root: Path = ROOT) -> list[str]:
    from mmnb.maps import declared

    return declared()


def rerun_command(chapter: str) -> str:
    return f"make maps MAPS={chapter}  (or: .venv/bin/python tools/maps.py {chapter})"


def missing(root: Path = ROOT, chapters: list[str] | None = None) -> list[str]:
    """A line for each declared map not made yet (its chapter prints the command)."""
    from mmnb.maps import MAPS_DIR

    return [
        f"{chapter}: no stored map yet; make it: {rerun_command(chapter)}"
        for chapter in chapters or chapters_with_maps(root)
        if not (root / MAPS_DIR / chapter / "provenance.json").exists()
    ]


def stale(root: Path = ROOT, chapters: list[str] | None = None) -> list[str]:
    """A line for each stored map that was made by other code than the chapter's now."""
    from mmnb.maps import MAPS_DIR

    problems = []
    for chapter in chapters or chapters_with_maps(root):
        prov = root / MAPS_DIR / chapter / "provenance.json"
        if not prov.exists():
            continue
        made = json.loads(prov.read_text()).get("code_key")
        if made != code_key(chapter, root):
            problems.append(
                f"{chapter}: the map in {prov.parent.relative_to(root)} was made by other code "
                f"than the chapter's now (its notebook code, an mmnb module it imports or a "
                f"pinned version changed); rerun it: {rerun_command(chapter)}"
            )
    return problems


def _seconds_per_run(chapter: str, root: Path) -> float | None:
    """One run's seconds: from the last map of this chapter, else the chapter's book time
    in benchmarks/results.json (an upper bound: maps fix cheaper knobs)."""
    from mmnb.maps import MAPS_DIR

    prov = root / MAPS_DIR / chapter / "provenance.json"
    if prov.exists():
        last = json.loads(prov.read_text())
        return last["wall_seconds"] * (last.get("jobs") or 1) / max(last["runs"], 1)
    measured = _book_cache()._measured(root)
    return measured.get(f"chapters/{chapter}.ipynb")


def make_map(
    chapter: str,
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    scratch: Path = ROOT / "_build" / "maps",
    root: Path = ROOT,
) -> Path:
    """Sweep the chapter over its map and store cells.csv and provenance.json."""
    from mmnb import __version__
    from mmnb.maps import MAPS_DIR, cells, regime_map
    from mmnb.sweep import sweep

    spec = regime_map(chapter)
    if spec is None:
        raise SystemExit(f"{chapter} declares no regime map (mmnb/worlds/<world>/regime.py)")
    key = code_key(chapter, root)
    out = scratch / chapter / key[:12]  # runs of other code are never reused
    notebook = root / "chapters" / f"{chapter}.ipynb"
    each = _seconds_per_run(chapter, root)
    eta = f", about {spec.n_runs * each / max(jobs, 1) / 60:.0f} min" if each else ""
    print(f"map {chapter}: {spec.n_runs} runs into {out}{eta}", flush=True)
    started = time.perf_counter()
    summary = sweep(notebook, spec.grid(), out, jobs=jobs, scheduler=scheduler)
    wall = time.perf_counter() - started
    folders = sorted(p.parent for p in out.glob("*/metrics.json"))
    table = cells(spec, folders)
    target = root / MAPS_DIR / chapter
    target.mkdir(parents=True, exist_ok=True)
    table.to_csv(target / "cells.csv", index=False)
    provenance = {
        "chapter": chapter,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "mmnb_version": __version__,
        "commit": _commit(root),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(),
        "backend": f"dask {scheduler}" if scheduler else "local",
        "jobs": None if scheduler else jobs,
        "wall_seconds": round(wall, 1),
        "runs": spec.n_runs,
        "failed_runs": sorted(summary.failed),
        "grid": {k: [str(v) for v in vals] for k, vals in spec.grid().items()},
        "code_key": key,
    }
    (target / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n")
    print(f"map {chapter}: {len(table)} cell records in {target} ({wall / 60:.1f} min)")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", help="chapters (default: every declared map)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks at a time (local)")
    parser.add_argument("--scheduler", help="a Dask scheduler address (instead of --jobs)")
    parser.add_argument("--check", action="store_true", help="only check stored maps")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    chapters = args.chapters or chapters_with_maps()
    if args.check:
        for line in missing(ROOT, chapters):
            print(f"maps: warning: {line}", file=sys.stderr)
        problems = stale(ROOT, chapters)
        for line in problems:
            print(f"maps: {line}", file=sys.stderr)
        return 1 if problems else 0
    for chapter in chapters:
        make_map(chapter, jobs=args.jobs, scheduler=args.scheduler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
