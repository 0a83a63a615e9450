"""The normalized co-occurrence matrix P̃ and what a pair of encoders is measured against.

A finite world is a joint P_M over image states (rows) and text states (columns). Its
normalized co-occurrence matrix P̃ = D_V^{-1/2} P_M D_L^{-1/2} is what the multimodal
spectral contrastive loss factorizes (Zhang et al., 2023): for any encoders, with F rows
√P(x) f(x)ᵀ, L(f_V, f_L) = ‖P̃ − F_V F_Lᵀ‖²_F − ‖P̃‖²_F, so the optimum is the truncated
SVD of P̃ (Eckart–Young).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mmnb.config import check_range

__all__ = [
    "SVDOptimum",
    "factor_loss",
    "inverse_mass",
    "normalized_cooccurrence",
    "svd_optimum",
    "weighted_factors",
]


def inverse_mass(mass: Tensor, root: bool = False) -> Tensor:
    """1 / mass (1 / √mass with `root`) of row or column masses, 0 where the mass is 0."""
    safe = mass.clamp_min(1e-300)
    return torch.where(mass > 0, safe.rsqrt() if root else 1.0 / safe, 0.0)


def normalized_cooccurrence(joint: Tensor) -> Tensor:
    """P̃ = D_V^{-1/2} P_M D_L^{-1/2}; rows or columns of zero mass give zero entries."""
    joint = torch.as_tensor(joint, dtype=torch.float64)
    inv_v, inv_l = inverse_mass(joint.sum(1), root=True), inverse_mass(joint.sum(0), root=True)
    return inv_v[:, None] * joint * inv_l[None, :]


def weighted_factors(f: Tensor, p: Tensor) -> Tensor:
    """F with rows √p(x) f(x)ᵀ: the encoder seen as a factor of P̃ (`f` is `[..., N, k]`)."""
    return p.to(f).sqrt()[:, None] * f


def factor_loss(f_v: Tensor, f_l: Tensor, joint: Tensor) -> Tensor:
    """‖P̃ − F_V F_Lᵀ‖²_F − ‖P̃‖²_F, equal to the population spectral contrastive loss."""
    joint = joint.to(f_v)
    p_tilde = normalized_cooccurrence(joint).to(f_v)
    prod = weighted_factors(f_v, joint.sum(1)) @ weighted_factors(f_l, joint.sum(0)).mT
    return (p_tilde - prod).square().sum((-1, -2)) - p_tilde.square().sum()


@dataclass(frozen=True)
class SVDOptimum:
    """The Eckart–Young optimum of rank k of P̃."""

    s: Tensor  # all singular values of P̃, descending
    u: Tensor  # U_k, `[N_V, k]`
    v: Tensor  # V_k, `[N_L, k]`
    best: Tensor  # P̃_k = U_k Σ_k V_kᵀ
    min_loss: float  # −Σ_{i≤k} σ_i²


def svd_optimum(joint: Tensor, k: int) -> SVDOptimum:
    """The best rank-k approximation of P̃ and the smallest loss −Σ_{i≤k} σ_i²."""
    p_tilde = normalized_cooccurrence(joint)
    check_range("k", k, 1, min(p_tilde.shape), integer=True)
    u, s, vh = torch.linalg.svd(p_tilde, full_matrices=False)
    best = u[:, :k] * s[:k] @ vh[:k]
    return SVDOptimum(s, u[:, :k], vh[:k].T, best, float(-s[:k].square().sum()))
