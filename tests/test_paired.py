"""Chapter 00's paired world."""

import pytest
import torch

from mmnb.worlds.paired import PairedWorld


def test_shapes_and_reproducibility():
    world = PairedWorld(shared_dim=3, private_dim=2, x_dim=7, y_dim=5, seed=1)
    a, b = world.sample(50, seed=4), world.sample(50, seed=4)
    assert a.x.shape == (50, 7) and a.y.shape == (50, 5) and a.z.shape == (50, 3)
    assert a.s_x.shape == a.s_y.shape == (50, 2)
    torch.testing.assert_close(a.x, b.x)
    assert not torch.equal(a.s_x, a.s_y), "private latents must be drawn independently"


def test_without_noise_x_is_a_function_of_the_latents():
    world = PairedWorld(shared_dim=2, private_dim=2, x_dim=4, y_dim=4, noise=0.0)
    s = world.sample(10)
    torch.testing.assert_close(s.x, torch.tanh(torch.cat([s.z, s.s_x], 1) @ world.mix_x))


def test_bad_dimensions():
    with pytest.raises(ValueError, match="shared_dim=0 is out of range"):
        PairedWorld(shared_dim=0)
