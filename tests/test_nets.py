"""Replica-batched networks: shapes, named init streams and independence of replicas."""

import pytest
import torch

from mmnb.losses import symmetric_info_nce
from mmnb.nets import MLP, ReplicaLinear, encoder_pair
from mmnb.train import train


def test_shapes_shared_and_per_replica_input():
    net = MLP(5, [8, 8], 3, replicas=4)
    assert net(torch.randn(10, 5)).shape == (4, 10, 3)
    assert net(torch.randn(4, 10, 5)).shape == (4, 10, 3)
    assert ReplicaLinear(5, 2, replicas=2, bias=False)(torch.randn(7, 5)).shape == (2, 7, 2)


def test_replica_r_initialised_alike_alone_or_in_a_group():
    many = MLP(5, [8], 3, replicas=3, seed=10)
    for r in range(3):
        alone = MLP(5, [8], 3, replicas=[r], seed=10)
        for a, b in zip(many.parameters(), alone.parameters(), strict=True):
            torch.testing.assert_close(a[r], b[0])
    other_seed = MLP(5, [8], 3, replicas=1, seed=11)
    assert not torch.equal(many.layers[0].weight[1], other_seed.layers[0].weight[0])


def test_layers_and_encoders_draw_from_different_streams():
    f, g = encoder_pair(5, 5, [8], 8, replicas=2, seed=0)
    assert not torch.equal(f.layers[0].weight, g.layers[0].weight)
    assert not torch.equal(f.layers[1].weight[:, :8], f.layers[0].weight[:, :, :8][:, :8])
    assert not torch.equal(f.layers[0].weight[0], f.layers[0].weight[1])


def test_out_widths_mask_the_extra_coordinates():
    net = MLP(4, [8], 6, replicas=3, out_widths=[2, 6, 4])
    out = net(torch.randn(10, 4))
    assert (out[0, :, 2:] == 0).all() and (out[2, :, 4:] == 0).all()
    assert (out[1] != 0).all()
    with pytest.raises(ValueError, match="out_widths"):
        MLP(4, [8], 6, replicas=2, out_widths=[2, 7])


def _train_pair(replicas, seed: int, x: torch.Tensor, y: torch.Tensor):
    f, g = encoder_pair(6, 5, [16], 4, replicas=replicas, seed=seed)

    def objective(batch):
        return symmetric_info_nce(f(x[batch]), g(y[batch]), 0.5)

    train(
        objective,
        [f, g],
        30,
        lr=1e-2,
        n_samples=len(x),
        batch_size=16,
        seed=seed,
        replicas=replicas,
        progress=False,
    )
    return f, g


def test_replicas_train_independently():
    """R replicas trained together (minibatch order included) end where each ends alone."""
    torch.manual_seed(0)
    x, y = torch.randn(64, 6), torch.randn(64, 5)
    f, g = _train_pair(3, seed=0, x=x, y=y)
    for r in range(3):
        f1, g1 = _train_pair([r], seed=0, x=x, y=y)
        together = [*f.parameters(), *g.parameters()]
        alone = [*f1.parameters(), *g1.parameters()]
        for a, b in zip(together, alone, strict=True):
            torch.testing.assert_close(a[r], b[0], atol=1e-5, rtol=1e-5)
