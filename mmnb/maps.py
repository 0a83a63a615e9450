"""Regime maps: where a chapter's claims hold, over two of its knobs, made by sweeps.

A chapter's world package declares its map as `REGIME_MAP` in `regime.py`: two axes
(knobs and values) that carry the theory's premises, the claims to read in every cell,
the knobs fixed for every cell, the replica seeds, and where the theory predicts each
claim holds (`premise`). `python tools/maps.py` (`make maps`) runs the chapter
notebook over the grid with `mmnb.sweep` and stores, in `data/maps/<chapter>/`:

- `cells.csv`: one row per cell, seed and claim (verdict, mean, replica spread, statistic,
  threshold);
- `provenance.json`: the command, package version, commit, date, machine, wall time and
  the chapter's code key (the execution cache's), which makes a map stale when the code
  it ran changes.

`cells` reads a sweep's run folders into that table; `verdicts` decides a cell over its
seeds; `draw` draws one panel per claim: the verdict as colour, the value as text, the
predicted boundary as a line between cells; `show` is what a chapter calls to draw its
stored map and glue, for its prose, the share of cells where each claim held.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "MAPS_DIR",
    "Axis",
    "RegimeMap",
    "cells",
    "declared",
    "draw",
    "held_share",
    "load",
    "regime_map",
    "repository_root",
    "show",
    "verdicts",
]

MAPS_DIR = Path("data") / "maps"
CELL_COLUMNS = [
    "x",
    "y",
    "seed",
    "claim",
    "kind",
    "verdict",
    "mean",
    "spread",
    "statistic",
    "threshold",
]


@dataclass(frozen=True)
class Axis:
    """One axis of a map: a knob of the chapter's config and the values it takes."""

    knob: str
    values: tuple[Any, ...]
    label: str = ""

    def __post_init__(self) -> None:
        if len(self.values) < 2:
            raise ValueError(f"axis {self.knob!r} needs at least two values")

    @property
    def title(self) -> str:
        return self.label or self.knob


@dataclass(frozen=True)
class RegimeMap:
    """A chapter's regime map (see the module docstring)."""

    chapter: str
    x: Axis
    y: Axis
    claims: tuple[str, ...]
    premise: Callable[[str, Any, Any], bool]
    boundary: str
    fixed: Mapping[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        if not self.claims:
            raise ValueError(f"{self.chapter}: a map reads at least one claim")
        clash = {self.x.knob, self.y.knob, "seed"} & set(self.fixed)
        if clash or self.x.knob == self.y.knob:
            raise ValueError(f"{self.chapter}: knobs {sorted(clash)} set twice in the map")

    def grid(self) -> dict[str, list[Any]]:
        """The sweep grid: both axes, the seeds, the fixed knobs, theory checks off."""
        grid: dict[str, list[Any]] = {k: [v] for k, v in self.fixed.items()}
        grid["theory_checks"] = [False]
        grid[self.x.knob] = list(self.x.values)
        grid[self.y.knob] = list(self.y.values)
        grid["seed"] = list(self.seeds)
        return grid

    @property
    def n_runs(self) -> int:
        return len(self.x.values) * len(self.y.values) * len(self.seeds)


def regime_map(chapter: str) -> RegimeMap | None:
    """The chapter's `REGIME_MAP`, or None when its world declares none."""
    import importlib

    from mmnb.worlds import CHAPTERS

    name = CHAPTERS.get(chapter, chapter)
    try:
        module = importlib.import_module(f"mmnb.worlds.{name}.regime")
    except ModuleNotFoundError as err:
        if err.name == f"mmnb.worlds.{name}.regime":
            return None
        raise
    return module.REGIME_MAP


def declared() -> list[str]:
    """The chapters whose world declares a regime map, in the book's order."""
    from mmnb.worlds import CHAPTERS

    return [chapter for chapter in CHAPTERS if regime_map(chapter) is not None]


def cells(spec: RegimeMap, run_folders: Sequence[Path]) -> pd.DataFrame:
    """One row per run folder and claim of the map: the claim's record at that cell."""
    rows = []
    for folder in run_folders:
        path = Path(folder) / "metrics.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        params = data.get("params", {})
        if spec.x.knob not in params or spec.y.knob not in params:
            continue
        records = {c["name"]: c for c in data.get("claims", [])}
        for name in spec.claims:
            c = records.get(name, {})
            values = [v for v in c.get("values", []) if v is not None]
            rows.append(
                {
                    "x": params[spec.x.knob],
                    "y": params[spec.y.knob],
                    "seed": params.get("seed"),
                    "claim": name,
                    "kind": c.get("kind", "missing"),
                    "verdict": c.get("verdict", "missing"),
                    "mean": c.get("mean"),
                    "spread": float(np.std(values, ddof=1)) if len(values) > 1 else None,
                    "statistic": c.get("statistic"),
                    "threshold": c.get("threshold"),
                }
            )
    return pd.DataFrame(rows, columns=CELL_COLUMNS)


def verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """One verdict per cell and claim over its seeds: `holds` when it held at every seed,
    `fails` when it failed at one, else `undecided` (the claims rule `all` over seeds)."""

    def one(group: pd.DataFrame) -> pd.Series:
        v = set(group["verdict"])
        verdict = "fails" if "fails" in v else "holds" if v == {"holds"} else "undecided"
        return pd.Series({"verdict": verdict, "mean": pd.to_numeric(group["mean"]).mean()})

    return (
        table.groupby(["claim", "x", "y"], sort=False)[["verdict", "mean"]].apply(one).reset_index()
    )


def held_share(spec: RegimeMap, table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per claim: the share of cells where it held, and the share where the measured
    verdict agreed with the theory's `premise` (held inside, did not hold outside)."""
    out = {}
    decided = verdicts(table)
    for name in spec.claims:
        mine = decided[decided["claim"] == name]
        if mine.empty:
            continue
        held = mine["verdict"] == "holds"
        predicted = np.array(
            [spec.premise(name, x, y) for x, y in zip(mine["x"], mine["y"], strict=True)]
        )
        out[name] = {
            "held": float(held.mean()),
            "agrees": float((held.to_numpy() == predicted).mean()),
            "cells": int(len(mine)),
        }
    return out


def load(chapter: str, root: Path = Path(".")) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A stored map: its cells table and provenance (FileNotFoundError names the command
    that makes it)."""
    folder = Path(root) / MAPS_DIR / chapter
    if not (folder / "cells.csv").exists():
        raise FileNotFoundError(
            f"no regime map for {chapter} in {folder}; make it with "
            f"`python tools/maps.py {chapter}` (or `make maps`)"
        )
    table = pd.read_csv(folder / "cells.csv")
    provenance = json.loads((folder / "provenance.json").read_text())
    return table, provenance


_COLOURS = {"holds": "#2e933c", "fails": "#d1495b", "undecided": "#bbbbbb", "missing": "#ffffff"}
# hatching tells the verdicts apart in grey scale too
_HATCHES = {"holds": "", "fails": "///", "undecided": "...", "missing": ""}


def draw(spec: RegimeMap, table: pd.DataFrame, digits: int = 2) -> Any:
    """One panel per claim: cells coloured by verdict, the mean value written in each,
    and the theory's predicted boundary drawn between cells where `premise` changes."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    decided = verdicts(table)
    xs, ys = list(spec.x.values), list(spec.y.values)
    n = len(spec.claims)
    cols = min(n, 2)  # at most two panels a row: readable at the page's width
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.8 * cols, 3.2 * rows + 0.4), squeeze=False, constrained_layout=True
    )
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, spec.claims, strict=False):
        mine = decided[decided["claim"] == name]
        for _, row in mine.iterrows():
            i, j = _index(xs, row["x"]), _index(ys, row["y"])
            if i is None or j is None:
                continue
            ax.add_patch(
                plt.Rectangle(
                    (i - 0.5, j - 0.5),
                    1,
                    1,
                    facecolor=_COLOURS[row["verdict"]],
                    edgecolor="white",
                    hatch=_HATCHES[row["verdict"]],
                    alpha=0.8,
                )
            )
            if np.isfinite(row["mean"]):
                ax.text(i, j, f"{row['mean']:.{digits}g}", ha="center", va="center", fontsize=9)
        _boundary(ax, spec, name, xs, ys)
        ax.set_xlim(-0.5, len(xs) - 0.5)
        ax.set_ylim(-0.5, len(ys) - 0.5)
        ax.set_xticks(range(len(xs)), [f"{v:g}" if _num(v) else str(v) for v in xs])
        ax.set_yticks(range(len(ys)), [f"{v:g}" if _num(v) else str(v) for v in ys])
        ax.set_xlabel(spec.x.title)
        ax.set_ylabel(spec.y.title)
        ax.set_title(name, fontsize=10)
        ax.grid(False)
    handles = [
        Patch(facecolor=c, edgecolor="white", hatch=_HATCHES[v], label=v)
        for v, c in _COLOURS.items()
        if v != "missing"
    ]
    handles.append(plt.Line2D([], [], color="black", lw=2, label="predicted boundary"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=9)
    return fig


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _index(values: list[Any], v: Any) -> int | None:
    for i, u in enumerate(values):
        if u == v or (_num(u) and _num(v) and np.isclose(float(u), float(v))):
            return i
    return None


def _boundary(ax: Any, spec: RegimeMap, claim: str, xs: list[Any], ys: list[Any]) -> None:
    """Black segments on the cell edges where the theory's prediction changes."""
    inside = np.array([[spec.premise(claim, x, y) for x in xs] for y in ys])
    for j in range(len(ys)):
        for i in range(len(xs)):
            if i + 1 < len(xs) and inside[j, i] != inside[j, i + 1]:
                ax.plot([i + 0.5, i + 0.5], [j - 0.5, j + 0.5], color="black", lw=2)
            if j + 1 < len(ys) and inside[j, i] != inside[j + 1, i]:
                ax.plot([i - 0.5, i + 0.5], [j + 0.5, j + 0.5], color="black", lw=2)


def repository_root(start: Path | None = None) -> Path:
    """The book's folder: the first of `start` (default: the working directory, which is
    `chapters/` when a chapter runs) and its parents that holds `_toc.yml`."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").exists():
            return folder
    return here


def show(chapter: str, root: Path | None = None) -> pd.DataFrame | None:
    """Draw the chapter's stored regime map and glue, per claim, `map_held_<claim>` (the
    share of cells where it held) and `map_agrees_<claim>` (the share where the verdict
    matched the theory's premise), with `map_cells`, `map_date` and `map_machine`.

    Returns the share table; without a stored map it prints the command that makes one
    and returns None (the chapter runs on).
    """
    import matplotlib.pyplot as plt

    from mmnb.glue import glue

    spec = regime_map(chapter)
    if spec is None:
        raise KeyError(f"{chapter} declares no regime map")
    try:
        table, provenance = load(chapter, repository_root(root))
    except FileNotFoundError as err:
        print(err)
        return None
    shares = held_share(spec, table)
    for name, share in shares.items():
        glue(f"map_held_{name}", share["held"], display=False)
        glue(f"map_agrees_{name}", share["agrees"], display=False)
    glue("map_cells", len(spec.x.values) * len(spec.y.values), display=False)
    glue("map_date", provenance["date"][:10], display=False)
    glue("map_machine", provenance["machine"], display=False)
    draw(spec, table)
    plt.show()
    return pd.DataFrame(shares).T.rename_axis("claim")
