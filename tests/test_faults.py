"""Faults of runs and sweeps, numbered as in issue 34; each test shows what now happens.

The notebook `tests/data/tiny_faults.ipynb` imports no torch, so a kernel starts in a
second or two; most tests need no kernel at all.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from mmnb.__main__ import main
from mmnb.collect import collect
from mmnb.files import write_json_atomic
from mmnb.locks import Claim
from mmnb.names import run_name
from mmnb.plan import plan_runs
from mmnb.sweep import sweep

ROOT = Path(__file__).resolve().parents[1]
FAULTS = ROOT / "tests" / "data" / "tiny_faults.ipynb"


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MMNB_PROGRESS", "0")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_for(condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _finished(folder: Path, params: dict, provenance: dict | None = None) -> None:
    """A finished run as a sweep records it (no kernel)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "metrics.json", {"params": params, "metrics": {"y": 1}})
    record = {"params": params, "status": "ok", "error": "", "provenance": provenance or {}}
    write_json_atomic(folder / "run.json", record)


# 1 ------------------------------------------------------------------------------------


def test_1_collect_never_wipes_or_drops_a_table(tmp_path: Path, capsys) -> None:
    committed = ROOT / "data" / "sweeps" / "snr_phase" / "results.csv"
    shutil.copy(committed, tmp_path / "results.csv")
    assert main(["collect", str(tmp_path)]) == 2
    assert "holds no run folders" in capsys.readouterr().err
    assert (tmp_path / "results.csv").read_bytes() == committed.read_bytes()
    # a table naming a run whose folder is gone is kept before the new one replaces it
    _finished(tmp_path / "x=1", {"x": 1})
    (tmp_path / "results.csv").write_text("run,status\nx=1,ok\nx=2,ok\n")
    with pytest.warns(UserWarning, match="kept as"):
        collect(tmp_path)
    assert (tmp_path / "results.csv.old-1").read_text() == "run,status\nx=1,ok\nx=2,ok\n"
    assert pd.read_csv(tmp_path / "results.csv")["run"].tolist() == ["x=1"]


# 2 ------------------------------------------------------------------------------------


def test_2_run_never_writes_over_its_notebook(tmp_path: Path, capsys) -> None:
    notebook = tmp_path / "nb" / "tiny_faults.ipynb"
    notebook.parent.mkdir()
    shutil.copy(FAULTS, notebook)
    before = notebook.read_bytes()
    for out in (notebook.parent, notebook):
        assert main(["run", str(notebook), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is the notebook's own folder" in err and "is a file, not a folder" in err
    assert notebook.read_bytes() == before and sorted(os.listdir(notebook.parent)) == [
        "tiny_faults.ipynb"
    ]


# 3 and 7 ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished run of a copy of the tiny notebook (the only kernel of tests 3, 7)."""
    base = tmp_path_factory.mktemp("provenance")
    shutil.copy(FAULTS, base / "tiny_faults.ipynb")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(ROOT))
        summary = sweep(base / "tiny_faults.ipynb", {"x": [1]}, base / "out", progress=False)
    assert summary.ran == ["x=1"]
    return base


def _edited(notebook: Path, target: Path) -> Path:
    nb = json.loads(notebook.read_text())
    nb["cells"][2]["source"] = "".join(nb["cells"][2]["source"]).replace("2 * x", "3 * x")
    target.write_text(json.dumps(nb))
    return target


def test_3_another_notebooks_runs_are_refused(finished_sweep: Path, tmp_path: Path) -> None:
    shutil.copytree(finished_sweep, tmp_path / "s")
    other = _edited(tmp_path / "s" / "tiny_faults.ipynb", tmp_path / "other.ipynb")
    with pytest.raises(ValueError, match=r"x=1: made by another notebook, .*tiny_faults.ipynb"):
        sweep(other, {"x": [1]}, tmp_path / "s" / "out", progress=False)
    table = pd.read_csv(tmp_path / "s" / "out" / "results.csv")
    assert table.loc[0, "notebook"] == "tiny_faults.ipynb" and table.loc[0, "y"] == 2


def test_7_changed_code_is_not_mixed_in(finished_sweep: Path, tmp_path: Path) -> None:
    shutil.copytree(finished_sweep, tmp_path / "s")
    notebook, out = tmp_path / "s" / "tiny_faults.ipynb", tmp_path / "s" / "out"
    old = pd.read_csv(out / "results.csv").loc[0]
    assert {"notebook_sha256", "code_sha256", "mmnb_version"} <= set(old.index)
    _edited(notebook, notebook)  # the notebook changed since the run
    with pytest.raises(ValueError, match="Use another --out, or --redo"):
        sweep(notebook, {"x": [1]}, out, progress=False)
    summary = sweep(notebook, {"x": [1]}, out, progress=False, redo=True)
    assert summary.ran == ["x=1"]
    new = pd.read_csv(out / "results.csv").loc[0]
    assert new["y"] == 3 and new["notebook_sha256"] != old["notebook_sha256"]
    assert (out / "x=1" / "metrics.json.superseded").exists()


# 4 ------------------------------------------------------------------------------------


def test_4_a_run_rechecks_its_folder_after_waiting(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "one"
    claim = Claim.acquire(folder)  # another `run` holds the folder...
    codes: list[int] = []
    waiting = threading.Thread(
        target=lambda: codes.append(
            main(["run", str(FAULTS), "-p", "x", "2", "--out", str(folder)])
        )
    )
    waiting.start()
    time.sleep(1.5)  # ...and finishes x=1 while this one waits
    _finished(folder, {"x": 1})
    claim.release()
    waiting.join(60)
    assert codes == [2]
    assert "with other parameters ({'x': 1})" in capsys.readouterr().err
    assert json.loads((folder / "metrics.json").read_text())["params"] == {"x": 1}


# 5 ------------------------------------------------------------------------------------


def test_5_one_point_one_folder(tmp_path: Path) -> None:
    one = plan_runs(FAULTS, {"x": [1, 2], "seed": [0]}, tmp_path)
    two = plan_runs(FAULTS, {"seed": [0], "x": [1.0, 2]}, tmp_path)
    assert [t.name for t in one] == [t.name for t in two] == ["seed=0__x=1", "seed=0__x=2"]
    assert run_name({"x": True}) == run_name({"x": 1}) == run_name({"x": 1.0}) == "x=1"
    assert run_name({"x": "1"}) != run_name({"x": 1})  # a string is another value
    with pytest.raises(ValueError, match="1, 1.0 and True are one value"):
        plan_runs(FAULTS, {"x": [1, 1.0]}, tmp_path)
    # a run made as x=True counts as the point x=1
    _finished(tmp_path / "x=1", {"x": True}, one[0].provenance)
    assert sweep(FAULTS, {"x": [1.0]}, tmp_path, progress=False).skipped == ["x=1"]


# 6 ------------------------------------------------------------------------------------

CH00 = ROOT / "chapters" / "00_contrastive_learning.ipynb"
CH01 = ROOT / "chapters" / "01_snr.ipynb"


def test_6_values_are_checked_as_promised(tmp_path: Path, capsys) -> None:
    import torch

    big = ["-p", "n_train", "1000000", "-p", "x_dim", "4096", "-p", "y_dim", "4096"]
    big += ["-p", "hidden", "4096", "-p", "batch_size", "65536", "-p", "n_seeds", "64"]
    cases = [
        (CH00, big, "GB of memory at once"),
        (CH01, ["-p", "phase_diagram", "1"], "phase_diagram=1 is not allowed"),
        (CH00, ["-p", "fixed_taus", "[0.1, 'a']"], "fixed_taus[1]='a' must be a finite"),
    ]
    if not torch.cuda.is_available():
        cases.append((CH00, ["-p", "device", "cuda"], "'cuda' is not available"))
    for notebook, args, message in cases:
        assert main(["run", str(notebook), *args, "--out", str(tmp_path / "r")]) == 2, args
        assert message in capsys.readouterr().err, args
    assert not (tmp_path / "r").exists()
    # list knobs can be set, and a "paper" run on a CPU gets a note with its hours
    notes: list[str] = []
    tasks = plan_runs(CH00, {"fixed_taus": [[0.1, 1.0]], "profile": "paper"}, tmp_path, notes=notes)
    assert tasks[0].name == "fixed_taus=[0.1,1]__profile=paper"
    if not torch.cuda.is_available():
        assert "expect about" in notes[0] and "hours" in notes[0]
    grid = tmp_path / "grid.yaml"
    grid.write_text("seed: [010, 7]\nlabel: 1:30\nflag: [yes, true]\n")
    from mmnb.grids import load_grid

    assert load_grid(grid) == {"seed": [10, 7], "label": ["1:30"], "flag": ["yes", True]}
