"""Chapter 06's world: its sampling, Hermite functions, models and read-outs."""

import math

import numpy as np
import pytest
import torch

import mmnb
from mmnb.gaussian import gaussian_mutual_information, gaussian_pmi
from mmnb.mixing import unmix
from mmnb.protocol import World
from mmnb.worlds import lenses


def test_world_content_has_the_mutual_information_of_its_gaussian_pair():
    rho, k = 0.8, 3
    world = lenses.World(lenses.LensesConfig(content_dim=k, content_corr=rho), seed=0)
    s = world.sample(200_000, "data/test")
    corr = (s.a * s.b).mean(0) / (s.a.std(0) * s.b.std(0))
    assert ((corr - rho).abs() < 0.01).all(), corr
    # the PMI of the world's own pairs averages to I(a; b) = I(x; y)
    info = gaussian_mutual_information(rho, k)
    on_pairs = gaussian_pmi(s.a, s.b, rho).mean().item()
    assert abs(on_pairs - info) < 0.05, (on_pairs, info)
    assert info == pytest.approx(-1.5 * math.log(1 - 0.64))


def test_world_keeps_the_protocol():
    cfg = lenses.LensesConfig.from_profile("book")
    world = lenses.World(cfg, 0, "cpu")
    assert isinstance(world, World) and lenses.World is lenses.LensesWorld
    assert (world.cfg, world.seed, world.device) == (cfg, 0, torch.device("cpu"))
    assert set(world.PURPOSES) == {"data/train", "data/one_pass", "data/test", "data/ood"}
    with pytest.raises(ValueError, match="purpose='data/val' is not allowed"):
        world.sample(8, "data/val")
    # out of distribution, the private latents default to cfg.ood_private_scale
    ood = world.sample(64, "data/ood")
    same = world.sample(64, "data/ood", private_scale=cfg.ood_private_scale)
    torch.testing.assert_close(ood.x, same.x)
    assert lenses.CONFIGS == (lenses.LensesConfig,)


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_hermite_features_are_orthonormal_and_counted_right(degree):
    n = 400_000
    a = torch.randn(n, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    h = lenses.hermite_features(a, degree)
    assert h.shape[1] == degree + 1  # monomials of total degree `degree` in 2 variables
    # each entry of hᵀh / n within 4.5 of its exact standard errors (about 1e-4 false alarms
    # over the entries at any seed)
    se = (lenses.hermite_gram_variance(2, degree) / n).sqrt()
    assert ((h.T @ h / n - torch.eye(degree + 1, dtype=h.dtype)).abs() / se).max() < 4.5
    lower = lenses.hermite_features(a, degree - 1) if degree > 1 else torch.ones_like(a[:, :1])
    assert (h.T @ lower / n).abs().max() < 0.02


def test_hermite_gram_variance_is_exact():
    # one coordinate: E[h_p² h_q²] = 1, 3, 15, 93 on the diagonal (E[He_3⁴] / 36 = 93),
    # E[h_1² h_2²] = 5, E[h_1² h_3²] = 7, E[h_2² h_3²] = 31, by hand from the moments
    # 1, 3, 15, 105, 945 of a standard normal; two coordinates multiply them
    exact = torch.tensor(
        [[92.0, 31, 7, 1], [31, 44, 25, 7], [7, 25, 44, 31], [1, 7, 31, 92]], dtype=torch.float64
    )  # features (0, 3), (1, 2), (2, 1), (3, 0); the diagonal minus E[h_i²]² = 1
    torch.testing.assert_close(lenses.hermite_gram_variance(2, 3), exact)
    assert lenses.hermite_gram_variance(1, 1).item() == pytest.approx(2)  # Var(a²)
    assert lenses.hermite_exponents(2, 3) == [(0, 3), (1, 2), (2, 1), (3, 0)]


def test_world_is_invertible_and_reproducible():
    cfg = lenses.LensesConfig(content_dim=2, private_dim=3)
    world = lenses.LensesWorld(cfg, seed=4)
    s = world.sample(100, "data/train")
    torch.testing.assert_close(unmix(s.x, world.weights_x), torch.cat([s.a, s.s_x], 1),
                               atol=1e-4, rtol=1e-4)  # fmt: skip
    again = lenses.LensesWorld(cfg, seed=4).sample(100, "data/train")
    torch.testing.assert_close(s.x, again.x)
    assert not torch.equal(s.a, world.sample(100, "data/test").a)
    wide = world.sample(20_000, "data/ood", private_scale=3.0)
    assert 2.8 < wide.s_x.std().item() < 3.2 and 0.95 < wide.a.std().item() < 1.05


def test_pmi_weights_keep_the_plausible_cells():
    pmi = torch.tensor([[5.0, -20.0, -20.0], [-20.0, 5.0, 0.0], [-20.0, 4.9, 5.0]])
    w = lenses.pmi_weights(pmi)
    assert (w.diagonal() > 0).all() and w[0, 1] == 0 and w[2, 0] == 0


def test_models_train_and_read_out():
    cfg = lenses.LensesConfig.from_profile("book", steps=5, n_train=256, n_test=128,
                                           batch_size=32, eval_every=2)  # fmt: skip
    world = lenses.LensesWorld(cfg, seed=0)
    data, test = world.sample(cfg.n_train, "data/train"), world.sample(cfg.n_test, "data/test")
    setup = lenses.ClipSetup(data, learn=[True, False], replicas=[0, 0], seed=0)
    clip = lenses.fit_clip(cfg, setup, probe=test)
    assert clip.history.final("tau")[1] == pytest.approx(cfg.fixed_tau)
    assert clip.history["r2_private"].shape == (4, 2)
    readout = lenses.pmi_readout(clip, test, cfg.content_corr)
    assert readout.fit.rmse.shape == readout.explained.shape == (2,)
    assert lenses.heldout_loss(clip, test, cfg.batch_size).shape == (2,)
    batches = lenses.heldout_loss(clip, test, cfg.batch_size, per_batch=True)
    assert batches.shape == (len(test.x) // cfg.batch_size, 2)
    r2 = lenses.latent_r2(lenses.embed(clip, test.x, True), test)
    assert r2["content a"].shape == r2["private s_x"].shape == (2,)
    spec = lenses.fit_spectral(cfg, data, out_widths=[3, cfg.embed_dim], replicas=2, seed=0)
    assert (lenses.embed(spec, test.x, False)[0, :, 3:] == 0).all()
    single = lenses.fit_single_modal(cfg, world, data, ["noise", "resample"], replicas=2, seed=0)
    assert lenses.ood_accuracy(single, data, test, True).shape == (2,)
    with pytest.raises(ValueError, match=r"views\[0\]='crop'"):
        lenses.fit_single_modal(cfg, world, data, ["crop"], replicas=1, seed=0)


def test_single_modal_replica_is_the_same_alone_or_in_a_group():
    cfg = lenses.LensesConfig.from_profile("book", steps=20, n_train=256, batch_size=32)
    world = lenses.LensesWorld(cfg, seed=3)
    data = world.sample(cfg.n_train, "data/train")
    views = ["noise", "resample", "noise"]
    group = lenses.fit_single_modal(cfg, world, data, views, replicas=[0, 1, 2], seed=3)
    alone = lenses.fit_single_modal(cfg, world, data, ["resample"], replicas=[1], seed=3)
    torch.testing.assert_close(alone.history["loss"][:, 0], group.history["loss"][:, 1])
    other = lenses.fit_single_modal(cfg, world, data, ["noise"], replicas=[2], seed=3)
    assert not np.allclose(other.history["loss"][:, 0], group.history["loss"][:, 0])


def test_augmentation_noise_is_per_replica_and_crosses_blocks():
    block = lenses.AUGMENT_BLOCK
    pair = lenses.augmentation_noise([0, 5], seed=1, shape=(3,))
    alone = lenses.augmentation_noise([5], seed=1, shape=(3,))
    for _ in range(block + 2):  # into the second block
        p, a = next(pair), next(alone)
        assert p.shape == (2, 3)
        torch.testing.assert_close(p[1:], a)
    assert not torch.equal(p[0], p[1])


def test_pmi_readout_of_logits_equal_to_pmi_plus_a_constant_is_exact():
    cfg = lenses.LensesConfig.from_profile("book")
    test = lenses.LensesWorld(cfg, seed=0).sample(64, "data/test")
    pmi = gaussian_pmi(test.a[:, None], test.b[None], cfg.content_corr)
    weights = lenses.pmi_weights(pmi)
    table = torch.stack([pmi + 3.0, 0.5 * pmi])
    fit = mmnb.probes.pmi_fit(table, pmi, weights)
    readout = lenses.PMIReadout(table, pmi, weights, fit)
    torch.testing.assert_close(readout.shifted_logits()[0], pmi)
    assert readout.explained[0].item() == pytest.approx(1.0, abs=1e-6)
    assert readout.explained[1].item() == pytest.approx(0.75, abs=1e-4)  # 1 − ½²
    w = weights / weights.sum()
    var = (w * pmi.square()).sum() - (w * pmi).sum() ** 2
    assert readout.spread == pytest.approx(var.sqrt().item(), rel=1e-5)


def test_config_names_bad_knobs():
    with pytest.raises(ValueError, match="content_corr=1.0 is out of range"):
        lenses.LensesConfig.from_profile("book", content_corr=1.0)
    with pytest.raises(ValueError, match="embed_dim=2 is out of range"):
        lenses.LensesConfig.from_profile("book", embed_dim=2)
    with pytest.raises(ValueError, match="one-pass pairs"):
        lenses.LensesConfig.from_profile("book", steps=100_000)


def test_shared_version_keeps_x_and_shares_the_content_exactly():
    world = lenses.World(lenses.LensesConfig.from_profile("book"), seed=2)
    noisy, exact = world.sample(500, "data/test"), world.sample(500, "data/test", shared=True)
    torch.testing.assert_close(noisy.x, exact.x)
    torch.testing.assert_close(noisy.s_y, exact.s_y)
    assert torch.equal(exact.a, exact.b) and not torch.equal(noisy.a, noisy.b)
    torch.testing.assert_close(unmix(exact.y, world.weights_y)[:, : world.k], exact.a,
                               atol=1e-4, rtol=1e-4)  # fmt: skip


def test_repaired_moves_a_fraction_of_pairs_and_bounds_the_pmi_below():
    cfg = lenses.LensesConfig.from_profile("book")
    s = lenses.World(cfg, seed=1).sample(20_000, "data/test")
    r = lenses.repaired(s, 0.3, seed=1)
    moved = (r.b != s.b).any(1).float().mean().item()
    assert 0.27 < moved < 0.31, moved  # 0.3 chosen, a few land on themselves
    torch.testing.assert_close(r.x, s.x)
    # y, b and s_y move together: each re-paired y is another pair's whole y
    assert sorted(r.b[:, 0].tolist()) == sorted(s.b[:, 0].tolist())
    assert torch.equal(lenses.repaired(s, 0.3, seed=1).y, r.y)
    pmi = torch.tensor([-50.0, 0.0, 3.0])
    expected = torch.log(0.7 * pmi.exp() + 0.3)
    torch.testing.assert_close(lenses.repaired_pmi(pmi, 0.3), expected)
    assert lenses.repaired_pmi(pmi, 0.3).min() >= math.log(0.3) - 1e-6
    with pytest.raises(ValueError, match="fraction=1.5"):
        lenses.repaired(s, 1.5, seed=1)
    with pytest.raises(ValueError, match="repair_fraction=0.0 is out of range"):
        lenses.LensesConfig.from_profile("book", repair_fraction=0.0)


def test_gaussian_pmi_along_the_diagonal_is_unbounded():
    rho, t = 0.9, torch.linspace(0, 5, 11)[:, None].double()
    along = gaussian_pmi(t, t, rho)
    torch.testing.assert_close(along, -0.5 * math.log(1 - rho**2) + rho * t[:, 0] ** 2 / (1 + rho))


def test_tau_ratio_reads_half_and_end():
    history = mmnb.History()
    for step, tau in [(0, [1.0, 1.0]), (50, [0.5, 0.9]), (100, [0.25, 0.9])]:
        history.record(step, {"tau": torch.tensor(tau)})
    np.testing.assert_allclose(lenses.tau_ratio(history), [0.5, 1.0])
    np.testing.assert_allclose(lenses.tau_ratio(history, slice(0, 1)), [0.5])
