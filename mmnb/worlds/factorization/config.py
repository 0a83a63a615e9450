"""Chapter 02's config: multimodal contrastive learning as matrix factorization.

`FactorizationConfig` holds every setting of the chapter, in three parts: (a) the
block-structured joint and the embedding tables trained on it, (b) the caption world
against augmentation graphs and the neural encoders, (c) CLIP-guided resampling. Its
defaults are the "book" profile and `PAPER` the values the "paper" profile changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mmnb.config import WorldConfig, knob
from mmnb.ranges import FRACTION, LEARNING_RATE, SCALE, STEPS, TEMPERATURE, WIDTH, Range

__all__ = ["FactorizationConfig"]


AUGMENTATION = Range(1e-3, 100.0)  # the scale of an augmentation kernel


@dataclass(frozen=True)
class FactorizationConfig(WorldConfig):
    """The settings of chapter 02 (defaults: the "book" profile)."""

    PAPER: ClassVar[dict] = {
        "gap_ranks": (4, 6, 8),
        "table_steps": 8000,
        "minibatch_steps": 20000,
        "minibatch_size": 512,
        "minibatch_lr": 0.005,
        "pool_size": 1000,
        "noise_grid": (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6),
        "m_grid": (1, 2, 3, 4, 5, 8, 12),
        "scale_grid": (0.5, 1.0, 1.25, 1.5, 1.75, 2.0, 4.0, 8.0),
        "hidden": 128,
        "neural_steps": 6000,
        "neural_batch": 512,
        "neural_lr": 1e-3,
        "n_test": 10000,
        "student_train": 10000,
        "student_steps": 5000,
        "student_batch": 512,
        "student_lr": 1e-3,
        "eval_every": 250,
    }

    # (a) SVD recovery on a block-structured joint
    n_images: int = knob(60, Range(2, 5000))  # image states of the block joint
    n_texts: int = knob(40, Range(2, 5000))  # text states of the block joint
    blocks: int = knob(4, Range(1, 100))  # latent classes of the block joint; k = blocks
    cross: float = knob(0.15, FRACTION)  # weight of a cross-class pair (same: 1)
    gap_ranks: tuple = knob((4, 6), Range(1, 100))  # ranks k trained on the population loss
    table_init: float = knob(0.1, Range(1e-4, 10.0))  # std of the initial table entries
    table_steps: int = knob(1000, STEPS)  # Adam steps, population loss
    table_lr: float = knob(0.05, LEARNING_RATE)  # Adam learning rate, population loss
    minibatch_steps: int = knob(2000, STEPS)  # Adam steps, minibatch loss
    minibatch_size: int = knob(128, Range(2, 100_000))  # pairs per minibatch
    minibatch_lr: float = knob(0.01, LEARNING_RATE)  # Adam learning rate, minibatch
    eval_every: int = knob(50, STEPS)  # steps between subspace evaluations
    # (b) the caption world against augmentation graphs
    n_classes: int = knob(8, Range(2, 100))  # classes of the caption world
    signal_dims: int = knob(8, Range(1, 1000))  # coordinates holding the class mean
    nuisance_dims: int = knob(16, Range(0, 1000))  # class-irrelevant coordinates
    class_sep: float = knob(2.0, SCALE)  # distance between class means
    signal_noise: float = knob(0.3, SCALE)  # std of the signal coordinates
    nuisance_scale: float = knob(0.6, SCALE)  # std of the nuisance coordinates
    captions_per_class: int = knob(10, Range(1, 10_000))  # caption pool of each class
    pool_size: int = knob(400, Range(10, 20_000))  # images of the pool (exact graphs)
    captions_per_image: int = knob(3, Range(1, 100))  # m: captions per image
    caption_noise: float = knob(0.1, FRACTION)  # η: P[a caption is wrong]
    noisy_caption_noise: float = knob(0.4, FRACTION)  # η of the noisy-caption row
    aug_weak: float = knob(1.0, AUGMENTATION)  # scale of the weak augmentation
    aug_strong: float = knob(4.0, AUGMENTATION)  # scale of the strong augmentation
    # signal-kernel scale of the nuisance-only augmentation (a point of nuisance_aug_grid)
    aug_nuisance: float = knob(0.5, AUGMENTATION)
    noise_grid: tuple = knob((0.0, 0.1, 0.2, 0.3, 0.4, 0.5), FRACTION)  # η sweep
    m_grid: tuple = knob((1, 2, 3, 5, 8), Range(1, 100))  # m sweep
    scale_grid: tuple = knob((0.5, 1.0, 1.5, 2.0, 4.0, 8.0), AUGMENTATION)  # scale sweep
    nuisance_aug_grid: tuple = knob(  # nuisance-only scale sweep
        (0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5), AUGMENTATION
    )
    hidden: int = knob(64, WIDTH)  # hidden width of the MLP encoders
    neural_steps: int = knob(1000, STEPS)  # Adam steps of the neural encoders
    neural_batch: int = knob(128, Range(2, 20_000))  # minibatch of the neural encoders
    neural_lr: float = knob(3e-3, LEARNING_RATE)  # Adam learning rate, neural encoders
    n_test: int = knob(2000, Range(10, 1_000_000))  # fresh test images for the probes
    neural_replicas: int = knob(8, Range(2, 1000))  # replicas of neural encoders and students
    # (c) CLIP-guided resampling
    student_train: int = knob(2000, Range(10, 1_000_000))  # training images per student
    student_steps: int = knob(600, STEPS)  # Adam steps of the student
    student_batch: int = knob(128, Range(4, 20_000))  # student minibatch
    student_lr: float = knob(3e-3, LEARNING_RATE)  # Adam learning rate, student
    student_dim: int = knob(8, Range(1, 1024))  # output dimension of the student
    student_aug: float = knob(0.1, SCALE)  # scale of the student's views
    temperature: float = knob(0.2, TEMPERATURE)  # SimCLR temperature
    false_positive_rate: float = knob(0.2, FRACTION)  # second views from another image
    drop_false_negative: float = knob(0.05, FRACTION)  # negatives dropped (hardest)
    drop_easy_negative: float = knob(0.10, FRACTION)  # negatives dropped (easiest)
    drop_false_positive: float = knob(0.10, FRACTION)  # positive pairs dropped

    def check(self) -> None:
        if self.signal_dims < self.n_classes - 1:
            raise ValueError(
                f"signal_dims={self.signal_dims} must be at least n_classes - 1 = "
                f"{self.n_classes - 1} (the class means form a simplex)"
            )
        if min(self.n_images, self.n_texts) < self.blocks:
            raise ValueError(
                f"n_images={self.n_images} and n_texts={self.n_texts} must be at least "
                f"blocks={self.blocks}"
            )
        for k in self.gap_ranks:
            if k > min(self.n_images, self.n_texts):
                raise ValueError(
                    f"gap_ranks: k={k} exceeds min(n_images, n_texts) = "
                    f"{min(self.n_images, self.n_texts)}"
                )
        if self.n_classes >= self.pool_size:
            raise ValueError(f"pool_size={self.pool_size} must exceed n_classes={self.n_classes}")
        if self.neural_batch > self.pool_size:
            raise ValueError(
                f"neural_batch={self.neural_batch} must be at most pool_size={self.pool_size}"
            )
        if self.student_batch > self.student_train:
            raise ValueError(
                f"student_batch={self.student_batch} must be at most "
                f"student_train={self.student_train}"
            )
        if self.aug_nuisance not in self.nuisance_aug_grid:
            raise ValueError(
                f"aug_nuisance={self.aug_nuisance} must be a point of "
                f"nuisance_aug_grid={list(self.nuisance_aug_grid)} (the map's claims)"
            )
        if len(self.nuisance_aug_grid) < 2 or len(self.scale_grid) < 1:
            raise ValueError(
                f"nuisance_aug_grid={list(self.nuisance_aug_grid)} needs two points and "
                f"scale_grid={list(self.scale_grid)} one"
            )
        if self.blocks not in self.gap_ranks:
            raise ValueError(f"gap_ranks={list(self.gap_ranks)} must contain k = blocks")
