"""Chapter 05's training: the encoder pair under the symmetric InfoNCE loss, one replica
per run (its own output width, temperature, sub-batches and training pairs), in one pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from mmnb.config import check_range
from mmnb.losses import LearnedTemperature, symmetric_info_nce
from mmnb.nets import Replicas, encoder_pair, replica_ids
from mmnb.runtime import stream
from mmnb.train import History, train
from mmnb.worlds.intrinsic_dim.config import IntrinsicDimConfig
from mmnb.worlds.intrinsic_dim.encoders import IntrinsicFit
from mmnb.worlds.intrinsic_dim.measures import alignment_ratio, id_estimates
from mmnb.worlds.intrinsic_dim.world import SharedLatentSample

__all__ = [
    "Training",
    "fit_encoders",
    "sub_batch_info_nce",
    "sub_batch_mask",
    "training_objective",
]


def sub_batch_mask(sub_batches: Sequence[int], batch_size: int, device: torch.device) -> Tensor:
    """`[R, B, B]` negatives mask: replica r's batch split into `sub_batches[r]` blocks.

    The definition of the split-batch loss (`symmetric_info_nce(..., negatives=mask)`);
    `sub_batch_info_nce` computes the same loss without the `[R, B, B]` mask.
    """
    masks = []
    for s in sub_batches:
        block = torch.ones(batch_size // s, batch_size // s, dtype=torch.bool)
        masks.append(torch.block_diag(*[block] * s))
    return torch.stack(masks).to(device)


def sub_batch_info_nce(u: Tensor, v: Tensor, tau: Tensor, sub_batches: Sequence[int]) -> Tensor:
    """Symmetric InfoNCE (dot products / τ) per replica, replica r's batch of B pairs split
    into `sub_batches[r]` consecutive blocks whose pairs only see each other as negatives.

    Equals `symmetric_info_nce(u, v, tau, "dot", negatives=sub_batch_mask(...))` (the mean
    of the blocks' losses) but runs the fused loss on `[R, B, B]` logits and the split
    replicas on their blocks, instead of a masked loss for every replica.
    """
    loss = symmetric_info_nce(u, v, tau, kind="dot")
    for s in sorted(set(sub_batches) - {1}):
        rows = torch.tensor([r for r, sr in enumerate(sub_batches) if sr == s], device=u.device)
        n, b = len(rows), u.shape[-2] // s
        blocks = symmetric_info_nce(
            u[rows].reshape(n * s, b, -1),
            v[rows].reshape(n * s, b, -1),
            tau[rows].repeat_interleave(s),
            kind="dot",
        )
        loss = loss.index_put((rows,), blocks.reshape(n, s).mean(1))
    return loss


@dataclass
class Training:
    """One training pass before its first step: the encoders (`fit`, untrained), the
    `objective` of a `[R, batch_size]` minibatch of pair indices (the loss per replica and
    the named scalars to record; with `cfg.batches == "fixed"` it ignores them and takes
    the authors' fixed consecutive batches, one per call), and the optimizer's parameter
    `groups` (the encoders at `cfg.lr` with `cfg.weight_decay`; log(τ − floor) at
    `cfg.tau_lr` with `cfg.tau_weight_decay`)."""

    fit: IntrinsicFit
    objective: Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]]
    groups: list[dict]


def training_objective(
    cfg: IntrinsicDimConfig,
    train_pairs: SharedLatentSample,
    reference: SharedLatentSample,
    out_widths: Sequence[int],
    fixed_taus: Sequence[float | None],
    replicas: Replicas,
    seed: int = 0,
    sub_batches: Sequence[int] | None = None,
    n_samples: Sequence[int] | None = None,
    mispaired: Sequence[float] | None = None,
) -> Training:
    """The encoders, objective and parameter groups that `fit_encoders` trains (its
    arguments, without the monitor): one optimizer step is `objective(batch)` summed
    over replicas, backward, and Adam on `groups`."""
    ids = replica_ids(replicas)
    n_rep = len(ids)
    sub_batches = list(sub_batches or [1] * n_rep)
    for name, seq in (
        ("out_widths", out_widths),
        ("fixed_taus", fixed_taus),
        ("sub_batches", sub_batches),
    ):
        if len(seq) != n_rep:
            raise ValueError(f"{name} has {len(seq)} entries, replicas {n_rep}")
    n_all = len(train_pairs)
    n_samples = list(n_samples or [n_all] * n_rep)
    if len(n_samples) != n_rep:
        raise ValueError(f"n_samples has {len(n_samples)} entries, replicas {n_rep}")
    for n_r in n_samples:
        check_range("n_samples", n_r, cfg.batch_size, n_all, integer=True)
    mispaired = list(mispaired or [0.0] * n_rep)
    if len(mispaired) != n_rep:
        raise ValueError(f"mispaired has {len(mispaired)} entries, replicas {n_rep}")
    for share in mispaired:
        check_range("mispaired", share, 0.0, 1.0)
    for t in fixed_taus:
        if t is not None:
            check_range("fixed tau", t, 2 * cfg.tau_floor, None)
    for s in sub_batches:
        if cfg.batch_size % s:
            raise ValueError(f"sub_batches={s} must divide batch_size={cfg.batch_size}")
    device = train_pairs.x.device
    width = max(out_widths)
    dim_x, dim_y = train_pairs.x.shape[-1], train_pairs.y.shape[-1]
    f, g = encoder_pair(
        dim_x, dim_y, cfg.hidden, width, ids, seed, device=device, out_widths=list(out_widths)
    )
    tau = LearnedTemperature(
        n_rep, cfg.tau_init, floor=cfg.tau_floor, max_inverse=1.0 / cfg.tau_floor
    ).to(device)
    fixed = torch.tensor([math.nan if t is None else t for t in fixed_taus], device=device)
    fit = IntrinsicFit(
        f, g, tau, list(out_widths), fixed, sub_batches, cfg.normalization, reference, History()
    )

    def rows(a: Tensor, batch: Tensor) -> Tensor:  # [R, B] indices into [n, ·] or [R, n, ·]
        if a.ndim == 2:
            return a[batch]
        return torch.gather(a, 1, batch[..., None].expand(-1, -1, a.shape[-1]))

    subsets = {r: n_r for r, n_r in enumerate(n_samples) if n_r < n_all}
    draws = {r: stream(seed, "minibatch/subset", ids[r], device) for r in subsets}
    orders: dict[int, Tensor] = {}
    cursors = dict.fromkeys(subsets, 0)

    def restrict(batch: Tensor) -> Tensor:  # replica r's rows: its own first n_r pairs
        if not subsets:
            return batch
        batch = batch.clone()
        for r, n_r in subsets.items():
            if r not in orders or cursors[r] + cfg.batch_size > n_r:
                orders[r], cursors[r] = draws[r].randperm(n_r), 0
            batch[r] = orders[r][cursors[r] : cursors[r] + cfg.batch_size]
            cursors[r] += cfg.batch_size
        return batch

    step = 0
    offsets = torch.arange(cfg.batch_size, device=device)
    blocks = torch.tensor([n_r // cfg.batch_size for n_r in n_samples], device=device)

    def consecutive() -> Tensor:  # the authors' batches: block (step mod n_r // B) of each
        nonlocal step
        batch = (step % blocks)[:, None] * cfg.batch_size + offsets
        step += 1
        return batch

    noisy = {r: share for r, share in enumerate(mispaired) if share > 0}
    coins = {r: stream(seed, "minibatch/mispair", ids[r], device) for r in noisy}

    def repair(batch: Tensor) -> Tensor:  # a share of each noisy replica's y: random rows
        if not noisy:
            return batch
        batch = batch.clone()
        for r, share in noisy.items():
            swap = coins[r].rand(cfg.batch_size) < share
            batch[r] = torch.where(
                swap, coins[r].randint(n_samples[r], (cfg.batch_size,)), batch[r]
            )
        return batch

    def objective(batch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        batch = consecutive() if cfg.batches == "fixed" else restrict(batch)
        t = fit.tau()
        u = fit.embed_x(rows(train_pairs.x, batch))
        v = fit.embed_y(rows(train_pairs.y, repair(batch)))
        return sub_batch_info_nce(u, v, t, sub_batches), {"tau": t.detach()}

    groups = [
        {"params": [*f.parameters(), *g.parameters()]},
        {"params": [tau.log_excess], "lr": cfg.tau_lr, "weight_decay": cfg.tau_weight_decay},
    ]
    return Training(fit, objective, groups)


def fit_encoders(
    cfg: IntrinsicDimConfig,
    train_pairs: SharedLatentSample,
    reference: SharedLatentSample,
    out_widths: Sequence[int],
    fixed_taus: Sequence[float | None],
    replicas: Replicas,
    seed: int = 0,
    sub_batches: Sequence[int] | None = None,
    n_samples: Sequence[int] | None = None,
    mispaired: Sequence[float] | None = None,
    monitor: SharedLatentSample | None = None,
    monitor_rows: Sequence[int] | None = None,
    desc: str = "training",
) -> IntrinsicFit:
    """Train MLP encoders with the symmetric InfoNCE loss, one replica per `out_widths` entry.

    `fixed_taus[r]` is replica r's fixed temperature, or None to learn it from
    `cfg.tau_init` (τ = floor + exp(s), with its own learning rate `cfg.tau_lr` and Adam's
    L2 coefficient `cfg.tau_weight_decay` on s). `cfg.batches == "fixed"` trains on the
    authors' fixed consecutive batches (replica r cycles through blocks of its first
    `n_samples[r]` pairs in order, never reshuffled) instead of reshuffled ones.
    `replicas` are the replica ids (`nets.replica_ids`): replica id i draws its initial
    weights and its minibatch order from its own streams, so runs that share
    an id share both. Samples may be shared (`[n, dim]`) or one world per replica
    (`[R, n, dim]`); `reference` holds the held-out inputs of the mean-norm rescaling.
    With `monitor` (test pairs), every `cfg.monitor_every` epochs and at the start the
    history records `alignment_ratio` (see `measures.alignment_ratio`) of every replica
    and `id` (the paper's MLE of f(X)) of the replicas `monitor_rows` (default: all); the
    history always records the loss and τ.

    `n_samples[r]` (default: all) restricts replica r to the first `n_samples[r]` training
    pairs: its minibatches are then drawn without replacement, epoch by epoch over those
    pairs, from the stream (`seed`, "minibatch/subset", replica id), so every replica takes
    the same number of steps of distinct pairs whatever its number of samples.
    """
    run = training_objective(
        cfg,
        train_pairs,
        reference,
        out_widths,
        fixed_taus,
        replicas,
        seed,
        sub_batches,
        n_samples,
        mispaired,
    )
    fit = run.fit
    watched = list(range(len(out_widths))) if monitor_rows is None else list(monitor_rows)

    def evaluate() -> dict[str, object]:
        u, v = fit.embed_x(monitor.x), fit.embed_y(monitor.y)
        widths = [out_widths[r] for r in watched]
        return {
            "id": id_estimates(u[watched], widths, cfg.id_neighbors)["mean"],
            "alignment_ratio": alignment_ratio(u, v),
        }

    steps_per_epoch = cfg.n_train // cfg.batch_size
    fit.history = train(
        run.objective,
        run.groups,
        cfg.steps,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        n_samples=len(train_pairs),
        batch_size=cfg.batch_size,
        seed=seed,
        replicas=replica_ids(replicas),
        evaluate=None if monitor is None else evaluate,
        eval_every=cfg.monitor_every * steps_per_epoch,
        record_every=cfg.record_every,
        desc=desc,
    )
    return fit
