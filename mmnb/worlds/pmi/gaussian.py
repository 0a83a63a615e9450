"""The Gaussian world: x ~ N(0, I), y = ρx + √(1 − ρ²)ε, whose PMI is a quadratic.

MLP encoders with an unnormalized inner product are trained on fresh pairs every step
(symmetric InfoNCE, τ = 1) and compared with the exact PMI (`mmnb.gaussian`) on held-out
x's and y's drawn independently from p(x) and p(y). |ρ| stays within `RHO_LIMIT`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from mmnb.config import check_choice, check_range
from mmnb.gaussian import gaussian_mutual_information, gaussian_pmi
from mmnb.losses import symmetric_info_nce_logits
from mmnb.nets import MLP, Replicas, encoder_pair, replica_ids
from mmnb.probes import pmi_fit
from mmnb.runtime import Stream, stream
from mmnb.train import History, train
from mmnb.worlds.pmi.config import RHO_LIMIT, PMIConfig

__all__ = ["GaussianFit", "GaussianWorld", "fit_gaussian", "sample_gaussian_pairs"]


def _check_rho(rho: float) -> float:
    return check_range("rho", rho, -RHO_LIMIT, RHO_LIMIT)


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


class GaussianWorld:
    """The Gaussian pair of `cfg` (`rho`, `gauss_x_dim`) on `device`.

    Training pairs come from the streams (seed, "data/gaussian", replica); the held-out
    x's and y's of the PMI fit from "data/gaussian_eval", those that estimate the
    learned constant from "data/gaussian_constant".
    """

    PURPOSES: ClassVar[tuple[str, ...]] = (
        "data/gaussian",
        "data/gaussian_eval",
        "data/gaussian_constant",
    )

    def __init__(self, cfg: PMIConfig, seed: int, device: torch.device | str = "cpu") -> None:
        self.cfg, self.seed, self.device = cfg, seed, torch.device(device)
        self.rho, self.dim = _check_rho(cfg.rho), cfg.gauss_x_dim

    def streams(self, replicas: Replicas, purpose: str = "data/gaussian") -> list[Stream]:
        """One stream (seed, purpose, r) per replica r, each continued by `pairs`."""
        check_choice("purpose", purpose, self.PURPOSES)
        return [stream(self.seed, purpose, r, self.device) for r in replica_ids(replicas)]

    def pairs(self, n: int, streams: Sequence[Stream]) -> tuple[Tensor, Tensor]:
        """The next `n` pairs (x, y) of each stream, `[R, n, dim]` each."""
        return sample_gaussian_pairs(n, self.rho, streams, self.dim)

    def sample(self, n: int, purpose: str, replica: int | None = None) -> tuple[Tensor, Tensor]:
        """`n` pairs (x, y) from p(x, y), `[n, dim]` each, from (seed, purpose, replica)."""
        check_choice("purpose", purpose, self.PURPOSES)
        gen = stream(self.seed, purpose, replica, self.device)
        return sample_gaussian_pairs(n, self.rho, gen, self.dim)

    def sample_independent(self, n: int, purpose: str) -> tuple[Tensor, Tensor]:
        """`n` x's from p(x) and `n` y's from p(y), drawn independently: `[n, dim]` each,
        one draw of `[2, n, dim]` normals from the stream (seed, purpose)."""
        check_choice("purpose", purpose, self.PURPOSES)
        xs, ys = stream(self.seed, purpose, device=self.device).randn(2, n, self.dim)
        return xs, ys

    def pmi(self, x: Tensor, y: Tensor) -> Tensor:
        """The exact PMI of the pairs (x, y), broadcast along the last axis."""
        return gaussian_pmi(x, y, self.rho)

    def mutual_information(self) -> float:
        """I(X; Y) = −(dim / 2) log(1 − ρ²) nats."""
        return gaussian_mutual_information(self.rho, self.dim)


@dataclass
class GaussianFit:
    """MLP encoders f, g of the Gaussian world (unnormalized inner product) and history."""

    f: MLP
    g: MLP
    history: History

    def logits(self, x: Tensor, y: Tensor) -> Tensor:
        """All-pairs ⟨f(x_i), g(y_j)⟩, `[R, len(x), len(y)]`."""
        with torch.no_grad():
            return self.f(x) @ self.g(y).transpose(-1, -2)


def fit_gaussian(cfg: PMIConfig, world: GaussianWorld, replicas: Replicas) -> GaussianFit:
    """Train MLP encoders on fresh Gaussian pairs every step (symmetric InfoNCE, τ = 1).

    The pairs are the world's (its ρ and dimension); reads `cfg.gauss_hidden`,
    `gauss_dim`, `gauss_batch`, `gauss_steps`, `gauss_lr`, `gauss_eval_points`,
    `eval_every`. Replica r draws its pairs from the stream (seed, "data/gaussian", r).
    The history records the loss and the PMI fit (`corr`, `rmse`, `delta`) on
    `gauss_eval_points` held-out x's and y's drawn independently from p(x) and p(y)
    (all pairs: a Monte-Carlo version of the weighted measure).
    """
    dim, ids, seed = world.dim, replica_ids(replicas), world.seed
    f, g = encoder_pair(dim, dim, [cfg.gauss_hidden], cfg.gauss_dim, ids, seed, device=world.device)
    xs, ys = world.sample_independent(cfg.gauss_eval_points, "data/gaussian_eval")
    target = world.pmi(xs[:, None], ys[None, :])

    streams = world.streams(ids, "data/gaussian")

    def objective(_: Tensor | None) -> Tensor:
        x, y = world.pairs(cfg.gauss_batch, streams)
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
