"""Chapter 02: the config, the factorization identity, the SVD optimum and table training."""

import dataclasses

import pytest
import torch

from mmnb.losses import spectral_contrastive_loss
from mmnb.probes import principal_cosines
from mmnb.worlds import factorization
from mmnb.worlds.factorization import FactorizationConfig


def _joint(seed=0, n_v=7, n_l=5):
    joint = torch.rand(n_v, n_l, generator=torch.Generator().manual_seed(seed)).double()
    return joint / joint.sum()


def test_config_profiles_and_validation():
    book, paper = FactorizationConfig(), FactorizationConfig.from_profile("paper")
    assert paper.profile == "paper" and paper.pool_size > book.pool_size
    changed = {f.name for f in dataclasses.fields(book) if getattr(book, f.name) != getattr(
        paper, f.name)} - {"profile"}  # fmt: skip
    assert changed == set(FactorizationConfig.PAPER)  # "paper" is only its overrides
    assert FactorizationConfig.from_profile("paper", pool_size=800).pool_size == 800
    with pytest.raises(ValueError, match="caption_noise.*allowed"):
        FactorizationConfig(caption_noise=1.5)
    with pytest.raises(ValueError, match="table_steps.*allowed"):
        FactorizationConfig(table_steps=10**9)
    with pytest.raises(ValueError, match="signal_dims"):
        FactorizationConfig(n_classes=12)
    with pytest.raises(ValueError, match="gap_ranks"):
        FactorizationConfig(gap_ranks=(6,))
    with pytest.raises(ValueError, match="student_batch"):
        FactorizationConfig(student_train=100)
    with pytest.raises(ValueError, match="unknown"):
        FactorizationConfig.from_profile("book", captions=3)
    with pytest.raises(ValueError, match="cross.*not finite"):
        FactorizationConfig(cross=float("nan"))
    with pytest.raises(ValueError, match="aug_nuisance=0.45 must be a point"):
        FactorizationConfig(aug_nuisance=0.45)  # the map's claims sit on grid points
    with pytest.raises(ValueError, match="nuisance_aug_grid"):
        FactorizationConfig(nuisance_aug_grid=(0.5,))
    with pytest.raises(ValueError, match="neural_replicas.*allowed"):
        FactorizationConfig(neural_replicas=1)  # a t bound needs two replicas


def test_loss_identity_on_random_encoders():
    joint = _joint()
    gen = torch.Generator().manual_seed(1)
    f = torch.randn(4, 7, 3, generator=gen, dtype=torch.float64)
    g = torch.randn(4, 5, 3, generator=gen, dtype=torch.float64)
    p_v, p_l = joint.sum(1), joint.sum(0)
    by_hand = torch.zeros(4, dtype=torch.float64)
    for x in range(7):
        for y in range(5):
            s = (f[:, x] * g[:, y]).sum(-1)
            by_hand += -2 * joint[x, y] * s + p_v[x] * p_l[y] * s**2
    torch.testing.assert_close(spectral_contrastive_loss(f, g, joint), by_hand)
    torch.testing.assert_close(factorization.factor_loss(f, g, joint), by_hand)


def test_top_singular_value_is_one_with_root_marginal_vectors():
    joint = _joint(2)
    u, s, vh = torch.linalg.svd(factorization.normalized_cooccurrence(joint))
    assert s[0].item() == pytest.approx(1.0, abs=1e-12)
    assert (s <= 1 + 1e-12).all()
    sign = torch.sign(u[0, 0])
    torch.testing.assert_close(sign * u[:, 0], joint.sum(1).sqrt())
    torch.testing.assert_close(sign * vh[0], joint.sum(0).sqrt())


def test_svd_optimum_reaches_minus_sum_of_squared_singular_values():
    joint = _joint(3)
    opt = factorization.svd_optimum(joint, 2)
    p_v, p_l = joint.sum(1), joint.sum(0)
    f_v = opt.u * opt.s[:2].sqrt() / p_v.sqrt()[:, None]
    f_l = opt.v * opt.s[:2].sqrt() / p_l.sqrt()[:, None]
    loss = spectral_contrastive_loss(f_v, f_l, joint).item()
    assert loss == pytest.approx(opt.min_loss, abs=1e-12)
    assert opt.min_loss == pytest.approx(-float(opt.s[:2].square().sum()))
    rotation = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    cos = principal_cosines(factorization.weighted_factors(f_v @ rotation, p_v), opt.u)
    torch.testing.assert_close(cos, torch.ones(2, dtype=torch.float64))
    # a subspace that misses U_k has a principal cosine below 1
    other = torch.linalg.svd(factorization.normalized_cooccurrence(joint))[0][:, 1:3]
    assert principal_cosines(other, opt.u).min() < 0.5


def _small(**changes) -> FactorizationConfig:
    """A 12 × 8 block joint of two classes, tables trained for 400 population steps."""
    return FactorizationConfig(
        n_images=12, n_texts=8, blocks=2, cross=0.2, gap_ranks=(2,), table_steps=400
    ).replace(**changes)


def test_block_joint_is_a_distribution_with_its_own_stream():
    cfg = _small(blocks=4, gap_ranks=(4,))
    a = factorization.block_joint(cfg, seed=0)
    assert a.shape == (12, 8) and a.sum().item() == pytest.approx(1.0)
    same = (torch.arange(12)[:, None] % 4) == (torch.arange(8) % 4)
    assert a[same].min() > a[~same].max()  # same-class weights ≥ 0.5 > 0.2 · 1.5
    torch.testing.assert_close(a, factorization.block_joint(cfg, seed=0))
    assert not torch.equal(a, factorization.block_joint(cfg, seed=1))
    with pytest.raises(ValueError, match="cross"):
        cfg.replace(cross=-0.1)


def test_population_training_reaches_the_svd_optimum():
    cfg = _small()
    joint = factorization.block_joint(cfg, seed=0)
    fit = factorization.fit_factorization(cfg, joint, 2, replicas=2, seed=0)
    opt = factorization.svd_optimum(joint, 2)
    loss = factorization.factor_loss(fit.f_v, fit.f_l, joint)
    torch.testing.assert_close(loss, torch.full((2,), opt.min_loss, dtype=torch.float64))
    assert fit.history.final("subspace_min_cos").min() > 0.999
    assert fit.history["subspace_min_cos"][0].max() < 0.99  # it started elsewhere


def test_minibatch_replica_is_the_same_alone_or_in_a_group():
    cfg = _small(minibatch_steps=30, minibatch_lr=0.01, minibatch_size=16, eval_every=10)
    joint = factorization.block_joint(cfg, seed=0)
    group = factorization.fit_factorization(cfg, joint, 2, replicas=3, seed=3, minibatch=True)
    alone = factorization.fit_factorization(cfg, joint, 2, replicas=1, seed=3, minibatch=True)
    torch.testing.assert_close(group.f_v[0], alone.f_v[0])
    assert not torch.allclose(group.f_v[0], group.f_v[1])


def test_sscl_table_on_the_induced_graph_reaches_minus_sum_of_fourth_powers():
    cfg = _small()
    joint = factorization.block_joint(cfg, seed=0)
    graph = joint / joint.sum(0) @ joint.T  # A_V = P_M D_L^{-1} P_Mᵀ
    fit = factorization.fit_factorization(cfg, graph, 2, replicas=2, seed=0, tied=True)
    s = factorization.svd_optimum(joint, 2).s
    want = torch.full((2,), -float(s[:2].pow(4).sum()), dtype=torch.float64)
    torch.testing.assert_close(spectral_contrastive_loss(fit.f_v, fit.f_v, graph), want)
    assert torch.equal(fit.f_l, fit.f_v)
    with pytest.raises(ValueError, match="symmetric"):
        factorization.fit_factorization(cfg, joint, 2, replicas=1, seed=0, tied=True)
