"""Chapter 02's world: the factorization identity, graphs, the bound and resampling rules."""

import math

import pytest
import torch

import mmnb
from mmnb.losses import spectral_contrastive_loss, symmetric_info_nce_logits
from mmnb.worlds import cooccurrence as world


def _joint(seed=0, n_v=7, n_l=5):
    joint = torch.rand(n_v, n_l, generator=torch.Generator().manual_seed(seed)).double()
    return joint / joint.sum()


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
    torch.testing.assert_close(world.factor_loss(f, g, joint), by_hand)


def test_top_singular_value_is_one_with_root_marginal_vectors():
    joint = _joint(2)
    u, s, vh = torch.linalg.svd(world.normalized_cooccurrence(joint))
    assert s[0].item() == pytest.approx(1.0, abs=1e-12)
    assert (s <= 1 + 1e-12).all()
    sign = torch.sign(u[0, 0])
    torch.testing.assert_close(sign * u[:, 0], joint.sum(1).sqrt())
    torch.testing.assert_close(sign * vh[0], joint.sum(0).sqrt())


def test_svd_optimum_reaches_minus_sum_of_squared_singular_values():
    joint = _joint(3)
    opt = world.svd_optimum(joint, 2)
    p_v, p_l = joint.sum(1), joint.sum(0)
    f_v = opt.u * opt.s[:2].sqrt() / p_v.sqrt()[:, None]
    f_l = opt.v * opt.s[:2].sqrt() / p_l.sqrt()[:, None]
    loss = spectral_contrastive_loss(f_v, f_l, joint).item()
    assert loss == pytest.approx(opt.min_loss, abs=1e-12)
    assert opt.min_loss == pytest.approx(-float(opt.s[:2].square().sum()))
    rotation = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    cos = world.principal_cosines(world.weighted_factors(f_v @ rotation, p_v), opt.u)
    torch.testing.assert_close(cos, torch.ones(2, dtype=torch.float64))


def test_induced_graph_has_row_sums_p_v_and_normalized_form_p_tilde_squared():
    joint = _joint(4)
    graph = world.induced_graph(joint)
    p_v = joint.sum(1)
    torch.testing.assert_close(graph.sum(1), p_v)
    torch.testing.assert_close(graph, graph.T)
    p_tilde = world.normalized_cooccurrence(joint)
    torch.testing.assert_close(graph / (p_v[:, None] * p_v[None, :]).sqrt(), p_tilde @ p_tilde.T)


def test_consistency_disagreement_and_the_bound_on_a_two_block_world():
    # two images per class, one caption per class; a fraction e of the mass crosses classes
    e = 0.1
    joint = torch.tensor([[1 - e, e], [1 - e, e], [e, 1 - e], [e, 1 - e]], dtype=torch.float64) / 4
    labels, caption_labels = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1])
    assert world.consistency(joint, labels, caption_labels) == pytest.approx(e)
    # images x, x' share a caption: P[differ] = 2e(1 − e) by hand
    phi = world.disagreement(world.induced_graph(joint), labels)
    assert phi == pytest.approx(2 * e * (1 - e))
    assert phi <= 2 * e
    s = torch.linalg.svdvals(world.normalized_cooccurrence(joint))
    assert world.spectral_gap(joint, 1) == pytest.approx(1 - s[1].item() ** 2)
    assert world.spectral_gap(joint, 2) == 1.0  # only two singular values
    error = world.projection_head_error(joint, labels, 2)
    assert error == 0.0 <= world.generalization_bound(phi, world.spectral_gap(joint, 2))
    assert world.generalization_bound(0.1, 0.0) == math.inf


def test_disconnected_graph_has_no_gap_and_tied_features_are_drawn_in_the_tied_space():
    joint = torch.eye(4, dtype=torch.float64) / 4  # every image its own caption
    assert world.spectral_gap(joint, 2) == 0.0
    u, s = world.top_subspace(joint, 2, torch.Generator().manual_seed(0))
    torch.testing.assert_close(u.T @ u, torch.eye(2, dtype=torch.float64))
    assert not torch.allclose(u.abs(), torch.eye(4, 2, dtype=torch.float64))


def test_caption_world_joint_and_caption_noise():
    cfg = mmnb.resolve_profile("book", world.PROFILES)
    cw = world.make_world(cfg)
    gen = torch.Generator().manual_seed(0)
    x, y = world.sample_images(cw, 50, gen)
    assert x.shape == (50, cfg.signal_dims + cfg.nuisance_dims)
    dist = torch.cdist(cw.means, cw.means)
    off = ~torch.eye(cfg.n_classes, dtype=torch.bool)
    torch.testing.assert_close(dist[off], torch.full_like(dist[off], cfg.class_sep))
    clean = world.assign_captions(cw, y, 3, 0.0, gen)
    assert (cw.caption_labels[clean] == y[:, None]).all()
    wrong = world.assign_captions(cw, y, 3, 1.0, gen)
    assert (cw.caption_labels[wrong] != y[:, None]).all()
    joint = world.caption_joint(clean, len(cw.caption_labels))
    assert joint.sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(joint.sum(1), torch.full((50,), 1 / 50, dtype=torch.float64))
    assert world.consistency(joint, y, cw.caption_labels) == 0.0


def test_augmentation_joint_rows_are_views_of_uniform_images():
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    joint = world.augmentation_joint(x, 0.7)
    torch.testing.assert_close(joint.sum(0), torch.full((6,), 1 / 6, dtype=torch.float64))
    kernel = torch.exp(-torch.cdist(x, x).double().square() / (2 * 0.7**2))
    torch.testing.assert_close(joint[:, 2], kernel[2] / kernel[2].sum() / 6)


def test_select_new_positive_and_drop_rules_by_hand():
    sim = torch.tensor([[9.0, 1.0, 3.0, 2.0], [1.0, 9.0, 0.0, 5.0], [3.0, 0.0, 9.0, 4.0],
                        [2.0, 5.0, 4.0, 9.0]])  # fmt: skip
    assert world.select_new_positive(sim).tolist() == [2, 3, 3, 1]
    keep_hard = world.drop_negatives(sim, 1 / 3, largest=True)  # drop 1 of 3 negatives
    expected = ~torch.eye(4, dtype=torch.bool)
    for i, j in enumerate([2, 3, 3, 1]):
        expected[i, j] = False
    assert torch.equal(keep_hard, expected)
    keep_easy = world.drop_negatives(sim, 1 / 3, largest=False)
    expected = ~torch.eye(4, dtype=torch.bool)
    for i, j in enumerate([1, 2, 1, 0]):
        expected[i, j] = False
    assert torch.equal(keep_easy, expected)
    kept = world.drop_positives(torch.tensor([0.5, -0.2, 0.9, 0.1]), 0.25)
    assert kept.tolist() == [0, 2, 3]


def _by_hand(z1, z2, ta, tv, rule, tau):
    """One replica, explicit loops: the resampling rules as written in the chapter."""
    z1, z2 = [torch.nn.functional.normalize(z, dim=-1) for z in (z1, z2)]
    ta, tv = [torch.nn.functional.normalize(t, dim=-1) for t in (ta, tv)]
    n = len(z1)
    logits = z1 @ z2.T / tau
    rows = list(range(n))
    keep = torch.ones(n, n, dtype=torch.bool)
    if rule == "drop_false_positive":
        pos = (ta * tv).sum(-1)
        rows = sorted(pos.argsort(descending=True)[: n - round(0.1 * n)].tolist())
    if rule in ("drop_false_negative", "drop_easy_negative"):
        frac = 0.05 if rule == "drop_false_negative" else 0.10
        sim = ta @ tv.T
        for i in range(n):
            others = [j for j in range(n) if j != i]
            ranked = sorted(others, key=lambda j: sim[i, j].item(), reverse=True)
            drop = ranked if rule == "drop_false_negative" else ranked[::-1]
            for j in drop[: round(frac * (n - 1))]:
                keep[i, j] = False

    def ce(mat, mask, i, target):
        cols = [j for j in rows if mask[i, j] or j == target]
        return torch.logsumexp(mat[i, cols], 0) - mat[i, target]

    row = sum(ce(logits, keep, i, i) for i in rows) / len(rows)
    col = sum(ce(logits.T, keep.T, i, i) for i in rows) / len(rows)
    loss = 0.5 * (row + col)
    if rule == "new_positive":
        sa = ta @ ta.T
        sa.fill_diagonal_(-math.inf)
        new = [ce(logits, keep, i, int(sa[i].argmax())) for i in range(n)]
        back = [ce(logits.T, keep.T, i, int(sa[i].argmax())) for i in range(n)]
        loss = 0.5 * (loss + 0.5 * (sum(new) + sum(back)) / n)
    return loss


@pytest.mark.parametrize("rule", world.RESAMPLING)
def test_resampling_loss_matches_the_rule_by_hand(rule):
    gen = torch.Generator().manual_seed(7)
    n = 21  # 20 negatives per row: 5% is one, 10% two; 10% of 21 positives is two
    z1, z2 = torch.randn(2, 2, n, 3, generator=gen, dtype=torch.float64)
    ta, tv = torch.randn(2, 2, n, 4, generator=gen, dtype=torch.float64)
    got = world.resampling_loss(z1, z2, ta, tv, rule, 0.5)
    want = torch.stack([_by_hand(z1[r], z2[r], ta[r], tv[r], rule, 0.5) for r in range(2)])
    torch.testing.assert_close(got, want)
    if rule == "simclr":
        logits = (
            torch.nn.functional.normalize(z1, dim=-1) @ torch.nn.functional.normalize(z2, dim=-1).mT
        )
        torch.testing.assert_close(got, symmetric_info_nce_logits(logits / 0.5))


def test_bad_parameters_name_themselves():
    with pytest.raises(ValueError, match="rule.*simclr"):
        world.resampling_loss(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), torch.zeros(1, 2, 2),
                              torch.zeros(1, 2, 2), "drop_everything", 0.1)  # fmt: skip
    with pytest.raises(ValueError, match="caption_noise.*allowed"):
        world.assign_captions(world.make_world(mmnb.resolve_profile("book", world.PROFILES)),
                              torch.zeros(3, dtype=torch.long), 2, 1.5,
                              torch.Generator())  # fmt: skip
    with pytest.raises(ValueError, match="cross"):
        world.block_joint(cross=-0.1)
    with pytest.raises(ValueError, match="scale"):
        world.augmentation_joint(torch.zeros(3, 2), 0.0)
    with pytest.raises(ValueError, match="profile.*book"):
        mmnb.resolve_profile("huge", world.PROFILES)
    with pytest.raises(ValueError, match="k="):
        world.svd_optimum(_joint(), 9)
