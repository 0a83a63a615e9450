"""Write the Colab install lines of every chapter's setup cell (cell 0).

    python tools/set_setup_cell.py          # rewrite the notebooks
    python tools/set_setup_cell.py --check  # exit 1 if a notebook is out of date

In Colab, a chapter installs the `mmnb` release it was written for: the tag
`v<mmnb.__version__>` of the book's repository, whose one URL is `repository.url` in
`_config.yml`. Run this after changing either (and tag the release `v<version>`).
`MMNB_SOURCE` in the environment installs from elsewhere (a fork, a local wheel: the
packaging test points it at the wheel it just built).

Only the install block of cell 0 changes: the lines from `import sys` (or `import os`)
to the `%pip install` line; `from myst_nb import glue` becomes
`from mmnb.glue import glue` (the same outputs without myst-nb, which Colab lacks); and
the cell ends by applying the book's figure style (`STYLE`), where the figures are drawn
rather than inside `mmnb.setup`. Everything else in the notebook is left byte for byte.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BLOCK_START = re.compile(r"^import (os|sys)\s*$")
INSTALL = re.compile(r"^\s+%pip install")
GLUE_IMPORT = re.compile(r"^from myst_nb import glue\b")
LINE_LENGTH = 86  # chapters/ruff.toml
STYLE = "mmnb.plots.use_style()  # the book's figure style, for every figure below"


def repository_url(root: Path = ROOT) -> str:
    return yaml.safe_load((root / "_config.yml").read_text())["repository"]["url"].rstrip("/")


def package_version(root: Path = ROOT) -> str:
    text = (root / "mmnb" / "__init__.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"', text, re.M).group(1)


def install_spec(root: Path = ROOT) -> str:
    """What Colab installs: the git tag of this version, from the one repository URL."""
    return f"mmnb @ git+{repository_url(root)}@v{package_version(root)}"


def install_block(root: Path = ROOT) -> list[str]:
    return [
        "import os\n",
        "import sys\n",
        "\n",
        'if "google.colab" in sys.modules:  # Colab: install the mmnb of this notebook\n',
        *source_lines(install_spec(root)),
        '    %pip install -q "$MMNB_SOURCE"\n',
    ]


def source_lines(spec: str) -> list[str]:
    """The `MMNB_SOURCE = ...` assignment as `ruff format` writes it at the chapters'
    line length (`chapters/ruff.toml`): one line when it fits, else its arguments on one."""
    line = f'    MMNB_SOURCE = os.environ.get("MMNB_SOURCE", "{spec}")\n'
    if len(line) - 1 <= LINE_LENGTH:
        return [line]
    return [
        "    MMNB_SOURCE = os.environ.get(\n",
        f'        "MMNB_SOURCE", "{spec}"\n',
        "    )\n",
    ]


def rewrite(source: list[str], root: Path = ROOT) -> list[str]:
    """Cell 0's source lines with the install block replaced (or raises ValueError)."""
    lines = "".join(source).splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if BLOCK_START.match(line)), None)
    end = next((i for i, line in enumerate(lines) if INSTALL.match(line)), None)
    if start is None or end is None or end < start:
        raise ValueError("cell 0 has no `import sys` ... `%pip install` block")
    block = install_block(root)
    tail = lines[end + 1 :]
    if end + 1 == len(lines):  # the install line ended the cell: no trailing newline
        block = block[:-1] + [block[-1].rstrip("\n")]
    tail = [GLUE_IMPORT.sub("from mmnb.glue import glue", line) for line in tail]
    if not any(line.startswith(STYLE.split("  #")[0]) for line in tail):
        if tail and not tail[-1].endswith("\n"):
            tail[-1] += "\n"
        tail += ["\n", STYLE]
    return lines[:start] + block + tail


def update(path: Path, check: bool, root: Path = ROOT) -> bool:
    """Rewrite one notebook; returns True when it was (or, with check, would be) changed."""
    text = path.read_text()
    nb = json.loads(text)
    cell = nb["cells"][0]
    new = rewrite(cell["source"], root)
    if new == cell["source"] or "".join(new) == "".join(cell["source"]):
        return False
    if not check:
        # keep the notebook's own JSON layout: swap only cell 0's source
        cell["source"] = new
        indent = 1 if text.startswith('{\n "') else 2
        path.write_text(json.dumps(nb, indent=indent, ensure_ascii=False) + "\n")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale notebooks")
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "chapters").glob("*.ipynb"))
    stale = [p for p in notebooks if update(p, args.check)]
    verb = "out of date" if args.check else "rewritten"
    for path in stale:
        print(f"set_setup_cell: {path.name} {verb}")
    print(f"set_setup_cell: installs {install_spec()!r} ({len(stale)} {verb})")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
