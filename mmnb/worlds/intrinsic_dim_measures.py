"""Chapter 05's measurements on trained encoders: dimension, alignment, retrieval, spacing.

Every function takes embeddings with a leading replica axis, `[R, n, width]`, where
replica r uses only its first `widths[r]` coordinates, and returns one number per replica.
`measure` gathers them into a `Measures` record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.stats import chi2
from torch import Tensor

from mmnb import probes
from mmnb.config import check_choice
from mmnb.runtime import stream
from mmnb.worlds.intrinsic_dim import SharedLatentSample
from mmnb.worlds.intrinsic_dim_encoders import IntrinsicFit

__all__ = [
    "Measures",
    "TauSlope",
    "alignment",
    "authors_retrieval",
    "id_estimates",
    "measure",
    "nn_spacing",
    "tau_slope_dimension",
    "tau_slope_population",
]


def _clouds(u: Tensor, widths: Sequence[int]) -> list[np.ndarray]:
    return [u[r, :, :w].detach().cpu().double().numpy() for r, w in enumerate(widths)]


def id_estimates(u: Tensor, widths: Sequence[int], n_neighbors: int = 20) -> dict[str, np.ndarray]:
    """Levina–Bickel MLE of each replica's cloud, pooled two ways from one neighbour search.

    "mean": the arithmetic mean of the pointwise estimates, what the authors' call
    `skdim.id.MLE().fit_transform(X)` returns; "harmonic": 1 / mean(1 / m(x)), what
    `MLE().fit(X).dimension_` returns (MacKay and Ghahramani's pooling).
    """
    pointwise = [probes.mle_pointwise(c, n_neighbors) for c in _clouds(u, widths)]
    return {
        "mean": np.array([p.mean() for p in pointwise]),
        "harmonic": np.array([1 / (1 / p).mean() for p in pointwise]),
    }


def alignment(u: Tensor, v: Tensor) -> Tensor:
    """E‖u_i − v_i‖² / E_{i≠j}‖u_i − v_j‖²: 0 when aligned, about 1 for a random partner."""
    u, v = u.double(), v.double()
    n = u.shape[-2]
    positive = (u - v).square().sum(-1).mean(-1)
    all_pairs = (
        u.square().sum(-1).mean(-1)
        + v.square().sum(-1).mean(-1)
        - 2 * (u.mean(-2) * v.mean(-2)).sum(-1)
    )
    negative = (n * all_pairs - positive) / (n - 1)
    return (positive / negative).float()


def nn_spacing(u: Tensor, v: Tensor, batch_sizes: Sequence[int], seed: int = 0) -> np.ndarray:
    """Mean over anchors of min_{j ≠ i} ‖u_i − v_j‖² among `batch_sizes[r]` candidates.

    The squared distance from an anchor to its nearest *negative* in a minibatch of the
    size replica r trained with (test pairs in random batches from the stream
    (seed, "measure/spacing")).
    """
    n = u.shape[-2]
    order = stream(seed, "measure/spacing").randperm(n)
    out = []
    for r, b in enumerate(batch_sizes):
        values = []
        for start in range(0, n - b + 1, b):
            idx = order[start : start + b]
            d2 = torch.cdist(u[r, idx].double(), v[r, idx].double()).square()
            d2.diagonal().fill_(float("inf"))
            values.append(d2.min(-1).values)
        out.append(torch.cat(values).mean().item())
    return np.array(out)


def authors_retrieval(u: Tensor, v: Tensor, fraction: float = 5e-3) -> Tensor:
    """The retrieval of the authors' figures (`process_utils.top_k_err`): raw inner product,
    x → y, correct if the partner is among the top ⌊fraction · n⌋ candidates."""
    return probes.topk_retrieval(u, v, k=max(1, int(fraction * u.shape[-2])), kind="dot")


@dataclass
class TauSlope:
    """The dimension read off the slope of the loss in log τ, with its window.

    `dimension = 2 (L(τ_high) − L(τ_low)) / log(τ_high / τ_low)`, where L(τ) is the
    symmetric InfoNCE loss of the frozen embeddings at temperature τ and the window ends
    where L = log(1 + levels[0]) and log(1 + levels[1]); one entry per replica.
    """

    dimension: np.ndarray
    tau_low: np.ndarray
    tau_high: np.ndarray


def _distance_loss(d2: Tensor, partner: Tensor, log_tau: float) -> float:
    """Mean over anchors (both directions stacked in `d2`, `[2, a, n]`) of
    −log softmax of the partner among all n candidates, logits −‖u − v‖² / 2τ."""
    t = 2.0 * np.exp(log_tau)
    return (partner / t + torch.logsumexp(-d2 / t, -1)).mean().item()


def _tau_slope_one(u: Tensor, v: Tensor, levels: tuple[float, float], anchors: Tensor):
    d2 = torch.stack([torch.cdist(u[anchors], v), torch.cdist(v[anchors], u)]).square()
    partner = d2[:, torch.arange(len(anchors)), anchors]
    spacing = d2.clone()
    spacing[:, torch.arange(len(anchors)), anchors] = float("inf")
    x = float(np.log(spacing.min(-1).values.mean().item()))  # log of the mean δ², start

    def loss(log_tau: float) -> float:
        return _distance_loss(d2, partner, log_tau)

    step, ends = np.log(10.0) / 2, []
    for level in np.log1p(levels):  # bracket each level by half-decades, then Brent
        while (above := loss(x)) > level:
            if loss(x - step) >= above:  # misaligned: the loss never gets this low
                return np.nan, np.nan, np.nan
            x -= step
        hi = x + step
        while loss(hi) < level:
            x, hi = hi, hi + step
        x = brentq(lambda t, lev=level: loss(t) - lev, x, hi, xtol=1e-4)
        ends.append(x)
    slope = (np.log1p(levels[1]) - np.log1p(levels[0])) / (ends[1] - ends[0])
    return 2 * slope, np.exp(ends[0]), np.exp(ends[1])


def tau_slope_dimension(
    u: Tensor,
    v: Tensor | None = None,
    widths: Sequence[int] | None = None,
    levels: tuple[float, float] = (10.0, 100.0),
    n_anchors: int | None = 500,
    seed: int = 0,
) -> TauSlope:
    """Twice the slope of the frozen-encoder loss in log τ, across a window set by the loss.

    L(τ) is the symmetric InfoNCE loss of the pairs (u_i, v_i) with logits
    −‖u_i − v_j‖²/2τ, every one of the n pairs a candidate (for unit vectors this is the
    dot-product loss: ⟨u, v⟩ = 1 − ‖u − v‖²/2 and the constant cancels). For aligned
    pairs L = mean log(1 + N_i(τ)), N_i the kernel mass of anchor i's negatives, which
    grows like τ^{m/2} on an m-dimensional cloud while the kernel holds many points but
    few of all n. The window is where that mass goes from `levels[0]` to `levels[1]`
    (L from log 11 to log 101 by default), the same counts for every dimension.
    `u`, `v` are `[n, w]` or `[R, n, width]` with replica r using its first `widths[r]`
    coordinates; `v=None` scores u against itself (perfectly aligned partners). The loss
    is averaged over `n_anchors` anchors per direction (drawn from the stream
    (seed, "measure/tau-slope"); None: all n). NaN where the loss never falls to
    log(1 + levels[0]) (partners not among the nearest candidates: no window).
    """
    u = u.detach().cpu().float()
    v = u if v is None else v.detach().cpu().float()
    if u.ndim == 2:
        u, v = u[None], v[None]
    widths = [u.shape[-1]] * len(u) if widths is None else list(widths)
    if not 0 < levels[0] < levels[1]:
        raise ValueError(f"levels={levels}: need 0 < levels[0] < levels[1]")
    n = u.shape[-2]
    if levels[1] >= n - 1:
        raise ValueError(f"levels={levels}: levels[1] must be below n − 1 = {n - 1}")
    rows = torch.arange(n)
    if n_anchors is not None and n_anchors < n:
        rows = stream(seed, "measure/tau-slope").randperm(n)[:n_anchors]
    out = [_tau_slope_one(u[r, :, :w], v[r, :, :w], levels, rows) for r, w in enumerate(widths)]
    return TauSlope(*(np.array(col) for col in zip(*out, strict=True)))


def tau_slope_population(
    m: int, n: int, levels: tuple[float, float] = (10.0, 100.0), shape: str = "gaussian"
) -> float:
    """What `tau_slope_dimension` reads on n points of a known m-dimensional cloud, in
    the population limit of the kernel mass (no sampling noise).

    Anchor u's negatives have mass N(u, τ) = (n − 1) E_v e^{−‖u − v‖²/2τ}, and the loss of
    aligned partners is E_u log(1 + N(u, τ)). For `shape="gaussian"` (N(0, I_m)),
    E_v e^{−‖u−v‖²/2τ} = (τ/(1+τ))^{m/2} e^{−‖u‖²/2(1+τ)}: its slope in log τ is m/2 only
    for τ ≪ 1, the variance of the data (E_u over 400 quantiles of ‖u‖² ~ χ²_m). For
    `shape="sphere"` (uniform on S^m ⊂ ℝ^{m+1}), ‖u − v‖² = 2(1 − cos θ) with
    cos θ of density ∝ (1 − c²)^{(m−2)/2}, the same for every anchor.
    """
    check_choice("shape", shape, ("gaussian", "sphere"))
    if shape == "gaussian":
        r2 = chi2.ppf((np.arange(400) + 0.5) / 400, m)

        def log_mass(x: float) -> np.ndarray:
            t = np.exp(x)
            return m / 2 * (x - np.log1p(t)) - r2 / (2 * (1 + t))

    else:

        def log_mass(x: float) -> np.ndarray:
            t = np.exp(x)  # s = 1 − cos θ ∈ [0, 2], weight (s(2 − s))^{(m−2)/2}
            w = [lambda s, a=a: (s * (2 - s)) ** ((m - 2) / 2) * np.exp(-a * s) for a in (1 / t, 0)]
            mass = [quad(f, 0, 2, points=[min(t, 1.0)], limit=200)[0] for f in w]
            return np.array([np.log(mass[0] / mass[1])])

    def loss(x: float, level: float) -> float:
        return float(np.mean(np.log1p((n - 1) * np.exp(log_mass(x))))) - level

    ends = [brentq(loss, -25.0, 25.0, args=(lev,), xtol=1e-6) for lev in np.log1p(levels)]
    return 2 * (np.log1p(levels[1]) - np.log1p(levels[0])) / (ends[1] - ends[0])


@dataclass
class Measures:
    """One number per replica of a fit, measured on test pairs."""

    id_mle: np.ndarray  # the paper's estimator (arithmetic pooling) on f(X)
    id_mle_harmonic: np.ndarray  # harmonic pooling on f(X)
    id_mle_y: np.ndarray  # the paper's estimator on g(Y)
    id_twonn: np.ndarray
    top1: np.ndarray  # cosine top-1 retrieval x → y among all test pairs
    top_authors: np.ndarray  # raw inner product, top-⌊0.005 n⌋, x → y
    tau: np.ndarray
    alignment: np.ndarray
    gap: np.ndarray  # E‖f(x) − g(y)‖² between partners (absolute)
    spacing: np.ndarray  # squared distance to the nearest negative in a training-size batch

    def select(self, rows: Sequence[int]) -> Measures:
        """The measures of replicas `rows`."""
        return Measures(**{k: v[list(rows)] for k, v in vars(self).items()})


def measure(
    fit: IntrinsicFit,
    test: SharedLatentSample,
    batch_size: int,
    n_neighbors: int,
    seed: int,
    extras: bool = True,
) -> tuple[Measures, Tensor, Tensor]:
    """The `Measures` of every replica of `fit` on `test`, with the embeddings f(X), g(Y).

    `extras=False` skips the MLE of g(Y) and TwoNN (NaN in their place).
    """
    with torch.no_grad():
        u, v = fit.embed_x(test.x), fit.embed_y(test.y)
    widths = fit.out_widths
    ids = id_estimates(u, widths, n_neighbors)
    nan = np.full(len(widths), np.nan)
    ids_y = id_estimates(v, widths, n_neighbors)["mean"] if extras else nan
    twonn = [probes.twonn_dimension(c) for c in _clouds(u, widths)] if extras else nan
    batches = [batch_size // s for s in fit.sub_batches]
    m = Measures(
        id_mle=ids["mean"],
        id_mle_harmonic=ids["harmonic"],
        id_mle_y=ids_y,
        id_twonn=np.array(twonn),
        top1=probes.topk_retrieval(u, v).cpu().numpy(),
        top_authors=authors_retrieval(u, v).cpu().numpy(),
        tau=fit.tau().detach().cpu().numpy(),
        alignment=alignment(u, v).cpu().numpy(),
        gap=(u - v).double().square().sum(-1).mean(-1).cpu().numpy(),
        spacing=nn_spacing(u.cpu(), v.cpu(), batches, seed),
    )
    return m, u, v
