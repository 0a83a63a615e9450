"""Chapter 03's worlds: joints whose pointwise mutual information is known exactly.

The ring on Z_n: x is uniform and y = x + δ (mod n), with δ drawn from a mixture of a
wrapped discrete Gaussian and the uniform distribution. Its PMI matrix is circulant
and of high rank. The continuous world: x ~ N(0, I), y = ρx + √(1 − ρ²)ε, whose PMI is
an exact quadratic. The module also holds the measurements of the chapter (PMI fit,
oracle loss, Bayes cross-entropy, the KL bound) and its three training runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from torch import Tensor, nn

from mmnb.losses import (
    MIX_WEIGHTS,
    LearnedTemperature,
    kernel_similarity,
    kernel_similarity_rff,
    symmetric_info_nce_logits,
)
from mmnb.nets import MLP
from mmnb.params import check_choice, check_range
from mmnb.train import History, train

__all__ = [
    "KINDS",
    "PROFILES",
    "EmbeddingFit",
    "GaussianFit",
    "TableFit",
    "batch_logits",
    "batch_loss",
    "bayes_cross_entropy",
    "class_labels",
    "expected_loss",
    "fit_embeddings",
    "fit_gaussian",
    "fit_table",
    "gaussian_mutual_information",
    "gaussian_pmi",
    "kl_bound",
    "mutual_information",
    "oracle_loss",
    "pair_counts",
    "pmi",
    "pmi_fit",
    "probe_cross_entropy",
    "prototype_cross_entropy",
    "rank_ceiling",
    "ring_joint",
    "sample_gaussian_pairs",
    "sample_pairs",
]

KINDS = ("cosine", "gauss", "mix")

PROFILES = {
    "book": dict(
        n_states=64,
        width=1.5,
        uniform_mix=0.1,
        batch_size=256,
        table_steps=4000,
        table_lr=0.01,
        batch_sizes=[64, 256, 1024],
        pairs_seen=2**19,
        batch_lr=0.02,
        embed_dims=[4, 8, 16],
        embed_steps=3000,
        embed_lr=0.03,
        kernel="exact",
        n_features=1024,
        sigma=0.5,
        oracle_batches=400,
        rho=0.8,
        gauss_hidden=64,
        gauss_dim=8,
        gauss_steps=1500,
        gauss_batch=256,
        gauss_lr=3e-3,
        eval_every=100,
    ),
    "paper": dict(
        n_states=64,
        width=1.5,
        uniform_mix=0.1,
        batch_size=256,
        table_steps=16000,
        table_lr=0.01,
        batch_sizes=[16, 64, 256, 1024],
        pairs_seen=2**21,
        batch_lr=0.02,
        embed_dims=[2, 4, 8, 16, 32],
        embed_steps=10000,
        embed_lr=0.03,
        kernel="rff",
        n_features=1024,
        sigma=0.5,
        oracle_batches=4000,
        rho=0.8,
        gauss_hidden=256,
        gauss_dim=16,
        gauss_steps=8000,
        gauss_batch=512,
        gauss_lr=1e-3,
        eval_every=200,
    ),
}


# --- the ring joint and its information quantities -----------------------------------------


def ring_joint(n_states: int = 64, width: float = 1.5, uniform_mix: float = 0.1) -> Tensor:
    """The joint p(x, y) on Z_n × Z_n as an `[n, n]` float64 tensor (rows x, columns y).

    x is uniform and y − x (mod n) follows
    (1 − `uniform_mix`) · wrapped discrete Gaussian(width) + `uniform_mix` · uniform.
    """
    check_range("n_states", n_states, 2, 4096, integer=True)
    check_range("width", width, 1e-3, None)
    check_range("uniform_mix", uniform_mix, 0.0, 1.0)
    delta = torch.arange(n_states, dtype=torch.float64)
    wraps = torch.arange(-3, 4, dtype=torch.float64)[:, None] * n_states
    dist = delta[None, :] + wraps  # every δ with its images under wrapping
    bump = torch.exp(-(dist**2) / (2 * width**2)).sum(0)
    noise = (1 - uniform_mix) * bump / bump.sum() + uniform_mix / n_states
    offsets = (delta[None, :] - delta[:, None]).remainder(n_states).long()  # (y − x) mod n
    return noise[offsets] / n_states


def pmi(joint: Tensor) -> Tensor:
    """PMI(x, y) = log p(x, y) − log p(x) − log p(y) of a joint table."""
    joint = torch.as_tensor(joint, dtype=torch.float64)
    return joint.log() - joint.sum(1, keepdim=True).log() - joint.sum(0, keepdim=True).log()


def mutual_information(joint: Tensor) -> float:
    """I(X; Y) = E_p PMI in nats."""
    joint = torch.as_tensor(joint, dtype=torch.float64)
    return float((joint * pmi(joint)).sum())


def sample_pairs(
    joint: Tensor, n_replicas: int, batch_size: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """`batch_size` pairs from the joint for each replica: indices x, y of shape `[R, K]`."""
    flat = joint.reshape(-1).float().to(generator.device)
    idx = torch.multinomial(flat.expand(n_replicas, -1), batch_size, True, generator=generator)
    n = joint.shape[1]
    return idx // n, idx % n


def batch_logits(table: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """The `[R, K, K]` logits `table[r, x[r, i], y[r, j]]` of one batch per replica."""
    r = torch.arange(table.shape[0], device=table.device)[:, None, None]
    return table[r, x[:, :, None], y[:, None, :]]


def pair_counts(x: Tensor, y: Tensor, n_states: int) -> Tensor:
    """How often each cell (x, y) occurs in each replica's batch: `[R, n, n]` counts."""
    r_count = x.shape[0]
    flat = (torch.arange(r_count, device=x.device)[:, None] * n_states + x) * n_states + y
    counts = torch.bincount(flat.reshape(-1), minlength=r_count * n_states * n_states)
    return counts.view(r_count, n_states, n_states).to(torch.get_default_dtype())


def batch_loss(table: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Symmetric InfoNCE of one batch per replica, computed from the cell counts.

    Equal to `symmetric_info_nce_logits(batch_logits(table, x, y))`, but a row's
    log-sum-exp only depends on its x and on how often each y occurs in the batch, so
    the cost is that of the `[R, n, n]` table, not of the `[R, K, K]` logit matrix.
    """
    k = x.shape[1]
    counts = pair_counts(x, y, table.shape[-1]).to(table)
    m, n = counts.sum(2), counts.sum(1)  # how often each x, each y occurs
    rows = torch.logsumexp(table + n.log()[:, None, :], dim=2)  # [R, n_x]
    cols = torch.logsumexp(table + m.log()[:, :, None], dim=1)  # [R, n_y]
    positive = (counts * table).sum((1, 2))
    return (0.5 * ((m * rows).sum(1) + (n * cols).sum(1)) - positive) / k


def expected_loss(
    table: Tensor, joint: Tensor, batch_size: int, n_batches: int = 200, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Monte-Carlo expectation of the symmetric InfoNCE loss of a logit table.

    `table` is `[n, n]` or `[R, n, n]`. Every call with the same seed uses the same
    batches (common random numbers), so differences between tables are precise.
    Returns the mean and its standard error, each of shape `[R]` (or scalars).
    """
    squeeze = table.ndim == 2
    table = table[None] if squeeze else table
    gen = torch.Generator(device=table.device).manual_seed(seed)
    chunk = max(1, 2**20 // (batch_size * table.shape[-1]))
    losses = []
    for start in range(0, n_batches, chunk):
        m = min(chunk, n_batches - start)
        x, y = sample_pairs(joint.to(table.device), m, batch_size, gen)
        per = [batch_loss(t.expand(m, -1, -1), x, y) for t in table.double()]
        losses.append(torch.stack(per))
    all_losses = torch.cat(losses, 1)
    mean, se = all_losses.mean(1), all_losses.std(1) / math.sqrt(all_losses.shape[1])
    return (mean[0], se[0]) if squeeze else (mean, se)


def oracle_loss(
    joint: Tensor, batch_size: int, n_batches: int = 200, seed: int = 0
) -> tuple[float, float]:
    """The smallest expected symmetric InfoNCE loss for batches of size K: that of PMI logits.

    Returns (mean, standard error) of the Monte-Carlo estimate.
    """
    check_range("batch_size", batch_size, 2, None, integer=True)
    mean, se = expected_loss(pmi(joint).float(), joint, batch_size, n_batches, seed)
    return float(mean), float(se)


def pmi_fit(logits: Tensor, target: Tensor, weights: Tensor | None = None) -> dict[str, Tensor]:
    """Weighted correlation and RMSE of `logits` (`[..., n, m]`) against a PMI matrix.

    Both are centred by their `weights`-mean first (weights default to uniform; for the
    ring use p(x)p(y)), so the free constant of the optimum does not count.
    Returns `corr` and `rmse`, one value per replica.
    """
    logits = torch.as_tensor(logits).double()
    target = torch.as_tensor(target, dtype=torch.float64).to(logits.device)
    if weights is None:
        weights = torch.ones_like(target)
    w = torch.as_tensor(weights, dtype=torch.float64).to(logits.device)
    w = w / w.sum()

    def centred(a: Tensor) -> Tensor:
        return a - (w * a).sum((-1, -2), keepdim=True)

    a, b = centred(logits), centred(target)
    cov = (w * a * b).sum((-1, -2))
    corr = cov / ((w * a * a).sum((-1, -2)) * (w * b * b).sum((-1, -2))).sqrt()
    rmse = (w * (a - b) ** 2).sum((-1, -2)).sqrt()
    return {"corr": corr, "rmse": rmse}


def rank_ceiling(target: Tensor, rank: int) -> float:
    """Best correlation with the centred `target` reachable by any matrix of rank ≤ `rank`.

    By Eckart–Young it is √(Σ_{i≤rank} σ_i² / Σ_i σ_i²) of the singular values σ of
    the centred target (uniform weights, as for the ring).
    """
    target = torch.as_tensor(target, dtype=torch.float64)
    s2 = torch.linalg.svdvals(target - target.mean()).square()
    return float((s2[:rank].sum() / s2.sum()).sqrt())


# --- the downstream task ---------------------------------------------------------------------


def class_labels(n_states: int = 64, n_classes: int = 8) -> Tensor:
    """The label c(y) = ⌊n_classes · y / n_states⌋ of every text state y."""
    return torch.arange(n_states) * n_classes // n_states


def _label_matrix(labels: Tensor) -> Tensor:
    return nn.functional.one_hot(labels.long()).double()  # [n_y, C]


def bayes_cross_entropy(joint: Tensor, labels: Tensor) -> float:
    """H(C | X) = −E log p(c | x): the cross-entropy of the best possible classifier of x."""
    p_xc = joint.double() @ _label_matrix(labels)
    p_c_x = p_xc / p_xc.sum(1, keepdim=True)
    return float(-(p_xc * p_c_x.log()).sum())


def kl_bound(joint: Tensor, labels: Tensor) -> float:
    """E_{x,c} KL(p(y | c) ‖ p(y | x, c)), the bound on the prototype classifier's excess CE."""
    joint = joint.double()
    onehot = _label_matrix(labels)
    p_y = joint.sum(0)
    p_y_c = onehot * p_y[:, None] / (onehot * p_y[:, None]).sum(0)  # [y, c]
    p_x = joint.sum(1, keepdim=True)
    p_y_x = joint / p_x  # [x, y]
    total = 0.0
    for c in range(onehot.shape[1]):
        prior = p_y_c[:, c]
        cond = p_y_x * onehot[:, c]
        p_c_x = cond.sum(1, keepdim=True)
        cond = cond / p_c_x  # p(y | x, c)
        inside = prior > 0
        kl = (prior[inside] * (prior[inside].log() - cond[:, inside].log())).sum(1)
        total = total + (p_x[:, 0] * p_c_x[:, 0] * kl).sum()
    return float(total)


def _population_ce(class_logits: Tensor, joint: Tensor, labels: Tensor) -> Tensor:
    """Exact cross-entropy E_{x,c} −log softmax(class_logits[x])_c, one value per replica."""
    p_xc = (joint.double() @ _label_matrix(labels)).to(class_logits.device)
    logq = torch.log_softmax(class_logits.double(), -1)
    return -(p_xc * logq).sum((-1, -2))


def prototype_cross_entropy(table: Tensor, joint: Tensor, labels: Tensor) -> Tensor:
    """Exact cross-entropy of the zero-shot prototype classifier built on a logit table.

    The classifier scores class c by the mean similarity to the texts of class c,
    Σ_y p(y | c) table[x, y] (the inner product with the class mean of text features),
    plus log p(c). `table` is `[n, n]` or `[R, n, n]`; returns one value per replica.
    """
    table = torch.as_tensor(table).double()
    onehot = _label_matrix(labels).to(table.device)
    p_y = joint.double().sum(0).to(table.device)
    p_yc = onehot * p_y[:, None]
    p_c = p_yc.sum(0)
    scores = table @ (p_yc / p_c) + p_c.log()
    return _population_ce(scores, joint, labels)


def probe_cross_entropy(
    features: Tensor, joint: Tensor, labels: Tensor, l2: float = 1e-6, iters: int = 500
) -> Tensor:
    """Exact cross-entropy of the best linear probe (multinomial logistic regression).

    `features` is `[n, d]` or `[R, n, d]`, one row per state x; the probe is fitted on
    the population loss (weights p(x, c)) with a small ridge `l2`, by L-BFGS.
    """
    feats = torch.as_tensor(features).detach().double()
    feats = feats[None] if feats.ndim == 2 else feats
    n_classes = int(labels.max()) + 1
    w = torch.zeros(feats.shape[0], feats.shape[2], n_classes, dtype=torch.float64)
    b = torch.zeros(feats.shape[0], 1, n_classes, dtype=torch.float64)
    w, b = w.to(feats.device).requires_grad_(), b.to(feats.device).requires_grad_()
    opt = torch.optim.LBFGS([w, b], max_iter=iters, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = _population_ce(feats @ w + b, joint, labels).sum() + l2 * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return _population_ce(feats @ w + b, joint, labels)


# --- the continuous world --------------------------------------------------------------------


def gaussian_pmi(x: Tensor, y: Tensor, rho: float) -> Tensor:
    """PMI of x ~ N(0, I), y = ρx + √(1 − ρ²)ε, for pairs broadcast along the last axis."""
    check_range("rho", rho, -0.999, 0.999)
    q = 1 - rho**2
    dim = x.shape[-1]
    cross = (x * y).sum(-1)
    xx, yy = x.square().sum(-1), y.square().sum(-1)
    return -0.5 * dim * math.log(q) - (xx + yy - 2 * rho * cross) / (2 * q) + (xx + yy) / 2


def gaussian_mutual_information(rho: float, dim: int = 2) -> float:
    """I(X; Y) = −(dim / 2) log(1 − ρ²)."""
    check_range("rho", rho, -0.999, 0.999)
    return -0.5 * dim * math.log(1 - rho**2)


def sample_gaussian_pairs(
    n: int, rho: float, generator: torch.Generator, dim: int = 2, n_replicas: int | None = None
) -> tuple[Tensor, Tensor]:
    """`n` pairs (x, y) of the correlated Gaussian world (`[R, n, dim]` with `n_replicas`)."""
    shape = (n, dim) if n_replicas is None else (n_replicas, n, dim)
    x = torch.randn(*shape, generator=generator, device=generator.device)
    eps = torch.randn(*shape, generator=generator, device=generator.device)
    return x, rho * x + math.sqrt(1 - rho**2) * eps


# --- training --------------------------------------------------------------------------------


@dataclass
class TableFit:
    """A free logit table per replica, `[R, n, n]`, its tail average and the history.

    `averaged` is the mean of the iterates over the last `average_last` fraction of
    the steps (Polyak averaging), which removes most of the optimizer's fluctuation.
    """

    table: Tensor
    averaged: Tensor
    history: History


def fit_table(
    joint: Tensor,
    batch_size: int,
    steps: int,
    lr: float,
    n_replicas: int = 1,
    seed: int = 0,
    eval_every: int = 100,
    average_last: float = 0.5,
    desc: str = "free table",
) -> TableFit:
    """Train an unrestricted similarity (a free logit table) with symmetric InfoNCE.

    Each replica draws its own batches of `batch_size` pairs from the joint; the
    history records the loss and `corr`, the weighted PMI fit of the current table.
    """
    check_range("batch_size", batch_size, 2, None, integer=True)
    check_range("average_last", average_last, 0.0, 1.0)
    n = joint.shape[0]
    device = joint.device
    tables = []
    for r in range(n_replicas):
        gen = torch.Generator().manual_seed(seed + r)
        tables.append(0.01 * torch.randn(n, n, generator=gen))
    table = nn.Parameter(torch.stack(tables).to(device))
    target, weights = pmi(joint), joint.sum(1, keepdim=True) * joint.sum(0, keepdim=True)
    gen = torch.Generator(device=device).manual_seed(seed)
    start = int(steps * (1 - average_last))
    state = {"step": 0, "sum": torch.zeros_like(table), "count": 0}

    def objective(_: Tensor | None) -> Tensor:
        if state["step"] > start:  # the table after step - 1 updates
            state["sum"] += table.detach()
            state["count"] += 1
        state["step"] += 1
        x, y = sample_pairs(joint, n_replicas, batch_size, gen)
        return batch_loss(table, x, y)

    def evaluate() -> dict[str, Tensor]:
        return {"corr": pmi_fit(table, target, weights)["corr"]}

    history = train(
        objective, [table], steps, lr=lr, evaluate=evaluate, eval_every=eval_every, desc=desc
    )
    final = table.detach().clone()
    averaged = (state["sum"] + final) / (state["count"] + 1)
    return TableFit(final, averaged, history)


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
    history: History

    def logits(self) -> Tensor:
        with torch.no_grad():
            return _logit_table(self.u, self.v, self.temperature(), self.kinds, self.sigma)


def _kind_weights(kinds: Sequence[str], device: torch.device) -> tuple[Tensor, Tensor]:
    pairs = {"cosine": (1.0, 0.0), "gauss": (0.0, 1.0), "mix": MIX_WEIGHTS}
    a = torch.tensor([pairs[k] for k in kinds], device=device)
    return a[:, 0, None, None], a[:, 1, None, None]


def _logit_table(
    u: Tensor,
    v: Tensor,
    tau: Tensor,
    kinds: Sequence[str],
    sigma: float,
    n_features: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """s · g(u_x, v_y) for every replica, exact or (with `n_features`) by random features."""
    a1, a2 = _kind_weights(kinds, u.device)
    cos = kernel_similarity(u, v, "cosine")
    if n_features is None:
        gauss = kernel_similarity(u, v, "gauss", sigma)
    else:
        gauss = kernel_similarity_rff(
            u, v, "gauss", sigma, n_features=n_features, generator=generator
        )
    return (a1 * cos + a2 * gauss) / tau.view(-1, 1, 1)


def fit_embeddings(
    joint: Tensor,
    cfg: SimpleNamespace,
    dim: int,
    kinds: Sequence[str],
    seed: int = 0,
    desc: str = "embeddings",
) -> EmbeddingFit:
    """Train L2-normalized embedding tables of dimension `dim` and a learned temperature.

    One replica per entry of `kinds` (`cosine`, `gauss` or `mix`), replica r seeded
    `seed + r`. With `cfg.kernel == "rff"` the Gaussian part is computed with
    `cfg.n_features` random Fourier features resampled every step.
    """
    for kind in kinds:
        check_choice("kind", kind, KINDS)
    check_choice("kernel", cfg.kernel, ("exact", "rff"))
    check_range("dim", dim, 1, 4096, integer=True)
    n, r_count, device = joint.shape[0], len(kinds), joint.device
    init_u, init_v = [], []
    for r in range(r_count):
        gen = torch.Generator().manual_seed(seed + r)
        init_u.append(torch.randn(n, dim, generator=gen))
        init_v.append(torch.randn(n, dim, generator=gen))
    u = nn.Parameter(torch.stack(init_u).to(device))
    v = nn.Parameter(torch.stack(init_v).to(device))
    tau = LearnedTemperature(r_count, init=1.0).to(device)
    target, weights = pmi(joint), joint.sum(1, keepdim=True) * joint.sum(0, keepdim=True)
    gen = torch.Generator(device=device).manual_seed(seed)
    n_features = cfg.n_features if cfg.kernel == "rff" else None

    def objective(_: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        t = tau()
        table = _logit_table(u, v, t, kinds, cfg.sigma, n_features, gen)
        x, y = sample_pairs(joint, r_count, cfg.batch_size, gen)
        return batch_loss(table, x, y), {"tau": t.detach()}

    def evaluate() -> dict[str, Tensor]:
        table = _logit_table(u, v, tau(), kinds, cfg.sigma)
        return {"corr": pmi_fit(table, target, weights)["corr"]}

    history = train(
        objective,
        [u, v, tau],
        cfg.embed_steps,
        lr=cfg.embed_lr,
        evaluate=evaluate,
        eval_every=cfg.eval_every,
        desc=desc,
    )
    return EmbeddingFit(u.detach(), v.detach(), tau, list(kinds), cfg.sigma, history)


@dataclass
class GaussianFit:
    """MLP encoders f, g of the continuous world (unnormalized inner product) and history."""

    f: MLP
    g: MLP
    history: History

    def logits(self, x: Tensor, y: Tensor) -> Tensor:
        """All-pairs ⟨f(x_i), g(y_j)⟩, `[R, len(x), len(y)]`."""
        with torch.no_grad():
            return self.f(x) @ self.g(y).transpose(-1, -2)


def fit_gaussian(
    cfg: SimpleNamespace, n_replicas: int, seed: int = 0, device: torch.device | str = "cpu"
) -> GaussianFit:
    """Train MLP encoders on fresh Gaussian pairs every step (symmetric InfoNCE, τ = 1).

    The history records the loss and `corr`, the PMI fit on held-out pairs drawn from
    p(x)p(y) (a Monte-Carlo version of the weighted measure).
    """
    check_range("rho", cfg.rho, -0.999, 0.999)
    f = MLP(2, [cfg.gauss_hidden], cfg.gauss_dim, n_replicas, seed, device=device)
    g = MLP(2, [cfg.gauss_hidden], cfg.gauss_dim, n_replicas, seed + 10_000, device=device)
    gen = torch.Generator(device=device).manual_seed(seed)
    held = torch.Generator(device=device).manual_seed(seed + 1)
    xs = torch.randn(512, 2, generator=held, device=device)
    ys = torch.randn(512, 2, generator=held, device=device)
    target = gaussian_pmi(xs[:, None], ys[None, :], cfg.rho)

    def objective(_: Tensor | None) -> Tensor:
        x, y = sample_gaussian_pairs(cfg.gauss_batch, cfg.rho, gen, n_replicas=n_replicas)
        return symmetric_info_nce_logits(f(x) @ g(y).transpose(-1, -2))

    def evaluate() -> dict[str, Tensor]:
        return {"corr": pmi_fit(f(xs) @ g(ys).transpose(-1, -2), target)["corr"]}

    history = train(
        objective,
        [f, g],
        cfg.gauss_steps,
        lr=cfg.gauss_lr,
        evaluate=evaluate,
        eval_every=cfg.eval_every,
        desc="Gaussian world",
    )
    return GaussianFit(f, g, history)
