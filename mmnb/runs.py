"""One run of a notebook: its folder, its claim, its record, and the process that runs it.

A run folder holds

    .claim          the claim: whoever holds its lock runs this run (host and pid inside)
    run.json        the record: parameters, status, error, wall time, provenance (the
                    notebook and the code that made it) and the kernel's process group
    metrics.json    written by the notebook; a valid one marks the run finished (its
                    status is `claims_failed` when a claim it records did not hold)
    error.txt       the full error text of a failed run
    <notebook>      the executed notebook (partial when the run failed)

A run is claimed with an exclusive `flock` on `.claim` before anything in its folder is
touched, and only the holder writes there. The operating system drops the lock when the
processes holding it die (however they die), so a crash never leaves a stale claim;
the holder's host and pid are written into the file for messages and for `collect`.
A run that is not finished is run from scratch: a `metrics.json` left there is set aside
(`metrics.json.corrupt`), so is one written by a run that then failed (`.failed`) and
the files a full disk left half-written (`.partial`). A finished run made by another
notebook, other code or with other parameters is not taken as this run: it is refused,
or with `redo` set aside (`.superseded`) and run again. The executed notebook is written
under a temporary name and renamed into place, so a link at its name is never written
through.

This module imports nothing heavy at the top: runners start fast.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmnb.files import (
    failing_claims,
    read_json,
    read_metrics,
    write_json_atomic,
    write_text_atomic,
)
from mmnb.kernels import KernelWatch, check_kernel, stop_kernels
from mmnb.locks import Claim, claim_holder, describe_holder, holder
from mmnb.names import run_name

__all__ = [
    "RunInterrupted",
    "RunResult",
    "RunTask",
    "check_kernel",
    "disk_full",
    "execute_claimed",
    "fail",
    "finish_claims",
    "on_signal",
    "read_record",
    "set_aside",
    "run_name",
    "write_record",
]

METRICS = "metrics.json"
RECORD = "run.json"
ERROR = "error.txt"
OUTPUT_DIR = "output_dir"
# exit statuses of a runner process
EXIT = {"ok": 0, "failed": 1, "interrupted": 3, "claims_failed": 4, "disk_full": 5}
# a notebook that stops on its own claims raises this (after saving its metrics)
CLAIMS_FAILED = "ClaimsFailed"


class RunInterrupted(KeyboardInterrupt):
    """A signal (SIGINT, SIGTERM, SIGHUP or the parent's death) asked this process to stop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass(frozen=True)
class RunTask:
    """One run: which notebook, where its folder is, which parameters it gets."""

    name: str
    notebook: str
    folder: str
    params: dict[str, Any] = field(hash=False)
    kernel_name: str = "python3"
    provenance: dict[str, Any] = field(default_factory=dict, hash=False)  # see mmnb.provenance
    timeout: float | None = None  # seconds the notebook may run; None: no limit
    redo: bool = False  # run again a finished run made by another notebook or other code

    def metrics_problem(self) -> str | None:
        """None if the run finished (a valid metrics.json), else why not ('' if absent)."""
        path = Path(self.folder) / METRICS
        if not path.exists() and not path.is_symlink():
            return ""
        try:
            read_metrics(path)
        except ValueError as err:
            return str(err)
        return None

    @property
    def finished(self) -> bool:
        """A run is finished when its notebook wrote a valid `metrics.json`."""
        return self.metrics_problem() is None


@dataclass(frozen=True)
class RunResult:
    """What became of one run: `ok`, `claims_failed` (finished, numbers kept, a claim did
    not hold), `failed`, `interrupted`, `disk_full`; `busy` (another process holds its
    claim), `done` (it finished elsewhere) or `refused` (its folder holds a finished run
    of another notebook, other code or other parameters) for a run this process did not
    run."""

    name: str
    status: str
    wall_seconds: float | None
    error: str = ""


def write_record(
    task: RunTask, status: str, wall: float | None = None, error: str = "", **more: Any
) -> None:
    """Write the run's `run.json` (only the holder of the claim calls this)."""
    record = {
        "params": task.params,
        "status": status,
        "wall_seconds": None if wall is None else round(wall, 3),
        "error": error,
        "provenance": task.provenance,
        **holder(),
        **more,
    }
    write_json_atomic(Path(task.folder) / RECORD, record)


def read_record(folder: str | Path) -> dict[str, Any] | None:
    """The run's `run.json`, None if it has none; a `ValueError` names a broken one."""
    path = Path(folder) / RECORD
    if not path.exists() and not path.is_symlink():
        return None
    record = read_json(path)
    if not isinstance(record, dict) or not isinstance(record.get("status"), str):
        raise ValueError(f"{path}: has no 'status'")
    if not isinstance(record.get("params", {}), dict):
        raise ValueError(f"{path}: 'params' is not an object")
    return record


def set_aside(path: Path, why: str) -> None:
    """Rename `path` to `<name>.<why>` (kept for inspection; it no longer counts)."""
    if path.exists() or path.is_symlink():
        os.replace(path, path.with_name(f"{path.name}.{why}"))


def _one_line(text: str) -> str:
    text = text.strip()
    return text.splitlines()[0] if text else "unknown error"


def fail(task: RunTask, wall: float | None, error: str, detail: str) -> RunResult:
    """Record a failed run: the full text in error.txt, a one-line summary in run.json.

    A metrics.json here was written by this run (the claim guarantees it); it is set
    aside as `metrics.json.failed` so that resuming runs the run again.
    """
    folder = Path(task.folder)
    set_aside(folder / METRICS, "failed")
    write_text_atomic(folder / ERROR, detail)
    write_record(task, "failed", wall, _one_line(error))
    return RunResult(task.name, "failed", wall, _one_line(error))


# --- interruption ----------------------------------------------------------------------

_armed = threading.Event()  # set while a notebook executes: a signal then interrupts it
_pending: list[int] = []  # signals that arrived while not armed


def on_signal(signum: int, frame: Any) -> None:
    if _pending:
        return  # already stopping: let the cleanup finish
    _pending.append(signum)
    if _armed.is_set():
        _armed.clear()
        raise RunInterrupted(signum)


def _disk_full(err: BaseException) -> bool:
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = f"{getattr(err, 'ename', '')}: {getattr(err, 'evalue', '')}"
    return "[Errno 28]" in text or "No space left on device" in text


def disk_full(task: RunTask, wall: float | None, err: BaseException) -> RunResult:
    """Record a run that the disk's filling stopped; set its half-written files aside."""
    folder = Path(task.folder)
    set_aside(folder / METRICS, "partial")
    set_aside(folder / Path(task.notebook).name, "partial")
    error = (
        f"disk full (no space left on device) while the run wrote its files ({err}); "
        "half-written files are kept as *.partial; free space and run the same command again"
    )
    try:
        write_text_atomic(folder / ERROR, error)
        write_record(task, "disk_full", wall, error)
    except OSError:  # the disk is still full: collect reports the run as not finished
        pass
    return RunResult(task.name, "disk_full", wall, error)


def execute_claimed(task: RunTask) -> RunResult:
    """Execute the notebook of a claimed run and record its outcome; never raises."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    folder = Path(task.folder)
    notebook = Path(task.notebook)
    output = folder / notebook.name
    partial = folder / f".{notebook.stem}.running.ipynb"  # renamed into place at the end
    start = time.perf_counter()
    watch = KernelWatch(task.timeout, lambda pgid: write_record(task, "running", kernel_pgid=pgid))
    try:
        set_aside(folder / METRICS, "corrupt")  # the run is not finished: a metrics.json is bad
        (folder / ERROR).unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
        write_record(task, "running")
    except OSError as err:
        return disk_full(task, None, err) if _disk_full(err) else _fail_os(task, err)
    try:
        _armed.set()
        if _pending:
            raise RunInterrupted(_pending[0])
        watch.start()
        papermill.execute_notebook(
            str(notebook),
            str(partial),
            parameters={**task.params, OUTPUT_DIR: str(folder)},
            kernel_name=task.kernel_name,
            cwd=str(notebook.parent),
            progress_bar=False,
            kernel_manager_class=watch.manager_class(),
        )
        _armed.clear()
    except RunInterrupted as err:
        stop_kernels()
        watch.close()
        _place(partial, output)
        wall = time.perf_counter() - start
        if task.finished:  # the last cell had already saved the metrics
            return finish_claims(task, wall)
        error = f"interrupted by {err.args[0]}; the next resume runs it again"
        write_record(task, "interrupted", wall, error)
        return RunResult(task.name, "interrupted", wall, error)
    except Exception as err:  # a dead kernel or a timeout fails this run, not the sweep
        _armed.clear()
        watch.close()
        wall = time.perf_counter() - start
        if _disk_full(err):
            _place(partial, folder / f"{notebook.name}.partial")
            return disk_full(task, wall, err)
        _place(partial, output)
        if watch.timed_out:
            error = f"timed out: stopped after {task.timeout:g} s (--timeout); its kernel was ended"
            return fail(task, wall, error, f"{error}\n\n{err}")
        if isinstance(err, PapermillExecutionError):
            if err.ename == CLAIMS_FAILED and task.finished:  # recorded, then stopped on claims
                return finish_claims(task, wall)
            return fail(task, wall, f"{err.ename}: {err.evalue}", str(err))
        return fail(task, wall, f"{type(err).__name__}: {err}", traceback.format_exc())
    watch.close()
    _place(partial, output)
    wall = time.perf_counter() - start
    problem = task.metrics_problem()
    if problem is not None:
        error = problem or (
            f"the notebook ran but wrote no {METRICS}; "
            "it must call mmnb.save_metrics(output_dir, ...)"
        )
        return fail(task, wall, error, error)
    return finish_claims(task, wall)


def _place(partial: Path, target: Path) -> None:
    """Rename the executed notebook into place (replacing, never writing through, a link)."""
    try:
        if partial.exists():
            os.replace(partial, target)
    except OSError:
        pass


def _fail_os(task: RunTask, err: OSError) -> RunResult:
    error = f"cannot write in the run folder {task.folder}: {err.strerror or err}"
    return RunResult(task.name, "failed", None, error)


def finish_claims(task: RunTask, wall: float | None) -> RunResult:
    """Record a finished run: `ok`, or `claims_failed` naming the claims that did not hold."""
    failing = failing_claims(read_metrics(Path(task.folder) / METRICS))
    if failing:
        error = f"claims did not hold: {', '.join(failing)}"
        write_record(task, "claims_failed", wall, error)
        return RunResult(task.name, "claims_failed", wall, error)
    write_record(task, "ok", wall)
    return RunResult(task.name, "ok", wall)


def claim_run(task: RunTask) -> Claim | RunResult:
    """The claim on the run's folder, or the result that says why there is none
    (`busy`: another mmnb process holds it; `failed`: the folder cannot be claimed, or an
    unrelated process holds its lock)."""
    try:
        claim = Claim.acquire(task.folder)
    except ValueError as err:
        return RunResult(task.name, "failed", None, str(err))
    except OSError as err:
        return _fail_os(task, err)
    if claim is None:
        who = claim_holder(task.folder)
        if who and who.get("unrelated"):
            error = f"cannot claim the run: its lock is held by {describe_holder(who)}"
            return RunResult(task.name, "failed", None, error)
        return RunResult(task.name, "busy", None, f"being run by {describe_holder(who)}")
    return claim
