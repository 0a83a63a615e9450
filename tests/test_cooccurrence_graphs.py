"""Chapter 02: induced graphs, consistency, diversity, the bound and the caption world."""

import dataclasses
import math

import pytest
import torch

from mmnb.worlds import captions, factorization, graphs
from mmnb.worlds.cooccurrence import CooccurrenceConfig


def _joint(seed=0, n_v=7, n_l=5):
    joint = torch.rand(n_v, n_l, generator=torch.Generator().manual_seed(seed)).double()
    return joint / joint.sum()


def test_induced_graph_has_row_sums_p_v_and_normalized_form_p_tilde_squared():
    joint = _joint(4)
    graph = graphs.induced_graph(joint)
    p_v = joint.sum(1)
    torch.testing.assert_close(graph.sum(1), p_v)
    torch.testing.assert_close(graph, graph.T)
    p_tilde = factorization.normalized_cooccurrence(joint)
    torch.testing.assert_close(graph / (p_v[:, None] * p_v[None, :]).sqrt(), p_tilde @ p_tilde.T)


def test_consistency_disagreement_and_the_bound_on_a_two_block_world():
    # two images per class, one caption per class; a fraction e of the mass crosses classes
    e = 0.1
    joint = torch.tensor([[1 - e, e], [1 - e, e], [e, 1 - e], [e, 1 - e]], dtype=torch.float64) / 4
    labels, caption_labels = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1])
    assert graphs.consistency(joint, labels, caption_labels) == pytest.approx(e)
    # images x, x' share a caption: P[differ] = 2e(1 − e) by hand
    phi = graphs.disagreement(graphs.induced_graph(joint), labels)
    assert phi == pytest.approx(2 * e * (1 - e))
    s = torch.linalg.svdvals(factorization.normalized_cooccurrence(joint))
    assert graphs.spectral_gap(joint, 1) == pytest.approx(1 - s[1].item() ** 2)
    assert graphs.spectral_gap(joint, 2) == 1.0  # only two singular values
    assert graphs.projection_head_error(joint, labels, 2) == 0.0
    # with k = 1 the head sees only the constant direction: it errs on one class (mass ½)
    assert graphs.projection_head_error(joint, labels, 1) == pytest.approx(0.5)
    assert 0.5 <= graphs.generalization_bound(phi, graphs.spectral_gap(joint, 1))
    assert graphs.generalization_bound(0.1, 0.0) == math.inf


def test_disconnected_graph_has_no_gap_and_tied_features_are_drawn_in_the_tied_space():
    joint = torch.eye(4, dtype=torch.float64) / 4  # every image its own caption
    assert graphs.spectral_gap(joint, 2) == 0.0
    u, s = graphs.top_subspace(joint, 2, torch.Generator().manual_seed(0))
    torch.testing.assert_close(u.T @ u, torch.eye(2, dtype=torch.float64))
    assert not torch.allclose(u.abs(), torch.eye(4, 2, dtype=torch.float64))


def test_graph_report_of_clean_captions_is_consistent_and_accurate():
    cfg = CooccurrenceConfig()
    world = captions.make_world(cfg, seed=0)
    x, y = captions.sample_images(world, 200, 0, "data/pool", 0)
    clean = captions.caption_joint(captions.assign_captions(world, y, 3, 0.0, 0, 0), 80)
    rep = graphs.graph_report(clean, y, world.caption_labels, 8, seed=0, draw=0)
    assert rep.alpha == 0.0 and rep.phi == 0.0 and rep.head_error == 0.0
    assert rep.probe_acc > 0.9
    noisy = captions.caption_joint(captions.assign_captions(world, y, 3, 0.5, 0, 0), 80)
    rep_noisy = graphs.graph_report(noisy, y, world.caption_labels, 8, seed=0, draw=0)
    assert 0.35 < rep_noisy.alpha < 0.65 and rep_noisy.phi > 0.3


def test_caption_world_joint_and_caption_noise():
    cfg = CooccurrenceConfig()
    cw = captions.make_world(cfg, seed=0)
    x, y = captions.sample_images(cw, 50, 0, "data/test")
    assert x.shape == (50, cfg.signal_dims + cfg.nuisance_dims)
    dist = torch.cdist(cw.means, cw.means)
    off = ~torch.eye(cfg.n_classes, dtype=torch.bool)
    torch.testing.assert_close(dist[off], torch.full_like(dist[off], cfg.class_sep))
    clean = captions.assign_captions(cw, y, 3, 0.0, 0)
    assert (cw.caption_labels[clean] == y[:, None]).all()
    wrong = captions.assign_captions(cw, y, 3, 1.0, 0)
    assert (cw.caption_labels[wrong] != y[:, None]).all()
    joint = captions.caption_joint(clean, cw.n_captions)
    assert joint.sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(joint.sum(1), torch.full((50,), 1 / 50, dtype=torch.float64))
    assert graphs.consistency(joint, y, cw.caption_labels) == 0.0


def test_captions_are_coupled_across_m_and_eta():
    cw = captions.make_world(CooccurrenceConfig(), seed=0)
    _, y = captions.sample_images(cw, 300, 0, "data/pool", 1)
    five = captions.assign_captions(cw, y, 5, 0.2, 0, 1)
    assert torch.equal(captions.assign_captions(cw, y, 2, 0.2, 0, 1), five[:, :2])
    wrong_lo = cw.caption_labels[five] != y[:, None]
    wrong_hi = cw.caption_labels[captions.assign_captions(cw, y, 5, 0.4, 0, 1)] != y[:, None]
    assert (wrong_hi | ~wrong_lo).all() and wrong_hi.sum() > wrong_lo.sum()
    assert not torch.equal(five, captions.assign_captions(cw, y, 5, 0.2, 0, 2))  # other draw


def test_images_come_from_named_streams_per_replica():
    cw = captions.make_world(CooccurrenceConfig(), seed=0)
    group = captions.sample_images(cw, 20, 5, "data/student", replicas=3)
    alone = captions.sample_images(cw, 20, 5, "data/student", replicas=[2])
    assert group.x.shape == (3, 20, 24) and torch.equal(group.x[2], alone.x[0])
    assert not torch.equal(group.x[0], group.x[1])
    other = captions.sample_images(cw, 20, 5, "data/test", draw=2)
    assert not torch.equal(other.x, group.x[2])


def test_augmentation_joint_rows_are_views_of_uniform_images():
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    joint = graphs.augmentation_joint(x, 0.7)
    torch.testing.assert_close(joint.sum(0), torch.full((6,), 1 / 6, dtype=torch.float64))
    kernel = torch.exp(-torch.cdist(x, x).double().square() / (2 * 0.7**2))
    torch.testing.assert_close(joint[:, 2], kernel[2] / kernel[2].sum() / 6)
    signal_only = graphs.augmentation_joint(x, 0.7, coords=slice(0, 1))
    kernel = torch.exp(-torch.cdist(x[:, :1], x[:, :1]).double().square() / (2 * 0.7**2))
    torch.testing.assert_close(signal_only[:, 2], kernel[2] / kernel[2].sum() / 6)
    with pytest.raises(ValueError, match="scale"):
        graphs.augmentation_joint(torch.zeros(3, 2), 0.0)


def test_augmentations_gaussian_and_nuisance():
    x, noise = torch.ones(4, 5), torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(captions.Augmentation("gaussian", 0.5)(x, noise), x + 0.5 * noise)
    view = captions.Augmentation("nuisance", 0.0, signal_dims=2, nuisance_scale=3.0)(x, noise)
    torch.testing.assert_close(view[:, :2], x[:, :2])
    torch.testing.assert_close(view[:, 2:], 3.0 * noise[:, 2:])
    with pytest.raises(ValueError, match="augmentation.*gaussian"):
        captions.Augmentation("crop", 1.0)


def test_neural_encoders_replica_alone_equals_replica_in_group():
    cw = captions.make_world(CooccurrenceConfig(), seed=0)
    x, y = captions.sample_images(cw, 40, 0, "data/pool", 0)
    caps = captions.assign_captions(cw, y, 2, 0.1, 0, 0)
    two = captions.EncoderTraining(4, 8, steps=6, batch_size=8, lr=1e-2, n_replicas=2, seed=1)
    one = dataclasses.replace(two, n_replicas=1)
    group = captions.fit_caption_encoder(x, caps, cw.n_captions, two)
    alone = captions.fit_caption_encoder(x, caps, cw.n_captions, one)
    torch.testing.assert_close(group.caption_table[0], alone.caption_table[0])
    assert not torch.allclose(group.caption_table[0], group.caption_table[1])
    aug = captions.Augmentation("gaussian", 0.5)
    group = captions.fit_augmentation_encoder(x, aug, two)
    alone = captions.fit_augmentation_encoder(x, aug, one)
    with torch.no_grad():
        torch.testing.assert_close(group.encoder(x)[0], alone.encoder(x)[0])
    with pytest.raises(ValueError, match="batch_size"):
        dataclasses.replace(two, batch_size=0)
