"""The downstream task: a label that reaches x only through y, its risks computed exactly.

The label is c(y) = ⌊C · y / n⌋. Every risk is an exact population cross-entropy,
summed over the states of the ring: the Bayes classifier H(C | X), the zero-shot
prototype classifier built on a logit table, the best linear probe on a feature map,
and the KL bound on the prototype classifier's excess cross-entropy.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmnb.config import check_range

__all__ = [
    "bayes_cross_entropy",
    "class_labels",
    "kl_bound",
    "probe_cross_entropy",
    "prototype_cross_entropy",
]


def class_labels(n_states: int = 64, n_classes: int = 8) -> Tensor:
    """The label c(y) = ⌊n_classes · y / n_states⌋ of every text state y."""
    check_range("n_classes", n_classes, 2, n_states, integer=True)
    return torch.arange(n_states) * n_classes // n_states


def _label_matrix(labels: Tensor) -> Tensor:
    return nn.functional.one_hot(labels.long()).double()  # [n_y, C]


def bayes_cross_entropy(joint: Tensor, labels: Tensor) -> float:
    """H(C | X) = −E log p(c | x): the cross-entropy of the best possible classifier of x."""
    p_xc = joint.double() @ _label_matrix(labels)
    p_c_x = p_xc / p_xc.sum(1, keepdim=True)
    return float(-(p_xc * p_c_x.log()).sum())


def kl_bound(joint: Tensor, labels: Tensor) -> float:
    """E_{x,c} KL(p(y | c) ‖ p(y | x, c)), the bound on the prototype classifier's excess CE."""
    joint = joint.double()
    onehot = _label_matrix(labels)  # [y, c]
    p_y = joint.sum(0)
    p_y_c = onehot * p_y[:, None] / (onehot * p_y[:, None]).sum(0)  # p(y | c)
    p_x = joint.sum(1)
    p_xyc = joint[:, :, None] * onehot[None]  # p(x, y, c)
    p_c_x = p_xyc.sum(1) / p_x[:, None]  # p(c | x)
    p_y_xc = p_xyc / p_xyc.sum(1, keepdim=True)  # p(y | x, c)
    inside = p_y_c > 0
    log_ratio = torch.where(inside, p_y_c.log() - p_y_xc.log(), 0.0)
    kl = (p_y_c[None] * log_ratio).sum(1)  # [x, c]
    return float((p_x[:, None] * p_c_x * kl).sum())


def _population_ce(class_logits: Tensor, joint: Tensor, labels: Tensor) -> Tensor:
    """Exact cross-entropy E_{x,c} −log softmax(class_logits[x])_c, one value per replica."""
    p_xc = (joint.double() @ _label_matrix(labels)).to(class_logits.device)
    logq = torch.log_softmax(class_logits.double(), -1)
    return -(p_xc * logq).sum((-1, -2))


def prototype_cross_entropy(table: Tensor, joint: Tensor, labels: Tensor) -> Tensor:
    """Exact cross-entropy of the zero-shot prototype classifier built on a logit table.

    The classifier scores class c by the mean similarity to the texts of class c,
    Σ_y p(y | c) table[x, y] (the inner product with the class mean of text features),
    plus log p(c). `table` is `[n, n]` or `[..., n, n]`; returns one value per table.
    """
    table = torch.as_tensor(table).double()
    onehot = _label_matrix(labels).to(table.device)
    p_y = joint.double().sum(0).to(table.device)
    p_yc = onehot * p_y[:, None]
    p_c = p_yc.sum(0)
    scores = table @ (p_yc / p_c) + p_c.log()
    return _population_ce(scores, joint, labels)


def probe_cross_entropy(
    features: Tensor, joint: Tensor, labels: Tensor, l2: float = 1e-6, iters: int = 500
) -> Tensor:
    """Exact cross-entropy of the best linear probe (multinomial logistic regression).

    `features` is `[n, d]` or `[R, n, d]`, one row per state x; the probe is fitted on
    the population loss (weights p(x, c)) with a small ridge `l2`, by L-BFGS.
    With more feature dimensions than states, the probe is fitted in the coordinates
    F V of the features' row space (F = U S Vᵀ): the ridge keeps the best weights w = V β
    in that space and ‖w‖ = ‖β‖, so the optimum is the same at a fraction of the cost.
    """
    check_range("l2", l2, 0.0, None)
    feats = torch.as_tensor(features).detach().double()
    feats = feats[None] if feats.ndim == 2 else feats
    if feats.shape[2] > feats.shape[1]:
        u, s, _ = torch.linalg.svd(feats, full_matrices=False)
        feats = u * s[:, None, :]  # F V, [R, n, n]
    n_classes = int(labels.max()) + 1
    w = torch.zeros(feats.shape[0], feats.shape[2], n_classes, dtype=torch.float64)
    b = torch.zeros(feats.shape[0], 1, n_classes, dtype=torch.float64)
    w, b = w.to(feats.device).requires_grad_(), b.to(feats.device).requires_grad_()
    opt = torch.optim.LBFGS([w, b], max_iter=iters, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = _population_ce(feats @ w + b, joint, labels).sum() + l2 * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return _population_ce(feats @ w + b, joint, labels)
