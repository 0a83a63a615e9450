"""Chapter 03's continuous world: x ~ N(0, I), y = ρx + √(1 − ρ²)ε, whose PMI is a quadratic.

MLP encoders with an unnormalized inner product are trained on fresh pairs every step
(symmetric InfoNCE, τ = 1) and compared with the exact PMI on held-out pairs drawn
from p(x)p(y). `RHO_LIMIT` is the one bound on |ρ| (the config's knob uses it too).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from mmnb.config import check_range
from mmnb.losses import symmetric_info_nce_logits
from mmnb.nets import MLP, Replicas, encoder_pair, replica_ids
from mmnb.probes import pmi_fit
from mmnb.runtime import Stream, stream
from mmnb.train import History, train

if TYPE_CHECKING:
    from mmnb.worlds.pmi import PMIConfig

__all__ = [
    "RHO_LIMIT",
    "GaussianFit",
    "fit_gaussian",
    "gaussian_mutual_information",
    "gaussian_pmi",
    "sample_gaussian_pairs",
]

RHO_LIMIT = 0.99  # |ρ| ≤ 0.99: beyond it the PMI's quadratic has a curvature above 50


def _check_rho(rho: float) -> float:
    return check_range("rho", rho, -RHO_LIMIT, RHO_LIMIT)


def gaussian_pmi(x: Tensor, y: Tensor, rho: float) -> Tensor:
    """PMI of x ~ N(0, I), y = ρx + √(1 − ρ²)ε, for pairs broadcast along the last axis."""
    q = 1 - _check_rho(rho) ** 2
    dim = x.shape[-1]
    cross = (x * y).sum(-1)
    xx, yy = x.square().sum(-1), y.square().sum(-1)
    return -0.5 * dim * math.log(q) - (xx + yy - 2 * rho * cross) / (2 * q) + (xx + yy) / 2


def gaussian_mutual_information(rho: float, dim: int = 2) -> float:
    """I(X; Y) = −(dim / 2) log(1 − ρ²)."""
    return -0.5 * dim * math.log(1 - _check_rho(rho) ** 2)


def sample_gaussian_pairs(
    n: int, rho: float, streams: Stream | Sequence[Stream], dim: int = 2
) -> tuple[Tensor, Tensor]:
    """`n` pairs (x, y): `[n, dim]` from one stream, `[R, n, dim]` from R streams (one each)."""
    q = math.sqrt(1 - _check_rho(rho) ** 2)
    if isinstance(streams, Stream):
        x, eps = streams.randn(n, dim), streams.randn(n, dim)
    else:
        x = torch.stack([s.randn(n, dim) for s in streams])
        eps = torch.stack([s.randn(n, dim) for s in streams])
    return x, rho * x + q * eps


@dataclass
class GaussianFit:
    """MLP encoders f, g of the continuous world (unnormalized inner product) and history."""

    f: MLP
    g: MLP
    history: History

    def logits(self, x: Tensor, y: Tensor) -> Tensor:
        """All-pairs ⟨f(x_i), g(y_j)⟩, `[R, len(x), len(y)]`."""
        with torch.no_grad():
            return self.f(x) @ self.g(y).transpose(-1, -2)


def fit_gaussian(
    cfg: PMIConfig, replicas: Replicas, seed: int = 0, device: torch.device | str = "cpu"
) -> GaussianFit:
    """Train MLP encoders on fresh Gaussian pairs every step (symmetric InfoNCE, τ = 1).

    Reads `cfg.rho`, `gauss_x_dim`, `gauss_hidden`, `gauss_dim`, `gauss_batch`,
    `gauss_steps`, `gauss_lr`, `gauss_eval_points`, `eval_every`. Replica r draws its
    pairs from the stream (seed, "data/gaussian", r). The history records the loss and
    the PMI fit (`corr`, `rmse`, `delta`) on `gauss_eval_points` held-out x's and y's
    drawn independently from p(x) and p(y) (all pairs: a Monte-Carlo version of the
    weighted measure).
    """
    dim, ids = cfg.gauss_x_dim, replica_ids(replicas)
    f, g = encoder_pair(dim, dim, [cfg.gauss_hidden], cfg.gauss_dim, ids, seed, device=device)
    xs, ys = stream(seed, "data/gaussian_eval", device=device).randn(2, cfg.gauss_eval_points, dim)
    target = gaussian_pmi(xs[:, None], ys[None, :], cfg.rho)

    streams = [stream(seed, "data/gaussian", r, device) for r in ids]

    def objective(_: Tensor | None) -> Tensor:
        x, y = sample_gaussian_pairs(cfg.gauss_batch, cfg.rho, streams, dim)
        return symmetric_info_nce_logits(f(x) @ g(y).transpose(-1, -2))

    def evaluate() -> dict[str, Tensor]:
        fit = pmi_fit(f(xs) @ g(ys).transpose(-1, -2), target)
        return {"corr": fit.corr, "rmse": fit.rmse, "delta": fit.delta}

    history = train(
        objective,
        [f, g],
        cfg.gauss_steps,
        lr=cfg.gauss_lr,
        evaluate=evaluate,
        eval_every=cfg.eval_every,
        desc="Gaussian world",
    )
    return GaussianFit(f, g, history)
