"""Chapter 06's world: one Gaussian latent model, observed through two invertible mixings.

Content a ∈ ℝ^k (x's side) and b ∈ ℝ^k (y's side) are standard Gaussians with
corr(a_i, b_i) = ρ, independent across i: the modalities share their content up to a
small noise, so the pointwise mutual information is finite and known in closed form
(`mmnb.gaussian`). Each modality adds private latents s ~ N(0, I_m) and is an invertible
mixing MLP (`mmnb.mixing`) of (scale · content, s). Invertible maps leave PMI unchanged, so
PMI(x, y) = PMI(a, b).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from mmnb.config import check_choice
from mmnb.mixing import invertible_mlp, mix
from mmnb.runtime import stream
from mmnb.worlds.lenses.config import LensesConfig

__all__ = ["LensesSample", "LensesWorld"]


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

    def sample(self, n: int, purpose: str, private_scale: float | None = None) -> LensesSample:
        """`n` pairs from the stream (world seed, `purpose`): the finite training set
        ("data/train"), the one-pass stream ("data/one_pass"), held-out pairs ("data/test")
        or out-of-distribution ones ("data/ood"). The content enters as `content_scale` · a,
        the private latents with standard deviation `private_scale` (by default
        `cfg.ood_private_scale` for "data/ood", else 1)."""
        check_choice("purpose", purpose, self.PURPOSES)
        if private_scale is None:
            private_scale = self.cfg.ood_private_scale if purpose == "data/ood" else 1.0
        draw = stream(self.seed, purpose, device=self.device)
        a = draw.randn(n, self.k)
        b = self.rho * a + math.sqrt(1 - self.rho**2) * draw.randn(n, self.k)
        s_x, s_y = private_scale * draw.randn(n, self.m), private_scale * draw.randn(n, self.m)
        x = mix(torch.cat([self.scale * a, s_x], 1), self.weights_x)
        y = mix(torch.cat([self.scale * b, s_y], 1), self.weights_y)
        return LensesSample(x=x, y=y, a=a, b=b, s_x=s_x, s_y=s_y)
