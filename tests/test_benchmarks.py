"""The benchmarks' own measures, checked where they can be (their numbers are not)."""

import math
import mmap
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
