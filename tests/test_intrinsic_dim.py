"""Chapter 05's shared-latent worlds and encoders."""

import pytest
import torch

import mmnb
from mmnb.worlds import intrinsic_dim as world


@pytest.mark.parametrize("link", world.LINKS)
def test_shapes_and_reproducibility(link):
    w = world.SharedLatentWorld(k=3, link=link, dim=8, seed=1)
    a, b = w.sample(40, seed=2), w.sample(40, seed=2)
    assert a.x.shape == a.y.shape == (40, 8) and a.z.shape == (40, 3)
    assert a.private_x.shape == a.private_y.shape == (40, 5)
    assert len(a) == 40
    torch.testing.assert_close(a.x, b.x)
    assert not torch.equal(w.sample(40, seed=3).x, a.x)


def test_linear_link_shares_z_and_nothing_else():
    s = world.SharedLatentWorld(k=5, link="linear", dim=20).sample(20_000, seed=0)
    torch.testing.assert_close(s.x[:, :5], s.z)  # x = (z, ξ)
    torch.testing.assert_close(s.y[:, :5], s.z)  # z = y[:k]
    torch.testing.assert_close(s.x[:, 5:], s.private_x)
    torch.testing.assert_close(s.y[:, 5:], s.private_y)
    cross = torch.cat([s.z, s.private_x], 1).T @ s.private_y / len(s)  # independent parts
    assert cross.abs().max() < 0.05  # 4.5 standard errors at n = 20000


def test_truncation_link_keeps_the_positive_part_of_z():
    s = world.SharedLatentWorld(k=4, link="truncation", dim=10).sample(100)
    torch.testing.assert_close(s.x[:, :4], s.z.clamp(min=0))
    torch.testing.assert_close(s.y[:, :4], s.z)


def test_smooth_link_is_a_rotated_injective_map():
    w = world.SharedLatentWorld(k=3, link="smooth", dim=6, seed=4)
    s = w.sample(500, seed=1)
    for m, obs, private in ((0, s.x, s.private_x), (1, s.y, s.private_y)):
        rotation = w.maps[m][1]
        torch.testing.assert_close(rotation @ rotation.T, torch.eye(6), atol=1e-5, rtol=0)
        unrotated = obs @ rotation.T
        torch.testing.assert_close(unrotated[:, 3:], private, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(unrotated[:, :3], w.smooth_map(s.z, m), atol=1e-5, rtol=1e-5)
    # injective: φ(a) − φ(b) is at least (1 − contraction)·|a − b|
    a, b = s.z[:250], s.z[250:]
    gap = (w.smooth_map(a, 0) - w.smooth_map(b, 0)).norm(dim=1)
    assert (gap >= (1 - 0.9) * (a - b).norm(dim=1) - 1e-5).all()


def test_stack_samples_pads_latents_of_different_width():
    a = world.SharedLatentWorld(k=2, dim=6).sample(10)
    b = world.SharedLatentWorld(k=4, dim=6).sample(10)
    s = world.stack_samples([a, b])
    assert s.x.shape == (2, 10, 6) and s.z.shape == (2, 10, 4) and len(s) == 10
    assert (s.z[0, :, 2:] == 0).all()
    torch.testing.assert_close(s.z[1], b.z)


def test_encoders_mask_their_output_dimension_and_fix_or_learn_tau():
    cfg = mmnb.resolve_profile("book", world.PROFILES, epochs=1, batch_size=32)
    cfg.hidden = [8]
    w = world.SharedLatentWorld(k=2, dim=6)
    train, ref = w.sample(64, seed=0), w.sample(32, seed=1)
    fit = world.fit_encoders(train, ref, cfg, [2, 5], [None, 0.5], seed=0)
    assert fit.out_dims == [2, 5]
    u = fit.embed_x(train.x).detach()
    assert u.shape == (2, 64, 5) and (u[0, :, 2:] == 0).all()
    torch.testing.assert_close(u.norm(dim=-1), torch.ones(2, 64))
    tau = fit.history["tau"]
    assert tau.shape[1] == 2 and (tau[:, 1] == 0.5).all() and tau[-1, 0] != tau[0, 0]
    cfg.normalization = "mean_norm"
    u = world.fit_encoders(train, ref, cfg, [3], [None]).embed_x(ref.x).detach()
    assert u.norm(dim=-1).mean().item() == pytest.approx(1.0, rel=1e-4)  # mean norm 1 on ref


def test_bad_parameters_name_themselves():
    with pytest.raises(ValueError, match=r"link='curved' is not allowed.*linear"):
        world.SharedLatentWorld(link="curved")
    with pytest.raises(ValueError, match=r"k=20 is out of range.*\[1, 19\]"):
        world.SharedLatentWorld(k=20, dim=20)
    with pytest.raises(ValueError, match="dim"):
        world.SharedLatentWorld(dim=1)
    with pytest.raises(ValueError, match="profile"):
        mmnb.resolve_profile("huge", world.PROFILES)
    cfg = mmnb.resolve_profile("book", world.PROFILES, normalization="batch")
    s = world.SharedLatentWorld(k=2, dim=4).sample(8)
    with pytest.raises(ValueError, match=r"normalization='batch'.*'l2', 'mean_norm'"):
        world.fit_encoders(s, s, cfg, [2], [None])
