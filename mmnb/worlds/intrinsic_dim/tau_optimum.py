"""Chapter 05's reading of where a learned temperature can stop: the stationarity condition
of the minibatch loss in the inverse temperature, on frozen embeddings.

With logits β s_ij (β = 1/τ, s_ij = ⟨u_i, v_j⟩), one direction of anchor i's loss is
ℓ_i(β) = −β s_ii + log Σ_j e^{β s_ij}, so dℓ_i/dβ = E_{p_β}[s_i·] − s_ii, the softmax-
weighted mean similarity minus the partner's. Its mean over anchors, −G(β), is
increasing in β (its derivative is a variance), so the loss has at most one stationary
β: where G(β) = 0. If every partner is more similar than every negative, G(β) > 0 for
every β and the loss falls all the way to τ → 0; re-paired partners make G negative at
large β and put a finite optimum τ* = 1/β* in between.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import brentq
from torch import Tensor

from mmnb.runtime import stream

__all__ = ["partner_nearest", "stationarity_gap", "stationary_tau"]


def _batched_logits(u: Tensor, v: Tensor, batch_size: int, seed: int) -> Tensor:
    """`[R, batches, B, B]` similarities of random training batches (both embeddings
    `[R, n, w]`), the batches from the stream (seed, "measure/tau-optimum")."""
    n = u.shape[-2]
    order = stream(seed, "measure/tau-optimum").randperm(n)[: n - n % batch_size]
    idx = order.reshape(-1, batch_size).to(u.device)
    ub, vb = u.double()[:, idx], v.double()[:, idx]
    return ub @ vb.transpose(-1, -2)


def stationarity_gap(s: Tensor, beta: float) -> np.ndarray:
    """G(β) per replica: mean over anchors of both directions of s_ii − E_{p_β}[s_i·].

    `s` is `[R, batches, B, B]` (row i: anchor u_i against every v_j of its batch).
    """
    diag = s.diagonal(dim1=-2, dim2=-1)
    gaps = []
    for t in (s, s.transpose(-1, -2)):
        p = torch.softmax(beta * t, dim=-1)
        gaps.append((diag - (p * t).sum(-1)).mean((-1, -2)))
    return (0.5 * (gaps[0] + gaps[1])).cpu().numpy()


def stationary_tau(
    u: Tensor,
    v: Tensor,
    batch_size: int,
    seed: int = 0,
    taus: tuple[float, float] = (1e-4, 10.0),
) -> np.ndarray:
    """The temperature where the frozen embeddings' minibatch loss is stationary, per replica.

    `u`, `v`: `[R, n, w]` embeddings of the training pairs as trained (a re-paired pair
    keeps its new partner). NaN where G(β) keeps one sign over τ in `taus` (G > 0
    throughout: the loss still falls at the smallest τ).
    """
    s = _batched_logits(u, v, batch_size, seed)
    lo, hi = np.log(1 / taus[1]), np.log(1 / taus[0])
    out = []
    for r in range(len(s)):

        def gap(log_beta: float, r: int = r) -> float:
            return float(stationarity_gap(s[r : r + 1], float(np.exp(log_beta)))[0])

        g_lo, g_hi = gap(lo), gap(hi)
        if np.sign(g_lo) == np.sign(g_hi):
            out.append(np.nan)
            continue
        out.append(float(np.exp(-brentq(gap, lo, hi, xtol=1e-6))))
    return np.array(out)


def partner_nearest(u: Tensor, v: Tensor, batch_size: int, seed: int = 0) -> np.ndarray:
    """Share of anchors (both directions, random training batches) whose partner is more
    similar than every negative of its batch: the premise of τ → 0, per replica."""
    s = _batched_logits(u, v, batch_size, seed)
    diag = s.diagonal(dim1=-2, dim2=-1)
    eye = torch.eye(s.shape[-1], dtype=torch.bool, device=s.device)
    shares = []
    for t in (s, s.transpose(-1, -2)):
        best = t.masked_fill(eye, -np.inf).max(-1).values
        shares.append((diag > best).double().mean((-1, -2)))
    return (0.5 * (shares[0] + shares[1])).cpu().numpy()
