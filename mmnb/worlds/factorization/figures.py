"""Chapter 02's own figure: graphs placed by their consistency and diversity."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["labeled_scatter"]


def labeled_scatter(
    ax: Axes,
    x: Sequence[float],
    y: Sequence[float],
    labels: Sequence[str],
    color: Sequence[float] | None = None,
    *,
    colorbar: str = "",
    cmap: str = "viridis",
    offsets: Mapping[str, tuple[float, float]] | None = None,
    **axes_settings: object,
) -> Axes:
    """Points (x, y), each with its text label, coloured by `color` (with a colorbar).

    A label sits 4 points up and right of its point unless `offsets` moves it (in points).
    """
    points = ax.scatter(x, y, c=color, cmap=cmap if color is not None else None, s=40,
                        edgecolors="black", linewidths=0.5, zorder=3)  # fmt: skip
    for xi, yi, label in zip(x, y, labels, strict=True):
        shift = (offsets or {}).get(label, (4, 4))
        ax.annotate(label, (xi, yi), textcoords="offset points", xytext=shift, fontsize=9)
    if color is not None:
        ax.figure.colorbar(points, ax=ax, label=colorbar)
    ax.set(**axes_settings)
    return ax
