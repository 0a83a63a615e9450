"""Training on chapter 02's worlds: embedding tables on a joint, neural encoders on captions.

`fit_factorization` minimizes the multimodal spectral contrastive loss over free embedding
tables on the population loss or its minibatch estimator, or one table on the single-modal
loss of a graph (`tied=True`). `fit_caption_encoder` (MMCL: an image MLP and a caption
table) and `fit_augmentation_encoder` (SSCL: one MLP on two views) train neural encoders
on the caption world's images. Every entry point takes the config first and returns a
dataclass with the training `history`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from mmnb.config import check_range
from mmnb.losses import spectral_contrastive_loss
from mmnb.nets import MLP, replica_ids, replica_parameter
from mmnb.probes import principal_cosines
from mmnb.runtime import DrawAhead, stream
from mmnb.train import History, train
from mmnb.worlds.factorization.config import FactorizationConfig
from mmnb.worlds.factorization.measures import svd_optimum, weighted_factors
from mmnb.worlds.factorization.world import Augmentation

__all__ = [
    "CaptionEncoder",
    "CaptionEncoderFit",
    "EncoderTraining",
    "FactorizationFit",
    "SSCLEncoderFit",
    "caption_encoder",
    "fit_augmentation_encoder",
    "fit_caption_encoder",
    "fit_factorization",
    "noise_draws",
]


@dataclass
class FactorizationFit:
    """Free embedding tables f_V `[R, N_V, k]`, f_L `[R, N_L, k]` and the training history."""

    f_v: Tensor
    f_l: Tensor
    history: History


def _pair_batches(
    joint: Tensor, batch_size: int, replicas: list[int], seed: int, chunk: int = 64
) -> Iterator[Tensor]:
    """Endless `[R, batch_size]` flat indices of (image, text) pairs drawn from the joint.

    Replica r draws from its own stream (seed, "minibatch/pairs", r), `chunk` steps at a
    time on the CPU, so it sees the same pairs alone or in a group.
    """
    flat = joint.reshape(-1).double().cpu()
    gens = [stream(seed, "minibatch/pairs", r).torch for r in replicas]
    while True:
        draws = [torch.multinomial(flat, chunk * batch_size, True, generator=g) for g in gens]
        block = torch.stack(draws).view(len(gens), chunk, batch_size).to(joint.device)
        yield from block.unbind(1)


def fit_factorization(
    cfg: FactorizationConfig,
    joint: Tensor,
    k: int,
    replicas: int,
    seed: int,
    *,
    minibatch: bool = False,
    tied: bool = False,
    desc: str = "tables",
) -> FactorizationFit:
    """Minimize the multimodal spectral contrastive loss over free tables f_V, f_L by Adam.

    Replica r starts from N(0, table_init²) tables drawn from the streams (seed,
    "init/table_v", r) and (seed, "init/table_l", r). By default each of `table_steps`
    steps (learning rate `table_lr`) uses the exact population loss; `minibatch=True`
    runs `minibatch_steps` steps (`minibatch_lr`), each on `minibatch_size` pairs drawn
    from the joint per replica with the minibatch estimator (the pairs are positives, the
    off-diagonal combinations negatives). Every `eval_every` steps the history records
    `loss_population` and `subspace_min_cos` (the smallest principal cosine between
    span F_V and U_k).

    `tied=True` is single-modal spectral contrastive learning on a symmetric graph
    `joint` = A: one table embeds both members of a pair (as in SimCLR), f_L = f_V.
    """
    steps = cfg.minibatch_steps if minibatch else cfg.table_steps
    lr = cfg.minibatch_lr if minibatch else cfg.table_lr
    batch_size = cfg.minibatch_size if minibatch else None
    init_scale = cfg.table_init
    device, joint = joint.device, joint.double()
    best = svd_optimum(joint, k)
    n_v, n_l = joint.shape

    def table(n: int):
        return lambda g: init_scale * torch.randn(n, k, generator=g, dtype=torch.float64)

    f_v = replica_parameter(table(n_v), replicas, seed, "init/table_v", device)
    if tied and (n_v != n_l or not torch.allclose(joint, joint.T)):
        raise ValueError(
            "tied=True needs a symmetric graph (a square joint equal to its transpose)"
        )
    f_l = f_v if tied else replica_parameter(table(n_l), replicas, seed, "init/table_l", device)
    rows = torch.arange(replicas, device=device)[:, None]
    if batch_size is not None:
        batches = _pair_batches(joint, batch_size, replica_ids(replicas), seed)

    def objective(_: Tensor | None) -> Tensor:
        if batch_size is None:
            return spectral_contrastive_loss(f_v, f_l, joint)
        idx = next(batches)
        return spectral_contrastive_loss(f_v[rows, idx // n_l], f_l[rows, idx % n_l])

    def evaluate() -> dict[str, Tensor]:
        cos = principal_cosines(weighted_factors(f_v, joint.sum(1)), best.u)
        return {
            "loss_population": spectral_contrastive_loss(f_v, f_l, joint),
            "subspace_min_cos": cos.min(-1).values,
        }

    history = train(
        objective,
        [f_v] if tied else [f_v, f_l],
        steps,
        lr=lr,
        evaluate=evaluate,
        eval_every=cfg.eval_every,
        desc=desc,
    )
    return FactorizationFit(f_v.detach(), f_l.detach(), history)


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
    replicas: int
    seed: int

    def __post_init__(self) -> None:
        for name in ("out_dim", "hidden", "steps", "batch_size", "replicas"):
            check_range(name, getattr(self, name), 1, None, integer=True)
        check_range("lr", self.lr, 0.0, None)
        check_range("seed", self.seed, 0, None, integer=True)

    @classmethod
    def neural(cls, cfg: FactorizationConfig, replicas: int, seed: int) -> EncoderTraining:
        """The encoders of the caption world: `n_classes` outputs, `neural_*` settings."""
        return cls(cfg.n_classes, cfg.hidden, cfg.neural_steps, cfg.neural_batch,
                   cfg.neural_lr, replicas, seed)  # fmt: skip

    @classmethod
    def student(cls, cfg: FactorizationConfig, replicas: int, seed: int) -> EncoderTraining:
        """The SimCLR students: `student_dim` outputs, `student_*` settings."""
        return cls(cfg.student_dim, cfg.hidden, cfg.student_steps, cfg.student_batch,
                   cfg.student_lr, replicas, seed)  # fmt: skip

    def mlp(self, in_dim: int, layers: int, purpose: str, device) -> MLP:
        """The encoder: `layers` hidden layers of width `hidden`, R replicas from `purpose`."""
        return MLP(in_dim, [self.hidden] * layers, self.out_dim, self.replicas, self.seed,
                   device=device, purpose=purpose)  # fmt: skip

    def run(self, objective, parameters, n_samples: int, desc: str) -> History:
        """`mmnb.train` with these settings and per-replica minibatches of `n_samples` items."""
        return train(objective, parameters, self.steps, lr=self.lr, n_samples=n_samples,
                     batch_size=self.batch_size, seed=self.seed, replicas=self.replicas,
                     desc=desc)  # fmt: skip


@dataclass
class CaptionEncoder:
    """MMCL's trainables: an image MLP and a caption table `[R, n_captions, k]`, with the
    minibatch spectral loss over the (image, caption) pairs of `captions` `[N, m]`."""

    image_encoder: MLP
    caption_table: Tensor
    x: Tensor
    captions: Tensor

    def __post_init__(self) -> None:
        self._rows = torch.arange(self.caption_table.shape[0], device=self.x.device)[:, None]

    @property
    def n_pairs(self) -> int:
        """The training pairs: every (image, caption) of `captions`, indexed image·m + j."""
        return self.captions.numel()

    def parameters(self) -> list:
        return [self.image_encoder, self.caption_table]

    def loss(self, batch: Tensor) -> Tensor:
        """The spectral contrastive loss per replica of the pairs `batch` `[R, B]`."""
        m = self.captions.shape[1]
        image = batch // m
        caption = self.captions[image, batch % m]
        return spectral_contrastive_loss(
            self.image_encoder(self.x[image]), self.caption_table[self._rows, caption]
        )


def caption_encoder(
    cfg: FactorizationConfig, x: Tensor, captions: Tensor, replicas: int, seed: int
) -> CaptionEncoder:
    """The untrained MMCL encoder of `fit_caption_encoder`: one hidden layer of `hidden`
    units to `n_classes` outputs from the stream (seed, "init/image_encoder", r), and a
    N(0, table_init²) caption table from (seed, "init/caption_table", r)."""
    t = EncoderTraining.neural(cfg, replicas, seed)
    f = t.mlp(x.shape[-1], 1, "init/image_encoder", x.device)
    n_captions = cfg.n_classes * cfg.captions_per_class
    g = replica_parameter(
        lambda gen: cfg.table_init * torch.randn(n_captions, t.out_dim, generator=gen),
        replicas, seed, "init/caption_table", x.device,
    )  # fmt: skip
    return CaptionEncoder(f, g, x, captions)


@dataclass
class CaptionEncoderFit:
    """MMCL: the image encoder, the caption table `[R, n_captions, k]` and the history."""

    image_encoder: MLP
    caption_table: Tensor
    history: History


def fit_caption_encoder(
    cfg: FactorizationConfig,
    x: Tensor,
    captions: Tensor,
    replicas: int,
    seed: int,
    desc: str = "MMCL encoder",
) -> CaptionEncoderFit:
    """An image MLP and a caption table (`caption_encoder`) trained by Adam on the minibatch
    spectral loss (`neural_steps`, `neural_batch`, `neural_lr`).

    The training pairs are every (image, caption) of `captions` `[N, m]`; replica r
    visits them in its own order (`train`'s per-replica minibatches).
    """
    model = caption_encoder(cfg, x, captions, replicas, seed)
    training = EncoderTraining.neural(cfg, replicas, seed)
    history = training.run(model.loss, model.parameters(), model.n_pairs, desc)
    return CaptionEncoderFit(model.image_encoder, model.caption_table.detach(), history)


@dataclass
class SSCLEncoderFit:
    """SSCL: one image encoder for both views, and the history."""

    encoder: MLP
    history: History


def fit_augmentation_encoder(
    cfg: FactorizationConfig,
    x: Tensor,
    augmentation: Augmentation,
    replicas: int,
    seed: int,
    desc: str = "SSCL encoder",
) -> SSCLEncoderFit:
    """One MLP on two views of the same image, minibatch spectral loss (the `neural_*`
    settings of `fit_caption_encoder`).

    Replica r starts from the stream (seed, "init/sscl_encoder", r), visits the images in
    its own order and draws its views from (seed, "augment", r).
    """
    dev, t = x.device, EncoderTraining.neural(cfg, replicas, seed)
    f = t.mlp(x.shape[-1], 1, "init/sscl_encoder", dev)
    gens = [stream(t.seed, "augment", r).torch for r in range(t.replicas)]
    views = noise_draws(gens, (2, t.batch_size, x.shape[-1]), dev)

    def objective(batch: Tensor) -> Tensor:
        noise = views()
        v1, v2 = augmentation(x[batch], noise[:, 0]), augmentation(x[batch], noise[:, 1])
        return spectral_contrastive_loss(f(v1), f(v2))

    return SSCLEncoderFit(f, t.run(objective, f, len(x), desc))
