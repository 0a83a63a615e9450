"""Chapter 00's paired world and its config."""

import pytest
import torch

from mmnb.worlds.paired import PairedConfig, PairedWorld


def test_shapes_and_reproducibility():
    world = PairedWorld(shared_dim=3, private_dim=2, x_dim=7, y_dim=5, seed=1)
    a, b = world.sample(50, "data/train"), world.sample(50, "data/train")
    assert a.x.shape == (50, 7) and a.y.shape == (50, 5) and a.z.shape == (50, 3)
    assert a.s_x.shape == a.s_y.shape == (50, 2)
    torch.testing.assert_close(a.x, b.x)
    assert not torch.equal(a.s_x, a.s_y), "private latents must be drawn independently"
    test = world.sample(50, "data/test")
    assert not torch.equal(a.z, test.z), "train and test pairs share a stream"


def test_data_stream_is_not_an_init_stream():
    """The training latents are uncorrelated with the encoders' first-layer weights."""
    from mmnb.nets import encoder_pair

    world = PairedWorld(shared_dim=4, private_dim=4, seed=0)
    z = world.sample(256, "data/train").z.flatten()
    f, _ = encoder_pair(16, 16, [64], 8, replicas=2, seed=0)
    w = f.layers[0].weight[1].flatten()[: len(z)]
    rho = torch.corrcoef(torch.stack([z[: len(w)], w]))[0, 1]
    assert abs(float(rho)) < 0.1


def test_without_noise_x_is_a_function_of_the_latents():
    world = PairedWorld(shared_dim=2, private_dim=2, x_dim=4, y_dim=4, noise=0.0)
    s = world.sample(10)
    torch.testing.assert_close(s.x, torch.tanh(torch.cat([s.z, s.s_x], 1) @ world.mix_x))


def test_bad_settings_name_the_knob():
    with pytest.raises(ValueError, match="shared_dim=0 is out of range"):
        PairedWorld(shared_dim=0)
    with pytest.raises(ValueError, match="batch_size=5000 is out of range"):
        PairedConfig.from_profile("book", batch_size=5000)
    with pytest.raises(ValueError, match="steps=1000000000 is out of range"):
        PairedConfig.from_profile("book", steps=10**9)
    assert PairedConfig.from_profile("paper").n_train == 65536
