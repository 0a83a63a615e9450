"""The book built without running its code: `make book-fast` (and a test of `make test`).

    python tools/book_fast.py

Execution off, it catches a broken table of contents, references, math and MyST syntax in
a minute. Glued numbers and numbered figures exist only in an executed build, so their
warnings are off here (`make book` keeps them); every other warning is an error. Writes
`_build/_config_fast.yml` and builds into `_build/fast/_build/html`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SUPPRESSED = ["mystnb.glue", "mystnb.glue_ref", "ref.numref"]  # executed builds only


def write_config(root: Path = ROOT) -> Path:
    """`_config.yml` with execution off, the executed build's warnings off and the local
    extensions' paths made absolute (the build runs from another folder)."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    config["sphinx"]["config"]["suppress_warnings"] = SUPPRESSED
    config["sphinx"]["local_extensions"] = {
        name: str((root / path).resolve())
        for name, path in config["sphinx"]["local_extensions"].items()
    }
    target = root / "_build" / "_config_fast.yml"
    target.parent.mkdir(exist_ok=True)
    target.write_text(yaml.safe_dump(config))
    return target


def build(root: Path = ROOT) -> int:
    """Build the book without execution; the exit status of `jupyter-book build`."""
    config = write_config(root)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(root), "--config", str(config),
               "--path-output", str(root / "_build" / "fast"),
               "--warningiserror", "--keep-going", "--quiet"]  # fmt: skip
    return subprocess.run(command, cwd=root).returncode


if __name__ == "__main__":
    sys.exit(build())
