"""Chapter 01's figures: training curves, growth rates, the phase diagram's heat maps and
the colored digits, in the book's style (`mmnb.plots`)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mmnb.plots import PALETTE, band, cell_edges, panels

__all__ = ["grid_heatmaps", "growth_rates", "image_grid", "training_curves"]


def training_curves(
    curves: Sequence[tuple[str, dict[str, tuple[np.ndarray, np.ndarray]]]],
    panels_: Sequence[tuple[str, str]],
    log_first: bool = True,
    chance: float | None = 0.5,
) -> Figure:
    """One panel per (`name`, `title`) of `panels_`: each model's curve with a seed band.

    `curves` is a list of (label, {name: (steps, values [T, R])}) pairs, one per model.
    The first panel gets a log y-axis (`log_first`); the second a dashed chance line.
    """
    fig, axes = panels(len(panels_))
    for ax, (name, title) in zip(axes, panels_, strict=True):
        for k, (label, series) in enumerate(curves):
            steps, values = series[name]
            band(ax, steps, values, label=label, color=PALETTE[(k + 1) % 2 if k < 2 else k])
        ax.set_title(title)
        ax.set_xlabel("step")
    if log_first:
        axes[0].set_yscale("log")
    if chance is not None and len(axes) > 1:
        axes[1].axhline(chance, ls="--", c="gray", lw=1)
        axes[1].legend()
    return fig


def growth_rates(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray, float]],
    fit_steps: int,
    ax: Axes | None = None,
) -> Axes:
    """log(coefficient) against the step with the predicted slope drawn from the same start.

    `curves`: (label, steps [T], values [T, R], predicted per-step rate) per curve; the
    predicted line is drawn over twice the fit. The shaded span marks the steps of the fit.
    """
    if ax is None:
        ax = plt.subplots(figsize=(6.4, 3.6), constrained_layout=True)[1]
    for k, (label, steps, values, rate) in enumerate(curves):
        color = PALETTE[k % len(PALETTE)]
        logs = np.log(np.asarray(values, dtype=float))
        band(ax, steps, logs, label=label, color=color)
        start, near = logs[0].mean(), steps <= steps[0] + 2 * fit_steps
        ax.plot(steps[near], start + rate * (steps[near] - steps[0]), ls=":", c=color, lw=1.2)
    ax.axvspan(0, fit_steps, color="0.9", zorder=0)
    ax.set(xlabel="step", ylabel="log coefficient")
    ax.legend(fontsize=7, ncol=2)
    return ax


def grid_heatmaps(
    x: np.ndarray,
    y: np.ndarray,
    maps: Sequence[tuple[str, np.ndarray, str, tuple[float, float]]],
    uncertain: np.ndarray | None = None,
    window: tuple[float, float, float] | None = None,
    marker: tuple[float, float] | None = None,
    xlabel: str = "",
    ylabel: str = "",
) -> Figure:
    """Heat maps over a grid (`maps`: title, values [len(x), len(y)], cmap, (vmin, vmax)),
    on log axes, each cell annotated with its value.

    `uncertain` (boolean [len(x), len(y)]) hatches the cells whose last-map value is within
    its uncertainty of 0; `window` = (x_low, x_high, y_low) outlines a region open upwards;
    `marker` marks one point with a red star.
    """
    fig, axes = panels(len(maps), width=3.7, height=3.2)
    xe, ye = cell_edges(np.asarray(x, float), True), cell_edges(np.asarray(y, float), True)
    for k, (ax, (title, values, cmap, (low, high))) in enumerate(zip(axes, maps, strict=True)):
        mesh = ax.pcolormesh(xe, ye, np.asarray(values).T, cmap=cmap, vmin=low, vmax=high)
        fig.colorbar(mesh, ax=ax, shrink=0.85)
        for (i, j), v in np.ndenumerate(values):
            ax.text(x[i], y[j], f"{v:.2f}", ha="center", va="center", fontsize=6.5)
        if uncertain is not None and k == len(maps) - 1:
            for i, j in zip(*np.nonzero(uncertain), strict=True):
                width, height = xe[i + 1] - xe[i], ye[j + 1] - ye[j]
                cell = mpl.patches.Rectangle(
                    (xe[i], ye[j]), width, height, fill=False, hatch="xx", ec="0.4", lw=0
                )
                ax.add_patch(cell)
        if window is not None:
            x0, x1, y0 = window
            box = mpl.patches.Rectangle(
                (x0, y0), x1 - x0, ye[-1] - y0, fill=False, ec="k", lw=1.2, label="theorem's window"
            )
            ax.add_patch(box)
        if marker is not None:
            ax.plot(*marker, "*", c="r", ms=9, label="Figure 1")
        limits = {"xlim": (xe[0], xe[-1]), "ylim": (ye[0], ye[-1])}
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel, title=title, **limits)
        ax.set_xticks(x, [f"{v:g}" for v in x])
        ax.set_yticks(y, [f"{v:g}" for v in y])
        ax.minorticks_off()
        ax.grid(False)
    return fig


def image_grid(rows: Sequence[tuple[str, np.ndarray]], titles: Sequence[str]) -> Figure:
    """Rows of RGB images (`rows`: (row name, images [K, H, W, 3])), one title per column."""
    size = (0.8 * len(titles), 0.95 * len(rows))
    fig, axes = plt.subplots(len(rows), len(titles), figsize=size, squeeze=False)
    for i, (name, images) in enumerate(rows):
        for j, title in enumerate(titles):
            axes[i, j].imshow(np.clip(images[j], 0, 1))
            axes[i, j].set_title(f"{name}: {title}", fontsize=7)
            axes[i, j].axis("off")
    return fig
