"""Time per training step: R replicas batched in one net versus R single-replica nets in a loop.

Run `python -m benchmarks.replicas [--replicas 8] [--device auto] [--threads N]`.
The model is chapter 00's: two MLP encoders 16 → 64 → 8, symmetric InfoNCE with a
learned temperature, Adam; minibatch sizes 32, 64 and 256 (the chapter uses 256).
"""

from __future__ import annotations

import argparse
import time

import torch

import mmnb
from mmnb.losses import LearnedTemperature, symmetric_info_nce
from mmnb.nets import MLP


def make_step(n_replicas: int, seed: int, x: torch.Tensor, y: torch.Tensor, batch: int):
    """One model (with `n_replicas` replicas) and a closure doing one optimizer step."""
    dev = x.device
    f = MLP(x.shape[1], [64], 8, n_replicas, seed, device=dev)
    g = MLP(y.shape[1], [64], 8, n_replicas, seed + 10_000, device=dev)
    tau = LearnedTemperature(n_replicas).to(dev)
    opt = torch.optim.Adam([*f.parameters(), *g.parameters(), *tau.parameters()], lr=1e-3)
    gen = torch.Generator(device=dev).manual_seed(seed)

    def step() -> None:
        idx = torch.randint(len(x), (batch,), generator=gen, device=dev)
        loss = symmetric_info_nce(f(x[idx]), g(y[idx]), tau())
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()

    return step


def seconds_per_step(steps: list, n_steps: int, device: torch.device) -> float:
    """Wall time of one round of `steps` (each called once), averaged over `n_steps` rounds."""
    for _ in range(10):  # warm-up
        for step in steps:
            step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(n_steps):
        for step in steps:
            step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / n_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64, 256])
    args = parser.parse_args()
    dev = mmnb.setup(0, args.device, threads=args.threads)
    gen = torch.Generator(device=dev).manual_seed(0)
    x = torch.randn(4096, 16, generator=gen, device=dev)
    y = torch.randn(4096, 16, generator=gen, device=dev)
    r = args.replicas
    print(f"R = {r} replicas of chapter 00's encoders, {args.threads} thread(s), {dev}")
    print(f"{'batch':>6} {'batched ms/step':>16} {'looped ms/step':>15} {'speed-up':>9}")
    for batch in args.batch_sizes:
        batched = seconds_per_step([make_step(r, 0, x, y, batch)], args.steps, dev)
        looped = seconds_per_step([make_step(1, s, x, y, batch) for s in range(r)], args.steps, dev)
        print(f"{batch:>6} {1e3 * batched:>16.2f} {1e3 * looped:>15.2f} {looped / batched:>8.1f}x")


if __name__ == "__main__":
    main()
