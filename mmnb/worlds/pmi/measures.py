"""Read-outs of a logit table on the ring: its expected loss, its row offsets, a rank ceiling."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mmnb.config import check_choice, check_range
from mmnb.worlds.pmi.infonce import batch_loss
from mmnb.worlds.pmi.world import PairSampler

__all__ = ["expected_loss", "rank_ceiling", "shift_spread"]


def expected_loss(
    table: Tensor,
    joint: Tensor,
    batch_size: int,
    n_batches: int = 200,
    seed: int = 0,
    purpose: str = "data/oracle",
) -> tuple[Tensor, Tensor]:
    """Monte-Carlo expectation of the symmetric InfoNCE loss of a logit table.

    `table` is `[n, n]` or `[R, n, n]`. The batches come from the stream (seed, purpose):
    every call with the same seed and purpose uses the same batches (common random
    numbers), so differences between tables are precise. Returns the mean and its
    standard error, each of shape `[R]` (or scalars).
    """
    check_range("batch_size", batch_size, 2, None, integer=True)
    check_range("n_batches", n_batches, 2, 10**6, integer=True)
    squeeze = table.ndim == 2
    table = (table[None] if squeeze else table).double().cpu()
    chunk = max(1, 2**20 // (batch_size * table.shape[-1]))
    sampler = PairSampler(joint, batch_size, [0], seed, purpose)
    losses = []
    for start in range(0, n_batches, chunk):
        m = min(chunk, n_batches - start)
        x, y = (a[0] for a in sampler.draw(m))
        losses.append(torch.stack([batch_loss(t.expand(m, -1, -1), x, y) for t in table]))
    all_losses = torch.cat(losses, 1)
    mean, se = all_losses.mean(1), all_losses.std(1) / math.sqrt(all_losses.shape[1])
    return (mean[0], se[0]) if squeeze else (mean, se)


def shift_spread(table: Tensor, target: Tensor, joint: Tensor, axis: str = "row") -> Tensor:
    """Spread of the row (or column) offsets of `table − target`, one value per replica.

    With D = table − target, the offset of row x is a(x) = Σ_y p(y) D[x, y]; the result is
    the p(x)-weighted standard deviation of a over x (for `axis="column"`, of
    b(y) = Σ_x p(x) D[x, y] over y). It is 0 when D is one constant.
    """
    check_choice("axis", axis, ("row", "column"))
    diff = torch.as_tensor(table).double() - torch.as_tensor(target).double().to(table.device)
    joint = joint.double().to(diff.device)
    p_x, p_y = joint.sum(1), joint.sum(0)
    if axis == "column":
        diff, p_x, p_y = diff.transpose(-1, -2), p_y, p_x
    offsets = diff @ p_y  # [..., n_x]
    mean = (offsets * p_x).sum(-1, keepdim=True)
    return ((offsets - mean).square() * p_x).sum(-1).sqrt()


def rank_ceiling(target: Tensor, rank: int) -> float:
    """Best correlation with the centred `target` reachable by any matrix of rank ≤ `rank`.

    By Eckart–Young it is √(Σ_{i≤rank} σ_i² / Σ_i σ_i²) of the singular values σ of
    the centred target (uniform weights, as for the ring).
    """
    target = torch.as_tensor(target, dtype=torch.float64)
    s2 = torch.linalg.svdvals(target - target.mean()).square()
    return float((s2[:rank].sum() / s2.sum()).sqrt())
