"""Faults: signals, a dead sweep, concurrent sweeps, corrupt results, claims, unsafe paths.

The notebooks run here (`tests/data/tiny_fault.ipynb`) import no torch, so a kernel
starts in a second or two; `$TINY_HOLD` keeps a run in flight while a test interferes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import psutil
import pytest

from mmnb.__main__ import main
from mmnb.backends import finish_local
from mmnb.budget import needs
from mmnb.collect import collect
from mmnb.files import read_metrics, write_json_atomic
from mmnb.locks import Claim, claim_holder
from mmnb.notebooks import check_values, notebook_configs
from mmnb.plan import execute_run
from mmnb.runs import RunTask, write_record
from mmnb.sweep import plan_runs, run_notebook, sweep

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
FAULT = DATA / "tiny_fault.ipynb"
CONFIG = DATA / "tiny_config.ipynb"
RUNS = ["x=1", "x=2", "x=3"]


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MMNB_PROGRESS", "0")
    monkeypatch.delenv("TINY_HOLD", raising=False)
    monkeypatch.delenv("TINY_LOG", raising=False)


def _sweep_process(out: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    argv = [sys.executable, "-m", "mmnb", "sweep", str(FAULT), "-p", "x", "1", "2", "3"]
    return subprocess.Popen(
        [*argv, "--out", str(out), *extra],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for(condition, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.fixture
def sigint_reaches_children():
    """A shell without job control (a script, `bash -c`) starts `pytest ... &` with SIGINT
    ignored; children inherit that, and the sweep rightly keeps an ignored signal ignored.
    Python's own handler here is reset to the default in the sweep, so Ctrl-C reaches it."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)


@pytest.mark.usefixtures("sigint_reaches_children")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_a_stopped_sweep_leaves_no_process_and_resumes(tmp_path: Path, signum: int) -> None:
    """SIGTERM or Ctrl-C stop the sweep; SIGKILL kills it and its runners follow."""
    out, hold = tmp_path / "runs", tmp_path / "hold"
    hold.touch()
    process = _sweep_process(out, "--jobs", "2", env={"TINY_HOLD": str(hold)})
    try:
        pids = [out / run / "kernel.pid" for run in RUNS]
        _wait_for(lambda: sum(p.exists() for p in pids) == 2)  # two runs in flight
        family = psutil.Process(process.pid).children(recursive=True)
        assert len(family) >= 4  # two runners, two kernels
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == (-signum if signum == signal.SIGKILL else 128 + signum), stderr
    _wait_for(lambda: not _alive(family), timeout=15)  # runners and kernels are gone
    started = [run for run in RUNS if (out / run / "run.json").exists()]
    assert len(started) == 2  # the queued run never started
    for run in started:  # recorded by the runners themselves, even when the sweep was killed
        record = json.loads((out / run / "run.json").read_text())
        assert record["status"] == "interrupted", record
        assert claim_holder(out / run) is None
    if signum != signal.SIGKILL:
        assert "interrupted" in stderr and "resume" in stderr
        table = pd.read_csv(out / "results.csv").set_index("run")
        assert (table.loc[started, "status"] == "interrupted").all()
    hold.unlink()
    argv = ["sweep", str(FAULT), "-p", "x", "1", "2", "3", "--out", str(out), "--jobs", "2"]
    assert main(argv) == 0
    table = pd.read_csv(out / "results.csv")
    assert table["status"].tolist() == ["ok"] * 3 and table["y"].tolist() == [2, 4, 6]


def test_a_stopped_run_is_recorded_and_runs_again(tmp_path: Path) -> None:
    out, hold = tmp_path / "one", tmp_path / "hold"
    hold.touch()
    argv = [sys.executable, "-m", "mmnb", "run", str(FAULT), "-p", "x", "7", "--out", str(out)]
    process = subprocess.Popen(
        argv,
        env={**os.environ, "TINY_HOLD": str(hold)},
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(lambda: (out / "kernel.pid").exists())
        family = psutil.Process(process.pid).children(recursive=True)
        process.terminate()
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 143, stderr
    _wait_for(lambda: not _alive(family), timeout=15)
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    hold.unlink()
    assert main(["run", str(FAULT), "-p", "x", "7", "--out", str(out)]) == 0
    assert read_metrics(out / "metrics.json")["metrics"] == {"y": 14}


def test_a_killed_run_fails_alone_and_its_kernel_leaves(tmp_path: Path) -> None:
    """The out-of-memory killer takes one run's process: that run fails, the sweep goes on."""
    out, hold = tmp_path / "runs", tmp_path / "hold"
    hold.touch()
    argv = [sys.executable, "-m", "mmnb", "sweep", str(FAULT), "-p", "x", "1", "2"]
    process = subprocess.Popen(
        [*argv, "--out", str(out)],
        env={**os.environ, "TINY_HOLD": str(hold)},
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(lambda: (out / "x=1" / "kernel.pid").exists())
        (runner,) = psutil.Process(process.pid).children()
        kernels = runner.children(recursive=True)
        runner.kill()
        _wait_for(lambda: not _alive(kernels), timeout=15)  # the kernel follows its runner
        hold.unlink()
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 1
    assert "x=1: the run's process died (signal SIGKILL, perhaps out of memory)" in stderr
    table = pd.read_csv(out / "results.csv")
    assert table["status"].tolist() == ["failed", "ok"]


def test_two_sweeps_into_one_folder_run_each_point_once(tmp_path: Path) -> None:
    out, hold, log = tmp_path / "runs", tmp_path / "hold", tmp_path / "log"
    hold.touch()
    env = {"TINY_HOLD": str(hold), "TINY_LOG": str(log)}
    first, second = _sweep_process(out, env=env), _sweep_process(out, env=env)
    try:
        # each sweep holds one run; the third run waits for whichever is free first
        _wait_for(lambda: log.exists() and len(log.read_text().split()) == 2)
        hold.unlink()
        outputs = [p.communicate(timeout=120) for p in (first, second)]
    finally:
        for p in (first, second):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    assert [first.returncode, second.returncode] == [0, 0], outputs
    assert sorted(log.read_text().split()) == RUNS  # every point ran exactly once
    table = pd.read_csv(out / "results.csv")
    assert table["status"].tolist() == ["ok"] * 3
    ran = [int(out.split(" ran, ")[0].split()[-1]) for out, _ in outputs]
    assert sum(ran) == 3, outputs


def test_corrupt_metrics_are_named_and_redone(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "runs"
    assert sweep(FAULT, {"x": [1, 2, 3]}, out, jobs=3, progress=False).failed == {}
    truncated, wrong_shape = out / "x=1" / "metrics.json", out / "x=2" / "metrics.json"
    truncated.write_text(truncated.read_text()[:20])
    wrong_shape.write_text(json.dumps({"params": {}, "metrics": {"y": "high"}}))
    table = collect(out).set_index("run")
    assert table["status"].tolist() == ["corrupt", "corrupt", "ok"]
    assert f"{truncated}: is not valid JSON" in table.loc["x=1", "error"]
    assert f"{wrong_shape}: metric(s) ['y'] are not numbers" in table.loc["x=2", "error"]
    assert main(["collect", str(out)]) == 0
    assert str(truncated) in capsys.readouterr().err
    ok_stamp = (out / "x=3" / "metrics.json").stat().st_mtime_ns
    summary = sweep(FAULT, {"x": [1, 2, 3]}, out, progress=False)
    assert sorted(summary.ran) == ["x=1", "x=2"] and summary.skipped == ["x=3"]
    assert summary.table["status"].tolist() == ["ok"] * 3
    assert read_metrics(truncated)["metrics"] == {"y": 2}
    assert (out / "x=1" / "metrics.json.corrupt").is_file()  # kept for inspection
    assert (out / "x=3" / "metrics.json").stat().st_mtime_ns == ok_stamp


def test_run_checks_names_and_values_before_the_kernel(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "one"
    cases = [
        (FAULT, ["-p", "xx", "1"], "unknown parameter(s) ['xx']"),
        (FAULT, ["-p", "output_dir", "elsewhere"], "'output_dir' is set for each run"),
        (FAULT, ["-p", "seed", "True"], "seed=True must be an integer"),
        (FAULT, ["-p", "seed", "-1"], "seed=-1 is out of range"),
        (CONFIG, ["-p", "steps", "1000000000"], "steps=1000000000 is out of range"),
        (CONFIG, ["-p", "lr", "nan"], "lr='nan' must be a finite number"),
        (CONFIG, ["-p", "lr", "1e400"], "'lr': inf is not a finite number"),
        (
            FAULT,
            ["-p", "x", "1", "--kernel", "no-such-kernel"],
            "'no-such-kernel' is not installed",
        ),
    ]
    for notebook, args, message in cases:
        assert main(["run", str(notebook), *args, "--out", str(out)]) == 2, args
        assert message in capsys.readouterr().err, args
    assert not out.exists()  # nothing ran, nothing was written
    with pytest.raises(ValueError, match="steps=5000 is out of range"):
        sweep(CONFIG, {"profile": "paper", "steps": [10, 5000]}, tmp_path / "sweep")
    assert not (tmp_path / "sweep").exists()


CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_chapter_defaults_pass_the_checks_before_the_kernel(chapter: Path) -> None:
    """The sweep checks values with each chapter's config; its own profiles must pass."""
    assert notebook_configs(chapter), "the chapter's config is found"
    for profile in ("book", "paper"):
        check_values(chapter, [{"profile": profile}], machine=False)
        built = [c.from_profile(profile) for c in notebook_configs(chapter)]
        assert needs(built) is not None, "every chapter has a memory estimate (mmnb.budget)"
    check_values(chapter, [{"profile": "book"}])  # the book fits this machine


def test_run_executes_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "one"
    assert main(["run", str(FAULT), "-p", "x", "4", "--out", str(out)]) == 0
    assert read_metrics(out / "metrics.json")["metrics"] == {"y": 8}
    assert json.loads((out / "run.json").read_text())["status"] == "ok"
    assert (out / FAULT.name).is_file()
    assert main(["run", str(FAULT), "-p", "x", "4", "--out", str(out)]) == 0
    assert "already holds a finished run" in capsys.readouterr().out
    assert main(["run", str(FAULT), "-p", "x", "5", "--out", str(out)]) == 2  # not silently
    assert "run with other parameters ({'x': 4})" in capsys.readouterr().err


def test_symlinks_in_out_are_not_followed(tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "runs", tmp_path / "elsewhere"
    elsewhere.mkdir()
    out.mkdir()
    (out / "x=1").symlink_to(elsewhere, target_is_directory=True)
    (out / "x=2").mkdir()
    target = tmp_path / "precious.ipynb"
    target.write_text("keep me")
    (out / "x=2" / FAULT.name).symlink_to(target)
    summary = sweep(FAULT, {"x": [1, 2]}, out, progress=False)
    assert list(summary.failed) == ["x=1"] and "symbolic link" in summary.failed["x=1"]
    assert list(elsewhere.iterdir()) == []  # nothing written through the link
    assert target.read_text() == "keep me"
    assert not (out / "x=2" / FAULT.name).is_symlink()  # the executed notebook replaced it
    with pytest.warns(UserWarning, match="symbolic link"):
        assert collect(out)["run"].tolist() == ["x=2"]


# --- claims and records, without kernels -----------------------------------------------


def _task(tmp_path: Path, name: str = "x=1") -> RunTask:
    return RunTask(name, str(FAULT), str(tmp_path / name), {"x": 1})


def test_a_claim_is_exclusive_and_dies_with_its_holder(tmp_path: Path) -> None:
    task = _task(tmp_path)
    claim = Claim.acquire(task.folder)
    assert claim is not None and Claim.acquire(task.folder) is None
    assert claim_holder(task.folder)["pid"] == os.getpid()
    before = sorted(os.listdir(task.folder))
    assert execute_run(task).status == "busy"  # and touches nothing
    assert sorted(os.listdir(task.folder)) == before
    claim.release()
    assert claim_holder(task.folder) is None
    # a holder that dies without releasing: the claim is free at once (no stale claim)
    code = (  # a bare mmnb package: no torch import, a fast start (as a runner does)
        "import sys, time, types; m = types.ModuleType('mmnb'); m.__path__ = [sys.argv[2]]; "
        "sys.modules['mmnb'] = m; from mmnb.locks import Claim; "
        "c = Claim.acquire(sys.argv[1]); print('held', flush=True); time.sleep(60)"
    )
    argv = [sys.executable, "-c", code, task.folder, str(ROOT / "mmnb")]
    holder = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert claim_holder(task.folder)["pid"] == holder.pid
    holder.kill()
    holder.wait()
    assert claim_holder(task.folder) is None
    claim = Claim.acquire(task.folder)
    assert claim is not None
    claim.release()


def test_a_finished_run_is_never_touched_again(tmp_path: Path) -> None:
    task = _task(tmp_path)
    Path(task.folder).mkdir()
    write_json_atomic(Path(task.folder) / "metrics.json", {"params": {}, "metrics": {"y": 1}})
    stamp = (Path(task.folder) / "metrics.json").stat().st_mtime_ns
    assert execute_run(task).status == "done"
    assert (Path(task.folder) / "metrics.json").stat().st_mtime_ns == stamp


def test_a_runner_that_dies_is_recorded(tmp_path: Path) -> None:
    cases = [(-9, "failed", "SIGKILL, perhaps out of memory"), (-15, "interrupted", "SIGTERM")]
    for returncode, status, words in cases:
        task = _task(tmp_path, f"code{-returncode}")
        claim = Claim.acquire(task.folder)
        write_record(task, "running")  # as the runner does; then it dies
        result = finish_local(task, claim, SimpleNamespace(pid=-1, returncode=returncode), False)
        assert result.status == status and words in result.error
        assert json.loads((Path(task.folder) / "run.json").read_text())["status"] == status
        assert claim_holder(task.folder) is None


def test_metrics_json_is_strict(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    write_json_atomic(path, {"params": {"lr": float("nan")}, "metrics": {"y": float("inf")}})
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
    assert read_metrics(path) == {"params": {"lr": None}, "metrics": {"y": None}}
    path.write_text('{"params": {}, "metrics": {"y": NaN}}')
    with pytest.raises(ValueError, match="is not valid JSON"):
        read_metrics(path)


def test_plan_names_duplicate_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'seed' lists the value 0 twice"):
        plan_runs(FAULT, {"seed": [0, 0]}, tmp_path)
    with pytest.raises(ValueError, match="'x': nan is not a finite number"):
        plan_runs(FAULT, {"x": [float("nan")]}, tmp_path)
    with pytest.raises(ValueError, match="1, 1.0 and True are one value"):  # one point
        plan_runs(FAULT, {"x": [1, True, 1.0]}, tmp_path)


def test_collect_refuses_a_folder_of_sweeps(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name / "x=1").mkdir(parents=True)
        (tmp_path / name / "results.csv").write_text("run,status\n")
        write_json_atomic(tmp_path / name / "x=1" / "metrics.json", {"params": {}, "metrics": {}})
    with pytest.raises(ValueError, match=r"holds sweeps \(a, b\), not runs"):
        collect(tmp_path)


def test_run_notebook_returns_the_result(tmp_path: Path) -> None:
    result = run_notebook(FAULT, {"x": 5}, tmp_path / "one")
    assert result.status == "ok" and result.wall_seconds > 0
    assert run_notebook(FAULT, {"x": 5}, tmp_path / "one").status == "done"
