"""Key the book's execution cache on the mmnb code and data each page uses, and fill it.

    python tools/book_cache.py [--cache _build/.jupyter_cache] [--jobs N]

jupyter-cache (``execute_notebooks: cache``) re-executes a page only when the page's own
code cells change. A page also depends on the ``mmnb`` modules it imports (and on what
those import), on data files it reads, and on the pinned versions. This script, run by
``make book`` before ``jupyter-book build``, computes for every executable page of the
book a key over those files; when a page's key changed since the last build, it drops
the page's cache record and touches the page, so that Sphinx reads it again and
jupyter-cache executes it again. Pages whose key did not change keep their outputs.

Then it executes every notebook page that has no cached outputs, `--jobs` at a time (every
chapter trains on one thread, so two run side by side on two cores), and stores them in
the cache, where `jupyter-book build` finds them: the build itself executes nothing that
this step has run. It prints each page's seconds and the wall time of the whole step.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "mmnb"
ALWAYS = ("constraints.txt", "pyproject.toml")  # versions and dependencies
CONFIG = ROOT / "_config.yml"
# a magic (%pip, %%time) or shell line (!ls), not an operator (`!=`, `%` continuing a line)
MAGIC = re.compile(r"^\s*(?:%%?|!)(?=[A-Za-z])")


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


def module_closure(code: str, root: Path = ROOT) -> set[Path]:
    """Files of every mmnb module the code imports, directly or through other modules (the
    same closure a run's provenance hashes: `mmnb.provenance.module_closure`)."""
    from mmnb.provenance import module_closure as closure

    return closure(code, root / PACKAGE)


def data_files(code: str, page: Path, root: Path = ROOT) -> set[Path]:
    """Files of the repository named by string literals in the code (data the page reads),
    and the page's stored regime map when it shows one (`mmnb.maps.show`)."""
    found = set()
    if "maps.show(" in code:
        found |= {p for p in (root / "data" / "maps" / page.stem).glob("*") if p.is_file()}
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


def _measured(root: Path) -> dict[str, float]:
    """Seconds per chapter from the committed benchmarks (the order of a first build)."""
    results = root / "benchmarks" / "results.json"
    if not results.exists():
        return {}
    seconds = json.loads(results.read_text()).get("chapter_book_seconds", {})
    return {f"chapters/{stem}.ipynb": value for stem, value in seconds.items()}


def _one_thread() -> None:
    """Side by side, each kernel runs on one thread (set in the worker, not in the caller)."""
    os.environ["MMNB_THREADS"] = "1"


def _execute(page: Path, timeout: int, allow_errors: bool) -> tuple[dict, float, str | None]:
    """Run one notebook in its own folder (as jupyter-book does); (notebook, seconds, error)."""
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    nb = nbformat.read(page, as_version=4)
    result = single_nb_execution(
        nb, cwd=str(page.parent), timeout=timeout, allow_errors=allow_errors, meta_override=True
    )
    return result.nb, result.time, result.exc_string


def execute_missing(
    cache_dir: Path, jobs: int, root: Path = ROOT, config: Path = CONFIG
) -> dict[str, float]:
    """Execute the notebook pages that have no cached outputs, `jobs` at a time, and cache
    them; returns seconds per page (the slowest pages start first, by their last time in
    this cache or else in benchmarks/results.json).

    Raises RuntimeError naming the pages that failed (their tracebacks are printed).
    """
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    settings = yaml.safe_load(config.read_text()).get("execute", {})
    timeout, allow_errors = settings.get("timeout", 1800), settings.get("allow_errors", False)
    cache = get_cache(cache_dir)
    times_file = cache_dir / "mmnb_seconds.json"
    last = json.loads(times_file.read_text()) if times_file.exists() else _measured(root)
    todo = []
    for page in book_pages(root):
        if page.suffix != ".ipynb":
            continue  # MyST notebooks: jupyter-book executes them
        try:
            cache.match_cache_notebook(nbformat.read(page, as_version=4))
        except KeyError:
            todo.append(page)
    todo.sort(key=lambda p: -last.get(p.relative_to(root).as_posix(), 0.0))
    seconds, failed = {}, []
    workers = max(1, min(jobs, len(todo) or 1))
    with ProcessPoolExecutor(workers, initializer=_one_thread if jobs > 1 else None) as pool:
        futures = {pool.submit(_execute, p, timeout, allow_errors): p for p in todo}
        for future in as_completed(futures):  # each page is cached as soon as it is done
            page = futures[future]
            nb, took, error = future.result()
            name = page.relative_to(root).as_posix()
            if error:
                print(f"book_cache: {name} failed after {took:.0f} s\n{error}", file=sys.stderr)
                failed.append(name)
                continue
            cache.cache_notebook_bundle(
                CacheBundleIn(nb, str(page), data={"execution_seconds": took}),
                check_validity=False,
                overwrite=True,
            )
            seconds[name] = last[name] = round(took, 1)
            print(f"book_cache: executed {name} in {took:.0f} s")
    times_file.write_text(json.dumps(last, indent=1, sort_keys=True))
    if failed:
        raise RuntimeError(f"these pages failed to execute: {', '.join(failed)}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=ROOT / "_build" / ".jupyter_cache")
    parser.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="notebooks run at once"
    )
    parser.add_argument("--no-execute", action="store_true", help="only drop stale entries")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs={args.jobs} must be at least 1")
    changed = invalidate(args.cache)
    for page in changed:
        print(f"book_cache: {page.relative_to(ROOT)} will run again (its code or mmnb changed)")
    if not changed:
        print("book_cache: every page's mmnb code and data are unchanged")
    if args.no_execute:
        return 0
    start = time.perf_counter()
    try:
        seconds = execute_missing(args.cache, args.jobs)
    except RuntimeError as err:
        print(f"book_cache: {err}", file=sys.stderr)
        return 1
    if seconds:
        wall = time.perf_counter() - start
        print(
            f"book_cache: {len(seconds)} pages in {wall:.0f} s wall on {args.jobs} jobs "
            f"({sum(seconds.values()):.0f} s of page time)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
