"""Read-outs of chapter 00's encoders on held-out pairs: retrieval, geometry, latent R²."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from mmnb.probes import alignment, topk_retrieval, uniformity
from mmnb.regression import r2_scores

__all__ = ["KERNEL_ALPHAS", "held_out_measures", "latent_r2"]

KERNEL_ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0)  # the ridge penalties cross-validated


def held_out_measures(u: Tensor, v: Tensor) -> dict[str, Tensor]:
    """Top-1 retrieval (x→y), alignment and uniformity (Wang and Isola, 2020) of the
    embeddings u = f(x) and v = g(y) of held-out pairs, per replica."""
    return {
        "top1": topk_retrieval(u, v),
        "alignment": alignment(u, v),
        "uniformity": uniformity(u),
    }


def latent_r2(features: Tensor, target: Tensor, method: str = "kernel") -> np.ndarray:
    """Held-out R² of a latent `target` `[n, k]` from `features` `[..., n, d]`, per replica.

    Fitted on the first half of the rows, scored on the second, averaged over the target's
    columns (`mmnb.regression.r2_scores`): least squares (`"linear"`) or RBF kernel ridge
    (`"kernel"`, α among `KERNEL_ALPHAS` by 3-fold cross-validation, γ = 1 / d).
    """
    half = features.shape[-2] // 2
    target = target.to(features.device).expand(*features.shape[:-2], *target.shape)
    grid = (
        {} if method == "linear" else {"alphas": KERNEL_ALPHAS, "gammas": (1 / features.shape[-1],)}
    )
    r2 = r2_scores(
        features[..., :half, :], target[..., :half, :], features[..., half:, :],
        target[..., half:, :], method, **grid,
    )  # fmt: skip
    return r2.mean(-1).cpu().numpy()
