"""Chapter 05's read-outs of trained encoders: dimension, alignment, retrieval, spacing.

Every function takes embeddings with a leading replica axis, `[R, n, width]`, where
replica r uses only its first `widths[r]` coordinates, and returns one number per replica.
`measure` gathers them into a `Measures` record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.neighbors import KNeighborsRegressor
from torch import Tensor

from mmnb import probes
from mmnb.runtime import stream
from mmnb.worlds.intrinsic_dim.encoders import IntrinsicFit
from mmnb.worlds.intrinsic_dim.world import SharedLatentSample

__all__ = [
    "Measures",
    "alignment_ratio",
    "authors_retrieval",
    "id_estimates",
    "knn_r2_columns",
    "measure",
    "nn_spacing",
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


def knn_r2_columns(
    features: Tensor | np.ndarray,
    target: Tensor | np.ndarray,
    n_neighbors: int = 10,
    n_folds: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """Cross-validated k-NN R² of every column of `target` on its own, `[R, m]`.

    The same regression as `mmnb.probes.knn_r2` (out-of-fold predictions pooled, the
    folds of `KFold(shuffle=True, random_state=seed)`), scored column by column instead of
    averaged over columns. `features` is `[R, n, w]`, `target` `[n, m]`. If a column is
    independent of the features its R² is about −1/K, with a standard error of about
    (1 + 1/K)·√(2/n) for a Gaussian column.
    """
    x = torch.as_tensor(features).detach().cpu().double().numpy()
    t = torch.as_tensor(target).detach().cpu().double().numpy().reshape(x.shape[1], -1)
    folds = KFold(n_folds, shuffle=True, random_state=seed)
    model = KNeighborsRegressor(n_neighbors)
    return np.stack(
        [
            r2_score(t, cross_val_predict(model, xr, t, cv=folds), multioutput="raw_values")
            for xr in x
        ]
    )


def alignment_ratio(u: Tensor, v: Tensor) -> Tensor:
    """E‖u_i − v_i‖² / E_{i≠j}‖u_i − v_j‖²: 0 when aligned, about 1 for a random partner.

    The partners' gap relative to a random pair's, on the embeddings as they are; not
    Wang and Isola's alignment (`mmnb.probes.alignment`, E‖û_i − v̂_i‖^α alone).
    """
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
class Measures:
    """One number per replica of a fit, measured on test pairs."""

    id_mle: np.ndarray  # the paper's estimator (arithmetic pooling) on f(X)
    id_mle_harmonic: np.ndarray  # harmonic pooling on f(X)
    id_mle_y: np.ndarray  # the paper's estimator on g(Y)
    id_twonn: np.ndarray
    top1: np.ndarray  # cosine top-1 retrieval x → y among all test pairs
    top_authors: np.ndarray  # raw inner product, top-⌊0.005 n⌋, x → y
    tau: np.ndarray
    alignment_ratio: np.ndarray  # E‖f(x) − g(y)‖² over a random pair's
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
        alignment_ratio=alignment_ratio(u, v).cpu().numpy(),
        gap=(u - v).double().square().sum(-1).mean(-1).cpu().numpy(),
        spacing=nn_spacing(u.cpu(), v.cpu(), batches, seed),
    )
    return m, u, v
