"""The caption world of chapter 02 and the neural encoders trained on it.

Images live in R^(signal_dims + nuisance_dims): the class sets the signal coordinates
(class means on a scaled simplex plus small noise), the nuisance coordinates are
class-irrelevant Gaussian noise. Each class owns a pool of captions; each image gets m
captions, each from a uniformly chosen wrong class with probability η. Multimodal
learning (MMCL) pairs an image with one of its captions; single-modal learning (SSCL)
pairs two augmented views of one image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from mmnb.config import check_choice, check_range
from mmnb.losses import spectral_contrastive_loss
from mmnb.nets import MLP, replica_ids, replica_parameter
from mmnb.runtime import DrawAhead, stream
from mmnb.train import History, train
from mmnb.worlds.cooccurrence import CooccurrenceConfig

__all__ = [
    "AUGMENTATIONS",
    "Augmentation",
    "CaptionEncoderFit",
    "CaptionWorld",
    "EncoderTraining",
    "Images",
    "SSCLEncoderFit",
    "assign_captions",
    "caption_joint",
    "fit_augmentation_encoder",
    "fit_caption_encoder",
    "make_world",
    "sample_images",
]

AUGMENTATIONS = ("gaussian", "nuisance")


@dataclass(frozen=True)
class CaptionWorld:
    """Class means in the signal coordinates and the sizes of the world."""

    means: Tensor  # [n_classes, signal_dims]
    signal_noise: float
    nuisance_dims: int
    nuisance_scale: float
    captions_per_class: int

    @property
    def n_classes(self) -> int:
        return self.means.shape[0]

    @property
    def signal_dims(self) -> int:
        return self.means.shape[1]

    @property
    def n_captions(self) -> int:
        return self.n_classes * self.captions_per_class

    @property
    def caption_labels(self) -> Tensor:
        """The class of each caption: caption j belongs to class j // captions_per_class."""
        return torch.arange(self.n_captions) // self.captions_per_class


class Images(NamedTuple):
    x: Tensor  # [..., n, signal_dims + nuisance_dims]
    y: Tensor  # [..., n] class labels


def make_world(cfg: CooccurrenceConfig, seed: int, device: torch.device | str = "cpu"):
    """The caption world of `cfg` (n_classes, signal_dims, class_sep, signal_noise,
    nuisance_dims, nuisance_scale, captions_per_class).

    Class means are the vertices of a regular simplex at mutual distance `class_sep`,
    turned by a random rotation from the stream (seed, "world/class_means").
    """
    gen = stream(seed, "world/class_means").torch
    rot, _ = torch.linalg.qr(torch.randn(cfg.signal_dims, cfg.signal_dims, generator=gen))
    eye = torch.eye(cfg.n_classes, cfg.signal_dims)  # vertices at mutual distance √2
    means = (eye - eye.mean(0)) @ rot * (cfg.class_sep / math.sqrt(2))
    return CaptionWorld(
        means.to(device),
        cfg.signal_noise,
        cfg.nuisance_dims,
        cfg.nuisance_scale,
        cfg.captions_per_class,
    )


def _one_draw(world: CaptionWorld, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    y = torch.randint(world.n_classes, (n,), generator=gen)
    eps = torch.randn(n, world.signal_dims, generator=gen)
    xi = torch.randn(n, world.nuisance_dims, generator=gen)
    signal = world.means.cpu()[y] + world.signal_noise * eps
    return torch.cat([signal, world.nuisance_scale * xi], -1), y


def sample_images(
    world: CaptionWorld,
    n: int,
    seed: int,
    purpose: str,
    draw: int | None = None,
    replicas: int | list[int] | None = None,
) -> Images:
    """`n` images x = [μ_y + σ_s ε, σ_n ξ] with ε, ξ ~ N(0, I) and a uniform class y.

    Drawn on the CPU from the stream (seed, purpose, draw) and moved to the world's
    device. With `replicas`, replica r draws its own `n` images from (seed, purpose, r)
    and the result is `[R, n, dim]`, `[R, n]`.
    """
    check_range("n", n, 1, None, integer=True)
    dev = world.means.device
    if replicas is None:
        x, y = _one_draw(world, n, stream(seed, purpose, draw).torch)
        return Images(x.to(dev), y.to(dev))
    draws = [_one_draw(world, n, stream(seed, purpose, r).torch) for r in replica_ids(replicas)]
    x, y = (torch.stack(parts).to(dev) for parts in zip(*draws, strict=True))
    return Images(x, y)


def assign_captions(
    world: CaptionWorld,
    labels: Tensor,
    m: int,
    eta: float,
    seed: int,
    draw: int | None = None,
    purpose: str = "data/captions",
) -> Tensor:
    """m caption ids per image `[N, m]`; each from a uniform wrong class with probability η.

    The draws come from the streams (seed, f"{purpose}/…", draw), column by column,
    so captions of different (m, η) are coupled: the first m' captions of the m-caption
    assignment are the m'-caption assignment, and a caption that is wrong at η is wrong
    at every η' > η.
    """
    check_range("captions_per_image", m, 1, None, integer=True)
    check_range("caption_noise", eta, 0.0, 1.0)
    n = len(labels)

    def draw_cols(what: str, fn):
        return fn(stream(seed, f"{purpose}/{what}", draw).torch).T.to(labels.device)

    u = draw_cols("noise", lambda g: torch.rand(m, n, generator=g))
    shift = draw_cols("class", lambda g: torch.randint(1, world.n_classes, (m, n), generator=g))
    pick = draw_cols("pick", lambda g: torch.randint(world.captions_per_class, (m, n), generator=g))
    cls = torch.where(u < eta, (labels[:, None] + shift) % world.n_classes, labels[:, None])
    return cls * world.captions_per_class + pick


def caption_joint(captions: Tensor, n_captions: int) -> Tensor:
    """P_M(x, l): a uniform image and one of its m captions, `[N, n_captions]` float64."""
    n, m = captions.shape
    joint = torch.zeros(n, n_captions, dtype=torch.float64, device=captions.device)
    joint.scatter_add_(1, captions, torch.full((n, m), 1.0 / (n * m), dtype=torch.float64))
    return joint


@dataclass(frozen=True)
class Augmentation:
    """A random view of an image.

    `gaussian`: x + s·ε on every coordinate. `nuisance`: keep the first `signal_dims`
    coordinates (the class part) and redraw the rest from the world's nuisance
    distribution N(0, nuisance_scale²); `scale` is then unused.
    """

    kind: str
    scale: float
    signal_dims: int = 0
    nuisance_scale: float = 1.0

    def __post_init__(self) -> None:
        check_choice("augmentation", self.kind, AUGMENTATIONS)
        check_range("scale", self.scale, 0.0, None)

    def __call__(self, x: Tensor, noise: Tensor) -> Tensor:
        """The view of `x` made with standard normal `noise` of the same shape."""
        if self.kind == "gaussian":
            return x + self.scale * noise
        d = self.signal_dims
        return torch.cat([x[..., :d], self.nuisance_scale * noise[..., d:]], -1)


def noise_draws(gens: list[torch.Generator], shape: tuple[int, ...], device) -> DrawAhead:
    """Standard normal noise `[R, *shape]` per call, replica r from its own CPU generator,
    drawn ahead (`mmnb.runtime.DrawAhead`)."""
    return DrawAhead(gens, lambda g: torch.randn(shape, generator=g), device)


@dataclass(frozen=True)
class EncoderTraining:
    """How an MLP encoder is trained: its widths, Adam's steps, minibatch and learning rate,
    and the replicas (R seeds from `seed`)."""

    out_dim: int
    hidden: int
    steps: int
    batch_size: int
    lr: float
    n_replicas: int
    seed: int

    def __post_init__(self) -> None:
        for name in ("out_dim", "hidden", "steps", "batch_size", "n_replicas"):
            check_range(name, getattr(self, name), 1, None, integer=True)
        check_range("lr", self.lr, 0.0, None)
        check_range("seed", self.seed, 0, None, integer=True)

    def mlp(self, in_dim: int, layers: int, purpose: str, device) -> MLP:
        """The encoder: `layers` hidden layers of width `hidden`, R replicas from `purpose`."""
        return MLP(in_dim, [self.hidden] * layers, self.out_dim, self.n_replicas, self.seed,
                   device=device, purpose=purpose)  # fmt: skip

    def run(self, objective, parameters, n_samples: int, desc: str) -> History:
        """`mmnb.train` with these settings and per-replica minibatches of `n_samples` items."""
        return train(objective, parameters, self.steps, lr=self.lr, n_samples=n_samples,
                     batch_size=self.batch_size, seed=self.seed, replicas=self.n_replicas,
                     desc=desc)  # fmt: skip


@dataclass
class CaptionEncoderFit:
    """MMCL: the image encoder, the caption table `[R, n_captions, k]` and the history."""

    image_encoder: MLP
    caption_table: Tensor
    history: History


def fit_caption_encoder(
    x: Tensor,
    captions: Tensor,
    n_captions: int,
    training: EncoderTraining,
    init_scale: float = 0.1,
    desc: str = "MMCL encoder",
) -> CaptionEncoderFit:
    """An image MLP `x → out_dim` and a caption table trained on the minibatch spectral loss.

    The training pairs are every (image, caption) of `captions` `[N, m]`; replica r
    visits them in its own order (`train`'s per-replica minibatches) and starts from the
    streams (seed, "init/image_encoder", r) and (seed, "init/caption_table", r).
    """
    dev, (n, m), t = x.device, captions.shape, training
    f = t.mlp(x.shape[-1], 1, "init/image_encoder", dev)
    g = replica_parameter(
        lambda gen: init_scale * torch.randn(n_captions, t.out_dim, generator=gen),
        t.n_replicas, t.seed, "init/caption_table", dev,
    )  # fmt: skip
    rows = torch.arange(t.n_replicas, device=dev)[:, None]

    def objective(batch: Tensor) -> Tensor:
        image = batch // m
        return spectral_contrastive_loss(f(x[image]), g[rows, captions[image, batch % m]])

    history = t.run(objective, [f, g], n * m, desc)
    return CaptionEncoderFit(f, g.detach(), history)


@dataclass
class SSCLEncoderFit:
    """SSCL: one image encoder for both views, and the history."""

    encoder: MLP
    history: History


def fit_augmentation_encoder(
    x: Tensor, augmentation: Augmentation, training: EncoderTraining, desc: str = "SSCL encoder"
) -> SSCLEncoderFit:
    """One MLP on two views of the same image, minibatch spectral loss.

    Replica r starts from the stream (seed, "init/sscl_encoder", r), visits the images in
    its own order and draws its views from (seed, "augment", r).
    """
    dev, t = x.device, training
    f = t.mlp(x.shape[-1], 1, "init/sscl_encoder", dev)
    gens = [stream(t.seed, "augment", r).torch for r in range(t.n_replicas)]
    views = noise_draws(gens, (2, t.batch_size, x.shape[-1]), dev)

    def objective(batch: Tensor) -> Tensor:
        noise = views()
        v1, v2 = augmentation(x[batch], noise[:, 0]), augmentation(x[batch], noise[:, 1])
        return spectral_contrastive_loss(f(v1), f(v2))

    return SSCLEncoderFit(f, t.run(objective, f, len(x), desc))
