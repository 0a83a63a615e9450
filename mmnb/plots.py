"""One figure style for the whole book, and curves with seed bands."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["PALETTE", "band", "panels", "use_style"]

PALETTE = ["#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6c4f9c", "#00798c", "#555555"]


def use_style() -> None:
    """Apply the book's matplotlib style (called by `mmnb.setup`)."""
    mpl.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 150,
            "figure.figsize": (6.4, 3.6),
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.25,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "legend.frameon": False,
            "legend.fontsize": 9,
            "axes.prop_cycle": mpl.cycler(color=PALETTE),
        }
    )


def panels(n: int, width: float = 3.2, height: float = 2.8) -> tuple[Figure, np.ndarray]:
    """A row of `n` panels in the book's proportions."""
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), constrained_layout=True, squeeze=False)
    return fig, axes[0]


def band(
    ax: Axes,
    x: Sequence[float] | np.ndarray,
    values: np.ndarray,
    label: str | None = None,
    color: str | None = None,
    replica_axis: int = -1,
) -> None:
    """Plot the mean over seeds with a ±1 standard-deviation band.

    `values` holds one curve per seed along `replica_axis` (default: last axis, as in
    `History[name]`, shape `[T, R]`).
    """
    values = np.moveaxis(np.asarray(values, dtype=float), replica_axis, -1)
    mean, std = values.mean(-1), values.std(-1)
    (line,) = ax.plot(x, mean, label=label, color=color, lw=1.8)
    ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2, lw=0)
