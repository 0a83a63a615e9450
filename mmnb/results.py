"""`metrics.json`: written atomically by each chapter, collected into one table."""

from __future__ import annotations

import math
import os
import platform
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mmnb.claims import Claims
from mmnb.config import WorldConfig
from mmnb.files import read_metrics, write_json_atomic, write_text_atomic
from mmnb.runtime import state

__all__ = ["load_results", "mean_std", "save_metrics", "write_json_atomic", "write_text_atomic"]


def _number(name: str, value: Any) -> float | int | None:
    if isinstance(value, torch.Tensor) or isinstance(value, np.ndarray):
        if value.size == 0 or np.prod(value.shape) != 1:
            raise ValueError(
                f"metric {name!r} must be a single number, got shape {tuple(value.shape)}"
            )
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None  # JSON has no NaN
    raise ValueError(f"metric {name!r} must be a number, got {type(value).__name__}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.generic,)):
        return value.item()
    return str(value)


def mean_std(values: Any, digits: int = 3) -> str:
    """The "mean ± std" of `values` (over replicas), with `digits` decimals."""
    a = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, float)
    return f"{a.mean():.{digits}f} ± {a.std():.{digits}f}"


def save_metrics(
    output_dir: str | os.PathLike[str] | None,
    metrics: Mapping[str, Any],
    cfg: WorldConfig | Mapping[str, Any] | None = None,
    claims: Claims | None = None,
) -> pd.DataFrame:
    """Write `metrics.json` into `output_dir` (skipped when empty) and return a table.

    The file holds the parameters (the fields of `cfg`, a config or a plain dict, with
    the seed, the number of seeds and the device that `mmnb.setup` recorded), the flat
    dict of numeric metrics, the chapter's `claims` (every claim's record, each claim's
    mean value also a metric under its name unless the chapter gave that metric), the
    versions and the wall time since `mmnb.setup`. Call it before `claims.decide`, so a
    run whose claims fail keeps its numbers.
    """
    from mmnb import __version__

    numbers = {name: _number(name, value) for name, value in metrics.items()}
    records = claims.records() if claims is not None else []
    for record in records:
        numbers.setdefault(record["name"], record["mean"])
    if output_dir:
        params = {
            **(cfg.as_dict() if isinstance(cfg, WorldConfig) else dict(cfg or {})),
            "seed": state.seed,
            "n_seeds": state.n_seeds,
            "device": str(state.device),
        }
        payload = {
            "params": {k: _jsonable(v) for k, v in params.items()},
            "metrics": numbers,
            "claims": records,
            "versions": {
                "mmnb": __version__,
                "torch": torch.__version__,
                "numpy": np.__version__,
                "python": platform.python_version(),
            },
            "device": str(state.device),
            "wall_seconds": round(time.perf_counter() - state.started, 3),
        }
        write_json_atomic(Path(output_dir) / "metrics.json", payload)
    return pd.DataFrame({"metric": list(numbers), "value": list(numbers.values())}).set_index(
        "metric"
    )


def load_results(folder: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per `metrics.json` below `folder`: run, parameters, metrics, device, wall time."""
    rows = []
    for path in sorted(Path(folder).rglob("metrics.json")):
        try:
            data = read_metrics(path)
        except ValueError as err:  # a truncated or foreign file: say which, keep the others
            warnings.warn(f"skipped {err}", stacklevel=2)
            continue
        row: dict[str, Any] = {"run": str(path.parent.relative_to(folder))}
        row.update(data.get("params", {}))
        row.update(data.get("metrics", {}))
        row["device"] = data.get("device")
        row["wall_seconds"] = data.get("wall_seconds")
        rows.append(row)
    return pd.DataFrame(rows)
