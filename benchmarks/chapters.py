"""Wall time of every chapter at its "book" profile, run the way a sweep runs it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from mmnb.sweep import sweep

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"


def chapter_seconds(names: list[str] | None = None) -> dict[str, float | None]:
    """Seconds per chapter (kernel start included); `None` for a chapter that failed."""
    notebooks = sorted(CHAPTERS.glob("*.ipynb"))
    if names:
        notebooks = [nb for nb in notebooks if nb.stem in names]
    seconds: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory() as out:
        for notebook in notebooks:
            summary = sweep(notebook, {}, Path(out) / notebook.stem, progress=False)
            row = summary.table.iloc[0]
            seconds[notebook.stem] = float(row.wall_seconds) if row.status == "ok" else None
    return seconds
