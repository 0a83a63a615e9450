"""Chapter 00's training: CLIP-style encoders, one replica per seed and temperature."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

from mmnb import clip
from mmnb.clip import ClipObjective
from mmnb.losses import LearnedTemperature
from mmnb.nets import MLP, Replicas, replica_ids
from mmnb.train import History, train
from mmnb.worlds.contrastive.config import ContrastiveConfig
from mmnb.worlds.contrastive.measures import held_out_measures
from mmnb.worlds.contrastive.world import PairedSample

__all__ = ["ClipObjective", "ClipSetup", "PairedFit", "clip_objective", "fit_encoders"]


@dataclass
class PairedFit:
    """Two trained encoders, their temperature module and the training history."""

    f: MLP
    g: MLP
    temperature: LearnedTemperature
    history: History


@dataclass(frozen=True)
class ClipSetup:
    """What chapter 00's CLIP objective is built from besides the config: the training
    pairs, one replica per entry of `taus` (its starting or fixed temperature, learned
    when `learn_temperature`), `replicas` their ids (default 0 … len(taus)-1) and the
    seed of their streams (initial weights, minibatch order)."""

    train_pairs: PairedSample
    taus: Sequence[float]
    learn_temperature: bool = True
    seed: int = 0
    replicas: Replicas | None = None

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.taus):
            raise ValueError(
                f"replicas: need one id per temperature ({len(self.taus)}), got {len(self.ids)}"
            )

    @property
    def ids(self) -> list[int]:
        """The replicas' ids."""
        return replica_ids(len(self.taus) if self.replicas is None else self.replicas)


def clip_objective(cfg: ContrastiveConfig, setup: ClipSetup) -> ClipObjective:
    """Chapter 00's CLIP objective (`mmnb.clip`) as `setup` says; the architecture (hidden,
    embed_dim) from `cfg`."""
    pairs = setup.train_pairs
    return clip.clip_objective(pairs.x, pairs.y, [cfg.hidden], cfg.embed_dim, setup.ids,
                               setup.seed, list(setup.taus), setup.learn_temperature)  # fmt: skip


def fit_encoders(
    cfg: ContrastiveConfig, setup: ClipSetup, test_pairs: PairedSample, desc: str = "training"
) -> PairedFit:
    """Train `clip_objective`'s encoders with the symmetric InfoNCE loss.

    Replicas with the same id share their initial weights and minibatch order. Reads
    the optimization settings (steps, lr, batch_size, eval_every) from `cfg`. The history
    records the loss, τ and, on the test pairs, `held_out_measures`: top-1 retrieval
    (x→y), alignment and uniformity.
    """
    run = clip_objective(cfg, setup)
    f, g = run.f, run.g

    def evaluate() -> dict[str, Tensor]:
        return held_out_measures(f(test_pairs.x), g(test_pairs.y))

    history = train(
        run.objective,
        run.modules(),
        cfg.steps,
        lr=cfg.lr,
        n_samples=len(setup.train_pairs.x),
        batch_size=cfg.batch_size,
        seed=setup.seed,
        replicas=setup.ids,
        evaluate=evaluate,
        eval_every=cfg.eval_every,
        desc=desc,
    )
    return PairedFit(f, g, run.temperature, history)
