"""Does training slow down as the learned temperature falls? (float32 denormals)

A softmax over logits s/τ with a small τ has a tail of probabilities below float32's
smallest normal number (1.2e-38); on x86 CPUs arithmetic on such denormals is many times
slower. `mmnb.setup` flushes them to zero. This benchmark trains chapter 05's own
objective (`benchmarks.replicas.ch05_step`, the book profile, three replicas) for
`epochs` × the chapter's steps per epoch, the temperature falling from 1 to about 0.006,
once with denormals flushed and once without, and reports the steps per second over the
first and the last tenth of the steps.
"""

from __future__ import annotations

import time

import torch

import mmnb
from benchmarks.replicas import ch05_step
from mmnb.worlds import intrinsic_dim


def steps_per_second(flush: bool, epochs: int = 150, replicas: int = 3) -> dict[str, float]:
    """First- and last-tenth steps/s of a chapter-05 run of `epochs` epochs."""
    mmnb.setup(0, "cpu", threads=1, verbose=False)  # as the chapter runs: one thread
    torch.set_flush_denormal(flush)
    cfg = intrinsic_dim.IntrinsicDimConfig()
    step = ch05_step(replicas, 0, torch.device("cpu"))
    n_steps = epochs * max(cfg.n_train // cfg.batch_size, 1)
    tenth = max(n_steps // 10, 1)
    marks = []
    for i in range(n_steps):
        if i in (0, tenth, n_steps - tenth):
            marks.append(time.perf_counter())
        step()
    marks.append(time.perf_counter())
    torch.set_flush_denormal(True)  # as mmnb.setup leaves it
    first, last = tenth / (marks[1] - marks[0]), tenth / (marks[3] - marks[2])
    return {"first": round(first, 1), "last": round(last, 1), "last_over_first": last / first}


def denormal_speeds(epochs: int = 150) -> dict[str, dict[str, float]]:
    """`steps_per_second` with and without flushing (what `mmnb.setup` does, and not)."""
    return {
        "flushed": steps_per_second(True, epochs),
        "not_flushed": steps_per_second(False, epochs),
    }


if __name__ == "__main__":
    for name, speeds in denormal_speeds().items():
        print(f"{name}: {speeds}")
