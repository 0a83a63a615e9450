"""Claims: rules, verdicts, records before decisions, and a run whose claims fail."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mmnb.claims import NO_CONTROL, Claims, ClaimsFailed, paired, t_bound
from mmnb.results import save_metrics

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "tests" / "data" / "tiny_claims.ipynb"


def test_t_bound_is_the_one_sided_student_bound() -> None:
    values = np.array([0.91, 0.95, 0.93, 0.97])
    half = stats.t.ppf(0.95, 3) * values.std(ddof=1) / 2
    assert math.isclose(t_bound(values, ">="), values.mean() - half)
    assert math.isclose(t_bound(values, "<="), values.mean() + half)
    assert math.isnan(t_bound([1.0], ">="))


def test_rules_decide_over_replicas() -> None:
    board = Claims("c")
    ok_all = board.identity("a", "every replica", [0.91, 0.95], ">=", 0.9, source="s")
    bad_all = board.identity("b", "one replica below", [0.89, 0.99], ">=", 0.9, source="s")
    # mean 0.94 ≥ 0.9 but the t bound (3 replicas, wide spread) is below it
    wide = board.identity("c", "t bound", [0.80, 0.99, 1.03], ">=", 0.9, rule="t95", source="s")
    tight = board.identity("d", "t bound", [0.93, 0.94, 0.95], ">=", 0.9, rule="t95", source="s")
    one = board.identity("e", "one replica", [0.99], ">=", 0.9, rule="t95", source="s")
    nan = board.identity("f", "not finite", [np.nan, 1.0], ">=", 0.9, source="s")
    found = board.finding("g", "measured", [1.0, 2.0])
    assert [ok_all.verdict, bad_all.verdict] == ["holds", "fails"]
    assert [wide.verdict, tight.verdict] == ["fails", "holds"]
    assert one.verdict == "undecided" and nan.verdict == "fails"
    assert found.verdict == "recorded" and found.holds is None
    assert [c.name for c in board.failing()] == ["b", "c", "f"]


def test_paired_differences_need_the_same_replicas() -> None:
    np.testing.assert_allclose(paired([3.0, 4.0], [1.0, 1.5]), [2.0, 2.5])
    with pytest.raises(ValueError, match="same replicas"):
        paired([1.0, 2.0], [1.0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "guess"}, "kind 'guess'"),
        ({"rule": "mean"}, "rule 'mean'"),
        ({"op": ">"}, "comparison '>'"),
        ({"op": None}, "both a comparison and a threshold"),
        ({"source": ""}, "where the threshold comes from"),
        ({"control": ()}, "names its control"),
        ({"kind": "failed forecast", "note": ""}, "explanation"),
    ],
)
def test_bad_claims_are_refused(kwargs: dict, message: str) -> None:
    spec = {
        "kind": "prediction",
        "op": ">=",
        "threshold": 1.0,
        "rule": "all",
        "source": "spec",
        "control": NO_CONTROL,
        "note": "",
    }
    spec.update(kwargs)
    kind, op, threshold = spec.pop("kind"), spec.pop("op"), spec.pop("threshold")
    with pytest.raises(ValueError, match=message):
        Claims("c").add(kind, "x", "statement", [1.0], op, threshold, **spec)


def test_a_prediction_names_a_stated_control() -> None:
    board = Claims("c")
    board.prediction("p", "s", [1.0], ">=", 0.5, source="s", control="missing")
    with pytest.raises(ValueError, match="not stated"):
        board.records()
    with pytest.raises(ValueError, match="stated twice"):
        board.finding("p", "again", [1.0])
    # a cell run again in Jupyter states the same claim again: it replaces the first
    board.prediction("p", "s", [2.0], ">=", 0.5, source="s", control="missing")
    assert len(board) == 1 and board["p"].values == (2.0,)


def test_decide_lists_every_failing_claim(capsys: pytest.CaptureFixture) -> None:
    board = Claims("ch")
    board.prediction("p", "big", [0.1, 0.2], ">=", 0.5, source="s", control="k")
    board.control("k", "small", [0.9, 0.8], "<=", 0.5, source="s")
    board.failed_forecast("f", "once hoped", [0.0], ">=", 1.0, source="s", note="why")
    with pytest.raises(ClaimsFailed) as err:
        board.decide(True)
    assert "2 claim(s) of ch" in str(err.value) and "- p (prediction)" in str(err.value)
    assert "- k (control)" in str(err.value) and "- f" not in str(err.value)
    board.decide(False)
    assert "recorded, not stopping" in capsys.readouterr().out
    table = board.table()
    assert table.loc["f", "verdict"] == "fails" and table.loc["p", "kind"] == "prediction"


def test_no_control_yet_is_marked_in_the_table() -> None:
    board = Claims("c")
    board.prediction("p", "s", [1.0], ">=", 0.5, source="s", control=NO_CONTROL)
    assert board.table().loc["p", "kind"] == f"prediction ({NO_CONTROL})"


def test_save_metrics_records_the_claims(tmp_path: Path) -> None:
    board = Claims("c")
    board.identity("m", "mean", [1.0, 3.0], "<=", 5.0, source="s")
    board.identity("given", "metric given by the chapter", [1.0], "<=", 5.0, source="s")
    save_metrics(tmp_path, {"given": 7.0}, {"x": 1}, claims=board)
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data["metrics"] == {"given": 7.0, "m": 2.0}
    record = data["claims"][0]
    assert record["values"] == [1.0, 3.0] and record["verdict"] == "holds"
    assert record["kind"] == "identity" and record["rule"] == "all"


@pytest.fixture
def kernels_import_mmnb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


def test_a_run_whose_claims_fail_keeps_its_numbers(tmp_path: Path, kernels_import_mmnb) -> None:
    from mmnb.sweep import sweep

    grid = {"x": [1.0, 3.0], "theory_checks": [True, False]}
    summary = sweep(NOTEBOOK, grid, tmp_path / "runs", jobs=2, progress=False)
    table = summary.table.set_index(["x", "theory_checks"])
    assert summary.failed == {}
    assert sorted(summary.claims_failed) == [  # canonical names: sorted, 1.0 as 1
        "theory_checks=0__x=3",
        "theory_checks=1__x=3",
    ]
    for stops in (True, False):
        assert table.loc[(1.0, stops), "status"] == "ok"
        row = table.loc[(3.0, stops)]
        assert row["status"] == "claims_failed" and row["y"] == 3.0
        assert row["claim:x_small"] == "fails" and row["claim:x_shifted"] == "holds"
        assert "x_small" in row["error"]
    folder = tmp_path / "runs" / "theory_checks=1__x=3"
    data = json.loads((folder / "metrics.json").read_text())
    assert [c["verdict"] for c in data["claims"]] == ["fails", "holds", "holds", "recorded"]
    assert json.loads((folder / "run.json").read_text())["status"] == "claims_failed"
    # finished runs are not run again on resume
    again = sweep(NOTEBOOK, grid, tmp_path / "runs", jobs=1, progress=False)
    assert again.ran == [] and len(again.skipped) == 4
    assert pd.read_csv(tmp_path / "runs" / "results.csv")["status"].tolist().count("ok") == 2


def test_run_command_reports_failing_claims(
    tmp_path: Path, kernels_import_mmnb, capsys: pytest.CaptureFixture
) -> None:
    from mmnb.__main__ import main

    out = tmp_path / "run"
    assert main(["run", str(NOTEBOOK), "-p", "x", "2.0", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "claims did not hold: x_small" in err and "numbers recorded" in err
    assert json.loads((out / "run.json").read_text())["status"] == "claims_failed"
    assert json.loads((out / "metrics.json").read_text())["metrics"]["y"] == 2.0
    assert "ClaimsFailed" in (out / NOTEBOOK.name).read_text()  # stopped after saving
