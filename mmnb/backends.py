"""Where runs execute: runner processes on this machine, or an existing Dask cluster.

Locally the sweep claims a run (`mmnb.runs.Claim`) and hands the same lock to a
*runner*, a fresh Python process that executes the notebook; the lock lasts while
either of them lives. A runner dies with the sweep: a signal interrupts its notebook,
stops its kernel, records the run as `interrupted` and exits; it gets SIGTERM when the
sweep dies. When a runner dies (`kill -9`, out of memory), the sweep ends its kernel's
whole process group (recorded in `run.json`). On Dask each run claims its folder on its
worker; when the scheduler dies, each run of the sweep is recorded as what it then was
(finished, still running on a worker, or never started).

Imports nothing heavy at the top: runners start fast.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mmnb.kernels import kill_group
from mmnb.locks import Claim, claim_holder, describe_holder
from mmnb.plan import check_finished, execute_run
from mmnb.runs import (
    EXIT,
    RunResult,
    RunTask,
    claim_run,
    execute_claimed,
    fail,
    finish_claims,
    on_signal,
    read_record,
    write_record,
)

__all__ = [
    "DaskRuns",
    "LocalRuns",
    "SchedulerLost",
    "finish_local",
    "runner_main",
    "settle_lost",
    "spawn_runner",
    "watch_parent",
]


# A runner imports this module without `mmnb/__init__` (which imports torch): it
# registers a bare `mmnb` package over the same folder first. The kernel imports mmnb
# as usual.
_BOOT = (
    "import sys, types\n"
    "package = types.ModuleType('mmnb')\n"
    "package.__path__ = [sys.argv[1]]\n"
    "sys.modules['mmnb'] = package\n"
    "from mmnb.backends import runner_main\n"
    "sys.exit(runner_main(*sys.argv[2:]))\n"
)


def spawn_runner(task: RunTask, claim: Claim) -> subprocess.Popen:
    """Start a runner process for a claimed run; it shares the claim's lock."""
    package = str(Path(__file__).resolve().parent)
    argv = [sys.executable, "-c", _BOOT, package, json.dumps(asdict(task)), str(claim.fd)]
    return subprocess.Popen(
        [*argv, str(os.getpid())],
        pass_fds=(claim.fd,),
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # signals reach runners through the sweep, in order
    )


def watch_parent(parent: int) -> None:
    """Send SIGTERM to this process when its parent process `parent` is gone."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: at once, from the kernel
        except (OSError, AttributeError):
            pass

    def poll() -> None:  # elsewhere, and in case the parent died before prctl
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=poll, daemon=True, name="mmnb-watch-parent").start()


def runner_main(task_json: str, fd: str, parent: str) -> int:
    """The runner: execute one claimed run; exit 0 ok, 1 failed, 3 interrupted, 4 claims
    failed."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)
    watch_parent(int(parent))
    task = RunTask(**json.loads(task_json))
    Claim(int(fd), task.folder).note()
    return EXIT[execute_claimed(task).status]


def finish_local(task: RunTask, claim: Claim, process: Any, stopping: bool) -> RunResult:
    """The outcome of a runner that has exited; record it if the runner could not.

    Whatever is left of the run's kernel (its process group) is ended. The caller still
    holds the claim (released here), so writing the record is safe.
    """
    try:
        try:
            record = read_record(task.folder)
        except ValueError:
            record = None
        kill_group((record or {}).get("kernel_pgid"))
        final = ("ok", "claims_failed", "failed", "interrupted", "disk_full")
        if record and record.get("pid") == process.pid and record["status"] in final:
            wall, error = record.get("wall_seconds"), record.get("error", "")
            return RunResult(task.name, record["status"], wall, error)
        code = process.returncode
        if code == EXIT["disk_full"]:
            error = "disk full (no space left on device); free space and run it again"
            return RunResult(task.name, "disk_full", None, error)
        if task.finished:  # the notebook saved its metrics, the runner died afterwards
            return finish_claims(task, None)
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        if stopping or -code in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            error = f"interrupted: its process ended ({how}); the next resume runs it again"
            write_record(task, "interrupted", None, error)
            return RunResult(task.name, "interrupted", None, error)
        hint = ", perhaps out of memory" if -code == signal.SIGKILL else ""
        error = f"the run's process died ({how}{hint})"
        return fail(task, None, error, error)
    finally:
        claim.release()


def stop_runners(processes: list[Any], grace: float = 15.0) -> None:
    """SIGTERM each runner, wait up to `grace` seconds, then kill what is left with its
    kernels."""
    try:
        import psutil
    except ImportError:
        psutil = None
    kernels = []
    for process in processes:
        if psutil is not None and process.poll() is None:
            try:
                kernels += psutil.Process(process.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for kernel in kernels:  # left over only when its runner had to be killed
        try:
            kernel.kill()
        except psutil.NoSuchProcess:
            pass


class LocalRuns:
    """Runs in runner processes on this machine, at most `jobs` at once."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.active: dict[str, tuple[RunTask, Claim, Any]] = {}

    def room(self) -> bool:
        return len(self.active) < self.jobs

    def start(self, task: RunTask) -> RunResult | None:
        """Claim and start the run; a result when it does not start (busy, done, refused)."""
        claim = claim_run(task)
        if isinstance(claim, RunResult):
            return claim
        try:  # finished by another sweep between the plan and the claim, or another's run
            result = check_finished(task)
        except OSError as err:
            result = RunResult(task.name, "failed", None, f"cannot set aside: {err}")
        if result is not None:
            claim.release()
            return result
        try:
            self.active[task.name] = (task, claim, spawn_runner(task, claim))
        except BaseException:
            claim.release()
            raise
        return None

    def poll(self) -> list[RunResult]:
        results = []
        for name, (task, claim, process) in list(self.active.items()):
            if process.poll() is not None:
                del self.active[name]
                results.append(finish_local(task, claim, process, stopping=False))
        return results

    def stop(self) -> list[RunResult]:
        """Interrupt every running run and wait for its runner to record it."""
        active, self.active = list(self.active.values()), {}
        stop_runners([process for _, _, process in active])
        return [finish_local(task, claim, proc, stopping=True) for task, claim, proc in active]

    def close(self) -> None:
        pass


class DaskRuns:
    """Runs on an existing Dask cluster; each run claims its folder on its worker."""

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError as err:
            raise ValueError(
                "--scheduler needs Dask distributed: pip install 'dask[distributed]'"
            ) from err
        self.address, self.lost = address, False
        self.client = Client(address, set_as_default=False)
        self.token = uuid.uuid4().hex[:8]
        self.futures: dict[Any, RunTask] = {}
        self.tries: dict[str, int] = {}

    def room(self) -> bool:
        return True

    @property
    def active(self) -> dict[Any, RunTask]:
        return self.futures

    def start(self, task: RunTask) -> RunResult | None:
        self.tries[task.name] = self.tries.get(task.name, 0) + 1
        key = f"mmnb-run-{task.name}-{self.token}-{self.tries[task.name]}"
        self.futures[self.client.submit(execute_run, task, key=key, pure=False)] = task
        return None

    def poll(self) -> list[RunResult]:
        if self.client.status not in ("running", "connecting", "newly-created"):
            self.lost = True
            raise SchedulerLost(f"the Dask scheduler at {self.address} died")
        results = []
        for future, task in list(self.futures.items()):
            if not future.done():
                continue
            if future.status in ("cancelled", "lost"):  # not by this sweep: it died
                self.lost = True
                raise SchedulerLost(f"the Dask scheduler at {self.address} died or restarted")
            del self.futures[future]
            try:
                result = future.result()
            except Exception as err:  # the run's workers kept dying
                result = RunResult(task.name, "failed", None, f"worker failed: {err!r}")
            if result.status in ("ok", "claims_failed") and not _appears(task):
                raise ValueError(
                    f"run {task.name} finished on a Dask worker, but its metrics.json is not "
                    f"visible here: --out ({Path(task.folder).parent}) must be on a file "
                    "system that the workers and this machine share, at the same path"
                )
            results.append(result)
        return results

    def stop(self) -> list[RunResult]:
        """Cancel the queued runs; runs already on a worker finish there (Dask cannot stop
        them) and record themselves."""
        try:
            self.client.cancel(list(self.futures))
        except Exception:  # noqa: BLE001 - a dead scheduler has nothing left to cancel
            pass
        self.futures = {}
        return []

    def close(self) -> None:
        if getattr(self, "lost", False):  # its reconnection attempts would print tracebacks
            logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
        try:
            self.client.close(timeout=5)
        except Exception:  # noqa: BLE001 - closing a client of a dead scheduler
            pass


class SchedulerLost(RuntimeError):
    """The Dask scheduler died; `remaining` holds the sweep's runs that had not ended."""

    remaining: list[RunTask] = []


def settle_lost(task: RunTask, why: str) -> RunResult:
    """Record what became of a run when the Dask scheduler died: finished, still running
    on a worker (its claim is held), started but stopped, or never started."""
    claim = claim_run(task)
    if isinstance(claim, RunResult):
        if claim.status == "busy":
            who = describe_holder(claim_holder(task.folder))
            error = f"still running on a worker ({who}) after {why}; collect later"
            return RunResult(task.name, "running", None, error)
        return claim
    try:
        if task.finished:
            return finish_claims(task, None)
        try:
            started = read_record(task.folder) is not None
        except ValueError:
            started = True
        if started:
            error = f"interrupted: {why} while it ran; the next resume runs it again"
        else:
            error = f"never started: {why} before it started; the next resume runs it"
        write_record(task, "interrupted", None, error)
        return RunResult(task.name, "interrupted", None, error)
    finally:
        claim.release()


def _appears(task: RunTask, timeout: float = 60.0) -> bool:
    """Whether the run's metrics.json shows up here (network file systems cache lookups)."""
    deadline = time.monotonic() + timeout
    while not task.finished:
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)
    return True
