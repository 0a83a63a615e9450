"""Chapter 05's temperature tools, the authors' recipe and the per-coordinate probe."""

import numpy as np
import pytest
import torch
from test_intrinsic_dim import small_config as base_config

import mmnb
from mmnb.worlds import intrinsic_dim


def small_config(**changes):
    """The tiny config of the chapter's other tests, with batches of 16."""
    return base_config(**{"batch_size": 16, **changes})


def test_mispair_moves_every_chosen_partner_and_nothing_else():
    s = intrinsic_dim.SharedLatentWorld(k=2, dim=5, seed=1).sample(200)
    bad = intrinsic_dim.mispair(s, 0.25, seed=3)
    changed = (bad.y != s.y).any(1)
    assert changed.sum().item() == 50  # ⌊0.25 · 200⌋ re-paired, none keeps its y
    torch.testing.assert_close(bad.x, s.x)
    torch.testing.assert_close(bad.z, s.z)
    assert sorted(map(tuple, bad.y.tolist())) == sorted(map(tuple, s.y.tolist()))
    with pytest.raises(ValueError, match="fraction"):
        intrinsic_dim.mispair(s, 0.001, seed=3)


def test_authors_recipe_sets_their_four_differences():
    cfg = intrinsic_dim.IntrinsicDimConfig.from_profile("book")
    a = intrinsic_dim.authors_recipe(cfg)
    assert a.batches == "fixed" and a.normalization == "mean_norm"
    assert a.n_reference == 1000
    assert a.tau_lr == pytest.approx(4 * cfg.lr)
    assert a.tau_weight_decay == pytest.approx(cfg.weight_decay / 16)
    paper = intrinsic_dim.IntrinsicDimConfig.from_profile("paper")
    assert paper.batches == "fixed" and paper.tau_lr == pytest.approx(4 * paper.lr)
    with pytest.raises(ValueError, match="batches"):
        cfg.replace(batches="sorted")


def test_fixed_batches_are_consecutive_and_never_reshuffled():
    cfg = small_config(batches="fixed")
    d = intrinsic_dim.World(cfg, 0).splits()
    run = intrinsic_dim.training_objective(
        cfg, d.train, d.reference, [5, 5], [None, None], [0, 1], n_samples=[64, 32]
    )
    seen = []
    original = intrinsic_dim.fit.sub_batch_info_nce

    def spy(u, v, tau, sub_batches):
        seen.append(u.detach().clone())
        return original(u, v, tau, sub_batches)

    intrinsic_dim.fit.sub_batch_info_nce = spy
    try:
        for _ in range(5):
            run.objective(torch.zeros(2, 16, dtype=torch.long))
    finally:
        intrinsic_dim.fit.sub_batch_info_nce = original
    with torch.no_grad():
        full = run.fit.embed_x(d.train.x)
    for step, u in enumerate(seen):  # replica 0 cycles 4 blocks, replica 1 (32 pairs) 2
        for r, blocks in ((0, 4), (1, 2)):
            start = (step % blocks) * 16
            torch.testing.assert_close(u[r], full[r, start : start + 16])


def test_tau_weight_decay_reaches_the_optimizer():
    cfg = small_config(tau_weight_decay=0.5)
    d = intrinsic_dim.World(cfg, 0).splits()
    run = intrinsic_dim.training_objective(cfg, d.train, d.reference, [5], [None], [0])
    assert run.groups[1]["weight_decay"] == 0.5 and run.groups[1]["lr"] == cfg.tau_lr


def test_mispaired_replicas_see_other_partners_and_clean_ones_do_not():
    cfg = small_config(epochs=2)
    d = intrinsic_dim.World(cfg, 0).splits()
    both = intrinsic_dim.fit_encoders(
        cfg, d.train, d.reference, [5, 5], [None, None], [0, 0], mispaired=[0.0, 0.5]
    )
    alone = intrinsic_dim.fit_encoders(cfg, d.train, d.reference, [5], [None], [0])
    torch.testing.assert_close(
        both.history["loss"][:, 0], alone.history["loss"][:, 0], atol=1e-5, rtol=1e-4
    )
    assert not np.allclose(both.history["loss"][:, 0], both.history["loss"][:, 1])
    with pytest.raises(ValueError, match="mispaired"):
        intrinsic_dim.fit_encoders(cfg, d.train, d.reference, [5], [None], [0], mispaired=[1.5])


def _loss(u, v, batch_size, seed, tau):
    s = intrinsic_dim.tau_optimum._batched_logits(u, v, batch_size, seed) / tau
    diag = s.diagonal(dim1=-2, dim2=-1)
    rows = torch.logsumexp(s, -1) - diag
    cols = torch.logsumexp(s, -2) - diag
    return (0.5 * (rows + cols)).mean().item()


def test_stationary_tau_is_the_minimum_of_the_minibatch_loss():
    gen = mmnb.stream(0, "test/tau-optimum")
    u = torch.nn.functional.normalize(gen.randn(1, 256, 4), dim=-1)
    v = torch.nn.functional.normalize(u + 0.05 * gen.randn(1, 256, 4), dim=-1)
    assert np.isnan(intrinsic_dim.stationary_tau(u, u, 32)[0])  # partners exact: τ → 0
    assert intrinsic_dim.partner_nearest(u, u, 32)[0] == 1.0
    bad = v.clone()
    bad[:, :64] = v[:, 64:128]  # a quarter re-paired
    tau = intrinsic_dim.stationary_tau(u, bad, 32)[0]
    grid = np.geomspace(tau / 3, tau * 3, 61)
    losses = [_loss(u, bad, 32, 0, t) for t in grid]
    assert grid[int(np.argmin(losses))] == pytest.approx(tau, rel=0.05)
    assert 0.7 < intrinsic_dim.partner_nearest(u, bad, 32)[0] < 0.8


def test_knn_r2_columns_averages_to_the_probe():
    gen = mmnb.stream(0, "test/knn-columns")
    x = gen.randn(2, 300, 3)
    target = torch.cat([x[0, :, :1], gen.randn(300, 2)], 1)
    cols = intrinsic_dim.knn_r2_columns(x, target, 5, 5, seed=1)
    assert cols.shape == (2, 3)
    np.testing.assert_allclose(cols.mean(1), mmnb.probes.knn_r2(x, target, 5, 5, seed=1), rtol=1e-5)
    assert cols[0, 0] > 0.5 and np.all(cols[:, 1:] < 0.1)
