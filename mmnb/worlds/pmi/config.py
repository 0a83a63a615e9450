"""The settings of chapter 03: the ring world, the trained similarities, the Gaussian world."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mmnb.config import WorldConfig, knob
from mmnb.ranges import (
    FRACTION,
    LEARNED_TEMPERATURE,
    LEARNING_RATE,
    SCALE,
    STEPS,
    WIDTH,
    Range,
)

__all__ = ["RHO_LIMIT", "PMIConfig"]

RHO_LIMIT = 0.99  # |ρ| ≤ 0.99: beyond it the PMI's quadratic has a curvature above 50


@dataclass(frozen=True)
class PMIConfig(WorldConfig):
    """The settings of chapter 03; the defaults are the "book" profile."""

    PAPER: ClassVar[dict] = {
        "table_steps": 16000,
        "batch_sizes": (16, 64, 256, 1024),
        "pairs_seen": 2**21,
        "embed_dims": (2, 4, 8, 16, 32),
        "embed_steps": 10000,
        "kernel": "rff",
        "oracle_batches": 4000,
        "gauss_hidden": 256,
        "gauss_dim": 16,
        "gauss_steps": 8000,
        "gauss_batch": 512,
        "gauss_lr": 1e-3,
        "eval_every": 200,
    }
    # the ring world
    n_states: int = knob(64, Range(8, 1024))  # states of the ring Z_n
    width: float = knob(1.5, Range(0.1, 100.0))  # width of the wrapped Gaussian offset
    uniform_mix: float = knob(0.1, Range(0.01, 1.0))  # weight of the uniform offset
    # the free logit table
    batch_size: int = knob(256, Range(2, 8192))  # pairs per batch, N
    table_steps: int = knob(12000, STEPS)  # steps of the free table
    table_lr: float = knob(0.01, LEARNING_RATE)  # Adam learning rate of the tables
    table_init_std: float = knob(0.01, Range(0.0, 10.0))  # std of the table's initial cells
    row_shift_init: float = knob(1.0, Range(0.0, 10.0))  # std of initial row offsets a(x)
    average_last: float = knob(0.5, FRACTION)  # fraction of steps averaged
    # batch sizes and the InfoNCE bound
    batch_sizes: tuple = knob((64, 256, 1024), Range(2, 8192))  # N of the batch-size runs
    pairs_seen: int = knob(2**19, Range(2**10, 2**26))  # pairs seen by each N run
    batch_lr: float = knob(0.02, LEARNING_RATE)  # learning rate of the N runs
    bound_batch_sizes: tuple = knob(  # N of the InfoNCE bound
        (2, 4, 16, 64, 256, 1024), Range(2, 8192)
    )
    oracle_batches: int = knob(400, Range(10, 100_000))  # Monte-Carlo batches of a loss
    # embeddings with a cosine or kernel similarity
    embed_dims: tuple = knob((4, 8, 16), Range(1, 256))  # embedding dimensions d
    embed_steps: int = knob(3000, STEPS)  # steps of the embedding tables
    embed_lr: float = knob(0.03, LEARNING_RATE)  # Adam learning rate of the embeddings
    embed_init_std: float = knob(1.0, Range(1e-3, 100.0))  # std of the initial embeddings
    tau_init: float = knob(0.07, LEARNED_TEMPERATURE)  # initial temperature τ
    tau_max: float = knob(1.0, LEARNED_TEMPERATURE)  # largest temperature (smallest scale)
    kernel: str = knob("exact", ("exact", "rff"))  # Gaussian part exact or by RFF
    n_features: int = knob(1024, Range(1, 65536))  # random Fourier features D
    sigma: float = knob(0.5, Range(0.01, 10.0))  # bandwidth σ of the Gaussian kernel
    mix_weight: float = knob(0.667, FRACTION)  # α₁ of mix (α₂ = 1 − α₁)
    # the downstream task
    n_classes: int = knob(8, Range(2, 1024))  # classes c(y) = ⌊C y / n⌋
    probe_l2: float = knob(1e-6, Range(0.0, 10.0))  # ridge of the linear probe
    pmi_scales: tuple = knob((0.5, 0.75, 1.0, 1.25, 1.5), SCALE)  # α of α·PMI
    # the continuous world
    rho: float = knob(0.8, Range(-RHO_LIMIT, RHO_LIMIT))  # correlation ρ of x and y
    gauss_x_dim: int = knob(2, Range(1, 64))  # dimension of x and y
    gauss_hidden: int = knob(64, WIDTH)  # hidden width of the MLPs
    gauss_dim: int = knob(8, Range(1, 1024))  # embedding dimension of the MLPs
    gauss_steps: int = knob(1500, STEPS)  # training steps
    gauss_batch: int = knob(256, Range(2, 8192))  # pairs per batch
    gauss_lr: float = knob(3e-3, LEARNING_RATE)  # Adam learning rate
    gauss_eval_points: int = knob(512, Range(16, 8192))  # held-out x's and y's
    eval_every: int = knob(100, STEPS)  # steps between evaluations

    def check(self) -> None:
        if self.n_classes > self.n_states:
            raise ValueError(f"n_classes={self.n_classes} must be at most n_states={self.n_states}")
        if self.tau_init > self.tau_max:
            raise ValueError(f"tau_init={self.tau_init} must be at most tau_max={self.tau_max}")
        for k in self.batch_sizes:
            if self.pairs_seen // k < 1:
                raise ValueError(f"pairs_seen={self.pairs_seen} is below batch size {k}")
