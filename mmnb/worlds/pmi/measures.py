"""Read-outs of a logit table on the ring: its expected loss, its row offsets, a rank ceiling."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from mmnb.config import check_choice, check_range
from mmnb.probes import pmi_fit
from mmnb.worlds.pmi.infonce import batch_loss
from mmnb.worlds.pmi.world import PairSampler

__all__ = ["TableDifference", "expected_loss", "rank_ceiling", "shift_spread", "table_difference"]


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


class TableDifference(NamedTuple):
    """RMSEs between two groups of tables, per replica, and their ratio (see `table_difference`)."""

    across: np.ndarray  # a[r] against b[r + 1]
    within_a: np.ndarray  # a[r] against a[r + 1]
    within_b: np.ndarray  # b[r] against b[r + 1]
    over_noise: np.ndarray  # across / √((within_a² + within_b²) / 2)


def table_difference(a: Tensor, b: Tensor, weights: Tensor) -> TableDifference:
    """How far two groups of tables `[R, n, n]` (R ≥ 2) differ, against run-to-run noise.

    Replica r of `a` is compared with replica r + 1 (mod R) of `b`, and each group with
    itself shifted by one, so that every pair has its own start and batches. The RMSE is
    `pmi_fit`'s (weighted by `weights`, the weighted mean removed). If a[r] = T + ε_a and
    b[r] = T + ε_b with independent noises around one target T, the mean square across
    is the mean of the two within-group mean squares, and `over_noise` is about 1; a
    difference between the targets of a and b raises it.
    """
    if a.shape != b.shape or a.ndim != 3 or a.shape[0] < 2:
        raise ValueError(
            f"need two groups [R, n, n] with R >= 2: {tuple(a.shape)}, {tuple(b.shape)}"
        )
    shift = [(r + 1) % a.shape[0] for r in range(a.shape[0])]

    def rmse(x: Tensor, y: Tensor) -> np.ndarray:
        return pmi_fit(x, y, weights).rmse.cpu().numpy()

    across, within_a, within_b = rmse(a, b[shift]), rmse(a, a[shift]), rmse(b, b[shift])
    noise = np.sqrt((within_a**2 + within_b**2) / 2)
    return TableDifference(across, within_a, within_b, across / noise)
