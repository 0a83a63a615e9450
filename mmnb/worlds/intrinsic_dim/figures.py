"""Chapter 05's own figure helpers: lines told apart without colour, legends off the
curves, and the final-temperature-against-batch-spacing scatter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["LINE_STYLES", "MARKERS", "legend_below", "mark_lines", "spacing_scatter"]

MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LINE_STYLES = ("-", "--", "-.", (0, (1, 1)), (0, (5, 1, 1, 1)))


def mark_lines(ax: Axes, markevery: int | None = None) -> None:
    """Give each data line of `ax` (not the reference lines) its own marker and line
    style, so that the curves stay apart in grey scale."""
    data = [line for line in ax.get_lines() if len(line.get_xdata()) > 2]
    for i, line in enumerate(data):
        line.set_marker(MARKERS[i % len(MARKERS)])
        line.set_markersize(4)
        line.set_linestyle(LINE_STYLES[i % len(LINE_STYLES)])
        if markevery:
            line.set_markevery(markevery)


def legend_below(ax: Axes, ncol: int = 1) -> None:
    """The axes' legend under the axes (9 pt), where it covers no curve."""
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.22),
        ncol=ncol,
        fontsize=9,
        frameon=False,
    )


def spacing_scatter(
    fig: Figure,
    ax: Axes,
    sets: Sequence[tuple[str, Any]],
    ratio: float,
    d_main: int,
) -> None:
    """Final τ against the squared batch spacing δ², one point per replica.

    `sets` holds (label, measures) pairs; labels "d = …" are the learned-τ runs by output
    dimension, coloured by d on a sequential map (its colour bar beside `ax`); every other
    set (trained at `d_main`) gets a black marker of its own. The dashed line is
    `ratio` · δ².
    """
    dims = [int(label[4:]) for label, _ in sets if label.startswith("d = ")]
    norm = mpl.colors.LogNorm(min(dims), max(dims)) if dims else None
    cmap = mpl.colormaps["viridis"]
    others = 0
    for label, m in sets:
        if label.startswith("d = "):
            d = int(label[4:])
            ax.scatter(m.spacing, m.tau, s=22, color=cmap(norm(d)), marker="o", lw=0)
        else:
            marker = MARKERS[1 + others % (len(MARKERS) - 1)]
            others += 1
            ax.scatter(
                m.spacing, m.tau, s=30, marker=marker, facecolor="none",
                edgecolor="black", lw=1.0, label=f"{label}, d = {d_main}",
            )  # fmt: skip
    spacing = np.concatenate([m.spacing for _, m in sets])
    line = np.geomspace(spacing.min(), spacing.max())
    ax.plot(line, ratio * line, "k--", lw=1, label="median τ/δ_N², dimension ≥ 3")
    ax.set(xscale="log", yscale="log")
    if norm is not None:
        bar = fig.colorbar(
            mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="output dimension d"
        )
        bar.set_ticks(sorted(set(dims)), labels=[str(d) for d in sorted(set(dims))])
        bar.ax.minorticks_off()
