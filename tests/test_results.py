"""metrics.json: round trip, atomic writing, collection."""

import json

import numpy as np
import pytest
import torch

import mmnb
import mmnb.results as results
from mmnb.results import load_results, save_metrics


def test_round_trip(tmp_path):
    mmnb.setup(seed=0, device="cpu", threads=1, verbose=False)
    table = save_metrics(
        tmp_path / "run",
        {"acc": np.float32(0.5), "n": 3, "t": torch.tensor(1.5), "bad": float("nan")},
        {"profile": "book", "lr": 1e-3, "tau": float("inf")},
    )
    data = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert data["metrics"] == {"acc": 0.5, "n": 3, "t": 1.5, "bad": None}
    assert data["params"] == {
        "profile": "book",
        "lr": 1e-3,
        "tau": None,
        "seed": 0,
        "n_seeds": 1,
        "device": "cpu",
    }
    assert set(data["versions"]) >= {"mmnb", "torch", "numpy", "python"}
    assert data["device"] and data["wall_seconds"] >= 0
    assert table.loc["acc", "value"] == 0.5
    frame = load_results(tmp_path)
    assert (
        frame.loc[0, "run"] == "run" and frame.loc[0, "acc"] == 0.5 and frame.loc[0, "lr"] == 1e-3
    )


def test_no_output_dir_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_metrics("", {"a": 1})
    assert not list(tmp_path.iterdir())


def test_non_numbers_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="metric 'name' must be a number"):
        save_metrics(tmp_path, {"name": "x"})
    with pytest.raises(ValueError, match="single number"):
        save_metrics(tmp_path, {"v": np.ones(3)})


def test_a_failed_write_leaves_the_old_file_and_no_debris(tmp_path, monkeypatch):
    save_metrics(tmp_path, {"a": 1})
    before = (tmp_path / "metrics.json").read_text()

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(results.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        save_metrics(tmp_path, {"a": 2})
    assert (tmp_path / "metrics.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_written_files_are_readable_by_others(tmp_path):
    save_metrics(tmp_path, {"a": 1})
    assert (tmp_path / "metrics.json").stat().st_mode & 0o044  # not the 0600 of mkstemp
