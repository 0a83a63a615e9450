"""Held-out R² by scikit-learn: the independent reference the torch R² (`mmnb.regression`)
is tested against. Not part of the package: the book computes R² one way."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from mmnb.probes import ArrayLike, _per_replica


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
