"""Chapter 04's world: mixing functions, latent law, style oracle, regressors, checks."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

import mmnb
from mmnb.train import clip_grad_norm_per_replica_
from mmnb.worlds import identifiability as world


@pytest.fixture(scope="module")
def cfg():
    return mmnb.resolve_profile("book", world.PROFILES, cond_draws=2000)


@pytest.fixture(scope="module")
def model(cfg):
    settings = [*world.TABLE, world.MULTIVIEW]
    return world.make_latent_model(settings, [3] * len(settings), cfg)


def test_mixing_is_invertible(cfg, model):
    data = model.sample(500, torch.Generator().manual_seed(0))
    z1 = torch.cat([data["c"], data["s"], data["m1"]], -1)
    z2 = torch.cat([data["c"], data["s_tilde"], data["m2"]], -1)
    multi = slice(0, len(world.TABLE))  # multi-modal replicas: every layer invertible
    torch.testing.assert_close(
        world.unmix(data["x1"][multi], model.f1[multi]), z1[multi], atol=1e-3, rtol=1e-3
    )
    torch.testing.assert_close(
        world.unmix(data["x2"][multi], model.f2[multi]), z2[multi], atol=1e-3, rtol=1e-3
    )
    # a single mixing function on its own, in double precision
    f = world.invertible_mlp(6, 3, torch.Generator().manual_seed(1), draws=2000).double()
    z = torch.randn(200, 6, dtype=torch.float64)
    torch.testing.assert_close(world.unmix(world.mix(z, f), f), z)


def test_mixing_weights_have_unit_columns_and_bounded_condition(cfg, model):
    n = cfg.n_c + cfg.n_s + cfg.n_m
    threshold = world.condition_threshold(n, cfg.cond_draws, cfg.cond_ratio)
    multi = model.mixing_condition[: len(world.TABLE)]
    assert multi.shape == (len(world.TABLE), 2, cfg.mixing_layers)
    assert (multi <= threshold + 1e-6).all()
    torch.testing.assert_close(model.f1.norm(dim=-2)[0], torch.ones(cfg.mixing_layers, n))
    # the threshold is a low quantile: most random draws are worse conditioned
    draws = torch.rand(500, n, n, generator=torch.Generator().manual_seed(2)) * 2 - 1
    assert (
        torch.linalg.cond(draws / draws.norm(dim=-2, keepdim=True)) > threshold
    ).float().mean() > 0.9
    assert not torch.equal(model.f1[0], model.f2[0])  # two different mechanisms


def test_style_changes_with_probability_p_chg(cfg):
    settings = [world.Setting(p) for p in (0.0, 0.3, 0.75, 1.0)]
    m = world.make_latent_model(settings, [0] * 4, cfg)
    data = m.sample(20_000, torch.Generator().manual_seed(4))
    changed = (data["s_tilde"] != data["s"]).double().mean((1, 2))
    n = 20_000 * cfg.n_s
    for p, rate in zip((0.0, 0.3, 0.75, 1.0), changed.tolist(), strict=True):
        assert abs(rate - p) <= 4 * math.sqrt(p * (1 - p) / n) + 1e-12, (p, rate)
    torch.testing.assert_close(data["c"], data["c"])  # content is shared exactly by construction
    assert torch.equal(world.make_latent_model(settings, [0] * 4, cfg).f1, m.f1)


def test_dependencies_and_blocks(cfg, model):
    data = model.sample(20_000, torch.Generator().manual_seed(5))
    names = [s.name for s in model.settings]
    indep, causal, stat = (names.index(n) for n in ("p1_indep", "p1_causal", "p1_stat"))
    emp = torch.cov(data["c"][stat].T.double())
    torch.testing.assert_close(emp, model.covariance["c"][stat], rtol=0.1, atol=0.1)
    torch.testing.assert_close(model.covariance["c"][indep], torch.eye(3, dtype=torch.float64))
    # without causal dependence style and content are uncorrelated; with it they are not
    cross = lambda r: (data["s"][r] - data["s"][r].mean(0)).T @ data["c"][r] / 20_000  # noqa: E731
    assert cross(indep).abs().max() < 0.05 and cross(causal).abs().max() > 0.2
    mv = names.index(world.MULTIVIEW.name)
    assert torch.equal(model.f1[mv], model.f2[mv])
    assert data["m1"][mv].abs().max() == 0 and data["x1"][mv, :, 6:].abs().max() == 0


def test_style_oracle_closed_form():
    # one content and one style coordinate, Σ = 1: R²(s | c) = B² / (B² + 1)
    cfg = mmnb.resolve_profile("book", world.PROFILES, n_c=1, n_s=1, n_m=1, cond_draws=500)
    setting = world.Setting(0.5, causal=True)
    m = world.make_latent_model([setting, world.Setting(0.5)], [7, 7], cfg)
    b = m.transform[0, 0, 1].double()  # s = u_s + B c + a, c = u_c
    expected = b**2 / (b**2 + 1)
    torch.testing.assert_close(m.style_oracle("s")[0, 0], expected)
    torch.testing.assert_close(m.style_oracle("s_tilde")[0, 0], b**2 / (b**2 + 1 + 0.5))
    assert m.style_oracle("s")[1].item() == 0.0
    # the oracle is what the best (linear) predictor of s from c achieves on samples
    data = m.sample(200_000, torch.Generator().manual_seed(8))
    c, s = data["c"][0].double(), data["s"][0].double()
    fit = np.polyfit(c[:, 0].numpy(), s[:, 0].numpy(), 1)
    r2 = 1 - np.var(s[:, 0].numpy() - np.polyval(fit, c[:, 0].numpy())) / np.var(s[:, 0].numpy())
    assert r2 == pytest.approx(expected.item(), abs=0.01)


def test_style_oracle_matches_samples_with_dependencies(cfg, model):
    names = [s.name for s in model.settings]
    r = names.index("p075_stat_causal")
    data = model.sample(100_000, torch.Generator().manual_seed(9))
    c, s = data["c"][r].double(), data["s"][r].double()
    a = torch.cat([c, torch.ones(len(c), 1, dtype=torch.float64)], 1)
    pred = a @ torch.linalg.lstsq(a, s).solution
    r2 = 1 - (s - pred).var(0) / s.var(0)
    torch.testing.assert_close(r2, model.style_oracle("s")[r], atol=0.01, rtol=0)


def test_encoders_mask_spare_dimensions(cfg):
    enc = world.make_encoders(cfg, [1, 3], seed=0)
    x = torch.randn(2, 16, cfg.n_c + cfg.n_s + cfg.n_m)
    u, v = enc(x, x)
    assert u.shape == (2, 16, 3) and u[0, :, 1:].abs().max() == 0 and v[0, :, 1:].abs().max() == 0
    assert u[1].abs().min() > 0
    assert world.make_encoders(cfg, 4).mask is None


def test_loss_per_replica_and_gradient_clipping(cfg):
    m = world.make_latent_model(world.TABLE[:2], [0, 1], cfg)
    enc = world.make_encoders(cfg, 2, seed=0)
    loss = world.contrastive_loss(enc, m, 64, torch.Generator().manual_seed(0))
    assert loss.shape == (2,) and torch.isfinite(loss).all()
    loss.sum().backward()
    params = list(enc.parameters())
    before = torch.stack([p.grad.reshape(2, -1).square().sum(1) for p in params]).sum(0).sqrt()
    norms = clip_grad_norm_per_replica_(params, 0.5 * float(before.min()))
    torch.testing.assert_close(norms, before)
    after = torch.stack([p.grad.reshape(2, -1).square().sum(1) for p in params]).sum(0).sqrt()
    torch.testing.assert_close(
        after, torch.full((2,), 0.5 * float(before.min())), rtol=1e-4, atol=0
    )


def test_bad_parameters_raise_value_errors(cfg):
    with pytest.raises(ValueError, match="p_chg"):
        world.Setting(p_chg=1.5)
    with pytest.raises(ValueError, match="profile.*book"):
        mmnb.resolve_profile("huge", world.PROFILES)
    with pytest.raises(ValueError, match="n_c.*out of range"):
        world.check_config(replace_cfg(cfg, n_c=0))
    with pytest.raises(ValueError, match="kernel_points"):
        world.check_config(replace_cfg(cfg, kernel_points=10**7))
    with pytest.raises(ValueError, match="block.*s_tilde"):
        world.make_latent_model([world.Setting()], [0], cfg).style_oracle("m1")
    with pytest.raises(ValueError, match="shared_covariance"):
        cfg2 = replace_cfg(cfg, n_m=2)
        world.make_latent_model(
            [world.Setting(statistical=True, shared_covariance=True)], [0], cfg2
        )
    world.check_config(cfg)  # the profiles themselves are valid
    world.check_config(mmnb.resolve_profile("paper", world.PROFILES))


def replace_cfg(cfg, **changes):
    return type(cfg)(**{**vars(cfg), **changes})


def test_setting_names_are_unique():
    names = [s.name for s in world.TABLE]
    assert len(set(names)) == len(names)
    assert world.DEFAULT.name == "p075_stat_causal"
    assert replace(world.DEFAULT, encoding_size=4).name == "p075_stat_causal_d4"
