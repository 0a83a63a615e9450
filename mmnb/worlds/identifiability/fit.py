"""Chapter 04's training: the encoders, the two contrastive objectives and `run`, which
trains every (setting, replica id) pair as one replica of a single batched model.

Random streams (seed = the chapter's seed, j = a replica id): world draws
"world/…" (j), encoder init "init/encoder_x|y" (j), training batches "data/train" (j),
the reference objective's negatives "data/negatives" (j), tracking pairs "data/track"
(j), evaluation pairs "data/val" and "data/test" (j).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from mmnb.config import check_choice
from mmnb.losses import similarity, symmetric_info_nce
from mmnb.nets import MLP, encoder_pair
from mmnb.probes import r2_scores
from mmnb.train import History, train
from mmnb.worlds.identifiability.config import OBJECTIVES, IdentifiabilityConfig, Setting
from mmnb.worlds.identifiability.measures import Evaluation, evaluate
from mmnb.worlds.identifiability.world import LatentModel, ReplicaStreams

__all__ = [
    "ALIGN",
    "Encoders",
    "IdentifiabilityRun",
    "batches_ahead",
    "contrastive_loss",
    "make_encoders",
    "pad_hidden_units",
    "reference_info_nce",
    "run",
]


ALIGN = 16  # hidden widths are stored as multiples of this (see `pad_hidden_units`)


def pad_hidden_units(net: MLP, multiple: int = ALIGN) -> None:
    """Round every hidden width of `net` up to a multiple of `multiple` with inert units.

    A new unit starts with zero weights in, zero bias and zero weights out, so it outputs
    LeakyReLU(0) = 0, adds nothing downstream and gets exactly zero gradients: it stays
    zero under Adam and gradient clipping, and the net computes the same function. The
    CPU's matrix kernels run about 1.3 times faster on widths that are multiples of 16
    (750 → 752: `benchmarks/paper_step.py`); widths that already are stay as they are.
    """
    layers = list(net.layers)
    for into, out_of in zip(layers[:-1], layers[1:], strict=True):
        extra = -into.weight.shape[-1] % multiple
        if extra == 0:
            continue
        into.weight = nn.Parameter(nn.functional.pad(into.weight.detach(), (0, extra)))
        if into.bias is not None:
            into.bias = nn.Parameter(nn.functional.pad(into.bias.detach(), (0, extra)))
        out_of.weight = nn.Parameter(nn.functional.pad(out_of.weight.detach(), (0, 0, 0, extra)))


class Encoders(nn.Module):
    """The encoders g1, g2 of R replicas (LeakyReLU(0.01) MLPs from `mmnb.nets.encoder_pair`);
    replica r keeps its first `sizes[r]` outputs (`out_widths`). Hidden widths are padded
    to multiples of `align` with inert units (`pad_hidden_units`; 1 leaves them)."""

    def __init__(
        self,
        n_in: int,
        hidden: Sequence[int],
        sizes: Sequence[int],
        ids: Sequence[int],
        seed: int,
        device: torch.device | str | None = None,
        align: int = ALIGN,
    ) -> None:
        super().__init__()
        widths = None if len(set(sizes)) == 1 else list(sizes)
        self.g1, self.g2 = encoder_pair(
            n_in, n_in, hidden, max(sizes), list(ids), seed,
            activation="leaky_relu", device=device, out_widths=widths,
        )  # fmt: skip
        self.widths = [n_in, *hidden, max(sizes)]  # the net's own widths, without padding
        for net in (self.g1, self.g2):
            pad_hidden_units(net, align)

    def forward(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
        return self.g1(x1), self.g2(x2)


def make_encoders(
    cfg: IdentifiabilityConfig,
    pairs: Sequence[tuple[Setting, int]],
    seed: int,
    device: torch.device | str | None = None,
    align: int = ALIGN,
) -> Encoders:
    """Encoders for `pairs`: replica id j initialises from stream j; size = setting's or n_c."""
    sizes = [s.encoding_size or cfg.n_c for s, _ in pairs]
    n_in = cfg.n_c + cfg.n_s + cfg.n_m
    return Encoders(n_in, cfg.hidden, sizes, [j for _, j in pairs], seed, device, align)


def batches_ahead(world: LatentModel, batch_size: int, floats: int = 1 << 22) -> int:
    """How many training batches to draw at once (at most 64, about `floats` numbers):
    on a GPU, one host-to-device copy serves that many steps."""
    per_batch = world.n_replicas * batch_size * (world.transform.shape[1] + world.n_s)
    return max(1, min(64, floats // per_batch))


def reference_info_nce(u: Tensor, v: Tensor, u_neg: Tensor, v_neg: Tensor) -> Tensor:
    """The reference code's loss, per replica `[R]`, similarity −‖·‖², τ = 1.

    Direction 1: ‖u_i − v_i‖² + log mean_j over B + 1 terms: exp(−‖u_i − u′_j‖²) for the
    B encodings u′ of a fresh batch of the *same* modality, and exp(−‖u_i − v_i‖²);
    direction 2 swaps the modalities; the loss is their average. Gradients flow into the
    negatives too.
    """

    def direction(a: Tensor, b: Tensor, neg: Tensor) -> Tensor:
        pos = (a - b).square().sum(-1)  # [R, B]
        # log Σ_j exp(−‖a_i − n_j‖²), then the positive term: one B × B matrix, no copy of it
        negs = torch.logsumexp(similarity(a, neg, "neg_sqdist"), -1)
        return (pos + torch.logaddexp(negs, -pos) - math.log(neg.shape[-2] + 1)).mean(-1)

    return 0.5 * (direction(u, v, u_neg) + direction(v, u, v_neg))


def contrastive_loss(
    encoders: Encoders,
    world: LatentModel,
    batch_size: int,
    streams: ReplicaStreams,
    objective: str = "clip",
    negatives: ReplicaStreams | None = None,
) -> Tensor:
    """The loss of one fresh batch per replica, `[R]`.

    `"clip"`: symmetric InfoNCE (similarity −‖·‖², τ = 1) with the other pairs of the
    batch, in the other modality, as negatives. `"reference"`: `reference_info_nce`, its
    negatives drawn from `negatives`.
    """
    check_choice("objective", objective, OBJECTIVES)
    batch = world.sample(batch_size, streams)
    u, v = encoders(batch["x1"], batch["x2"])
    if objective == "clip":
        return symmetric_info_nce(u, v, 1.0, "neg_sqdist")
    if negatives is None:
        raise ValueError("objective='reference' needs the negatives' streams")
    fresh = world.sample(batch_size, negatives)
    u_neg, v_neg = encoders(fresh["x1"], fresh["x2"])
    return reference_info_nce(u, v, u_neg, v_neg)


@dataclass
class IdentifiabilityRun:
    """Trained replicas, one per (setting, replica id) in the order of `replicas`."""

    replicas: list[tuple[Setting, int]]
    objective: str
    world: LatentModel
    encoders: Encoders
    history: History
    evaluation: Evaluation
    checkpoints: dict[int, Evaluation] = field(default_factory=dict)  # step → evaluation

    def rows(self, setting: Setting) -> list[int]:
        """The replica indices of one setting."""
        rows = [i for i, (s, _) in enumerate(self.replicas) if s == setting]
        if not rows:
            raise ValueError(f"setting {setting.name!r} was not trained in this run")
        return rows

    def r2(self, setting: Setting, kind: str = "kernel", modality: int = 1) -> Tensor:
        """R² of every block (`BLOCKS` order) for each replica of `setting`: `[n, 5]`."""
        check_choice("kind", kind, ("kernel", "linear"))
        check_choice("modality", modality, (1, 2))
        return getattr(self.evaluation, kind)[self.rows(setting), modality - 1]

    def oracle(self, setting: Setting) -> Tensor:
        """R²(s | c) of each replica of `setting`."""
        return self.evaluation.oracle[self.rows(setting)]


def run(
    cfg: IdentifiabilityConfig,
    pairs: Sequence[tuple[Setting, int]],
    seed: int = 0,
    device: torch.device | str = "cpu",
    objective: str | None = None,
    desc: str = "identifiability",
    checkpoints: Sequence[int] = (),
) -> IdentifiabilityRun:
    """Train every (setting, replica id) pair as one replica of a single batched model.

    `objective` defaults to `cfg.objective`. Each step draws a fresh batch per replica
    from its "data/train" stream (`batches_ahead` batches at a time). Every
    `cfg.track_every` steps the history records the linear R² of content and style from
    encoder 1 (`r2_c`, `r2_s`) on `cfg.track_points` pairs per split. At each step of
    `checkpoints` (multiples of `cfg.track_every`, below `cfg.steps`) it also runs the full
    `evaluate` (the run's `checkpoints`). Ends with `evaluate`.
    """
    objective = check_choice("objective", objective or cfg.objective, OBJECTIVES)
    every = cfg.track_every
    for step in checkpoints:
        if not every or step % every or not 0 < step < cfg.steps:
            raise ValueError(
                f"checkpoints: step {step} is not a multiple of track_every={every} "
                f"strictly between 0 and steps={cfg.steps}"
            )
    world = LatentModel(cfg, seed, device, pairs)
    encoders = make_encoders(cfg, pairs, seed, device)
    ahead = batches_ahead(world, cfg.batch_size)
    train_streams = world.streams("data/train", ahead)
    negatives = world.streams("data/negatives", ahead) if objective == "reference" else None
    track_streams = world.streams("data/track")
    held: dict[str, dict[str, Tensor]] = {}
    probe = {k: getattr(cfg, k) for k in ("n_val", "n_test", "kernel_points", "kernel_alphas")}
    saved: dict[int, Evaluation] = {}
    calls = [0]  # tracking evaluations so far: step = calls × track_every

    def objective_fn(_: Tensor | None) -> Tensor:
        return contrastive_loss(
            encoders, world, cfg.batch_size, train_streams, objective, negatives
        )

    def track() -> dict[str, Tensor]:
        if not held:
            held["val"], held["test"] = (
                world.sample(cfg.track_points, track_streams) for _ in range(2)
            )
        step, calls[0] = calls[0] * every, calls[0] + 1
        if step in checkpoints:
            saved[step] = evaluate(encoders, world, kernel_gammas=cfg.kernel_gammas, **probe)
        f_val, f_test = (encoders(held[k]["x1"], held[k]["x2"])[0] for k in ("val", "test"))
        return {
            f"r2_{b}": r2_scores(f_val, held["val"][b], f_test, held["test"][b]).mean(-1)
            for b in ("c", "s")
        }

    history = train(
        objective_fn,
        encoders,
        cfg.steps,
        lr=cfg.lr,
        clip_grad_norm=cfg.grad_clip,
        compile=cfg.compile,
        evaluate=track if cfg.track_every else None,
        eval_every=cfg.track_every,
        record_every=50,
        desc=desc,
    )
    evaluation = evaluate(encoders, world, kernel_gammas=cfg.kernel_gammas, **probe)
    return IdentifiabilityRun(list(pairs), objective, world, encoders, history, evaluation, saved)
