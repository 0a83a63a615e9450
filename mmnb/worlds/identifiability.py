"""Chapter 04's experiment: multimodal contrastive learning block-identifies the content.

The world (Daunhawer et al., 2023) lives in `identifiability_latents`: content c shared
by two modalities, style s perturbed in the second, modality-specific m1, m2, and two
different invertible mixings. This module holds the chapter's config, the paper's table
of settings, the encoders and the two contrastive objectives, the R² evaluation and the
entry point `run`, which trains every (setting, replica id) pair as one replica of a
single batched model and returns an `IdentifiabilityRun` with its `history`.

Random streams (seed = the chapter's seed, j = a replica id): world draws
"world/…" (j), encoder init "init/encoder_x|y" (j), training batches "data/train" (j),
the reference objective's negatives "data/negatives" (j), tracking pairs "data/track"
(j), evaluation pairs "data/val" and "data/test" (j).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from mmnb.config import WorldConfig, check_choice, knob
from mmnb.losses import similarity, symmetric_info_nce
from mmnb.nets import encoder_pair
from mmnb.probes import r2_scores
from mmnb.ranges import WIDTH, Range
from mmnb.train import History, train
from mmnb.worlds.identifiability_eval import Evaluation, direction_r2, encode, evaluate
from mmnb.worlds.identifiability_latents import (
    BLOCKS,
    LatentModel,
    ReplicaStreams,
    Setting,
    make_latent_model,
)

__all__ = [
    "BLOCKS",
    "OBJECTIVES",
    "Encoders",
    "Evaluation",
    "IdentifiabilityConfig",
    "IdentifiabilityRun",
    "LatentModel",
    "Setting",
    "batches_ahead",
    "contrastive_loss",
    "direction_r2",
    "encode",
    "evaluate",
    "latent_model",
    "make_encoders",
    "replicas",
    "run",
    "table",
]

OBJECTIVES = ("clip", "reference")


@dataclass(frozen=True)
class IdentifiabilityConfig(WorldConfig):
    """The chapter's settings; defaults are the "book" profile, `PAPER` the paper's changes."""

    PAPER: ClassVar[dict] = {
        "n_c": 5,
        "n_s": 5,
        "n_m": 5,
        "mixing_layers": 3,
        "hidden": (150, 750, 750, 750, 750, 150),
        "lr": 1e-4,
        "batch_size": 6144,
        "steps": 300_001,
        "compile": True,  # fused elementwise work: 1.2× faster per step on a CPU
        "n_val": 20_480,
        "n_test": 20_480,
        "kernel_points": 20_480,
        "kernel_alphas": (1.0, 0.1, 0.01, 0.001),
        "kernel_gammas": tuple(float(g) for g in np.logspace(-2, 2, 4)),
        "sweep_sizes": tuple(range(1, 16)),
        "sweep_seeds": 3,
    }

    # the world
    n_c: int = knob(3, Range(1, 32))  # content dimensions (= the encoding size)
    n_s: int = knob(3, Range(1, 32))  # style dimensions
    n_m: int = knob(3, Range(1, 32))  # modality-specific dimensions per modality
    p_chg: float = knob(0.75, Range(0.5, 1.0))  # P(style changes), partial-change rows
    mixing_layers: int = knob(2, Range(1, 8))  # layers of each mixing MLP
    cond_draws: int = knob(25_000, Range(1000, 1_000_000))  # draws for the cond. quantile
    cond_ratio: float = knob(0.001, Range(1e-4, 0.5))  # kept quantile of condition numbers
    # training
    objective: str = knob("clip", OBJECTIVES)  # main loss: CLIP's or the reference's
    hidden: tuple = knob((128, 128, 128), WIDTH)  # hidden widths of the encoders
    lr: float = knob(1e-3, Range(1e-6, 0.1))  # Adam learning rate
    batch_size: int = knob(128, Range(16, 65_536))  # fresh pairs per step
    steps: int = knob(2000, Range(1, 400_000))  # optimizer steps (paper profile: 300,001)
    grad_clip: float = knob(2.0, Range(1e-3, 1e3))  # per-replica gradient-norm clip
    compile: bool = knob(False)  # torch.compile the objective
    track_evals: int = knob(8, Range(0, 1000))  # held-out R² evaluations while training
    track_points: int = knob(1024, Range(100, 100_000))  # pairs per tracking split
    # evaluation
    n_val: int = knob(2048, Range(100, 1_000_000))  # pairs to fit the regressions
    n_test: int = knob(2048, Range(100, 1_000_000))  # pairs to score them
    kernel_points: int = knob(1000, Range(100, 50_000))  # kernel-ridge training pairs
    kernel_alphas: tuple = knob((1.0,), Range(1e-8, 1e4))  # kernel-ridge penalties
    kernel_gammas: tuple = knob((0.1,), Range(1e-6, 1e4))  # RBF bandwidths
    # side experiments
    sweep_sizes: tuple = knob((1, 2, 3, 4, 6, 9), Range(1, 256))  # encoding sizes swept, + n_c
    sweep_seeds: int = knob(1, Range(1, 16))  # replica ids per swept size
    leak_df_factors: tuple = knob((1, 3, 10), Range(1, 1000))  # Wishart df / n of the leak doses
    leak_seeds: int = knob(4, Range(1, 16))  # replica ids per dose

    def check(self) -> None:
        if self.kernel_points > self.n_val:
            raise ValueError(
                f"kernel_points={self.kernel_points} is out of range; allowed: at most "
                f"n_val={self.n_val}"
            )

    @property
    def track_every(self) -> int:
        """Steps between two tracking evaluations (0: no tracking)."""
        return max(1, self.steps // self.track_evals) if self.track_evals else 0


def table(p_chg: float) -> tuple[Setting, ...]:
    """The paper's five rows: style always changing or with probability `p_chg`, with and
    without statistical and causal dependence; the last is the default setting."""
    return (
        Setting(1.0),
        Setting(1.0, causal=True),
        Setting(1.0, statistical=True),
        Setting(p_chg),
        Setting(p_chg, statistical=True, causal=True),
    )


def replicas(settings: Sequence[Setting], n_ids: int) -> list[tuple[Setting, int]]:
    """Every (setting, replica id) pair, ids `0 … n_ids − 1` for each setting."""
    return [(s, j) for s in settings for j in range(n_ids)]


def latent_model(
    cfg: IdentifiabilityConfig,
    pairs: Sequence[tuple[Setting, int]],
    seed: int,
    device: torch.device | str = "cpu",
) -> LatentModel:
    """The latent model of `pairs` at the config's sizes and mixing."""
    sizes = {k: getattr(cfg, k) for k in ("n_c", "n_s", "n_m", "mixing_layers", "cond_draws")}
    settings, ids = [s for s, _ in pairs], [j for _, j in pairs]
    return make_latent_model(settings, ids, seed, cond_ratio=cfg.cond_ratio, device=device, **sizes)


# --- encoders and the two objectives ----------------------------------------------------------


class Encoders(nn.Module):
    """The encoders g1, g2 of R replicas (LeakyReLU(0.01) MLPs from `mmnb.nets.encoder_pair`);
    replica r keeps its first `sizes[r]` outputs (`out_widths`)."""

    def __init__(
        self,
        n_in: int,
        hidden: Sequence[int],
        sizes: Sequence[int],
        ids: Sequence[int],
        seed: int,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        widths = None if len(set(sizes)) == 1 else list(sizes)
        self.g1, self.g2 = encoder_pair(
            n_in, n_in, hidden, max(sizes), list(ids), seed,
            activation="leaky_relu", device=device, out_widths=widths,
        )  # fmt: skip

    def forward(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
        return self.g1(x1), self.g2(x2)


def make_encoders(
    cfg: IdentifiabilityConfig,
    pairs: Sequence[tuple[Setting, int]],
    seed: int,
    device: torch.device | str | None = None,
) -> Encoders:
    """Encoders for `pairs`: replica id j initialises from stream j; size = setting's or n_c."""
    sizes = [s.encoding_size or cfg.n_c for s, _ in pairs]
    n_in = cfg.n_c + cfg.n_s + cfg.n_m
    return Encoders(n_in, cfg.hidden, sizes, [j for _, j in pairs], seed, device)


def batches_ahead(model: LatentModel, batch_size: int, floats: int = 1 << 22) -> int:
    """How many training batches to draw at once (at most 64, about `floats` numbers):
    on a GPU, one host-to-device copy serves that many steps."""
    per_batch = model.n_replicas * batch_size * (model.transform.shape[1] + model.n_s)
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
    model: LatentModel,
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
    batch = model.sample(batch_size, streams)
    u, v = encoders(batch["x1"], batch["x2"])
    if objective == "clip":
        return symmetric_info_nce(u, v, 1.0, "neg_sqdist")
    if negatives is None:
        raise ValueError("objective='reference' needs the negatives' streams")
    fresh = model.sample(batch_size, negatives)
    u_neg, v_neg = encoders(fresh["x1"], fresh["x2"])
    return reference_info_nce(u, v, u_neg, v_neg)


# --- the experiment ---------------------------------------------------------------------------


@dataclass
class IdentifiabilityRun:
    """Trained replicas, one per (setting, replica id) in the order of `replicas`."""

    replicas: list[tuple[Setting, int]]
    objective: str
    model: LatentModel
    encoders: Encoders
    history: History
    evaluation: Evaluation

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
) -> IdentifiabilityRun:
    """Train every (setting, replica id) pair as one replica of a single batched model.

    `objective` defaults to `cfg.objective`. Each step draws a fresh batch per replica
    from its "data/train" stream (`batches_ahead` batches at a time). Every
    `cfg.track_every` steps the history records the linear R² of content and style from
    encoder 1 (`r2_c`, `r2_s`) on `cfg.track_points` pairs per split. Ends with `evaluate`.
    """
    objective = check_choice("objective", objective or cfg.objective, OBJECTIVES)
    model = latent_model(cfg, pairs, seed, device)
    encoders = make_encoders(cfg, pairs, seed, device)
    ahead = batches_ahead(model, cfg.batch_size)
    train_streams = model.streams(seed, "data/train", ahead)
    negatives = model.streams(seed, "data/negatives", ahead) if objective == "reference" else None
    track_streams = model.streams(seed, "data/track")
    held: dict[str, dict[str, Tensor]] = {}

    def objective_fn(_: Tensor | None) -> Tensor:
        return contrastive_loss(
            encoders, model, cfg.batch_size, train_streams, objective, negatives
        )

    def track() -> dict[str, Tensor]:
        if not held:
            held["val"], held["test"] = (
                model.sample(cfg.track_points, track_streams) for _ in range(2)
            )
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
    probe = {k: getattr(cfg, k) for k in ("n_val", "n_test", "kernel_points", "kernel_alphas")}
    evaluation = evaluate(encoders, model, seed, kernel_gammas=cfg.kernel_gammas, **probe)
    return IdentifiabilityRun(list(pairs), objective, model, encoders, history, evaluation)
