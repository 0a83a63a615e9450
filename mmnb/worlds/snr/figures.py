"""Chapter 01's figures: training curves, growth rates, the phase diagram's heat maps and
the colored digits, in the book's style (`mmnb.plots`)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mmnb.plots import PALETTE, band

__all__ = ["grid_heatmaps", "growth_rates", "image_grid", "training_curves"]

LINE_STYLES = ("-", "--", "-.", ":")


def training_curves(
    curves: Sequence[tuple[str, dict[str, tuple[np.ndarray, np.ndarray]]]],
    panels_: Sequence[tuple[str, str]],
    log_first: bool = True,
    chance: float | None = 0.5,
    ncols: int = 2,
) -> Figure:
    """One panel per (`name`, `title`) of `panels_`, `ncols` a row: each model's curve with
    a seed band, one line style per model (solid, dashed, ...).

    `curves` is a list of (label, {name: (steps, values [T, R])}) pairs, one per model.
    The first panel gets a log y-axis (`log_first`); the second a dashed chance line.
    """
    rows = -(-len(panels_) // ncols)
    fig, grid = plt.subplots(
        rows, ncols, figsize=(3.6 * ncols, 2.7 * rows), constrained_layout=True, squeeze=False
    )
    axes = grid.ravel()
    for ax in axes[len(panels_) :]:
        ax.set_visible(False)
    for ax, (name, title) in zip(axes, panels_, strict=False):
        for k, (label, series) in enumerate(curves):
            steps, values = series[name]
            band(ax, steps, values, label=label, color=PALETTE[(k + 1) % 2 if k < 2 else k])
            ax.get_lines()[-1].set_linestyle(LINE_STYLES[k % len(LINE_STYLES)])
        ax.set_title(title)
        ax.set_xlabel("step")
    if log_first:
        axes[0].set_yscale("log")
    if chance is not None and len(panels_) > 1:
        axes[1].axhline(chance, ls=":", c="gray", lw=1, label="chance")
    # one legend, where the falling loss curves leave room (upper right of the first)
    axes[0].legend(*axes[min(1, len(panels_) - 1)].get_legend_handles_labels(), loc="upper right")
    return fig


def growth_rates(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray, float]],
    fit_steps: int,
    ax: Axes | None = None,
) -> Axes:
    """log(coefficient) against the step with the predicted slope drawn from the same start.

    `curves`: (label, steps [T], values [T, R], predicted per-step rate) per curve, one line
    style each; the predicted line (dotted) is drawn over twice the fit. The shaded span
    marks the steps of the fit.
    """
    if ax is None:
        ax = plt.subplots(figsize=(6.4, 3.6), constrained_layout=True)[1]
    for k, (label, steps, values, rate) in enumerate(curves):
        color = PALETTE[k % len(PALETTE)]
        logs = np.log(np.asarray(values, dtype=float))
        band(ax, steps, logs, label=label, color=color)
        ax.get_lines()[-1].set_linestyle(LINE_STYLES[k % len(LINE_STYLES)])
        start, near = logs[0].mean(), steps <= steps[0] + 2 * fit_steps
        ax.plot(steps[near], start + rate * (steps[near] - steps[0]), ls=":", c=color, lw=1.2)
    ax.axvspan(0, fit_steps, color="0.9", zorder=0)
    ax.set(xlabel="step", ylabel="log coefficient")
    ax.plot([], [], ls=":", c="0.3", lw=1.2, label="predicted slope")
    ax.legend(loc="upper left")
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
    axes: Sequence[Axes] | None = None,
) -> Figure:
    """Heat maps over a grid (`maps`: title, values [len(x), len(y)], cmap, (vmin, vmax)),
    one equal cell per grid point, each annotated with its value; two panels a row unless
    `axes` (one per map, in a figure made by the caller) are given.

    `uncertain` (boolean [len(x), len(y)]) writes the last map's value in grey and in
    parentheses where it is within its uncertainty of 0; `window` = (x_low, x_high,
    y_low) outlines a region open upwards; `marker` marks one point with a hollow star.
    Points between grid values are placed by log-linear interpolation.
    """
    if axes is None:
        rows = -(-len(maps) // 2)
        fig, grid = plt.subplots(
            rows, 2, figsize=(7.2, 3.1 * rows), constrained_layout=True, squeeze=False
        )
        for ax in grid.ravel()[len(maps) :]:
            ax.set_visible(False)
        axes = list(grid.ravel())
    fig = axes[0].figure
    x, y = np.asarray(x, float), np.asarray(y, float)

    def at(v: float, grid: np.ndarray) -> float:
        return float(np.interp(np.log(v), np.log(grid), np.arange(len(grid))))

    xe, ye = np.arange(len(x) + 1) - 0.5, np.arange(len(y) + 1) - 0.5
    for k, (ax, (title, values, cmap, (low, high))) in enumerate(zip(axes, maps, strict=False)):
        mesh = ax.pcolormesh(xe, ye, np.asarray(values).T, cmap=cmap, vmin=low, vmax=high)
        fig.colorbar(mesh, ax=ax, shrink=0.85)
        last = uncertain is not None and k == len(maps) - 1
        for (i, j), v in np.ndenumerate(values):
            faint = last and bool(uncertain[i, j])
            text = f"({v:.2f})" if faint else f"{v:.2f}"
            style = {"color": "0.3", "fontsize": 8} if faint else {"fontsize": 9}
            ax.text(i, j, text, ha="center", va="center", **style)
        if window is not None:
            x0, x1, y0 = at(window[0], x), at(window[1], x), at(window[2], y) - 0.5
            box = mpl.patches.Rectangle(
                (x0, y0), x1 - x0, ye[-1] - y0, fill=False, ec="k", lw=1.5, label="theorem's window"
            )
            ax.add_patch(box)
        if marker is not None:
            point = (at(marker[0], x), at(marker[1], y) + 0.3)
            ax.plot(*point, "*", mfc="none", mec="r", mew=1.2, ms=8, label="Figure 1")
        ax.set(
            xlabel=xlabel, ylabel=ylabel, title=title, xlim=(xe[0], xe[-1]), ylim=(ye[0], ye[-1])
        )
        ax.set_xticks(range(len(x)), [f"{v:g}" for v in x])
        ax.set_yticks(range(len(y)), [f"{v:g}" for v in y])
        ax.grid(False)
    return fig


def image_grid(rows: Sequence[tuple[str, np.ndarray]], titles: Sequence[str]) -> Figure:
    """Rows of RGB images (`rows`: (row name, images [K, H, W, 3])), one title per column
    above the first row and each row's name at its left."""
    size = (min(7.2, 0.62 * len(titles) + 0.9), 0.75 * len(rows) + 0.35)
    fig, axes = plt.subplots(len(rows), len(titles), figsize=size, squeeze=False)
    for i, (name, images) in enumerate(rows):
        for j, title in enumerate(titles):
            axes[i, j].imshow(np.clip(images[j], 0, 1))
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            for spine in axes[i, j].spines.values():
                spine.set_visible(False)
            if i == 0:
                axes[i, j].set_title(title, fontsize=10)
        axes[i, 0].set_ylabel(name, fontsize=10, rotation=0, ha="right", va="center")
    return fig
