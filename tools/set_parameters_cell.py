"""Write each chapter's `parameters` cell from its configs, and show the config as a table.

    python tools/set_parameters_cell.py            # rewrite the chapters in place
    python tools/set_parameters_cell.py --check    # exit 1 if a chapter is out of date

The parameters cell keeps the run's own lines (`profile`, `seed`, `n_seeds`, `device`,
`output_dir`) and lists every setting of the chapter's configs (found in the registry,
`mmnb.worlds.CHAPTERS`) as `name = None`, with its meaning from the config's source as a
comment; it is tagged `hide-input`, so the page shows it collapsed. Right after the cell
that builds the configs, a cell `cfg.table(...)` shows the settings as one table.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmnb.worlds import CHAPTERS, chapter_configs  # noqa: E402

RUN_LINES = ("profile", "seed", "n_seeds", "device", "output_dir")
WIDTH = 86  # the page's code column in a hide-input cell
BUILD = re.compile(r"^(\w+) = [\w.]+Config\.from_parameters\(globals\(\)\)", re.M)
TABLE_TAG = "config-table"


def knob_lines(chapter: str) -> list[str]:
    """`name = None  # meaning` for every setting of the chapter (comment above if long)."""
    lines = ["# every setting below: None takes the profile's value (the table below)"]
    seen: set[str] = set()
    for cls in chapter_configs(chapter):
        for name, meaning in cls.meanings().items():
            if name in seen:
                continue
            seen.add(name)
            line = f"{name} = None  # {meaning}" if meaning else f"{name} = None"
            # papermill cannot parse a line whose comment holds "=": put it above
            if len(line) <= WIDTH and "=" not in meaning:
                lines.append(line)
            else:
                lines += ["# " + w for w in textwrap.wrap(meaning, WIDTH - 2)]
                lines.append(f"{name} = None")
    return lines


def _source(text: str) -> list[str]:
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + [lines[-1]]


def render(path: Path) -> str:
    """The chapter's notebook text with its parameters and config-table cells written."""
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    params = next(c for c in cells if "parameters" in c["metadata"].get("tags", []))
    run = [
        line
        for line in "".join(params["source"]).splitlines()
        if line.split("=")[0].strip() in RUN_LINES
    ]
    params["source"] = _source("\n".join(run + knob_lines(path.stem)))
    tags = params["metadata"].setdefault("tags", [])
    if "hide-input" not in tags:
        tags.append("hide-input")
    builds = next(
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "code" and BUILD.search("".join(c["source"]))
    )
    names = BUILD.findall("".join(cells[builds]["source"]))
    table = {
        "cell_type": "code",
        "execution_count": None,
        "id": f"{path.stem[:2]}-config-table",
        "metadata": {"tags": [TABLE_TAG]},
        "outputs": [],
        "source": _source(
            "# the settings of this run: value, the book profile's, allowed values, meaning\n"
            f"{names[0]}.table({', '.join(names[1:])})"
        ),
    }
    after = cells[builds + 1] if builds + 1 < len(cells) else None
    if after is not None and TABLE_TAG in after["metadata"].get("tags", []):
        cells[builds + 1] = table
    else:
        cells.insert(builds + 1, table)
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report, exit 1 if stale")
    parser.add_argument("chapters", nargs="*", help="chapter names (default: every chapter)")
    args = parser.parse_args(argv)
    stale = []
    for chapter in args.chapters or CHAPTERS:
        path = ROOT / "chapters" / f"{chapter}.ipynb"
        text = render(path)
        if text == path.read_text():
            continue
        if args.check:
            stale.append(path.name)
        else:
            path.write_text(text)
            print(f"rewrote {path.relative_to(ROOT)}")
    if stale:
        print(f"out of date: {stale}; run python tools/set_parameters_cell.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
