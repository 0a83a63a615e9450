"""Chapter 05's second reading of dimension: the slope of the frozen encoders' loss in
log τ (`tau_slope_dimension`), and what it reads on a cloud of known dimension in the
population limit (`tau_slope_population`).
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

from mmnb.config import check_choice
from mmnb.runtime import stream

__all__ = ["TauSlope", "tau_slope_dimension", "tau_slope_population"]


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
