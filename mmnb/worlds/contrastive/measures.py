"""Read-outs of chapter 00's encoders on held-out pairs."""

from __future__ import annotations

from torch import Tensor

from mmnb.probes import alignment, topk_retrieval, uniformity

__all__ = ["held_out_measures"]


def held_out_measures(u: Tensor, v: Tensor) -> dict[str, Tensor]:
    """Top-1 retrieval (x→y), alignment and uniformity (Wang and Isola, 2020) of the
    embeddings u = f(x) and v = g(y) of held-out pairs, per replica."""
    return {
        "top1": topk_retrieval(u, v),
        "alignment": alignment(u, v),
        "uniformity": uniformity(u),
    }
