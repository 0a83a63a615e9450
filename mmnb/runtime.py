"""Device choice, seeding, thread count and the one-line setup banner."""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["available_devices", "resolve_device", "setup", "state"]


@dataclass
class RuntimeState:
    """What `setup` chose; read by `save_metrics` and the training loop."""

    device: torch.device = torch.device("cpu")
    seed: int = 0
    threads: int = 1
    started: float = time.perf_counter()


state = RuntimeState()


def available_devices() -> list[str]:
    """The device names this machine offers, best first."""
    names = []
    if torch.cuda.is_available():
        names.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        names.append("mps")
    names.append("cpu")
    return names


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn "auto", "cuda", "cuda:1", "mps" or "cpu" into an available `torch.device`."""
    available = available_devices()
    if str(device) == "auto":
        return torch.device(available[0])
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device={device!r} is not a device name; use 'auto' or one of {available}"
        ) from err
    if dev.type not in available:
        raise ValueError(
            f"device={device!r} is not available on this machine; use 'auto' or one of {available}"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) present"
        )
    return dev


def _cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def setup(
    seed: int = 0,
    device: str | torch.device = "auto",
    threads: int | None = None,
    verbose: bool = True,
) -> torch.device:
    """Seed everything, choose the device and the CPU thread count, print one line.

    `threads=None` uses every core this process may run on (set it to 1 for
    tiny models, which run faster on one thread). Returns the chosen device.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    dev = resolve_device(device)
    cores = _cpu_cores()
    n_threads = cores if threads is None else int(threads)
    if not 1 <= n_threads <= max(cores, 1) * 4:
        raise ValueError(f"threads={threads!r} must be between 1 and {cores * 4}")
    torch.set_num_threads(n_threads)
    seed_everything(seed)
    state.device, state.seed, state.threads = dev, seed, n_threads
    state.started = time.perf_counter()
    from mmnb.plots import use_style

    use_style()
    if verbose:
        from mmnb import __version__

        where = dev.type if dev.type != "cuda" else f"cuda ({torch.cuda.get_device_name(dev)})"
        print(
            f"mmnb {__version__} | torch {torch.__version__} | device {where}"
            f" | {n_threads} CPU thread{'s' if n_threads > 1 else ''} | seed {seed}"
        )
    return dev
