"""Chapter 03's world and kernels against closed forms."""

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
from mmnb.runtime import stream
from mmnb.worlds import pmi, pmi_downstream, pmi_gaussian, pmi_ring


def test_ring_joint_is_a_circulant_distribution_with_uniform_marginals():
    joint = pmi_ring.ring_joint(16, 1.5, 0.1)
    assert joint.sum().item() == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(joint.sum(0), torch.full((16,), 1 / 16, dtype=torch.float64))
    torch.testing.assert_close(joint[3], joint[0].roll(3))


def test_ring_mutual_information_in_closed_form():
    # y = x + δ with x uniform: I(X; Y) = H(Y) − H(Y|X) = log n − H(δ).
    n = 64
    joint = pmi_ring.ring_joint(n, 1.5, 0.1)
    offset = joint[0] * n
    entropy = -(offset * offset.log()).sum().item()
    assert pmi_ring.mutual_information(joint) == pytest.approx(math.log(n) - entropy, rel=1e-10)
    assert pmi_ring.mutual_information(joint) == pytest.approx(1.844, abs=2e-3)  # the spec's value


def test_pmi_of_a_known_joint():
    joint = torch.tensor([[0.3, 0.1], [0.2, 0.4]], dtype=torch.float64)
    expected = torch.tensor(
        [
            [math.log(0.3 / (0.4 * 0.5)), math.log(0.1 / (0.4 * 0.5))],
            [math.log(0.2 / (0.6 * 0.5)), math.log(0.4 / (0.6 * 0.5))],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(pmi_ring.pmi(joint), expected)
    mi = sum(joint[i, j].item() * expected[i, j].item() for i in range(2) for j in range(2))
    assert pmi_ring.mutual_information(joint) == pytest.approx(mi)
    independent = torch.outer(torch.tensor([0.2, 0.8]), torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(pmi_ring.pmi(independent), torch.zeros(2, 2, dtype=torch.float64))


def test_gaussian_pmi_matches_the_log_density_ratio():
    rho = 0.6
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(5, 2, generator=gen), torch.randn(5, 2, generator=gen)
    cov = torch.eye(4)
    cov[0, 2] = cov[2, 0] = cov[1, 3] = cov[3, 1] = rho
    joint = torch.distributions.MultivariateNormal(torch.zeros(4), cov)
    marginal = torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2))
    expected = joint.log_prob(torch.cat([x, y], 1)) - marginal.log_prob(x) - marginal.log_prob(y)
    torch.testing.assert_close(pmi_gaussian.gaussian_pmi(x, y, rho), expected, rtol=1e-5, atol=1e-5)
    assert pmi_gaussian.gaussian_mutual_information(rho) == pytest.approx(-math.log(1 - rho**2))


def test_gaussian_mutual_information_is_the_mean_pmi():
    x, y = pmi_gaussian.sample_gaussian_pairs(200_000, 0.8, stream(1, "test"))
    mc = pmi_gaussian.gaussian_pmi(x.double(), y.double(), 0.8).mean().item()
    assert mc == pytest.approx(pmi_gaussian.gaussian_mutual_information(0.8), abs=0.02)


def test_batch_loss_from_counts_equals_the_gathered_logit_matrix():
    joint = pmi_ring.ring_joint(16)
    table = torch.randn(3, 16, 16, dtype=torch.float64)
    x, y = pmi_ring.PairSampler(joint, 40, 3, seed=2).next()
    gathered = pmi_ring.batch_logits(table, x, y)
    torch.testing.assert_close(
        pmi_ring.batch_loss(table, x, y), symmetric_info_nce_logits(gathered)
    )
    torch.testing.assert_close(pmi_ring.batch_loss(table, x, y, "x_to_y"), info_nce(gathered))


def test_only_the_symmetric_loss_pins_the_row_offsets():
    # Adding a(x) to the rows leaves every row's softmax unchanged: the one-directional
    # loss cannot see it. The symmetric loss sees it, and is blind only to one constant.
    joint = pmi_ring.ring_joint(16)
    table = torch.randn(2, 16, 16, dtype=torch.float64)
    rows = table + torch.randn(2, 16, 1, dtype=torch.float64)
    x, y = pmi_ring.PairSampler(joint, 64, 2, seed=3).next()
    one_way = pmi_ring.batch_loss(table, x, y, "x_to_y")
    torch.testing.assert_close(pmi_ring.batch_loss(rows, x, y, "x_to_y"), one_way)
    both = pmi_ring.batch_loss(table, x, y)
    assert (pmi_ring.batch_loss(rows, x, y) - both).abs().min() > 1e-3
    torch.testing.assert_close(pmi_ring.batch_loss(table + 2.5, x, y), both)


def test_shift_spread_measures_row_and_column_offsets():
    joint = pmi_ring.ring_joint(16)
    target = pmi_ring.pmi(joint)
    a = torch.randn(16, 1, dtype=torch.float64)
    rows = pmi.shift_spread(target + a + 7.0, target, joint)
    assert rows.item() == pytest.approx(a.std(unbiased=False).item(), rel=1e-9)
    assert pmi.shift_spread(target + a, target, joint, "column").item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="axis"):
        pmi.shift_spread(target, target, joint, "diagonal")


def test_pair_sampler_replica_alone_equals_replica_in_a_group():
    joint = pmi_ring.ring_joint(16)
    group = pmi_ring.PairSampler(joint, 32, 3, seed=5, chunk=4)
    alone = pmi_ring.PairSampler(joint, 32, [2], seed=5, chunk=7)
    for _ in range(10):
        (gx, gy), (ax, ay) = group.next(), alone.next()
        torch.testing.assert_close(gx[2:], ax)
        torch.testing.assert_close(gy[2:], ay)
    assert not torch.equal(gx[0], gx[1])  # replicas draw different batches


def test_oracle_expected_loss_for_two_by_two_batches_by_hand():
    # With K = 2 the symmetric loss of the PMI logits can be summed over all batches exactly.
    joint = torch.tensor([[0.35, 0.15], [0.05, 0.45]], dtype=torch.float64)
    logit = pmi_ring.pmi(joint)
    cells = [(a, b) for a in range(2) for b in range(2)]
    exact = 0.0
    for x1, y1 in cells:
        for x2, y2 in cells:
            lg = torch.tensor([[logit[x1, y1], logit[x1, y2]], [logit[x2, y1], logit[x2, y2]]])
            exact += joint[x1, y1] * joint[x2, y2] * symmetric_info_nce_logits(lg)
    mean, se = pmi_ring.expected_loss(logit, joint, 2, n_batches=40_000, seed=0)
    assert float(mean) == pytest.approx(float(exact), abs=4 * float(se))
    assert math.log(2) - float(exact) <= pmi_ring.mutual_information(joint)


def test_oracle_is_the_smallest_expected_loss_and_the_infonce_bound_holds():
    joint = pmi_ring.ring_joint(16)
    target = pmi_ring.pmi(joint)
    oracle, se = (float(t) for t in pmi_ring.expected_loss(target, joint, 32, 400, seed=3))
    perturbed = target + 0.3 * torch.randn(16, 16, generator=torch.Generator().manual_seed(4))
    worse, _ = pmi_ring.expected_loss(perturbed.float(), joint, 32, n_batches=400, seed=3)
    shifted, _ = pmi_ring.expected_loss((target + 5.0).float(), joint, 32, n_batches=400, seed=3)
    assert float(worse) > oracle
    assert float(shifted) == pytest.approx(oracle, abs=1e-4)  # the constant is free
    assert math.log(32) - oracle <= pmi_ring.mutual_information(joint) + 3 * se


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
    limit = pmi_gaussian.RHO_LIMIT
    pmi.PMIConfig(rho=-limit)
    for bad in (limit + 1e-3, float("nan")):
        with pytest.raises(ValueError, match="rho"):
            pmi.PMIConfig(rho=bad)
        with pytest.raises(ValueError, match="rho"):
            pmi_gaussian.gaussian_pmi(torch.zeros(2), torch.zeros(2), bad)
    with pytest.raises(ValueError, match="n_classes"):
        pmi.PMIConfig(n_states=8, n_classes=16)
    with pytest.raises(ValueError, match="tau_init"):
        pmi.PMIConfig(tau_init=0.5, tau_max=0.2)
    with pytest.raises(ValueError, match="embed_dims"):
        pmi.PMIConfig(embed_dims=[4, 0])
    with pytest.raises(ValueError, match="unknown"):
        pmi.PMIConfig.from_profile("book", embed_dim=4)


def test_free_table_replica_alone_equals_replica_in_a_group():
    joint = pmi_ring.ring_joint(8)
    options = dict(row_shift=1.0, eval_every=5)
    group = pmi.fit_free_table(joint, 16, 12, 0.05, 3, 4, **options)
    alone = pmi.fit_free_table(joint, 16, 12, 0.05, [1], 4, **options)
    torch.testing.assert_close(group.table[1:2], alone.table)
    assert not torch.allclose(group.table[0], group.table[1])
    assert group.history["delta"].shape == group.history["row_shift"].shape == (4, 3)


def test_free_tables_of_both_directions_trained_together_equal_tables_trained_alone():
    joint = pmi_ring.ring_joint(8)
    options = dict(row_shift=1.0, eval_every=3)
    together = pmi.fit_free_tables(
        joint, pmi_ring.DIRECTIONS, 16, 7, lr=0.05, replicas=[0, 2], seed=4, **options
    )
    for direction in pmi_ring.DIRECTIONS:
        alone = pmi.fit_free_table(joint, 16, 7, 0.05, [0, 2], 4, direction=direction, **options)
        torch.testing.assert_close(together[direction].table, alone.table)
        torch.testing.assert_close(together[direction].averaged, alone.averaged)
        assert together[direction].history["rmse"].shape == alone.history["rmse"].shape == (4, 2)
    assert not torch.allclose(together["symmetric"].table, together["x_to_y"].table)


def test_embedding_dims_trained_together_equal_dims_trained_alone():
    joint = pmi_ring.ring_joint(8)
    cfg = pmi.PMIConfig(n_states=8, embed_steps=5, eval_every=2)
    kinds = ["cosine", "gauss", "mix"]
    together = pmi.fit_embedding_dims(joint, cfg, (2, 3), kinds, [0, 1, 0], seed=1)
    for d in (2, 3):
        alone = pmi.fit_embeddings(joint, cfg, d, kinds, [0, 1, 0], seed=1)
        assert together[d].u.shape == alone.u.shape == (3, 8, d)
        torch.testing.assert_close(together[d].logits(), alone.logits())
        torch.testing.assert_close(together[d].temperature(), alone.temperature())
        assert together[d].history["rmse"].shape == alone.history["rmse"].shape == (4, 3)
    assert not torch.allclose(together[2].logits(), together[3].logits())


def test_embedding_features_give_the_similarity_by_inner_product():
    joint = pmi_ring.ring_joint(8)
    cfg = pmi.PMIConfig(n_states=8, embed_steps=3, eval_every=1)
    fit = pmi.fit_embeddings(joint, cfg, 3, ["cosine", "gauss", "mix"], [0, 0, 0], seed=1)
    alone = pmi.fit_embeddings(joint, cfg, 3, ["mix"], [0], seed=1)
    torch.testing.assert_close(alone.u[0], fit.u[2])  # a replica trains alike alone
    exact = fit.logits() * fit.temperature().view(-1, 1, 1)  # the similarities g
    fu, fv = fit.features(4096, seed=1), fit.features(4096, seed=1, side="y")
    assert fu.shape == (3, 8, 3 + 4096)
    approx = fu @ fv.transpose(-1, -2)
    torch.testing.assert_close(approx[0], exact[0])  # the cosine needs no random features
    assert (approx[1:] - exact[1:]).abs().max() < 0.1  # D = 4096: s.d. of an entry ≤ 0.016
    assert (fit.features(4096, seed=2) - fu).abs().max() > 0  # another draw


def test_rank_ceiling_of_a_rank_one_matrix():
    a, b = torch.randn(2, 10, dtype=torch.float64)
    target = torch.outer(a, b - b.mean())  # rank one and already of mean zero
    assert pmi_ring.rank_ceiling(target, 1) == pytest.approx(1.0, abs=1e-9)
    ring = pmi_ring.pmi(pmi_ring.ring_joint())
    assert pmi_ring.rank_ceiling(ring, 5) < 0.9  # the ring is high-rank


def test_prototype_classifier_with_pmi_respects_the_kl_bound():
    joint = pmi_ring.ring_joint()
    labels = pmi_downstream.class_labels(64, 8)
    bayes = pmi_downstream.bayes_cross_entropy(joint, labels)
    proto = pmi_downstream.prototype_cross_entropy(pmi_ring.pmi(joint), joint, labels).item()
    excess = proto - bayes
    assert 0 <= excess <= pmi_downstream.kl_bound(joint, labels)
    # a probe on one-hot features is the Bayes classifier
    probe = pmi_downstream.probe_cross_entropy(torch.eye(64), joint, labels).item()
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
    a = pmi._kind_weights(["gauss", "mix", "cosine"], 0.25, torch.device("cpu"))
    torch.testing.assert_close(a, torch.tensor([[0.0, 1.0], [0.25, 0.75], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="kind"):
        pmi._kind_weights(["mix", "laplace"], 0.25, torch.device("cpu"))


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
        pmi_ring.ring_joint(64, 1.5, 1.5)
    with pytest.raises(ValueError, match="rho"):
        pmi_gaussian.gaussian_mutual_information(1.0)
    with pytest.raises(ValueError, match="batch_size"):
        pmi_ring.expected_loss(pmi_ring.pmi(pmi_ring.ring_joint(8)), pmi_ring.ring_joint(8), 1)
    with pytest.raises(ValueError, match="direction"):
        pmi_ring.batch_loss(
            torch.zeros(1, 8, 8),
            *pmi_ring.PairSampler(pmi_ring.ring_joint(8), 4, 1, seed=0).next(),
            "y_to_x",
        )
