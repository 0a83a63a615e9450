"""One figure style for the whole book, and curves with seed bands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "PALETTE",
    "band",
    "grouped_bars",
    "matrix_image",
    "panels",
    "phase_diagram",
    "seed_bands",
    "spectrum",
    "use_style",
]

PALETTE = ["#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6c4f9c", "#00798c", "#555555"]


def use_style() -> None:
    """Apply the book's matplotlib style (each chapter's first cell calls it)."""
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
    fig, axes = plt.subplots(
        1, n, figsize=(width * n, height), constrained_layout=True, squeeze=False
    )
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


def seed_bands(
    ax: Axes,
    x: Sequence[float] | np.ndarray,
    series: Mapping[str, np.ndarray],
    *,
    lines: Mapping[str, float] | None = None,
    xlog: bool = False,
    ylog: bool = False,
    xticks: bool = False,
    **axes_settings: object,
) -> Axes:
    """Several seed bands on one axes: `series[label]` is `[len(x), R]` (one column per seed).

    `lines` draws labelled horizontal reference lines (dotted, grey tones); `xticks=True`
    labels every x value (useful on log axes); `axes_settings` go to `ax.set`.
    """
    for label, values in series.items():
        band(ax, x, values, label=label)
    for i, (label, y) in enumerate((lines or {}).items()):
        ax.axhline(y, color=str(0.2 + 0.25 * i), ls=":", lw=1.2, label=label)
    ax.set(xscale="log" if xlog else "linear", yscale="log" if ylog else "linear")
    if xticks:
        ax.set_xticks(list(x), [f"{v:g}" for v in x])
        ax.minorticks_off()
    ax.set(**axes_settings)
    if series or lines:
        ax.legend(fontsize=8)
    return ax


def cell_edges(centers: np.ndarray, log: bool) -> np.ndarray:
    """Cell boundaries halfway between neighbouring grid values (geometrically if `log`)."""
    c = np.log(centers) if log else centers
    if len(c) == 1:
        edges = np.array([c[0] - 0.5, c[0] + 0.5])
    else:
        mid = (c[1:] + c[:-1]) / 2
        edges = np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])
    return np.exp(edges) if log else edges


def phase_diagram(
    df: pd.DataFrame | str | Path,
    x: str,
    y: str,
    value: str,
    ax: Axes | None = None,
    *,
    logx: bool = False,
    logy: bool = False,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    annotate: bool = True,
) -> Axes:
    """Heat map of column `value` over the grid of columns `x` and `y` of a sweep's table.

    Runs sharing (x, y) (seeds) are averaged; a combination with no finite value (all its
    runs failed) stays blank. Cells are centred on the grid values in data coordinates
    (on log axes with `logx`/`logy`), so theory lines and regions can be drawn on top
    with the usual `ax` calls. `df` may also be the path of a sweep's results.csv.
    """
    if not isinstance(df, pd.DataFrame):
        df = pd.read_csv(df)
    missing = [name for name in (x, y, value) if name not in df.columns]
    if missing:
        raise ValueError(f"column(s) {missing} not in the table; columns: {list(df.columns)}")
    for name in (x, y, value):
        if not pd.api.types.is_numeric_dtype(df[name]):
            raise ValueError(f"column {name!r} must be numeric, got dtype {df[name].dtype}")
    xs = np.sort(df[x].dropna().unique())
    ys = np.sort(df[y].dropna().unique())
    if not len(xs) or not len(ys):
        raise ValueError(f"columns {x!r} and {y!r} hold no values to plot")
    for name, values, log in ((x, xs, logx), (y, ys, logy)):
        if log and values[0] <= 0:
            raise ValueError(f"a log axis needs positive values; column {name!r} has {values[0]}")
    grid = df.pivot_table(index=y, columns=x, values=value, aggfunc="mean")
    grid = grid.reindex(index=ys, columns=xs).to_numpy(dtype=float)
    if ax is None:
        ax = plt.subplots(constrained_layout=True)[1]
    mesh = ax.pcolormesh(
        cell_edges(xs, logx),
        cell_edges(ys, logy),
        np.ma.masked_invalid(grid),
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
    )
    ax.figure.colorbar(mesh, ax=ax, label=value)
    if annotate:
        for (i, j), v in np.ndenumerate(grid):
            if np.isfinite(v):
                r, g, b, _ = mesh.cmap(mesh.norm(v))
                dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
                color = "white" if dark else "black"
                ax.text(xs[j], ys[i], f"{v:.2f}", ha="center", va="center", fontsize=8, color=color)
    ax.set_xscale("log" if logx else "linear")
    ax.set_yscale("log" if logy else "linear")
    ax.set_xticks(xs, [f"{v:g}" for v in xs])
    ax.set_yticks(ys, [f"{v:g}" for v in ys])
    ax.minorticks_off()
    ax.set(xlabel=x, ylabel=y)
    ax.grid(False)
    return ax


def grouped_bars(
    ax: Axes,
    groups: Mapping[str, Mapping[str, np.ndarray]],
    *,
    chance: float | None = None,
    **axes_settings: object,
) -> Axes:
    """Bars of the mean ± s.d. over seeds, side by side.

    `groups[series][category]` holds one value per seed; categories run along the x axis
    (in the order they first appear), each series gets one bar per category it has.
    `chance` draws a dotted reference line; `axes_settings` go to `ax.set`.
    """
    categories = list(dict.fromkeys(c for series in groups.values() for c in series))
    width = 0.8 / max(len(groups), 1)
    for j, (name, series) in enumerate(groups.items()):
        pos = [i + (j - (len(groups) - 1) / 2) * width for i, c in enumerate(categories)
               if c in series]  # fmt: skip
        values = [np.asarray(series[c], dtype=float) for c in categories if c in series]
        ax.bar(pos, [v.mean() for v in values], width=0.95 * width,
               yerr=[v.std() for v in values], label=name, capsize=2)  # fmt: skip
    if chance is not None:
        ax.axhline(chance, color="gray", ls=":", lw=1, label="chance")
    ax.set_xticks(range(len(categories)), categories, fontsize=8)
    ax.set(**axes_settings)
    ax.legend(fontsize=8)
    return ax


def matrix_image(
    ax: Axes,
    values: np.ndarray,
    *,
    lim: float | None = None,
    annotate: str = "",
    ticks: Sequence[object] | None = None,
    cmap: str = "RdBu_r",
    colorbar: bool = False,
    **imshow_options: object,
) -> Axes:
    """A matrix as an image, coloured symmetrically around 0 (±`lim`, default its max |value|).

    `annotate` is a format (e.g. ".3f") to write each value in its cell; `ticks` labels
    rows and columns; other options (`extent`, `origin`, `vmin`, ...) go to `imshow`.
    """
    values = np.asarray(values, dtype=float)
    lim = float(np.abs(values).max()) if lim is None else lim
    options = {"vmin": -lim, "vmax": lim, **imshow_options}
    image = ax.imshow(values, cmap=cmap, **options)
    if annotate:
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, format(v, annotate), ha="center", va="center", fontsize=8)
    if ticks is not None:
        ax.set_xticks(range(len(ticks)), [str(t) for t in ticks])
        ax.set_yticks(range(len(ticks)), [str(t) for t in ticks])
    if colorbar:
        ax.figure.colorbar(image, ax=ax)
    ax.grid(False)
    return ax


def spectrum(ax: Axes, singular_values: np.ndarray, rel_tol: float = 1e-10) -> Axes:
    """Singular values on a log axis (those above `rel_tol` · the largest), with the
    Eckart–Young ceiling √(Σ_{i≤r} σ_i² / Σ σ_i²), the best correlation of a rank-r
    matrix, on a second axis (dashed)."""
    s = np.sort(np.asarray(singular_values, dtype=float))[::-1]
    s = s[s > rel_tol * s[0]]
    rank = np.arange(1, len(s) + 1)
    ax.semilogy(rank, s, marker=".", lw=1)
    ax.yaxis.set_minor_formatter(mpl.ticker.NullFormatter())
    ax.set(xlabel="index r", ylabel="singular value")
    twin = ax.twinx()
    twin.plot(rank, np.sqrt(np.cumsum(s**2) / np.sum(s**2)), c="gray", ls="--")
    twin.set_ylabel("best rank-r correlation", color="gray")
    twin.grid(False)
    return ax
