"""Chapter 01's signal–noise world: data model, encoder, similarity, losses and read-outs."""

import math

import numpy as np
import pytest
import torch

from mmnb.losses import info_nce
from mmnb.protocol import Result, World
from mmnb.train import History
from mmnb.worlds import snr
from mmnb.worlds.snr import encoders, losses, measures


def tiny_cfg(**knobs) -> snr.SNRConfig:
    base = dict(n=10, d=30, m=4, n_test=10, steps=5, lr=0.05, eval_every=0, rate_steps=3)
    return snr.SNRConfig(**{**base, **knobs})


def lse(*values: float) -> float:
    return math.log(sum(math.exp(v) for v in values))


@pytest.fixture(scope="module")
def small():
    cfg = snr.SNRConfig(n=12, d=40, snr=0.3, c_mu=3.0, sigma_eps=0.1, n_test=10)
    return snr.SNRWorld(cfg, 0, replicas=2).data()


def test_world_protocol():
    cfg = tiny_cfg()
    world = snr.World(cfg, 0, "cpu", replicas=2)
    assert isinstance(world, World) and world.PURPOSES == ("data/train", "data/test")
    assert snr.CONFIGS == (snr.SNRConfig, snr.DigitsConfig)
    train, test = world.sample(cfg.n, "data/train"), world.sample(7, "data/test")
    assert train.x.shape == train.x_aug.shape == train.x_text.shape == (2, cfg.n, 2, cfg.d)
    assert test.x.shape == (2, 7, 2, cfg.d) and test.x_aug is None and test.x_text is None
    # the data set is the two samples: each purpose has its own streams
    data = world.data()
    torch.testing.assert_close(data.x_text, train.x_text)
    torch.testing.assert_close(data.x_test, world.sample(cfg.n_test, "data/test").x)
    with pytest.raises(ValueError, match="purpose"):
        world.sample(3, "data/val")


def test_shapes(small):
    r, n, d = 2, 12, 40
    assert small.x.shape == small.x_aug.shape == small.x_text.shape == (r, n, 2, d)
    assert small.x_test.shape == (r, 10, 2, d)
    assert small.y.shape == (r, n) and small.y_test.shape == (r, 10)
    assert set(small.y.unique().tolist()) <= {-1.0, 1.0}
    h = snr.PatchEncoder(d, 7, 2)
    assert h.weight.shape == (r, 7, d)
    assert h.activations(small.x).shape == (r, n, 2, 7)
    assert h(small.x).shape == (r, n, 7)


def test_data_model(small):
    y, mu = small.y[..., None], small.mu[:, None, :]
    torch.testing.assert_close(small.x[:, :, 0], y * mu)  # signal patch y·μ
    torch.testing.assert_close(small.x_aug[:, :, 0], y * mu)  # augmentation keeps the signal
    torch.testing.assert_close(small.x_text[:, :, 0], y * small.mu_text[:, None, :])
    eps = small.x_aug[:, :, 1] - small.x[:, :, 1]  # augmentation: ξ + ε, ε small
    assert 0.05 < eps.std().item() < 0.15
    # the second modality shares the label only: its noise is independent
    corr = torch.corrcoef(torch.stack([small.xi.flatten(), small.xi_text.flatten()]))[0, 1]
    assert abs(corr.item()) < 0.1
    # norms: ‖μ̃‖ = C_μ‖μ‖, μ ⟂ μ̃, ν is the test signal
    torch.testing.assert_close(small.mu_text.norm(dim=-1), 3.0 * small.mu.norm(dim=-1))
    assert (small.mu * small.mu_text).sum().abs().item() == 0
    torch.testing.assert_close(small.x_test[:, :, 0], small.y_test[..., None] * small.nu[:, None])


def test_snr_as_defined():
    data = snr.SNRWorld(snr.SNRConfig(), 0).data()
    assert data.mu.norm().item() == pytest.approx(5.0, rel=1e-6)
    assert data.snr.item() == pytest.approx(5 / (1.0 * math.sqrt(2000)), rel=1e-6)
    assert data.n_snr2.item() == pytest.approx(1.25, rel=1e-5)  # the paper's Fig. 1
    two = snr.SNRWorld(snr.SNRConfig(n=10, d=50, snr=0.2, sigma_xi=2.0), 0).data()
    assert two.mu.norm().item() == pytest.approx(0.2 * 2.0 * math.sqrt(50), rel=1e-6)
    assert snr.snr_for(1.25, n=100) == pytest.approx(5 / math.sqrt(2000))


def test_per_replica_snr_and_c_mu():
    cfg = snr.SNRConfig(n=8, d=20)
    data = snr.SNRWorld(cfg, 0, replicas=[0, 0], snr=[0.1, 0.3], c_mu=[1.0, 4.0]).data()
    torch.testing.assert_close(data.snr, torch.tensor([0.1, 0.3]))
    ratio = data.mu_text.norm(dim=-1) / data.mu.norm(dim=-1)
    torch.testing.assert_close(ratio, torch.tensor([1.0, 4.0]))
    torch.testing.assert_close(data.xi[0], data.xi[1])  # same replica: same noise draws
    with pytest.raises(ValueError, match="snr"):
        snr.SNRWorld(cfg, 0, replicas=2, snr=[0.1, 0.2, 0.3])


def test_streams_are_named_and_independent():
    cfg = snr.SNRConfig(n=50, d=40)
    data = snr.SNRWorld(cfg, 0, replicas=2).data()
    # replicas differ, purposes differ, and the noise is not the initial weights' stream
    assert not torch.allclose(data.xi[0], data.xi[1])
    assert not torch.allclose(data.xi[0], data.xi_text[0])
    w = snr.PatchEncoder(40, 50, 2, 0, sigma0=1.0).weight.detach()
    corr = torch.corrcoef(torch.stack([w[0].flatten(), data.xi[0].flatten()]))[0, 1]
    assert abs(corr.item()) < 0.05
    # the text encoder draws from its own stream
    g = snr.PatchEncoder(40, 50, 2, 0, sigma0=1.0, purpose="init/encoder_text").weight
    assert not torch.allclose(w, g.detach())
    # another seed gives other data
    assert not torch.allclose(snr.SNRWorld(cfg, 1, replicas=2).data().xi, data.xi)


def test_replicas_equal_runs_alone():
    cfg = tiny_cfg()
    together = snr.fit_snr(cfg, 3, [0, 1, 2], progress=False)
    alone = snr.fit_snr(cfg, 3, [1], progress=False)
    for model in ("single", "multi"):
        w_all = together.models[model].encoder.weight.detach()
        w_one = alone.models[model].encoder.weight.detach()
        torch.testing.assert_close(w_all[1:2], w_one, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            together.models[model].history["loss"][:, 1],
            alone.models[model].history["loss"][:, 0],
            rtol=1e-5,
        )
    # single- and multimodal image encoders start from the same weights
    torch.testing.assert_close(together.initial, snr.PatchEncoder(30, 4, 3, 3).weight.detach())


def test_encoder_is_shared_bias_free_relu():
    h = snr.PatchEncoder(3, 2, 1)
    with torch.no_grad():
        h.weight.copy_(torch.tensor([[[1.0, 0.0, 0.0], [0.0, -1.0, 1.0]]]))
    x = torch.tensor([[[[2.0, 1.0, 0.0], [-1.0, 3.0, 1.0]]]])  # one sample, two patches
    acts = h.activations(x)[0, 0]
    expected = torch.tensor([[2.0, 0.0], [0.0, 0.0]])  # ReLU(⟨w_r, x^(p)⟩), no bias
    torch.testing.assert_close(acts, expected)
    torch.testing.assert_close(h(x)[0, 0], expected.sum(0))
    assert h(torch.zeros(1, 1, 2, 3)).abs().sum().item() == 0  # no bias


def test_similarity_by_hand():
    a = torch.tensor([[[[1.0, 2.0], [0.0, 3.0]]]])  # [R=1, N=1, P=2, m=2]
    b = torch.tensor(
        [
            [[[4.0, 0.5], [2.0, 1.0]]],
        ]
    )
    # (1/m) Σ_r Σ_p a_rp b_rp = (1·4 + 2·0.5 + 0·2 + 3·1) / 2
    assert losses.patch_similarity(a, b).item() == pytest.approx(4.0)


def test_stop_gradient_on_second_argument():
    a = torch.rand(2, 5, 2, 3, requires_grad=True)
    b = torch.rand(2, 4, 2, 3, requires_grad=True)
    losses.patch_similarity(a, b).sum().backward()
    assert a.grad is not None and a.grad.abs().sum() > 0
    assert b.grad is None  # no gradient flows through the second argument
    # the same holds through the encoder: Sim(h(x), sg(h(x'))) differentiates h(x) only
    h = snr.PatchEncoder(6, 3, 1, sigma0=1.0)
    x, x2 = torch.randn(1, 4, 2, 6), torch.randn(1, 4, 2, 6, requires_grad=True)
    losses.patch_similarity(h.activations(x), h.activations(x2)).sum().backward()
    assert x2.grad is None
    grad_sg = h.weight.grad.clone()
    h.weight.grad = None
    a = h.activations(x)
    (a[:, :, None] * h.activations(x2).detach()[:, None]).sum((-1, -2)).div(3).sum().backward()
    torch.testing.assert_close(grad_sg, h.weight.grad)


def test_multimodal_gradients_split_by_direction(small):
    h = snr.PatchEncoder(40, 5, 2, sigma0=0.5)
    g = snr.PatchEncoder(40, 5, 2, sigma0=0.5, purpose="init/encoder_text")
    a, b = h.activations(small.x), g.activations(small.x_text)
    mask = losses.negatives_mask(small.y)
    info_nce(losses.patch_similarity(a, b) / 0.5, mask).sum().backward()  # L(x → x̃)
    assert h.weight.grad.abs().sum() > 0 and g.weight.grad is None
    h.weight.grad = None
    b = g.activations(small.x_text)
    a = h.activations(small.x)
    info_nce(losses.patch_similarity(b, a) / 0.5, mask).sum().backward()  # L(x̃ → x)
    assert g.weight.grad.abs().sum() > 0 and h.weight.grad is None


def test_negatives_mask():
    y = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    mask = losses.negatives_mask(y)[0]
    expected = torch.tensor([[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]]).bool()
    assert torch.equal(mask, expected)
    assert losses.negatives_mask(y, "all") is None
    with pytest.raises(ValueError, match="negatives"):
        losses.negatives_mask(y, "same_label")


def test_fast_activations_equal_the_generic_path(small):
    h = snr.PatchEncoder(40, 6, 2, sigma0=0.5)
    fast = encoders.signal_noise_activations(h.weight, small.y, small.mu, small.xi)
    torch.testing.assert_close(fast, h.activations(small.x))
    torch.testing.assert_close(h.signal_noise(small, "text"), h.activations(small.x_text))
    torch.testing.assert_close(h.signal_noise(small, "augmented"), h.activations(small.x_aug))
    with pytest.raises(ValueError, match="view='audio'"):
        small.view("audio")


@pytest.mark.parametrize("model", ["single", "multi"])
def test_signal_noise_coordinates_take_the_gradient_steps_of_the_weights(small, model):
    """Training A in W = W(0) + A P equals gradient descent on W itself, step by step."""
    lr, steps = 0.5, 5
    h = snr.PatchEncoder(40, 6, 2, sigma0=0.5)
    g = snr.PatchEncoder(40, 6, 2, sigma0=0.5, purpose="init/encoder_text")
    hs = snr.SignalNoiseEncoder(h, small, "image", frozen=("augmented",))
    gs = snr.SignalNoiseEncoder(g, small, "text")
    plain = torch.optim.SGD([h.weight, g.weight], lr=lr)
    span = torch.optim.SGD([hs.coef, gs.coef], lr=lr)
    for _ in range(steps):
        for opt, enc, txt in ((plain, h, g), (span, hs, gs)):
            opt.zero_grad()
            loss = (
                snr.single_modal_loss(enc, small, 0.2)
                if model == "single"
                else snr.multimodal_loss(enc, txt, small, 0.2)
            )
            loss.sum().backward()
            opt.step()
    moved = (h.weight - hs.w0).norm()
    assert moved > 1e-2  # the steps did change the weights
    torch.testing.assert_close(hs.weight, h.weight.detach(), rtol=1e-4, atol=1e-5)
    if model == "multi":
        torch.testing.assert_close(gs.weight, g.weight.detach(), rtol=1e-4, atol=1e-5)
    x = small.x_test
    torch.testing.assert_close(hs(x), h(x).detach(), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="view='text'"):
        hs.scores("text")


def _tiny():
    """Four samples (labels +, -, +, -) in d = 2 and one neuron per replica."""
    y = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    mu = torch.tensor([[1.0, 0.0]])
    xi = torch.tensor([[[0.3, 0.9], [0.5, -0.2], [0.8, 0.4], [0.1, 0.7]]])
    eps = torch.tensor([[[0.05, 0.0], [0.0, 0.1], [-0.1, 0.0], [0.0, -0.05]]])
    xi_t = torch.tensor([[[0.2, 0.1], [0.6, 0.3], [-0.4, 0.9], [0.7, 0.5]]])
    mu_t = torch.tensor([[0.0, 2.0]])
    sig = y[..., None] * mu[:, None]
    data = snr.SNRData(
        y=y,
        x=torch.stack([sig, xi], 2),
        x_aug=torch.stack([sig, xi + eps], 2),
        x_text=torch.stack([y[..., None] * mu_t[:, None], xi_t], 2),
        y_test=y,
        x_test=torch.stack([sig, xi], 2),
        mu=mu,
        mu_text=mu_t,
        nu=mu,
        sigma_xi=1.0,
    )
    w = torch.tensor([[[0.7, 0.4]]])  # [R=1, m=1, d=2]
    wt = torch.tensor([[[0.5, 0.9]]])
    return data, w, wt


def _relu(v: float) -> float:
    return max(v, 0.0)


def _h(w, patch) -> float:
    return _relu(float(w[0] * patch[0] + w[1] * patch[1]))


def test_single_modal_loss_by_hand():
    data, w, _ = _tiny()
    tau = 0.5
    h = snr.PatchEncoder(2, 1, 1)
    with torch.no_grad():
        h.weight.copy_(w)
    wv = w[0, 0].tolist()

    def sim(x1, x2) -> float:  # (1/m) Σ_p h(x1^(p)) h(x2^(p)), m = 1
        return sum(_h(wv, x1[p].tolist()) * _h(wv, x2[p].tolist()) for p in range(2))

    x, xa, y = data.x[0], data.x_aug[0], data.y[0].tolist()
    total = 0.0
    for i in range(4):
        pos = sim(x[i], xa[i]) / tau
        negs = [sim(x[i], x[j]) / tau for j in range(4) if y[j] != y[i]]
        total += lse(pos, *negs) - pos
    assert snr.single_modal_loss(h, data, tau).item() == pytest.approx(total / 4, rel=1e-6)
    # with negatives="all", every other sample is a negative
    total = 0.0
    for i in range(4):
        pos = sim(x[i], xa[i]) / tau
        total += lse(pos, *[sim(x[i], x[j]) / tau for j in range(4) if j != i]) - pos
    got = snr.single_modal_loss(h, data, tau, "all").item()
    assert got == pytest.approx(total / 4, rel=1e-6)


def test_multimodal_loss_by_hand():
    data, w, wt = _tiny()
    tau = 0.25
    h, g = snr.PatchEncoder(2, 1, 1), snr.PatchEncoder(2, 1, 1, purpose="init/encoder_text")
    with torch.no_grad():
        h.weight.copy_(w)
        g.weight.copy_(wt)
    wv, wtv = w[0, 0].tolist(), wt[0, 0].tolist()

    def sim(wa, xa, wb, xb) -> float:
        return sum(_h(wa, xa[p].tolist()) * _h(wb, xb[p].tolist()) for p in range(2))

    x, xt, y = data.x[0], data.x_text[0], data.y[0].tolist()
    total = 0.0
    for i in range(4):
        for wa, xa_, wb, xb_ in [(wv, x, wtv, xt), (wtv, xt, wv, x)]:
            pos = sim(wa, xa_[i], wb, xb_[i]) / tau
            negs = [sim(wa, xa_[i], wb, xb_[j]) / tau for j in range(4) if y[j] != y[i]]
            total += (lse(pos, *negs) - pos) / 4
    assert snr.multimodal_loss(h, g, data, tau).item() == pytest.approx(total, rel=1e-6)


def test_same_label_samples_are_not_negatives():
    data, w, _ = _tiny()
    h = snr.PatchEncoder(2, 1, 1)
    with torch.no_grad():
        h.weight.copy_(w)
    base = snr.single_modal_loss(h, data, 0.5)
    # move sample 2 (label +1, like sample 0) to a different noise: samples 0 and 2 are
    # not each other's negatives, so the loss terms of samples 1 and 3 alone change
    changed = snr.SNRData(**{**data.__dict__})
    changed.x = data.x.clone()
    changed.x[0, 2, 1] = torch.tensor([5.0, 5.0])
    changed.x_aug = data.x_aug.clone()
    changed.x_aug[0, 2, 1] = torch.tensor([5.0, 5.0])

    # anchor 0's row only sees samples 1 and 3 as negatives: recompute it both ways
    def row0(d):
        a = h.activations(d.x)
        s = losses.patch_similarity(a, a)[0, 0]
        pos = (a[0, 0] * h.activations(d.x_aug)[0, 0]).sum() / 1
        return torch.logsumexp(torch.stack([pos, s[1], s[3]]) / 0.5, 0) - pos / 0.5

    assert row0(data).item() == pytest.approx(row0(changed).item())
    assert snr.single_modal_loss(h, changed, 0.5).item() != pytest.approx(base.item())


def test_read_outs():
    gen = torch.Generator().manual_seed(0)
    w0 = torch.randn(2, 3, 10, generator=gen)
    mu = torch.zeros(2, 10)
    mu[:, 0] = 4.0
    xi = torch.randn(2, 5, 10, generator=gen)
    w = w0.clone()
    w[:, 1] += 0.7 * mu / mu.norm(dim=-1, keepdim=True)
    gamma = measures.signal_learning(w, w0, mu)
    torch.testing.assert_close(gamma[:, 1], torch.tensor([0.7, 0.7]))
    torch.testing.assert_close(gamma[:, 0], torch.zeros(2))
    w = w0.clone()
    w[:, 2] += 0.5 * xi[:, 3] / xi[:, 3].norm(dim=-1, keepdim=True)
    rho = measures.noise_memorization(w, w0, xi)
    assert rho.shape == (2, 3, 5)
    torch.testing.assert_close(rho[:, 2, 3], torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(rho[:, 0], torch.zeros(2, 5))


def test_coefficients_include_the_initial_weights():
    w = torch.zeros(1, 2, 3)
    w[0, 1] = torch.tensor([-3.0, 0.0, 4.0])
    mu = torch.tensor([[2.0, 0.0, 0.0]])
    assert measures.signal_coefficient(w, mu).item() == pytest.approx(3.0)
    xi = torch.tensor([[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]])
    # max_r ⟨w_r, ξ_i⟩/‖ξ_i‖ is 4 for ξ_1 and 0 (neuron 0) for ξ_2
    assert measures.noise_coefficient(w, xi).item() == pytest.approx(2.0)


def test_run_smoke_and_summary():
    cfg = tiny_cfg(n=20, d=60, m=6, n_test=20, steps=4, eval_every=2)
    out = snr.fit_snr(cfg, 0, 2, progress=False)
    assert isinstance(out, Result) and set(out.history) == {"single", "multi"}
    for model in ("single", "multi"):
        hist = out.models[model].history
        assert {"loss", "signal", "noise", "ood_acc", "signal_coef", "noise_coef"} <= set(
            hist.names()
        )
        assert hist["ood_acc"].shape == (3, 2)  # steps 0, 2, 4
        assert out.models[model].final["ood_acc"].shape == (2,)
    assert out.multi.text_encoder is not None and out.single.text_encoder is None
    summary = out.summary()
    assert {"ood_acc_single", "ood_acc_multi", "train_loss_single", "noise_multi"} <= set(summary)
    with pytest.raises(ValueError, match="models"):
        snr.fit_snr(cfg, 0, 1, models=("triple",))


def test_predicted_rates():
    rates = measures.predicted_rates(snr.SNRConfig())
    # η‖μ‖²/(2τm) = 0.01·25/(2·0.1·50) and ησ_ξ²d/(nτm) = 0.01·2000/(100·0.1·50)
    assert rates["rate_signal_single"] == pytest.approx(0.025)
    assert rates["rate_signal_multi"] == pytest.approx(0.075)
    assert rates["rate_noise_single"] == rates["rate_noise_multi"] == pytest.approx(0.04)


def test_growth_rates_recover_a_known_slope():
    hist = History()
    for t in range(11):
        hist.record(
            t,
            {
                "signal_coef": torch.tensor([np.exp(0.03 * t), 2 * np.exp(-0.01 * t)]),
                "noise_coef": torch.tensor([1.0, np.exp(0.2 * t)]),
            },
        )
    rates = measures.growth_rates({"single": hist}, steps=5)
    np.testing.assert_allclose(rates["rate_signal_single"], [0.03, -0.01], atol=1e-6)
    np.testing.assert_allclose(rates["rate_noise_single"], [0.0, 0.2], atol=1e-6)


def test_phase_diagram_shapes():
    cfg = tiny_cfg(
        steps=3, n_test=40, phase_n_snr2=(0.5, 2.0), phase_c_mu=(1.0, 2.0, 3.0), phase_seeds=2
    )
    phase = snr.phase_diagram(cfg, 0, progress=False)
    assert phase.acc_multi.shape == phase.acc_single.shape == (2, 3, 2)
    # the single-modal model does not see C_μ
    np.testing.assert_array_equal(phase.acc_single[:, 0], phase.acc_single[:, 2])
    assert phase.gap.shape == (2, 3, 2) and phase.stderr("gap").shape == (2, 3)


def test_config_profiles_and_validation():
    cfg = snr.SNRConfig.from_profile("book", c_mu=4.0)
    assert cfg.c_mu == 4.0 and cfg.n == 100 and cfg.d == 2000
    assert cfg.snr == pytest.approx(5 / math.sqrt(2000)) and cfg.n_snr2 == pytest.approx(1.25)
    paper = snr.SNRConfig.from_profile("paper")
    assert paper.phase_seeds > cfg.phase_seeds and paper.d == cfg.d
    for bad, match in [
        (dict(snr=-1.0), "snr"),
        (dict(snr=float("nan")), "snr"),
        (dict(negatives="same"), "negatives"),
        (dict(steps=10, rate_steps=20), "rate_steps"),
        (dict(phase_c_mu=()), "phase_c_mu"),
        (dict(control_c_mu=()), "control_c_mu"),
        (dict(control_c_mu=(-1.0,)), "control_c_mu"),
        (dict(window_c_mu=-1.0), "window_c_mu"),
        (dict(window_n_snr2=0.0), "window_n_snr2"),
        (dict(m=0), "m"),
    ]:
        with pytest.raises(ValueError, match=match):
            snr.SNRConfig(**bad)
    with pytest.raises(ValueError, match="profile"):
        snr.SNRConfig.from_profile("huge")


def test_cmu_tags_name_the_controls():
    assert [snr.cmu_tag(c) for c in (1.0, 0.5, 2.66, 3)] == ["1", "half", "2_66", "3"]


def test_a_weaker_second_modality_leaves_the_image_data_alone():
    """The C_μ controls pair each replica with Figure 1's: only the text signal changes."""
    cfg = tiny_cfg()
    a = snr.SNRWorld(cfg, 0, "cpu", 2).data()
    b = snr.SNRWorld(cfg, 0, "cpu", [0, 1, 0, 1], c_mu=[1.0, 1.0, 0.5, 0.5]).data()
    for name in ("y", "x", "x_aug", "x_test", "y_test", "xi_text"):
        torch.testing.assert_close(getattr(b, name)[2:], getattr(a, name), rtol=0, atol=0)
    ratio = b.mu_text.norm(dim=-1) / b.mu.norm(dim=-1)
    torch.testing.assert_close(ratio, torch.tensor([1.0, 1.0, 0.5, 0.5]))
