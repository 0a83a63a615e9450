"""Chapter 03's worlds (the ring, the Gaussian pair) and kernels against closed forms."""

import math

import pytest
import torch

from mmnb.losses import (
    info_nce,
    kernel_features,
    kernel_similarity,
    kernel_weights,
    sample_fourier_basis,
    symmetric_info_nce_logits,
)
from mmnb.probes import pmi_fit
from mmnb.protocol import World
from mmnb.runtime import stream
from mmnb.worlds import pmi


def test_ring_joint_is_a_circulant_distribution_with_uniform_marginals():
    joint = pmi.ring_joint(16, 1.5, 0.1)
    assert joint.sum().item() == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(joint.sum(0), torch.full((16,), 1 / 16, dtype=torch.float64))
    torch.testing.assert_close(joint[3], joint[0].roll(3))


def test_ring_mutual_information_in_closed_form():
    # y = x + δ with x uniform: I(X; Y) = H(Y) − H(Y|X) = log n − H(δ).
    n = 64
    joint = pmi.ring_joint(n, 1.5, 0.1)
    offset = joint[0] * n
    entropy = -(offset * offset.log()).sum().item()
    assert pmi.mutual_information(joint) == pytest.approx(math.log(n) - entropy, rel=1e-10)
    assert pmi.mutual_information(joint) == pytest.approx(1.844, abs=2e-3)  # the spec's value


def test_pmi_of_a_known_joint():
    joint = torch.tensor([[0.3, 0.1], [0.2, 0.4]], dtype=torch.float64)
    expected = torch.tensor(
        [
            [math.log(0.3 / (0.4 * 0.5)), math.log(0.1 / (0.4 * 0.5))],
            [math.log(0.2 / (0.6 * 0.5)), math.log(0.4 / (0.6 * 0.5))],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(pmi.pmi(joint), expected)
    mi = sum(joint[i, j].item() * expected[i, j].item() for i in range(2) for j in range(2))
    assert pmi.mutual_information(joint) == pytest.approx(mi)
    independent = torch.outer(torch.tensor([0.2, 0.8]), torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(pmi.pmi(independent), torch.zeros(2, 2, dtype=torch.float64))


def test_worlds_keep_the_protocol():
    cfg = pmi.PMIConfig(n_states=8)
    ring, gauss = pmi.World(cfg, 3), pmi.GaussianWorld(cfg, 3)
    for world in (ring, gauss):
        assert isinstance(world, World) and world.seed == 3 and world.cfg is cfg
        with pytest.raises(ValueError, match="purpose"):
            world.sample(4, "data/unknown")
    assert pmi.CONFIGS[0] is pmi.PMIConfig and pmi.World is pmi.RingWorld
    torch.testing.assert_close(ring.joint, pmi.ring_joint(8, cfg.width, cfg.uniform_mix))
    x, y = ring.sample(6, "data/check")
    assert x.shape == y.shape == (6,)
    torch.testing.assert_close(ring.sample(6, "data/check")[1], y)  # one stream per purpose
    assert not torch.equal(ring.sample(6, "data/oracle")[0], x)
    by_world, by_hand = ring.sampler(5, [1, 2]).next(), pmi.PairSampler(ring.joint, 5, [1, 2], 3)
    for a, b in zip(by_world, by_hand.next(), strict=True):
        torch.testing.assert_close(a, b)  # training batches: the stream (seed, data/pairs, r)
    x, y = gauss.sample(7, "data/gaussian", replica=1)
    pair = gauss.pairs(7, gauss.streams([1]))
    torch.testing.assert_close(pair[0][0], x)
    torch.testing.assert_close(pair[1][0], y)
    xs, ys = gauss.sample_independent(5, "data/gaussian_eval")
    torch.testing.assert_close(
        torch.stack([xs, ys]), stream(3, "data/gaussian_eval").randn(2, 5, cfg.gauss_x_dim)
    )


def test_gaussian_world_information_is_the_mean_pmi_of_its_pairs():
    world = pmi.GaussianWorld(pmi.PMIConfig(rho=0.8), seed=1)
    x, y = world.sample(200_000, "data/gaussian")
    mc = world.pmi(x.double(), y.double()).mean().item()
    assert world.mutual_information() == pytest.approx(-math.log(1 - 0.8**2))  # d = 2
    assert mc == pytest.approx(world.mutual_information(), abs=0.02)
    xs, ys = world.sample_independent(200_000, "data/gaussian_constant")  # from p(x) p(y)
    assert (x * y).sum(-1).mean().item() == pytest.approx(2 * 0.8, abs=0.02)
    assert (xs * ys).sum(-1).mean().item() == pytest.approx(0.0, abs=0.02)


def test_batch_loss_from_counts_equals_the_gathered_logit_matrix():
    joint = pmi.ring_joint(16)
    table = torch.randn(3, 16, 16, dtype=torch.float64)
    x, y = pmi.PairSampler(joint, 40, 3, seed=2).next()
    gathered = pmi.batch_logits(table, x, y)
    torch.testing.assert_close(pmi.batch_loss(table, x, y), symmetric_info_nce_logits(gathered))
    torch.testing.assert_close(pmi.batch_loss(table, x, y, "x_to_y"), info_nce(gathered))


def test_only_the_symmetric_loss_pins_the_row_offsets():
    # Adding a(x) to the rows leaves every row's softmax unchanged: the one-directional
    # loss cannot see it. The symmetric loss sees it, and is blind only to one constant.
    joint = pmi.ring_joint(16)
    table = torch.randn(2, 16, 16, dtype=torch.float64)
    rows = table + torch.randn(2, 16, 1, dtype=torch.float64)
    x, y = pmi.PairSampler(joint, 64, 2, seed=3).next()
    one_way = pmi.batch_loss(table, x, y, "x_to_y")
    torch.testing.assert_close(pmi.batch_loss(rows, x, y, "x_to_y"), one_way)
    both = pmi.batch_loss(table, x, y)
    assert (pmi.batch_loss(rows, x, y) - both).abs().min() > 1e-3
    torch.testing.assert_close(pmi.batch_loss(table + 2.5, x, y), both)


def test_shift_spread_measures_row_and_column_offsets():
    joint = pmi.ring_joint(16)
    target = pmi.pmi(joint)
    a = torch.randn(16, 1, dtype=torch.float64)
    rows = pmi.shift_spread(target + a + 7.0, target, joint)
    assert rows.item() == pytest.approx(a.std(unbiased=False).item(), rel=1e-9)
    assert pmi.shift_spread(target + a, target, joint, "column").item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="axis"):
        pmi.shift_spread(target, target, joint, "diagonal")


def test_pair_sampler_replica_alone_equals_replica_in_a_group():
    joint = pmi.ring_joint(16)
    group = pmi.PairSampler(joint, 32, 3, seed=5, chunk=4)
    alone = pmi.PairSampler(joint, 32, [2], seed=5, chunk=7)
    for _ in range(10):
        (gx, gy), (ax, ay) = group.next(), alone.next()
        torch.testing.assert_close(gx[2:], ax)
        torch.testing.assert_close(gy[2:], ay)
    assert not torch.equal(gx[0], gx[1])  # replicas draw different batches


def test_oracle_expected_loss_for_two_by_two_batches_by_hand():
    # With K = 2 the symmetric loss of the PMI logits can be summed over all batches exactly.
    joint = torch.tensor([[0.35, 0.15], [0.05, 0.45]], dtype=torch.float64)
    logit = pmi.pmi(joint)
    cells = [(a, b) for a in range(2) for b in range(2)]
    exact = 0.0
    for x1, y1 in cells:
        for x2, y2 in cells:
            lg = torch.tensor([[logit[x1, y1], logit[x1, y2]], [logit[x2, y1], logit[x2, y2]]])
            exact += joint[x1, y1] * joint[x2, y2] * symmetric_info_nce_logits(lg)
    mean, se = pmi.expected_loss(logit, joint, 2, n_batches=40_000, seed=0)
    assert float(mean) == pytest.approx(float(exact), abs=4 * float(se))
    assert math.log(2) - float(exact) <= pmi.mutual_information(joint)


def test_oracle_is_the_smallest_expected_loss_and_the_infonce_bound_holds():
    joint = pmi.ring_joint(16)
    target = pmi.pmi(joint)
    oracle, se = (float(t) for t in pmi.expected_loss(target, joint, 32, 400, seed=3))
    perturbed = target + 0.3 * torch.randn(16, 16, generator=torch.Generator().manual_seed(4))
    worse, _ = pmi.expected_loss(perturbed.float(), joint, 32, n_batches=400, seed=3)
    shifted, _ = pmi.expected_loss((target + 5.0).float(), joint, 32, n_batches=400, seed=3)
    assert float(worse) > oracle
    assert float(shifted) == pytest.approx(oracle, abs=1e-4)  # the constant is free
    assert math.log(32) - oracle <= pmi.mutual_information(joint) + 3 * se


def test_pmi_fit_ignores_shift_and_scale_of_correlation():
    target = torch.randn(8, 8, dtype=torch.float64)
    weights = torch.rand(8, 8, dtype=torch.float64)
    fit = pmi_fit(torch.stack([target + 3.0, 2 * target]), target, weights)
    torch.testing.assert_close(fit.corr, torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(fit.slope, torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert fit.rmse[0].item() == pytest.approx(0.0, abs=1e-12)
    assert fit.delta[0].item() == pytest.approx(0.0, abs=1e-12)
    assert fit.rmse[1].item() > 0


def test_pmi_fit_delta_is_the_largest_deviation_after_the_best_constant():
    target = torch.zeros(4, 4, dtype=torch.float64)
    logits = target.clone()
    logits[0, 0], logits[3, 2] = 1.0, -0.5  # deviations span [−0.5, 1]: best C = 0.25
    fit = pmi_fit(logits, target)
    assert fit.delta.item() == pytest.approx(0.75)
    weights = torch.ones(4, 4, dtype=torch.float64)
    weights[0, 0] = 0.0  # a cell of zero weight does not count
    assert pmi_fit(logits, target, weights).delta.item() == pytest.approx(0.25)


def test_config_profiles_and_one_range_for_rho():
    book, paper = pmi.PMIConfig(), pmi.PMIConfig.from_profile("paper")
    assert paper.kernel == "rff" and book.kernel == "exact"
    assert paper.width == book.width  # "paper" changes only what PAPER lists
    assert set(pmi.PMIConfig.PAPER) <= set(pmi.PMIConfig.knobs())
    limit = pmi.RHO_LIMIT
    pmi.PMIConfig(rho=-limit)
    for bad in (limit + 1e-3, float("nan")):
        with pytest.raises(ValueError, match="rho"):
            pmi.PMIConfig(rho=bad)
        with pytest.raises(ValueError, match="rho"):
            pmi.sample_gaussian_pairs(2, bad, stream(0, "test"))
    with pytest.raises(ValueError, match="n_classes"):
        pmi.PMIConfig(n_states=8, n_classes=16)
    with pytest.raises(ValueError, match="tau_init"):
        pmi.PMIConfig(tau_init=0.5, tau_max=0.2)
    with pytest.raises(ValueError, match="embed_dims"):
        pmi.PMIConfig(embed_dims=[4, 0])
    with pytest.raises(ValueError, match="unknown"):
        pmi.PMIConfig.from_profile("book", embed_dim=4)


def test_free_table_replica_alone_equals_replica_in_a_group():
    cfg = pmi.PMIConfig(n_states=8, batch_size=16, table_steps=12, table_lr=0.05, eval_every=5)
    world = pmi.World(cfg, 4)
    group = pmi.fit_free_table(cfg, world, 3, row_shift=1.0)
    alone = pmi.fit_free_table(cfg, world, [1], row_shift=1.0)
    torch.testing.assert_close(group.table[1:2], alone.table)
    assert not torch.allclose(group.table[0], group.table[1])
    assert group.history["delta"].shape == group.history["row_shift"].shape == (4, 3)


def test_free_tables_of_both_directions_trained_together_equal_tables_trained_alone():
    cfg = pmi.PMIConfig(n_states=8, row_shift_init=1.0, eval_every=3)
    world = pmi.World(cfg, 4)
    options = dict(batch_size=16, steps=7, lr=0.05)
    together = pmi.fit_free_tables(cfg, world, pmi.DIRECTIONS, [0, 2], **options)
    for direction in pmi.DIRECTIONS:
        alone = pmi.fit_free_table(cfg, world, [0, 2], direction=direction, **options)
        torch.testing.assert_close(together[direction].table, alone.table)
        torch.testing.assert_close(together[direction].averaged, alone.averaged)
        assert together[direction].history["rmse"].shape == alone.history["rmse"].shape == (4, 2)
    assert not torch.allclose(together["symmetric"].table, together["x_to_y"].table)


def test_floor_run_is_the_symmetric_table_started_without_row_offsets():
    cfg = pmi.PMIConfig(n_states=8, row_shift_init=1.0, eval_every=3)
    world = pmi.World(cfg, 4)
    options = dict(batch_size=16, steps=7, lr=0.05)
    fits = pmi.fit_free_tables(cfg, world, pmi.DIRECTIONS, [0, 2], floor=True, **options)
    assert list(fits) == [*pmi.DIRECTIONS, "floor"] and fits["floor"].direction == "symmetric"
    alone = pmi.fit_free_table(cfg, world, [0, 2], row_shift=0.0, **options)
    torch.testing.assert_close(fits["floor"].table, alone.table)
    without = pmi.fit_free_tables(cfg, world, pmi.DIRECTIONS, [0, 2], **options)
    torch.testing.assert_close(fits["symmetric"].table, without["symmetric"].table)


def test_embedding_dims_trained_together_equal_dims_trained_alone():
    cfg = pmi.PMIConfig(n_states=8, embed_steps=5, eval_every=2)
    world, kinds = pmi.World(cfg, 1), ["cosine", "gauss", "mix"]
    together = pmi.fit_embedding_dims(cfg, world, (2, 3), kinds, [0, 1, 0])
    for d in (2, 3):
        alone = pmi.fit_embeddings(cfg, world, d, kinds, [0, 1, 0])
        assert together[d].u.shape == alone.u.shape == (3, 8, d)
        torch.testing.assert_close(together[d].logits(), alone.logits())
        torch.testing.assert_close(together[d].temperature(), alone.temperature())
        assert together[d].history["rmse"].shape == alone.history["rmse"].shape == (4, 3)
    assert not torch.allclose(together[2].logits(), together[3].logits())


def test_embedding_features_give_the_similarity_by_inner_product():
    cfg = pmi.PMIConfig(n_states=8, embed_steps=3, eval_every=1)
    world = pmi.World(cfg, 1)
    fit = pmi.fit_embeddings(cfg, world, 3, ["cosine", "gauss", "mix"], [0, 0, 0])
    alone = pmi.fit_embeddings(cfg, world, 3, ["mix"], [0])
    torch.testing.assert_close(alone.u[0], fit.u[2])  # a replica trains alike alone
    exact = fit.logits() * fit.temperature().view(-1, 1, 1)  # the similarities g
    fu, fv = fit.features(4096, seed=1), fit.features(4096, seed=1, side="y")
    assert fu.shape == (3, 8, 3 + 4096)
    approx = fu @ fv.transpose(-1, -2)
    torch.testing.assert_close(approx[0], exact[0])  # the cosine needs no random features
    assert (approx[1:] - exact[1:]).abs().max() < 0.1  # D = 4096: s.d. of an entry ≤ 0.016
    assert (fit.features(4096, seed=2) - fu).abs().max() > 0  # another draw


def test_table_difference_is_about_one_for_noise_around_one_target():
    gen = torch.Generator().manual_seed(0)
    target, weights = torch.randn(32, 32, generator=gen), torch.ones(32, 32)

    def noisy(scale: float) -> torch.Tensor:
        return target + scale * torch.randn(6, 32, 32, generator=gen)

    same = pmi.table_difference(noisy(0.3), noisy(0.6), weights)
    assert same.across.shape == same.over_noise.shape == (6,)
    assert abs(same.within_a.mean() - 0.3 * 2**0.5) < 0.02  # two independent noises
    assert abs(same.over_noise.mean() - 1) < 0.05
    shifted = pmi.table_difference(noisy(0.3), noisy(0.6) + torch.randn(32, 32), weights)
    assert shifted.over_noise.min() > 1.5  # another target: a difference beyond the noise
    with pytest.raises(ValueError, match="R >= 2"):
        pmi.table_difference(noisy(0.3)[:1], noisy(0.3)[:1], weights)


def test_rank_ceiling_of_a_rank_one_matrix():
    a, b = torch.randn(2, 10, dtype=torch.float64)
    target = torch.outer(a, b - b.mean())  # rank one and already of mean zero
    assert pmi.rank_ceiling(target, 1) == pytest.approx(1.0, abs=1e-9)
    ring = pmi.pmi(pmi.ring_joint())
    assert pmi.rank_ceiling(ring, 5) < 0.9  # the ring is high-rank


def test_prototype_classifier_with_pmi_respects_the_kl_bound():
    joint = pmi.ring_joint()
    labels = pmi.class_labels(64, 8)
    bayes = pmi.bayes_cross_entropy(joint, labels)
    proto = pmi.prototype_cross_entropy(pmi.pmi(joint), joint, labels).item()
    excess = proto - bayes
    assert 0 <= excess <= pmi.kl_bound(joint, labels)
    # a probe on one-hot features is the Bayes classifier
    probe = pmi.probe_cross_entropy(torch.eye(64), joint, labels).item()
    assert probe == pytest.approx(bayes, abs=1e-3)


def test_kernel_similarity_in_closed_form():
    u = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    v = torch.tensor([[3.0, 0.0]])
    sq = torch.tensor([[0.0], [2.0]])  # ‖û − v̂‖²
    gauss = torch.exp(-sq / (2 * 0.5**2))
    cos = torch.tensor([[1.0], [0.0]])
    torch.testing.assert_close(kernel_similarity(u, v, "gauss", 0.5), gauss)
    torch.testing.assert_close(kernel_similarity(u, v, "cosine"), cos)
    torch.testing.assert_close(kernel_similarity(u, v, "mix", 0.5), 0.667 * cos + 0.333 * gauss)
    with pytest.raises(ValueError, match="kind"):
        kernel_similarity(u, v, "laplace")


def test_kernel_weights_per_kind_and_per_replica():
    assert kernel_weights("cosine", (0.3, 0.7)) == (1.0, 0.0)
    assert kernel_weights("gauss", (0.3, 0.7)) == (0.0, 1.0)
    assert kernel_weights("mix", (0.3, 0.7)) == (0.3, 0.7)
    a = pmi.kind_weights(["gauss", "mix", "cosine"], 0.25, torch.device("cpu"))
    torch.testing.assert_close(a, torch.tensor([[0.0, 1.0], [0.25, 0.75], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="kind"):
        pmi.kind_weights(["mix", "laplace"], 0.25, torch.device("cpu"))


def test_random_features_agree_with_the_exact_kernel_within_monte_carlo_error():
    gen = torch.Generator().manual_seed(5)
    u, v = torch.randn(2, 32, 4, generator=gen), torch.randn(2, 32, 4, generator=gen)
    n_features = 1024
    exact = kernel_similarity(u, v, "mix", 0.5)
    k = kernel_similarity(u, v, "gauss", 0.5)
    sd = 0.333 * torch.sqrt((1 - k**2 + k**4 / 2) / n_features)  # per-entry s.d.
    one = kernel_similarity(u, v, "mix", 0.5, n_features=n_features, generator=gen)
    assert ((one - exact).abs() / sd).max() < 5  # 2048 entries, max of normals ≈ 3.5
    draws = torch.stack(
        [kernel_similarity(u, v, "mix", 0.5, n_features=1024, generator=gen) for _ in range(64)]
    )
    assert ((draws.mean(0) - exact).abs() / (sd / 8)).max() < 5  # unbiased
    z = (draws - exact) / sd
    assert z.std().item() == pytest.approx(1.0, abs=0.05)  # the predicted variance


def test_kernel_features_give_the_similarity_by_inner_product():
    gen = torch.Generator().manual_seed(6)
    omega, phase = sample_fourier_basis(3, 16, 0.5, gen)
    u = torch.randn(5, 3, generator=gen)
    feats = kernel_features(u, omega, phase, "mix")
    assert feats.shape == (5, 3 + 16)
    un = torch.nn.functional.normalize(u, dim=-1)
    cos = un @ un.T
    z = torch.cos(un @ omega + phase) * (2 / 16) ** 0.5
    torch.testing.assert_close(feats @ feats.T, 0.667 * cos + 0.333 * z @ z.T)


def test_bad_parameters_name_themselves():
    with pytest.raises(ValueError, match="uniform_mix"):
        pmi.ring_joint(64, 1.5, 1.5)
    with pytest.raises(ValueError, match="rho"):
        pmi.sample_gaussian_pairs(2, 1.0, stream(0, "test"))
    with pytest.raises(ValueError, match="batch_size"):
        pmi.expected_loss(pmi.pmi(pmi.ring_joint(8)), pmi.ring_joint(8), 1)
    with pytest.raises(ValueError, match="direction"):
        pmi.batch_loss(
            torch.zeros(1, 8, 8),
            *pmi.PairSampler(pmi.ring_joint(8), 4, 1, seed=0).next(),
            "y_to_x",
        )
