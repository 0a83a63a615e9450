"""Chapter 06's world: one Gaussian latent model, observed through two invertible mixings.

Content a ∈ ℝ^k (x's side) and b ∈ ℝ^k (y's side) are standard Gaussians with
corr(a_i, b_i) = ρ, independent across i: the modalities share their content up to a
small noise, so the pointwise mutual information is finite and known in closed form
(`mmnb.gaussian`). Each modality adds private latents s ~ N(0, I_m) and is an invertible
mixing MLP (`mmnb.mixing`) of (scale · content, s). Invertible maps leave PMI unchanged, so
PMI(x, y) = PMI(a, b).

Two variants of the same draw: `shared=True` sets b = a (content shared exactly, the
premise of chapters 4 and 5; x is unchanged), and `repaired` re-pairs a fraction q of the
pairs at random, which bounds the PMI below: log((1 − q) e^PMI + q) ≥ log q
(`repaired_pmi`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from mmnb.config import check_choice, check_range
from mmnb.mixing import invertible_mlp, mix
from mmnb.runtime import stream
from mmnb.worlds.lenses.config import LensesConfig

__all__ = ["LensesSample", "LensesWorld", "repaired", "repaired_pmi"]


@dataclass
class LensesSample:
    """Pairs (x, y) with their content a, b and private latents s_x, s_y."""

    x: Tensor
    y: Tensor
    a: Tensor
    b: Tensor
    s_x: Tensor
    s_y: Tensor


class LensesWorld:
    """Two invertible mixings of (scale · content, private latents), drawn once per seed
    from the stream (seed, "world/mixing")."""

    PURPOSES: ClassVar[tuple[str, ...]] = ("data/train", "data/one_pass", "data/test", "data/ood")

    def __init__(self, cfg: LensesConfig, seed: int, device: torch.device | str = "cpu") -> None:
        n = cfg.content_dim + cfg.private_dim
        mixing = stream(seed, "world/mixing")
        self.weights_x = invertible_mlp(n, cfg.mixing_layers, mixing.torch).to(device)
        self.weights_y = invertible_mlp(n, cfg.mixing_layers, mixing.torch).to(device)
        self.k, self.m, self.rho = cfg.content_dim, cfg.private_dim, cfg.content_corr
        self.scale = cfg.content_scale
        self.cfg, self.seed, self.device = cfg, seed, torch.device(device)

    def sample(
        self, n: int, purpose: str, private_scale: float | None = None, shared: bool = False
    ) -> LensesSample:
        """`n` pairs from the stream (world seed, `purpose`): the finite training set
        ("data/train"), the one-pass stream ("data/one_pass"), held-out pairs ("data/test")
        or out-of-distribution ones ("data/ood"). The content enters as `content_scale` · a,
        the private latents with standard deviation `private_scale` (by default
        `cfg.ood_private_scale` for "data/ood", else 1). With `shared`, b = a: the same x
        and private latents, with content shared exactly (ρ = 1)."""
        check_choice("purpose", purpose, self.PURPOSES)
        if private_scale is None:
            private_scale = self.cfg.ood_private_scale if purpose == "data/ood" else 1.0
        draw = stream(self.seed, purpose, device=self.device)
        a = draw.randn(n, self.k)
        b = self.rho * a + math.sqrt(1 - self.rho**2) * draw.randn(n, self.k)
        if shared:
            b = a
        s_x, s_y = private_scale * draw.randn(n, self.m), private_scale * draw.randn(n, self.m)
        x = mix(torch.cat([self.scale * a, s_x], 1), self.weights_x)
        y = mix(torch.cat([self.scale * b, s_y], 1), self.weights_y)
        return LensesSample(x=x, y=y, a=a, b=b, s_x=s_x, s_y=s_y)


def repaired(sample: LensesSample, fraction: float, seed: int) -> LensesSample:
    """`sample` with a random `fraction` of its pairs re-paired: those y (with their b and
    s_y) are permuted among themselves, from the stream (seed, "data/repair"). The pairs
    then come from (1 − q) p(x, y) + q p(x) p(y), whose PMI is `repaired_pmi`."""
    check_range("fraction", fraction, 0.0, 1.0)
    gen = stream(seed, "data/repair").torch
    n = len(sample.x)
    moved = torch.nonzero(torch.rand(n, generator=gen) < fraction).squeeze(1)
    index = torch.arange(n)
    index[moved] = moved[torch.randperm(len(moved), generator=gen)]
    index = index.to(sample.y.device)
    return LensesSample(x=sample.x, y=sample.y[index], a=sample.a, b=sample.b[index],
                        s_x=sample.s_x, s_y=sample.s_y[index])  # fmt: skip


def repaired_pmi(pmi: Tensor, fraction: float) -> Tensor:
    """The PMI after re-pairing a `fraction` q of the pairs at random:
    log((1 − q) e^pmi + q), bounded below by log q (unbounded above, like `pmi`)."""
    q = torch.as_tensor(fraction, dtype=pmi.dtype)
    return torch.logaddexp(pmi + torch.log1p(-q), q.log())
