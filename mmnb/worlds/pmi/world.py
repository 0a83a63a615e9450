"""The ring world: a joint on Z_n × Z_n whose PMI is known exactly.

x is uniform and y = x + δ (mod n), with δ drawn from a mixture of a wrapped discrete
Gaussian and the uniform distribution. Its PMI matrix is circulant and of high rank.
The module holds the joint, its information quantities, batches of pairs drawn from it
(one named random stream per replica) and `RingWorld`, the chapter's world.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from mmnb.config import check_choice, check_range
from mmnb.nets import Replicas, replica_ids
from mmnb.runtime import stream

if TYPE_CHECKING:
    from mmnb.worlds.pmi.config import PMIConfig

__all__ = ["PairSampler", "RingWorld", "mutual_information", "pmi", "ring_joint"]


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


class RingWorld:
    """The ring world of `cfg` (`n_states`, `width`, `uniform_mix`): its joint on `device`.

    Pairs of each purpose come from their own streams: training batches from
    (seed, "data/pairs", replica), the Monte-Carlo batches of an expected loss from
    "data/oracle" (and "data/bound" for the InfoNCE bound), a check's batch from
    "data/check".
    """

    PURPOSES: ClassVar[tuple[str, ...]] = ("data/pairs", "data/oracle", "data/bound", "data/check")

    def __init__(self, cfg: PMIConfig, seed: int, device: torch.device | str = "cpu") -> None:
        self.cfg, self.seed, self.device = cfg, seed, torch.device(device)
        self.joint = ring_joint(cfg.n_states, cfg.width, cfg.uniform_mix).to(self.device)

    def sampler(
        self, batch_size: int, replicas: Replicas, purpose: str = "data/pairs", chunk: int = 64
    ) -> PairSampler:
        """Batches of `batch_size` pairs, replica r from the stream (seed, purpose, r)."""
        check_choice("purpose", purpose, self.PURPOSES)
        return PairSampler(self.joint, batch_size, replicas, self.seed, purpose, self.device, chunk)

    def sample(self, n: int, purpose: str, replica: int | None = None) -> tuple[Tensor, Tensor]:
        """`n` pairs (x, y), each of shape `[n]`, from the stream (seed, purpose, replica)."""
        check_choice("purpose", purpose, self.PURPOSES)
        check_range("n", n, 1, None, integer=True)
        gen = stream(self.seed, purpose, replica).torch
        flat = self.joint.reshape(-1).cpu()
        idx = torch.multinomial(flat, n, True, generator=gen).to(self.device)
        return idx // self.joint.shape[1], idx % self.joint.shape[1]
