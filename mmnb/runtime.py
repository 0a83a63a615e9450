"""Device choice, named random streams, thread count, memory reuse and the setup banner.

Every random draw in mmnb comes from `stream(seed, purpose, replica)`: an independent
generator derived with `numpy.random.SeedSequence` from the run's seed, a purpose name
("data/train", "init/encoder_x/layer0", "minibatch", ...) and, for per-replica draws,
the replica index. No two purposes share a stream, and replica r of seed s draws the
same numbers whether it trains alone or in a group. Torch draws are made on the CPU
and then moved, so the data a seed produces does not depend on the training device.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mmnb.config import check_range

__all__ = [
    "DrawAhead",
    "Stream",
    "available_devices",
    "keep_freed_memory",
    "resolve_device",
    "setup",
    "state",
    "stream",
]


@dataclass
class RuntimeState:
    """What `setup` chose; read by `save_metrics` and the training loop."""

    device: torch.device = torch.device("cpu")
    seed: int = 0
    n_seeds: int = 1
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


def _purpose_words(purpose: str) -> list[int]:
    digest = hashlib.sha256(purpose.encode()).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


class Stream:
    """One named random stream: a NumPy generator and a CPU torch generator.

    Torch draws (`randn`, `rand`, `randint`, `randperm`) are made on the CPU and moved
    to `device`, so every device sees the same numbers (up to the copy).
    """

    def __init__(
        self,
        seed: int,
        purpose: str,
        replica: int | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed={seed!r} must be a non-negative integer")
        if replica is not None and (not isinstance(replica, (int, np.integer)) or replica < 0):
            raise ValueError(f"replica={replica!r} must be a non-negative integer or None")
        key = () if replica is None else (int(replica),)
        seq = np.random.SeedSequence([int(seed), *_purpose_words(purpose)], spawn_key=key)
        self.purpose, self.replica, self.device = purpose, replica, torch.device(device)
        self.numpy = np.random.default_rng(seq)
        self.torch = torch.Generator().manual_seed(int(seq.generate_state(1, np.uint64)[0]))

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=self.torch).to(self.device)

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.torch).to(self.device)

    def randint(self, high: int, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randint(high, shape, generator=self.torch).to(self.device)

    def randperm(self, n: int) -> torch.Tensor:
        return torch.randperm(n, generator=self.torch).to(self.device)

    def device_generator(self, device: torch.device | str) -> torch.Generator:
        """A torch generator on `device`, seeded from this stream, for training randomness
        drawn inside the loop (augmentations) without host-device copies. Its numbers
        differ between device types; data never come from it."""
        seed = int(self.numpy.integers(2**62))
        return torch.Generator(device=torch.device(device)).manual_seed(seed)


class DrawAhead:
    """Per-replica random draws made `ahead` calls at a time on the CPU, moved in one copy.

    `draw(generator)` makes one call's numbers for one replica (a tensor or a tuple of
    tensors); each call of the `DrawAhead` returns them stacked over the replicas,
    `[R, …]`. Every generator advances exactly as it would call by call, so the numbers
    do not depend on `ahead`; on a GPU, one host-to-device copy serves `ahead` calls
    instead of one per training step.
    """

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        draw: Callable[[torch.Generator], torch.Tensor | tuple[torch.Tensor, ...]],
        device: torch.device | str = "cpu",
        ahead: int = 64,
    ) -> None:
        self.generators, self.draw = list(generators), draw
        self.device = torch.device(device)
        self.ahead = check_range("ahead", ahead, 1, 100_000, integer=True)
        self._buffer: tuple[torch.Tensor, ...] = ()
        self._used = 0

    def _refill(self) -> None:
        calls = [
            [self.draw(g) for _ in range(self.ahead)] for g in self.generators
        ]  # [R][ahead] of tensors or tuples
        parts = [[c if isinstance(c, tuple) else (c,) for c in per] for per in calls]
        self._buffer = tuple(
            torch.stack([torch.stack([c[i] for c in per]) for per in parts]).to(self.device)
            for i in range(len(parts[0][0]))
        )  # each [R, ahead, …]
        self._used = 0

    def __call__(self) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if not self._buffer or self._used == self.ahead:
            self._refill()
        out = tuple(b[:, self._used] for b in self._buffer)
        self._used += 1
        return out[0] if len(out) == 1 else out


def stream(
    seed: int, purpose: str, replica: int | None = None, device: torch.device | str = "cpu"
) -> Stream:
    """The random stream of (`seed`, `purpose`, `replica`); see the module docstring."""
    return Stream(seed, purpose, replica, device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _thread_cap() -> int:
    """The thread cap from `MMNB_THREADS` (no cap when unset)."""
    value = os.environ.get("MMNB_THREADS", "").strip()
    if not value:
        return 1 << 30
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"MMNB_THREADS={value!r} must be a whole number of at least 1")
    return int(value)


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters
KEPT_FREE_BYTES = 1 << 30


def keep_freed_memory() -> bool:
    """Let glibc keep freed CPU buffers for reuse instead of handing them back to the OS.

    By default glibc maps a large buffer on its own (above 128 KiB, a threshold it raises
    up to 32 MiB as buffers are freed) and unmaps it when it is freed, or trims the heap,
    so the next step pays a page fault for every 4 KiB page it touches again: a
    replica-batched step with `[16, 256, 256]` logits faulted on thousands of pages and
    spent about a third of its time that way, and chapter 04's paper step (6144 × 6144
    logits) on hundreds of thousands. Here every buffer comes from the heap, and up to
    `KEPT_FREE_BYTES` of free heap is kept rather than trimmed.
    Returns False where the C library is not glibc (macOS, Windows, musl), which keeps
    its own allocator.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 (glibc only)
    except (AttributeError, OSError):
        return False
    return bool(mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, KEPT_FREE_BYTES))


def setup(
    seed: int = 0,
    device: str | torch.device = "auto",
    threads: int | None = None,
    verbose: bool = True,
    n_seeds: int = 1,
) -> torch.device:
    """Seed everything, choose the device and the CPU thread count, keep freed memory
    for reuse (`keep_freed_memory`), flush float32 denormals to zero, print one line.

    `n_seeds` (1 to 64) is the number of replicas the chapter trains; it is recorded
    with the seed and the device for `save_metrics`. `threads=None` uses every core
    this process may run on (set it to 1 for tiny models, which run faster on one
    thread). The environment variable `MMNB_THREADS` caps the count, for runners that
    execute several chapters side by side (`make book`, the chapter tests). Returns the
    chosen device.
    """
    check_range("seed", seed, 0, 2**63 - 1, integer=True)
    check_range("n_seeds", n_seeds, 1, 64, integer=True)
    dev = resolve_device(device)
    cores = _cpu_cores()
    n_threads = cores if threads is None else int(threads)
    if not 1 <= n_threads <= max(cores, 1) * 4:
        raise ValueError(f"threads={threads!r} must be between 1 and {cores * 4}")
    n_threads = min(n_threads, _thread_cap())
    torch.set_num_threads(n_threads)
    # float32 denormals in a softmax's tail slow CPU training about 4x as a learned
    # temperature falls (chapter 05: 420 -> 115 steps/s); flushing them to zero keeps
    # the speed (benchmarks/denormals.py measures both)
    torch.set_flush_denormal(True)
    keep_freed_memory()
    seed_everything(seed)
    state.device, state.seed, state.n_seeds, state.threads = dev, seed, n_seeds, n_threads
    state.started = time.perf_counter()
    if verbose:
        from mmnb import __version__

        where = dev.type if dev.type != "cuda" else f"cuda ({torch.cuda.get_device_name(dev)})"
        print(
            f"mmnb {__version__} | torch {torch.__version__} | device {where}"
            f" | {n_threads} CPU thread{'s' if n_threads > 1 else ''} | seed {seed}"
        )
    return dev
