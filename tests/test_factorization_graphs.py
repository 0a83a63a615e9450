"""Chapter 02: induced graphs, consistency, diversity, the bound, the caption world and the
neural encoders trained on it."""

import dataclasses
import math

import pytest
import torch

import mmnb.protocol
from mmnb.losses import spectral_contrastive_loss
from mmnb.worlds import factorization
from mmnb.worlds.factorization import CaptionWorld, FactorizationConfig
from mmnb.worlds.factorization.measures import inverse_mass


def _joint(seed=0, n_v=7, n_l=5):
    joint = torch.rand(n_v, n_l, generator=torch.Generator().manual_seed(seed)).double()
    return joint / joint.sum()


def test_induced_graph_has_row_sums_p_v_and_normalized_form_p_tilde_squared():
    joint = _joint(4)
    graph = factorization.induced_graph(joint)
    p_v = joint.sum(1)
    torch.testing.assert_close(graph.sum(1), p_v)
    torch.testing.assert_close(graph, graph.T)
    p_tilde = factorization.normalized_cooccurrence(joint)
    torch.testing.assert_close(graph / (p_v[:, None] * p_v[None, :]).sqrt(), p_tilde @ p_tilde.T)


def test_a_column_or_row_of_zero_mass_gives_zeros_not_infinities():
    joint = _joint(5)
    joint[:, 2], joint[3] = 0.0, 0.0
    mass = joint.sum(0)
    inv = inverse_mass(mass)
    assert inv[2] == 0 and torch.equal(inverse_mass(mass, root=True)[2], inv[2])
    torch.testing.assert_close(inv[mass > 0], 1 / mass[mass > 0], rtol=0, atol=0)
    p_tilde = factorization.normalized_cooccurrence(joint)
    graph = factorization.induced_graph(joint)
    assert torch.isfinite(p_tilde).all() and torch.isfinite(graph).all()
    assert (p_tilde[3] == 0).all() and (p_tilde[:, 2] == 0).all() and (graph[3] == 0).all()


def test_consistency_disagreement_and_the_bound_on_a_two_block_world():
    # two images per class, one caption per class; a fraction e of the mass crosses classes
    e = 0.1
    joint = torch.tensor([[1 - e, e], [1 - e, e], [e, 1 - e], [e, 1 - e]], dtype=torch.float64) / 4
    labels, caption_labels = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1])
    assert factorization.consistency(joint, labels, caption_labels) == pytest.approx(e)
    # images x, x' share a caption: P[differ] = 2e(1 − e) by hand
    phi = factorization.disagreement(factorization.induced_graph(joint), labels)
    assert phi == pytest.approx(2 * e * (1 - e))
    s = torch.linalg.svdvals(factorization.normalized_cooccurrence(joint))
    assert factorization.spectral_gap(joint, 1) == pytest.approx(1 - s[1].item() ** 2)
    assert factorization.spectral_gap(joint, 2) == 1.0  # only two singular values
    assert factorization.projection_head_error(joint, labels, 2) == 0.0
    # with k = 1 the head sees only the constant direction: it errs on one class (mass ½)
    assert factorization.projection_head_error(joint, labels, 1) == pytest.approx(0.5)
    assert 0.5 <= factorization.generalization_bound(phi, factorization.spectral_gap(joint, 1))
    assert factorization.generalization_bound(0.1, 0.0) == math.inf


def test_disconnected_graph_has_no_gap_and_tied_features_are_drawn_in_the_tied_space():
    joint = torch.eye(4, dtype=torch.float64) / 4  # every image its own caption
    assert factorization.spectral_gap(joint, 2) == 0.0
    u, s = factorization.top_subspace(joint, 2, torch.Generator().manual_seed(0))
    torch.testing.assert_close(u.T @ u, torch.eye(2, dtype=torch.float64))
    assert not torch.allclose(u.abs(), torch.eye(4, 2, dtype=torch.float64))


def test_graph_report_of_clean_captions_is_consistent_and_accurate():
    cfg = FactorizationConfig()
    world = CaptionWorld(cfg, seed=0)
    x, y = world.sample(200, "data/pool", 0)
    clean = factorization.caption_joint(world.assign_captions(y, 3, 0.0, 0), 80)
    rep = factorization.graph_report(clean, y, world.caption_labels, 8, seed=0, draw=0)
    assert rep.alpha == 0.0 and rep.phi == 0.0 and rep.head_error == 0.0
    assert rep.probe_acc > 0.9
    noisy = factorization.caption_joint(world.assign_captions(y, 3, 0.5, 0), 80)
    rep_noisy = factorization.graph_report(noisy, y, world.caption_labels, 8, seed=0, draw=0)
    assert 0.35 < rep_noisy.alpha < 0.65 and rep_noisy.phi > 0.3


def test_caption_world_joint_and_caption_noise():
    cfg = FactorizationConfig()
    cw = CaptionWorld(cfg, seed=0)
    x, y = cw.sample(50, "data/test")
    assert x.shape == (50, cfg.signal_dims + cfg.nuisance_dims)
    dist = torch.cdist(cw.means, cw.means)
    off = ~torch.eye(cfg.n_classes, dtype=torch.bool)
    torch.testing.assert_close(dist[off], torch.full_like(dist[off], cfg.class_sep))
    clean = cw.assign_captions(y, 3, 0.0)
    assert (cw.caption_labels[clean] == y[:, None]).all()
    wrong = cw.assign_captions(y, 3, 1.0)
    assert (cw.caption_labels[wrong] != y[:, None]).all()
    joint = factorization.caption_joint(clean, cw.n_captions)
    assert joint.sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(joint.sum(1), torch.full((50,), 1 / 50, dtype=torch.float64))
    assert factorization.consistency(joint, y, cw.caption_labels) == 0.0


def test_captions_are_coupled_across_m_and_eta():
    cw = CaptionWorld(FactorizationConfig(), seed=0)
    _, y = cw.sample(300, "data/pool", 1)
    five = cw.assign_captions(y, 5, 0.2, 1)
    assert torch.equal(cw.assign_captions(y, 2, 0.2, 1), five[:, :2])
    wrong_lo = cw.caption_labels[five] != y[:, None]
    wrong_hi = cw.caption_labels[cw.assign_captions(y, 5, 0.4, 1)] != y[:, None]
    assert (wrong_hi | ~wrong_lo).all() and wrong_hi.sum() > wrong_lo.sum()
    assert not torch.equal(five, cw.assign_captions(y, 5, 0.2, 2))  # other draw


def test_caption_world_follows_the_protocol_and_draws_from_named_streams_per_replica():
    cfg = FactorizationConfig()
    cw = factorization.World(cfg, seed=5, device="cpu")
    assert isinstance(cw, mmnb.protocol.World) and factorization.CONFIGS[0] is FactorizationConfig
    assert (cw.cfg, cw.seed, cw.device) == (cfg, 5, torch.device("cpu"))
    for purpose in CaptionWorld.PURPOSES:
        assert cw.sample(4, purpose).x.shape == (4, 24)
    group = cw.sample(20, "data/student", replicas=3)
    alone = cw.sample(20, "data/student", replicas=[2])
    assert group.x.shape == (3, 20, 24) and torch.equal(group.x[2], alone.x[0])
    assert not torch.equal(group.x[0], group.x[1])
    other = cw.sample(20, "data/test", draw=2)
    assert not torch.equal(other.x, group.x[2])
    with pytest.raises(ValueError, match="purpose"):
        cw.sample(4, "data/train")


def test_augmentation_joint_rows_are_views_of_uniform_images():
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    joint = factorization.augmentation_joint(x, 0.7)
    torch.testing.assert_close(joint.sum(0), torch.full((6,), 1 / 6, dtype=torch.float64))
    kernel = torch.exp(-torch.cdist(x, x).double().square() / (2 * 0.7**2))
    torch.testing.assert_close(joint[:, 2], kernel[2] / kernel[2].sum() / 6)
    signal_only = factorization.augmentation_joint(x, 0.7, coords=slice(0, 1))
    kernel = torch.exp(-torch.cdist(x[:, :1], x[:, :1]).double().square() / (2 * 0.7**2))
    torch.testing.assert_close(signal_only[:, 2], kernel[2] / kernel[2].sum() / 6)
    with pytest.raises(ValueError, match="scale"):
        factorization.augmentation_joint(torch.zeros(3, 2), 0.0)


def test_augmentations_gaussian_and_nuisance():
    x, noise = torch.ones(4, 5), torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    Augmentation = factorization.Augmentation
    torch.testing.assert_close(Augmentation("gaussian", 0.5)(x, noise), x + 0.5 * noise)
    view = Augmentation("nuisance", 0.0, signal_dims=2, nuisance_scale=3.0)(x, noise)
    torch.testing.assert_close(view[:, :2], x[:, :2])
    torch.testing.assert_close(view[:, 2:], 3.0 * noise[:, 2:])
    with pytest.raises(ValueError, match="augmentation.*gaussian"):
        Augmentation("crop", 1.0)


def test_neural_encoders_replica_alone_equals_replica_in_group():
    cfg = FactorizationConfig(hidden=8, neural_steps=6, neural_batch=8, neural_lr=1e-2)
    cw = CaptionWorld(cfg, seed=0)
    x, y = cw.sample(40, "data/pool", 0)
    caps = cw.assign_captions(y, 2, 0.1, 0)
    group = factorization.fit_caption_encoder(cfg, x, caps, replicas=2, seed=1)
    alone = factorization.fit_caption_encoder(cfg, x, caps, replicas=1, seed=1)
    torch.testing.assert_close(group.caption_table[0], alone.caption_table[0])
    assert group.caption_table.shape == (2, cw.n_captions, cfg.n_classes)
    assert not torch.allclose(group.caption_table[0], group.caption_table[1])
    assert group.history["loss"].shape == (6, 2)
    aug = factorization.Augmentation("gaussian", 0.5)
    group = factorization.fit_augmentation_encoder(cfg, x, aug, replicas=2, seed=1)
    alone = factorization.fit_augmentation_encoder(cfg, x, aug, replicas=1, seed=1)
    with torch.no_grad():
        torch.testing.assert_close(group.encoder(x)[0], alone.encoder(x)[0])
    with pytest.raises(ValueError, match="batch_size"):
        dataclasses.replace(factorization.EncoderTraining.neural(cfg, 2, 0), batch_size=0)


def test_caption_encoder_loss_is_the_spectral_loss_of_its_pairs():
    cfg = FactorizationConfig()
    cw = CaptionWorld(cfg, seed=0)
    x, y = cw.sample(30, "data/pool", 0)
    caps = cw.assign_captions(y, 3, 0.1, 0)
    model = factorization.caption_encoder(cfg, x, caps, replicas=2, seed=0)
    assert model.n_pairs == 90 and len(model.parameters()) == 2
    batch = torch.tensor([[0, 4, 89], [5, 7, 30]])  # flat (image, caption) indices
    image, caption = batch // 3, caps[batch // 3, batch % 3]
    rows = torch.arange(2)[:, None]
    with torch.no_grad():
        want = spectral_contrastive_loss(
            model.image_encoder(x[image]), model.caption_table[rows, caption]
        )
        torch.testing.assert_close(model.loss(batch), want)
