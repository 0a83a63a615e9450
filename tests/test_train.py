"""The training loop: history, evaluation cadence, divergence and argument errors."""

import pytest
import torch

from mmnb.nets import MLP
from mmnb.train import TrainingDiverged, clip_grad_norm_per_replica_, make_optimizer, train


def test_history_and_evaluation_cadence():
    net = MLP(3, [4], 1, replicas=2)
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
        train(lambda b: w.sum(), [w], 1, batch_size=20, n_samples=10, replicas=1)
    with pytest.raises(ValueError, match="batch_size needs replicas"):
        train(lambda b: w.sum(), [w], 1, batch_size=2, n_samples=10)
    with pytest.raises(ValueError, match="lr=nan is not finite"):
        train(lambda b: w.sum(), [w], 1, lr=float("nan"))
    with pytest.raises(ValueError, match="nothing to train"):
        train(lambda b: w.sum(), [torch.nn.Linear(1, 1).requires_grad_(False)], 1)


def _batches(replicas, seed=0, steps=4):
    w = torch.nn.Parameter(torch.zeros(1))
    seen = []

    def objective(batch):
        seen.append(batch.clone())
        return w.sum()

    train(
        objective,
        [w],
        steps,
        n_samples=12,
        batch_size=3,
        seed=seed,
        replicas=replicas,
        progress=False,
    )
    return torch.stack(seen, 1)  # [R, steps, batch]


def test_minibatches_cover_an_epoch_without_replacement_per_replica():
    batches = _batches(2)
    for r in range(2):
        assert sorted(batches[r].flatten().tolist()) == list(range(12))
    assert not torch.equal(batches[0], batches[1]), "replicas share one minibatch order"


def test_a_replica_sees_the_same_batches_alone_or_in_a_group():
    group = _batches(3, steps=9)
    for r in range(3):
        torch.testing.assert_close(_batches([r], steps=9)[0], group[r])
    assert not torch.equal(_batches(3, seed=1)[0], group[0, :4])


def test_clipping_per_replica_and_fused_optimizers():
    """Each replica's gradient norm is clipped on its own; optimizers use fused kernels."""
    w = torch.nn.Parameter(torch.zeros(2, 3))
    w.grad = torch.tensor([[3.0, 4.0, 0.0], [0.3, 0.4, 0.0]])  # norms 5 and 0.5
    norms = clip_grad_norm_per_replica_([w], 1.0)
    torch.testing.assert_close(norms, torch.tensor([5.0, 0.5]))
    torch.testing.assert_close(w.grad.norm(dim=1), torch.tensor([1.0, 0.5]), rtol=1e-5, atol=0)
    for name in ("sgd", "adam", "adamw"):
        assert make_optimizer(name, [w], 0.1).defaults.get("fused"), name
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer("lbfgs", [w], 0.1)


def test_compiled_objective_trains_like_the_eager_one():
    def run(compile):
        net = MLP(3, [8], 1, replicas=2, seed=1)
        x, target = torch.randn(64, 3, generator=torch.Generator().manual_seed(0)), None
        target = x.sum(1, keepdim=True)
        hist = train(
            lambda _: (net(x) - target).square().mean((1, 2)),
            net,
            5,
            lr=1e-2,
            compile=compile,
            progress=False,
        )
        return hist["loss"]

    torch.testing.assert_close(run(True), run(False), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="compile"):
        train(lambda _: torch.zeros(1, requires_grad=True), MLP(1, [], 1), 1, compile="yes")
