"""Chapter 05's encoder pair: f and g with one replica per run, and their embeddings.

Replicas differ in output width (`MLP(out_widths=...)`), temperature (learned or fixed)
and in how many independent sub-batches their minibatch is split into.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mmnb.losses import LearnedTemperature
from mmnb.nets import MLP
from mmnb.train import History
from mmnb.worlds.intrinsic_dim.world import SharedLatentSample

__all__ = ["IntrinsicFit"]


@dataclass
class IntrinsicFit:
    """Encoders f (for x), g (for y) with one replica per run.

    Replica r keeps the first `out_widths[r]` output coordinates (`MLP(out_widths=...)`
    sets the others to 0, so replicas of different dimension train in one pass);
    `fixed[r]` is its fixed temperature, NaN where τ is learned; `sub_batches[r]` the
    number of independent sub-batches its minibatch is split into (1: the whole batch).
    """

    f: MLP
    g: MLP
    temperature: LearnedTemperature
    out_widths: list[int]
    fixed: Tensor
    sub_batches: list[int]
    normalization: str
    reference: SharedLatentSample
    history: History

    def tau(self) -> Tensor:
        """The temperature of every replica, learned or fixed."""
        return torch.where(self.fixed.isnan(), self.temperature(), self.fixed)

    def _embed(self, net: MLP, x: Tensor, reference: Tensor) -> Tensor:
        h = net(x)
        if self.normalization == "l2":
            return nn.functional.normalize(h, dim=-1)
        mean_norm = net(reference).norm(dim=-1).mean(-1)  # the authors' rescaling
        return h / mean_norm[:, None, None]

    def embed_x(self, x: Tensor) -> Tensor:
        """f(x) for every replica, `[R, n, max width]` (masked coordinates are 0)."""
        return self._embed(self.f, x, self.reference.x)

    def embed_y(self, y: Tensor) -> Tensor:
        """g(y) for every replica, like `embed_x`."""
        return self._embed(self.g, y, self.reference.y)
