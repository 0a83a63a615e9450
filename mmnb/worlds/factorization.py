"""The multimodal spectral loss as asymmetric matrix factorization (Zhang et al., 2023).

A finite world is a joint P_M over image states (rows) and text states (columns). Its
normalized co-occurrence matrix P̃ = D_V^{-1/2} P_M D_L^{-1/2} is what the multimodal
spectral contrastive loss factorizes: for any encoders, with F rows √P(x) f(x)ᵀ,
L(f_V, f_L) = ‖P̃ − F_V F_Lᵀ‖²_F − ‖P̃‖²_F, so the optimum is the truncated SVD.
`fit_factorization` trains free embedding tables on the population loss or on its
minibatch estimator, or one table on the single-modal loss of a graph (`tied=True`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from mmnb.config import check_range
from mmnb.losses import spectral_contrastive_loss
from mmnb.nets import replica_ids, replica_parameter
from mmnb.probes import principal_cosines
from mmnb.runtime import stream
from mmnb.train import History, train

__all__ = [
    "FactorizationFit",
    "SVDOptimum",
    "block_joint",
    "factor_loss",
    "fit_factorization",
    "normalized_cooccurrence",
    "svd_optimum",
    "weighted_factors",
]


def block_joint(n_images: int, n_texts: int, n_classes: int, cross: float, seed: int) -> Tensor:
    """A block-structured joint P_M (`[n_images, n_texts]`, float64) with random weights.

    Image i and text j belong to class i mod C and j mod C; a pair of the same class has
    weight 1, of different classes `cross`, each times a random factor in [0.5, 1.5)
    drawn from the stream (seed, "world/block_joint").
    """
    check_range("n_classes", n_classes, 1, None, integer=True)
    check_range("n_images", n_images, n_classes, None, integer=True)
    check_range("n_texts", n_texts, n_classes, None, integer=True)
    check_range("cross", cross, 0.0, 1.0)
    same = (torch.arange(n_images)[:, None] % n_classes) == (torch.arange(n_texts) % n_classes)
    gen = stream(seed, "world/block_joint").torch
    weights = 0.5 + torch.rand(n_images, n_texts, generator=gen, dtype=torch.float64)
    joint = torch.where(same, 1.0, cross).double() * weights
    return joint / joint.sum()


def normalized_cooccurrence(joint: Tensor) -> Tensor:
    """P̃ = D_V^{-1/2} P_M D_L^{-1/2}; rows or columns of zero mass give zero entries."""
    joint = torch.as_tensor(joint, dtype=torch.float64)
    p_v, p_l = joint.sum(1), joint.sum(0)
    inv_v = torch.where(p_v > 0, p_v.clamp_min(1e-300).rsqrt(), 0.0)
    inv_l = torch.where(p_l > 0, p_l.clamp_min(1e-300).rsqrt(), 0.0)
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


@dataclass
class FactorizationFit:
    """Free embedding tables f_V `[R, N_V, k]`, f_L `[R, N_L, k]` and the training history."""

    f_v: Tensor
    f_l: Tensor
    history: History


def _pair_batches(
    joint: Tensor, batch_size: int, replicas: list[int], seed: int, chunk: int = 64
) -> Iterator[Tensor]:
    """Endless `[R, batch_size]` flat indices of (image, text) pairs drawn from the joint.

    Replica r draws from its own stream (seed, "minibatch/pairs", r), `chunk` steps at a
    time on the CPU, so it sees the same pairs alone or in a group.
    """
    flat = joint.reshape(-1).double().cpu()
    gens = [stream(seed, "minibatch/pairs", r).torch for r in replicas]
    while True:
        draws = [torch.multinomial(flat, chunk * batch_size, True, generator=g) for g in gens]
        block = torch.stack(draws).view(len(gens), chunk, batch_size).to(joint.device)
        yield from block.unbind(1)


def fit_factorization(
    joint: Tensor,
    k: int,
    steps: int,
    lr: float,
    n_replicas: int,
    seed: int,
    init_scale: float = 0.1,
    batch_size: int | None = None,
    eval_every: int = 100,
    tied: bool = False,
    desc: str = "tables",
) -> FactorizationFit:
    """Minimize the multimodal spectral contrastive loss over free tables f_V, f_L by Adam.

    Replica r starts from N(0, init_scale²) tables drawn from the streams (seed,
    "init/table_v", r) and (seed, "init/table_l", r). `batch_size=None` uses the exact
    population loss; otherwise each step draws `batch_size` pairs from the joint per
    replica and uses the minibatch estimator (the pairs are positives, the off-diagonal
    combinations negatives). The history records `loss_population` and
    `subspace_min_cos` (the smallest principal cosine between span F_V and U_k).

    `tied=True` is single-modal spectral contrastive learning on a symmetric graph
    `joint` = A: one table embeds both members of a pair (as in SimCLR), f_L = f_V.
    """
    check_range("init_scale", init_scale, 0.0, None)
    device, joint = joint.device, joint.double()
    best = svd_optimum(joint, k)
    n_v, n_l = joint.shape

    def table(n: int):
        return lambda g: init_scale * torch.randn(n, k, generator=g, dtype=torch.float64)

    f_v = replica_parameter(table(n_v), n_replicas, seed, "init/table_v", device)
    if tied and (n_v != n_l or not torch.allclose(joint, joint.T)):
        raise ValueError(
            "tied=True needs a symmetric graph (a square joint equal to its transpose)"
        )
    f_l = f_v if tied else replica_parameter(table(n_l), n_replicas, seed, "init/table_l", device)
    rows = torch.arange(n_replicas, device=device)[:, None]
    if batch_size is not None:
        check_range("batch_size", batch_size, 2, None, integer=True)
        batches = _pair_batches(joint, batch_size, replica_ids(n_replicas), seed)

    def objective(_: Tensor | None) -> Tensor:
        if batch_size is None:
            return spectral_contrastive_loss(f_v, f_l, joint)
        idx = next(batches)
        return spectral_contrastive_loss(f_v[rows, idx // n_l], f_l[rows, idx % n_l])

    def evaluate() -> dict[str, Tensor]:
        cos = principal_cosines(weighted_factors(f_v, joint.sum(1)), best.u)
        return {
            "loss_population": spectral_contrastive_loss(f_v, f_l, joint),
            "subspace_min_cos": cos.min(-1).values,
        }

    history = train(
        objective,
        [f_v] if tied else [f_v, f_l],
        steps,
        lr=lr,
        evaluate=evaluate,
        eval_every=eval_every,
        desc=desc,
    )
    return FactorizationFit(f_v.detach(), f_l.detach(), history)
