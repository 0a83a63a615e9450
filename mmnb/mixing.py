"""Invertible mixing functions: the nonlinear generative mechanisms of synthetic worlds.

A mixing function is an MLP without biases whose square weight matrices have entries
uniform in [−1, 1] and unit-norm columns, with LeakyReLU(0.2) between the layers, as in
the reference implementation of Daunhawer et al. (2023), itself taken from the cl-ica
code of Zimmermann et al. (2021). A weight matrix is kept only when its condition number
is below a low quantile of random draws (rejection sampling), so each layer, and the
whole function, is comfortably invertible. Every draw comes from a named stream.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor, nn

from mmnb.config import check_range
from mmnb.runtime import stream

__all__ = ["MIXING_SLOPE", "condition_threshold", "invertible_mlp", "mix", "unit_columns", "unmix"]

MIXING_SLOPE = 0.2  # LeakyReLU slope between the mixing layers


def unit_columns(n: int, count: int, generator: torch.Generator) -> Tensor:
    """`count` matrices `[n, n]` with entries uniform in [−1, 1] and unit-norm columns."""
    a = torch.rand(count, n, n, generator=generator, dtype=torch.float64) * 2 - 1
    return a / a.norm(dim=-2, keepdim=True)


@functools.lru_cache(maxsize=16)
def condition_threshold(n: int, draws: int = 25_000, ratio: float = 0.001) -> float:
    """The `ratio`-quantile of the condition numbers of `draws` random matrices `[n, n]`.

    The draws come from the fixed stream (0, "mixing/threshold/n{n}"), so the threshold
    is a property of (n, draws, ratio) alone.
    """
    check_range("n", n, 1, 4096, integer=True)
    check_range("cond_draws", draws, 10, 10**7, integer=True)
    check_range("cond_ratio", ratio, 1.0 / draws, 1.0)
    gen = stream(0, f"mixing/threshold/n{n}").torch
    cond = torch.linalg.cond(unit_columns(n, draws, gen)).sort().values
    return float(cond[int(draws * ratio)])


def invertible_mlp(
    n: int, n_layers: int, generator: torch.Generator, draws: int = 25_000, ratio: float = 0.001
) -> Tensor:
    """Weights `[L, n, n]` (float32) of an invertible mixing MLP, drawn with `generator`.

    Candidates are drawn in chunks and kept when their condition number is at most
    `condition_threshold(n, draws, ratio)`.
    """
    check_range("mixing_layers", n_layers, 1, 64, integer=True)
    threshold = condition_threshold(n, draws, ratio)
    chunk = max(64, min(int(2 / ratio), 4096))
    layers: list[Tensor] = []
    while len(layers) < n_layers:
        candidates = unit_columns(n, chunk, generator)
        good = candidates[torch.linalg.cond(candidates) <= threshold]
        layers.extend(good[: n_layers - len(layers)])
    return torch.stack(layers).float()


def mix(z: Tensor, weights: Tensor) -> Tensor:
    """x = W_L σ(… σ(W_1 z)) with σ = LeakyReLU(0.2); `weights` is `[L, n, n]` or `[R, L, n, n]`."""
    x = z
    for i in range(weights.shape[-3]):
        x = x @ weights[..., i, :, :].transpose(-1, -2)
        if i < weights.shape[-3] - 1:
            x = nn.functional.leaky_relu(x, MIXING_SLOPE)
    return x


def unmix(x: Tensor, weights: Tensor) -> Tensor:
    """The inverse of `mix`: undo each layer, last first."""
    z = x
    for i in reversed(range(weights.shape[-3])):
        if i < weights.shape[-3] - 1:
            z = torch.where(z >= 0, z, z / MIXING_SLOPE)
        z = torch.linalg.solve(weights[..., i, :, :], z.transpose(-1, -2)).transpose(-1, -2)
    return z
