"""Chapter 00's world: two modalities generated from one shared latent.

z ~ N(0, I_k) is shared; each modality has private latents s ~ N(0, I_p) and is a
fixed random nonlinear mixture x = tanh(A z + B s) plus observation noise.
Only z links the two modalities, so it is all a contrastive model can align.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from torch import Tensor

from mmnb.losses import LearnedTemperature, symmetric_info_nce
from mmnb.nets import MLP
from mmnb.params import check_range
from mmnb.probes import alignment, topk_retrieval, uniformity
from mmnb.train import History, train

__all__ = ["PROFILES", "PairedFit", "PairedSample", "PairedWorld", "fit_encoders"]


@dataclass
class PairedSample:
    """`n` paired observations, the shared latent z and the private latents."""

    x: Tensor
    y: Tensor
    z: Tensor
    s_x: Tensor
    s_y: Tensor


class PairedWorld:
    """A fixed pair of random mixing maps; `sample(n)` draws pairs on `device`."""

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
        gen = torch.Generator().manual_seed(seed)
        k, p = shared_dim, private_dim
        self.mix_x = torch.randn(k + p, x_dim, generator=gen) / (k + p) ** 0.5
        self.mix_y = torch.randn(k + p, y_dim, generator=gen) / (k + p) ** 0.5
        self.mix_x, self.mix_y = self.mix_x.to(device), self.mix_y.to(device)
        self.shared_dim, self.private_dim, self.noise = k, p, noise
        self.device = torch.device(device)

    def sample(self, n: int, seed: int = 0) -> PairedSample:
        """Draw `n` pairs (x, y) with their shared latent z."""
        gen = torch.Generator(device=self.device).manual_seed(seed)

        def normal(*shape: int) -> Tensor:
            return torch.randn(*shape, generator=gen, device=self.device)

        z = normal(n, self.shared_dim)
        s_x, s_y = normal(n, self.private_dim), normal(n, self.private_dim)
        x = torch.tanh(torch.cat([z, s_x], 1) @ self.mix_x)
        y = torch.tanh(torch.cat([z, s_y], 1) @ self.mix_y)
        x = x + self.noise * normal(*x.shape)
        y = y + self.noise * normal(*y.shape)
        return PairedSample(x=x, y=y, z=z, s_x=s_x, s_y=s_y)


PROFILES = {
    "book": dict(
        n_train=4096,
        n_test=512,
        steps=800,
        batch_size=256,
        lr=3e-3,
        hidden=64,
        embed_dim=8,
        tau_init=1.0,
        eval_every=40,
    ),
    "paper": dict(
        n_train=65536,
        n_test=2048,
        steps=5000,
        batch_size=1024,
        lr=1e-3,
        hidden=256,
        embed_dim=32,
        tau_init=1.0,
        eval_every=100,
    ),
}


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
    cfg: SimpleNamespace,
    taus: Sequence[float],
    learn_temperature: bool = True,
    seed: int = 0,
    desc: str = "training",
) -> PairedFit:
    """Train encoders f (for x) and g (for y) with the symmetric InfoNCE loss.

    One replica per entry of `taus` (the starting or fixed temperature of that
    replica); replica r is seeded with `seed + r`. The history records the loss, τ
    and, on the test pairs, top-1 retrieval (x→y), alignment and uniformity.
    """
    n = len(taus)
    device = train_pairs.x.device
    f = MLP(train_pairs.x.shape[1], [cfg.hidden], cfg.embed_dim, n, seed, device=device)
    g = MLP(train_pairs.y.shape[1], [cfg.hidden], cfg.embed_dim, n, seed + 10_000, device=device)
    tau = LearnedTemperature(n, init=list(taus), learn=learn_temperature).to(device)

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
        evaluate=evaluate,
        eval_every=cfg.eval_every,
        desc=desc,
    )
    return PairedFit(f, g, tau, history)
