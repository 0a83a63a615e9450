"""Replica-batched networks: shapes and independence of replicas."""

import torch

from mmnb.losses import symmetric_info_nce
from mmnb.nets import MLP, ReplicaLinear
from mmnb.train import train


def test_shapes_shared_and_per_replica_input():
    net = MLP(5, [8, 8], 3, n_replicas=4)
    assert net(torch.randn(10, 5)).shape == (4, 10, 3)
    assert net(torch.randn(4, 10, 5)).shape == (4, 10, 3)
    assert ReplicaLinear(5, 2, n_replicas=2, bias=False)(torch.randn(7, 5)).shape == (2, 7, 2)


def test_replica_r_initialised_like_seed_plus_r():
    many = MLP(5, [8], 3, n_replicas=3, seed=10)
    for r in range(3):
        alone = MLP(5, [8], 3, n_replicas=1, seed=10 + r)
        for a, b in zip(many.parameters(), alone.parameters(), strict=True):
            torch.testing.assert_close(a[r], b[0])


def _train_pair(n_replicas: int, seed: int, x: torch.Tensor, y: torch.Tensor):
    f = MLP(6, [16], 4, n_replicas=n_replicas, seed=seed)
    g = MLP(5, [16], 4, n_replicas=n_replicas, seed=seed + 1000)

    def objective(batch):
        return symmetric_info_nce(f(x[batch]), g(y[batch]), 0.5)

    train(objective, [f, g], 30, lr=1e-2, n_samples=len(x), batch_size=16, progress=False)
    return f, g


def test_replicas_train_independently():
    """R replicas trained together end where each ends when trained alone."""
    torch.manual_seed(0)
    x, y = torch.randn(64, 6), torch.randn(64, 5)
    f, g = _train_pair(3, seed=0, x=x, y=y)
    for r in range(3):
        f1, g1 = _train_pair(1, seed=r, x=x, y=y)
        together = [*f.parameters(), *g.parameters()]
        alone = [*f1.parameters(), *g1.parameters()]
        for a, b in zip(together, alone, strict=True):
            torch.testing.assert_close(a[r], b[0], atol=1e-5, rtol=1e-5)
