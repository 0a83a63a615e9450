"""Chapter 06's read-outs: what each lens measures on a fitted model of the lenses world.

Embeddings (`embed`), held-out R² of latents (`heldout_r2`, `latent_r2`), the learned
logits against the closed-form PMI (`logits`, `pmi_weights`, `pmi_readout`), out-of-
distribution linear probes (`ood_accuracy`) and the held-out CLIP loss (`heldout_loss`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from mmnb import probes
from mmnb.gaussian import gaussian_pmi
from mmnb.losses import symmetric_info_nce

if TYPE_CHECKING:
    from mmnb.train import History
    from mmnb.worlds.lenses.fit import TwoTowerFit
    from mmnb.worlds.lenses.world import LensesSample

__all__ = [
    "PMIReadout",
    "embed",
    "heldout_loss",
    "heldout_r2",
    "latent_r2",
    "logits",
    "ood_accuracy",
    "pmi_readout",
    "pmi_weights",
    "tau_ratio",
]


def embed(fit: TwoTowerFit, x: Tensor, normalize: bool) -> Tensor:
    """f(x) for every replica, `[R, n, d]`, on the unit sphere if `normalize` (CLIP, SimCLR)."""
    with torch.no_grad():
        u = fit.f(x)
    return torch.nn.functional.normalize(u, dim=-1) if normalize else u


def heldout_r2(
    features: Tensor, target: Tensor, method: str = "kernel", groups: Sequence[int] | None = None
) -> Tensor:
    """R² of each target column, `[R, T]`: fitted on the first half of the points, scored
    on the second (kernel ridge with α and γ chosen by 3-fold cross-validation, for each
    group of `groups` columns separately)."""
    half = features.shape[-2] // 2
    t = target.expand(features.shape[0], *target.shape)
    gammas = [g / features.shape[-1] for g in (0.25, 1.0, 4.0)]
    return probes.r2_scores(
        features[:, :half], t[:, :half], features[:, half:], t[:, half:], method,
        alphas=(1e-3, 1e-2, 1e-1, 1.0), gammas=gammas, groups=groups,
    )  # fmt: skip


def latent_r2(features: Tensor, sample: LensesSample) -> dict[str, Tensor]:
    """Kernel R² of the content a and of the private s_x from `features`, `[R]` each (mean
    over coordinates); one kernel fit serves both, each with its own cross-validated α, γ."""
    k = sample.a.shape[1]
    r2 = heldout_r2(features, torch.cat([sample.a, sample.s_x], 1), groups=[k, sample.s_x.shape[1]])
    return {"content a": r2[:, :k].mean(-1), "private s_x": r2[:, k:].mean(-1)}


def pmi_weights(pmi: Tensor) -> Tensor:
    """Where the symmetric loss looks: ½(p(y_j | x_i) + p(x_i | y_j)) within the table, from
    the true PMI, set to 0 in cells less likely than a uniform guess (1 / n)."""
    n = pmi.shape[0]
    w = 0.5 * (pmi.softmax(1) + pmi.softmax(0))
    return torch.where(w >= 1.0 / n, w, torch.zeros_like(w))


def logits(fit: TwoTowerFit, x: Tensor, y: Tensor) -> Tensor:
    """The learned logits cos(f(x_i), g(y_j)) / τ for every pair, `[R, n, n']`."""
    with torch.no_grad():
        u = torch.nn.functional.normalize(fit.f(x), dim=-1)
        v = torch.nn.functional.normalize(fit.g(y), dim=-1)
        return u @ v.mT / fit.temperature()[:, None, None]


@dataclass
class PMIReadout:
    """The learned logits of every replica against the closed-form PMI of all held-out
    pairs, weighted by `pmi_weights`; `fit` holds RMSE, δ, slope and correlation."""

    logits: Tensor  # [R, n, n]
    pmi: Tensor  # [n, n]
    weights: Tensor  # [n, n]
    fit: probes.PMIFit

    @property
    def spread(self) -> float:
        """The weighted standard deviation of the PMI (nats): the RMSE of a constant logit."""
        w = self.weights / self.weights.sum()
        mean = (w * self.pmi).sum()
        return float((w * (self.pmi - mean).square()).sum().sqrt())

    @property
    def explained(self) -> Tensor:
        """The share of the PMI's weighted variance the logits follow, `[R]`: 1 − (RMSE/spread)²."""
        return 1 - (self.fit.rmse / self.spread) ** 2

    def shifted_logits(self) -> Tensor:
        """The logits minus each replica's free constant (their weighted mean offset from the
        PMI), `[R, n, n]`: on the PMI's scale, for plotting against it."""
        w = self.weights / self.weights.sum()
        shift = (w * (self.logits - self.pmi)).sum((-1, -2), keepdim=True)
        return self.logits - shift


def pmi_readout(fit: TwoTowerFit, test: LensesSample, rho: float) -> PMIReadout:
    """How far the learned logits cos(f(x_i), g(y_j)) / τ are from PMI(x_i, y_j), over
    every pair of held-out content (a_i, b_j) (`mmnb.gaussian.gaussian_pmi`)."""
    pmi = gaussian_pmi(test.a[:, None], test.b[None], rho)
    weights = pmi_weights(pmi)
    table = logits(fit, test.x, test.y)
    return PMIReadout(table, pmi, weights, probes.pmi_fit(table, pmi, weights))


def ood_accuracy(
    fit: TwoTowerFit, train: LensesSample, test: LensesSample, normalize: bool
) -> Tensor:
    """Test accuracy, `[R]`, of a linear probe for sign(a_1) trained on frozen f(x) of `train`."""
    label = lambda s: (s.a[:, 0] > 0).long().cpu()  # noqa: E731
    result = probes.linear_probe(
        embed(fit, train.x, normalize), label(train), embed(fit, test.x, normalize), label(test)
    )
    return torch.as_tensor(result["test_acc"])


def heldout_loss(
    fit: TwoTowerFit, test: LensesSample, batch_size: int, per_batch: bool = False
) -> Tensor:
    """The CLIP loss, `[R]`, on held-out pairs cut into batches of `batch_size` (the same N
    as in training, so it compares with log N − I(x; y)); with `per_batch`, the loss of
    each batch, `[B, R]` (for the standard error of their mean)."""
    starts = range(0, len(test.x) - batch_size + 1, batch_size)
    with torch.no_grad():
        u, v, t = fit.f(test.x), fit.g(test.y), fit.temperature()
        losses = [symmetric_info_nce(u[:, i : i + batch_size], v[:, i : i + batch_size], t)
                  for i in starts]  # fmt: skip
    losses = torch.stack(losses)
    return losses if per_batch else losses.mean(0)


def tau_ratio(history: History, rows: slice | None = None) -> np.ndarray:
    """τ at the last recorded step over τ at half as many steps, per replica (of `rows`):
    below 1 while τ keeps falling, near 1 once it has settled."""
    steps, tau = history.steps("tau"), history["tau"]
    half = int(np.searchsorted(steps, steps[-1] / 2))
    ratio = tau[-1] / tau[half]
    return ratio if rows is None else ratio[rows]
