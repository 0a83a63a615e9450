"""Chapter 01's losses: InfoNCE on the patch similarity, single-modal and multimodal.

The similarity pairs patch p with patch p, averages over neurons and stops the gradient
through its second argument: Sim(x, x') = (1/m) Σ_r Σ_p h_r(x^(p)) · sg(h_r(x'^(p))).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmnb.losses import info_nce
from mmnb.worlds.snr.config import NEGATIVES
from mmnb.worlds.snr.encoders import Encoder
from mmnb.worlds.snr.world import SNRData

__all__ = ["multimodal_loss", "negatives_mask", "patch_similarity", "single_modal_loss"]


def patch_similarity(a: Tensor, b: Tensor) -> Tensor:
    """Sim[r, i, j] = (1/m) Σ_k Σ_p a[r,i,p,k] · sg(b[r,j,p,k]) from patch activations.

    The gradient flows only through the first argument (stop-gradient on `b`).
    """
    a2, b2 = a.flatten(-2), b.detach().flatten(-2)
    return torch.matmul(a2, b2.transpose(-1, -2)) / a.shape[-1]


def negatives_mask(y: Tensor, negatives: str = "opposite_label") -> Tensor | None:
    """`mask[r, i, j]` is True where x_j is a negative of anchor i: y_j ≠ y_i for
    "opposite_label" (the paper's loss); every other sample for "all" (`None`)."""
    if negatives not in NEGATIVES:
        raise ValueError(f"negatives={negatives!r} is not allowed; choose one of {list(NEGATIVES)}")
    return y[..., :, None] != y[..., None, :] if negatives == "opposite_label" else None


def single_modal_loss(
    h: Encoder, data: SNRData, tau: float, negatives: str = "opposite_label"
) -> Tensor:
    """InfoNCE with positive (x_i, x̂_i) and negatives x_j (opposite-label or all), `[R]`."""
    a, a_aug = h.signal_noise(data, "image"), h.signal_noise(data, "augmented")
    sim = patch_similarity(a, a)  # Sim(x_i, x_j)
    positive = (a * a_aug.detach()).sum((-1, -2)) / h.m  # Sim(x_i, x̂_i)
    eye = torch.eye(sim.shape[-1], dtype=torch.bool, device=sim.device)
    logits = torch.where(eye, positive[..., :, None], sim) / tau
    return info_nce(logits, negatives_mask(data.y, negatives))


def multimodal_loss(
    h: Encoder, g: Encoder, data: SNRData, tau: float, negatives: str = "opposite_label"
) -> Tensor:
    """L(x→x̃) + L(x̃→x): positives (x_i, x̃_i), negatives as in `single_modal_loss`, `[R]`.

    With the stop-gradient, the first term trains h and the second trains g.
    """
    a, b = h.signal_noise(data, "image"), g.signal_noise(data, "text")
    mask = negatives_mask(data.y, negatives)
    return info_nce(patch_similarity(a, b) / tau, mask) + info_nce(
        patch_similarity(b, a) / tau, mask
    )
