"""Chapter 06's world: one Gaussian latent model, observed through two invertible mixings.

Content a ∈ ℝ^k (x's side) and b ∈ ℝ^k (y's side) are standard Gaussians with
corr(a_i, b_i) = ρ, independent across i: the modalities share their content up to a
small noise, so the pointwise mutual information is finite and known in closed form.
Each modality adds private latents s ~ N(0, I_m) and is an invertible mixing MLP
(`mmnb.mixing`) of (scale · content, s). Invertible maps leave PMI unchanged, so
PMI(x, y) = PMI(a, b). Entry points: `LensesWorld` (the world and its samples),
`fit_clip`, `fit_spectral`, `fit_single_modal` (the three models), and the closed forms
`gaussian_pmi` and `hermite_features`; the read-outs of the five lenses are in
`mmnb.worlds.lenses_readouts`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from mmnb import probes
from mmnb.config import WorldConfig, check_choice, check_range, knob
from mmnb.losses import LearnedTemperature, spectral_contrastive_loss, symmetric_info_nce
from mmnb.mixing import invertible_mlp, mix
from mmnb.nets import MLP, Replicas, encoder_pair, replica_ids
from mmnb.ranges import LEARNED_TEMPERATURE, LEARNING_RATE, SCALE, STEPS, WIDTH, Range
from mmnb.runtime import stream
from mmnb.train import History, train

__all__ = [
    "LensesConfig",
    "LensesSample",
    "LensesWorld",
    "TwoTowerFit",
    "augmentation_noise",
    "fit_clip",
    "fit_single_modal",
    "fit_spectral",
    "gaussian_pmi",
    "hermite_exponents",
    "hermite_features",
    "hermite_gram_variance",
    "mutual_information",
]


@dataclass(frozen=True)
class LensesConfig(WorldConfig):
    """Chapter 06's settings; the defaults are the "book" profile."""

    PAPER: ClassVar[dict] = dict(
        n_train=65536, n_test=2048, steps=3000, batch_size=1024, hidden=(256, 256),
    )  # fmt: skip

    content_dim: int = knob(2, Range(1, 8))  # k, dimension of the shared content
    private_dim: int = knob(4, Range(1, 64))  # m, private latents per modality
    content_corr: float = knob(0.9, Range(0.05, 0.995))  # ρ = corr(a_i, b_i)
    mixing_layers: int = knob(3, Range(1, 8))  # layers of each invertible mixing MLP
    content_scale: float = knob(1.0, Range(0.01, 10.0))  # scale of the content in x, y
    n_train: int = knob(4096, Range(256, 1_000_000))  # pairs of the finite training set
    n_test: int = knob(1024, Range(128, 8192))  # held-out pairs (also the PMI table)
    steps: int = knob(3000, STEPS)  # optimizer steps of every model
    batch_size: int = knob(256, Range(8, 8192))  # minibatch size
    lr: float = knob(3e-3, LEARNING_RATE)  # Adam learning rate
    hidden: tuple = knob((64, 64), WIDTH)  # hidden widths of the encoders
    embed_dim: int = knob(16, Range(2, 512))  # output dimension d (d ≫ k)
    tau_init: float = knob(1.0, LEARNED_TEMPERATURE)  # start of the learned τ
    fixed_tau: float = knob(1.0, LEARNED_TEMPERATURE)  # the large fixed τ of the control
    augment_noise: float = knob(0.5, Range(0.0, 10.0))  # single-modal view noise (× std)
    ood_private_scale: float = knob(3.0, SCALE)  # std of s at OOD test
    id_neighbors: int = knob(20, Range(3, 200))  # neighbours of the MLE dimension
    eval_every: int = knob(250, STEPS)  # steps between linear R² probes

    def check(self) -> None:
        check_range("batch_size", self.batch_size, 8, self.n_train, integer=True)
        check_range(
            "steps × batch_size (one-pass pairs)",
            self.steps * self.batch_size,
            1,
            4_000_000,
            integer=True,
        )
        check_range("embed_dim", self.embed_dim, self.content_dim + 1, 512, integer=True)


def gaussian_pmi(a: Tensor, b: Tensor, rho: float) -> Tensor:
    """PMI(a_i, b_j) for every pair, `[n, n']`, of standard Gaussians with corr ρ per coordinate.

    log p(a, b) / p(a) p(b) = Σ_c [−½ log(1 − ρ²) − (ρ²(a_c² + b_c²) − 2ρ a_c b_c) / (2(1 − ρ²))].
    """
    one = 1 - rho**2
    cross = a @ b.T
    squares = a.square().sum(1)[:, None] + b.square().sum(1)[None, :]
    return -0.5 * a.shape[1] * math.log(one) - (rho**2 * squares - 2 * rho * cross) / (2 * one)


def mutual_information(k: int, rho: float) -> float:
    """I(x; y) = I(a; b) = −(k/2) log(1 − ρ²) nats: the InfoNCE loss on batches of N fresh
    pairs cannot go below log N − I(x; y) in expectation, whatever the encoders."""
    return -0.5 * k * math.log(1 - rho**2)


def hermite_exponents(k: int, degree: int) -> list[tuple[int, ...]]:
    """The multi-indices of total degree `degree` in `k` variables, in the column order of
    `hermite_features`."""
    return [e for e in itertools.product(range(degree + 1), repeat=k) if sum(e) == degree]


def hermite_features(a: Tensor, degree: int) -> Tensor:
    """The orthonormal Hermite polynomials of total degree `degree` in the columns of `a`.

    For ρ-correlated standard Gaussians these are the singular functions of
    p(a, b) / p(a) p(b), with singular value ρ^degree (Mehler's formula).
    """
    he = [torch.ones_like(a), a]  # probabilists' Hermite He_0, He_1 of each coordinate
    for n in range(1, degree):
        he.append(a * he[n] - n * he[n - 1])
    cols = []
    for exps in hermite_exponents(a.shape[1], degree):
        col = torch.ones_like(a[:, 0])
        for c, e in enumerate(exps):
            col = col * he[e][:, c] / math.sqrt(math.factorial(e))
        cols.append(col)
    return torch.stack(cols, 1)


def hermite_gram_variance(k: int, degree: int) -> Tensor:
    """Var(h_i h_j) for the features h = `hermite_features(a, degree)` of a ~ N(0, I_k),
    `[F, F]` (float64): the variance of one term of the Monte Carlo Gram matrix hᵀh / n,
    whose entry (i, j) then has standard error √(Var / n). Exact: E[h_i² h_j²] factorizes
    over coordinates, and each factor is a polynomial of degree ≤ 4·degree, integrated by
    Gauss–Hermite quadrature with 2·degree + 1 nodes (exact to degree 4·degree + 1).
    For degree 3, Var(He₃(a₁)² / 6) = 93 − 1 = 92.
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(2 * degree + 1)
    weights = weights / weights.sum()  # the standard normal's quadrature
    h = [np.polynomial.hermite_e.hermeval(nodes, np.eye(degree + 1)[n])
         / math.sqrt(math.factorial(n)) for n in range(degree + 1)]  # fmt: skip
    # m[p, q] = E[h_p(x)² h_q(x)²] for one standard normal coordinate x
    m = np.array([[np.sum(weights * h[p] ** 2 * h[q] ** 2) for q in range(degree + 1)]
                  for p in range(degree + 1)])  # fmt: skip
    exps = hermite_exponents(k, degree)
    fourth = np.array([[math.prod(m[p, q] for p, q in zip(ei, ej, strict=True)) for ej in exps]
                       for ei in exps])  # fmt: skip
    return torch.as_tensor(fourth - np.eye(len(exps)))


@dataclass
class LensesSample:
    """Pairs (x, y) with their content a, b and private latents s_x, s_y."""

    x: Tensor
    y: Tensor
    a: Tensor
    b: Tensor
    s_x: Tensor
    s_y: Tensor


class LensesWorld:
    """Two invertible mixings of (scale · content, private latents), drawn once per seed."""

    def __init__(self, cfg: LensesConfig, seed: int, device: torch.device | str = "cpu") -> None:
        n = cfg.content_dim + cfg.private_dim
        mixing = stream(seed, "world/mixing")
        self.weights_x = invertible_mlp(n, cfg.mixing_layers, mixing.torch).to(device)
        self.weights_y = invertible_mlp(n, cfg.mixing_layers, mixing.torch).to(device)
        self.k, self.m, self.rho = cfg.content_dim, cfg.private_dim, cfg.content_corr
        self.scale = cfg.content_scale
        self.seed, self.device = seed, torch.device(device)

    def sample(self, n: int, purpose: str, private_scale: float = 1.0) -> LensesSample:
        """`n` pairs from the stream (world seed, `purpose`); the content enters as
        `content_scale` · a, the private latents with standard deviation `private_scale`."""
        draw = stream(self.seed, purpose, device=self.device)
        a = draw.randn(n, self.k)
        b = self.rho * a + math.sqrt(1 - self.rho**2) * draw.randn(n, self.k)
        s_x, s_y = private_scale * draw.randn(n, self.m), private_scale * draw.randn(n, self.m)
        x = mix(torch.cat([self.scale * a, s_x], 1), self.weights_x)
        y = mix(torch.cat([self.scale * b, s_y], 1), self.weights_y)
        return LensesSample(x=x, y=y, a=a, b=b, s_x=s_x, s_y=s_y)


@dataclass
class TwoTowerFit:
    """Encoders f (for x) and g (for y, absent for the single-modal model), τ and history."""

    f: MLP
    g: MLP | None
    temperature: LearnedTemperature | None
    history: History


def _train(
    objective,
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


def fit_clip(
    data: LensesSample,
    cfg: LensesConfig,
    learn: Sequence[bool],
    replicas: Replicas,
    seed: int,
    out_widths: Sequence[int] | None = None,
    probe: LensesSample | None = None,
    desc: str = "CLIP",
) -> TwoTowerFit:
    """Symmetric InfoNCE on cosine similarity; replica j learns τ (from `cfg.tau_init`)
    if `learn[j]`, else keeps `cfg.fixed_tau`, and keeps `out_widths[j]` of the
    `cfg.embed_dim` outputs (all by default). Replicas with the same id share their
    initial weights and minibatch order. With `probe` (held-out pairs), the history
    records how much of the content and of the private latents f keeps (linear R²)."""
    ids = replica_ids(replicas)
    dim = data.x.shape[1]
    f, g = encoder_pair(dim, dim, cfg.hidden, cfg.embed_dim, ids, seed, device=data.x.device,
                        out_widths=out_widths)  # fmt: skip
    inits = [cfg.tau_init if on else cfg.fixed_tau for on in learn]
    tau = LearnedTemperature(len(ids), init=inits, learn=list(learn)).to(data.x.device)

    def objective(batch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        t = tau()
        return symmetric_info_nce(f(data.x[batch]), g(data.y[batch]), t), {"tau": t}

    history = _train(objective, [f, g, tau], cfg, len(data.x), seed, ids, desc,
                     None if probe is None else (f, probe))  # fmt: skip
    return TwoTowerFit(f, g, tau, history)


def fit_spectral(
    data: LensesSample,
    cfg: LensesConfig,
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


VIEWS = ("noise", "resample")
AUGMENT_BLOCK = 100  # steps of augmentation noise a replica draws at once


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
    data: LensesSample,
    world: LensesWorld,
    cfg: LensesConfig,
    views: Sequence[str],
    replicas: Replicas,
    seed: int,
    desc: str = "single",
) -> TwoTowerFit:
    """SimCLR-style baselines on x alone: symmetric InfoNCE between two views, learned τ.

    Replica j's views are `views[j]`: "noise" adds Gaussian noise of `cfg.augment_noise`
    times each coordinate's standard deviation to x (a generic augmentation, which keeps
    the private latents); "resample" redraws the private latents s_x of both views (an
    ideal augmentation, which changes only what is not content). Augmentations come from
    the stream (seed, "augment", r) of replica id r (`augmentation_noise`).
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
