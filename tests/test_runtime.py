"""Device choice, seeding and parameter checks."""

import numpy as np
import pytest
import torch

import mmnb
from mmnb.params import check_choice, check_range, resolve_profile
from mmnb.runtime import available_devices, resolve_device


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


PROFILES = {"book": {"n": 100, "lr": 0.1}, "paper": {"n": 10000, "lr": 0.01}}


def test_resolve_profile():
    cfg = resolve_profile("book", PROFILES, n=None, lr=0.5)
    assert (cfg.profile, cfg.n, cfg.lr) == ("book", 100, 0.5)
    with pytest.raises(ValueError, match=r"profile='fast'.*\['book', 'paper'\]"):
        resolve_profile("fast", PROFILES)
    with pytest.raises(ValueError, match="unknown parameter 'm'"):
        resolve_profile("book", PROFILES, m=3)


def test_checks_name_the_parameter_and_the_allowed_values():
    assert check_range("snr", 0.5, 0, 1) == 0.5
    with pytest.raises(ValueError, match=r"snr=2 is out of range; allowed: a number in \[0, 1\]"):
        check_range("snr", 2, 0, 1)
    with pytest.raises(ValueError, match="n_seeds=2.5 must be an integer"):
        check_range("n_seeds", 2.5, 1, None, integer=True)
    with pytest.raises(ValueError, match="kind='x'"):
        check_choice("kind", "x", ["a", "b"])
