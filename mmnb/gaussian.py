"""Closed forms of the correlated Gaussian pair, the one world two chapters share.

x ~ N(0, I_d) and y = ρx + √(1 − ρ²)ε with ε ~ N(0, I_d) independent: each coordinate of
(x, y) is a standard Gaussian pair with correlation ρ. Chapter 03 trains on it to compare a
learned similarity with the PMI; chapter 06 reads five theories off it.
"""

from __future__ import annotations

import math

from torch import Tensor

from mmnb.config import check_range

__all__ = ["gaussian_mutual_information", "gaussian_pmi"]


def _check_rho(rho: float) -> float:
    check_range("rho", rho, -1.0, 1.0)
    if abs(rho) == 1.0:
        raise ValueError(f"rho={rho!r}: |ρ| = 1 makes y a function of x (infinite PMI)")
    return rho


def gaussian_pmi(x: Tensor, y: Tensor, rho: float) -> Tensor:
    """PMI log p(x, y) / p(x) p(y) of the pairs (x, y), broadcast along the last axis:

    −(d/2) log(1 − ρ²) − (‖x‖² + ‖y‖² − 2ρ x·y) / (2(1 − ρ²)) + (‖x‖² + ‖y‖²) / 2.
    For every pair of two sets, pass `x[:, None]` and `y[None]`.
    """
    q = 1 - _check_rho(rho) ** 2
    cross = (x * y).sum(-1)
    xx, yy = x.square().sum(-1), y.square().sum(-1)
    return -0.5 * x.shape[-1] * math.log(q) - (xx + yy - 2 * rho * cross) / (2 * q) + (xx + yy) / 2


def gaussian_mutual_information(rho: float, dim: int) -> float:
    """I(x; y) = −(d/2) log(1 − ρ²) nats, the mean of `gaussian_pmi` over the pairs."""
    return -0.5 * dim * math.log(1 - _check_rho(rho) ** 2)
