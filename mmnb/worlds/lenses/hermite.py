"""The singular functions of the world's density ratio: orthonormal Hermite polynomials.

For ρ-correlated standard Gaussians, p(a, b) / p(a) p(b) = Σ_n ρ^n h_n(a) h_n(b) (Mehler's
formula), so the features of total degree n are its singular functions with singular value
ρ^n: what the spectral model of lens 4 should recover, in order.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["hermite_exponents", "hermite_features", "hermite_gram_variance"]


def hermite_exponents(k: int, degree: int) -> list[tuple[int, ...]]:
    """The multi-indices of total degree `degree` in `k` variables, in the column order of
    `hermite_features`."""
    return [e for e in itertools.product(range(degree + 1), repeat=k) if sum(e) == degree]


def hermite_features(a: Tensor, degree: int) -> Tensor:
    """The orthonormal Hermite polynomials of total degree `degree` in the columns of `a`.

    For ρ-correlated standard Gaussians these are the singular functions of
    p(a, b) / p(a) p(b), with singular value ρ^degree (Mehler's formula).
    """
    he = [torch.ones_like(a), a]  # probabilists' Hermite He_0, He_1 of each coordinate
    for n in range(1, degree):
        he.append(a * he[n] - n * he[n - 1])
    cols = []
    for exps in hermite_exponents(a.shape[1], degree):
        col = torch.ones_like(a[:, 0])
        for c, e in enumerate(exps):
            col = col * he[e][:, c] / math.sqrt(math.factorial(e))
        cols.append(col)
    return torch.stack(cols, 1)


def hermite_gram_variance(k: int, degree: int) -> Tensor:
    """Var(h_i h_j) for the features h = `hermite_features(a, degree)` of a ~ N(0, I_k),
    `[F, F]` (float64): the variance of one term of the Monte Carlo Gram matrix hᵀh / n,
    whose entry (i, j) then has standard error √(Var / n). Exact: E[h_i² h_j²] factorizes
    over coordinates, and each factor is a polynomial of degree ≤ 4·degree, integrated by
    Gauss–Hermite quadrature with 2·degree + 1 nodes (exact to degree 4·degree + 1).
    For degree 3, Var(He₃(a₁)² / 6) = 93 − 1 = 92.
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(2 * degree + 1)
    weights = weights / weights.sum()  # the standard normal's quadrature
    h = [np.polynomial.hermite_e.hermeval(nodes, np.eye(degree + 1)[n])
         / math.sqrt(math.factorial(n)) for n in range(degree + 1)]  # fmt: skip
    # m[p, q] = E[h_p(x)² h_q(x)²] for one standard normal coordinate x
    m = np.array([[np.sum(weights * h[p] ** 2 * h[q] ** 2) for q in range(degree + 1)]
                  for p in range(degree + 1)])  # fmt: skip
    exps = hermite_exponents(k, degree)
    fourth = np.array([[math.prod(m[p, q] for p, q in zip(ei, ej, strict=True)) for ej in exps]
                       for ei in exps])  # fmt: skip
    return torch.as_tensor(fourth - np.eye(len(exps)))
