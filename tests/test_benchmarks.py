"""The benchmarks' own measures, checked where they can be (their numbers are not)."""

import math
import mmap
import os
import sys

import pytest

from benchmarks.paper_step import minor_faults


@pytest.mark.skipif(sys.platform == "win32", reason="no minor-fault counter")
def test_page_faults_count_fresh_pages_and_not_reused_ones():
    size = 64 * mmap.PAGESIZE

    def fresh() -> None:  # a new anonymous mapping, every page touched
        with mmap.mmap(-1, size) as m:
            m[:: mmap.PAGESIZE] = b"x" * 64

    reused = bytearray(size)

    def touch() -> None:
        reused[:: mmap.PAGESIZE] = b"y" * 64

    def faults(step) -> float:
        before = minor_faults()
        step()
        return minor_faults() - before

    touch()
    assert faults(fresh) >= 64
    assert faults(touch) < 8
    assert not math.isnan(minor_faults())


def test_the_replica_line_splits_a_linear_step_and_bounds_the_speed_up():
    from benchmarks.replicas import overhead_and_per_seed

    overhead, per_seed = 1e-3, 2.5e-4  # a step of o + R·c seconds, measured at R = 1, 4, 16
    batched = {r: overhead + r * per_seed for r in (1, 4, 16)}
    o, c = overhead_and_per_seed(batched)
    assert math.isclose(o, overhead) and math.isclose(c, per_seed)
    looped = batched[1]  # one seed's step
    bound = looped / c
    assert all(r * looped / batched[r] < bound for r in batched)
    with pytest.raises(ValueError, match="two values of R"):
        overhead_and_per_seed({16: 1.0})


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--replica-runs", "0"], "--replica-runs 0"),
        (["--replicas", "16"], "--replicas [16]"),
        (["--fresh-processes", "-1"], "--fresh-processes -1"),
    ],
)
def test_replica_settings_that_cannot_run_stop_at_once_naming_the_knob(
    tmp_path, monkeypatch, capsys, args, named
):
    from benchmarks.__main__ import main

    out = tmp_path / "results.json"
    argv = ["benchmarks", "--parts", "replicas", "--out", str(out), *args]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 2 and named in capsys.readouterr().err
    assert not out.exists()


def test_a_fresh_process_returns_what_it_prints_last_and_names_unknown_chapters():
    from benchmarks.replicas import replica_times_in_fresh_processes
    from benchmarks.timing import in_fresh_process

    code = "import json, os\nprint('noise')\nprint(json.dumps(os.getpid()))"
    assert in_fresh_process(code) != os.getpid()
    with pytest.raises(ValueError, match="chapter='07_nothing'"):
        replica_times_in_fresh_processes("07_nothing", 16, 1)
