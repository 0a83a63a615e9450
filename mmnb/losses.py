"""Similarity functions and contrastive losses.

Every function accepts a leading replica axis: embeddings are `[R, N, d]` (or `[N, d]`)
and losses come back with one value per replica, shape `[R]` (or a scalar).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from mmnb.config import check_choice

__all__ = [
    "KERNEL_SIMILARITIES",
    "SIMILARITIES",
    "LearnedTemperature",
    "info_nce",
    "kernel_features",
    "kernel_similarity",
    "kernel_weights",
    "pairwise_dot",
    "sample_fourier_basis",
    "similarity",
    "spectral_contrastive_loss",
    "symmetric_info_nce",
    "symmetric_info_nce_logits",
]

SIMILARITIES = ("dot", "cosine", "neg_sqdist")


class _Pairwise(torch.autograd.Function):
    """`u @ vᵀ` for `[..., N, d]` factors, with the backward's thin products taken from the left.

    The gradients `G v` and `Gᵀ u` of an `N × N` output are computed as `(vᵀ Gᵀ)ᵀ` and
    `(uᵀ G)ᵀ`: with a small d, a `[d, N] @ [N, N]` product runs about 4× faster on the CPU
    than the `[N, N] @ [N, d]` product autograd would take for the first of them.
    """

    @staticmethod
    def forward(ctx, u: Tensor, v: Tensor) -> Tensor:  # noqa: D102
        ctx.save_for_backward(u, v)
        return u @ v.transpose(-1, -2)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:  # noqa: D102
        u, v = ctx.saved_tensors
        grad_u = (v.transpose(-1, -2) @ grad.transpose(-1, -2)).transpose(-1, -2)
        grad_v = (u.transpose(-1, -2) @ grad).transpose(-1, -2)
        return grad_u, grad_v


def pairwise_dot(u: Tensor, v: Tensor) -> Tensor:
    """All inner products `u @ vᵀ` (`[..., N, d]` × `[..., M, d]` → `[..., N, M]`)."""
    if u.shape[:-2] != v.shape[:-2]:  # broadcast leading axes: autograd's own matmul
        return u @ v.transpose(-1, -2)
    return _Pairwise.apply(u, v)


def similarity(u: Tensor, v: Tensor, kind: str = "cosine") -> Tensor:
    """All-pairs similarity matrix `S[..., i, j] = sim(u_i, v_j)`.

    `dot` is the inner product, `cosine` the inner product of unit vectors and
    `neg_sqdist` the negative squared Euclidean distance.
    """
    check_choice("similarity", kind, SIMILARITIES)
    if kind == "cosine":
        u = nn.functional.normalize(u, dim=-1)
        v = nn.functional.normalize(v, dim=-1)
    if kind == "neg_sqdist":  # -|u - v|² = [2u, -|u|², -1]·[v, 1, |v|²]: one product, no N×N×d
        one_u, one_v = torch.ones_like(u[..., :1]), torch.ones_like(v[..., :1])
        u_aug = torch.cat([2 * u, -u.square().sum(-1, keepdim=True), -one_u], -1)
        v_aug = torch.cat([v, one_v, v.square().sum(-1, keepdim=True)], -1)
        return pairwise_dot(u_aug, v_aug)
    return pairwise_dot(u, v)


def _check_square(logits: Tensor) -> int:
    n = logits.shape[-1]
    if logits.ndim < 2 or logits.shape[-2] != n:
        raise ValueError(f"logits must be square in the last two axes, got {tuple(logits.shape)}")
    return n


def info_nce(logits: Tensor, negatives: Tensor | None = None) -> Tensor:
    """One-directional InfoNCE: row i's positive is column i.

    `logits[..., i, j]` scores anchor i against candidate j (temperature already
    applied). `negatives` is an optional boolean mask, `True` where column j counts
    as a negative for row i; the positive always counts. Returns the mean over rows.
    """
    n = _check_square(logits)
    if negatives is not None:
        eye = torch.eye(n, dtype=torch.bool, device=logits.device)
        keep = negatives.to(device=logits.device, dtype=torch.bool) | eye
        logits = logits.masked_fill(~keep, float("-inf"))
    positive = logits.diagonal(dim1=-2, dim2=-1)
    return (torch.logsumexp(logits, dim=-1) - positive).mean(dim=-1)


def symmetric_info_nce_logits(logits: Tensor, negatives: Tensor | None = None) -> Tensor:
    """CLIP's loss on a precomputed logit matrix `[..., K, K]` (row i's positive is column i).

    The mean of the row-wise and column-wise `info_nce`; `negatives` as in `info_nce`.
    """
    if negatives is not None:
        back = negatives.transpose(-1, -2)
        return 0.5 * (info_nce(logits, negatives) + info_nce(logits.transpose(-1, -2), back))
    _check_square(logits)
    return _SymmetricInfoNCE.apply(logits)


LOG2_E = math.log2(math.e)
EXP2_FLOOR = -126.0  # float32: 2^−126 ≈ 1.2e-38 is the smallest normal number


class _SymmetricInfoNCE(torch.autograd.Function):
    """Both directions of InfoNCE from one logit matrix `[..., K, K]`, in few passes over it.

    The exponentials are taken in base 2 on `logits · log₂e` (the CPU's `exp2` runs about
    3× faster than its `exp`); the forward keeps the two shifted exponentials it computes
    anyway, and the backward turns them into the sum of the two softmaxes.
    About 1.5× faster than two `logsumexp` calls and their autograd on large batches,
    where this K×K work rivals the encoders' matmuls.
    """

    @staticmethod
    def forward(ctx, logits: Tensor) -> Tensor:  # noqa: D102
        scaled = logits * LOG2_E
        row_max = scaled.amax(-1, keepdim=True)
        col_max = scaled.amax(-2, keepdim=True)
        # below 2^−126 float32 powers underflow towards subnormals, which the CPU computes
        # on a slow path (10× slower when a small τ spreads the logits); clamped, each such
        # term changes by less than 2e-38 against sums of at least 1
        col_exp = torch.sub(scaled, col_max).clamp_(min=EXP2_FLOOR).exp2_()
        row_exp = scaled.sub_(row_max).clamp_(min=EXP2_FLOOR).exp2_()
        row_sum, col_sum = row_exp.sum(-1, keepdim=True), col_exp.sum(-2, keepdim=True)
        rows = (row_sum.log2() + row_max).squeeze(-1).mean(-1)
        cols = (col_sum.log2() + col_max).squeeze(-2).mean(-1)
        ctx.save_for_backward(row_exp, col_exp, row_sum, col_sum)
        diagonal = logits.diagonal(dim1=-2, dim2=-1).mean(-1)
        return (0.5 / LOG2_E) * (rows + cols) - diagonal

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: D102
        row_exp, col_exp, row_sum, col_sum = ctx.saved_tensors
        weight = (grad / (2 * row_exp.shape[-1]))[..., None, None]  # d loss/d s_ij, per replica
        out = torch.mul(row_exp, weight / row_sum).addcmul_(col_exp, weight / col_sum)
        out.diagonal(dim1=-2, dim2=-1).sub_(2 * weight[..., 0])
        return out


def _scaled_logits(u: Tensor, v: Tensor, temperature: Tensor | float, kind: str) -> Tensor:
    """`similarity(u, v, kind) / τ`, dividing the N×d embeddings rather than the N×N matrix."""
    if isinstance(temperature, Tensor) and temperature.ndim == 1:
        temperature = temperature.view(-1, 1, 1)
    if kind == "neg_sqdist":  # |u - v|²/τ = |u/√τ - v/√τ|²
        return similarity(u / temperature**0.5, v / temperature**0.5, kind)
    check_choice("similarity", kind, SIMILARITIES)
    if kind == "cosine":
        u = nn.functional.normalize(u, dim=-1)
        v = nn.functional.normalize(v, dim=-1)
    return pairwise_dot(u / temperature, v)


def symmetric_info_nce(
    u: Tensor,
    v: Tensor,
    temperature: Tensor | float = 1.0,
    kind: str = "cosine",
    negatives: Tensor | None = None,
) -> Tensor:
    """CLIP's loss: the mean of the u→v and v→u InfoNCE losses on `sim(u, v) / τ`.

    `temperature` is a float or one value per replica (shape `[R]`); `negatives` is
    an optional mask as in `info_nce` (row i = anchor u_i).
    """
    return symmetric_info_nce_logits(_scaled_logits(u, v, temperature, kind), negatives)


class LearnedTemperature(nn.Module):
    """A temperature per replica, τ = floor + exp(s), learned unless `learn=False`.

    `init` is one starting value for all replicas or one per replica; `learn` is one flag
    for all replicas or one per replica (a replica with `False` keeps its τ fixed).

    Like CLIP, the inverse temperature is capped at `max_inverse` (τ ≥ 1/max_inverse).
    """

    def __init__(
        self,
        n_replicas: int = 1,
        init: float | Sequence[float] = 1.0,
        learn: bool | Sequence[bool] = True,
        floor: float = 0.0,
        max_inverse: float = 100.0,
    ) -> None:
        super().__init__()
        start = torch.as_tensor(init, dtype=torch.float32).expand(n_replicas).clone()
        if not bool((start > floor).all()):
            raise ValueError(f"temperature init={init!r} must exceed floor={floor!r}")
        self.floor, self.max_inverse = float(floor), float(max_inverse)
        s = (start - floor).log()
        mask = torch.as_tensor(learn, dtype=torch.bool).expand(n_replicas).clone()
        self.register_buffer("learned", mask)
        self.mixed = not bool(mask.all())  # decided once: no host sync per step on a GPU
        if bool(mask.any()):
            self.log_excess = nn.Parameter(s)
        else:
            self.register_buffer("log_excess", s)

    def forward(self) -> Tensor:
        s = self.log_excess
        if self.mixed:
            s = torch.where(self.learned, s, s.detach())
        tau = self.floor + s.exp()
        return tau.clamp(min=1.0 / self.max_inverse)


def spectral_contrastive_loss(f: Tensor, g: Tensor, joint: Tensor | None = None) -> Tensor:
    """HaoChen et al.'s spectral contrastive loss, −2 E⟨f, g⁺⟩ + E⟨f, g⁻⟩².

    Minibatch form (`joint=None`): `f[..., i]` and `g[..., i]` are positive pairs and
    every i ≠ j pair is a negative. Population form: `f` embeds the V image states,
    `g` the L text states and `joint` is their V×L joint distribution; negatives are
    drawn from the product of its marginals.
    """
    scores = f @ g.transpose(-1, -2)
    if joint is None:
        n = scores.shape[-1]
        diagonal = scores.diagonal(dim1=-2, dim2=-1)
        # mean of the n(n-1) off-diagonal squares, without gathering them
        negative = (scores.square().sum((-1, -2)) - diagonal.square().sum(-1)) / (n * (n - 1))
        return -2 * diagonal.mean(-1) + negative
    joint = joint.to(scores)
    p_v, p_l = joint.sum(1), joint.sum(0)
    positive = (joint * scores).sum((-1, -2))
    negative = (p_v[:, None] * p_l[None, :] * scores.square()).sum((-1, -2))
    return -2 * positive + negative


# --- Kernel similarities (chapter 3) -------------------------------------------------------

KERNEL_SIMILARITIES = ("cosine", "gauss", "mix")
MIX_WEIGHTS = (0.667, 0.333)


def kernel_weights(kind: str, weights: tuple[float, float]) -> tuple[float, float]:
    """(α₁, α₂), the weights of the cosine and of the Gaussian kernel, for a similarity `kind`.

    `cosine` is (1, 0), `gauss` (0, 1) and `mix` the given `weights`.
    """
    check_choice("kind", kind, KERNEL_SIMILARITIES)
    return {"cosine": (1.0, 0.0), "gauss": (0.0, 1.0), "mix": tuple(weights)}[kind]


def kernel_similarity(
    u: Tensor,
    v: Tensor,
    kind: str = "mix",
    sigma: float = 0.5,
    weights: tuple[float, float] = MIX_WEIGHTS,
    n_features: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """All-pairs kernel similarity of the normalized embeddings û, v̂, exact or estimated.

    `cosine` is ⟨û, v̂⟩, `gauss` is exp(−‖û − v̂‖² / 2σ²) and `mix` is
    α₁⟨û, v̂⟩ + α₂ exp(−‖û − v̂‖² / 2σ²) with (α₁, α₂) = `weights`. With `n_features`,
    the kernel is estimated with that many random Fourier features drawn now from
    `generator` (on its device, then moved to u's): call it once per training step to
    resample them every step, as in the published method.
    """
    if n_features is not None:
        omega, phase = sample_fourier_basis(u.shape[-1], n_features, sigma, generator)
        omega, phase = omega.to(u.device), phase.to(u.device)
        fu = kernel_features(u, omega, phase, kind, weights)
        return fu @ kernel_features(v, omega, phase, kind, weights).transpose(-1, -2)
    a1, a2 = kernel_weights(kind, weights)
    if sigma <= 0:
        raise ValueError(f"sigma={sigma!r} must be positive")
    cos = similarity(u, v, "cosine")
    if a2 == 0.0:
        return a1 * cos
    gauss = torch.exp((cos - 1.0) / sigma**2)  # ‖û − v̂‖² = 2 − 2⟨û, v̂⟩ on the sphere
    return a1 * cos + a2 * gauss if a1 else a2 * gauss


def sample_fourier_basis(
    dim: int,
    n_features: int = 1024,
    sigma: float = 0.5,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """Frequencies ω ~ N(0, σ⁻² I) of shape `[dim, D]` and phases b ~ U[0, 2π) of shape `[D]`."""
    device = generator.device if generator is not None and device is None else device
    omega = torch.randn(dim, n_features, generator=generator, device=device) / sigma
    phase = torch.rand(n_features, generator=generator, device=device) * (2 * torch.pi)
    return omega, phase


def kernel_features(
    u: Tensor,
    omega: Tensor,
    phase: Tensor,
    kind: str = "mix",
    weights: tuple[float, float] = MIX_WEIGHTS,
) -> Tensor:
    """Random-feature map [√α₁ û ; √α₂ z(û)] with z(û) = √(2/D) cos(û ω + b).

    The plain inner product of two such feature vectors is an unbiased estimate of
    `kernel_similarity(u, v, kind, σ)` when ω, b come from `sample_fourier_basis`.
    """
    a1, a2 = kernel_weights(kind, weights)
    u = nn.functional.normalize(u, dim=-1)
    z = torch.cos(u @ omega + phase) * (2.0 / omega.shape[-1]) ** 0.5
    parts = [w**0.5 * f if w != 1.0 else f for w, f in ((a1, u), (a2, z)) if w]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)  # one part: no copy
