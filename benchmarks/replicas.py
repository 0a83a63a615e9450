"""Replicas: R seeds trained as one batched model versus R single-seed models in a loop.

For each chapter's main model, one optimizer step of all R replicas is timed both ways;
the speed-up is looped time over batched time. `overhead_and_per_seed` splits the batched
step into a fixed part and a part per seed, which bounds the speed-up any R can reach;
`replica_times_in_fresh_processes` repeats the measurement in new interpreters, since a
single-seed step's time can differ from one process to the next.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch

import mmnb
from benchmarks.timing import in_fresh_process, seconds_per_call
from mmnb.runtime import DrawAhead
from mmnb.train import make_optimizer
from mmnb.worlds import (
    contrastive,
    factorization,
    identifiability,
    intrinsic_dim,
    lenses,
    pmi,
    snr,
)

Step = Callable[[], None]


def _optimizer_step(
    loss_fn: Callable[[], torch.Tensor], params, lr: float, optimizer: str = "adam"
) -> Step:
    opt = make_optimizer(optimizer, params, lr)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn().sum().backward()
        opt.step()

    return step


def _clip_step(objective, modules, cfg, r: int, seed: int, device: torch.device) -> Step:
    """One Adam step of a world's own CLIP objective, one minibatch per replica (n_train,
    batch_size and lr from the world's config)."""
    gen = mmnb.stream(seed, "minibatch").device_generator(device)

    def loss() -> torch.Tensor:
        idx = torch.randint(cfg.n_train, (r, cfg.batch_size), generator=gen, device=device)
        return objective(idx)[0]

    return _optimizer_step(loss, [p for m in modules for p in m.parameters()], cfg.lr)


def ch00_step(r: int, seed: int, device: torch.device) -> Step:
    """Chapter 00: the world's own objective (MLP encoders, symmetric InfoNCE with a
    learned temperature), batch 256, one minibatch per replica."""
    cfg = contrastive.ContrastiveConfig()
    pairs = contrastive.World(cfg, seed, device).sample(cfg.n_train, "data/train")
    setup = contrastive.ClipSetup(pairs, [cfg.tau_init] * r, seed=seed)
    run = contrastive.clip_objective(cfg, setup)
    return _clip_step(run.objective, run.modules(), cfg, r, seed, device)


def ch01_step(r: int, seed: int, device: torch.device) -> Step:
    """Chapter 01: the world's own encoders and multimodal loss (`snr.make_encoder`,
    `snr.model_loss`: two-patch ReLU encoders in signal–noise coordinates), full batch
    (n = 100, d = 2000), plain gradient descent as `fit_snr` trains it."""
    cfg = snr.SNRConfig.from_profile("book")
    ids = list(range(r))
    data = snr.SNRWorld(cfg, seed, device, ids).data()
    h = snr.make_encoder(cfg, data, ids, seed, "init/encoder_image", "image", device=device)
    g = snr.make_encoder(cfg, data, ids, seed, "init/encoder_text", "text", device=device)
    loss = snr.model_loss(cfg, data, h, g)
    return _optimizer_step(lambda: loss().sum(), [*h.parameters(), *g.parameters()], cfg.lr, "sgd")


def ch02_step(r: int, seed: int, device: torch.device) -> Step:
    """Chapter 02: the world's own caption encoder (image MLP and caption table) on the
    minibatch spectral loss (MMCL); minibatches drawn with replacement here."""
    cfg = factorization.FactorizationConfig()
    world = factorization.World(cfg, seed, device)
    x, y = world.sample(cfg.pool_size, "data/pool", 0)
    caps = world.assign_captions(y, cfg.captions_per_image, cfg.caption_noise, 0)
    model = factorization.caption_encoder(cfg, x, caps, r, seed)
    batches = DrawAhead(
        [mmnb.stream(seed, "minibatch", k).torch for k in range(r)],
        lambda gen: torch.randint(model.n_pairs, (cfg.neural_batch,), generator=gen),
        device,
    )
    params = [*model.image_encoder.parameters(), model.caption_table]
    return _optimizer_step(lambda: model.loss(batches()), params, cfg.neural_lr)


def ch03_step(r: int, seed: int, device: torch.device) -> Step:
    """Chapter 03: the world's own embedding objective (`pmi.embedding_objective`:
    L2-normalized tables with the Gaussian-kernel similarity and a learned temperature on
    the ring world, d = max(embed_dims)), one minibatch of pairs per replica."""
    cfg = pmi.PMIConfig()
    world = pmi.World(cfg, seed, device)
    run = pmi.embedding_objective(cfg, world, [max(cfg.embed_dims)], ["gauss"] * r, range(r))
    return _optimizer_step(lambda: run.objective(None)[0], [run.u, run.v, *run.tau.parameters()],
                           cfg.embed_lr)  # fmt: skip


def ch04_step(r: int, seed: int, device: torch.device) -> Step:
    """Chapter 04 ("book"): data drawn per step through the mixing MLPs, two encoders."""
    cfg = identifiability.IdentifiabilityConfig.from_profile("book")
    pairs = identifiability.replicas(identifiability.table(cfg.p_chg)[-1:], r)
    model = identifiability.World(cfg, seed, device, pairs)
    enc = identifiability.make_encoders(cfg, pairs, seed, device)
    ahead = identifiability.batches_ahead(model, cfg.batch_size)
    streams = model.streams("data/train", ahead)
    return _optimizer_step(
        lambda: identifiability.contrastive_loss(enc, model, cfg.batch_size, streams),
        enc.parameters(),
        cfg.lr,
    )


def ch05_step(r: int, seed: int, device: torch.device) -> Step:
    """Chapter 05: the world's own training objective (20 → 50 → 50 → 50 → 16 encoders,
    L2-normalized, learned τ down to its floor, batch 256), one minibatch per replica."""
    cfg = intrinsic_dim.IntrinsicDimConfig()  # the "book" profile
    data = intrinsic_dim.World(cfg, seed, device).splits()
    run = intrinsic_dim.training_objective(
        cfg, data.train, data.reference, [cfg.d_main] * r, [None] * r, r, seed
    )
    opt = make_optimizer("adam", run.groups, cfg.lr, cfg.weight_decay)
    rng = mmnb.stream(seed, "minibatch", device=device)

    def step() -> None:
        batch = rng.randint(cfg.n_train, (r, cfg.batch_size))
        opt.zero_grad(set_to_none=True)
        run.objective(batch)[0].sum().backward()
        opt.step()

    return step


def ch06_step(r: int, seed: int, device: torch.device) -> Step:
    """Chapter 06: the world's own CLIP objective (encoders 6 → 64 → 64 → 16, learned τ)
    on the mixed Gaussian world, batch 256, one minibatch per replica."""
    cfg = lenses.LensesConfig()
    data = lenses.World(cfg, seed, device).sample(cfg.n_train, "data/train")
    run = lenses.clip_objective(cfg, lenses.ClipSetup(data, [True] * r, r, seed))
    return _clip_step(run.objective, run.modules(), cfg, r, seed, device)


MAIN_MODELS: dict[str, Callable[[int, int, torch.device], Step]] = {
    "00_contrastive_learning": ch00_step,
    "01_snr": ch01_step,
    "02_matrix_factorization": ch02_step,
    "03_pmi": ch03_step,
    "04_identifiability": ch04_step,
    "05_intrinsic_dimension": ch05_step,
    "06_five_lenses": ch06_step,
}


def overhead_and_per_seed(batched: dict[int, float]) -> tuple[float, float]:
    """(o, c) of the line `o + R·c` through the batched step's time at the smallest and the
    largest R (`batched`: R → seconds): a fixed part o, paid once per step however many
    seeds it carries, and a part c per seed.

    R seeds in a loop cost R·ℓ (ℓ: one seed's step), so the speed-up R·ℓ / (o + R·c)
    grows with R towards ℓ / c, and stays below it while o > 0.
    """
    lo, hi = min(batched), max(batched)
    if lo == hi:
        raise ValueError(f"need the batched time at two values of R, got {sorted(batched)}")
    per_seed = (batched[hi] - batched[lo]) / (hi - lo)
    return batched[lo] - lo * per_seed, per_seed


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


def replica_times_in_fresh_processes(
    chapter: str,
    replicas: int,
    processes: int,
    device: torch.device | str = "cpu",
    threads: int | None = None,
) -> list[dict[str, float]]:
    """`replica_times` of one chapter's main model (a key of `MAIN_MODELS`), measured once
    in each of `processes` new interpreters set up as `mmnb.setup(0, device, threads)`:
    `[{"batched_s": …, "looped_s": …}, …]`."""
    if chapter not in MAIN_MODELS:
        raise ValueError(f"chapter={chapter!r}: not one of {sorted(MAIN_MODELS)}")
    code = (
        "import json, mmnb\n"
        "from benchmarks.replicas import MAIN_MODELS, replica_times\n"
        f"dev = mmnb.setup(0, {str(device)!r}, threads={threads!r}, verbose=False)\n"
        f"batched, looped = replica_times(MAIN_MODELS[{chapter!r}], {replicas!r}, dev)\n"
        "print(json.dumps({'batched_s': batched, 'looped_s': looped}))\n"
    )
    return [in_fresh_process(code) for _ in range(processes)]
