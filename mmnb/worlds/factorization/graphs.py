"""Positive-pair graphs, their consistency and diversity, and the generalization bound.

Two images are linked when they share a text: the text-induced image graph
A_V = P_M D_L^{-1} P_Mᵀ, whose normalized form is P̃P̃ᵀ (Zhang et al., 2023). An
augmentation is the same construction with augmented views as rows and natural images
as the shared "texts" (HaoChen et al., 2021), so one set of functions measures both:
consistency α = P[y(x_v) ≠ y(x_l)] and φ = P_{A_V}[y(x) ≠ y(x')], diversity
1 − σ_{k+1}², the bound 2φ / (1 − σ_{k+1}²) on the error of a linear head, and a
held-out linear probe on the optimal spectral features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mmnb.config import check_range
from mmnb.probes import linear_probe
from mmnb.runtime import stream
from mmnb.worlds.factorization.measures import inverse_mass, normalized_cooccurrence

__all__ = [
    "GraphReport",
    "augmentation_joint",
    "consistency",
    "disagreement",
    "generalization_bound",
    "graph_report",
    "induced_graph",
    "projection_head_error",
    "spectral_features",
    "spectral_gap",
    "top_subspace",
]


def induced_graph(joint: Tensor) -> Tensor:
    """A_V(x, x') = Σ_l P_M(x, l) P_M(x', l) / P_L(l): rows linked by a shared column."""
    joint = torch.as_tensor(joint, dtype=torch.float64)
    return (joint * inverse_mass(joint.sum(0))) @ joint.T


def top_subspace(
    joint: Tensor, k: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Top-k left singular vectors U_k of P̃ and all singular values.

    When σ_k is tied with σ_{k+1} (relative 1e-9), every k-dimensional subspace of the tied
    eigenspace is optimal; one is drawn uniformly at random with `generator`.
    """
    u, s, _ = torch.linalg.svd(normalized_cooccurrence(joint.cpu()), full_matrices=False)
    check_range("k", k, 1, len(s), integer=True)
    tied = ((s - s[k - 1]).abs() <= 1e-9 * s[0]).nonzero().flatten()
    first, last = int(tied.min()), int(tied.max()) + 1
    if last > k:
        g = torch.randn(last - first, last - first, generator=generator, dtype=torch.float64)
        q, _ = torch.linalg.qr(g)
        u = torch.cat([u[:, :first], u[:, first:last] @ q[:, : k - first]], 1)
    return u[:, :k], s


def spectral_features(joint: Tensor, k: int, generator: torch.Generator | None = None) -> Tensor:
    """The optimal row encoder f(x) = U_k(x) Σ_k^{1/2} / √P(x) (up to an invertible map)."""
    u, s = top_subspace(joint, k, generator)
    return u * s[:k].sqrt() / joint.sum(1).double().cpu().sqrt()[:, None]


def spectral_gap(joint: Tensor, k: int) -> float:
    """1 − σ_{k+1}²: the (k+1)-th eigenvalue of the normalized Laplacian of the induced graph."""
    s = torch.linalg.svdvals(normalized_cooccurrence(joint.cpu()))
    return max(0.0, float(1 - s[k].square())) if k < len(s) else 1.0


def consistency(joint: Tensor, row_labels: Tensor, col_labels: Tensor) -> float:
    """α = P[y(row) ≠ y(column)] over pairs drawn from the joint."""
    differ = row_labels[:, None].cpu() != col_labels[None, :].cpu()
    return float((joint.double().cpu() * differ).sum())


def disagreement(graph: Tensor, labels: Tensor) -> float:
    """φ = P[y(x) ≠ y(x')] over the edges (x, x') of a graph of total mass 1."""
    return consistency(graph, labels, labels)


def projection_head_error(
    joint: Tensor, labels: Tensor, k: int, generator: torch.Generator | None = None
) -> float:
    """P_V-weighted error of the linear head ĥ_c = D^{-1/2} Π_k D^{1/2} 1_c on the features.

    Π_k projects on U_k; ĥ is linear in `spectral_features`, and the bound
    `generalization_bound` is proved for it.
    """
    u, _ = top_subspace(joint, k, generator)
    p = joint.sum(1).double().cpu()
    onehot = nn.functional.one_hot(labels.long().cpu()).double()
    target = p.sqrt()[:, None] * onehot  # D^{1/2} 1_c
    scores = (u @ (u.T @ target)) / p.sqrt()[:, None]
    return float((p * (scores.argmax(1) != labels.cpu())).sum())


def generalization_bound(phi: float, gap: float) -> float:
    """2φ / (1 − σ_{k+1}²); infinite when the gap is zero."""
    return 2 * phi / gap if gap > 1e-12 else math.inf


@dataclass(frozen=True)
class GraphReport:
    """Consistency, diversity, the bound, the head's error and a held-out probe of one graph."""

    alpha: float  # P[y(row) ≠ y(column)] over the joint
    phi: float  # P[y(x) ≠ y(x')] over the induced graph
    gap: float  # 1 − σ_{k+1}²
    bound: float  # 2φ / gap
    head_error: float  # error of the projection head ĥ
    probe_acc: float  # logistic regression on the spectral features, held-out half


def graph_report(
    joint: Tensor, row_labels: Tensor, col_labels: Tensor, k: int, seed: int, draw: int
) -> GraphReport:
    """Measure one graph.

    The probe is logistic regression on `spectral_features`, fitted on a random half of
    the rows and tested on the other half (split from the stream (seed, "probe/split",
    draw)); tied eigenspaces are resolved with the stream (seed, "graph/ties", draw).
    """
    ties = stream(seed, "graph/ties", draw).torch
    phi, gap = disagreement(induced_graph(joint), row_labels), spectral_gap(joint, k)
    feats = spectral_features(joint, k, ties)
    head = projection_head_error(joint, row_labels, k, ties)
    order = stream(seed, "probe/split", draw).randperm(len(row_labels))
    tr, te = order[: len(order) // 2], order[len(order) // 2 :]
    y = row_labels.cpu()
    probe = linear_probe(feats[tr].float(), y[tr], feats[te].float(), y[te])
    return GraphReport(
        alpha=consistency(joint, row_labels, col_labels),
        phi=phi,
        gap=gap,
        bound=generalization_bound(phi, gap),
        head_error=head,
        probe_acc=float(probe["test_acc"]),
    )


def augmentation_joint(
    x: Tensor, scale: float, coords: Tensor | slice | None = None, p: Tensor | None = None
) -> Tensor:
    """P(a, x) = P(x) K_s(a | x): rows are augmented views, columns natural images.

    The Gaussian augmentation x + s·ε is snapped to the pool: K_s(a | x) ∝
    exp(−‖x_a − x‖² / 2s²) over the pool points a, the distance taken over `coords`
    (all coordinates by default; the signal coordinates only for an augmentation that
    redraws the nuisance and keeps the class part). The induced graph of this joint links
    two views of the same image, the positive pairs of SSCL (HaoChen et al.).
    """
    check_range("scale", scale, 1e-6, None)
    x = x.double()
    z = x if coords is None else x[:, coords]
    kernel = torch.softmax(-torch.cdist(z, z).square() / (2 * scale**2), dim=1)  # [x, a]
    p = torch.full((len(x),), 1.0 / len(x), dtype=torch.float64) if p is None else p.double()
    return (p.to(x.device)[:, None] * kernel).T
