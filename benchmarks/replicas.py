"""Replicas: R seeds trained as one batched model versus R single-seed models in a loop.

For each chapter's main model, one optimizer step of all R replicas is timed both ways;
the speed-up is looped time over batched time.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch

import mmnb
from benchmarks.timing import seconds_per_call
from mmnb.losses import (
    LearnedTemperature,
    kernel_similarity,
    spectral_contrastive_loss,
    symmetric_info_nce,
)
from mmnb.nets import MLP
from mmnb.runtime import DrawAhead
from mmnb.train import make_optimizer
from mmnb.worlds import (
    captions,
    cooccurrence,
    identifiability,
    intrinsic_dim,
    lenses,
    paired,
    pmi,
    pmi_ring,
    snr,
)

Step = Callable[[], None]


def _optimizer_step(loss_fn: Callable[[], torch.Tensor], params, lr: float) -> Step:
    opt = make_optimizer("adam", params, lr)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn().sum().backward()
        opt.step()

    return step


def ch00_step(r: int, seed: int, device: torch.device) -> Step:
    """Chapter 00: MLP encoders, symmetric InfoNCE with a learned temperature, batch 256,
    one minibatch per replica."""
    cfg = paired.PairedConfig()
    pairs = paired.PairedWorld.from_config(cfg, seed, device).sample(cfg.n_train)
    x, y = pairs.x, pairs.y
    f, g = mmnb.encoder_pair(x.shape[1], y.shape[1], [cfg.hidden], cfg.embed_dim, r, seed,
                             device=device)  # fmt: skip
    tau = LearnedTemperature(r).to(device)
    gen = mmnb.stream(seed, "minibatch").device_generator(device)

    def loss() -> torch.Tensor:
        idx = torch.randint(cfg.n_train, (r, cfg.batch_size), generator=gen, device=device)
        return symmetric_info_nce(f(x[idx]), g(y[idx]), tau())

    return _optimizer_step(loss, [*f.parameters(), *g.parameters(), *tau.parameters()], cfg.lr)


def ch01_step(r: int, seed: int, device: torch.device) -> Step:
    """Chapter 01: two-patch ReLU encoders in signal–noise coordinates, multimodal loss,
    full batch (n = 100, d = 2000)."""
    cfg = snr.SNRConfig.from_profile("book")
    data = snr.make_data(cfg, seed, r, device)

    def encoder(purpose: str, view: str) -> snr.SignalNoiseEncoder:
        weights = snr.PatchEncoder(cfg.d, cfg.m, r, seed, cfg.sigma0, purpose, device)
        return snr.SignalNoiseEncoder(weights, data, view)

    h, g = encoder("init/encoder_image", "image"), encoder("init/encoder_text", "text")
    opt = make_optimizer("sgd", [h.coef, g.coef], cfg.lr)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        snr.multimodal_loss(h, g, data, cfg.tau).sum().backward()
        opt.step()

    return step


def ch02_step(r: int, seed: int, device: torch.device) -> Step:
    """Chapter 02: image MLP and caption table on the minibatch spectral loss (MMCL)."""
    cfg = cooccurrence.CooccurrenceConfig()
    world = captions.make_world(cfg, seed, device)
    x, y = captions.sample_images(world, cfg.pool_size, seed, "data/pool", 0)
    caps = captions.assign_captions(world, y, cfg.captions_per_image, cfg.caption_noise, seed, 0)
    f = MLP(x.shape[1], [cfg.hidden], cfg.n_classes, r, seed, device=device)
    g = mmnb.replica_parameter(
        lambda gen: 0.1 * torch.randn(world.n_captions, cfg.n_classes, generator=gen),
        r, seed, "init/caption_table", device,
    )  # fmt: skip
    rows = torch.arange(r, device=device)[:, None]
    m, n = cfg.captions_per_image, cfg.pool_size * cfg.captions_per_image
    batches = DrawAhead(
        [mmnb.stream(seed, "minibatch", k).torch for k in range(r)],
        lambda gen: torch.randint(n, (cfg.neural_batch,), generator=gen),
        device,
    )

    def loss() -> torch.Tensor:
        pairs = batches()
        image = pairs // m
        return spectral_contrastive_loss(f(x[image]), g[rows, caps[image, pairs % m]])

    return _optimizer_step(loss, [*f.parameters(), g], cfg.neural_lr)


def ch03_step(r: int, seed: int, device: torch.device) -> Step:
    """Chapter 03: embedding tables with a Gaussian-kernel similarity on the ring world."""
    cfg = pmi.PMIConfig()
    joint = pmi_ring.ring_joint(cfg.n_states, cfg.width, cfg.uniform_mix).to(device)
    dim = max(cfg.embed_dims)

    def init(gen: torch.Generator) -> torch.Tensor:
        return cfg.embed_init_std * torch.randn(cfg.n_states, dim, generator=gen)

    u = mmnb.replica_parameter(init, r, seed, "init/embedding_x", device)
    v = mmnb.replica_parameter(init, r, seed, "init/embedding_y", device)
    tau = LearnedTemperature(r, init=cfg.tau_init).to(device)
    sampler = pmi_ring.PairSampler(joint, cfg.batch_size, r, seed, device=device)

    def loss() -> torch.Tensor:
        table = kernel_similarity(u, v, "gauss", cfg.sigma) / tau().view(-1, 1, 1)
        x, y = sampler.next()
        return pmi_ring.batch_loss(table, x, y)

    return _optimizer_step(loss, [u, v, *tau.parameters()], cfg.embed_lr)


def ch04_step(r: int, seed: int, device: torch.device) -> Step:
    """Chapter 04 ("book"): data drawn per step through the mixing MLPs, two encoders."""
    cfg = identifiability.IdentifiabilityConfig.from_profile("book")
    pairs = identifiability.replicas(identifiability.table(cfg.p_chg)[-1:], r)
    model = identifiability.latent_model(cfg, pairs, seed, device)
    enc = identifiability.make_encoders(cfg, pairs, seed, device)
    ahead = identifiability.batches_ahead(model, cfg.batch_size)
    streams = model.streams(seed, "data/train", ahead)
    return _optimizer_step(
        lambda: identifiability.contrastive_loss(enc, model, cfg.batch_size, streams),
        enc.parameters(),
        cfg.lr,
    )


def ch05_step(r: int, seed: int, device: torch.device) -> Step:
    """Chapter 05: 20 → 50 → 50 → 50 → 16 encoders, L2-normalized, learned τ, batch 256."""
    cfg = intrinsic_dim.IntrinsicDimConfig()  # the "book" profile
    data = intrinsic_dim.draw_data(cfg, cfg.k, cfg.link, seed, device).train
    f, g = mmnb.encoder_pair(cfg.dim, cfg.dim, cfg.hidden, cfg.d_main, r, seed, device=device)
    tau = LearnedTemperature(r, cfg.tau_init, floor=cfg.tau_floor).to(device)
    rng = mmnb.stream(seed, "minibatch", device=device)

    def loss() -> torch.Tensor:
        idx = rng.randint(cfg.n_train, (cfg.batch_size,))
        u = torch.nn.functional.normalize(f(data.x[idx]), dim=-1)
        v = torch.nn.functional.normalize(g(data.y[idx]), dim=-1)
        return symmetric_info_nce(u, v, tau(), kind="dot")

    return _optimizer_step(loss, [*f.parameters(), *g.parameters(), *tau.parameters()], cfg.lr)


def ch06_step(r: int, seed: int, device: torch.device) -> Step:
    """Chapter 06: CLIP encoders 6 → 64 → 64 → 16 with a learned τ on the mixed Gaussian
    world, batch 256, one minibatch per replica."""
    cfg = lenses.LensesConfig()
    data = lenses.LensesWorld(cfg, seed, device).sample(cfg.n_train, "data/train")
    dim = data.x.shape[1]
    f, g = mmnb.encoder_pair(dim, dim, cfg.hidden, cfg.embed_dim, r, seed, device=device)
    tau = LearnedTemperature(r, init=cfg.tau_init).to(device)
    gen = mmnb.stream(seed, "minibatch").device_generator(device)

    def loss() -> torch.Tensor:
        idx = torch.randint(cfg.n_train, (r, cfg.batch_size), generator=gen, device=device)
        return symmetric_info_nce(f(data.x[idx]), g(data.y[idx]), tau())

    return _optimizer_step(loss, [*f.parameters(), *g.parameters(), *tau.parameters()], cfg.lr)


MAIN_MODELS: dict[str, Callable[[int, int, torch.device], Step]] = {
    "00_contrastive_learning": ch00_step,
    "01_snr": ch01_step,
    "02_matrix_factorization": ch02_step,
    "03_pmi": ch03_step,
    "04_identifiability": ch04_step,
    "05_intrinsic_dimension": ch05_step,
    "06_five_lenses": ch06_step,
}


def replica_times(
    build: Callable[[int, int, torch.device], Step],
    replicas: int,
    device: torch.device,
    repeats: int = 20,
    rounds: int = 5,
) -> tuple[float, float]:
    """Seconds per step of all `replicas` seeds: (batched in one model, looped one by one).

    The two are timed in alternating rounds (`repeats` steps each) and each keeps its
    median round, so that a machine that speeds up or slows down during the measurement
    does not favour either.
    """
    batched_step = [build(replicas, 0, device)]
    looped_steps = [build(1, s, device) for s in range(replicas)]
    batched, looped = [], []
    for _ in range(rounds):
        batched.append(seconds_per_call(batched_step, repeats, device))
        looped.append(seconds_per_call(looped_steps, repeats, device))
    return statistics.median(batched), statistics.median(looped)
