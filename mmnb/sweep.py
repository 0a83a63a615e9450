"""Papermill sweeps: a chapter notebook and a parameter grid in, one results table out.

Every run executes the notebook in its own folder below `out`, named from its
parameters (`x=0.1__seed=0`), with the files that `mmnb.runs` describes; the sweep adds
`out/results.csv`, one row per run: parameters, metrics, status, wall time.

Before anything runs, the names are checked against the notebook's `parameters` cell,
every run's values against the notebook's config (and its memory estimate and device
against the machine, `mmnb.budget`) and the kernel against the installed ones; a
finished run in `out` made by another notebook or other code (`mmnb.provenance`) is
refused unless `redo` is set. Each run is claimed before it runs (`mmnb.runs.Claim`), so
sweeps into one `out` run each point once; run names are canonical (`mmnb.names`).
SIGINT, SIGTERM and SIGHUP stop the whole sweep: queued runs never
start, running ones are interrupted and recorded so, and results.csv is refreshed.
Runs go to local runner processes (`jobs` at once) or to an existing Dask cluster.
"""

from __future__ import annotations

import contextlib
import errno
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mmnb.backends import DaskRuns, LocalRuns, SchedulerLost, settle_lost
from mmnb.collect import RESULTS, collect
from mmnb.grids import expand_grid, load_grid
from mmnb.locks import claim_holder, safe_folder
from mmnb.names import run_name
from mmnb.notebooks import check_parameters
from mmnb.plan import (
    RunSettings,
    check_finished_all,
    check_out,
    execute_run,
    finished_state,
    plan_runs,
)
from mmnb.runs import (
    RunInterrupted,
    RunResult,
    RunTask,
    check_kernel,
    read_record,
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
    "check_out",
    "expand_grid",
    "load_grid",
    "plan_runs",
    "run_name",
    "run_notebook",
    "sweep",
]


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
    refused: dict[str, str] = field(default_factory=dict)  # its folder holds another run
    disk_full: dict[str, str] = field(default_factory=dict)  # stopped by a full disk
    not_started: dict[str, str] = field(default_factory=dict)  # why each did not start
    lost: dict[str, str] = field(default_factory=dict)  # the Dask scheduler died: each run's state
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)  # rows no folder records


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
    """Run `tasks` on `backend`; a run busy elsewhere is waited for, then skipped or run.
    A full disk stops the sweep from starting more runs (each is named as not started)."""
    queue = deque(tasks)
    waiting: dict[str, RunTask] = {}
    by_name = {task.name: task for task in tasks}
    checked = time.monotonic()

    def handle(result: RunResult) -> None:
        task = by_name[result.name]
        if result.status == "busy":
            if result.name not in waiting:
                bar.write(f"run {result.name} is {result.error}; waiting for it")
            waiting[result.name] = task
            return
        if result.status == "done":
            summary.skipped.append(result.name)
        elif result.status == "refused":
            summary.refused[result.name] = result.error
            bar.write(f"run {result.name} refused: {result.error}")
        else:
            summary.ran.append(result.name)
            if result.status == "interrupted":
                summary.interrupted.append(result.name)
            elif result.status == "claims_failed":
                summary.claims_failed[result.name] = result.error
            elif result.status == "disk_full":
                summary.disk_full[result.name] = result.error
                for other in [*queue, *waiting.values()]:
                    summary.not_started[other.name] = "not started: the disk is full"
                queue.clear()
                waiting.clear()
            elif result.status != "ok":
                summary.failed[result.name] = result.error
                bar.write(f"run {result.name} failed: {result.error}")
        if result.status in ("failed", "refused") and _unrecorded(task):
            summary.notes[result.name] = {"params": task.params, "error": result.error}
        on_end()
        bar.set_postfix(failed=len(summary.failed))
        bar.update()

    try:
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
    except SchedulerLost as lost:
        left = [*backend.active.values(), *queue, *waiting.values()]
        lost.remaining = list({task.name: task for task in left}.values())
        raise


def _unrecorded(task: RunTask) -> bool:
    """Whether the run's folder has no record of it (it could not be claimed or written)."""
    try:
        return read_record(task.folder) is None
    except (ValueError, OSError):
        return True


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
        if problem is None and finished_state(task)[0] == "done":
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
        except SchedulerLost as lost:
            for task in lost.remaining:
                result = settle_lost(task, str(lost))
                summary.lost[task.name] = f"{result.status}: {result.error}".rstrip(": ")
            on_end()
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


def _collector(out: Path, summary: SweepSummary):
    """Rebuild results.csv after each run; a full disk does not stop the sweep here."""

    def on_end() -> None:
        try:
            collect(out, notes=summary.notes)
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            summary.not_started.setdefault("results.csv", f"not rewritten: disk full ({err})")

    return on_end


def _check_setup(jobs: int, scheduler: str | None, kernel_name: str) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs={jobs!r} must be an integer >= 1")
    if scheduler and jobs != 1:
        raise ValueError("give either jobs (local processes) or scheduler (Dask), not both")
    check_kernel(kernel_name)


def _plan(
    notebook: str | Path,
    grid: Mapping[str, Any],
    out: str | Path,
    settings: RunSettings,
    machine: bool = True,
    single: bool = False,
) -> list[RunTask]:
    """`plan_runs`, then `check_finished_all`; its notes go to stderr."""
    notes: list[str] = []
    tasks = plan_runs(notebook, grid, out, settings, notes=notes, machine=machine, single=single)
    check_finished_all(tasks)
    for note in notes:
        print(note, file=sys.stderr)
    return tasks


def sweep(
    notebook: str | Path,
    grid: Mapping[str, Any],
    out: str | Path,
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    kernel_name: str = "python3",
    progress: bool = True,
    timeout: float | None = None,
    redo: bool = False,
) -> SweepSummary:
    """Run `notebook` once per combination in `grid`, skipping runs that already finished.

    `grid` maps parameter names to a value or a list of values. `jobs` > 1 runs that many
    notebooks at once in separate local processes; `scheduler` (a Dask scheduler address)
    sends the runs to an existing Dask cluster instead. A failed run is recorded and the
    others go on; results.csv is rewritten after every run that ends. A run that another
    sweep is running is waited for. `timeout` limits each run's seconds. A finished run
    made by another notebook or other code is refused before anything runs, or with
    `redo` run again. A signal raises `SweepInterrupted` once the running runs are
    recorded as interrupted and results.csv is refreshed.
    """
    _check_setup(jobs, scheduler, kernel_name)
    settings = RunSettings(kernel_name, timeout, redo)
    tasks = _plan(notebook, grid, out, settings, machine=not scheduler)
    out = safe_folder(check_out(out, notebook))
    summary = SweepSummary(None, [], [], {})
    on_end = _collector(out, summary)
    _run_all(
        tasks,
        summary,
        jobs=jobs,
        scheduler=scheduler,
        label=f"sweep {Path(notebook).stem}",
        progress=progress,
        on_end=on_end,
    )
    on_end()
    summary.table = collect(out, notes=summary.notes, write=False)
    return summary


def run_notebook(
    notebook: str | Path,
    params: Mapping[str, Any],
    out: str | Path,
    *,
    kernel_name: str = "python3",
    timeout: float | None = None,
    redo: bool = False,
) -> RunResult:
    """One run of `notebook` with `params` in the folder `out`, with a sweep point's checks.

    Returns the run's result: `ok`, `claims_failed`, `failed`, `interrupted`, `disk_full`,
    `done` when `out` already holds this finished run (nothing is run again), or
    `refused` when, after waiting for another process's claim, `out` turns out to hold
    another finished run. A `ValueError` refuses one found before the wait. A signal
    raises `SweepInterrupted`.
    """
    _check_setup(1, None, kernel_name)
    grid = {name: [value] for name, value in params.items()}  # a list is one value here
    (task,) = _plan(notebook, grid, out, RunSettings(kernel_name, timeout, redo), single=True)
    summary = SweepSummary(None, [], [], {})
    _run_all([task], summary, jobs=1, scheduler=None, label="", progress=False, on_end=lambda: None)
    if summary.skipped:
        return RunResult(task.name, "done", None)
    if task.name in summary.refused:
        return RunResult(task.name, "refused", None, summary.refused[task.name])
    if task.name in summary.disk_full:
        return RunResult(task.name, "disk_full", None, summary.disk_full[task.name])
    if task.name in summary.failed and _unrecorded(task):
        return RunResult(task.name, "failed", None, summary.failed[task.name])
    record = read_record(task.folder) or {}
    status = "failed" if task.name in summary.failed else record.get("status", "failed")
    return RunResult(task.name, status, record.get("wall_seconds"), record.get("error", ""))
