"""The training loop: history, evaluation cadence, divergence and argument errors."""

import pytest
import torch

from mmnb.nets import MLP
from mmnb.train import TrainingDiverged, train


def test_history_and_evaluation_cadence():
    net = MLP(3, [4], 1, n_replicas=2)
    x, target = torch.randn(32, 3), torch.randn(32, 1)

    def objective(batch):
        err = (net(x) - target).square().mean((1, 2))
        return err, {"err_x2": 2 * err}

    hist = train(
        objective,
        net,
        10,
        lr=1e-2,
        evaluate=lambda: {"w": net.layers[0].weight.sum((1, 2))},
        eval_every=4,
        progress=False,
    )
    assert hist["loss"].shape == (10, 2)
    assert hist["err_x2"].shape == (10, 2)
    assert list(hist.steps("w")) == [0, 4, 8, 10]
    assert hist["loss"][-1].mean() < hist["loss"][0].mean()
    with pytest.raises(KeyError, match="recorded"):
        hist["nope"]


def test_nan_loss_names_step_and_replica():
    w = torch.nn.Parameter(torch.ones(3))

    def objective(batch):
        loss = w.square()
        return torch.where(torch.arange(3) == 1, loss / (w - 1).clamp(max=0), loss)

    with pytest.raises(TrainingDiverged, match=r"step 0 in replica 1.*smaller learning rate"):
        train(objective, [w], 5, progress=False)


def test_bad_arguments():
    w = torch.nn.Parameter(torch.ones(1))
    with pytest.raises(ValueError, match="optimizer='lbfgs'.*'adam'"):
        train(lambda b: w.sum(), [w], 1, optimizer="lbfgs")
    with pytest.raises(ValueError, match="batch_size needs n_samples"):
        train(lambda b: w.sum(), [w], 1, batch_size=4)
    with pytest.raises(ValueError, match="batch_size=20 is out of range"):
        train(lambda b: w.sum(), [w], 1, batch_size=20, n_samples=10)
    with pytest.raises(ValueError, match="nothing to train"):
        train(lambda b: w.sum(), [torch.nn.Linear(1, 1).requires_grad_(False)], 1)


def test_minibatches_cover_an_epoch_without_replacement():
    w = torch.nn.Parameter(torch.zeros(1))
    seen = []

    def objective(batch):
        seen.append(batch.clone())
        return w.sum()

    train(objective, [w], 4, n_samples=12, batch_size=3, progress=False)
    assert sorted(torch.cat(seen).tolist()) == list(range(12))
