"""Chapter 00's settings: the paired world, the two encoders and their training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mmnb.config import WorldConfig, check_range, knob
from mmnb.ranges import LEARNED_TEMPERATURE, LEARNING_RATE, STEPS, WIDTH, Range

__all__ = ["ContrastiveConfig"]


@dataclass(frozen=True)
class ContrastiveConfig(WorldConfig):
    """Chapter 00's settings; the defaults are the "book" profile."""

    PAPER: ClassVar[dict] = dict(
        n_train=65536, n_test=2048, steps=5000, batch_size=1024, lr=1e-3, hidden=256,
        embed_dim=32, eval_every=100,
    )  # fmt: skip

    shared_dim: int = knob(4, Range(1, 256))  # k, dimension of the shared latent z
    private_dim: int = knob(4, Range(1, 256))  # k_ξ, dimension of each private latent ξ
    x_dim: int = knob(16, Range(1, 4096))  # dimension of the observation x
    y_dim: int = knob(16, Range(1, 4096))  # dimension of the observation y
    noise: float = knob(0.1, Range(0.0, 10.0))  # std of the observation noise
    n_train: int = knob(4096, Range(16, 1_000_000))  # training pairs
    n_test: int = knob(512, Range(16, 100_000))  # held-out pairs
    steps: int = knob(800, STEPS)  # optimizer steps
    batch_size: int = knob(256, Range(2, 65_536))  # minibatch size N
    lr: float = knob(3e-3, LEARNING_RATE)  # Adam learning rate
    hidden: int = knob(64, WIDTH)  # width of the encoders' hidden layer
    embed_dim: int = knob(8, Range(1, 1024))  # output dimension d
    tau_init: float = knob(1.0, LEARNED_TEMPERATURE)  # starting learned temperature
    fixed_taus: tuple = knob((0.03, 0.1, 0.3, 1.0), LEARNED_TEMPERATURE)  # frozen τs
    eval_every: int = knob(40, STEPS)  # steps between evaluations

    def check(self) -> None:
        check_range("batch_size", self.batch_size, 2, self.n_train, integer=True)
