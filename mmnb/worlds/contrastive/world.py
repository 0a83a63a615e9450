"""Chapter 00's paired world: two modalities generated from one shared latent.

z ~ N(0, I_k) is shared; each modality has private latents s ~ N(0, I_p) and is a fixed
random nonlinear mixture x = tanh([z, s] A) plus observation noise. Only z links the two
modalities, so it is all a contrastive model can align.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from mmnb.runtime import stream
from mmnb.worlds.contrastive.config import ContrastiveConfig

__all__ = ["PairedSample", "PairedWorld"]

UNPAIRED = "data/unpaired"  # the purpose of the shuffle that breaks the pairs


@dataclass
class PairedSample:
    """`n` paired observations, the shared latent z and the private latents."""

    x: Tensor
    y: Tensor
    z: Tensor
    s_x: Tensor
    s_y: Tensor


class PairedWorld:
    """A fixed pair of random mixing maps A_x, A_y, drawn once per seed from the stream
    (seed, ``"world/mixing"``); `sample(n, purpose)` draws pairs."""

    PURPOSES: ClassVar[tuple[str, ...]] = ("data/train", "data/test")

    def __init__(
        self, cfg: ContrastiveConfig, seed: int, device: torch.device | str = "cpu"
    ) -> None:
        k, p = cfg.shared_dim, cfg.private_dim
        mixing = stream(seed, "world/mixing", device=device)
        self.mix_x = mixing.randn(k + p, cfg.x_dim) / (k + p) ** 0.5
        self.mix_y = mixing.randn(k + p, cfg.y_dim) / (k + p) ** 0.5
        self.shared_dim, self.private_dim, self.noise = k, p, cfg.noise
        self.cfg, self.seed, self.device = cfg, seed, torch.device(device)

    def sample(self, n: int, purpose: str = "data/train") -> PairedSample:
        """Draw `n` pairs (x, y) with their latents from the stream (world seed, `purpose`)."""
        if purpose not in self.PURPOSES:
            raise ValueError(f"purpose={purpose!r}; choose one of {list(self.PURPOSES)}")
        draw = stream(self.seed, purpose, device=self.device)
        z = draw.randn(n, self.shared_dim)
        s_x, s_y = draw.randn(n, self.private_dim), draw.randn(n, self.private_dim)
        x = torch.tanh(torch.cat([z, s_x], 1) @ self.mix_x)
        y = torch.tanh(torch.cat([z, s_y], 1) @ self.mix_y)
        x = x + self.noise * draw.randn(*x.shape)
        y = y + self.noise * draw.randn(*y.shape)
        return PairedSample(x=x, y=y, z=z, s_x=s_x, s_y=s_y)

    def unpaired(self, sample: PairedSample) -> PairedSample:
        """The same x and y with the partners shuffled: y (and its latents) permuted by the
        stream (world seed, ``"data/unpaired"``), so x and its partner share nothing."""
        perm = stream(self.seed, UNPAIRED, device=self.device).randperm(len(sample.y))
        return PairedSample(
            x=sample.x, y=sample.y[perm], z=sample.z, s_x=sample.s_x, s_y=sample.s_y[perm]
        )
