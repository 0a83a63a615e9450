"""Chapter 00's world: two modalities generated from one shared latent.

z ~ N(0, I_k) is shared; each modality has private latents s ~ N(0, I_p) and is a
fixed random nonlinear mixture x = tanh([z, s] A) plus observation noise.
Only z links the two modalities, so it is all a contrastive model can align.
Entry points: `PairedWorld.from_config` (the world), `PairedWorld.sample` (pairs) and
`fit_encoders` (CLIP-style training, one replica per seed and temperature).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from mmnb.config import WorldConfig, check_range, knob
from mmnb.losses import LearnedTemperature, symmetric_info_nce
from mmnb.nets import MLP, Replicas, encoder_pair, replica_ids
from mmnb.probes import alignment, topk_retrieval, uniformity
from mmnb.ranges import LEARNED_TEMPERATURE, LEARNING_RATE, STEPS, WIDTH, Range
from mmnb.runtime import stream
from mmnb.train import History, train

__all__ = ["PairedConfig", "PairedFit", "PairedSample", "PairedWorld", "fit_encoders"]


@dataclass(frozen=True)
class PairedConfig(WorldConfig):
    """Chapter 00's settings; the defaults are the "book" profile."""

    PAPER: ClassVar[dict] = dict(
        n_train=65536, n_test=2048, steps=5000, batch_size=1024, lr=1e-3, hidden=256,
        embed_dim=32, eval_every=100,
    )  # fmt: skip

    shared_dim: int = knob(4, Range(1, 256))  # k, dimension of the shared latent z
    private_dim: int = knob(4, Range(1, 256))  # p, dimension of each private latent
    x_dim: int = knob(16, Range(1, 4096))  # dimension of the observation x
    y_dim: int = knob(16, Range(1, 4096))  # dimension of the observation y
    noise: float = knob(0.1, Range(0.0, 10.0))  # std of the observation noise
    n_train: int = knob(4096, Range(16, 1_000_000))  # training pairs
    n_test: int = knob(512, Range(16, 100_000))  # held-out pairs
    steps: int = knob(800, STEPS)  # optimizer steps
    batch_size: int = knob(256, Range(2, 65_536))  # minibatch size N
    lr: float = knob(3e-3, LEARNING_RATE)  # Adam learning rate
    hidden: int = knob(64, WIDTH)  # width of the encoders' hidden layer
    embed_dim: int = knob(8, Range(1, 1024))  # output dimension d
    tau_init: float = knob(1.0, LEARNED_TEMPERATURE)  # starting learned temperature
    fixed_taus: tuple = knob((0.03, 0.1, 0.3, 1.0), LEARNED_TEMPERATURE)  # frozen τs
    eval_every: int = knob(40, STEPS)  # steps between evaluations

    def check(self) -> None:
        check_range("batch_size", self.batch_size, 2, self.n_train, integer=True)


@dataclass
class PairedSample:
    """`n` paired observations, the shared latent z and the private latents."""

    x: Tensor
    y: Tensor
    z: Tensor
    s_x: Tensor
    s_y: Tensor


class PairedWorld:
    """A fixed pair of random mixing maps; `sample(n, seed, purpose)` draws pairs."""

    def __init__(
        self,
        shared_dim: int = 4,
        private_dim: int = 4,
        x_dim: int = 16,
        y_dim: int = 16,
        noise: float = 0.1,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        for name, value in [
            ("shared_dim", shared_dim),
            ("private_dim", private_dim),
            ("x_dim", x_dim),
            ("y_dim", y_dim),
        ]:
            check_range(name, value, 1, None, integer=True)
        check_range("noise", noise, 0.0, None)
        k, p = shared_dim, private_dim
        mixing = stream(seed, "world/mixing", device=device)
        self.mix_x = mixing.randn(k + p, x_dim) / (k + p) ** 0.5
        self.mix_y = mixing.randn(k + p, y_dim) / (k + p) ** 0.5
        self.shared_dim, self.private_dim, self.noise = k, p, noise
        self.seed, self.device = seed, torch.device(device)

    @classmethod
    def from_config(cls, cfg: PairedConfig, seed: int, device: torch.device | str) -> PairedWorld:
        return cls(cfg.shared_dim, cfg.private_dim, cfg.x_dim, cfg.y_dim, cfg.noise, seed, device)

    def sample(self, n: int, purpose: str = "data/train") -> PairedSample:
        """Draw `n` pairs (x, y) with their latents from the stream (world seed, `purpose`)."""
        draw = stream(self.seed, purpose, device=self.device)
        z = draw.randn(n, self.shared_dim)
        s_x, s_y = draw.randn(n, self.private_dim), draw.randn(n, self.private_dim)
        x = torch.tanh(torch.cat([z, s_x], 1) @ self.mix_x)
        y = torch.tanh(torch.cat([z, s_y], 1) @ self.mix_y)
        x = x + self.noise * draw.randn(*x.shape)
        y = y + self.noise * draw.randn(*y.shape)
        return PairedSample(x=x, y=y, z=z, s_x=s_x, s_y=s_y)


@dataclass
class PairedFit:
    """Two trained encoders, their temperature module and the training history."""

    f: MLP
    g: MLP
    temperature: LearnedTemperature
    history: History


def fit_encoders(
    train_pairs: PairedSample,
    test_pairs: PairedSample,
    cfg: PairedConfig,
    taus: Sequence[float],
    learn_temperature: bool = True,
    seed: int = 0,
    replicas: Replicas | None = None,
    desc: str = "training",
) -> PairedFit:
    """Train encoders f (for x) and g (for y) with the symmetric InfoNCE loss.

    One replica per entry of `taus` (the starting or fixed temperature of that
    replica); `replicas` are their ids (default 0 … len(taus)-1): replicas with the same
    id share their initial weights and minibatch order. Reads the architecture
    (hidden, embed_dim) and the optimization settings (steps, lr, batch_size,
    eval_every) from `cfg`. The history records the loss, τ and, on the test pairs,
    top-1 retrieval (x→y), alignment and uniformity.
    """
    ids = replica_ids(len(taus) if replicas is None else replicas)
    if len(ids) != len(taus):
        raise ValueError(f"replicas: need one id per temperature ({len(taus)}), got {len(ids)}")
    x_dim, y_dim, device = train_pairs.x.shape[1], train_pairs.y.shape[1], train_pairs.x.device
    f, g = encoder_pair(x_dim, y_dim, [cfg.hidden], cfg.embed_dim, ids, seed, device=device)
    tau = LearnedTemperature(len(ids), init=list(taus), learn=learn_temperature).to(device)

    def objective(batch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        t = tau()
        return symmetric_info_nce(f(train_pairs.x[batch]), g(train_pairs.y[batch]), t), {"tau": t}

    def evaluate() -> dict[str, Tensor]:
        u, v = f(test_pairs.x), g(test_pairs.y)
        return {
            "top1": topk_retrieval(u, v),
            "alignment": alignment(u, v),
            "uniformity": uniformity(u),
        }

    history = train(
        objective,
        [f, g, tau],
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
    return PairedFit(f, g, tau, history)
