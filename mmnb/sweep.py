"""Papermill sweeps: a chapter notebook and a parameter grid in, one results table out.

Every run executes the notebook in its own folder below `out`, named from its
parameters (`x=0.1__seed=0`), with the files that `mmnb.runs` describes; the sweep adds
`out/results.csv`, one row per run: parameters, metrics, status, wall time.

Before anything runs, the names are checked against the notebook's `parameters` cell,
every run's values against the notebook's config and the kernel against the installed
ones. Each run is claimed before it runs (`mmnb.runs.Claim`), so sweeps into one `out`
run each point once. SIGINT, SIGTERM and SIGHUP stop the whole sweep: queued runs never
start, running ones are interrupted and recorded so, and results.csv is refreshed.
Runs go to local runner processes (`jobs` at once) or to an existing Dask cluster.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm.auto import tqdm

from mmnb.backends import DaskRuns, LocalRuns
from mmnb.collect import RESULTS, collect
from mmnb.locks import claim_holder, safe_folder
from mmnb.notebooks import check_parameters, check_values
from mmnb.runs import (
    RunInterrupted,
    RunResult,
    RunTask,
    check_kernel,
    execute_run,
    read_record,
    run_name,
)

__all__ = [
    "RESULTS",
    "RunResult",
    "RunTask",
    "SweepInterrupted",
    "SweepSummary",
    "check_parameters",
    "collect",
    "execute_run",
    "expand_grid",
    "load_grid",
    "plan_runs",
    "run_name",
    "run_notebook",
    "sweep",
]


class _GridLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but `1e-3` and `2.5E+2` read as floats (YAML 1.1 wants a dot)."""


_GridLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)


def _scalar(name: str, value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"parameter {name!r}: {value!r} is not a finite number")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(
        f"parameter {name!r}: value {value!r} is a {type(value).__name__}; "
        "each value must be a number, a string, a bool or None"
    )


def _axis(name: str, values: Any) -> list[Any]:
    values = list(values) if isinstance(values, (list, tuple, np.ndarray)) else [values]
    if not values:
        raise ValueError(f"parameter {name!r} has no values")
    values = [_scalar(name, v) for v in values]
    for i, value in enumerate(values):
        # 1 and True (or 1.0) are equal in Python but different runs: compare with types
        if any(type(v) is type(value) and v == value for v in values[:i]):
            raise ValueError(f"parameter {name!r} lists the value {value!r} twice")
    return values


def load_grid(path: str | Path) -> dict[str, list[Any]]:
    """Read a YAML grid file: a mapping of parameter name to one value or a list of values."""
    path = Path(path)
    try:
        data = yaml.load(path.read_text(), Loader=_GridLoader)
    except yaml.YAMLError as err:
        raise ValueError(f"grid file {path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(
            f"grid file {path} must map parameter names to a value or a list of values, "
            f"e.g. 'lr: [1e-3, 1e-2]'"
        )
    return {str(name): _axis(str(name), values) for name, values in data.items()}


def expand_grid(grid: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the last parameter varying fastest."""
    axes = {name: _axis(name, values) for name, values in grid.items()}
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]


def plan_runs(
    notebook: str | Path,
    grid: Mapping[str, Any],
    out: str | Path,
    kernel_name: str = "python3",
) -> list[RunTask]:
    """Check the grid against the notebook (names, then every run's values) and turn it
    into runs with absolute paths. Nothing is written."""
    known = check_parameters(notebook, grid)
    points = expand_grid(grid)
    check_values(notebook, points, known)
    notebook, out = Path(notebook).resolve(), Path(out).resolve()
    tasks: list[RunTask] = []
    seen: dict[str, dict[str, Any]] = {}
    for params in points:
        name = run_name(params)
        if name in seen:
            raise ValueError(
                f"runs {seen[name]} and {params} would share the folder {name!r}; "
                "give values that differ in letters, digits, '.', '+' or '-'"
            )
        seen[name] = params
        tasks.append(RunTask(name, str(notebook), str(out / name), params, kernel_name))
    return tasks


# --- the driver ------------------------------------------------------------------------


@dataclass
class SweepSummary:
    """The table written to results.csv and what happened to each run in this sweep."""

    table: Any
    ran: list[str]
    skipped: list[str]
    failed: dict[str, str]
    interrupted: list[str] = field(default_factory=list)
    claims_failed: dict[str, str] = field(default_factory=dict)  # finished, a claim failed


class SweepInterrupted(KeyboardInterrupt):
    """A signal stopped the sweep; `summary` says what had happened by then."""

    def __init__(self, signum: int, summary: SweepSummary) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum, self.summary = signum, summary


_STOP = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise RunInterrupted(signum)


@contextlib.contextmanager
def _on_signals(handler: Any) -> Iterator[None]:
    """Handle SIGINT, SIGTERM and SIGHUP with `handler` (main thread only); a signal that
    was ignored stays ignored (`nohup`, a background job)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in _STOP}
    for signum, old in previous.items():
        if old is not signal.SIG_IGN:
            signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _drive(tasks: list[RunTask], backend: Any, bar: Any, summary: SweepSummary, on_end) -> None:
    """Run `tasks` on `backend`; a run busy elsewhere is waited for, then skipped or run."""
    queue = deque(tasks)
    waiting: dict[str, RunTask] = {}
    by_name = {task.name: task for task in tasks}
    checked = time.monotonic()

    def handle(result: RunResult) -> None:
        if result.status == "busy":
            if result.name not in waiting:
                bar.write(f"run {result.name} is {result.error}; waiting for it")
            waiting[result.name] = by_name[result.name]
            return
        if result.status == "done":
            summary.skipped.append(result.name)
        else:
            summary.ran.append(result.name)
            if result.status == "interrupted":
                summary.interrupted.append(result.name)
            elif result.status == "claims_failed":
                summary.claims_failed[result.name] = result.error
            elif result.status != "ok":
                summary.failed[result.name] = result.error
                bar.write(f"run {result.name} failed: {result.error}")
        on_end()
        bar.set_postfix(failed=len(summary.failed))
        bar.update()

    while queue or waiting or backend.active:
        while queue and backend.room():
            result = backend.start(queue.popleft())
            if result is not None:
                handle(result)
        for result in backend.poll():
            handle(result)
        if waiting and time.monotonic() - checked > 1.0:
            checked = time.monotonic()
            for name, task in list(waiting.items()):
                if claim_holder(task.folder) is None:
                    del waiting[name]
                    queue.append(task)
        time.sleep(0.05)


def _run_all(
    tasks: list[RunTask],
    summary: SweepSummary,
    *,
    jobs: int,
    scheduler: str | None,
    label: str,
    progress: bool,
    on_end,
) -> None:
    pending = []
    for task in tasks:
        problem = task.metrics_problem()
        if problem is None:
            summary.skipped.append(task.name)
            continue
        if problem:
            print(f"run {task.name} is not finished: {problem}; running it again", file=sys.stderr)
        pending.append(task)
    bar = tqdm(
        total=len(tasks), initial=len(summary.skipped), unit="run", desc=label, disable=not progress
    )
    with bar, _on_signals(_raise_interrupted):
        backend = DaskRuns(scheduler) if scheduler else LocalRuns(min(jobs, max(len(pending), 1)))
        try:
            _drive(pending, backend, bar, summary, on_end)
        except RunInterrupted as err:
            with _on_signals(signal.SIG_IGN):
                for result in backend.stop():
                    summary.ran.append(result.name)
                    if result.status == "interrupted":
                        summary.interrupted.append(result.name)
                on_end()
            raise SweepInterrupted(err.signum, summary) from None
        except BaseException:
            with _on_signals(signal.SIG_IGN):
                backend.stop()
            raise
        finally:
            backend.close()


def _check_setup(jobs: int, scheduler: str | None, kernel_name: str) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs={jobs!r} must be an integer >= 1")
    if scheduler and jobs != 1:
        raise ValueError("give either jobs (local processes) or scheduler (Dask), not both")
    check_kernel(kernel_name)


def sweep(
    notebook: str | Path,
    grid: Mapping[str, Any],
    out: str | Path,
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    kernel_name: str = "python3",
    progress: bool = True,
) -> SweepSummary:
    """Run `notebook` once per combination in `grid`, skipping runs that already finished.

    `grid` maps parameter names to a value or a list of values. `jobs` > 1 runs that many
    notebooks at once in separate local processes; `scheduler` (a Dask scheduler address)
    sends the runs to an existing Dask cluster instead. A failed run is recorded and the
    others go on; results.csv is rewritten after every run that ends. A run that another
    sweep is running is waited for. A signal raises `SweepInterrupted` once the running
    runs are recorded as interrupted and results.csv is refreshed.
    """
    _check_setup(jobs, scheduler, kernel_name)
    tasks = plan_runs(notebook, grid, out, kernel_name)
    safe_folder(Path(out).resolve())
    summary = SweepSummary(None, [], [], {})
    _run_all(
        tasks,
        summary,
        jobs=jobs,
        scheduler=scheduler,
        label=f"sweep {Path(notebook).stem}",
        progress=progress,
        on_end=lambda: collect(out),
    )
    summary.table = collect(out)
    return summary


def run_notebook(
    notebook: str | Path,
    params: Mapping[str, Any],
    out: str | Path,
    *,
    kernel_name: str = "python3",
) -> RunResult:
    """One run of `notebook` with `params` in the folder `out`, with a sweep point's checks.

    Returns the run's result: `ok`, `failed`, or `done` when `out` already holds a
    finished run (nothing is run again). A signal raises `SweepInterrupted`.
    """
    _check_setup(1, None, kernel_name)
    params = {name: _axis(name, [value])[0] for name, value in params.items()}
    known = check_parameters(notebook, params)
    check_values(notebook, [params], known)
    folder = Path(out).resolve()
    notebook = str(Path(notebook).resolve())
    task = RunTask(run_name(params), notebook, str(folder), params, kernel_name)
    if task.finished:
        try:
            before = (read_record(folder) or {}).get("params")
        except ValueError:
            before = None
        if before != params:
            raise ValueError(
                f"{folder} already holds a finished run with other parameters ({before}); "
                "choose another --out, or delete its metrics.json to run it again"
            )
    summary = SweepSummary(None, [], [], {})
    _run_all([task], summary, jobs=1, scheduler=None, label="", progress=False, on_end=lambda: None)
    if summary.skipped:
        return RunResult(task.name, "done", None)
    record = read_record(folder) or {}
    status = "failed" if task.name in summary.failed else record.get("status", "failed")
    return RunResult(task.name, status, record.get("wall_seconds"), record.get("error", ""))
