"""Drawing helpers of chapter 03: one style per series (colour, line style and marker, so
that the curves stay apart in grey scale) and legends placed off the curves."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes

from mmnb.plots import PALETTE, band

__all__ = ["GREY", "LABELS", "STYLES", "legend_below", "legend_in", "styled_band", "style"]

_LINES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v")
STYLES = {
    name: {"color": PALETTE[i], "ls": _LINES[i % 4], "marker": _MARKERS[i]}
    for i, name in enumerate(("symmetric", "x_to_y", "floor"))
}
GREY = {"color": PALETTE[6], "ls": "-", "marker": "None"}
LABELS = {"symmetric": "symmetric", "x_to_y": "x → y only", "floor": "floor (no initial offsets)"}


def style(i: int) -> dict[str, str]:
    """The i-th series' colour, line style and marker."""
    return {"color": PALETTE[i % len(PALETTE)], "ls": _LINES[i % 4], "marker": _MARKERS[i % 5]}


def styled_band(
    ax: Axes,
    x: Sequence[float] | np.ndarray,
    values: np.ndarray,
    label: str,
    look: dict[str, str],
    marks: int = 8,
) -> None:
    """`mmnb.plots.band` (mean ± s.d. over replicas) with a line style and about `marks`
    markers along the curve."""
    band(ax, x, values, label=label, color=look["color"])
    line = ax.get_lines()[-1]
    line.set_linestyle(look["ls"])
    line.set_marker(look["marker"])
    line.set_markersize(4)
    line.set_markevery(max(1, len(np.asarray(x)) // marks))


def legend_below(ax: Axes, ncol: int = 1) -> None:
    """The axes' legend under the axes (9 pt), where it covers no curve."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=ncol, fontsize=9)


def legend_in(ax: Axes, source: Sequence[Axes], title: str | None = None) -> None:
    """Turn `ax` into a legend box holding the labelled artists of the `source` axes
    (each label once)."""
    handles: dict[str, object] = {}
    for other in source:
        for handle, label in zip(*other.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    ax.axis("off")
    ax.legend(list(handles.values()), list(handles), loc="center", fontsize=9, title=title)
