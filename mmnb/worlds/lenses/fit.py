"""Chapter 06's three models on the lenses world: CLIP, spectral, single-modal SimCLR.

Every entry point takes the config first and returns a `TwoTowerFit` that carries its
training `history`; CLIP's data, temperatures and replicas come as one `ClipSetup`, which
`clip_objective` (the world's own objective) and `fit_clip` share. Replicas with the same
id share their initial weights, minibatch order and (single-modal) augmentations,
whichever replicas train beside them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from mmnb import clip, probes
from mmnb.clip import ClipObjective
from mmnb.config import check_choice
from mmnb.losses import LearnedTemperature, spectral_contrastive_loss, symmetric_info_nce
from mmnb.mixing import mix
from mmnb.nets import MLP, Replicas, encoder_pair, replica_ids
from mmnb.runtime import stream
from mmnb.train import History, train
from mmnb.worlds.lenses.config import LensesConfig
from mmnb.worlds.lenses.world import LensesSample, LensesWorld

__all__ = [
    "AUGMENT_BLOCK",
    "VIEWS",
    "ClipObjective",
    "ClipSetup",
    "TwoTowerFit",
    "augmentation_noise",
    "clip_objective",
    "fit_clip",
    "fit_single_modal",
    "fit_spectral",
]

VIEWS = ("noise", "resample")
AUGMENT_BLOCK = 100  # steps of augmentation noise a replica draws at once


@dataclass
class TwoTowerFit:
    """Encoders f (for x) and g (for y, absent for the single-modal model), τ and history."""

    f: MLP
    g: MLP | None
    temperature: LearnedTemperature | None
    history: History


def _train(
    objective: Callable,
    parameters: list,
    cfg: LensesConfig,
    n: int,
    seed: int,
    ids: list[int],
    desc: str,
    probe: tuple[MLP, LensesSample] | None = None,
) -> History:
    """`mmnb.train` with the config's settings; with `probe = (f, sample)`, every
    `cfg.eval_every` steps the history records the linear R² of the content a and of the
    private s_x from the normalized f(x) (first half fits, second half scores)."""

    def evaluate() -> dict[str, Tensor]:
        f, sample = probe
        u = torch.nn.functional.normalize(f(sample.x), dim=-1)
        half = u.shape[1] // 2
        targets = {"r2_content": sample.a, "r2_private": sample.s_x}
        return {
            name: probes.r2_scores(u[:, :half], t[:half].expand(len(u), -1, -1), u[:, half:],
                                   t[half:].expand(len(u), -1, -1), "linear").mean(-1)
            for name, t in targets.items()
        }  # fmt: skip

    return train(
        objective, parameters, cfg.steps, lr=cfg.lr, n_samples=n, batch_size=cfg.batch_size,
        seed=seed, replicas=ids, desc=desc, evaluate=None if probe is None else evaluate,
        eval_every=cfg.eval_every,
    )  # fmt: skip


@dataclass(frozen=True)
class ClipSetup:
    """What chapter 06's CLIP model is built from besides the config: the training pairs
    `data`; replica j learns τ if `learn[j]`; `replicas` the replicas' ids (or how many);
    the seed of their streams; replica j keeps `out_widths[j]` outputs (all by default)."""

    data: LensesSample
    learn: Sequence[bool]
    replicas: Replicas
    seed: int
    out_widths: Sequence[int] | None = None


def clip_objective(cfg: LensesConfig, setup: ClipSetup) -> ClipObjective:
    """Chapter 06's CLIP objective (`mmnb.clip`) as `setup` says: a learned τ starts at
    `cfg.tau_init`, a frozen one keeps `cfg.fixed_tau`, of `cfg.embed_dim` outputs."""
    x, y = setup.data.x, setup.data.y
    inits = [cfg.tau_init if on else cfg.fixed_tau for on in setup.learn]
    return clip.clip_objective(x, y, cfg.hidden, cfg.embed_dim, replica_ids(setup.replicas),
                               setup.seed, inits, list(setup.learn), setup.out_widths)  # fmt: skip


def fit_clip(
    cfg: LensesConfig, setup: ClipSetup, probe: LensesSample | None = None, desc: str = "CLIP"
) -> TwoTowerFit:
    """Train `clip_objective`'s encoders (replicas with the same id share their initial
    weights and minibatch order). With `probe` (held-out pairs), the history records how
    much of the content and of the private latents f keeps (linear R²)."""
    run, ids = clip_objective(cfg, setup), replica_ids(setup.replicas)
    history = _train(run.objective, run.modules(), cfg, len(setup.data.x), setup.seed, ids,
                     desc, None if probe is None else (run.f, probe))  # fmt: skip
    return TwoTowerFit(run.f, run.g, run.temperature, history)


def fit_spectral(
    cfg: LensesConfig,
    data: LensesSample,
    out_widths: Sequence[int],
    replicas: Replicas,
    seed: int,
    desc: str = "spectral",
) -> TwoTowerFit:
    """The spectral contrastive loss of chapter 02 on the same encoders; replica j keeps
    `out_widths[j]` output coordinates."""
    ids = replica_ids(replicas)
    dim = data.x.shape[1]
    f, g = encoder_pair(
        dim, dim, cfg.hidden, cfg.embed_dim, ids, seed, device=data.x.device,
        out_widths=out_widths,
    )  # fmt: skip

    def objective(batch: Tensor) -> Tensor:
        return spectral_contrastive_loss(f(data.x[batch]), g(data.y[batch]))

    history = _train(objective, [f, g], cfg, len(data.x), seed, ids, desc)
    return TwoTowerFit(f, g, None, history)


def augmentation_noise(
    ids: Sequence[int], seed: int, shape: tuple[int, ...], device: torch.device | str = "cpu"
) -> Iterator[Tensor]:
    """An endless iterator of standard normal noise, one `[R, *shape]` tensor per step.

    Replica r draws `AUGMENT_BLOCK` steps at a time from its own stream (seed, "augment",
    r), so its noise does not depend on which replicas train beside it, and the training
    loop makes no Python call per replica.
    """
    gens = [stream(seed, "augment", r).device_generator(device) for r in ids]
    while True:
        draws = [torch.randn(AUGMENT_BLOCK, *shape, generator=g, device=device) for g in gens]
        yield from torch.stack(draws, 1).unbind(0)


def fit_single_modal(
    cfg: LensesConfig,
    world: LensesWorld,
    data: LensesSample,
    views: Sequence[str],
    replicas: Replicas,
    seed: int,
    desc: str = "single",
) -> TwoTowerFit:
    """SimCLR-style baselines on x alone: symmetric InfoNCE between two views, learned τ.

    Replica j's views are `views[j]`: "noise" adds Gaussian noise of `cfg.augment_noise`
    times each coordinate's standard deviation to x (a generic augmentation, which keeps
    the private latents); "resample" redraws the private latents s_x of both views through
    `world`'s mixing (an ideal augmentation, which changes only what is not content).
    Augmentations come from the stream (seed, "augment", r) of replica id r
    (`augmentation_noise`).
    """
    for j, v in enumerate(views):
        check_choice(f"views[{j}]", v, VIEWS)
    ids = replica_ids(replicas)
    x, device = data.x, data.x.device
    dim, m = x.shape[1], world.m
    f = MLP(dim, cfg.hidden, cfg.embed_dim, ids, seed, device=device,
            purpose="init/encoder_x")  # fmt: skip
    tau = LearnedTemperature(len(ids), init=cfg.tau_init).to(device)
    noise = cfg.augment_noise * x.std(0)
    resample = torch.tensor([v == "resample" for v in views], device=device)[:, None, None, None]
    draws = augmentation_noise(ids, seed, (2, cfg.batch_size, dim + m), device)

    def views_of(batch: Tensor) -> Tensor:
        """Both views of every pair of the batch, `[R, 2, B, dim]`."""
        eps = next(draws)
        noisy = x[batch][:, None] + noise * eps[..., :dim]
        content = (world.scale * data.a[batch])[:, None].expand(-1, 2, -1, -1)
        redrawn = mix(torch.cat([content, eps[..., dim:]], -1), world.weights_x)
        return torch.where(resample, redrawn, noisy)

    def objective(batch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        t = tau()
        z = f(views_of(batch).flatten(1, 2)).unflatten(1, (2, -1))  # one pass for both views
        return symmetric_info_nce(z[:, 0], z[:, 1], t), {"tau": t}

    history = _train(objective, [f, tau], cfg, len(x), seed, ids, desc)
    return TwoTowerFit(f, None, tau, history)
