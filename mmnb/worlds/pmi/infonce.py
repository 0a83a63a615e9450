"""The InfoNCE loss of a logit table on a batch of pairs, computed from cell counts.

A row's log-sum-exp only depends on its x and on how often each y occurs in the batch,
so the symmetric (CLIP's) and the one-directional (x → y) loss of a `[R, n, n]` table
cost that of the table, not of the `[R, K, K]` logit matrix of the batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmnb.config import check_choice

__all__ = ["DIRECTIONS", "batch_logits", "batch_loss", "pair_counts"]

DIRECTIONS = ("symmetric", "x_to_y")


def batch_logits(table: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """The `[R, K, K]` logits `table[r, x[r, i], y[r, j]]` of one batch per replica."""
    r = torch.arange(table.shape[0], device=table.device)[:, None, None]
    return table[r, x[:, :, None], y[:, None, :]]


def pair_counts(x: Tensor, y: Tensor, n_states: int) -> Tensor:
    """How often each cell (x, y) occurs in each replica's batch: `[R, n, n]` counts."""
    n_replicas = x.shape[0]
    flat = (torch.arange(n_replicas, device=x.device)[:, None] * n_states + x) * n_states + y
    counts = torch.bincount(flat.reshape(-1), minlength=n_replicas * n_states * n_states)
    return counts.view(n_replicas, n_states, n_states).to(torch.get_default_dtype())


def batch_loss(table: Tensor, x: Tensor, y: Tensor, direction: str = "symmetric") -> Tensor:
    """InfoNCE of one batch per replica, computed from the cell counts.

    `direction="symmetric"` equals `symmetric_info_nce_logits(batch_logits(table, x, y))`
    and `"x_to_y"` equals `info_nce` of the same logits (rows only).
    """
    check_choice("direction", direction, DIRECTIONS)
    k = x.shape[1]
    counts = pair_counts(x, y, table.shape[-1]).to(table)
    m, n = counts.sum(2), counts.sum(1)  # how often each x, each y occurs
    positive = (counts * table).sum((1, 2))
    rows = (m * torch.logsumexp(table + n.log()[:, None, :], dim=2)).sum(1)
    if direction == "x_to_y":
        return (rows - positive) / k
    cols = (n * torch.logsumexp(table + m.log()[:, :, None], dim=1)).sum(1)
    return (0.5 * (rows + cols) - positive) / k
