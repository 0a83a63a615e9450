"""Downstream probes on cases with known answers."""

import numpy as np
import pytest
import torch
from sklearn_reference import r2_kernel, r2_linear

from mmnb.probes import (
    alignment,
    linear_probe,
    r2_scores,
    topk_retrieval,
    uniformity,
)


def test_topk_retrieval():
    u = torch.eye(4)
    v = torch.eye(4)[[0, 1, 3, 2]]  # rows 2 and 3 swapped
    assert topk_retrieval(u, v, k=1).item() == pytest.approx(0.5)
    assert topk_retrieval(torch.stack([u, u]), torch.stack([u, v])).tolist() == [1.0, 0.5]


def test_alignment_and_uniformity_closed_forms():
    u = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert alignment(u, 3 * u).item() == pytest.approx(0.0)
    assert alignment(u, -u).item() == pytest.approx(4.0)  # ‖û − (−û)‖² = 4
    assert uniformity(u, t=2).item() == pytest.approx(-8.0)  # log exp(−2·4)


def test_linear_probe_and_r2_on_replicas():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] > 0).astype(int)
    feats = np.stack([x, rng.normal(size=x.shape)])  # replica 0 informative, 1 noise
    res = linear_probe(feats[:, :200], y[:200], feats[:, 200:], y[200:])
    assert res["test_acc"][0] > 0.95 and 0.3 < res["test_acc"][1] < 0.7
    z = x @ np.array([[1.0], [2.0], [0.0]])
    assert r2_linear(x[:200], z[:200], x[200:], z[200:]) == pytest.approx(1.0, abs=1e-9)
    assert r2_kernel(x[:200], np.sin(x[:200, :1]), x[200:], np.sin(x[200:, :1])) > 0.9


def test_linear_probe_with_one_labelling_per_replica():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 300, 2))
    y = np.stack([(x[0, :, 0] > 0), (x[1, :, 1] > 0)]).astype(int)  # replica r: sign of x_r
    res = linear_probe(x[:, :150], y[:, :150], x[:, 150:], y[:, 150:])
    assert (res["test_acc"] > 0.95).all()
    shared = linear_probe(x[:, :150], y[0, :150], x[:, 150:], y[0, 150:])
    assert shared["test_acc"][0] > 0.95 and shared["test_acc"][1] < 0.75


def test_linear_probe_scores_more_test_sets_with_the_same_fit():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 450, 3))
    y = (x[..., 0] + 0.3 * rng.normal(size=(2, 450)) > 0).astype(int)
    flipped = 1 - y[:, 300:]  # the same images, labels reversed: the fit must score 1 − acc
    res = linear_probe(
        x[:, :150],
        y[:, :150],
        x[:, 150:300],
        y[:, 150:300],
        more_tests={"other": (x[:, 300:], y[:, 300:]), "flipped": (x[:, 300:], flipped)},
    )
    alone = linear_probe(x[:, :150], y[:, :150], x[:, 300:], y[:, 300:])
    np.testing.assert_array_equal(res["other_acc"], alone["test_acc"])
    np.testing.assert_array_equal(res["other_ce"], alone["test_ce"])
    np.testing.assert_allclose(res["flipped_acc"], 1 - res["other_acc"])
    assert (res["other_acc"] > 0.8).all() and (res["flipped_ce"] > res["other_ce"]).all()
    names = {f"{t}_{m}" for t in ("test", "other", "flipped") for m in ("acc", "ce")}
    assert set(res) == {"train_acc", *names}


def _flat(n: int, k: int, ambient: int, seed: int) -> np.ndarray:
    """n standard Gaussian points of R^k placed by a random isometry into R^ambient.

    (Gaussian rather than uniform on a cube: the cube's faces bias k-NN estimators low.)
    """
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(ambient, k)))
    return rng.normal(size=(n, k)) @ q.T


def test_mle_and_twonn_recover_the_dimension_of_flat_and_curved_data():
    from mmnb.probes import mle_dimension, twonn_dimension

    flat = np.stack([_flat(2000, 3, 10, 0), _flat(2000, 6, 10, 1)])
    assert mle_dimension(flat) == pytest.approx([3, 6], abs=0.5)  # one value per replica
    assert twonn_dimension(flat) == pytest.approx([3, 6], abs=0.5)
    rng = np.random.default_rng(2)
    circle = rng.normal(size=(1000, 2))
    circle /= np.linalg.norm(circle, axis=1, keepdims=True)
    assert mle_dimension(circle) == pytest.approx(1.0, abs=0.1)
    line = rng.normal(size=(500, 1))
    assert mle_dimension(line) == pytest.approx(1.0, abs=0.1)  # a single column is accepted


def test_mle_is_the_harmonic_mean_of_levina_bickel_estimates():
    from sklearn.neighbors import NearestNeighbors

    from mmnb.probes import mle_dimension

    x = _flat(400, 4, 7, 3)
    dist, _ = NearestNeighbors(n_neighbors=21).fit(x).kneighbors(x)
    t = dist[:, 1:]  # the 20 neighbours, without the point itself
    local = 19 / np.log(t[:, -1:] / t[:, :-1]).sum(1)
    assert mle_dimension(x) == pytest.approx(1 / np.mean(1 / local), rel=1e-10)


def test_linear_diagnostics_on_known_spectra():
    from mmnb.probes import participation_ratio, pca_dimension

    rng = np.random.default_rng(4)
    white = rng.normal(size=(20000, 5)) * np.array([1.0, 1.0, 1.0, 1.0, 0.0])
    assert participation_ratio(white) == pytest.approx(4.0, rel=0.03)  # four equal directions
    scaled = rng.normal(size=(20000, 3)) * np.sqrt([0.9, 0.08, 0.02])
    assert pca_dimension(scaled) == 2  # 90% + 8% ≥ 95%
    assert pca_dimension(scaled, variance=0.99) == 3
    # a circle is one-dimensional but spans a plane: linear counts overstate it
    angle = rng.uniform(0, 2 * np.pi, 5000)
    circle = np.stack([np.cos(angle), np.sin(angle)], 1)
    assert participation_ratio(circle) == pytest.approx(2.0, rel=0.05)
    assert pca_dimension(circle) == 2


def test_knn_r2_is_high_for_a_function_and_minus_one_over_k_for_noise():
    from mmnb.probes import knn_r2, knn_r2_null

    rng = np.random.default_rng(5)
    x = rng.normal(size=(3000, 2))
    smooth = np.sin(x[:, :1]) + x[:, 1:] ** 2
    noise = rng.normal(size=(3000, 4))
    assert knn_r2(x, smooth, n_neighbors=10) > 0.95
    null = knn_r2(x, noise, n_neighbors=10)
    assert knn_r2_null(10) == pytest.approx(-0.1)
    assert null == pytest.approx(-0.1, abs=0.02)  # 12000 residuals: s.e. of R² ≈ 0.013
    per_replica = knn_r2(np.stack([x, x]), np.stack([smooth, noise[:, :1]]), n_neighbors=5)
    assert per_replica[0] > 0.9 and per_replica[1] == pytest.approx(-0.2, abs=0.05)


def test_r2_scores_match_scikit_learn():
    gen = torch.Generator().manual_seed(10)
    x_tr, x_te = torch.randn(300, 3, generator=gen), torch.randn(200, 3, generator=gen)
    w = torch.randn(3, 2, generator=gen)
    y_tr = torch.tanh(x_tr @ w) + 0.1 * torch.randn(300, 2, generator=gen)
    y_te = torch.tanh(x_te @ w) + 0.1 * torch.randn(200, 2, generator=gen)
    lin = r2_scores(x_tr, y_tr, x_te, y_te, "linear").mean()
    assert lin.item() == pytest.approx(r2_linear(x_tr, y_tr, x_te, y_te), abs=1e-6)
    ker = r2_scores(x_tr, y_tr, x_te, y_te, "kernel", [1.0], [0.1]).mean()
    expected = r2_kernel(x_tr, y_tr, x_te, y_te, alphas=(1.0,), gamma=0.1)
    assert ker.item() == pytest.approx(expected, abs=1e-5)
    # a grid picks its (α, γ) by cross-validation and cannot do worse than a poor choice
    grid = r2_scores(x_tr, y_tr, x_te, y_te, "kernel", [1.0, 0.01], [0.01, 1.0])
    poor = r2_scores(x_tr, y_tr, x_te, y_te, "kernel", [1.0], [0.01])
    assert grid.mean() >= poor.mean() - 1e-9
    with pytest.raises(ValueError, match="method.*linear.*kernel"):
        r2_scores(x_tr, y_tr, x_te, y_te, "cubic")


def test_gaussian_pmi_is_the_log_density_ratio_and_averages_to_the_information():
    import math

    from scipy.stats import multivariate_normal

    from mmnb.gaussian import gaussian_mutual_information, gaussian_pmi

    rho, d = 0.6, 2
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200_000, d, generator=g, dtype=torch.float64)
    y = rho * x + math.sqrt(1 - rho**2) * torch.randn(200_000, d, generator=g, dtype=torch.float64)
    joint = multivariate_normal(cov=[[1, rho], [rho, 1]])
    by_hand = sum(
        joint.logpdf(torch.stack([x[:5, c], y[:5, c]], 1).numpy())
        - multivariate_normal(cov=1).logpdf(x[:5, c].numpy())
        - multivariate_normal(cov=1).logpdf(y[:5, c].numpy())
        for c in range(d)
    )
    torch.testing.assert_close(gaussian_pmi(x[:5], y[:5], rho), torch.as_tensor(by_hand))
    pmi = gaussian_pmi(x, y, rho)
    # the mean PMI is the mutual information, within 5 standard errors
    se = float(pmi.std()) / math.sqrt(len(pmi))
    assert abs(float(pmi.mean()) - gaussian_mutual_information(rho, d)) < 5 * se
    all_pairs = gaussian_pmi(x[:3, None], y[None, :4], rho)
    assert all_pairs.shape == (3, 4)
    torch.testing.assert_close(all_pairs[1, 2], gaussian_pmi(x[1], y[2], rho))
