"""Invertible mixing functions (mmnb.mixing)."""

import torch

from mmnb import mixing
from mmnb.runtime import stream


def test_mix_matches_layer_by_layer_and_unmix_inverts_it():
    f = mixing.invertible_mlp(6, 3, stream(0, "test/f").torch, draws=2000).double()
    z = torch.randn(200, 6, dtype=torch.float64)
    x = z
    for i, w in enumerate(f):  # W_L σ(… σ(W_1 z)), σ = LeakyReLU(0.2)
        x = x @ w.T
        x = torch.where(x > 0, x, 0.2 * x) if i < len(f) - 1 else x
    torch.testing.assert_close(mixing.mix(z, f), x)
    torch.testing.assert_close(mixing.unmix(x, f), z)
    assert not torch.allclose(x, z @ f[0].T)  # the nonlinearity matters


def test_weights_have_unit_columns_and_bounded_condition():
    threshold = mixing.condition_threshold(9, 2000, 0.01)
    f = mixing.invertible_mlp(9, 4, stream(0, "test/g").torch, draws=2000, ratio=0.01)
    assert f.shape == (4, 9, 9) and f.dtype == torch.float32
    torch.testing.assert_close(f.norm(dim=-2), torch.ones(4, 9))
    assert (torch.linalg.cond(f.double()) <= threshold + 1e-4).all()
    # the threshold is a low quantile: most random draws are worse conditioned
    draws = mixing.unit_columns(9, 500, stream(1, "test/draws").torch)
    assert (torch.linalg.cond(draws) > threshold).double().mean() > 0.9


def test_draws_depend_on_the_stream_only():
    a = mixing.invertible_mlp(5, 2, stream(3, "test/h").torch, draws=1000)
    b = mixing.invertible_mlp(5, 2, stream(3, "test/h").torch, draws=1000)
    c = mixing.invertible_mlp(5, 2, stream(4, "test/h").torch, draws=1000)
    assert torch.equal(a, b) and not torch.equal(a, c)
