"""Chapter 03's ring world: a joint on Z_n × Z_n whose PMI is known exactly.

x is uniform and y = x + δ (mod n), with δ drawn from a mixture of a wrapped discrete
Gaussian and the uniform distribution. Its PMI matrix is circulant and of high rank.
The module holds the joint, its information quantities, batches drawn from it (one
named random stream per replica), the symmetric and one-directional InfoNCE loss of a
logit table computed from cell counts, the oracle loss and the Eckart–Young ceiling.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mmnb.config import check_choice, check_range
from mmnb.nets import Replicas, replica_ids
from mmnb.runtime import stream

__all__ = [
    "DIRECTIONS",
    "PairSampler",
    "batch_logits",
    "batch_loss",
    "expected_loss",
    "mutual_information",
    "pair_counts",
    "pmi",
    "rank_ceiling",
    "ring_joint",
]

DIRECTIONS = ("symmetric", "x_to_y")


def ring_joint(n_states: int = 64, width: float = 1.5, uniform_mix: float = 0.1) -> Tensor:
    """The joint p(x, y) on Z_n × Z_n as an `[n, n]` float64 tensor (rows x, columns y).

    x is uniform and y − x (mod n) follows
    (1 − `uniform_mix`) · wrapped discrete Gaussian(width) + `uniform_mix` · uniform.
    """
    check_range("n_states", n_states, 2, 4096, integer=True)
    check_range("width", width, 1e-3, None)
    check_range("uniform_mix", uniform_mix, 0.0, 1.0)
    delta = torch.arange(n_states, dtype=torch.float64)
    wraps = torch.arange(-3, 4, dtype=torch.float64)[:, None] * n_states
    bump = torch.exp(-((delta[None, :] + wraps) ** 2) / (2 * width**2)).sum(0)
    noise = (1 - uniform_mix) * bump / bump.sum() + uniform_mix / n_states
    offsets = (delta[None, :] - delta[:, None]).remainder(n_states).long()  # (y − x) mod n
    return noise[offsets] / n_states


def pmi(joint: Tensor) -> Tensor:
    """PMI(x, y) = log p(x, y) − log p(x) − log p(y) of a joint table."""
    joint = torch.as_tensor(joint, dtype=torch.float64)
    return joint.log() - joint.sum(1, keepdim=True).log() - joint.sum(0, keepdim=True).log()


def mutual_information(joint: Tensor) -> float:
    """I(X; Y) = E_p PMI in nats."""
    joint = torch.as_tensor(joint, dtype=torch.float64)
    return float((joint * pmi(joint)).sum())


def rank_ceiling(target: Tensor, rank: int) -> float:
    """Best correlation with the centred `target` reachable by any matrix of rank ≤ `rank`.

    By Eckart–Young it is √(Σ_{i≤rank} σ_i² / Σ_i σ_i²) of the singular values σ of
    the centred target (uniform weights, as for the ring).
    """
    target = torch.as_tensor(target, dtype=torch.float64)
    s2 = torch.linalg.svdvals(target - target.mean()).square()
    return float((s2[:rank].sum() / s2.sum()).sqrt())


class PairSampler:
    """Batches of pairs from a joint, replica r drawing from the stream (seed, purpose, r).

    `next()` returns the indices x, y of shape `[R, batch_size]` on `device`. Draws are
    made on the CPU a chunk of steps at a time, so a replica gets the same batches alone
    or in a group and on every device.
    """

    def __init__(
        self,
        joint: Tensor,
        batch_size: int,
        replicas: Replicas,
        seed: int,
        purpose: str = "data/pairs",
        device: torch.device | str = "cpu",
        chunk: int = 64,
    ) -> None:
        check_range("batch_size", batch_size, 2, None, integer=True)
        self.flat = torch.as_tensor(joint, dtype=torch.float64).reshape(-1).cpu()
        self.n_y = joint.shape[1]
        self.batch_size, self.chunk, self.device = batch_size, chunk, torch.device(device)
        self.streams = [stream(seed, purpose, r) for r in replica_ids(replicas)]
        self.buffer: tuple[Tensor, ...] = ()
        self.cursor = chunk

    def draw(self, steps: int) -> tuple[Tensor, Tensor]:
        """The next `steps` batches of every replica: x, y of shape `[R, steps, batch_size]`."""
        n = steps * self.batch_size
        draws = [torch.multinomial(self.flat, n, True, generator=s.torch) for s in self.streams]
        idx = torch.stack(draws).view(len(draws), steps, -1).to(self.device)
        return idx // self.n_y, idx % self.n_y

    def next(self) -> tuple[Tensor, Tensor]:
        """One batch per replica: x, y of shape `[R, batch_size]`."""
        if self.cursor == self.chunk:
            self.buffer, self.cursor = self.draw(self.chunk), 0
        x, y = self.buffer[0][:, self.cursor], self.buffer[1][:, self.cursor]
        self.cursor += 1
        return x, y


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
    and `"x_to_y"` equals `info_nce` of the same logits (rows only). A row's log-sum-exp
    only depends on its x and on how often each y occurs in the batch, so the cost is
    that of the `[R, n, n]` table, not of the `[R, K, K]` logit matrix.
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
