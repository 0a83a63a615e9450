"""Does training slow down as the learned temperature falls? (float32 denormals)

A softmax over logits s/τ with a small τ has a tail of probabilities below float32's
smallest normal number (1.2e-38); on x86 CPUs arithmetic on such denormals is many times
slower. `mmnb.setup` flushes them to zero. This benchmark trains chapter 05's own
objective (`benchmarks.replicas.ch05_step`, the book profile, three replicas) for
`epochs` × the chapter's steps per epoch, the temperature falling from 1 to about 0.006,
once with denormals flushed and once without, and reports the steps per second over the
first and the last tenth of the steps (timed in alternating slices: `steps_per_second`).
"""

from __future__ import annotations

import time

import torch

import mmnb
from benchmarks.replicas import ch05_step
from mmnb.worlds import intrinsic_dim


def steps_per_second(
    flush: bool, epochs: int = 150, replicas: int = 3, rounds: int = 10
) -> dict[str, float]:
    """Steps/s over the first and the last tenth of a chapter-05 run of `epochs` epochs.

    Two copies of the run are built: "first" from the start, "last" trained (untimed) up
    to where the last tenth begins. Their tenths are then timed in `rounds` alternating
    slices, so that a machine that speeds up or slows down meanwhile (another process,
    the CPU's clock) weighs on both alike; timed one after the other, such a drift would
    read as a change of speed with τ.
    """
    mmnb.setup(0, "cpu", threads=1, verbose=False)  # as the chapter runs: one thread
    torch.set_flush_denormal(flush)
    cfg = intrinsic_dim.IntrinsicDimConfig()
    n_steps = epochs * max(cfg.n_train // cfg.batch_size, 1)
    tenth = max(n_steps // 10, 1)
    steps = {"first": ch05_step(replicas, 0, torch.device("cpu")),
             "last": ch05_step(replicas, 0, torch.device("cpu"))}  # fmt: skip
    for _ in range(n_steps - tenth):
        steps["last"]()
    seconds = dict.fromkeys(steps, 0.0)
    done = 0
    for k in range(rounds):
        size = (k + 1) * tenth // rounds - done  # the slices add up to one tenth
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(size):
                step()
            seconds[name] += time.perf_counter() - start
        done += size
    torch.set_flush_denormal(True)  # as mmnb.setup leaves it
    first, last = tenth / seconds["first"], tenth / seconds["last"]
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
