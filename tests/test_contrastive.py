"""Chapter 00's paired world, its config and the CLIP-style training."""

import pytest
import torch

from mmnb import protocol
from mmnb.worlds import contrastive
from mmnb.worlds.contrastive import ClipSetup, ContrastiveConfig, PairedWorld, fit_encoders

TINY = dict(n_train=64, n_test=16, steps=3, batch_size=16, hidden=8, embed_dim=4, eval_every=3)


def _draws(sample: contrastive.PairedSample) -> torch.Tensor:
    """Every standard normal a sample drew, in one vector."""
    return torch.cat([sample.z.flatten(), sample.s_x.flatten(), sample.s_y.flatten()])


def test_shapes_and_reproducibility():
    cfg = ContrastiveConfig(shared_dim=3, private_dim=2, x_dim=7, y_dim=5)
    world = PairedWorld(cfg, seed=1)
    a, b = world.sample(50, "data/train"), world.sample(50, "data/train")
    assert a.x.shape == (50, 7) and a.y.shape == (50, 5) and a.z.shape == (50, 3)
    assert a.s_x.shape == a.s_y.shape == (50, 2)
    torch.testing.assert_close(a.x, b.x)
    assert not torch.equal(a.s_x, a.s_y), "private latents must be drawn independently"


def test_the_world_keeps_the_protocol():
    cfg = ContrastiveConfig()
    world = contrastive.World(cfg, 3, "cpu")
    assert isinstance(world, protocol.World)
    assert (world.cfg, world.seed, world.device) == (cfg, 3, torch.device("cpu"))
    assert contrastive.CONFIGS[0] is ContrastiveConfig
    for purpose in world.PURPOSES:
        assert world.sample(5, purpose).x.shape == (5, cfg.x_dim)
    with pytest.raises(ValueError, match="choose one of"):
        world.sample(5, "data/valid")


def test_purposes_and_seeds_never_share_draws():
    """Train and test pairs (and another seed's pairs) share no random number at any
    offset: each comes from its own named stream."""
    cfg = ContrastiveConfig()
    world = PairedWorld(cfg, seed=0)
    train, test = _draws(world.sample(300, "data/train")), _draws(world.sample(300, "data/test"))
    other = _draws(PairedWorld(cfg, seed=1).sample(300, "data/train"))
    assert not torch.isin(train, test).any(), "train and test pairs share a stream"
    assert not torch.isin(train, other).any(), "seeds 0 and 1 share a stream"


def test_replicas_never_share_draws_and_train_alone_as_in_a_group():
    """Replica r has its own initial weights and minibatch order, the same whether it
    trains alone or beside other replicas."""
    cfg = ContrastiveConfig(**TINY)
    world = PairedWorld(cfg, seed=0)
    train, test = world.sample(cfg.n_train, "data/train"), world.sample(cfg.n_test, "data/test")
    group = fit_encoders(cfg, ClipSetup(train, taus=[0.5, 0.5], learn_temperature=False), test)
    alone_setup = ClipSetup(train, taus=[0.5], replicas=[1], learn_temperature=False)
    alone = fit_encoders(cfg, alone_setup, test)
    assert isinstance(group, protocol.Result)
    w0, w1 = group.f.layers[0].weight[0], group.f.layers[0].weight[1]
    assert not torch.isin(w0, w1).any(), "replicas 0 and 1 share their initial weights"
    torch.testing.assert_close(group.f.layers[0].weight[1], alone.f.layers[0].weight[0])
    for name in ["loss", "top1", "alignment", "uniformity"]:
        torch.testing.assert_close(
            torch.as_tensor(group.history.final(name))[1:],
            torch.as_tensor(alone.history.final(name)),
        )


def test_without_noise_x_is_a_function_of_the_latents():
    cfg = ContrastiveConfig(shared_dim=2, private_dim=2, x_dim=4, y_dim=4, noise=0.0)
    world = PairedWorld(cfg, seed=0)
    s = world.sample(10)
    torch.testing.assert_close(s.x, torch.tanh(torch.cat([s.z, s.s_x], 1) @ world.mix_x))


def test_one_id_per_temperature():
    cfg = ContrastiveConfig(**TINY)
    pairs = PairedWorld(cfg, seed=0).sample(cfg.n_train)
    with pytest.raises(ValueError, match="one id per temperature"):
        ClipSetup(pairs, taus=[0.1, 0.2], replicas=[0])


def test_bad_settings_name_the_knob():
    with pytest.raises(ValueError, match="shared_dim=0 is out of range"):
        ContrastiveConfig(shared_dim=0)
    with pytest.raises(ValueError, match="batch_size=5000 is out of range"):
        ContrastiveConfig.from_profile("book", batch_size=5000)
    with pytest.raises(ValueError, match="steps=1000000000 is out of range"):
        ContrastiveConfig.from_profile("book", steps=10**9)
    assert ContrastiveConfig.from_profile("paper").n_train == 65536


def test_unpaired_shuffles_the_partners_only():
    cfg = ContrastiveConfig()
    world = PairedWorld(cfg, seed=0)
    pairs = world.sample(200, "data/train")
    shuffled = world.unpaired(pairs)
    torch.testing.assert_close(shuffled.x, pairs.x)
    torch.testing.assert_close(shuffled.z, pairs.z)
    # y moved with its own latent: the same rows, in another order
    assert not torch.equal(shuffled.y, pairs.y)
    order = torch.cdist(shuffled.y, pairs.y).argmin(1)
    torch.testing.assert_close(pairs.s_y[order], shuffled.s_y)
    assert (order != torch.arange(200)).float().mean() > 0.9
    torch.testing.assert_close(world.unpaired(pairs).y, shuffled.y)  # a named stream


def test_latent_r2_matches_scikit_learn():
    """`latent_r2` is the R² of mmnb.probes' scikit-learn estimators, per replica."""
    from sklearn_reference import r2_kernel, r2_linear

    gen = torch.Generator().manual_seed(3)
    z = torch.randn(120, 2, generator=gen)
    feats = torch.stack([torch.tanh(z @ torch.randn(2, 5, generator=gen)) for _ in range(2)])
    feats = feats + 0.1 * torch.randn(feats.shape, generator=gen)
    for method, reference in [("linear", r2_linear), ("kernel", r2_kernel)]:
        ours = contrastive.latent_r2(feats, z, method)
        theirs = reference(feats[:, :60], z[:60], feats[:, 60:], z[60:])
        assert ours.shape == (2,)
        assert ours == pytest.approx(theirs, abs=1e-4)
