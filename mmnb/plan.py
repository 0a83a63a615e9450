"""A sweep's plan: its runs, checked before anything runs, and where they may write."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mmnb.grids import expand_grid
from mmnb.names import run_name, same_params
from mmnb.notebooks import check_parameters, check_values
from mmnb.provenance import differences, provenance
from mmnb.runs import (
    ERROR,
    METRICS,
    RECORD,
    RunResult,
    RunTask,
    claim_run,
    execute_claimed,
    read_record,
    set_aside,
)

__all__ = [
    "RunSettings",
    "check_finished",
    "check_finished_all",
    "check_out",
    "check_timeout",
    "execute_run",
    "finished_state",
    "plan_runs",
]


@dataclass(frozen=True)
class RunSettings:
    """What every run of a plan shares besides its parameters: the Jupyter kernel, the
    time limit of each run in seconds (None: none) and `redo` (run again finished runs
    made by another notebook or other code)."""

    kernel_name: str = "python3"
    timeout: float | None = None
    redo: bool = False


def check_timeout(timeout: float | None) -> None:
    """Refuse a per-run time limit that is not a positive number of seconds."""
    ok = isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0
    if timeout is not None and not ok:
        raise ValueError(f"--timeout {timeout!r} must be a number of seconds > 0")


def check_out(out: str | Path, notebook: str | Path) -> Path:
    """The absolute `out` folder; refuse a file, the notebook's own folder, or the mmnb
    package (a run never writes over the notebook or any other input)."""
    out, notebook = Path(out), Path(notebook).resolve()
    if (out.exists() or out.is_symlink()) and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder; give a folder (made if missing)")
    resolved = out.resolve()
    if resolved == notebook.parent:
        raise ValueError(
            f"--out {out} is the notebook's own folder; runs never write there (the executed "
            "notebook would replace its source): give another folder"
        )
    package = Path(__file__).resolve().parent
    if resolved == package or package in resolved.parents:
        raise ValueError(f"--out {out} is inside the mmnb package; give another folder")
    return resolved


def plan_runs(
    notebook: str | Path,
    grid: Mapping[str, Any],
    out: str | Path,
    settings: RunSettings = RunSettings(),
    *,
    notes: list[str] | None = None,
    machine: bool = True,
    single: bool = False,
) -> list[RunTask]:
    """Check the grid against the notebook (names, then every run's values, memory and
    device) and turn it into runs with absolute paths, the notebook's provenance and
    `settings`. Each run's folder is `out/<run name>`; with `single` the grid holds one
    value per parameter and its one run's folder is `out` itself. Nothing is written."""
    known = check_parameters(notebook, grid)
    points = expand_grid(grid)
    if single and len(points) != 1:
        raise ValueError(f"a single run takes one value per parameter, not {dict(grid)}")
    check_values(notebook, points, known, notes, machine)
    check_timeout(settings.timeout)
    notebook, out = Path(notebook).resolve(), check_out(out, notebook)
    origin = provenance(notebook)
    tasks: list[RunTask] = []
    seen: dict[str, dict[str, Any]] = {}
    for point in points:
        params = {name: point[name] for name in sorted(point)}
        name = run_name(params)
        if name in seen:
            raise ValueError(f"runs {seen[name]} and {params} would share the folder {name!r}")
        seen[name] = params
        folder = out if single else out / name
        task = RunTask(name, str(notebook), str(folder), params, settings.kernel_name)
        tasks.append(replace(task, provenance=origin, timeout=settings.timeout, redo=settings.redo))
    return tasks


def check_finished_all(tasks: list[RunTask]) -> None:
    """Refuse, before anything runs, finished runs made by another notebook or other code
    or with other parameters (unless the tasks say `redo`)."""
    others = [(t, why) for t in tasks for state, why in [finished_state(t)] if state == "other"]
    if not others or tasks[0].redo:
        return
    lines = "\n".join(f"  {task.name}: {why}" for task, why in others[:10])
    more = f"\n  ... and {len(others) - 10} more" if len(others) > 10 else ""
    raise ValueError(
        f"{len(others)} finished run(s) in {Path(tasks[0].folder).parent} are not this "
        f"notebook's with this code:\n{lines}{more}\nNothing ran. Use another --out, or "
        "--redo to run them again (their files are kept as *.superseded)"
    )


def finished_state(task: RunTask) -> tuple[str, str]:
    """("open", "") when the run has not finished; ("done", "") when its folder holds its
    finished run; ("other", why) when it holds a finished run made with other parameters,
    by another notebook or by other code (compared when the task carries provenance)."""
    if not task.finished:
        return "open", ""
    try:
        record = read_record(task.folder)
    except ValueError as err:
        record = None
        if task.provenance:
            return "other", str(err)
    if record is not None:
        before = record.get("params", {})
        if not same_params(before, task.params):
            return "other", f"it was run with other parameters ({before})"
    if not task.provenance:
        return "done", ""
    found = differences((record or {}).get("provenance"), task.provenance)
    return ("other", "; ".join(found)) if found else ("done", "")


def set_aside_finished(task: RunTask) -> None:
    """Keep a finished run's files as `<name>.superseded`, so that this task runs anew."""
    folder = Path(task.folder)
    for name in (METRICS, RECORD, ERROR, Path(task.notebook).name):
        set_aside(folder / name, "superseded")


def refusal(task: RunTask, why: str) -> RunResult:
    error = (
        f"{task.folder} holds a finished run that is not this one: {why}; nothing ran. "
        "Use another --out, or --redo to run it again (its files are kept as *.superseded)"
    )
    return RunResult(task.name, "refused", None, error)


def check_finished(task: RunTask) -> RunResult | None:
    """For the holder of the claim: `done` or `refused` when the folder holds a finished
    run (this one, or another), None when the task is to run (after setting aside the
    other run's files when the task says `redo`)."""
    state, why = finished_state(task)
    if state == "done":
        return RunResult(task.name, "done", None)
    if state == "other":
        if not task.redo:
            return refusal(task, why)
        set_aside_finished(task)
    return None


def execute_run(task: RunTask) -> RunResult:
    """Claim the run, execute it unless it finished meanwhile, record it, release the claim.

    Used where the run executes in the calling process (a Dask worker). Returns a
    `busy` result when another process holds the claim and `done` when the run turned
    out to be finished already; a notebook error does not raise.
    """
    claim = claim_run(task)
    if isinstance(claim, RunResult):
        return claim
    try:
        result = check_finished(task)
        return result if result is not None else execute_claimed(task)
    finally:
        claim.release()
