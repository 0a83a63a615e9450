"""The CLIP objective: two encoders, a learned temperature, the symmetric InfoNCE loss.

The model two chapters train on their own worlds (00 and 06), and the benchmarks time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from mmnb.losses import LearnedTemperature, symmetric_info_nce
from mmnb.nets import MLP, Replicas, encoder_pair, replica_ids

__all__ = ["ClipObjective", "clip_objective"]


@dataclass
class ClipObjective:
    """Encoders f (for x) and g (for y), their temperature and the loss: one optimizer step
    is `objective(batch)[0].sum()`, batch `[R, B]` indices of the training pairs."""

    f: MLP
    g: MLP
    temperature: LearnedTemperature
    objective: Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]]

    def modules(self) -> list[torch.nn.Module]:
        """What an optimizer trains."""
        return [self.f, self.g, self.temperature]


def clip_objective(
    x: Tensor,
    y: Tensor,
    hidden: Sequence[int],
    out_dim: int,
    replicas: Replicas,
    seed: int,
    tau_init: float | Sequence[float] = 1.0,
    learn: bool | Sequence[bool] = True,
    out_widths: Sequence[int] | None = None,
) -> ClipObjective:
    """Symmetric InfoNCE on cosine similarity between f(x[batch]) and g(y[batch]); the
    encoders come from `mmnb.encoder_pair` (replica r from the streams of (seed, r)), the
    temperature starts at `tau_init` and is learned where `learn` (one value or one per
    replica); replica j keeps `out_widths[j]` outputs (all by default)."""
    ids = replica_ids(replicas)
    f, g = encoder_pair(x.shape[1], y.shape[1], hidden, out_dim, ids, seed, device=x.device,
                        out_widths=out_widths)  # fmt: skip
    tau = LearnedTemperature(len(ids), init=tau_init, learn=learn).to(x.device)

    def objective(batch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        t = tau()
        return symmetric_info_nce(f(x[batch]), g(y[batch]), t), {"tau": t}

    return ClipObjective(f, g, tau, objective)
