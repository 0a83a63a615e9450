"""Chapter 02's worlds: a block-structured joint, and the caption world with its views.

The block joint is a finite P_M written down whole, on which the loss, its optimum and
training are checked exactly. In the caption world images live in
R^(signal_dims + nuisance_dims): the class sets the signal coordinates (class means on a
scaled simplex plus small noise), the nuisance coordinates are class-irrelevant Gaussian
noise. Each class owns a pool of captions; each image gets m captions, each from a
uniformly chosen wrong class with probability η. Multimodal learning (MMCL) pairs an
image with one of its captions; single-modal learning (SSCL) pairs two augmented views of
one image (`Augmentation`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor

from mmnb.config import check_choice, check_range
from mmnb.nets import Replicas, replica_ids
from mmnb.runtime import stream
from mmnb.worlds.factorization.config import FactorizationConfig

__all__ = [
    "AUGMENTATIONS",
    "Augmentation",
    "CaptionWorld",
    "Images",
    "block_joint",
    "caption_joint",
]

AUGMENTATIONS = ("gaussian", "nuisance")


def block_joint(cfg: FactorizationConfig, seed: int) -> Tensor:
    """The block-structured joint P_M of `cfg` (`[n_images, n_texts]`, float64).

    Image i and text j belong to class i mod `blocks` and j mod `blocks`; a pair of the
    same class has weight 1, of different classes `cross`, each times a random factor in
    [0.5, 1.5) drawn from the stream (seed, "world/block_joint").
    """
    n_images, n_texts, n_classes = cfg.n_images, cfg.n_texts, cfg.blocks
    same = (torch.arange(n_images)[:, None] % n_classes) == (torch.arange(n_texts) % n_classes)
    gen = stream(seed, "world/block_joint").torch
    weights = 0.5 + torch.rand(n_images, n_texts, generator=gen, dtype=torch.float64)
    joint = torch.where(same, 1.0, cfg.cross).double() * weights
    return joint / joint.sum()


class Images(NamedTuple):
    x: Tensor  # [..., n, signal_dims + nuisance_dims]
    y: Tensor  # [..., n] class labels


class CaptionWorld:
    """Class means in the signal coordinates, drawn once per seed, and the sizes of the world.

    The means are the vertices of a regular simplex at mutual distance `class_sep`, turned
    by a random rotation from the stream (seed, "world/class_means").
    """

    PURPOSES: ClassVar[tuple[str, ...]] = (
        "data/example",
        "data/pool",
        "data/test",
        "data/student",
        "data/student_test",
    )

    def __init__(
        self, cfg: FactorizationConfig, seed: int, device: torch.device | str = "cpu"
    ) -> None:
        gen = stream(seed, "world/class_means").torch
        rot, _ = torch.linalg.qr(torch.randn(cfg.signal_dims, cfg.signal_dims, generator=gen))
        eye = torch.eye(cfg.n_classes, cfg.signal_dims)  # vertices at mutual distance √2
        means = (eye - eye.mean(0)) @ rot * (cfg.class_sep / math.sqrt(2))
        self.means: Tensor = means.to(device)  # [n_classes, signal_dims]
        self.cfg, self.seed, self.device = cfg, seed, torch.device(device)

    @property
    def n_classes(self) -> int:
        return self.means.shape[0]

    @property
    def signal_dims(self) -> int:
        return self.means.shape[1]

    @property
    def captions_per_class(self) -> int:
        return self.cfg.captions_per_class

    @property
    def n_captions(self) -> int:
        return self.n_classes * self.captions_per_class

    @property
    def caption_labels(self) -> Tensor:
        """The class of each caption: caption j belongs to class j // captions_per_class."""
        return torch.arange(self.n_captions) // self.captions_per_class

    def _one_draw(self, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        y = torch.randint(self.n_classes, (n,), generator=gen)
        eps = torch.randn(n, self.signal_dims, generator=gen)
        xi = torch.randn(n, self.cfg.nuisance_dims, generator=gen)
        signal = self.means.cpu()[y] + self.cfg.signal_noise * eps
        return torch.cat([signal, self.cfg.nuisance_scale * xi], -1), y

    def sample(
        self, n: int, purpose: str, draw: int | None = None, replicas: Replicas | None = None
    ) -> Images:
        """`n` images x = [μ_y + σ_s ε, σ_n ξ] with ε, ξ ~ N(0, I) and a uniform class y.

        Drawn on the CPU from the stream (seed, purpose, draw) and moved to the world's
        device. With `replicas`, replica r draws its own `n` images from (seed, purpose, r)
        and the result is `[R, n, dim]`, `[R, n]`.
        """
        check_choice("purpose", purpose, self.PURPOSES)
        check_range("n", n, 1, None, integer=True)
        dev = self.means.device
        if replicas is None:
            x, y = self._one_draw(n, stream(self.seed, purpose, draw).torch)
            return Images(x.to(dev), y.to(dev))
        gens = [stream(self.seed, purpose, r).torch for r in replica_ids(replicas)]
        draws = [self._one_draw(n, gen) for gen in gens]
        x, y = (torch.stack(parts).to(dev) for parts in zip(*draws, strict=True))
        return Images(x, y)

    def assign_captions(
        self,
        labels: Tensor,
        m: int,
        eta: float,
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
        n, n_classes = len(labels), self.n_classes

        def draw_cols(what: str, fn):
            return fn(stream(self.seed, f"{purpose}/{what}", draw).torch).T.to(labels.device)

        u = draw_cols("noise", lambda g: torch.rand(m, n, generator=g))
        shift = draw_cols("class", lambda g: torch.randint(1, n_classes, (m, n), generator=g))
        pick = draw_cols(
            "pick", lambda g: torch.randint(self.captions_per_class, (m, n), generator=g)
        )
        cls = torch.where(u < eta, (labels[:, None] + shift) % n_classes, labels[:, None])
        return cls * self.captions_per_class + pick


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
