"""Faults of runs and sweeps, numbered as in issue 34 (second part): processes, disks,
Dask, folders that cannot be written, links, locks, time limits and the weak points."""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import psutil
import pytest
from test_faults import FAULTS, ROOT, _alive, _wait_for, env  # noqa: F401 (env: autouse)

import mmnb.sweep
from mmnb.__main__ import main
from mmnb.backends import DaskRuns, SchedulerLost, settle_lost
from mmnb.collect import collect
from mmnb.files import write_json_atomic
from mmnb.locks import Claim
from mmnb.names import run_name
from mmnb.plan import execute_run, plan_runs
from mmnb.runs import read_record
from mmnb.sweep import sweep

# 8 and --timeout ----------------------------------------------------------------------


def test_8_a_killed_runner_takes_its_notebooks_children(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "mmnb", "sweep", str(FAULTS), "-p", "mode", "child"]
    sweep_process = subprocess.Popen(
        [*argv, "--out", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    pid_file = tmp_path / "mode=child" / "child.pid"
    _wait_for(lambda: pid_file.exists() and pid_file.read_text())
    child = int(pid_file.read_text())
    runner = psutil.Process(sweep_process.pid).children()[0]
    runner.kill()  # as the out-of-memory killer would
    sweep_process.communicate(timeout=60)
    assert sweep_process.returncode == 1
    _wait_for(lambda: not _alive(child), timeout=10)
    record = read_record(tmp_path / "mode=child")
    assert record["status"] == "failed" and "SIGKILL" in record["error"]


def test_a_run_times_out_and_its_process_group_ends(tmp_path: Path, capsys) -> None:
    out = tmp_path / "r"
    start = time.monotonic()
    code = main(["run", str(FAULTS), "-p", "mode", "child", "--timeout", "4", "--out", str(out)])
    assert code == 1 and time.monotonic() - start < 60
    assert "timed out: stopped after 4 s" in capsys.readouterr().err
    assert not _alive(int((out / "child.pid").read_text()))
    assert json.loads((out / "run.json").read_text())["status"] == "failed"


def test_a_timeout_holds_on_dask(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        summary = sweep(
            FAULTS, {"mode": ["hang"]}, tmp_path, scheduler=cluster.scheduler_address,
            progress=False, timeout=3,
        )  # fmt: skip
    assert "timed out" in summary.failed["mode=hang"]


# 9 ------------------------------------------------------------------------------------


def test_9_a_full_disk_is_named_and_the_rest_listed(tmp_path: Path, capsys) -> None:
    code = main(["sweep", str(FAULTS), "-p", "mode", "enospc", "ok", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 5
    assert "mode=enospc: disk full (no space left on device)" in err
    assert "mode=ok: not started: the disk is full" in err
    folder = tmp_path / "mode=enospc"
    assert (folder / "tiny_faults.ipynb.partial").exists()
    assert read_record(folder)["status"] == "disk_full"
    assert pd.read_csv(tmp_path / "results.csv")["status"].tolist() == ["disk_full"]


def test_9_a_full_disk_in_the_runner(tmp_path: Path, monkeypatch) -> None:
    """papermill itself hits ENOSPC writing the notebook: no traceback, files set aside."""
    import papermill

    def full(notebook, output, **kwargs):
        Path(output).write_text('{"cells": [')  # half a notebook
        Path(kwargs["parameters"]["output_dir"], "metrics.json").write_text("{")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(papermill, "execute_notebook", full)
    task = plan_runs(FAULTS, {"x": [1]}, tmp_path)[0]
    result = execute_run(task)
    assert result.status == "disk_full" and "free space" in result.error
    folder = Path(task.folder)
    assert (folder / "tiny_faults.ipynb.partial").read_text() == '{"cells": ['
    assert (folder / "metrics.json.partial").exists() and not (folder / "metrics.json").exists()
    assert read_record(folder)["status"] == "disk_full"


# 10 -----------------------------------------------------------------------------------


def test_10_a_dead_scheduler_is_recorded_per_run(tmp_path: Path, monkeypatch) -> None:
    tasks = plan_runs(FAULTS, {"x": [1, 2, 3]}, tmp_path)
    done, running, never = tasks
    Path(done.folder).mkdir(parents=True)
    write_json_atomic(Path(done.folder) / "metrics.json", {"params": {"x": 1}, "metrics": {}})
    record = {"params": {"x": 1}, "status": "ok", "provenance": done.provenance}
    write_json_atomic(Path(done.folder) / "run.json", record)
    held = Claim.acquire(running.folder)  # a worker still runs it

    class DeadScheduler:
        def __init__(self, address: str) -> None:
            self.active = {object(): task for task in tasks}

        def room(self) -> bool:
            return False

        def poll(self):
            raise SchedulerLost("the Dask scheduler at tcp://x:1 died")

        def stop(self):
            return []

        def close(self) -> None:
            pass

    monkeypatch.setattr(mmnb.sweep, "DaskRuns", DeadScheduler)
    summary = sweep(FAULTS, {"x": [1, 2, 3]}, tmp_path, scheduler="tcp://x:1", progress=False)
    held.release()
    assert summary.lost["x=1"] == "ok"
    assert summary.lost["x=2"].startswith("running: still running on a worker")
    assert summary.lost["x=3"].startswith("interrupted: never started")
    table = pd.read_csv(tmp_path / "results.csv").set_index("run")
    assert (
        table.loc["x=3", "status"] == "interrupted" and "never started" in table.loc["x=3", "error"]
    )
    # a client whose scheduler is gone says so
    dask = DaskRuns.__new__(DaskRuns)
    dask.client, dask.address, dask.futures = SimpleNamespace(status="closed"), "tcp://x:1", {}
    with pytest.raises(SchedulerLost, match="died"):
        dask.poll()
    assert settle_lost(never, "the scheduler died").status == "interrupted"


def test_10_a_real_scheduler_dies_mid_sweep(tmp_path: Path, monkeypatch) -> None:
    distributed = pytest.importorskip("distributed")
    hold = tmp_path / "hold"
    hold.touch()
    monkeypatch.setenv("TINY_HOLD", str(hold))
    out = tmp_path / "out"
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    )

    def kill_scheduler() -> None:
        _wait_for(lambda: list(out.glob("x=*/kernel.pid")))
        cluster.sync(cluster.scheduler.close)
        time.sleep(1.0)
        hold.unlink()

    threading.Thread(target=kill_scheduler, daemon=True).start()
    fault = ROOT / "tests" / "data" / "tiny_fault.ipynb"
    try:
        summary = sweep(
            fault, {"x": [1, 2, 3]}, out, scheduler=cluster.scheduler_address, progress=False
        )
    finally:
        with contextlib.suppress(Exception):
            cluster.close(timeout=2)
    states = Counter(error.split(":")[0] for error in summary.lost.values())
    assert states["interrupted"] == 2 and states["ok"] + states["running"] == 1
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 3 and (table["error"].str.contains("never started").sum() == 2)


# 11 -----------------------------------------------------------------------------------


def test_11_a_run_that_cannot_be_recorded_has_a_row(tmp_path: Path, capsys) -> None:
    (tmp_path / "x=1" / ".claim").mkdir(parents=True)  # its folder cannot take a claim
    assert main(["sweep", str(FAULTS), "-p", "x", "1", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "x=1: cannot claim the run" in err and "error.txt" not in err
    row = pd.read_csv(tmp_path / "results.csv").loc[0]
    assert row["run"] == "x=1" and row["status"] == "failed" and row["x"] == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_11_a_read_only_run_folder_has_a_row(tmp_path: Path) -> None:
    (tmp_path / "x=1").mkdir()
    (tmp_path / "x=1").chmod(0o555)
    try:
        summary = sweep(FAULTS, {"x": [1]}, tmp_path, progress=False)
    finally:
        (tmp_path / "x=1").chmod(0o755)
    assert "x=1" in summary.failed
    assert pd.read_csv(tmp_path / "results.csv").loc[0, "status"] == "failed"


# 12 -----------------------------------------------------------------------------------


def test_12_files_are_replaced_never_written_through_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    folder = tmp_path / "out" / "x=1"
    folder.mkdir(parents=True)
    for name in ("tiny_faults.ipynb", "run.json", "error.txt"):
        os.link(outside, folder / name)
    assert sweep(FAULTS, {"x": [1]}, tmp_path / "out", progress=False).failed == {}
    assert outside.read_text() == "precious" and outside.stat().st_nlink == 1
    claim = tmp_path / "claim" / "x=1"
    claim.mkdir(parents=True)
    os.link(outside, claim / ".claim")
    summary = sweep(FAULTS, {"x": [1]}, tmp_path / "claim", progress=False)
    assert "has other hard links" in summary.failed["x=1"]
    assert outside.read_text() == "precious"


# weak points --------------------------------------------------------------------------


def test_a_lock_held_by_an_unrelated_process_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "x=1"
    folder.mkdir()
    code = (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(folder / ".claim")], stdout=subprocess.PIPE, text=True
    )
    try:
        holder.stdout.readline()
        summary = sweep(FAULTS, {"x": [1]}, tmp_path, progress=False)
    finally:
        holder.kill()
        holder.wait()
    error = summary.failed["x=1"]
    assert "an unrelated process, not an mmnb run" in error and f"pid {holder.pid}" in error


def test_integers_stay_integers_and_long_values_fit(tmp_path: Path) -> None:
    for name, metrics in (("x=1", {"n": 3, "y": 0.5}), ("x=2", {"y": 1.5})):
        (tmp_path / name).mkdir()
        payload = {"params": {"x": int(name[-1])}, "metrics": metrics}
        write_json_atomic(tmp_path / name / "metrics.json", payload)
    collect(tmp_path)
    with open(tmp_path / "results.csv") as handle:
        one, two = csv.DictReader(handle)
    assert (one["n"], one["x"], one["y"]) == ("3", "1", "0.5")  # not 3.0, 1.0
    assert (two["n"], two["x"]) == ("", "2")
    long = {"label": "a" * 300, "x": 1}
    name = run_name(long)
    assert len(name.encode()) <= 200 and name != run_name({**long, "label": "a" * 301})
    (tmp_path / name).mkdir()  # a file system takes it
