"""Held-out R², batched in torch: every leading axis is a replica.

Least squares or RBF kernel ridge regression from standardized features to each target
column, fitted on a training split and scored on a test split, for all replicas in one
pass (on the GPU when the features are there). `mmnb.probes` names these too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from mmnb.config import check_choice

__all__ = ["r2_scores", "standardize"]


def standardize(train_x: Tensor, test_x: Tensor) -> tuple[Tensor, Tensor]:
    """Scale features to zero mean and unit variance with the training split's statistics."""
    mean, std = train_x.mean(-2, keepdim=True), train_x.std(-2, keepdim=True, correction=0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return (train_x - mean) / std, (test_x - mean) / std


def _r2_columns(y: Tensor, pred: Tensor) -> Tensor:
    """R² per target column, `[..., T]` (1 − SSE / SST around the test mean)."""
    sst = (y - y.mean(-2, keepdim=True)).square().sum(-2)
    return 1 - (y - pred).square().sum(-2) / sst


def _rbf(a: Tensor, b: Tensor, gamma: float) -> Tensor:
    sq = a.square().sum(-1)[..., :, None] + b.square().sum(-1)[..., None, :] - 2 * a @ b.mT
    return torch.exp(-gamma * sq.clamp(min=0))


def _kernel_ridge(
    train_x: Tensor, train_y: Tensor, test_x: Tensor, alpha: float, gamma: float
) -> Tensor:
    """Predictions of RBF kernel ridge regression without intercept (as scikit-learn's)."""
    k = _rbf(train_x, train_x, gamma)
    k.diagonal(dim1=-2, dim2=-1).add_(alpha)
    coef = torch.cholesky_solve(train_y, torch.linalg.cholesky(k))
    return _rbf(test_x, train_x, gamma) @ coef


def _linear(train_x: Tensor, train_y: Tensor, test_x: Tensor) -> Tensor:
    """Predictions of least squares with an intercept (a 1e-9 ridge handles masked features)."""
    ones = torch.ones_like(train_x[..., :1])
    a = torch.cat([train_x, ones], -1)
    gram = a.mT @ a
    gram.diagonal(dim1=-2, dim2=-1).add_(1e-9 * a.shape[-2])
    coef = torch.linalg.solve(gram, a.mT @ train_y)
    return torch.cat([test_x, torch.ones_like(test_x[..., :1])], -1) @ coef


def r2_scores(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    method: str = "linear",
    alphas: Sequence[float] = (1.0,),
    gammas: Sequence[float] = (0.1,),
    groups: Sequence[int] | None = None,
) -> Tensor:
    """Held-out R² of each target column from standardized features, `[..., T]`.

    `method="linear"` is least squares; `"kernel"` is RBF kernel ridge regression. With
    several (α, γ) pairs, each group of target columns (`groups` gives their sizes, one
    group by default) picks its pair by 3-fold cross-validation on the training split,
    scored by the group's mean R², like scikit-learn's `GridSearchCV`. Computed in
    float64; the leading axes are batched.
    """
    check_choice("method", method, ("linear", "kernel"))
    xtr, xte = standardize(train_x.double(), test_x.double())
    ytr, yte = train_y.double(), test_y.double()
    if method == "linear":
        return _r2_columns(yte, _linear(xtr, ytr, xte))
    grid = [(a, g) for g in gammas for a in alphas]
    if len(grid) == 1:
        return _r2_columns(yte, _kernel_ridge(xtr, ytr, xte, *grid[0]))
    groups = list(groups or [ytr.shape[-1]])
    n = xtr.shape[-2]
    folds = [range(n * i // 3, n * (i + 1) // 3) for i in range(3)]
    scores = []
    for alpha, gamma in grid:
        fold_r2 = []
        for fold in folds:
            held = torch.zeros(n, dtype=torch.bool)
            held[list(fold)] = True
            pred = _kernel_ridge(
                xtr[..., ~held, :], ytr[..., ~held, :], xtr[..., held, :], alpha, gamma
            )
            fold_r2.append(_r2_columns(ytr[..., held, :], pred))
        scores.append(torch.stack(fold_r2).mean(0))
    scores = torch.stack(scores)  # [G, ..., T]
    ends = np.cumsum([0, *groups])
    best = [scores[..., a:b].mean(-1).argmax(0) for a, b in zip(ends[:-1], ends[1:], strict=True)]
    out = torch.empty_like(yte[..., 0, :])
    preds = [_r2_columns(yte, _kernel_ridge(xtr, ytr, xte, a, g)) for a, g in grid]
    for (a, b), choice in zip(zip(ends[:-1], ends[1:], strict=True), best, strict=True):
        stacked = torch.stack([p[..., a:b] for p in preds])  # [G, ..., k]
        out[..., a:b] = stacked.gather(0, choice[None, ..., None].expand_as(stacked[:1]))[0]
    return out
