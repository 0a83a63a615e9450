"""Chapter 04's "paper" training step, in FLOP/s against this machine's matmul peak.

Two encoders 15 → 150 → 750 → 750 → 750 → 750 → 150 → 5 on a fresh batch of 6144 pairs
(noise drawn on the CPU from its stream, moved to the device, then through the frozen
mixing MLPs), the negative squared distance as similarity, per-replica gradient clipping
and Adam, under either objective of the chapter: `"clip"` (the other modality of the same
batch as negatives: one batch through both encoders) or `"reference"` (the reference
code's loss: a fresh batch of the same modality as negatives, two batches through both
encoders). Only matrix-multiply FLOPs are counted as useful work.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

import torch

from benchmarks.timing import in_fresh_process, synchronize
from mmnb.train import clip_grad_norm_per_replica_, make_optimizer
from mmnb.worlds import identifiability

MATMULS = {"aten::bmm", "aten::mm", "aten::addmm", "aten::baddbmm", "aten::matmul"}
OPTIMIZER = "gradient clipping and Adam"  # the profiler's label of that part of a step


def step_flops(encoders: identifiability.Encoders, batch: int, objective: str = "clip") -> float:
    """Matmul FLOPs of one step: forward 2·B·in·out per layer, backward twice that
    (the first layer needs no input gradient), plus the B×B logits and their gradients;
    counted at the encoders' own widths, not their padded storage (`pad_hidden_units`);
    `"reference"` passes two batches and forms two B×B logit matrices."""
    dims = encoders.widths  # the nets' own widths: inert padding units do no useful work
    total = 0.0
    for i, (n_in, n_out) in enumerate(zip(dims[:-1], dims[1:], strict=False)):
        total += 2 * 2 * batch * n_in * n_out * (2 if i == 0 else 3)  # both encoders
    width = dims[-1]
    passes = 2 if objective == "reference" else 1
    return passes * (total + 3 * 2 * batch * batch * width)


def paper_step(
    device: torch.device,
    compile: bool = False,
    objective: str = "clip",
    align: int = identifiability.ALIGN,
) -> tuple[Callable[[], None], float]:
    """One training step at the "paper" profile (one replica) and its matmul FLOPs;
    `align=1` keeps the hidden widths unpadded (`identifiability.pad_hidden_units`)."""
    cfg = identifiability.IdentifiabilityConfig.from_profile("paper")
    pairs = [(identifiability.table(cfg.p_chg)[-1], 0)]
    model = identifiability.World(cfg, 0, device, pairs)
    enc = identifiability.make_encoders(cfg, pairs, 0, device, align)
    params = list(enc.parameters())
    opt = make_optimizer("adam", params, cfg.lr)
    ahead = identifiability.batches_ahead(model, cfg.batch_size)
    streams = model.streams("data/train", ahead)
    negatives = model.streams("data/negatives", ahead)

    def loss() -> torch.Tensor:
        return identifiability.contrastive_loss(
            enc, model, cfg.batch_size, streams, objective, negatives
        )

    run_loss = torch.compile(loss) if compile else loss

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        run_loss().sum().backward()
        with torch.profiler.record_function(OPTIMIZER):
            clip_grad_norm_per_replica_(params, cfg.grad_clip)
            opt.step()

    return step, step_flops(enc, cfg.batch_size, objective)


def minor_faults() -> float:
    """Minor page faults of this process so far (NaN where the OS does not count them):
    a step that maps its buffers afresh faults on every page it touches."""
    try:
        import resource
    except ImportError:  # not on Windows
        return math.nan
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)


def flop_rate(
    device: torch.device,
    compile: bool = False,
    objective: str = "clip",
    repeats: int = 5,
    align: int = identifiability.ALIGN,
    warmup: int = 3,
) -> dict[str, object]:
    """Seconds per paper step and the achieved matmul GFLOP/s under `objective`, over
    `repeats` steps after `warmup`, and the page faults of each of those steps
    (`page_faults`: their median). The first steps of a process fault while its heap grows
    to its high-water mark, one 6144 × 6144 logit matrix (36,864 pages) at a time."""
    step, flops = paper_step(device, compile, objective, align)
    for _ in range(warmup):
        step()
    synchronize(device)
    faults = []
    start = time.perf_counter()
    for _ in range(repeats):
        before = minor_faults()
        step()
        faults.append(minor_faults() - before)
    synchronize(device)
    seconds = (time.perf_counter() - start) / repeats
    return {
        "seconds_per_step": seconds,
        "gflops": flops / seconds / 1e9,
        "page_faults": statistics.median(faults),
        "page_faults_steps": faults,
        **time_shares(step, flops),
    }


def time_shares(step: Callable[[], None], flops: float) -> dict[str, float]:
    """Where one step's time goes, from the profiler's self times: `matmul_share` (the
    matrix products), `optimizer_share` (Adam and the gradient clipping's norms and
    scaling) and the rest (the elementwise work: activations, the softmaxes over the
    logits); `matmul_gflops` is the products' own speed."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    matmul = sum(e.self_cpu_time_total for e in events if e.key in MATMULS)
    optimizer = sum(e.cpu_time_total for e in events if e.key == OPTIMIZER)
    return {
        "matmul_share": matmul / total,
        "optimizer_share": optimizer / total,
        "matmul_gflops": flops / (matmul * 1e-6) / 1e9,
    }


def fault_trace(objective: str = "reference", compile: bool = False, steps: int = 30) -> list[int]:
    """The minor page faults of each of the first `steps` paper steps of a fresh process
    (its heap grows in the first steps, then stays): run in a new interpreter."""
    code = (
        "import json, sys, torch, mmnb\n"
        "from benchmarks.paper_step import minor_faults, paper_step\n"
        "dev = mmnb.setup(0, 'cpu', verbose=False)\n"
        f"step, _ = paper_step(dev, {compile!r}, {objective!r})\n"
        "faults = []\n"
        f"for _ in range({steps}):\n"
        "    before = minor_faults(); step(); faults.append(int(minor_faults() - before))\n"
        "print(json.dumps(faults))\n"
    )
    return in_fresh_process(code)
