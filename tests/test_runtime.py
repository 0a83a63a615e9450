"""Device choice, seeding and parameter checks."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import mmnb
from mmnb.config import check_choice, check_range
from mmnb.runtime import DrawAhead, available_devices, resolve_device, stream


def test_auto_picks_the_best_available():
    assert resolve_device("auto").type == available_devices()[0]
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_device_is_a_value_error_listing_the_available_ones():
    with pytest.raises(ValueError, match=r"device='cuda' is not available.*'cpu'"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="not a device name"):
        resolve_device("gpu-please")


def test_setup_seeds_and_prints_one_line(capsys):
    dev = mmnb.setup(seed=3, device="cpu", threads=1)
    first = (torch.rand(2), np.random.rand(2))
    mmnb.setup(seed=3, device="cpu", threads=1)
    second = (torch.rand(2), np.random.rand(2))
    assert dev == torch.device("cpu")
    torch.testing.assert_close(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"mmnb {mmnb.__version__} | torch ")
    with pytest.raises(ValueError, match="seed"):
        mmnb.setup(seed=-1)


def test_checks_name_the_parameter_and_the_allowed_values():
    assert check_range("snr", 0.5, 0, 1) == 0.5
    with pytest.raises(ValueError, match=r"snr=2 is out of range; allowed: a finite number in"):
        check_range("snr", 2, 0, 1)
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match=r"snr=.* is not finite; allowed: .*\[0, 1\]"):
            check_range("snr", bad, 0, 1)
    with pytest.raises(ValueError, match="kind=nan"):
        check_choice("kind", float("nan"), ["a", "b"])
    with pytest.raises(ValueError, match="n_seeds=2.5 must be an integer"):
        check_range("n_seeds", 2.5, 1, None, integer=True)
    with pytest.raises(ValueError, match="kind='x'"):
        check_choice("kind", "x", ["a", "b"])


def test_streams_are_independent_by_purpose_and_replica():
    a = stream(0, "init/encoder_x", replica=1).randn(1024)
    b = stream(0, "data/train").randn(1024)
    c = stream(1, "init/encoder_x", replica=0).randn(1024)
    for u, v in [(a, b), (a, c), (b, c)]:
        assert abs(float(torch.corrcoef(torch.stack([u, v]))[0, 1])) < 0.12
    torch.testing.assert_close(stream(0, "data/train").randn(1024), b)
    assert stream(0, "x", 0).numpy.integers(1 << 30) != stream(0, "x", 1).numpy.integers(1 << 30)
    with pytest.raises(ValueError, match="seed"):
        stream(-1, "x")


def test_torch_draws_do_not_depend_on_the_device():
    cpu = stream(3, "data/train").randn(4, 3)
    for dev in available_devices():
        moved = stream(3, "data/train", device=dev).randn(4, 3)
        assert moved.device.type == dev
        torch.testing.assert_close(moved.cpu(), cpu)


def test_setup_records_the_number_of_seeds():
    mmnb.setup(seed=1, device="cpu", threads=1, verbose=False, n_seeds=3)
    assert (mmnb.runtime.state.seed, mmnb.runtime.state.n_seeds) == (1, 3)
    with pytest.raises(ValueError, match="n_seeds=0"):
        mmnb.setup(n_seeds=0, verbose=False)


def test_mmnb_threads_caps_the_thread_count(monkeypatch):
    monkeypatch.setenv("MMNB_THREADS", "1")
    mmnb.setup(seed=0, device="cpu", threads=2, verbose=False)
    assert torch.get_num_threads() == 1
    monkeypatch.setenv("MMNB_THREADS", "two")
    with pytest.raises(ValueError, match="MMNB_THREADS='two'"):
        mmnb.setup(seed=0, device="cpu", verbose=False)
    monkeypatch.delenv("MMNB_THREADS")
    mmnb.setup(seed=0, device="cpu", threads=1, verbose=False)


_CHURN = """
import resource, sys, torch
from mmnb.runtime import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
def churn():  # four 4 MiB buffers made, written and freed, as a batched step does
    bufs = [torch.empty(1 << 20).fill_(1.0) for _ in range(4)]
    del bufs
for _ in range(5):  # warm up: a fresh process's heap grows over its first 4 rounds
    churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    churn()
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _churn_faults(mode: str, **env: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _CHURN, mode],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator only")
def test_keep_freed_memory_stops_page_faults_on_reused_buffers():
    """Freed buffers stay in the process: after the heap has grown (five rounds), 20 rounds
    of four 4 MiB buffers fault on fewer pages than one round touches (4 × 1,024). The
    control maps them as glibc does by default (its 128 KiB threshold, here held fixed so
    that it does not adapt on its own): every round faults on every page again."""
    kept, faults = _churn_faults("keep")
    if kept != "True":
        pytest.skip("the C library is not glibc")
    _, control = _churn_faults("default", MALLOC_MMAP_THRESHOLD_=str(128 * 1024))
    assert faults < 4 * 1024
    assert control > 10 * 4 * 1024


def test_draw_ahead_gives_the_numbers_drawn_call_by_call():
    """Drawn `ahead` calls at a time, each replica's numbers are those of its generator
    drawn call by call, across refills; a tuple draw comes back as a tuple."""

    def gens() -> list[torch.Generator]:
        return [stream(0, "test/ahead", r).torch for r in range(3)]

    def draw(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(4, 2, generator=g), torch.randint(10, (4,), generator=g)

    expected = gens()
    drawn = DrawAhead(gens(), draw, ahead=3)
    for _ in range(7):
        normal, ints = drawn()
        for r, g in enumerate(expected):
            a, b = draw(g)
            assert torch.equal(normal[r], a) and torch.equal(ints[r], b)
    single = DrawAhead(gens(), lambda g: torch.rand(5, generator=g), ahead=2)
    assert single().shape == (3, 5)
    with pytest.raises(ValueError, match="ahead"):
        DrawAhead(gens(), draw, ahead=0)


def test_setup_flushes_float32_denormals_to_zero():
    mmnb.setup(0, verbose=False)
    tiny = torch.tensor([1e-30], dtype=torch.float32)
    # 1e-40 is below float32's smallest normal (1.2e-38): a denormal, flushed to 0
    assert (tiny * 1e-10).item() == 0.0
