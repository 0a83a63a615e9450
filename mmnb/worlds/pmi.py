"""Chapter 03: the symmetric InfoNCE loss learns pointwise mutual information.

`PMIConfig` holds every setting of the chapter. The worlds live beside this module:
`pmi_ring` (the ring joint, its PMI, batches and the loss of a logit table),
`pmi_downstream` (the exactly computed zero-shot and probe risks) and `pmi_gaussian`
(the continuous world and its MLP encoders). This module trains the similarities of
the ring world: a free logit table (`fit_free_table`, symmetric or one-directional
InfoNCE) and normalized embedding tables with a cosine or kernel similarity
(`fit_embeddings`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from mmnb.config import WorldConfig, check_choice, check_range, knob
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
from mmnb.ranges import (
    FRACTION,
    LEARNED_TEMPERATURE,
    LEARNING_RATE,
    SCALE,
    STEPS,
    WIDTH,
    Range,
)
from mmnb.runtime import stream
from mmnb.train import History, train
from mmnb.worlds.pmi_gaussian import RHO_LIMIT
from mmnb.worlds.pmi_ring import DIRECTIONS, PairSampler, batch_loss, pmi

__all__ = [
    "KINDS",
    "EmbeddingFit",
    "FreeTableFit",
    "PMIConfig",
    "fit_embedding_dims",
    "fit_embeddings",
    "fit_free_table",
    "fit_free_tables",
    "shift_spread",
]

KINDS = KERNEL_SIMILARITIES  # "cosine", "gauss", "mix"
MAX_INVERSE_TEMPERATURE = 100.0  # the paper's code clamps the logit scale to [1, 100]


@dataclass(frozen=True)
class PMIConfig(WorldConfig):
    """The settings of chapter 03; the defaults are the "book" profile."""

    PAPER: ClassVar[dict] = {
        "table_steps": 16000,
        "batch_sizes": (16, 64, 256, 1024),
        "pairs_seen": 2**21,
        "embed_dims": (2, 4, 8, 16, 32),
        "embed_steps": 10000,
        "kernel": "rff",
        "oracle_batches": 4000,
        "gauss_hidden": 256,
        "gauss_dim": 16,
        "gauss_steps": 8000,
        "gauss_batch": 512,
        "gauss_lr": 1e-3,
        "eval_every": 200,
    }
    # the ring world
    n_states: int = knob(64, Range(8, 1024))  # states of the ring Z_n
    width: float = knob(1.5, Range(0.1, 100.0))  # width of the wrapped Gaussian offset
    uniform_mix: float = knob(0.1, Range(0.01, 1.0))  # weight of the uniform offset
    # the free logit table
    batch_size: int = knob(256, Range(2, 8192))  # pairs per batch, K
    table_steps: int = knob(4000, STEPS)  # steps of the free table
    table_lr: float = knob(0.01, LEARNING_RATE)  # Adam learning rate of the tables
    table_init_std: float = knob(0.01, Range(0.0, 10.0))  # std of the table's initial cells
    row_shift_init: float = knob(1.0, Range(0.0, 10.0))  # std of initial row offsets a(x)
    average_last: float = knob(0.5, FRACTION)  # fraction of steps averaged
    # batch sizes and the InfoNCE bound
    batch_sizes: tuple = knob((64, 256, 1024), Range(2, 8192))  # K of the batch-size runs
    pairs_seen: int = knob(2**19, Range(2**10, 2**26))  # pairs seen by each K run
    batch_lr: float = knob(0.02, LEARNING_RATE)  # learning rate of the K runs
    bound_batch_sizes: tuple = knob(  # K of the InfoNCE bound
        (2, 4, 16, 64, 256, 1024), Range(2, 8192)
    )
    oracle_batches: int = knob(400, Range(10, 100_000))  # Monte-Carlo batches of a loss
    # embeddings with a cosine or kernel similarity
    embed_dims: tuple = knob((4, 8, 16), Range(1, 256))  # embedding dimensions d
    embed_steps: int = knob(3000, STEPS)  # steps of the embedding tables
    embed_lr: float = knob(0.03, LEARNING_RATE)  # Adam learning rate of the embeddings
    embed_init_std: float = knob(1.0, Range(1e-3, 100.0))  # std of the initial embeddings
    tau_init: float = knob(0.07, LEARNED_TEMPERATURE)  # initial temperature τ
    tau_max: float = knob(1.0, LEARNED_TEMPERATURE)  # largest temperature (smallest scale)
    kernel: str = knob("exact", ("exact", "rff"))  # Gaussian part exact or by RFF
    n_features: int = knob(1024, Range(1, 65536))  # random Fourier features D
    sigma: float = knob(0.5, Range(0.01, 10.0))  # bandwidth σ of the Gaussian kernel
    mix_weight: float = knob(0.667, FRACTION)  # α₁ of mix (α₂ = 1 − α₁)
    # the downstream task
    n_classes: int = knob(8, Range(2, 1024))  # classes c(y) = ⌊C y / n⌋
    probe_l2: float = knob(1e-6, Range(0.0, 10.0))  # ridge of the linear probe
    pmi_scales: tuple = knob((0.5, 0.75, 1.0, 1.25, 1.5), SCALE)  # α of α·PMI
    # the continuous world
    rho: float = knob(0.8, Range(-RHO_LIMIT, RHO_LIMIT))  # correlation ρ of x and y
    gauss_x_dim: int = knob(2, Range(1, 64))  # dimension of x and y
    gauss_hidden: int = knob(64, WIDTH)  # hidden width of the MLPs
    gauss_dim: int = knob(8, Range(1, 1024))  # embedding dimension of the MLPs
    gauss_steps: int = knob(1500, STEPS)  # training steps
    gauss_batch: int = knob(256, Range(2, 8192))  # pairs per batch
    gauss_lr: float = knob(3e-3, LEARNING_RATE)  # Adam learning rate
    gauss_eval_points: int = knob(512, Range(16, 8192))  # held-out x's and y's
    eval_every: int = knob(100, STEPS)  # steps between evaluations

    def check(self) -> None:
        if self.n_classes > self.n_states:
            raise ValueError(f"n_classes={self.n_classes} must be at most n_states={self.n_states}")
        if self.tau_init > self.tau_max:
            raise ValueError(f"tau_init={self.tau_init} must be at most tau_max={self.tau_max}")
        for k in self.batch_sizes:
            if self.pairs_seen // k < 1:
                raise ValueError(f"pairs_seen={self.pairs_seen} is below batch size {k}")


def shift_spread(table: Tensor, target: Tensor, joint: Tensor, axis: str = "row") -> Tensor:
    """Spread of the row (or column) offsets of `table − target`, one value per replica.

    With D = table − target, the offset of row x is a(x) = Σ_y p(y) D[x, y]; the result is
    the p(x)-weighted standard deviation of a over x (for `axis="column"`, of
    b(y) = Σ_x p(x) D[x, y] over y). It is 0 when D is one constant.
    """
    check_choice("axis", axis, ("row", "column"))
    diff = torch.as_tensor(table).double() - torch.as_tensor(target).double().to(table.device)
    joint = joint.double().to(diff.device)
    p_x, p_y = joint.sum(1), joint.sum(0)
    if axis == "column":
        diff, p_x, p_y = diff.transpose(-1, -2), p_y, p_x
    offsets = diff @ p_y  # [..., n_x]
    mean = (offsets * p_x).sum(-1, keepdim=True)
    return ((offsets - mean).square() * p_x).sum(-1).sqrt()


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
    joint: Tensor,
    batch_size: int,
    steps: int,
    lr: float,
    replicas: Replicas,
    seed: int,
    *,
    direction: str = "symmetric",
    init_std: float = 0.01,
    row_shift: float = 0.0,
    average_last: float = 0.5,
    eval_every: int = 100,
    desc: str = "free table",
) -> FreeTableFit:
    """Train an unrestricted similarity (a free logit table) with InfoNCE.

    `direction` is "symmetric" (CLIP's loss) or "x_to_y" (rows only). Replica r starts
    from `init_std`-normal cells (stream (seed, "init/free_table", r)) plus a random
    offset of std `row_shift` on each row (stream (seed, "init/row_shift", r)), and draws
    its batches from the stream (seed, "data/pairs", r): the two directions trained
    with one seed start alike and see the same batches. The history records the loss,
    the PMI fit (`corr`, `rmse`, `delta`) of the current table and the spread of its row
    offsets (`row_shift`, see `shift_spread`).
    """
    options = dict(init_std=init_std, row_shift=row_shift, average_last=average_last)
    fits = fit_free_tables(joint, [direction], batch_size, steps, lr=lr, replicas=replicas,
                           seed=seed, **options, eval_every=eval_every, desc=desc)  # fmt: skip
    return fits[direction]


def fit_free_tables(
    joint: Tensor,
    directions: Sequence[str],
    batch_size: int,
    steps: int,
    *,
    lr: float,
    replicas: Replicas,
    seed: int,
    init_std: float = 0.01,
    row_shift: float = 0.0,
    average_last: float = 0.5,
    eval_every: int = 100,
    desc: str = "free tables",
) -> dict[str, FreeTableFit]:
    """`fit_free_table` for each of `directions`, trained at once as one batch of replicas.

    Each direction's replicas start alike and see the same batches (see `fit_free_table`);
    its loss only reaches its own tables, so each trains as it would alone.
    """
    for direction in directions:
        check_choice("direction", direction, DIRECTIONS)
    check_range("average_last", average_last, 0.0, 1.0)
    check_range("row_shift", row_shift, 0.0, None)
    n, device, ids = joint.shape[0], joint.device, replica_ids(replicas)
    all_ids, k = ids * len(directions), len(ids)

    def init(gen: torch.Generator) -> Tensor:
        return init_std * torch.randn(n, n, generator=gen)

    def offsets(gen: torch.Generator) -> Tensor:
        return row_shift * torch.randn(n, 1, generator=gen)

    table = replica_parameter(init, all_ids, seed, "init/free_table", device)
    with torch.no_grad():
        table += replica_parameter(offsets, all_ids, seed, "init/row_shift", device)
    sampler = PairSampler(joint, batch_size, ids, seed, "data/pairs", device)
    target, weights = pmi(joint), joint.sum(1, keepdim=True) * joint.sum(0, keepdim=True)
    start = int(steps * (1 - average_last))
    tail = {"step": 0, "sum": torch.zeros_like(table), "count": 0}

    def objective(_: Tensor | None) -> Tensor:
        if tail["step"] > start:  # the table after step - 1 updates
            tail["sum"] += table.detach()
            tail["count"] += 1
        tail["step"] += 1
        x, y = sampler.next()  # one draw serves every direction
        parts = [table[i * k : (i + 1) * k] for i in range(len(directions))]
        return torch.cat([batch_loss(t, x, y, d) for t, d in zip(parts, directions, strict=True)])

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
    for i, direction in enumerate(directions):
        rows = slice(i * k, (i + 1) * k)
        fits[direction] = FreeTableFit(
            final[rows], averaged[rows], direction, history.replicas(rows)
        )
    return fits


# --- embeddings with a cosine or kernel similarity -------------------------------------------


def _kind_weights(kinds: Sequence[str], mix_weight: float, device: torch.device) -> Tensor:
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
            a = _kind_weights(self.kinds, self.mix_weight, self.u.device)
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
        a = _kind_weights(self.kinds, self.mix_weight, torch.device("cpu"))
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
    joint: Tensor,
    cfg: PMIConfig,
    dim: int,
    kinds: Sequence[str],
    replicas: Replicas,
    seed: int = 0,
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
    return fit_embedding_dims(joint, cfg, [dim], kinds, replicas, seed, desc)[dim]


def fit_embedding_dims(
    joint: Tensor,
    cfg: PMIConfig,
    dims: Sequence[int],
    kinds: Sequence[str],
    replicas: Replicas,
    seed: int = 0,
    desc: str = "embeddings",
) -> dict[int, EmbeddingFit]:
    """`fit_embeddings` for every dimension in `dims`, trained at once as one batch.

    The tables of dimension d are zero-padded to max(dims): a zero coordinate of û and
    v̂ gets no gradient (∂⟨û, v̂⟩/∂u_j ∝ v̂_j = 0), so it stays zero under Adam and each
    dimension trains as it would alone (up to the rounding of the longer sums). Returns
    one `EmbeddingFit` per dimension, its history that of its own replicas.
    """
    ids = replica_ids(replicas)
    if len(kinds) != len(ids):
        raise ValueError(f"kinds: need one kind per replica ({len(ids)}), got {len(kinds)}")
    for dim in dims:
        check_range("dim", dim, 1, 4096, integer=True)
    n, device, width = joint.shape[0], joint.device, max(dims)
    all_ids, all_kinds = list(ids) * len(dims), list(kinds) * len(dims)
    a = _kind_weights(all_kinds, cfg.mix_weight, device)

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
    sampler = PairSampler(joint, cfg.batch_size, all_ids, seed, "data/pairs", device)
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
