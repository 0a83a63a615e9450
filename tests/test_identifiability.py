"""Chapter 04's world: config, latent law, style oracle, objectives, replicas, evaluation,
and the world protocol."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from mmnb.mixing import condition_threshold, unmix
from mmnb.protocol import Result, World
from mmnb.train import clip_grad_norm_per_replica_, make_optimizer
from mmnb.worlds import chapter_configs
from mmnb.worlds import identifiability as world
from mmnb.worlds.identifiability import ReplicaStreams, Setting

Config = world.IdentifiabilityConfig


@pytest.fixture(scope="module")
def cfg():
    return Config.from_profile("book", cond_draws=2000, steps=3, track_evals=0, n_val=200,
                               n_test=200, kernel_points=200)  # fmt: skip


@pytest.fixture(scope="module")
def table(cfg):
    return world.table(cfg.p_chg)


@pytest.fixture(scope="module")
def model(cfg, table):
    settings = [*table, replace(table[-1], multiview=True)]
    return world.World(cfg, 0, pairs=[(s, 3) for s in settings])


def test_mixing_is_invertible_and_content_is_shared(cfg, table, model):
    data = model.sample(500, "test")
    multi = slice(0, len(table))  # multi-modal replicas: every layer invertible
    z1 = unmix(data["x1"][multi].double(), model.f1[multi].double())
    z2 = unmix(data["x2"][multi].double(), model.f2[multi].double())
    n_c = cfg.n_c
    rest = torch.cat([data["s"], data["m1"]], -1)[multi].double()
    torch.testing.assert_close(z1[..., n_c:], rest, atol=1e-4, rtol=1e-4)
    # both modalities carry the same content, recovered from x1 and x2 separately
    torch.testing.assert_close(z1[..., :n_c], z2[..., :n_c], atol=1e-4, rtol=1e-4)
    assert (z1[..., n_c : n_c + cfg.n_s] - z2[..., n_c : n_c + cfg.n_s]).abs().max() > 0.1


def test_mixing_weights_have_unit_columns_and_bounded_condition(cfg, table, model):
    n = cfg.n_c + cfg.n_s + cfg.n_m
    multi = model.mixing_condition[: len(table)]
    assert multi.shape == (len(table), 2, cfg.mixing_layers)
    assert (multi <= condition_threshold(n, cfg.cond_draws, cfg.cond_ratio) + 1e-4).all()
    torch.testing.assert_close(model.f1.norm(dim=-2)[0], torch.ones(cfg.mixing_layers, n))
    assert not torch.equal(model.f1[0], model.f2[0])  # two different mechanisms
    assert torch.equal(model.f1[0], model.f1[1])  # same replica id: same world draws


def test_style_changes_with_probability_p_chg_and_fixed_coordinates_never(cfg):
    settings = [Setting(p) for p in (0.0, 0.3, 0.75, 1.0)] + [Setting(1.0, fixed_style=1)]
    m = world.World(cfg, 0, pairs=[(s, 0) for s in settings])
    data = m.sample(20_000, "test")
    changed = (data["s_tilde"] != data["s"]).double().mean(1)  # [R, n_s]
    n = 20_000 * cfg.n_s
    for p, rate in zip((0.0, 0.3, 0.75, 1.0), changed[:4].mean(1).tolist(), strict=True):
        assert abs(rate - p) <= 4 * math.sqrt(p * (1 - p) / n) + 1e-12, (p, rate)
    assert changed[4, :-1].min() == 1.0 and changed[4, -1] == 0.0
    assert torch.equal(world.World(cfg, 0, pairs=[(s, 0) for s in settings]).f1, m.f1)


def test_dependencies_and_blocks(cfg, table, model):
    data = model.sample(20_000, "test")
    names = [s.name for s in model.settings]
    indep, causal, stat = (names.index(n) for n in ("p1_indep", "p1_causal", "p1_stat"))
    emp = torch.cov(data["c"][stat].T.double())
    torch.testing.assert_close(emp, model.covariance["c"][stat], rtol=0.1, atol=0.1)
    torch.testing.assert_close(model.covariance["c"][indep], torch.eye(3, dtype=torch.float64))
    # without causal dependence style and content are uncorrelated; with it they are not
    cross = lambda r: (data["s"][r] - data["s"][r].mean(0)).T @ data["c"][r] / 20_000  # noqa: E731
    assert cross(indep).abs().max() < 0.05 and cross(causal).abs().max() > 0.2
    mv = len(table)
    assert torch.equal(model.f1[mv], model.f2[mv])
    assert data["m1"][mv].abs().max() == 0 and data["x1"][mv, :, 6:].abs().max() == 0
    # the s̃ covariance: Σ_s + E[b bᵀ] ∘ Σ_ε, checked on samples
    emp = torch.cov(data["s_tilde"][-2].T.double())
    torch.testing.assert_close(emp, model.covariance["s_tilde"][-2], rtol=0.1, atol=0.15)


def test_shared_covariance_is_one_matrix_for_every_block(cfg):
    shared = Setting(statistical=True)
    indep = Setting(statistical=True, covariance="independent")
    m = world.World(cfg, 0, pairs=[(shared, 0), (indep, 0)])
    cov = m.covariance
    for block in ("s", "m1", "m2", "eps"):
        torch.testing.assert_close(cov[block][0], cov["c"][0])
        assert not torch.allclose(cov[block][1], cov["c"][1])
    well = world.World(cfg, 0, pairs=[(replace(shared, wishart_factor=10), 0)])
    cond = lambda c: float(torch.linalg.cond(c[0]))  # noqa: E731
    assert cond(well.covariance["c"]) < cond(cov["c"])  # more df, better conditioned
    with pytest.raises(ValueError, match="wishart_factor"):
        replace(shared, wishart_factor=0)


def test_style_oracle_closed_form(cfg):
    # one content and one style coordinate, Σ = 1: R²(s | c) = B² / (B² + 1)
    small = cfg.replace(n_c=1, n_s=1, n_m=1, sweep_sizes=(1,))
    m = world.World(small, 0, pairs=[(Setting(0.5, causal=True), 7), (Setting(0.5), 7)])
    b = m.transform[0, 0, 1].double()  # s = u_s + B c + a, c = u_c
    expected = b**2 / (b**2 + 1)
    torch.testing.assert_close(m.style_oracle("s")[0, 0], expected)
    torch.testing.assert_close(m.style_oracle("s_tilde")[0, 0], b**2 / (b**2 + 1 + 0.5))
    assert m.style_oracle("s")[1].item() == 0.0
    # the oracle is what the best (linear) predictor of s from c achieves on samples
    data = m.sample(200_000, "test")
    c, s = data["c"][0, :, 0].double().numpy(), data["s"][0, :, 0].double().numpy()
    fit = np.polyfit(c, s, 1)
    r2 = 1 - np.var(s - np.polyval(fit, c)) / np.var(s)
    assert r2 == pytest.approx(expected.item(), abs=0.01)


def test_style_oracle_matches_samples_per_coordinate_and_direction(model):
    r = [s.name for s in model.settings].index("p075_stat_causal")
    data = model.sample(100_000, "test")
    c, s = data["c"][r].double(), data["s"][r].double()
    a = torch.cat([c, torch.ones(len(c), 1, dtype=torch.float64)], 1)
    directions = torch.linalg.eigh(model.covariance["s"].double())[1]  # [R, n_s, n_s]
    for dirs, target in ((None, s), (directions, s @ directions[r])):
        pred = a @ torch.linalg.lstsq(a, target).solution
        r2 = 1 - (target - pred).var(0) / target.var(0)
        torch.testing.assert_close(r2, model.style_oracle("s", dirs)[r], atol=0.01, rtol=0)


def test_encoders_mask_spare_dimensions(cfg):
    pairs = [(Setting(encoding_size=1), 0), (Setting(), 1)]
    enc = world.make_encoders(cfg, pairs, seed=0)
    x = torch.randn(2, 16, cfg.n_c + cfg.n_s + cfg.n_m)
    u, v = enc(x, x)
    assert u.shape == (2, 16, 3) and u[0, :, 1:].abs().max() == 0 and v[0, :, 1:].abs().max() == 0
    assert u[1].abs().min() > 0
    assert world.make_encoders(cfg, pairs[1:], 0).g1.out_mask is None


def test_padded_hidden_units_are_inert_under_training(cfg, table):
    """Units added by `pad_hidden_units` start at zero, get zero gradients and stay zero
    under Adam and clipping: the padded encoders train as the unpadded ones."""
    small = replace(cfg, hidden=(10, 20))
    pairs = [(table[-1], 0), (table[-1], 1)]
    m = world.World(small, 0, pairs=pairs)
    runs = {}
    for align in (1, 16):
        enc = world.make_encoders(small, pairs, 0, align=align)
        opt = make_optimizer("adam", list(enc.parameters()), 1e-2)
        streams, negatives = m.streams("a"), m.streams("b")
        for _ in range(5):
            opt.zero_grad()
            world.contrastive_loss(enc, m, 32, streams, "reference", negatives).sum().backward()
            clip_grad_norm_per_replica_(list(enc.parameters()), 0.1)
            opt.step()
        runs[align] = enc
    shapes = [tuple(p.shape[1:]) for p in runs[16].g1.layers.parameters()]
    assert shapes == [(9, 16), (16,), (16, 32), (32,), (32, 3), (3,)]
    for net, plain in ((runs[16].g1, runs[1].g1), (runs[16].g2, runs[1].g2)):
        for layer, ref in zip(net.layers, plain.layers, strict=True):
            n_in, n_out = ref.weight.shape[1:]
            assert not layer.weight[:, n_in:].any() and not layer.weight[:, :, n_out:].any()
            assert not layer.bias[:, n_out:].any()
            torch.testing.assert_close(layer.weight[:, :n_in, :n_out], ref.weight)
    assert runs[16].widths == runs[1].widths == [9, 10, 20, 3]
    x = torch.randn(2, 8, 9)
    torch.testing.assert_close(runs[16](x, x), runs[1](x, x))


def test_book_widths_need_no_padding(cfg, table):
    """The book's hidden widths are multiples of 16: padding leaves its encoders as they are."""
    pairs = [(table[-1], 0)]
    padded, plain = (world.make_encoders(cfg, pairs, 0, align=a) for a in (world.ALIGN, 1))
    for p, q in zip(padded.parameters(), plain.parameters(), strict=True):
        assert torch.equal(p, q)


def test_reference_loss_by_hand():
    u, v, u2, v2 = (torch.randn(1, 5, 2, dtype=torch.float64) for _ in range(4))

    def one(a, b, neg):
        total = 0.0
        for i in range(5):
            pos = float((a[0, i] - b[0, i]).square().sum())
            terms = [-float((a[0, i] - neg[0, j]).square().sum()) for j in range(5)] + [-pos]
            total += pos + math.log(sum(math.exp(t) for t in terms) / 6)
        return total / 5

    expected = 0.5 * (one(u, v, u2) + one(v, u, v2))
    assert world.reference_info_nce(u, v, u2, v2).item() == pytest.approx(expected, rel=1e-10)


def test_loss_per_replica_and_gradient_clipping(cfg, table):
    pairs = [(table[0], 0), (table[1], 1)]
    m, enc = world.World(cfg, 0, pairs=pairs), world.make_encoders(cfg, pairs, 0)
    for objective in world.OBJECTIVES:
        loss = world.contrastive_loss(enc, m, 64, m.streams("a"), objective,
                                      m.streams("b"))  # fmt: skip
        assert loss.shape == (2,) and torch.isfinite(loss).all()
    loss.sum().backward()
    params = list(enc.parameters())
    before = torch.stack([p.grad.reshape(2, -1).square().sum(1) for p in params]).sum(0).sqrt()
    norms = clip_grad_norm_per_replica_(params, 0.5 * float(before.min()))
    torch.testing.assert_close(norms, before)
    after = torch.stack([p.grad.reshape(2, -1).square().sum(1) for p in params]).sum(0).sqrt()
    torch.testing.assert_close(after, torch.full((2,), 0.5 * float(before.min())), rtol=1e-4,
                               atol=0)  # fmt: skip


def test_replica_streams_share_ids_and_advance():
    st = ReplicaStreams(0, "test", [0, 1, 0])
    (a, ua), (b, _) = st.noise(4, 2, 3), st.noise(4, 2, 3)
    assert torch.equal(a[0], a[2]) and not torch.equal(a[0], a[1]) and not torch.equal(a, b)
    assert torch.equal(ReplicaStreams(0, "test", [1]).noise(4, 2, 3)[0][0], a[1])
    assert ua.shape == (3, 4, 3) and 0 <= ua.min() and ua.max() < 1


def test_a_replica_trains_alone_as_in_a_group(cfg, table):
    group = [(table[0], 0), (table[-1], 1), (table[3], 0)]
    together = world.run(cfg, group, seed=5)
    alone = world.run(cfg, group[1:2], seed=5)
    torch.testing.assert_close(alone.history["loss"][:, 0], together.history["loss"][:, 1])
    w_alone = alone.encoders.g1.layers[0].weight[0]
    torch.testing.assert_close(w_alone, together.encoders.g1.layers[0].weight[1])
    torch.testing.assert_close(alone.evaluation.linear[0], together.evaluation.linear[1])
    assert together.r2(table[0]).shape == (1, 5) and together.oracle(table[-1]).shape == (1,)
    assert isinstance(together, Result) and together.world.pairs == group


def test_evaluation_shapes_and_multiview_nan(cfg, table):
    pairs = [(table[3], 0), (replace(table[3], multiview=True), 0)]
    res = world.run(cfg, pairs, seed=1, objective="reference")
    assert res.objective == "reference" and res.evaluation.kernel.shape == (2, 2, 5)
    assert torch.isnan(res.evaluation.kernel[1, :, 3:]).all()
    assert torch.isfinite(res.evaluation.kernel[0]).all()
    assert "loss" in res.history.names()


def test_config_validation():
    with pytest.raises(ValueError, match="p_chg"):
        Config.from_profile("book", p_chg=1.5)
    with pytest.raises(ValueError, match="p_chg"):
        Setting(p_chg=-0.1)
    with pytest.raises(ValueError, match="profile.*book"):
        Config.from_profile("huge")
    with pytest.raises(ValueError, match="n_c.*out of range"):
        Config.from_profile("book", n_c=0)
    with pytest.raises(ValueError, match="steps"):
        Config.from_profile("book", steps=float("nan"))
    with pytest.raises(ValueError, match="kernel_points"):
        Config.from_profile("book", kernel_points=5000)
    with pytest.raises(ValueError, match=r"sweep_sizes\[1\]"):
        Config.from_profile("book", sweep_sizes=[1, 0])
    with pytest.raises(ValueError, match="objective"):
        Config.from_profile("book", objective="simclr")
    with pytest.raises(ValueError, match="unknown parameter"):
        Config.from_profile("book", encoding_sizes=3)
    with pytest.raises(ValueError, match="block.*s_tilde"):
        world.World(Config(cond_draws=2000), 0).style_oracle("m1")
    paper = Config.from_profile("paper")
    assert paper.n_c == 5 and paper.steps == 300_001 and paper.lr == Config().lr / 10
    assert Config.from_profile("book", steps=10).track_every == 1


def test_setting_names_are_unique(table):
    names = [s.name for s in table]
    assert len(set(names)) == len(names)
    assert table[-1].name == "p075_stat_causal"
    assert replace(table[-1], encoding_size=4).name == "p075_stat_causal_d4"
    assert replace(table[2], wishart_factor=10).name == "p1_stat_df10n"
    assert replace(table[2], covariance="independent").name == "p1_stat_independent"


def test_batches_drawn_ahead_are_the_batches_drawn_one_by_one(model):
    one_by_one = model.streams("data/train")
    ahead = model.streams("data/train", ahead=4)
    for _ in range(6):  # crosses a refill
        a, b = model.sample(16, one_by_one), model.sample(16, ahead)
        for key in ("x1", "x2", "s_tilde"):
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    with pytest.raises(ValueError, match="draw batches of shape"):
        model.sample(8, ahead)  # these streams serve batches of 16
    assert 1 <= world.batches_ahead(model, 128) <= 64


def test_world_follows_the_protocol(cfg):
    w = world.World(cfg, 4, "cpu")
    assert isinstance(w, World) and chapter_configs("04_identifiability") == (Config,)
    assert w.cfg is cfg and w.seed == 4 and w.device == torch.device("cpu")
    assert w.pairs == [(world.table(cfg.p_chg)[-1], 0)] and "data/train" in w.PURPOSES
    a = w.sample(8, "data/val")
    assert a["x1"].shape == (1, 8, cfg.n_c + cfg.n_s + cfg.n_m)
    # a purpose draws afresh from its streams; streams from `streams` go on
    assert torch.equal(w.sample(8, "data/val")["x1"], a["x1"])
    streams = w.streams("data/val")
    assert torch.equal(w.sample(8, streams)["x1"], a["x1"])
    assert not torch.equal(w.sample(8, streams)["x1"], a["x1"])
    assert not torch.equal(w.sample(8, "data/test")["x1"], a["x1"])
    assert not torch.equal(world.World(cfg, 5).sample(8, "data/val")["x1"], a["x1"])
    with pytest.raises(ValueError, match="pairs is empty"):
        world.World(cfg, 0, pairs=[])


def test_content_and_style_of_different_sizes(cfg):
    """n_c ≠ n_s: the data model, the oracles and the read-outs all run (issue 34)."""
    small = cfg.replace(n_c=2, n_s=4, n_m=3, sweep_sizes=(1, 2))
    rows = world.table(small.p_chg)
    pairs = [(rows[-1], 0), (rows[1], 1), (replace(rows[3], content_noise=0.5), 0)]
    m = world.World(small, 0, pairs=pairs)
    data = m.sample(300, "test")
    assert data["c"].shape == (3, 300, 2) and data["s_tilde"].shape == (3, 300, 4)
    assert data["x1"].shape == (3, 300, 9)
    oracle = m.style_oracle("s")
    assert oracle.shape == (3, 4) and (oracle[:2] > 0).all() and (oracle[2] == 0).all()
    assert (m.style_oracle("s_tilde") <= oracle + 1e-12).all()
    res = world.run(small, pairs, seed=0)
    assert res.evaluation.kernel.shape == (3, 2, 5) and torch.isfinite(res.evaluation.kernel).all()
    assert res.evaluation.kernel_coords.shape == (3, 2, 2 + 2 * 4 + 2 * 3)
    records = world.direction_r2(res.encoders, res.world, [0, 2], n_val=200, n_test=200)
    assert len(records) == 2 * (2 + 4)


def test_sigma_forms_keep_the_conditioning_or_the_dependence(cfg):
    assert world.mean_abs_correlation(3) == pytest.approx(0.5)
    assert world.mean_abs_correlation(5) == pytest.approx(3 / 8)
    # Monte Carlo: |corr| of Wishart(3) draws, mean 1/2 (s.e. about 0.002)
    g = torch.randn(20_000, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w = g.mT @ g
    corr = w[:, 0, 1] / (w[:, 0, 0] * w[:, 1, 1]).sqrt()
    assert corr.abs().mean().item() == pytest.approx(0.5, abs=0.01)
    stat = Setting(statistical=True)
    arms = [stat, replace(stat, sigma_form="spectrum"), replace(stat, sigma_form="equicorrelated")]
    m = world.World(cfg, 0, pairs=[(s, 2) for s in arms])
    c = m.covariance["c"]
    cond = torch.linalg.cond(c)
    torch.testing.assert_close(cond[1], cond[0])  # the draw's conditioning
    assert torch.count_nonzero(c[1] - torch.diag(c[1].diagonal())) == 0  # no dependence
    d = c[2].diagonal().sqrt()
    off = (c[2] / d[:, None] / d[None, :])[~torch.eye(3, dtype=torch.bool)]
    torch.testing.assert_close(off, torch.full_like(off, 0.5))
    torch.testing.assert_close(cond[2], torch.tensor(4.0, dtype=torch.float64))
    torch.testing.assert_close(c[2].trace(), c[0].trace())
    assert replace(stat, sigma_form="spectrum").name == "p1_stat_spectrum"
    with pytest.raises(ValueError, match="sigma_form"):
        replace(stat, sigma_form="diagonal")


def test_content_noise_is_seen_by_the_second_modality_only(cfg):
    noisy = Setting(0.75, statistical=True, content_noise=0.5)
    clean = replace(noisy, content_noise=0.0)
    m = world.World(cfg, 0, pairs=[(clean, 1), (noisy, 1)])
    data = m.sample(40_000, "test")
    z2 = unmix(data["x2"].double(), m.f2.double())
    z1 = unmix(data["x1"].double(), m.f1.double())
    n_c = cfg.n_c
    torch.testing.assert_close(z1[..., :n_c], data["c"].double(), atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(z2[0, :, :n_c], data["c"][0].double(), atol=1e-3, rtol=1e-3)
    noise = z2[1, :, :n_c] - data["c"][1].double()
    torch.testing.assert_close(torch.cov(noise.T), 0.25 * m.covariance["c"][1], atol=0.05,
                               rtol=0.05)  # fmt: skip
    # the noise comes from companion streams: the other draws are those of the clean world
    alone = world.World(cfg, 0, pairs=[(clean, 1)]).sample(40_000, "test")
    assert torch.equal(alone["x1"][0], data["x1"][1]) and torch.equal(alone["x2"][0], data["x2"][0])
    assert noisy.name == "p075_stat_cnoise05"
    with pytest.raises(ValueError, match="content_noise"):
        Config.from_profile("book", content_noise=0.0)


def test_checkpoints_are_the_evaluations_of_shorter_runs(cfg, table):
    pairs = [(table[-1], 0)]
    long = world.run(cfg.replace(steps=4, track_evals=4), pairs, seed=2, checkpoints=[2])
    short = world.run(cfg.replace(steps=2, track_evals=0), pairs, seed=2)
    torch.testing.assert_close(long.checkpoints[2].kernel, short.evaluation.kernel)
    with pytest.raises(ValueError, match="checkpoints"):
        world.run(cfg.replace(steps=4, track_evals=2), pairs, seed=2, checkpoints=[3])
