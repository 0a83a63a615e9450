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
from collections.abc import Callable

import torch
from torch import nn

from benchmarks.timing import seconds_per_call
from mmnb.train import clip_grad_norm_per_replica_, make_optimizer
from mmnb.worlds import identifiability


def step_flops(encoders: nn.Module, batch: int, objective: str = "clip") -> float:
    """Matmul FLOPs of one step: forward 2·B·in·out per layer, backward twice that
    (the first layer needs no input gradient), plus the B×B logits and their gradients;
    `"reference"` passes two batches and forms two B×B logit matrices."""
    total = 0.0
    for net in (encoders.g1, encoders.g2):
        for i, layer in enumerate(net.layers):
            n_in, n_out = layer.weight.shape[-2:]
            total += 2 * batch * n_in * n_out * (2 if i == 0 else 3)
    width = encoders.g1.layers[-1].weight.shape[-1]
    passes = 2 if objective == "reference" else 1
    return passes * (total + 3 * 2 * batch * batch * width)


def paper_step(
    device: torch.device, compile: bool = False, objective: str = "clip"
) -> tuple[Callable[[], None], float]:
    """One training step at the "paper" profile (one replica) and its matmul FLOPs."""
    cfg = identifiability.IdentifiabilityConfig.from_profile("paper")
    pairs = [(identifiability.table(cfg.p_chg)[-1], 0)]
    model = identifiability.World(cfg, 0, device, pairs)
    enc = identifiability.make_encoders(cfg, pairs, 0, device)
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
        clip_grad_norm_per_replica_(params, cfg.grad_clip)
        opt.step()

    return step, step_flops(enc, cfg.batch_size, objective)


def page_faults_per_step(step: Callable[[], None], steps: int = 3) -> float:
    """Minor page faults of this process per call of a warmed-up `step` (NaN where the
    operating system does not count them): a step that maps its buffers afresh faults on
    every page it touches."""
    try:
        import resource
    except ImportError:  # not on Windows
        return math.nan
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        step()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps


def flop_rate(
    device: torch.device, compile: bool = False, objective: str = "clip", repeats: int = 3
) -> dict[str, float]:
    """Seconds per paper step, the achieved matmul GFLOP/s under `objective` and the
    page faults per step once warmed up."""
    step, flops = paper_step(device, compile, objective)
    seconds = seconds_per_call([step], repeats, device, warmup=2)
    faults = page_faults_per_step(step)
    return {"seconds_per_step": seconds, "gflops": flops / seconds / 1e9, "page_faults": faults}
