"""Timing primitives shared by the benchmarks: wall time per call and the matmul peak."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall time measures what was computed."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_call(
    calls: Sequence[Callable[[], object]], repeats: int, device: torch.device, warmup: int = 3
) -> float:
    """Wall time of one round of `calls` (each called once), averaged over `repeats` rounds."""
    for _ in range(warmup):
        for call in calls:
            call()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        for call in calls:
            call()
    synchronize(device)
    return (time.perf_counter() - start) / repeats


def matmul_peak_gflops(
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    sizes: Sequence[int] = (1024, 2048, 4096),
) -> float:
    """The best GFLOP/s of square matrix products of these sizes: this machine's own peak."""
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        repeats = max(2, int(4e10 // n**3))
        seconds = seconds_per_call([lambda a=a, b=b: a @ b], repeats, device, warmup=2)
        best = max(best, 2 * n**3 / seconds / 1e9)
    return best


def in_fresh_process(code: str) -> object:
    """Run `code` in a new interpreter (from the repository's root, with `benchmarks`
    importable) and return the JSON it prints on its last line: what a process measures
    from its first step, or how its measurement varies from one process to the next."""
    root = Path(__file__).resolve().parents[1]
    path = [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])
