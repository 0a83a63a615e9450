"""Give the figures that notebook cells draw a number, a caption and alt text.

    python tools/set_figure_captions.py figures.yml           # write the cells' metadata
    python tools/set_figure_captions.py figures.yml --check   # exit 1 if a cell differs
    python tools/set_figure_captions.py --skeleton chapters/01_snr.ipynb > figures.yml

myst-nb wraps every image a code cell outputs in a numbered figure when the cell's
metadata says so:

    "mystnb": {"figure": {"name": "fig-snr-curves", "caption": "..."},
               "image": {"alt": "..."}}

`name` is the label the prose cites ({numref}`fig-snr-curves` prints "Fig. 3"), and only
a named figure gets a number; `caption` is MyST Markdown ($math$, {cite}, {doc} and
{glue:text} work in it); `alt` is what a screen reader says instead of the image. The mapping file
(YAML or JSON) lists, per notebook, one entry per drawing cell, found by its cell `id` or
by a `tag` only that cell has:

    chapters/01_snr.ipynb:
      - id: 3f1c2a9b
        name: fig-snr-curves
        caption: Test accuracy against training step ... what to look at.
        alt: Two line plots of accuracy against step; the multimodal curve ...

The figure wraps *every* image or rich output of the cell, each under the same name, so a
drawing cell must display exactly one output (one `plt.show()` or one returned figure)
and print nothing else; `--skeleton` lists each cell that showed an image in the last
executed build (the jupyter-cache of `make book`), with its number of outputs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build" / "jupyter_execute"
CACHE = ROOT / "_build" / ".jupyter_cache"
NAME = re.compile(r"^[a-z][a-z0-9-]*$")
FILE_NAME = re.compile(r"^\S+\.(png|svg|jpe?g|gif|webp|pdf)$", re.I)


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def dump(nb: dict) -> str:
    """The notebook as the repository stores it (json, indent 1, unicode kept)."""
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def find_cell(nb: dict, entry: dict, where: str) -> dict:
    """The one code cell an entry names by `id` or by `tag`."""
    if ("id" in entry) == ("tag" in entry):
        raise SystemExit(f"{where}: give exactly one of `id` and `tag`")
    if "id" in entry:
        cells = [c for c in nb["cells"] if c.get("id") == str(entry["id"])]
    else:
        cells = [c for c in nb["cells"] if entry["tag"] in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise SystemExit(f"{where}: {len(cells)} cells match (need exactly one)")
    if cells[0]["cell_type"] != "code":
        raise SystemExit(f"{where}: the cell is not a code cell")
    return cells[0]


def check_entry(entry: dict, where: str) -> None:
    """The entry's name, caption and alt text are usable; stop with the reason if not."""
    for key in ("name", "caption", "alt"):
        if not str(entry.get(key, "")).strip():
            raise SystemExit(f"{where}: `{key}` is missing or empty")
    if not NAME.match(entry["name"]):
        raise SystemExit(f"{where}: name {entry['name']!r} is not lower-case-with-dashes")
    if FILE_NAME.match(entry["alt"].strip()):
        raise SystemExit(f"{where}: alt text {entry['alt']!r} is a file name, not a description")


def apply(nb: dict, entries: list[dict], notebook: str) -> list[str]:
    """Write each entry into its cell's metadata; the ids of the cells that changed."""
    changed = []
    for i, entry in enumerate(entries):
        where = f"{notebook} entry {i + 1} ({entry.get('name', '?')})"
        check_entry(entry, where)
        cell = find_cell(nb, entry, where)
        meta = cell.setdefault("metadata", {}).setdefault("mystnb", {})
        before = json.dumps(meta, sort_keys=True)
        figure = meta.setdefault("figure", {})
        figure["name"] = entry["name"]
        figure["caption"] = entry["caption"].strip()
        meta.setdefault("image", {})["alt"] = entry["alt"].strip()
        if "width" in entry:
            meta["image"]["width"] = str(entry["width"])
        if json.dumps(meta, sort_keys=True) != before:
            changed.append(cell.get("id", "?"))
    return changed


def executed_copy(path: Path, cache: Path = CACHE) -> dict:
    """The notebook with its outputs from the last executed build: its jupyter-cache entry
    (what `make book` renders), else myst-nb's copy in `_build/jupyter_execute/`."""
    import nbformat
    from jupyter_cache import get_cache

    try:
        _, nb = get_cache(cache).merge_match_into_notebook(nbformat.read(path, as_version=4))
        return json.loads(nbformat.writes(nb))
    except KeyError:
        pass
    executed = (
        EXECUTED / path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
    )
    nb = read(executed) if executed.exists() else {"cells": []}
    if not any(c.get("outputs") for c in nb["cells"]):
        raise SystemExit(f"{path}: no executed copy of this version: run `make book` first")
    return nb


def skeleton(notebooks: list[Path], cache: Path = CACHE) -> str:
    """A mapping to fill in: every cell that showed an image in the last executed build."""
    out: dict[str, list[dict]] = {}
    for path in notebooks:
        rel = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
        source_ids = {c.get("id") for c in read(path)["cells"]}
        entries = []
        for cell in executed_copy(path, cache)["cells"]:
            outputs = [o for o in cell.get("outputs", []) if o.get("output_type") != "stream"]
            if not any(k.startswith("image/") for o in outputs for k in o.get("data", {})):
                continue
            source = "".join(cell["source"])
            first = next((line for line in source.splitlines() if line.strip()), "")
            entry = {"id": cell.get("id"), "name": "fig-", "caption": "", "alt": ""}
            entry["# code"] = first[:70]
            if len(outputs) != 1:
                entry["# warning"] = f"{len(outputs)} outputs: the figure would wrap each"
            if cell.get("id") not in source_ids:
                entry["# warning"] = "this id is not in the source notebook"
            entries.append(entry)
        out[str(rel)] = entries
    text = yaml.safe_dump(out, sort_keys=False, allow_unicode=True, width=88)
    return re.sub(r"'(# \w+)': ", r"\1: ", text)  # the notes become YAML comments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mapping", nargs="?", type=Path, help="YAML or JSON mapping file")
    parser.add_argument("--check", action="store_true", help="exit 1 if a cell differs")
    parser.add_argument("--skeleton", nargs="+", type=Path, metavar="NOTEBOOK")
    parser.add_argument("--cache", type=Path, default=CACHE, help="the book's jupyter-cache")
    args = parser.parse_args(argv)
    if args.skeleton:
        print(skeleton(args.skeleton, args.cache), end="")
        return 0
    if args.mapping is None:
        parser.error("give a mapping file, or --skeleton NOTEBOOK ...")
    mapping = yaml.safe_load(args.mapping.read_text()) or {}
    names = [e.get("name") for entries in mapping.values() for e in entries]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SystemExit(f"figure names must be unique in the book: {repeated}")
    stale = 0
    for notebook, entries in mapping.items():
        path = Path(notebook) if Path(notebook).is_absolute() else ROOT / notebook
        nb = read(path)
        changed = apply(nb, entries, notebook)
        if args.check:
            stale += bool(changed)
            for cell_id in changed:
                print(f"{notebook}: cell {cell_id} lacks its caption metadata")
        elif changed:
            path.write_text(dump(nb))
            print(f"{notebook}: {len(changed)} figure(s) captioned")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
