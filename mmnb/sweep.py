"""Papermill sweeps: a chapter notebook and a parameter grid in, one results table out.

Every run executes the notebook in its own folder below `out`, named from its
parameters (`x=0.1__seed=0`):

    out/results.csv                 one row per run: parameters, metrics, status, wall time
    out/<run>/<notebook>.ipynb      the executed notebook (partial when the run failed)
    out/<run>/metrics.json          written by the notebook; it marks the run finished
    out/<run>/run.json              the sweep's record: parameters, status, error, wall time
    out/<run>/error.txt             the full error text of a failed run

Runs go one at a time, in `jobs` local processes, or to an existing Dask cluster.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import re
import time
import traceback
import uuid
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import papermill
import yaml
from papermill.exceptions import PapermillExecutionError
from tqdm.auto import tqdm

from mmnb.results import load_results, write_json_atomic, write_text_atomic

__all__ = [
    "RunResult",
    "RunTask",
    "SweepSummary",
    "check_parameters",
    "collect",
    "execute_run",
    "expand_grid",
    "load_grid",
    "plan_runs",
    "run_name",
    "sweep",
]

RESULTS = "results.csv"
METRICS = "metrics.json"
RECORD = "run.json"
ERROR = "error.txt"
OUTPUT_DIR = "output_dir"

_UNSAFE = re.compile(r"[^A-Za-z0-9.+-]+")


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
    return [_scalar(name, v) for v in values]


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


def _token(value: Any) -> str:
    text = repr(value) if isinstance(value, float) else str(value)
    return _UNSAFE.sub("-", text)


def run_name(params: Mapping[str, Any]) -> str:
    """The run's folder name, `name=value` pairs joined by `__` (`defaults` when empty)."""
    if not params:
        return "defaults"
    return "__".join(f"{name}={_token(value)}" for name, value in params.items())


def check_parameters(notebook: str | Path, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Check `names` against the notebook's `parameters` cell; return papermill's inference."""
    notebook = Path(notebook)
    if notebook.suffix != ".ipynb" or not notebook.is_file():
        raise ValueError(f"notebook {str(notebook)!r} is not an existing .ipynb file")
    known = papermill.inspect_notebook(notebook)
    if not known:
        raise ValueError(f"{notebook} has no cell tagged 'parameters'; there is nothing to sweep")
    if OUTPUT_DIR not in known:
        raise ValueError(
            f"{notebook} has no {OUTPUT_DIR!r} parameter; the sweep gives every run its own "
            "output_dir, which the notebook must pass to mmnb.save_metrics"
        )
    names = list(names)
    if OUTPUT_DIR in names:
        raise ValueError(f"{OUTPUT_DIR!r} is set by the sweep for each run; do not sweep it")
    unknown = [name for name in names if name not in known]
    if unknown:
        choices = sorted(name for name in known if name != OUTPUT_DIR)
        raise ValueError(f"unknown parameter(s) {unknown} for {notebook}; known: {choices}")
    return known


@dataclass(frozen=True)
class RunTask:
    """One run: which notebook, where its folder is, which parameters it gets."""

    name: str
    notebook: str
    folder: str
    params: dict[str, Any] = field(hash=False)
    kernel_name: str = "python3"

    @property
    def finished(self) -> bool:
        """A run is finished when its notebook wrote `metrics.json`."""
        return (Path(self.folder) / METRICS).is_file()


@dataclass(frozen=True)
class RunResult:
    """What became of one run: status `ok` or `failed`, wall time, one-line error."""

    name: str
    status: str
    wall_seconds: float | None
    error: str = ""


def plan_runs(
    notebook: str | Path,
    grid: Mapping[str, Any],
    out: str | Path,
    kernel_name: str = "python3",
) -> list[RunTask]:
    """Check the grid against the notebook and turn it into runs with absolute paths."""
    check_parameters(notebook, grid)
    notebook, out = Path(notebook).resolve(), Path(out).resolve()
    tasks: list[RunTask] = []
    seen: dict[str, dict[str, Any]] = {}
    for params in expand_grid(grid):
        name = run_name(params)
        if name in seen:
            raise ValueError(
                f"runs {seen[name]} and {params} would share the folder {name!r}; "
                "give values that differ in letters, digits, '.', '+' or '-'"
            )
        seen[name] = params
        tasks.append(RunTask(name, str(notebook), str(out / name), params, kernel_name))
    return tasks


def _write_record(task: RunTask, status: str, wall: float | None = None, error: str = "") -> None:
    record = {
        "params": task.params,
        "status": status,
        "wall_seconds": None if wall is None else round(wall, 3),
        "error": error,
    }
    write_json_atomic(Path(task.folder) / RECORD, record)


def _fail(task: RunTask, wall: float | None, error: str, detail: str) -> RunResult:
    """Record a failed run: the full text in error.txt, a one-line summary in run.json."""
    folder = Path(task.folder)
    # A run with metrics.json counts as finished; a failed run must not (resume reruns it).
    (folder / METRICS).unlink(missing_ok=True)
    write_text_atomic(folder / ERROR, detail)
    error = error.strip().splitlines()[0] if error.strip() else "unknown error"
    _write_record(task, "failed", wall, error)
    return RunResult(task.name, "failed", wall, error)


def execute_run(task: RunTask) -> RunResult:
    """Execute one run with papermill and record its outcome; a notebook error does not raise.

    The kernel is `task.kernel_name`, the working directory is the notebook's folder,
    and `output_dir` is the run's folder.
    """
    folder = Path(task.folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ERROR).unlink(missing_ok=True)
    _write_record(task, "running")
    start = time.perf_counter()
    notebook = Path(task.notebook)
    try:
        papermill.execute_notebook(
            str(notebook),
            str(folder / notebook.name),
            parameters={**task.params, OUTPUT_DIR: str(folder)},
            kernel_name=task.kernel_name,
            cwd=str(notebook.parent),
            progress_bar=False,
        )
    except PapermillExecutionError as err:
        return _fail(task, time.perf_counter() - start, f"{err.ename}: {err.evalue}", str(err))
    except Exception as err:  # a dead kernel or a timeout fails this run, not the sweep
        error = f"{type(err).__name__}: {err}"
        return _fail(task, time.perf_counter() - start, error, traceback.format_exc())
    wall = time.perf_counter() - start
    if not task.finished:
        error = (
            f"the notebook ran but wrote no {METRICS}; "
            "it must call mmnb.save_metrics(output_dir, ...)"
        )
        return _fail(task, wall, error, error)
    _write_record(task, "ok", wall)
    return RunResult(task.name, "ok", wall)


def _outcome(task: RunTask, future: Any) -> RunResult:
    """The result of a future, or a failed run when the worker itself died."""
    try:
        return future.result()
    except Exception as err:
        error = f"worker failed: {type(err).__name__}: {err}"
        return _fail(task, None, error, traceback.format_exc())


def _run_processes(tasks: list[RunTask], jobs: int) -> Iterator[RunResult]:
    # "spawn": fresh interpreters, no inherited threads or ZMQ state; each worker starts
    # its own kernels, so no two processes share a kernel manager or a port cache.
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures: dict[Future[RunResult], RunTask] = {
            pool.submit(execute_run, task): task for task in tasks
        }
        for future in as_completed(futures):
            yield _outcome(futures[future], future)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_dask(tasks: list[RunTask], address: str) -> Iterator[RunResult]:
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError as err:
        raise ValueError(
            "--scheduler needs Dask distributed: pip install 'dask[distributed]'"
        ) from err
    token = uuid.uuid4().hex[:8]
    with Client(address, set_as_default=False) as client:
        futures = {}
        for task in tasks:
            key = f"mmnb-run-{task.name}-{token}"
            futures[key] = (client.submit(execute_run, task, key=key, pure=False), task)
        submitted = [future for future, _ in futures.values()]
        for future in dask_completed(submitted, loop=client.loop):
            task = futures[future.key][1]
            result = _outcome(task, future)
            if result.status == "ok" and not _appears(task):
                raise ValueError(
                    f"run {task.name} finished on a Dask worker, but its {METRICS} is not "
                    f"visible here: --out ({Path(task.folder).parent}) must be on a file "
                    "system that the workers and this machine share, at the same path"
                )
            yield result


def _appears(task: RunTask, timeout: float = 60.0) -> bool:
    """Whether the run's metrics.json shows up here (network file systems cache lookups)."""
    deadline = time.monotonic() + timeout
    while not task.finished:
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)
    return True


def _results(tasks: list[RunTask], jobs: int, scheduler: str | None) -> Iterator[RunResult]:
    if scheduler:
        return _run_dask(tasks, scheduler)
    if jobs > 1 and len(tasks) > 1:
        return _run_processes(tasks, min(jobs, len(tasks)))
    return (execute_run(task) for task in tasks)


def collect(out: str | Path) -> pd.DataFrame:
    """Rebuild `out/results.csv` from the run folders, write it atomically and return it.

    One row per run: `run`, `status` (`ok`, `failed`, or `running` for a run that is
    under way or was interrupted), the parameters, the metrics, `wall_seconds` and `error`.
    """
    out = Path(out)
    if not out.is_dir():
        raise ValueError(f"{str(out)!r} is not a folder of sweep runs")
    records = []
    for path in sorted(out.glob(f"*/{RECORD}")):
        record = json.loads(path.read_text())
        records.append(
            {
                "run": path.parent.name,
                "status": record["status"],
                **record["params"],
                "wall_seconds": record["wall_seconds"],
                "error": record["error"],
            }
        )
    recorded = pd.DataFrame(records) if records else pd.DataFrame(columns=["run", "status"])
    finished = load_results(out)
    params = [c for c in recorded.columns if c not in ("run", "status", "wall_seconds", "error")]
    table = recorded.set_index("run")
    if not finished.empty:
        finished = finished.set_index("run")
        # The sweep's record wins (its wall time covers the whole run); metrics.json fills in.
        table = table.combine_first(finished)
        done = set(finished.index)
        table["status"] = ["ok" if run in done else s for run, s in table["status"].items()]
        later = [c for c in finished.columns if c not in params and c != "wall_seconds"]
    else:
        later = []
    columns = ["status", *params, *later, "wall_seconds", "error"]
    table = table.reindex(columns=[c for c in columns if c in table.columns]).reset_index()
    try:
        table = table.sort_values([*params, "run"], kind="stable", ignore_index=True)
    except TypeError:  # a parameter column mixes types: fall back to the folder names
        table = table.sort_values("run", ignore_index=True)
    write_text_atomic(out / RESULTS, table.to_csv(index=False))
    return table


@dataclass
class SweepSummary:
    """The table written to results.csv and what happened to each run in this sweep."""

    table: pd.DataFrame
    ran: list[str]
    skipped: list[str]
    failed: dict[str, str]


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
    others go on; results.csv is rewritten after every finished run.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs={jobs!r} must be an integer >= 1")
    if scheduler and jobs != 1:
        raise ValueError("give either jobs (local processes) or scheduler (Dask), not both")
    tasks = plan_runs(notebook, grid, out, kernel_name)
    Path(out).mkdir(parents=True, exist_ok=True)
    pending = [task for task in tasks if not task.finished]
    skipped = [task.name for task in tasks if task.finished]
    ran: list[str] = []
    failed: dict[str, str] = {}
    bar = tqdm(
        total=len(tasks),
        initial=len(skipped),
        unit="run",
        desc=f"sweep {Path(notebook).stem}",
        disable=not progress,
    )
    with bar:
        for result in _results(pending, jobs, scheduler):
            ran.append(result.name)
            if result.status != "ok":
                failed[result.name] = result.error
                bar.write(f"run {result.name} failed: {result.error}")
            collect(out)
            bar.set_postfix(failed=len(failed))
            bar.update()
    return SweepSummary(collect(out), ran, skipped, failed)
