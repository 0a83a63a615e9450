"""Training on the ring world: a free logit table, and embeddings with a cosine or kernel
similarity, each trained with InfoNCE and compared with the PMI as it trains.

Every entry point takes the config first and the `RingWorld` (its joint and seed), and
returns a dataclass carrying the `history`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mmnb.config import check_choice, check_range
from mmnb.losses import (
    KERNEL_SIMILARITIES,
    LearnedTemperature,
    kernel_features,
    kernel_similarity,
    kernel_weights,
    sample_fourier_basis,
)
from mmnb.nets import Replicas, replica_ids, replica_parameter
from mmnb.probes import pmi_fit
from mmnb.runtime import stream
from mmnb.train import History, train
from mmnb.worlds.pmi.config import PMIConfig
from mmnb.worlds.pmi.infonce import DIRECTIONS, batch_loss
from mmnb.worlds.pmi.measures import shift_spread
from mmnb.worlds.pmi.world import RingWorld, pmi

__all__ = [
    "KINDS",
    "EmbeddingFit",
    "EmbeddingTraining",
    "FreeTableFit",
    "embedding_objective",
    "fit_embedding_dims",
    "fit_embeddings",
    "fit_free_table",
    "fit_free_tables",
    "kind_weights",
]

KINDS = KERNEL_SIMILARITIES  # "cosine", "gauss", "mix"
MAX_INVERSE_TEMPERATURE = 100.0  # the paper's code clamps the logit scale to [1, 100]


# --- the free logit table --------------------------------------------------------------------


@dataclass
class FreeTableFit:
    """A free logit table per replica, `[R, n, n]`, its tail average and the history.

    `averaged` is the mean of the iterates over the last `average_last` fraction of
    the steps (Polyak averaging), which removes most of the optimizer's fluctuation.
    """

    table: Tensor
    averaged: Tensor
    direction: str
    history: History


def fit_free_table(
    cfg: PMIConfig,
    world: RingWorld,
    replicas: Replicas,
    *,
    direction: str = "symmetric",
    batch_size: int | None = None,
    steps: int | None = None,
    lr: float | None = None,
    row_shift: float | None = None,
    eval_every: int | None = None,
    desc: str = "free table",
) -> FreeTableFit:
    """Train an unrestricted similarity (a free logit table) with InfoNCE.

    `direction` is "symmetric" (CLIP's loss) or "x_to_y" (rows only). Replica r starts
    from `cfg.table_init_std`-normal cells (stream (seed, "init/free_table", r)) plus a
    random offset of std `row_shift` on each row (stream (seed, "init/row_shift", r)),
    and draws its batches from the stream (seed, "data/pairs", r): the two directions
    trained with one seed start alike and see the same batches. `batch_size`, `steps`,
    `lr`, `row_shift` and `eval_every` default to the config's `batch_size`,
    `table_steps`, `table_lr`, `row_shift_init` and `eval_every`; the tail average
    covers `cfg.average_last` of the steps. The history records the loss, the PMI fit
    (`corr`, `rmse`, `delta`) of the current table and the spread of its row offsets
    (`row_shift`, see `shift_spread`).
    """
    options = dict(batch_size=batch_size, steps=steps, lr=lr, row_shift=row_shift)
    fits = fit_free_tables(
        cfg, world, [direction], replicas, **options, eval_every=eval_every, desc=desc
    )
    return fits[direction]


def fit_free_tables(
    cfg: PMIConfig,
    world: RingWorld,
    directions: Sequence[str],
    replicas: Replicas,
    *,
    batch_size: int | None = None,
    steps: int | None = None,
    lr: float | None = None,
    row_shift: float | None = None,
    eval_every: int | None = None,
    floor: bool = False,
    desc: str = "free tables",
) -> dict[str, FreeTableFit]:
    """`fit_free_table` for each of `directions`, trained at once as one batch of replicas.

    Each direction's replicas start alike and see the same batches (see `fit_free_table`);
    its loss only reaches its own tables, so each trains as it would alone. With `floor`,
    one more run, under the key "floor": the symmetric loss from the same start without
    the row offsets, on the same batches (what training noise alone leaves in the rows).
    """
    batch_size = cfg.batch_size if batch_size is None else batch_size
    steps = cfg.table_steps if steps is None else steps
    lr = cfg.table_lr if lr is None else lr
    row_shift = cfg.row_shift_init if row_shift is None else row_shift
    eval_every = cfg.eval_every if eval_every is None else eval_every
    init_std, average_last = cfg.table_init_std, cfg.average_last
    for direction in directions:
        check_choice("direction", direction, DIRECTIONS)
    check_range("average_last", average_last, 0.0, 1.0)
    check_range("row_shift", row_shift, 0.0, None)
    runs = [(d, row_shift) for d in directions] + ([("symmetric", 0.0)] if floor else [])
    names = list(directions) + (["floor"] if floor else [])
    joint, seed = world.joint, world.seed
    n, device, ids = joint.shape[0], joint.device, replica_ids(replicas)
    all_ids, k = ids * len(runs), len(ids)

    def init(gen: torch.Generator) -> Tensor:
        return init_std * torch.randn(n, n, generator=gen)

    def offsets(gen: torch.Generator) -> Tensor:
        return torch.randn(n, 1, generator=gen)

    shifts = torch.tensor([a for _, a in runs for _ in ids], device=device)
    table = replica_parameter(init, all_ids, seed, "init/free_table", device)
    with torch.no_grad():
        rows = replica_parameter(offsets, all_ids, seed, "init/row_shift", device)
        table += shifts.to(table.dtype)[:, None, None] * rows
    sampler = world.sampler(batch_size, ids, "data/pairs")
    target, weights = pmi(joint), joint.sum(1, keepdim=True) * joint.sum(0, keepdim=True)
    start = int(steps * (1 - average_last))
    tail = {"step": 0, "sum": torch.zeros_like(table), "count": 0}

    def objective(_: Tensor | None) -> Tensor:
        if tail["step"] > start:  # the table after step - 1 updates
            tail["sum"] += table.detach()
            tail["count"] += 1
        tail["step"] += 1
        x, y = sampler.next()  # one draw serves every direction
        parts = [table[i * k : (i + 1) * k] for i in range(len(runs))]
        return torch.cat([batch_loss(t, x, y, d) for t, (d, _) in zip(parts, runs, strict=True)])

    def evaluate() -> dict[str, Tensor]:
        fit = pmi_fit(table, target, weights)
        spread = shift_spread(table, target, joint)
        return {"corr": fit.corr, "rmse": fit.rmse, "delta": fit.delta, "row_shift": spread}

    history = train(
        objective, [table], steps, lr=lr, evaluate=evaluate, eval_every=eval_every, desc=desc
    )
    final = table.detach().clone()
    averaged = (tail["sum"] + final) / (tail["count"] + 1)
    fits = {}
    for i, (name, (direction, _)) in enumerate(zip(names, runs, strict=True)):
        rows = slice(i * k, (i + 1) * k)
        fits[name] = FreeTableFit(final[rows], averaged[rows], direction, history.replicas(rows))
    return fits


# --- embeddings with a cosine or kernel similarity -------------------------------------------


def kind_weights(kinds: Sequence[str], mix_weight: float, device: torch.device) -> Tensor:
    """(α₁, α₂) per replica, `[R, 2]`: the weights of the cosine and the Gaussian kernel."""
    mix = (mix_weight, 1 - mix_weight)
    return torch.tensor([kernel_weights(k, mix) for k in kinds], device=device)


@dataclass
class EmbeddingFit:
    """Embedding tables `[R, n, d]` for x and y, the temperature and the similarity kinds.

    Replica r uses similarity `kinds[r]`; `logits()` gives the exact `[R, n, n]` table
    s · g(u_x, v_y) with the learned inverse temperature s.
    """

    u: Tensor
    v: Tensor
    temperature: LearnedTemperature
    kinds: list[str]
    sigma: float
    mix_weight: float
    history: History

    def logits(self) -> Tensor:
        with torch.no_grad():
            a = kind_weights(self.kinds, self.mix_weight, self.u.device)
            return _logit_table(self.u, self.v, self.temperature(), a, self.sigma)

    def features(
        self, n_features: int, seed: int, purpose: str = "rff/probe", side: str = "x"
    ) -> Tensor:
        """Each replica's kernel feature map of its x- (or y-) embeddings, `[R, n, d + D]`.

        [√α₁ û ; √α₂ z(û)] with one draw of D = `n_features` random Fourier features
        from the stream (seed, purpose): û for the cosine, z(û) for the pure Gaussian
        kernel (the other block is zero), both for the mix. The inner product of the
        maps of u and v (same seed and purpose) approximates the similarity g.
        """
        check_choice("side", side, ("x", "y"))
        gen = stream(seed, purpose).torch
        omega, phase = sample_fourier_basis(self.u.shape[-1], n_features, self.sigma, gen)
        a = kind_weights(self.kinds, self.mix_weight, torch.device("cpu"))
        u = (self.u if side == "x" else self.v).detach().cpu()
        lin = kernel_features(u, omega, phase, "cosine")
        rff = kernel_features(u, omega, phase, "gauss")
        return torch.cat([a[:, :1, None].sqrt() * lin, a[:, 1:, None].sqrt() * rff], -1)


def _logit_table(
    u: Tensor,
    v: Tensor,
    tau: Tensor,
    a: Tensor,
    sigma: float,
    n_features: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """s · (α₁ cos + α₂ gauss) per replica, exact or (with `n_features`) by random features."""
    cos = kernel_similarity(u, v, "cosine")
    gauss = kernel_similarity(u, v, "gauss", sigma, n_features=n_features, generator=generator)
    return (a[:, 0, None, None] * cos + a[:, 1, None, None] * gauss) / tau.view(-1, 1, 1)


def fit_embeddings(
    cfg: PMIConfig,
    world: RingWorld,
    dim: int,
    kinds: Sequence[str],
    replicas: Replicas,
    desc: str = "embeddings",
) -> EmbeddingFit:
    """Train L2-normalized embedding tables of dimension `dim` and a learned temperature.

    Replica `replicas[i]` uses similarity `kinds[i]` (`cosine`, `gauss` or `mix`); its
    embeddings start from the streams (seed, "init/embedding_x" or "_y", replica) and
    its batches of `cfg.batch_size` pairs come from (seed, "data/pairs", replica), so
    equal replica ids of different kinds share their start and their batches.
    Reads `cfg.embed_steps`, `embed_lr`, `embed_init_std`, `tau_init`, `tau_max`,
    `sigma`, `mix_weight`, `eval_every`, and `kernel`: with "rff" the Gaussian part is
    computed with `cfg.n_features` random Fourier features resampled every step from
    the stream (seed, "rff/train"). As in the paper's code, the inverse temperature is
    kept in [1/tau_max, 100] by projection after every step.
    """
    return fit_embedding_dims(cfg, world, [dim], kinds, replicas, desc)[dim]


@dataclass
class EmbeddingTraining:
    """What `fit_embedding_dims` trains, before its first step: the zero-padded tables
    `u`, `v` (`[R·len(dims), n, max(dims)]`), the temperature, the minibatch
    `objective` (loss per replica, and τ to record) and the PMI read-out `evaluate`."""

    u: nn.Parameter
    v: nn.Parameter
    tau: LearnedTemperature
    objective: Callable[[Tensor | None], tuple[Tensor, dict[str, Tensor]]]
    evaluate: Callable[[], dict[str, Tensor]]


def embedding_objective(
    cfg: PMIConfig,
    world: RingWorld,
    dims: Sequence[int],
    kinds: Sequence[str],
    ids: Sequence[int],
) -> EmbeddingTraining:
    """The tables, temperature and objective of `fit_embedding_dims` (its arguments, the
    replica ids resolved): one step is `objective(None)` summed, backward, Adam."""
    if len(kinds) != len(ids):
        raise ValueError(f"kinds: need one kind per replica ({len(ids)}), got {len(kinds)}")
    for dim in dims:
        check_range("dim", dim, 1, 4096, integer=True)
    joint, seed = world.joint, world.seed
    n, device, width = joint.shape[0], joint.device, max(dims)
    all_ids, all_kinds = list(ids) * len(dims), list(kinds) * len(dims)
    a = kind_weights(all_kinds, cfg.mix_weight, device)

    def table(purpose: str) -> nn.Parameter:
        draws = [
            cfg.embed_init_std * torch.randn(n, d, generator=stream(seed, purpose, r).torch)
            for d in dims
            for r in ids
        ]  # replica r of every dimension: its own stream
        padded = [nn.functional.pad(t, (0, width - t.shape[1])) for t in draws]
        return nn.Parameter(torch.stack(padded).to(device))

    u, v = table("init/embedding_x"), table("init/embedding_y")
    tau = LearnedTemperature(len(all_ids), init=cfg.tau_init).to(device)
    log_tau_range = (-math.log(MAX_INVERSE_TEMPERATURE), math.log(cfg.tau_max))
    sampler = world.sampler(cfg.batch_size, all_ids, "data/pairs")
    rff = stream(seed, "rff/train").torch
    n_features = cfg.n_features if cfg.kernel == "rff" else None
    target, weights = pmi(joint), joint.sum(1, keepdim=True) * joint.sum(0, keepdim=True)

    def objective(_: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        with torch.no_grad():  # project the previous step's temperature, as the paper's code
            tau.log_excess.clamp_(*log_tau_range)
        t = tau()
        logits = _logit_table(u, v, t, a, cfg.sigma, n_features, rff)
        x, y = sampler.next()
        return batch_loss(logits, x, y), {"tau": t.detach()}

    def evaluate() -> dict[str, Tensor]:
        tau.log_excess.clamp_(*log_tau_range)
        fit = pmi_fit(_logit_table(u, v, tau(), a, cfg.sigma), target, weights)
        return {"corr": fit.corr, "rmse": fit.rmse, "delta": fit.delta}

    return EmbeddingTraining(u, v, tau, objective, evaluate)


def fit_embedding_dims(
    cfg: PMIConfig,
    world: RingWorld,
    dims: Sequence[int],
    kinds: Sequence[str],
    replicas: Replicas,
    desc: str = "embeddings",
) -> dict[int, EmbeddingFit]:
    """`fit_embeddings` for every dimension in `dims`, trained at once as one batch.

    The tables of dimension d are zero-padded to max(dims): a zero coordinate of û and
    v̂ gets no gradient (∂⟨û, v̂⟩/∂u_j ∝ v̂_j = 0), so it stays zero under Adam and each
    dimension trains as it would alone (up to the rounding of the longer sums). Returns
    one `EmbeddingFit` per dimension, its history that of its own replicas.
    """
    ids = replica_ids(replicas)
    run = embedding_objective(cfg, world, dims, kinds, ids)
    u, v, tau, objective, evaluate = run.u, run.v, run.tau, run.objective, run.evaluate
    device = u.device
    history = train(
        objective,
        [u, v, tau],
        cfg.embed_steps,
        lr=cfg.embed_lr,
        evaluate=evaluate,
        eval_every=cfg.eval_every,
        desc=desc,
    )
    fits, k = {}, len(ids)
    for i, d in enumerate(dims):
        rows = slice(i * k, (i + 1) * k)
        temperature = LearnedTemperature(k, init=cfg.tau_init).to(device)
        with torch.no_grad():
            temperature.log_excess.copy_(tau.log_excess[rows])
        part = history.replicas(rows)
        u_d, v_d = u.detach()[rows, :, :d], v.detach()[rows, :, :d]
        fits[d] = EmbeddingFit(u_d, v_d, temperature, list(kinds), cfg.sigma, cfg.mix_weight, part)
    return fits
