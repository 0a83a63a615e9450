"""Chapter 00's training: CLIP-style encoders, one replica per seed and temperature."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import Tensor

from mmnb.losses import LearnedTemperature, symmetric_info_nce
from mmnb.nets import MLP, Replicas, encoder_pair, replica_ids
from mmnb.train import History, train
from mmnb.worlds.contrastive.config import ContrastiveConfig
from mmnb.worlds.contrastive.measures import held_out_measures
from mmnb.worlds.contrastive.world import PairedSample

__all__ = ["ClipObjective", "PairedFit", "clip_objective", "fit_encoders"]


@dataclass
class PairedFit:
    """Two trained encoders, their temperature module and the training history."""

    f: MLP
    g: MLP
    temperature: LearnedTemperature
    history: History


@dataclass
class ClipObjective:
    """The encoders, temperature and loss that `fit_encoders` trains: one optimizer step
    is `objective(batch)[0].sum()`, batch `[R, B]` indices of the training pairs."""

    f: MLP
    g: MLP
    temperature: LearnedTemperature
    objective: Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]]


def clip_objective(
    cfg: ContrastiveConfig,
    train_pairs: PairedSample,
    taus: Sequence[float],
    learn_temperature: bool = True,
    seed: int = 0,
    replicas: Replicas | None = None,
) -> ClipObjective:
    """Encoders f (for x) and g (for y) and the symmetric InfoNCE loss on `train_pairs`,
    one replica per entry of `taus` (its starting or fixed temperature); `replicas` are
    their ids (default 0 … len(taus)-1). Reads the architecture (hidden, embed_dim)."""
    ids = replica_ids(len(taus) if replicas is None else replicas)
    if len(ids) != len(taus):
        raise ValueError(f"replicas: need one id per temperature ({len(taus)}), got {len(ids)}")
    x_dim, y_dim, device = train_pairs.x.shape[1], train_pairs.y.shape[1], train_pairs.x.device
    f, g = encoder_pair(x_dim, y_dim, [cfg.hidden], cfg.embed_dim, ids, seed, device=device)
    tau = LearnedTemperature(len(ids), init=list(taus), learn=learn_temperature).to(device)

    def objective(batch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        t = tau()
        return symmetric_info_nce(f(train_pairs.x[batch]), g(train_pairs.y[batch]), t), {"tau": t}

    return ClipObjective(f, g, tau, objective)


def fit_encoders(
    cfg: ContrastiveConfig,
    train_pairs: PairedSample,
    test_pairs: PairedSample,
    taus: Sequence[float],
    learn_temperature: bool = True,
    seed: int = 0,
    replicas: Replicas | None = None,
    desc: str = "training",
) -> PairedFit:
    """Train `clip_objective`'s encoders with the symmetric InfoNCE loss.

    Replicas with the same id share their initial weights and minibatch order. Reads
    the optimization settings (steps, lr, batch_size, eval_every) from `cfg`. The history
    records the loss, τ and, on the test pairs, `held_out_measures`: top-1 retrieval
    (x→y), alignment and uniformity.
    """
    ids = replica_ids(len(taus) if replicas is None else replicas)
    run = clip_objective(cfg, train_pairs, taus, learn_temperature, seed, ids)
    f, g = run.f, run.g

    def evaluate() -> dict[str, Tensor]:
        return held_out_measures(f(test_pairs.x), g(test_pairs.y))

    history = train(
        run.objective,
        [f, g, run.temperature],
        cfg.steps,
        lr=cfg.lr,
        n_samples=len(train_pairs.x),
        batch_size=cfg.batch_size,
        seed=seed,
        replicas=ids,
        evaluate=evaluate,
        eval_every=cfg.eval_every,
        desc=desc,
    )
    return PairedFit(f, g, run.temperature, history)
