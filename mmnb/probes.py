"""Downstream measurements on frozen representations.

Functions take features with an optional leading replica axis (`[R, N, d]` or
`[N, d]`) and return one number per replica (an array of shape `[R]`) or a float.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, r2_score
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits
from torch import Tensor, nn

from mmnb.config import check_choice
from mmnb.regression import r2_scores, standardize

__all__ = [
    "PMIFit",
    "alignment",
    "knn_r2",
    "knn_r2_null",
    "linear_probe",
    "mle_dimension",
    "mle_pointwise",
    "participation_ratio",
    "pca_dimension",
    "pmi_fit",
    "principal_cosines",
    "r2_scores",
    "standardize",
    "topk_retrieval",
    "twonn_dimension",
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
    with threadpool_limits(1, user_api="blas"):  # small fits: a threaded BLAS only waits
        return _apply(fn, feats, targs, target_ndim)


def _apply(
    fn: Callable[..., dict[str, float]],
    feats: list[np.ndarray],
    targs: list[np.ndarray],
    target_ndim: int | None,
) -> dict[str, float | np.ndarray]:
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
    more_tests: dict[str, tuple[ArrayLike, ArrayLike]] | None = None,
) -> dict[str, float | np.ndarray]:
    """Logistic regression on standardised frozen features.

    Features `[R, N, d]` take labels `[N]` shared by the replicas or `[R, N]`, one
    labelling per replica (every label set alike). Returns `train_acc`, `test_acc` and
    `test_ce` (nats), and `<name>_acc`, `<name>_ce` for each further test set
    `name: (x, y)` of `more_tests`, scored by the same fit.
    """
    tests = {"test": (test_x, test_y), **(more_tests or {})}

    def fit(xtr: np.ndarray, *arrays: np.ndarray) -> dict[str, float]:
        xs, (ytr, *ys) = arrays[: len(tests)], arrays[len(tests) :]
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
        scores = {"train_acc": float(clf.fit(xtr, ytr).score(xtr, ytr))}
        for name, x, y in zip(tests, xs, ys, strict=True):
            prob = clf.predict_proba(x)
            scores[f"{name}_acc"] = float((clf.classes_[prob.argmax(1)] == y).mean())
            scores[f"{name}_ce"] = float(log_loss(y, prob, labels=clf.classes_))
        return scores

    xs, ys = zip(*tests.values(), strict=True)
    return _per_replica(fit, (train_x, *xs), (train_y, *ys), target_ndim=1)


def topk_retrieval(u: Tensor, v: Tensor, k: int = 1, kind: str = "cosine") -> Tensor:
    """Fraction of rows i for which `v[i]` is among the k candidates most similar to `u[i]`."""
    from mmnb.losses import similarity

    scores = similarity(u, v, kind)
    positive = scores.diagonal(dim1=-2, dim2=-1).unsqueeze(-1)
    rank = (scores > positive).sum(-1)  # how many candidates beat the true partner
    return (rank < k).float().mean(-1)


def principal_cosines(a: Tensor, b: Tensor) -> Tensor:
    """Cosines of the principal angles between the column spans of `a` and `b` (`[..., N, k]`),
    in float64, largest first; all ones when the spans agree."""
    qa, _ = torch.linalg.qr(a.double())
    qb, _ = torch.linalg.qr(b.double().to(qa.device))
    return torch.linalg.svdvals(qa.mT @ qb)


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


# --- intrinsic dimension ---------------------------------------------------------------------


def _id_per_replica(
    features: ArrayLike, estimate: Callable[[np.ndarray], float]
) -> float | np.ndarray:
    """Apply a dimension estimate to each replica's `[N, d]` point cloud (in float64)."""

    def fn(x: np.ndarray) -> dict[str, float]:
        x = np.asarray(x, dtype=np.float64)
        if x.shape[1] == 1:  # skdim wants two columns; a zero column changes no distance
            x = np.hstack([x, np.zeros_like(x)])
        with np.errstate(divide="ignore", invalid="ignore"):  # skdim's eigenvalue gaps of 0
            return {"id": float(estimate(x))}

    return _per_replica(fn, (features,), ())["id"]


def mle_dimension(
    features: ArrayLike, n_neighbors: int = 20, comb: str = "mle"
) -> float | np.ndarray:
    """Levina–Bickel maximum-likelihood dimension, pooled over points by `comb`.

    At each point, with T_j the distance to its j-th neighbour among `n_neighbors`,
    m(x) = (K − 1) / Σ_{j<K} log(T_K / T_j). `comb="mle"` pools them by the harmonic mean
    1 / mean(1 / m(x)), as MacKay and Ghahramani suggest (scikit-dimension's
    `MLE().fit(X).dimension_`); `comb="mean"` by the arithmetic mean (what
    `MLE().fit_transform(X)` returns: its default `comb` differs from `fit`'s);
    `comb="median"` by the median.
    """
    from skdim.id import MLE

    check_choice("comb", comb, ("mle", "mean", "median"))

    def estimate(x: np.ndarray) -> float:
        return MLE().fit(x, n_neighbors=n_neighbors, comb=comb).dimension_

    return _id_per_replica(features, estimate)


def mle_pointwise(features: ArrayLike, n_neighbors: int = 20) -> np.ndarray:
    """The pointwise Levina–Bickel estimates m(x) of one `[N, d]` cloud (scikit-dimension's
    `MLE().dimension_pw_`), to pool in several ways from one neighbour search."""
    from skdim.id import MLE

    x = np.asarray(_numpy(features), dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be one [N, d] cloud, got shape {x.shape}")
    if x.shape[1] == 1:  # skdim wants two columns; a zero column changes no distance
        x = np.hstack([x, np.zeros_like(x)])
    return MLE().fit(x, n_neighbors=n_neighbors).dimension_pw_


def twonn_dimension(features: ArrayLike, discard_fraction: float = 0.1) -> float | np.ndarray:
    """Facco et al.'s TwoNN: μ = T_2 / T_1 is Pareto(1, m), so −log(1 − F(μ)) = m log μ.

    The slope is fitted through the origin after discarding the largest `discard_fraction`
    of the ratios (scikit-dimension's `TwoNN` with its defaults, the paper's 10%).
    """
    from skdim.id import TwoNN

    return _id_per_replica(features, TwoNN(discard_fraction=discard_fraction).fit_transform)


def participation_ratio(features: ArrayLike) -> float | np.ndarray:
    """(Σ λ_i)² / Σ λ_i² of the covariance eigenvalues: a linear, soft count of directions."""
    from skdim.id import lPCA

    return _id_per_replica(features, lPCA(ver="participation_ratio").fit_transform)


def pca_dimension(features: ArrayLike, variance: float = 0.95) -> float | np.ndarray:
    """The number of principal components needed to explain `variance` of the variance.

    A linear count: a curved k-dimensional manifold needs more than k components.
    (scikit-dimension's `lPCA(ver="ratio")`, whose default `alphaRatio` is 0.05, not 0.95.)
    """
    from skdim.id import lPCA

    return _id_per_replica(features, lPCA(ver="ratio", alphaRatio=variance).fit_transform)


def knn_r2(
    features: ArrayLike,
    target: ArrayLike,
    n_neighbors: int = 10,
    n_folds: int = 5,
    seed: int = 0,
) -> float | np.ndarray:
    """Cross-validated R² of k-nearest-neighbour regression of `target` on `features`.

    Out-of-fold predictions of all points are pooled into one R² (averaged over the
    target's columns). If the target is independent of the features, R² is about
    `knn_r2_null(n_neighbors)` = −1/K, not 0. Targets are `[N, m]` shared by the
    replicas or `[R, N, m]`, one per replica.
    """
    folds = KFold(n_folds, shuffle=True, random_state=seed)

    def fit(x: np.ndarray, t: np.ndarray) -> dict[str, float]:
        t = t.reshape(len(t), -1)
        pred = cross_val_predict(KNeighborsRegressor(n_neighbors), x, t, cv=folds)
        return {"r2": float(r2_score(t, pred))}

    return _per_replica(fit, (features,), (target,), target_ndim=2)["r2"]


def knn_r2_null(n_neighbors: int) -> float:
    """R² of a K-nearest-neighbour regression when the target is independent of the features.

    The prediction is then the mean of K targets drawn independently of the point's own,
    so the squared error is σ² + σ²/K against a baseline of σ²: R² = 1 − (1 + 1/K) = −1/K.
    """
    return -1.0 / n_neighbors


@dataclass
class PMIFit:
    """How far logit tables are from a PMI matrix, one value per replica.

    The optimum of the symmetric InfoNCE loss is PMI + C for one free constant C, so
    every measure ignores C. `delta` is the largest deviation max |logit − PMI − C| with
    the best C (half the range of logit − PMI over the cells of positive weight): the δ
    of the downstream bound. `rmse` is the weighted root-mean-square of logit − PMI
    after removing its weighted mean; `slope` the weighted least-squares slope of the
    centred logits on the centred PMI (1 at the optimum); `corr` the weighted correlation,
    which ignores the scale of the logits.
    """

    delta: Tensor
    rmse: Tensor
    slope: Tensor
    corr: Tensor


def pmi_fit(logits: Tensor, target: Tensor, weights: Tensor | None = None) -> PMIFit:
    """The fit of `logits` (`[..., n, m]`) to a PMI matrix `target` (`[n, m]`), see `PMIFit`.

    `weights` over the cells default to uniform; for a joint table use p(x)p(y), the
    distribution of the negatives.
    """
    logits = torch.as_tensor(logits).double()
    target = torch.as_tensor(target, dtype=torch.float64).to(logits.device)
    if weights is None:
        weights = torch.ones_like(target)
    w = torch.as_tensor(weights, dtype=torch.float64).to(logits.device)
    w = w / w.sum()

    def centred(a: Tensor) -> Tensor:
        return a - (w * a).sum((-1, -2), keepdim=True)

    a, b = centred(logits), centred(target)
    var_a, var_b = (w * a * a).sum((-1, -2)), (w * b * b).sum((-1, -2))
    cov = (w * a * b).sum((-1, -2))
    diff = (logits - target).flatten(-2)[..., w.flatten() > 0]
    return PMIFit(
        delta=(diff.amax(-1) - diff.amin(-1)) / 2,
        rmse=(w * (a - b) ** 2).sum((-1, -2)).sqrt(),
        slope=cov / var_b,
        corr=cov / (var_a * var_b).sqrt(),
    )
