"""Chapter 04's read-outs: how much of each latent block the learned encodings hold.

Each ground-truth block (c, s, s̃, m1, m2) is predicted from the standardized encodings of
each modality on fresh pairs: linear regression and RBF kernel ridge, fitted on pairs
from the stream "data/val" and scored (R², averaged over the block's coordinates) on
pairs from "data/test", as in the reference code. `direction_r2` does the same along the
eigen-directions of a block's covariance, beside the per-direction oracle R²(· | c).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mmnb.probes import r2_scores
from mmnb.worlds.identifiability.world import BLOCKS, LatentModel

__all__ = ["Evaluation", "direction_r2", "encode", "evaluate"]

#: two encoders applied to a pair of observations, `(x1, x2) → (g1(x1), g2(x2))`
PairEncoder = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


@dataclass
class Evaluation:
    """R² of every block from every encoder: `linear[r, modality, block]`, `kernel[...]`.

    `*_coords` hold the per-coordinate values, `[R, 2, n_c + 2 n_s + 2 n_m]` in the order
    of `BLOCKS`; `oracle[r]` is R²(s | c) of replica r, `oracle_tilde[r]` R²(s̃ | c).
    """

    linear: Tensor
    kernel: Tensor
    linear_coords: Tensor
    kernel_coords: Tensor
    oracle: Tensor
    oracle_tilde: Tensor


def encode(encoders: PairEncoder, data: dict[str, Tensor]) -> Tensor:
    """Both encodings of sampled pairs, `[R, 2, n, d]`."""
    with torch.no_grad():
        return torch.stack(encoders(data["x1"], data["x2"]), 1)


def evaluate(
    encoders: PairEncoder,
    world: LatentModel,
    *,
    n_val: int,
    n_test: int,
    kernel_points: int,
    kernel_alphas: Sequence[float] = (1.0,),
    kernel_gammas: Sequence[float] = (0.1,),
) -> Evaluation:
    """R² of every block from both encoders of every replica (see the module docstring).

    Kernel ridge fits on the first `kernel_points` validation pairs; with several
    (α, γ) it picks one per block by 3-fold cross-validation. Blocks a multi-view
    replica lacks (m1, m2) score NaN.
    """
    val = world.sample(n_val, "data/val")
    test = world.sample(n_test, "data/test")
    feats = [encode(encoders, d) for d in (val, test)]
    sizes = [world.n_c, world.n_s, world.n_s, world.n_m, world.n_m]
    targets = [
        torch.cat([d[b] for b in BLOCKS], -1)[:, None].expand(-1, 2, -1, -1) for d in (val, test)
    ]
    k = kernel_points
    linear = r2_scores(feats[0], targets[0], feats[1], targets[1], "linear")
    kernel = torch.cat([
        r2_scores(feats[0][r : r + 1, :, :k], targets[0][r : r + 1, :, :k], feats[1][r : r + 1],
                  targets[1][r : r + 1], "kernel", kernel_alphas, kernel_gammas, sizes)
        for r in range(world.n_replicas)
    ])  # fmt: skip
    ends = np.cumsum([0, *sizes])
    multiview = torch.tensor([s.multiview for s in world.settings], device=linear.device)
    m_cols = torch.arange(ends[-1], device=linear.device) >= int(ends[3])
    missing = multiview[:, None, None] & m_cols  # [R, 1, T]
    linear, kernel = (torch.where(missing, float("nan"), c) for c in (linear, kernel))

    def blocks(coords: Tensor) -> Tensor:
        pieces = zip(ends[:-1], ends[1:], strict=True)
        return torch.stack([coords[..., a:b].mean(-1) for a, b in pieces], -1).cpu()

    return Evaluation(
        linear=blocks(linear),
        kernel=blocks(kernel),
        linear_coords=linear.cpu(),
        kernel_coords=kernel.cpu(),
        oracle=world.style_oracle("s").mean(-1).cpu(),
        oracle_tilde=world.style_oracle("s_tilde").mean(-1).cpu(),
    )


def direction_r2(
    encoders: PairEncoder,
    world: LatentModel,
    rows: Sequence[int],
    *,
    n_val: int,
    n_test: int,
    kernel_alphas: Sequence[float] = (1.0,),
    kernel_gammas: Sequence[float] = (0.1,),
) -> list[dict[str, float | int | str]]:
    """Kernel R² (encoder 1) of content and style along the eigen-directions of Σ_c and
    Cov(s), for the replicas `rows`, on pairs from "data/directions/val|test".

    One record per (replica, block, direction): its rank (0 = smallest variance), its
    variance, the R² and, for style, the oracle R² along that direction.
    """
    val = world.sample(n_val, "data/directions/val")
    test = world.sample(n_test, "data/directions/test")
    f_val, f_test = encode(encoders, val)[:, 0], encode(encoders, test)[:, 0]
    eig = {b: torch.linalg.eigh(world.covariance[b].double()) for b in ("c", "s")}
    oracle = world.style_oracle("s", eig["s"][1])  # [R, n_s]
    records: list[dict[str, float | int | str]] = []
    for r in rows:
        for block in ("c", "s"):
            values, vectors = eig[block][0][r], eig[block][1][r]
            proj = [d[block][r].double() @ vectors for d in (val, test)]
            r2 = r2_scores(f_val[r], proj[0], f_test[r], proj[1], "kernel", kernel_alphas,
                           kernel_gammas, [1] * len(values))  # fmt: skip
            for i, (var, q) in enumerate(zip(values.tolist(), r2.tolist(), strict=True)):
                oracle_i = float(oracle[r, i]) if block == "s" else 1.0
                records.append({"replica": r, "block": block, "rank": i, "variance": var,
                                "R²": q, "oracle": oracle_i})  # fmt: skip
    return records
