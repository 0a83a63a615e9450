"""Chapter 06's settings: the world's latent model, the three models and their read-outs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mmnb.config import WorldConfig, check_range, knob
from mmnb.ranges import LEARNED_TEMPERATURE, LEARNING_RATE, SCALE, STEPS, WIDTH, Range

__all__ = ["LensesConfig"]


@dataclass(frozen=True)
class LensesConfig(WorldConfig):
    """Chapter 06's settings; the defaults are the "book" profile."""

    PAPER: ClassVar[dict] = dict(
        n_train=65536, n_test=2048, steps=3000, batch_size=1024, hidden=(256, 256),
    )  # fmt: skip

    content_dim: int = knob(2, Range(1, 8))  # k, dimension of the shared content
    private_dim: int = knob(4, Range(1, 64))  # k_ξ, private latents per modality
    content_corr: float = knob(0.9, Range(0.05, 0.995))  # ρ = corr(z_x,i, z_y,i)
    mixing_layers: int = knob(3, Range(1, 8))  # layers of each invertible mixing MLP
    content_scale: float = knob(1.0, Range(0.01, 10.0))  # scale of the content in x, y
    n_train: int = knob(4096, Range(256, 1_000_000))  # pairs of the finite training set
    n_test: int = knob(1024, Range(128, 8192))  # held-out pairs (also the PMI table)
    steps: int = knob(3000, STEPS)  # optimizer steps of every model
    batch_size: int = knob(256, Range(8, 8192))  # minibatch size
    lr: float = knob(3e-3, LEARNING_RATE)  # Adam learning rate
    hidden: tuple = knob((64, 64), WIDTH)  # hidden widths of the encoders
    embed_dim: int = knob(16, Range(2, 512))  # output dimension d (d ≫ k)
    tau_init: float = knob(1.0, LEARNED_TEMPERATURE)  # start of the learned τ
    fixed_tau: float = knob(1.0, LEARNED_TEMPERATURE)  # the fixed τ beside the learned one
    repair_fraction: float = knob(0.5, Range(0.05, 0.95))  # q re-paired (bounded-PMI contrast)
    augment_noise: float = knob(0.5, Range(0.0, 10.0))  # single-modal view noise (× std)
    ood_private_scale: float = knob(3.0, SCALE)  # std of s at OOD test
    id_neighbors: int = knob(20, Range(3, 200))  # neighbours of the MLE dimension
    eval_every: int = knob(250, STEPS)  # steps between linear R² probes

    def check(self) -> None:
        check_range("batch_size", self.batch_size, 8, self.n_train, integer=True)
        check_range(
            "steps × batch_size (one-pass pairs)",
            self.steps * self.batch_size,
            1,
            4_000_000,
            integer=True,
        )
        check_range("embed_dim", self.embed_dim, self.content_dim + 1, 512, integer=True)
