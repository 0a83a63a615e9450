"""Sweeps: grid expansion, name checks, YAML numbers, resume, failure isolation, jobs, Dask.

Kernels start slowly, so the tests that execute notebooks share one small sweep
(two runs at once, one of which raises) and add one run each for resume and for Dask.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml

from mmnb.__main__ import main, parse_value
from mmnb.locks import Claim
from mmnb.plan import RunSettings
from mmnb.plots import phase_diagram
from mmnb.sweep import (
    check_parameters,
    collect,
    expand_grid,
    load_grid,
    plan_runs,
    run_name,
    sweep,
)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "tests" / "data" / "tiny_sweep.ipynb"
FAULT = ROOT / "tests" / "data" / "tiny_fault.ipynb"  # no torch: starts fast
GRID = {"x": [1, 2], "fail_on": 2, "seed": [0]}
FAILED = "fail_on=2__seed=0__x=2"
OK = "fail_on=2__seed=0__x=1"


@pytest.fixture(autouse=True)
def kernels_import_mmnb(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernels run in the notebook's folder; let them import this checkout's mmnb."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory):
    """Two runs in two local processes; the run with x == 2 raises."""
    out = tmp_path_factory.mktemp("sweep") / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(ROOT))
        summary = sweep(NOTEBOOK, GRID, out, jobs=2, progress=False)
    return out, summary


# --- grid, names, values ---------------------------------------------------------------


def test_expand_grid_is_the_product_in_order() -> None:
    runs = expand_grid({"a": [1, 2], "label": "xy", "seed": [0, 1]})
    assert runs == [
        {"a": 1, "label": "xy", "seed": 0},
        {"a": 1, "label": "xy", "seed": 1},
        {"a": 2, "label": "xy", "seed": 0},
        {"a": 2, "label": "xy", "seed": 1},
    ]
    assert expand_grid({}) == [{}]
    assert expand_grid({"a": np.array([0.5, 1.0])}) == [{"a": 0.5}, {"a": 1.0}]


@pytest.mark.parametrize(
    ("grid", "message"), [({"a": []}, "has no values"), ({"a": [[[1], 2]]}, "is a list")]
)
def test_expand_grid_rejects_bad_values(grid: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        expand_grid(grid)


def test_run_name_spells_every_parameter() -> None:
    params = {"lr": 0.001, "device": "cuda:0", "flag": True, "c": None, "n": 100}
    name = run_name(params)  # sorted; True as 1; an unsafe value cut and hashed
    assert re.fullmatch(r"c=None__device=cuda-0~[0-9a-f]{8}__flag=1__lr=0.001__n=100", name)
    assert run_name({}) == "defaults"


def test_plan_runs_gives_values_that_spell_alike_their_own_folders(tmp_path: Path) -> None:
    names = [t.name for t in plan_runs(NOTEBOOK, {"label": ["a b", "a/b", "a-b"]}, tmp_path)]
    assert len(set(names)) == 3 and "label=a-b" in names


def test_a_single_run_plans_into_out_itself_with_its_settings(tmp_path: Path) -> None:
    settings = RunSettings("python3", timeout=5.0, redo=True)
    (task,) = plan_runs(NOTEBOOK, {"x": [3]}, tmp_path / "one", settings, single=True)
    assert task.folder == str((tmp_path / "one").resolve()) and task.params == {"x": 3}
    assert (task.timeout, task.redo, task.kernel_name) == (5.0, True, "python3")
    with pytest.raises(ValueError, match="one value per parameter"):
        plan_runs(NOTEBOOK, {"x": [1, 2]}, tmp_path, single=True)
    with pytest.raises(ValueError, match="--timeout 0"):
        plan_runs(NOTEBOOK, {"x": [1]}, tmp_path, RunSettings(timeout=0))


def test_parameter_names_are_checked_against_the_notebook(tmp_path: Path) -> None:
    known = check_parameters(NOTEBOOK, ["x", "seed"])
    assert set(known) == {"x", "scale", "label", "fail_on", "seed", "output_dir"}
    with pytest.raises(ValueError, match=r"\['xx'\].*known: \['fail_on', 'label', 'scale'"):
        check_parameters(NOTEBOOK, ["x", "xx"])
    with pytest.raises(ValueError, match="is set for each run"):
        check_parameters(NOTEBOOK, ["output_dir"])
    with pytest.raises(ValueError, match="not an existing .ipynb"):
        check_parameters(tmp_path / "missing.ipynb", ["x"])
    untagged = json.loads(NOTEBOOK.read_text())
    untagged["cells"][1]["metadata"]["tags"] = []
    (tmp_path / "untagged.ipynb").write_text(json.dumps(untagged))
    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        check_parameters(tmp_path / "untagged.ipynb", ["x"])


def test_yaml_grid_reads_exponents_as_floats(tmp_path: Path) -> None:
    text = "lr: [1e-3, 2.5E+2, 1.0e3, -.5e-1]\nn: 10\nname: abc\nflag: true\nnothing: null\n"
    assert yaml.safe_load(text)["lr"][0] == "1e-3"  # the YAML 1.1 behaviour we correct
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    grid = load_grid(path)
    assert grid == {
        "lr": [0.001, 250.0, 1000.0, -0.05],
        "n": [10],
        "name": ["abc"],
        "flag": [True],
        "nothing": [None],
    }
    assert all(isinstance(v, float) for v in grid["lr"]) and isinstance(grid["n"][0], int)
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="must map parameter names"):
        load_grid(path)
    path.write_text("lr: [1, 2\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_grid(path)


def test_command_line_values_are_python_literals() -> None:
    cases = {"3": 3, "0.5": 0.5, "1e-3": 0.001, "-2": -2, "True": True, "None": None}
    cases.update({"abc": "abc", "'3'": "3", "cuda:0": "cuda:0"})
    for text, value in cases.items():
        parsed = parse_value(text)
        assert parsed == value and type(parsed) is type(value), text
    assert parse_value("[1, 2.5]") == [1, 2.5]  # a list knob's value
    with pytest.raises(ValueError, match="is a dict"):
        parse_value("{1: 2}")
    with pytest.raises(ValueError, match="or a list of those"):
        parse_value("[[1]]")


def test_command_line_rejects_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = ["sweep", str(NOTEBOOK), "--out", str(tmp_path / "runs")]
    assert main([*base, "-p", "xx", "1", "-p", "x", "2"]) == 2
    assert "unknown parameter(s) ['xx']" in capsys.readouterr().err
    assert main([*base, "-p", "x", "1", "--jobs", "0"]) == 2
    assert "jobs=0" in capsys.readouterr().err
    for bad in (["-p", "x"], ["-p", "seed", "1", "--seeds", "0"], ["-p", "x", "1", "-p", "x", "2"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*base, *bad])
        assert exit_info.value.code == 2
    assert not (tmp_path / "runs").exists()  # nothing ran


def test_sweep_rejects_jobs_with_scheduler(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        sweep(NOTEBOOK, {"x": [1]}, tmp_path, jobs=2, scheduler="tcp://127.0.0.1:1")


# --- executing notebooks ---------------------------------------------------------------


def test_failed_run_keeps_the_others(swept) -> None:
    out, summary = swept
    assert sorted(summary.ran) == [OK, FAILED] and summary.skipped == []
    assert list(summary.failed) == [FAILED]
    assert summary.failed[FAILED] == "RuntimeError: asked to fail at x=2"
    table = summary.table.set_index("run")
    assert table.loc[OK, "status"] == "ok" and table.loc[OK, "y"] == 1.0
    assert table.loc[FAILED, "status"] == "failed" and np.isnan(table.loc[FAILED, "y"])
    assert table.loc[FAILED, "x"] == 2  # the failed row still carries its parameters
    assert (table["wall_seconds"] > 0).all()
    assert table.loc[OK, "in_data_dir"] == 1  # the kernel ran in the notebook's folder
    # --jobs 2: the kernel was started by a worker process, not by this one
    assert table.loc[OK, "kernel_parent"] != os.getpid()
    failed = out / FAILED
    assert "asked to fail at x=2" in (failed / "error.txt").read_text()
    assert (failed / NOTEBOOK.name).is_file() and not (failed / "metrics.json").exists()
    assert json.loads((failed / "run.json").read_text())["status"] == "failed"
    on_disk = pd.read_csv(out / "results.csv")
    assert on_disk["run"].tolist() == summary.table["run"].tolist()
    assert on_disk["status"].tolist() == ["ok", "failed"]


def test_resume_reruns_only_unfinished_runs(
    swept, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "runs"
    shutil.copytree(swept[0], out)
    stamp = (out / OK / "metrics.json").stat().st_mtime_ns
    argv = ["sweep", str(NOTEBOOK), "-p", "x", "1", "2", "-p", "fail_on", "2"]
    assert main([*argv, "--seeds", "0", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "1 ran, 1 skipped" in captured.out
    assert FAILED in captured.err and "error.txt" in captured.err
    assert (out / OK / "metrics.json").stat().st_mtime_ns == stamp
    assert pd.read_csv(out / "results.csv")["status"].tolist() == ["ok", "failed"]


def test_collect_rebuilds_the_table(swept, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "runs"
    shutil.copytree(swept[0], out)
    (out / "results.csv").unlink()
    assert main(["collect", str(out)]) == 0
    assert "2 runs" in capsys.readouterr().out
    pd.testing.assert_frame_equal(
        pd.read_csv(out / "results.csv"), pd.read_csv(swept[0] / "results.csv")
    )
    # a run that started, and whose process died without recording an outcome
    (out / "x=9").mkdir()
    (out / "x=9" / "run.json").write_text(
        json.dumps({"params": {"x": 9}, "status": "running", "wall_seconds": None, "error": ""})
    )
    # a run made outside the sweep (metrics.json only) counts as finished
    (out / "by-hand").mkdir()
    shutil.copy(out / OK / "metrics.json", out / "by-hand" / "metrics.json")
    table = collect(out).set_index("run")
    assert table.loc["x=9", "status"] == "interrupted"
    assert "resume runs it again" in table.loc["x=9", "error"]
    assert table.loc["by-hand", "status"] == "ok" and table.loc["by-hand", "y"] == 1.0


def test_dask_local_cluster(tmp_path: Path) -> None:
    """Runs go to a Dask worker; a run that another process holds is waited for."""
    distributed = pytest.importorskip("distributed")
    claim = Claim.acquire(tmp_path / "x=6")
    threading.Timer(3.0, claim.release).start()  # the other process lets go after 3 s
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        summary = sweep(
            FAULT, {"x": [5, 6]}, tmp_path, scheduler=cluster.scheduler_address, progress=False
        )
    assert summary.failed == {} and sorted(summary.ran) == ["x=5", "x=6"]
    table = pd.read_csv(tmp_path / "results.csv")
    assert table["status"].tolist() == ["ok", "ok"] and table["y"].tolist() == [10, 12]


# --- phase diagram ---------------------------------------------------------------------


def test_phase_diagram_averages_seeds_and_leaves_failures_blank() -> None:
    rows = [
        {"n_snr2": n, "c_mu": c, "seed": s, "acc": n * c + s}
        for n in (0.5, 1.25, 3.0)
        for c in (1.0, 3.0)
        for s in (0, 1)
    ]
    df = pd.DataFrame(rows)
    df.loc[(df.n_snr2 == 3.0) & (df.c_mu == 3.0), "acc"] = np.nan  # both seeds failed
    ax = phase_diagram(df, "n_snr2", "c_mu", "acc")
    mesh = ax.collections[0]
    values = np.ma.getdata(mesh.get_array()).reshape(2, 3)
    mask = np.ma.getmaskarray(mesh.get_array()).reshape(2, 3)
    expected = np.array([[0.5, 1.25, 3.0], [1.5, 3.75, 9.0]]) + 0.5
    np.testing.assert_allclose(values[~mask], expected[~mask])
    assert mask.tolist() == [[False, False, False], [False, False, True]]
    assert [t.get_text() for t in ax.texts] == ["1.00", "1.75", "3.50", "2.00", "4.25"]
    assert ax.get_xlabel() == "n_snr2" and list(ax.get_xticks()) == [0.5, 1.25, 3.0]
    ax = phase_diagram(df, "n_snr2", "c_mu", "acc", logx=True, annotate=False)
    edges = ax.collections[0].get_coordinates()[0, :, 0]  # x edges: geometric midpoints
    np.testing.assert_allclose(edges[1:3], [np.sqrt(0.5 * 1.25), np.sqrt(1.25 * 3.0)])
    assert ax.get_xscale() == "log" and not ax.texts
    with pytest.raises(ValueError, match="log axis needs positive values"):
        phase_diagram(df.assign(c_mu=df.c_mu - 1), "n_snr2", "c_mu", "acc", logy=True)
    with pytest.raises(ValueError, match=r"\['gap'\] not in the table"):
        phase_diagram(df, "n_snr2", "c_mu", "gap")
    with pytest.raises(ValueError, match="must be numeric"):
        phase_diagram(df.assign(c_mu="x"), "n_snr2", "c_mu", "acc")
    plt.close("all")


def test_phase_diagram_reads_a_results_csv(tmp_path) -> None:
    df = pd.DataFrame({"snr": [0.1, 0.1, 0.2, 0.2], "c_mu": [1, 3, 1, 3], "acc": [1, 2, 3, 4]})
    df.to_csv(tmp_path / "results.csv", index=False)
    ax = phase_diagram(tmp_path / "results.csv", "snr", "c_mu", "acc")
    assert [t.get_text() for t in ax.texts] == ["1.00", "3.00", "2.00", "4.00"]
    plt.close("all")


def test_the_committed_phase_diagram_sweep_is_complete() -> None:
    """The sweeps page plots this table: every run of its 5 × 5 grid finished."""
    df = pd.read_csv(ROOT / "data" / "sweeps" / "snr_phase" / "results.csv")
    assert (df.status == "ok").all(), df.loc[df.status != "ok", ["run", "error"]]
    assert df.groupby(["snr", "c_mu"]).size().shape == (25,)
    for column in ("ood_acc_single", "ood_acc_multi", "n_snr2"):
        assert df[column].between(0, 5).all(), column
