"""Downstream probes on cases with known answers."""

import numpy as np
import pytest
import torch

from mmnb.probes import alignment, linear_probe, r2_kernel, r2_linear, topk_retrieval, uniformity


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
