"""Downstream measurements on frozen representations.

Functions take features with an optional leading replica axis (`[R, N, d]` or
`[N, d]`) and return one number per replica (an array of shape `[R]`) or a float.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import log_loss, r2_score
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler
from torch import Tensor, nn

__all__ = [
    "alignment",
    "linear_probe",
    "r2_kernel",
    "r2_linear",
    "topk_retrieval",
    "uniformity",
]

ArrayLike = Tensor | np.ndarray


def _numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x)


def _per_replica(
    fn: Callable[..., dict[str, float]],
    features: tuple[ArrayLike, ...],
    targets: tuple[ArrayLike, ...],
    target_ndim: int | None = None,
) -> dict[str, float | np.ndarray]:
    """Apply `fn` to each replica's features.

    Targets are shared by all replicas, unless `target_ndim` (the number of axes of one
    replica's target) is given and the targets have one more axis: then replica r gets
    `target[r]`.
    """
    feats = [_numpy(f) for f in features]
    targs = [_numpy(t) for t in targets]
    if feats[0].ndim == 2:
        return fn(*feats, *targs)
    own = target_ndim is not None and targs[0].ndim == target_ndim + 1

    def replica_targets(r: int) -> list[np.ndarray]:
        return [t[r] for t in targs] if own else targs

    rows = [fn(*(f[r] for f in feats), *replica_targets(r)) for r in range(feats[0].shape[0])]
    return {key: np.array([row[key] for row in rows]) for key in rows[0]}


def linear_probe(
    train_x: ArrayLike,
    train_y: ArrayLike,
    test_x: ArrayLike,
    test_y: ArrayLike,
    C: float = 1.0,
    max_iter: int = 2000,
) -> dict[str, float | np.ndarray]:
    """Logistic regression on standardised frozen features.

    Features `[R, N, d]` take labels `[N]` shared by the replicas or `[R, N]`, one
    labelling per replica. Returns `train_acc`, `test_acc` and `test_ce` (nats).
    """

    def fit(xtr: np.ndarray, xte: np.ndarray, ytr: np.ndarray, yte: np.ndarray) -> dict[str, float]:
        scaler = StandardScaler().fit(xtr)
        clf = LogisticRegression(C=C, max_iter=max_iter).fit(scaler.transform(xtr), ytr)
        prob = clf.predict_proba(scaler.transform(xte))
        return {
            "train_acc": float(clf.score(scaler.transform(xtr), ytr)),
            "test_acc": float((clf.classes_[prob.argmax(1)] == yte).mean()),
            "test_ce": float(log_loss(yte, prob, labels=clf.classes_)),
        }

    return _per_replica(fit, (train_x, test_x), (train_y, test_y), target_ndim=1)


def _r2(model_factory: Callable[[], object]) -> Callable[..., dict[str, float]]:
    def fit(xtr: np.ndarray, xte: np.ndarray, ztr: np.ndarray, zte: np.ndarray) -> dict[str, float]:
        scaler = StandardScaler().fit(xtr)
        model = model_factory().fit(scaler.transform(xtr), ztr)
        return {"r2": float(r2_score(zte, model.predict(scaler.transform(xte))))}

    return fit


def r2_linear(
    train_x: ArrayLike, train_z: ArrayLike, test_x: ArrayLike, test_z: ArrayLike
) -> float | np.ndarray:
    """Held-out R² of the best linear map from features to the target `z`."""
    return _per_replica(_r2(LinearRegression), (train_x, test_x), (train_z, test_z))["r2"]


def r2_kernel(
    train_x: ArrayLike,
    train_z: ArrayLike,
    test_x: ArrayLike,
    test_z: ArrayLike,
    alphas: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0),
    gamma: float | None = None,
) -> float | np.ndarray:
    """Held-out R² of Gaussian-kernel ridge regression (nonlinear predictability).

    The ridge penalty is chosen among `alphas` by 3-fold cross-validation on the
    training split; `gamma=None` uses 1 / n_features on standardised features.
    """

    def factory() -> GridSearchCV:
        return GridSearchCV(KernelRidge(kernel="rbf", gamma=gamma), {"alpha": list(alphas)}, cv=3)

    return _per_replica(_r2(factory), (train_x, test_x), (train_z, test_z))["r2"]


def topk_retrieval(u: Tensor, v: Tensor, k: int = 1, kind: str = "cosine") -> Tensor:
    """Fraction of rows i for which `v[i]` is among the k candidates most similar to `u[i]`."""
    from mmnb.losses import similarity

    scores = similarity(u, v, kind)
    positive = scores.diagonal(dim1=-2, dim2=-1).unsqueeze(-1)
    rank = (scores > positive).sum(-1)  # how many candidates beat the true partner
    return (rank < k).float().mean(-1)


def alignment(u: Tensor, v: Tensor, alpha: float = 2.0) -> Tensor:
    """Wang & Isola's alignment, mean ‖û_i − v̂_i‖^α over positive pairs (lower: closer)."""
    u, v = nn.functional.normalize(u, dim=-1), nn.functional.normalize(v, dim=-1)
    return (u - v).norm(dim=-1).pow(alpha).mean(-1)


def uniformity(u: Tensor, t: float = 2.0) -> Tensor:
    """Wang & Isola's uniformity, log E exp(−t‖û_i − û_j‖²) over i ≠ j (lower: more uniform)."""
    u = nn.functional.normalize(u, dim=-1)
    n = u.shape[-2]
    sq = torch.cdist(u, u).square()
    off = ~torch.eye(n, dtype=torch.bool, device=u.device)
    return torch.logsumexp(-t * sq[..., off], dim=-1) - np.log(n * (n - 1))
