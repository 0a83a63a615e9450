"""Chapter 05's shared-latent worlds, config, encoders, training and read-outs."""

import dataclasses

import numpy as np
import pytest
import torch

import mmnb
from mmnb.protocol import World as WorldProtocol
from mmnb.worlds import intrinsic_dim


@pytest.mark.parametrize("link", intrinsic_dim.LINKS)
def test_shapes_and_reproducibility(link):
    w = intrinsic_dim.SharedLatentWorld(k=3, link=link, dim=8, seed=1)
    a, b = (
        w.sample(40, "train"),
        intrinsic_dim.SharedLatentWorld(k=3, link=link, dim=8, seed=1).sample(40, "train"),
    )
    assert a.x.shape == a.y.shape == (40, 8) and a.z.shape == (40, 3)
    assert a.private_x.shape == a.private_y.shape == (40, 5)
    assert len(a) == 40
    torch.testing.assert_close(a.x, b.x)
    assert not torch.equal(w.sample(40, "test").x, a.x)  # splits come from their own streams
    other_seed = intrinsic_dim.SharedLatentWorld(k=3, link=link, dim=8, seed=2).sample(40, "train")
    assert not torch.equal(other_seed.z, a.z)


def test_data_come_from_the_named_stream():
    s = intrinsic_dim.SharedLatentWorld(k=2, link="linear", dim=4, seed=3).sample(10, "reference")
    rng = mmnb.stream(3, "data/linear-k2/reference")
    y = rng.randn(10, 4)
    torch.testing.assert_close(s.y, y)
    torch.testing.assert_close(s.private_x, rng.randn(10, 2))


def test_linear_link_shares_z_and_nothing_else():
    s = intrinsic_dim.SharedLatentWorld(k=5, link="linear", dim=20).sample(20_000)
    torch.testing.assert_close(s.x[:, :5], s.z)  # x = (z, ξ)
    torch.testing.assert_close(s.y[:, :5], s.z)  # z = y[:k]
    torch.testing.assert_close(s.x[:, 5:], s.private_x)
    torch.testing.assert_close(s.y[:, 5:], s.private_y)
    cross = torch.cat([s.z, s.private_x], 1).T @ s.private_y / len(s)  # independent parts
    assert cross.abs().max() < 0.05  # 4.5 standard errors at n = 20000


def test_truncation_link_is_the_authors():
    z = torch.tensor([[-1.0, 2.0, 3.0], [0.4, 0.2, -1.0], [0.1, 0.3, 1.0], [-0.5, 0.9, -2.0]])
    expected = torch.tensor(
        [[-1.0, 2.0, 3.0], [0.0, 0.2, 0.0], [0.0, 0.0, 1.0], [-0.5, 0.0, 0.0]]
    )  # x0 = z0 1{z0<0}, x1 = z1 1{z0+z1>0.5}, x_i = z_i 1{z_i>0}
    torch.testing.assert_close(intrinsic_dim.truncation_link(z), expected)
    s = intrinsic_dim.SharedLatentWorld(k=5, link="truncation", dim=10).sample(20_000)
    torch.testing.assert_close(s.x[:, :5], intrinsic_dim.truncation_link(s.z))
    torch.testing.assert_close(s.y[:, :5], s.z)
    nonzero = (s.x[:, :5] != 0).float().mean(0)  # 0.5, P(z0 + z1 > 0.5) = 0.362, 0.5, ...
    torch.testing.assert_close(
        nonzero, torch.tensor([0.5, 0.362, 0.5, 0.5, 0.5]), atol=0.015, rtol=0
    )
    with pytest.raises(ValueError, match="k"):
        intrinsic_dim.SharedLatentWorld(k=1, link="truncation", dim=4)


def test_smooth_link_is_a_rotated_injective_map():
    w = intrinsic_dim.SharedLatentWorld(k=3, link="smooth", dim=6, seed=4)
    s = w.sample(500)
    for m, obs, private in ((0, s.x, s.private_x), (1, s.y, s.private_y)):
        rotation = w.maps[m][1]
        torch.testing.assert_close(rotation @ rotation.T, torch.eye(6), atol=1e-5, rtol=0)
        unrotated = obs @ rotation.T
        torch.testing.assert_close(unrotated[:, 3:], private, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(unrotated[:, :3], w.smooth_map(s.z, m), atol=1e-5, rtol=1e-5)
    # injective: φ(a) − φ(b) is at least (1 − contraction)·|a − b|
    a, b = s.z[:250], s.z[250:]
    gap = (w.smooth_map(a, 0) - w.smooth_map(b, 0)).norm(dim=1)
    assert (gap >= (1 - 0.9) * (a - b).norm(dim=1) - 1e-5).all()


def test_stack_samples_pads_latents_of_different_width():
    a = intrinsic_dim.SharedLatentWorld(k=2, dim=6).sample(10)
    b = intrinsic_dim.SharedLatentWorld(k=4, dim=6).sample(10)
    s = intrinsic_dim.stack_samples([a, b])
    assert s.x.shape == (2, 10, 6) and s.z.shape == (2, 10, 4) and len(s) == 10
    assert (s.z[0, :, 2:] == 0).all()
    torch.testing.assert_close(s.z[1], b.z)


def small_config(**changes):
    knobs = dict(
        epochs=1,
        n_train=64,
        n_test=40,
        n_reference=32,
        batch_size=32,
        hidden=[8],
        dim=6,
        k=2,
        other_ks=[],
        out_dims=[2, 5],
        d_main=5,
        n_divisors=[2],
        id_neighbors=5,
        probe_neighbors=3,
    )
    return intrinsic_dim.IntrinsicDimConfig.from_profile("book", **{**knobs, **changes})


def test_encoders_mask_their_output_dimension_and_fix_or_learn_tau():
    cfg = small_config()
    d = intrinsic_dim.World(cfg, 0).splits()
    fit = intrinsic_dim.fit_encoders(cfg, d.train, d.reference, [2, 5], [None, 0.5], [0, 1], seed=0)
    assert fit.out_widths == [2, 5]
    u = fit.embed_x(d.train.x).detach()
    assert u.shape == (2, 64, 5) and (u[0, :, 2:] == 0).all()
    torch.testing.assert_close(u.norm(dim=-1), torch.ones(2, 64))
    tau = fit.history["tau"]
    assert tau.shape[1] == 2 and (tau[:, 1] == 0.5).all() and tau[-1, 0] != tau[0, 0]
    cfg = cfg.replace(normalization="mean_norm")
    fit = intrinsic_dim.fit_encoders(cfg, d.train, d.reference, [3], [None], [0])
    u = fit.embed_x(d.reference.x).detach()
    assert u.norm(dim=-1).mean().item() == pytest.approx(1.0, rel=1e-4)  # mean norm 1 on ref


def test_a_replica_trains_the_same_alone_or_in_a_group():
    cfg = small_config(epochs=2)
    d = intrinsic_dim.World(cfg, 0).splits()
    group = intrinsic_dim.fit_encoders(
        cfg,
        d.train,
        d.reference,
        [5, 5, 2],
        [None, 0.3, None],
        [0, 1, 2],
        seed=5,
        sub_batches=[1, 4, 1],
    )
    alone = intrinsic_dim.fit_encoders(
        cfg, d.train, d.reference, [5], [0.3], [1], seed=5, sub_batches=[4]
    )
    torch.testing.assert_close(
        group.embed_x(d.test.x)[1], alone.embed_x(d.test.x)[0], atol=1e-5, rtol=1e-4
    )
    torch.testing.assert_close(
        group.history["loss"][:, 1], alone.history["loss"][:, 0], atol=1e-5, rtol=1e-4
    )


def test_sub_batches_only_count_negatives_within_their_block():
    mask = intrinsic_dim.sub_batch_mask([1, 2], 4, torch.device("cpu"))
    assert mask[0].all()
    expected = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]).bool()
    assert torch.equal(mask[1], expected)
    # the masked loss of one batch split in 2 is the mean of the two half-batch losses
    u, v = torch.randn(1, 4, 3), torch.randn(1, 4, 3)
    split = mmnb.symmetric_info_nce(u, v, 0.5, kind="dot", negatives=mask[1:])
    halves = [
        mmnb.symmetric_info_nce(u[:, i : i + 2], v[:, i : i + 2], 0.5, kind="dot") for i in (0, 2)
    ]
    torch.testing.assert_close(split, (halves[0] + halves[1]) / 2)
    # the blockwise loss of the training loop equals the masked one, replica by replica
    u, v = torch.randn(3, 8, 3), torch.randn(3, 8, 3)
    tau = torch.tensor([0.5, 0.2, 1.0])
    sub = [1, 4, 2]
    masked = mmnb.symmetric_info_nce(
        u, v, tau, kind="dot", negatives=intrinsic_dim.sub_batch_mask(sub, 8, torch.device("cpu"))
    )
    torch.testing.assert_close(intrinsic_dim.sub_batch_info_nce(u, v, tau, sub), masked)


def test_monitor_records_dimension_and_alignment():
    cfg = small_config(epochs=2, monitor_every=1)
    d = intrinsic_dim.World(cfg, 0).splits()
    fit = intrinsic_dim.fit_encoders(
        cfg, d.train, d.reference, [5, 2], [None, None], [0, 1], monitor=d.test, monitor_rows=[0]
    )
    assert fit.history["id"].shape == (3, 1)  # before training, after epoch 1, at the end
    assert fit.history["alignment_ratio"].shape == (3, 2)


def test_alignment_ratio_is_zero_for_partners_and_about_one_for_strangers():
    u = torch.nn.functional.normalize(torch.randn(1, 500, 4), dim=-1)
    assert intrinsic_dim.alignment_ratio(u, u).item() == pytest.approx(0.0, abs=1e-6)
    v = torch.nn.functional.normalize(torch.randn(1, 500, 4), dim=-1)
    assert intrinsic_dim.alignment_ratio(u, v).item() == pytest.approx(1.0, abs=0.1)
    # against the definition, pairs by pairs
    d2 = torch.cdist(u[0], v[0]).square()
    off = d2[~torch.eye(500, dtype=torch.bool)].mean()
    assert intrinsic_dim.alignment_ratio(u, v).item() == pytest.approx(
        (d2.diag().mean() / off).item(), rel=1e-5
    )


def test_nn_spacing_is_the_squared_distance_to_the_nearest_negative():
    u = torch.tensor([[[0.0], [1.0], [3.0], [7.0]]])
    v = u.clone()
    # one batch of 4: nearest negatives at 1, 1, 2, 4 → squared 1, 1, 4, 16
    assert intrinsic_dim.nn_spacing(u, v, [4])[0] == pytest.approx((1 + 1 + 4 + 16) / 4)
    far = intrinsic_dim.nn_spacing(u, v, [2])[0]  # batches of 2: only one negative each
    assert far >= intrinsic_dim.nn_spacing(u, v, [4])[0]


def test_id_estimates_match_the_paper_call_and_fit():
    from skdim.id import MLE

    x = mmnb.stream(0, "test/mle").numpy.normal(size=(800, 3)) @ np.ones((3, 6))
    x += mmnb.stream(0, "test/mle2").numpy.normal(size=(800, 6))
    est = intrinsic_dim.id_estimates(torch.tensor(x[None]), [6], n_neighbors=20)
    assert est["mean"][0] == pytest.approx(MLE().fit_transform(x))
    assert est["harmonic"][0] == pytest.approx(MLE().fit(x).dimension_)
    assert est["mean"][0] > est["harmonic"][0]  # arithmetic ≥ harmonic mean


def test_bad_parameters_name_themselves():
    with pytest.raises(ValueError, match=r"link='curved' is not allowed.*linear"):
        intrinsic_dim.SharedLatentWorld(link="curved")
    with pytest.raises(ValueError, match=r"k=20 is out of range.*\[1, 19\]"):
        intrinsic_dim.SharedLatentWorld(k=20, dim=20)
    with pytest.raises(ValueError, match="dim"):
        intrinsic_dim.SharedLatentWorld(dim=1)
    with pytest.raises(ValueError, match="profile"):
        intrinsic_dim.IntrinsicDimConfig.from_profile("huge")
    with pytest.raises(ValueError, match=r"normalization='batch'.*'l2', 'mean_norm'"):
        intrinsic_dim.IntrinsicDimConfig.from_profile("book", normalization="batch")
    with pytest.raises(ValueError, match="d_main"):
        intrinsic_dim.IntrinsicDimConfig.from_profile("book", d_main=7)
    with pytest.raises(ValueError, match="sub_batches"):
        intrinsic_dim.IntrinsicDimConfig.from_profile("book", sub_batches=[3])
    with pytest.raises(ValueError, match=r"other_ks=25 is out of range"):
        intrinsic_dim.IntrinsicDimConfig.from_profile("book", other_ks=[25])
    with pytest.raises(ValueError, match="epochs"):
        intrinsic_dim.IntrinsicDimConfig.from_profile("book", epochs=10**9)
    with pytest.raises(ValueError, match="unknown"):
        intrinsic_dim.IntrinsicDimConfig.from_profile("book", temperature=1.0)


def test_paper_profile_only_overrides_what_it_changes():
    book, paper = (intrinsic_dim.IntrinsicDimConfig.from_profile(p) for p in ("book", "paper"))
    changed = {
        k for k in intrinsic_dim.IntrinsicDimConfig.knobs() if getattr(book, k) != getattr(paper, k)
    }
    assert changed == set(intrinsic_dim.IntrinsicDimConfig.PAPER)
    assert paper.steps == 800 * (10_000 // 256)


def test_tau_slope_reads_the_population_prediction_and_is_the_loss():
    from mmnb.losses import symmetric_info_nce

    rng = mmnb.stream(0, "test/tau-slope").numpy
    readings = {}
    for m in (2, 4):
        s = rng.normal(size=(1000, m + 1))
        sphere = torch.tensor(s / np.linalg.norm(s, axis=1, keepdims=True))
        got = intrinsic_dim.tau_slope_dimension(sphere, n_anchors=None)
        readings[m] = got.dimension[0]
        expected = intrinsic_dim.tau_slope_population(m, 1000, shape="sphere")
        assert readings[m] == pytest.approx(expected, abs=0.1)
        # the window's ends are where the book's dot-product loss equals log 11, log 101
        for tau, level in ((got.tau_low[0], 11), (got.tau_high[0], 101)):
            loss = symmetric_info_nce(sphere.float(), sphere.float(), float(tau), kind="dot")
            assert loss.item() == pytest.approx(np.log(level), abs=1e-3)
    assert readings[4] > readings[2] + 1.5
    gauss = torch.tensor(rng.normal(size=(1000, 3)))
    got = intrinsic_dim.tau_slope_dimension(gauss, n_anchors=300).dimension[0]
    assert got == pytest.approx(intrinsic_dim.tau_slope_population(3, 1000), abs=0.15)
    assert intrinsic_dim.tau_slope_population(3, 1000) < 3 - 0.2  # biased low: the data scale


def test_tau_slope_per_replica_widths_and_no_window_when_misaligned():
    rng = mmnb.stream(0, "test/tau-slope-replicas")
    u = torch.nn.functional.normalize(rng.randn(2, 600, 6), dim=-1)
    u[0, :, 3:] = 0  # replica 0 uses its first 3 coordinates only
    u[0] = torch.nn.functional.normalize(u[0], dim=-1)
    both = intrinsic_dim.tau_slope_dimension(u, u, widths=[3, 6], n_anchors=None)
    alone = intrinsic_dim.tau_slope_dimension(u[0, :, :3], n_anchors=None)
    assert both.dimension[0] == pytest.approx(alone.dimension[0])
    assert both.dimension[1] > both.dimension[0] + 1.5  # S^5 against S^2
    stranger = torch.nn.functional.normalize(rng.randn(600, 3), dim=-1)
    assert np.isnan(intrinsic_dim.tau_slope_dimension(u[0, :, :3], stranger).dimension[0])
    with pytest.raises(ValueError, match="levels"):
        intrinsic_dim.tau_slope_dimension(u[0], levels=(10, 1000))
    with pytest.raises(ValueError, match="shape"):
        intrinsic_dim.tau_slope_population(3, 100, shape="cube")


def test_a_replica_restricted_to_its_first_pairs_never_reads_the_others():
    cfg = small_config(epochs=2)
    d = intrinsic_dim.World(cfg, 0).splits()
    n_r = len(d.train) // 2
    other = intrinsic_dim.World(cfg, 1).splits().train
    mixed = intrinsic_dim.SharedLatentSample(  # the second half of every field from another draw
        **{
            f.name: torch.cat([getattr(d.train, f.name)[:n_r], getattr(other, f.name)[n_r:]])
            for f in dataclasses.fields(d.train)
        }
    )
    runs = {}
    for name, pairs in (("own", d.train), ("mixed", mixed)):
        runs[name] = intrinsic_dim.fit_encoders(
            cfg, pairs, d.reference, [5, 5], [None, None], [0, 1], seed=3, n_samples=[n_r, 64]
        )
    a, b = (runs[name].embed_x(d.test.x).detach() for name in ("own", "mixed"))
    torch.testing.assert_close(a[0], b[0])  # the restricted replica saw only the first n_r
    assert not torch.allclose(a[1], b[1])  # the full replica saw the swapped pairs
    with pytest.raises(ValueError, match="n_samples"):
        intrinsic_dim.fit_encoders(cfg, d.train, d.reference, [5], [None], [0], n_samples=[8])


def test_the_world_is_built_from_the_config_and_samples_by_purpose():
    cfg = small_config()
    w = intrinsic_dim.World(cfg, 3)
    assert isinstance(w, WorldProtocol) and w.cfg is cfg and w.seed == 3
    assert w.device == torch.device("cpu") and w.PURPOSES == ("train", "test", "reference")
    plain = intrinsic_dim.SharedLatentWorld(cfg.k, cfg.link, cfg.dim, cfg.contraction, seed=3)
    splits = w.splits()
    for purpose, n in zip(w.PURPOSES, (cfg.n_train, cfg.n_test, cfg.n_reference), strict=True):
        torch.testing.assert_close(getattr(splits, purpose).x, plain.sample(n, purpose).x)
    smooth = intrinsic_dim.World(cfg, 3, k=3, link="smooth")
    assert (smooth.k, smooth.link, smooth.name) == (3, "smooth", "smooth-k3")


def test_the_training_objective_is_the_first_step_of_fit_encoders():
    cfg = small_config()
    d = intrinsic_dim.World(cfg, 0).splits()
    args = (cfg, d.train, d.reference, [2, 5], [None, 0.5], [0, 1], 4)
    run = intrinsic_dim.training_objective(*args)
    order = [mmnb.stream(4, "minibatch", r).randperm(len(d.train)) for r in (0, 1)]
    loss, extras = run.objective(torch.stack(order)[:, : cfg.batch_size])
    fit = intrinsic_dim.fit_encoders(*args)
    torch.testing.assert_close(loss.detach(), torch.as_tensor(fit.history["loss"][0]))
    torch.testing.assert_close(extras["tau"], torch.tensor([cfg.tau_init, 0.5]))
    # τ may fall to the floor: the inverse temperature is capped at 1 / tau_floor
    with torch.no_grad():
        run.fit.temperature.log_excess.fill_(np.log(1e-3))
    assert run.fit.tau()[0].item() == pytest.approx(1e-3 + cfg.tau_floor, rel=1e-5)
