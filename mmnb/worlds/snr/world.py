"""Chapter 01's world: signal and noise patches in two modalities (Huang et al., 2024).

Each sample has a label y in {-1, +1} and two patches in R^d:

* modality 1 ("image"): x = [y·μ, ξ] with ξ ~ N(0, σ_ξ² I_d);
* modality 2 ("text"): x̃ = [y·μ̃, ξ̃], same label, independent noise, ‖μ̃‖ = C_μ‖μ‖;
* the single-modal positive (augmentation): x̂ = [y·μ, ξ + ε] with ε ~ N(0, σ_ε² I_d);
* the out-of-distribution test set: [y·ν, ζ] with a different signal ν and fresh noise.

The signal-to-noise ratio is SNR = ‖μ‖ / (σ_ξ √d); the theory is governed by n·SNR².
Everything carries a leading replica axis R: replica r draws its data from the streams
(seed, "data/…", r), on the CPU, so its data do not depend on the device nor on the
other replicas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from mmnb.config import check_choice, check_range
from mmnb.nets import Replicas, replica_ids
from mmnb.runtime import stream
from mmnb.worlds.snr.config import SNRConfig

__all__ = ["VIEWS", "SNRData", "SNRSample", "SNRWorld"]

VIEWS = ("image", "augmented", "text")


@dataclass
class SNRSample:
    """n samples of R replicas: labels `y` `[R, n]` and patches `[R, n, 2, d]` (patch 0
    carries the signal, patch 1 the noise); `x_aug` and `x_text` for training only."""

    y: Tensor
    x: Tensor
    x_aug: Tensor | None = None
    x_text: Tensor | None = None


@dataclass
class SNRData:
    """Training pairs and the OOD test set of R replicas (leading axis R).

    Patch tensors have shape `[R, N, 2, d]`: patch 0 carries the signal, patch 1 the noise.
    """

    y: Tensor
    x: Tensor
    x_aug: Tensor
    x_text: Tensor
    y_test: Tensor
    x_test: Tensor
    mu: Tensor
    mu_text: Tensor
    nu: Tensor
    sigma_xi: float

    @property
    def xi(self) -> Tensor:
        """The noise patches ξ_i of modality 1, `[R, n, d]`."""
        return self.x[:, :, 1]

    @property
    def xi_text(self) -> Tensor:
        """The noise patches ξ̃_i of modality 2, `[R, n, d]`."""
        return self.x_text[:, :, 1]

    def view(self, name: str) -> tuple[Tensor, Tensor]:
        """(signal μ `[R, d]`, noise patches `[R, n, d]`) of a view: "image" (μ, ξ_i),
        "augmented" (μ, ξ_i + ε_i) or "text" (μ̃, ξ̃_i)."""
        if name not in VIEWS:
            raise ValueError(f"view={name!r} is not allowed; choose one of {list(VIEWS)}")
        if name == "text":
            return self.mu_text, self.xi_text
        return self.mu, (self.xi if name == "image" else self.x_aug[:, :, 1])

    @property
    def snr(self) -> Tensor:
        """SNR = ‖μ‖ / (σ_ξ √d), one value per replica."""
        return self.mu.norm(dim=-1) / (self.sigma_xi * math.sqrt(self.mu.shape[-1]))

    @property
    def n_snr2(self) -> Tensor:
        """n·SNR², the quantity the theory depends on, one value per replica."""
        return self.x.shape[1] * self.snr**2


def _per_replica(name: str, value: float | Sequence[float], replicas: int) -> list[float]:
    values = [float(value)] * replicas if np.ndim(value) == 0 else [float(v) for v in value]
    if len(values) != replicas:
        raise ValueError(f"{name} has {len(values)} values for {replicas} replicas")
    for v in values:
        check_range(name, v, 0.0, None)
    return values


class SNRWorld:
    """The signals of R replicas; `sample(n, purpose)` draws labels and noises.

    μ = ‖μ‖ e_1 with ‖μ‖ = SNR·σ_ξ√d, μ̃ = C_μ‖μ‖ e_2 and ν = ‖ν‖ e_1. `snr` and `c_mu`
    (default: the config's) may be given per replica (the phase diagram); the noise
    draws do not depend on them, so the replicas of a grid share their noises.
    """

    PURPOSES: ClassVar[tuple[str, ...]] = ("data/train", "data/test")

    def __init__(
        self,
        cfg: SNRConfig,
        seed: int,
        device: torch.device | str = "cpu",
        replicas: Replicas = 1,
        snr: float | Sequence[float] | None = None,
        c_mu: float | Sequence[float] | None = None,
    ) -> None:
        self.cfg, self.seed, self.device = cfg, seed, torch.device(device)
        self.ids = replica_ids(replicas)
        snrs = _per_replica("snr", cfg.snr if snr is None else snr, len(self.ids))
        cs = _per_replica("c_mu", cfg.c_mu if c_mu is None else c_mu, len(self.ids))
        self._eye = torch.eye(cfg.d)
        # CPU copies for the draws (moved to the device once, as the data)
        self._mu = [s * cfg.sigma_xi * math.sqrt(cfg.d) * self._eye[0] for s in snrs]
        self._mu_text = [c * mu.norm() * self._eye[1] for mu, c in zip(self._mu, cs, strict=True)]
        self.mu = torch.stack(self._mu).to(self.device)
        self.mu_text = torch.stack(self._mu_text).to(self.device)
        nu = cfg.nu_norm * self._eye[0]
        self.nu = nu.expand(len(self.ids), cfg.d).clone().to(self.device)

    def _labels(self, purpose: str, r: int, k: int) -> Tensor:
        return 2.0 * stream(self.seed, purpose, r).randint(2, (k,)).float() - 1.0

    def _normal(self, purpose: str, r: int, *shape: int) -> Tensor:
        return stream(self.seed, purpose, r).randn(*shape)

    def sample(self, n: int, purpose: str) -> SNRSample:
        """`n` samples per replica: "data/train" (x, x̂, x̃ from the streams
        "data/train/label", "…/noise", "…/noise_text", "…/augment") or "data/test" (the
        OOD set [y·ν, ζ] from "data/test/label", "data/test/noise")."""
        check_choice("purpose", purpose, self.PURPOSES)
        d, s_xi = self.cfg.d, self.cfg.sigma_xi
        parts: dict[str, list[Tensor]] = {"y": [], "x": [], "xa": [], "xt": []}
        for r, mu, mu_text in zip(self.ids, self._mu, self._mu_text, strict=True):
            y = self._labels(f"{purpose}/label", r, n)
            if purpose == "data/test":
                zeta = s_xi * self._normal("data/test/noise", r, n, d)
                signal = y[:, None] * self.cfg.nu_norm * self._eye[0]
                parts["y"].append(y)
                parts["x"].append(torch.stack([signal, zeta], 1))
                continue
            xi = s_xi * self._normal("data/train/noise", r, n, d)
            xi_text = s_xi * self._normal("data/train/noise_text", r, n, d)
            eps = self.cfg.sigma_eps * self._normal("data/train/augment", r, n, d)
            sig = y[:, None] * mu
            parts["y"].append(y)
            parts["x"].append(torch.stack([sig, xi], 1))
            parts["xa"].append(torch.stack([sig, xi + eps], 1))
            parts["xt"].append(torch.stack([y[:, None] * mu_text, xi_text], 1))
        st = {k: torch.stack(v).to(self.device) if v else None for k, v in parts.items()}
        return SNRSample(y=st["y"], x=st["x"], x_aug=st["xa"], x_text=st["xt"])

    def data(self) -> SNRData:
        """The data set of the config: `cfg.n` training samples, `cfg.n_test` OOD ones."""
        train = self.sample(self.cfg.n, "data/train")
        test = self.sample(self.cfg.n_test, "data/test")
        return SNRData(
            y=train.y,
            x=train.x,
            x_aug=train.x_aug,
            x_text=train.x_text,
            y_test=test.y,
            x_test=test.x,
            mu=self.mu,
            mu_text=self.mu_text,
            nu=self.nu,
            sigma_xi=float(self.cfg.sigma_xi),
        )
