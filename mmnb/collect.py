"""`results.csv`: one row per run folder of a sweep, rebuilt from the folders.

Every folder directly below `out` that holds a run (a `run.json`, a `metrics.json` or a
claim) gives one row. A run's status is

- `ok`: its `metrics.json` is valid (a run made by hand, with no `run.json`, counts too);
- `claims_failed`: it finished and its `metrics.json` is valid, but a prediction, control
  or identity it records did not hold (numbers kept; resuming does not run it again);
- `failed`: the notebook raised, or wrote no metrics (see `error`, and `error.txt`);
- `running`: a live process holds its claim;
- `interrupted`: it was stopped, or its process died without recording an outcome;
- `corrupt`: its `metrics.json` or `run.json` cannot be read or has the wrong shape;
- `disk_full`: a full disk stopped it (its half-written files are kept as `*.partial`).

A run the sweep could not record in its folder (the folder cannot be written, or its
claim is held by an unrelated process) still gets a row, `failed`, from the sweep.
`notebook`, `notebook_sha256`, `mmnb_version` and `code_sha256` say which notebook and
code made each run (`mmnb.provenance`). Columns whose values are all integers stay
integers. The table is only ever built from run folders: `collect` on a folder with no
run folders writes nothing (a `results.csv` there is left as it is), and a table whose
rows name runs whose folders are gone is kept as `results.csv.old-N` before the new one
replaces it.

`error` names the file and the reason for a corrupt run. Only `ok` and `claims_failed`
runs count as finished: resuming the sweep runs all the others again. Each claim a run
records gives a column `claim:<name>` with its verdict (holds, fails, undecided, recorded).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from mmnb.files import failing_claims, read_metrics, write_text_atomic
from mmnb.locks import CLAIM, claim_holder
from mmnb.runs import METRICS, RECORD, read_record

__all__ = ["RESULTS", "collect"]

RESULTS = "results.csv"
PROVENANCE = ("notebook", "notebook_sha256", "mmnb_version", "code_sha256")
_LAST = (*PROVENANCE, "wall_seconds", "error")


def _exists(path: Path) -> bool:
    try:
        return path.exists() or path.is_symlink()
    except OSError:
        return False


def _is_run(folder: Path) -> bool:
    paths = [folder / name for name in (RECORD, METRICS, CLAIM)]
    return folder.is_dir() and any(p.exists() or p.is_symlink() for p in paths)


def _row(folder: Path) -> tuple[dict[str, Any], list[str]]:
    """The run's row and the names of its swept parameters."""
    row: dict[str, Any] = {"run": folder.name}
    problems = []
    try:
        record = read_record(folder)
    except ValueError as err:
        record, problems = None, [str(err)]
    swept = dict(record.get("params", {})) if record else {}
    row.update(swept)
    data = None
    path = folder / METRICS
    if path.exists() or path.is_symlink():
        try:
            data = read_metrics(path)
        except ValueError as err:
            problems.insert(0, str(err))
    if data is not None:
        failing = failing_claims(data)
        status = "claims_failed" if failing else "ok"
        if failing:
            problems.append(f"claims did not hold: {', '.join(failing)}")
        for claim in data.get("claims", []):
            row[f"claim:{claim['name']}"] = claim.get("verdict")
        for name, value in data["params"].items():
            row.setdefault(name, value)
        row["device"] = data.get("device")
        row.update({k: v for k, v in data["metrics"].items() if k not in swept})
    elif problems:
        status = "corrupt"
    elif record is None:
        status = "running" if claim_holder(folder) else "interrupted"
    else:
        status = record["status"]
        if status == "running" and claim_holder(folder) is None:
            status = "interrupted"
    origin = (record or {}).get("provenance") or {}
    if isinstance(origin, dict):
        row.update({key: origin.get(key) for key in PROVENANCE if origin.get(key)})
        if row.get("notebook"):
            row["notebook"] = Path(str(row["notebook"])).name
    wall = record.get("wall_seconds") if record else None
    row["wall_seconds"] = data.get("wall_seconds") if wall is None and data else wall
    error = "; ".join(problems) if problems else (record or {}).get("error", "")
    if status == "interrupted" and not error:
        error = "its process ended without recording an outcome; the next resume runs it again"
    row["status"], row["error"] = status, error
    return row, list(swept)


def _integers(table: pd.DataFrame, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Columns whose given values are all integers as pandas' nullable integers."""
    for column in table.columns:
        values = [r[column] for r in rows if r.get(column) is not None]
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            table[column] = table[column].astype("Int64")
    return table


def _keep_old(path: Path, rows: list[dict[str, Any]]) -> None:
    """Keep an existing table as `results.csv.old-N` if it names runs now missing."""
    if not path.is_file():
        return
    try:
        old = pd.read_csv(path, usecols=["run"])["run"].astype(str)
    except (ValueError, KeyError, OSError, pd.errors.ParserError):
        old = None  # not a table of runs: keep it too
    if old is not None and set(old) <= {str(r["run"]) for r in rows}:
        return
    n = 1
    while path.with_name(f"{path.name}.old-{n}").exists():
        n += 1
    keep = path.with_name(f"{path.name}.old-{n}")
    write_text_atomic(keep, path.read_text())
    warnings.warn(f"{path} named runs whose folders are gone; kept as {keep}", stacklevel=3)


def collect(
    out: str | Path,
    notes: Mapping[str, Mapping[str, Any]] | None = None,
    write: bool = True,
) -> pd.DataFrame:
    """Rebuild `out/results.csv` from the run folders, write it atomically and return it.

    One row per run: `run`, `status` (see the module), the parameters, the metrics, the
    provenance, `wall_seconds` and `error`. `notes` (from a sweep) gives rows for runs
    that failed without a record in their folder. A run folder that is a symbolic link
    is not read. A folder that holds sweeps rather than runs raises a `ValueError`
    naming them; one that holds no runs but a results.csv raises one too (the table is
    left as it is).
    """
    out = Path(out)
    if not out.is_dir():
        raise ValueError(f"{str(out)!r} is not a folder of sweep runs")
    rows, swept = [], []
    folders = sorted(out.iterdir())
    for folder in folders:
        if folder.is_symlink():
            if folder.is_dir():
                warnings.warn(f"{folder} is a symbolic link; not followed", stacklevel=2)
            continue
        if _is_run(folder):
            row, names = _row(folder)
            rows.append(row)
            swept += [n for n in names if n not in swept]
    # a run that failed before anything was recorded in its folder: the sweep's note
    bare = {f.name for f in folders if not any(_exists(f / n) for n in (RECORD, METRICS))}
    bare |= set(notes or {}) - {f.name for f in folders}
    for name, note in (notes or {}).items():
        if name in bare:
            params = dict(note.get("params", {}))
            rows = [row for row in rows if row["run"] != name]
            rows.append({"run": name, **params, "status": "failed", "error": note.get("error")})
            swept += [n for n in params if n not in swept]
    if not rows:
        nested = [f.name for f in folders if f.is_dir() and (f / RESULTS).is_file()]
        if nested:
            raise ValueError(f"{out} holds sweeps ({', '.join(nested)}), not runs; collect each")
        if (out / RESULTS).exists():
            raise ValueError(
                f"{out} holds no run folders; its {RESULTS} was not built here from runs "
                "and is left as it is"
            )
    table = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["run", "status", "error"])
    later = sorted(c for c in table.columns if c not in {"run", "status", *swept, *_LAST})
    columns = ["run", "status", *swept, *later, *_LAST]
    table = _integers(table.reindex(columns=[c for c in columns if c in table.columns]), rows)
    try:
        table = table.sort_values([*swept, "run"], kind="stable", ignore_index=True)
    except TypeError:  # a parameter column mixes types: fall back to the folder names
        table = table.sort_values("run", ignore_index=True)
    if write and rows:
        _keep_old(out / RESULTS, rows)
        write_text_atomic(out / RESULTS, table.to_csv(index=False))
    return table
