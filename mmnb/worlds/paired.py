"""Chapter 00's world: two modalities generated from one shared latent.

z ~ N(0, I_k) is shared; each modality has private latents s ~ N(0, I_p) and is a
fixed random nonlinear mixture x = tanh(A z + B s) plus observation noise.
Only z links the two modalities, so it is all a contrastive model can align.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mmnb.params import check_range

__all__ = ["PairedSample", "PairedWorld"]


@dataclass
class PairedSample:
    """`n` paired observations and the latents behind them."""

    x: Tensor
    y: Tensor
    z: Tensor


class PairedWorld:
    """A fixed pair of random mixing maps; `sample(n)` draws pairs on `device`."""

    def __init__(
        self,
        shared_dim: int = 4,
        private_dim: int = 4,
        x_dim: int = 16,
        y_dim: int = 16,
        noise: float = 0.1,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        for name, value in [("shared_dim", shared_dim), ("private_dim", private_dim),
                            ("x_dim", x_dim), ("y_dim", y_dim)]:
            check_range(name, value, 1, None, integer=True)
        check_range("noise", noise, 0.0, None)
        gen = torch.Generator().manual_seed(seed)
        k, p = shared_dim, private_dim
        self.mix_x = torch.randn(k + p, x_dim, generator=gen) / (k + p) ** 0.5
        self.mix_y = torch.randn(k + p, y_dim, generator=gen) / (k + p) ** 0.5
        self.mix_x, self.mix_y = self.mix_x.to(device), self.mix_y.to(device)
        self.shared_dim, self.private_dim, self.noise = k, p, noise
        self.device = torch.device(device)

    def sample(self, n: int, seed: int = 0) -> PairedSample:
        """Draw `n` pairs (x, y) with their shared latent z."""
        gen = torch.Generator(device=self.device).manual_seed(seed)

        def normal(*shape: int) -> Tensor:
            return torch.randn(*shape, generator=gen, device=self.device)

        z = normal(n, self.shared_dim)
        x = torch.tanh(torch.cat([z, normal(n, self.private_dim)], 1) @ self.mix_x)
        y = torch.tanh(torch.cat([z, normal(n, self.private_dim)], 1) @ self.mix_y)
        x = x + self.noise * normal(*x.shape)
        y = y + self.noise * normal(*y.shape)
        return PairedSample(x=x, y=y, z=z)
