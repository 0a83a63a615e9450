"""Chapter 02's worlds: image–text co-occurrence and its matrix factorization (Zhang et al., 2023).

A finite world is a joint P_M over image states (rows) and text states (columns). Its
normalized co-occurrence matrix P̃ = D_V^{-1/2} P_M D_L^{-1/2} is what the multimodal
spectral contrastive loss factorizes. Two images are linked when they share a text: the
text-induced image graph A_V = P_M D_L^{-1} P_Mᵀ, whose normalized form is P̃P̃ᵀ. An
augmentation is the same construction with augmented views as rows and natural images as
the shared "texts", so one set of functions measures both.

The caption world: images in R^(signal_dims + nuisance_dims) whose class sets the signal
coordinates; each class owns a pool of captions; each image gets m captions, each from a
wrong class with probability η. The module also holds consistency (α, φ) and diversity
(spectral gap) measures, the generalization bound, neural MMCL/SSCL encoders and the
CLIP-guided resampling rules of the paper's ImageNet experiment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from torch import Tensor, nn

from mmnb.losses import spectral_contrastive_loss, symmetric_info_nce_logits
from mmnb.nets import MLP
from mmnb.params import check_choice, check_range
from mmnb.probes import linear_probe
from mmnb.train import History, train

__all__ = [
    "PROFILES",
    "RESAMPLING",
    "CaptionWorld",
    "TableFit",
    "assign_captions",
    "augmentation_joint",
    "block_joint",
    "caption_joint",
    "consistency",
    "disagreement",
    "drop_negatives",
    "drop_positives",
    "factor_loss",
    "fit_augmentation_encoder",
    "fit_caption_encoder",
    "fit_student",
    "fit_tables",
    "generalization_bound",
    "graph_report",
    "induced_graph",
    "make_world",
    "normalized_cooccurrence",
    "principal_cosines",
    "projection_head_error",
    "resampling_loss",
    "sample_images",
    "select_new_positive",
    "spectral_features",
    "spectral_gap",
    "svd_optimum",
    "top_subspace",
    "weighted_factors",
]

RESAMPLING = (
    "simclr",
    "new_positive",
    "drop_false_negative",
    "drop_easy_negative",
    "drop_false_positive",
)

_WORLD = dict(
    n_classes=8,
    signal_dims=8,
    nuisance_dims=16,
    class_sep=2.0,
    signal_noise=0.3,
    captions_per_class=10,
)

# "book" runs in about a minute and a half on one CPU core; "paper" is a larger pool, longer
# training and finer sweeps. The paper's own experiments (ImageNet-100, ResNet-18) are out of
# reach offline; the miniature keeps their structure, not their scale.
PROFILES = {
    "book": dict(
        # (a) SVD recovery on a block-structured joint
        n_images=60,
        n_texts=40,
        blocks=4,
        cross=0.15,
        gap_ranks=[4, 6],
        table_steps=1000,
        table_lr=0.05,
        minibatch_steps=2000,
        minibatch_size=128,
        minibatch_lr=0.01,
        # (b) caption world vs augmentation graphs
        **_WORLD,
        pool_size=400,
        captions_per_image=3,
        caption_noise=0.1,
        noisy_caption_noise=0.4,
        aug_weak=1.0,
        aug_strong=4.0,
        noise_grid=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
        m_grid=[1, 2, 3, 5, 8],
        scale_grid=[0.5, 1.0, 1.5, 2.0, 4.0, 8.0],
        hidden=64,
        neural_steps=1000,
        neural_batch=128,
        neural_lr=3e-3,
        n_test=2000,
        # (c) CLIP-guided resampling
        student_train=2000,
        student_steps=600,
        student_batch=128,
        student_lr=3e-3,
        student_dim=8,
        student_aug=0.1,
        temperature=0.2,
        false_positive_rate=0.2,
        eval_every=50,
    ),
    "paper": dict(
        n_images=60,
        n_texts=40,
        blocks=4,
        cross=0.15,
        gap_ranks=[4, 6, 8],
        table_steps=8000,
        table_lr=0.05,
        minibatch_steps=20000,
        minibatch_size=512,
        minibatch_lr=0.005,
        **_WORLD,
        pool_size=1000,
        captions_per_image=3,
        caption_noise=0.1,
        noisy_caption_noise=0.4,
        aug_weak=1.0,
        aug_strong=4.0,
        noise_grid=[0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        m_grid=[1, 2, 3, 4, 5, 8, 12],
        scale_grid=[0.5, 1.0, 1.25, 1.5, 1.75, 2.0, 4.0, 8.0],
        hidden=128,
        neural_steps=6000,
        neural_batch=512,
        neural_lr=1e-3,
        n_test=10000,
        student_train=10000,
        student_steps=5000,
        student_batch=512,
        student_lr=1e-3,
        student_dim=8,
        student_aug=0.1,
        temperature=0.2,
        false_positive_rate=0.2,
        eval_every=250,
    ),
}


# --- the normalized co-occurrence matrix and its factorization -------------------------------


def block_joint(
    n_images: int = 60,
    n_texts: int = 40,
    n_classes: int = 4,
    cross: float = 0.15,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A block-structured joint P_M (`[n_images, n_texts]`, float64) with random weights.

    Image i and text j belong to class i mod C and j mod C; a pair of the same class has
    weight 1, of different classes `cross`, each times a random factor in [0.5, 1.5).
    """
    check_range("n_classes", n_classes, 1, None, integer=True)
    check_range("n_images", n_images, n_classes, None, integer=True)
    check_range("n_texts", n_texts, n_classes, None, integer=True)
    check_range("cross", cross, 0.0, 1.0)
    same = (torch.arange(n_images)[:, None] % n_classes) == (torch.arange(n_texts) % n_classes)
    weights = 0.5 + torch.rand(n_images, n_texts, generator=generator, dtype=torch.float64)
    joint = torch.where(same, 1.0, cross).double() * weights
    return joint / joint.sum()


def normalized_cooccurrence(joint: Tensor) -> Tensor:
    """P̃ = D_V^{-1/2} P_M D_L^{-1/2}; rows or columns of zero mass give zero entries."""
    joint = torch.as_tensor(joint, dtype=torch.float64)
    p_v, p_l = joint.sum(1), joint.sum(0)
    inv_v = torch.where(p_v > 0, p_v.clamp_min(1e-300).rsqrt(), 0.0)
    inv_l = torch.where(p_l > 0, p_l.clamp_min(1e-300).rsqrt(), 0.0)
    return inv_v[:, None] * joint * inv_l[None, :]


def weighted_factors(f: Tensor, p: Tensor) -> Tensor:
    """F with rows √p(x) f(x)ᵀ: the encoder seen as a factor of P̃ (`f` is `[..., N, k]`)."""
    return p.to(f).sqrt()[:, None] * f


def factor_loss(f_v: Tensor, f_l: Tensor, joint: Tensor) -> Tensor:
    """‖P̃ − F_V F_Lᵀ‖²_F − ‖P̃‖²_F, equal to the population spectral contrastive loss."""
    joint = joint.to(f_v)
    p_tilde = normalized_cooccurrence(joint).to(f_v)
    prod = weighted_factors(f_v, joint.sum(1)) @ weighted_factors(f_l, joint.sum(0)).mT
    return (p_tilde - prod).square().sum((-1, -2)) - p_tilde.square().sum()


def svd_optimum(joint: Tensor, k: int) -> SimpleNamespace:
    """The Eckart–Young optimum of rank k: singular values, U_k, V_k, P̃_k and min loss −Σσ_i²."""
    p_tilde = normalized_cooccurrence(joint)
    check_range("k", k, 1, min(p_tilde.shape), integer=True)
    u, s, vh = torch.linalg.svd(p_tilde, full_matrices=False)
    best = u[:, :k] * s[:k] @ vh[:k]
    return SimpleNamespace(
        s=s, u=u[:, :k], v=vh[:k].T, best=best, min_loss=float(-s[:k].square().sum())
    )


def principal_cosines(a: Tensor, b: Tensor) -> Tensor:
    """Cosines of the principal angles between the column spans of `a` and `b` (`[..., N, k]`)."""
    qa, _ = torch.linalg.qr(a.double())
    qb, _ = torch.linalg.qr(b.double().to(qa.device))
    return torch.linalg.svdvals(qa.mT @ qb)


@dataclass
class TableFit:
    """Free embedding tables f_V `[R, N_V, k]`, f_L `[R, N_L, k]` and the training history."""

    f_v: Tensor
    f_l: Tensor
    history: History


def fit_tables(
    joint: Tensor,
    k: int,
    steps: int,
    lr: float,
    n_replicas: int = 1,
    seed: int = 0,
    batch_size: int | None = None,
    eval_every: int = 100,
    desc: str = "tables",
) -> TableFit:
    """Minimize the spectral contrastive loss over free tables f_V, f_L by Adam.

    `batch_size=None` uses the exact population loss; otherwise each step draws
    `batch_size` pairs from the joint per replica and uses the minibatch estimator (the
    pairs are positives, the off-diagonal combinations negatives). The history records
    `loss_population` and `subspace_min_cos` (the smallest principal cosine to U_k).
    """
    device = joint.device
    joint = joint.double()
    best = svd_optimum(joint, k)
    init_v, init_l = [], []
    for r in range(n_replicas):
        gen = torch.Generator().manual_seed(seed + r)
        init_v.append(0.1 * torch.randn(joint.shape[0], k, generator=gen, dtype=torch.float64))
        init_l.append(0.1 * torch.randn(joint.shape[1], k, generator=gen, dtype=torch.float64))
    f_v = nn.Parameter(torch.stack(init_v).to(device))
    f_l = nn.Parameter(torch.stack(init_l).to(device))
    gen = torch.Generator(device=device).manual_seed(seed)
    flat = joint.reshape(-1).expand(n_replicas, -1)
    rows = torch.arange(n_replicas, device=device)[:, None]

    def objective(_: Tensor | None) -> Tensor:
        if batch_size is None:
            return spectral_contrastive_loss(f_v, f_l, joint)
        idx = torch.multinomial(flat, batch_size, replacement=True, generator=gen)
        v, l_ = idx // joint.shape[1], idx % joint.shape[1]
        return spectral_contrastive_loss(f_v[rows, v], f_l[rows, l_])

    def evaluate() -> dict[str, Tensor]:
        cos = principal_cosines(weighted_factors(f_v, joint.sum(1)), best.u)
        return {
            "loss_population": spectral_contrastive_loss(f_v, f_l, joint),
            "subspace_min_cos": cos.min(-1).values,
        }

    history = train(
        objective, [f_v, f_l], steps, lr=lr, evaluate=evaluate, eval_every=eval_every, desc=desc
    )
    return TableFit(f_v.detach(), f_l.detach(), history)


# --- graphs, consistency, diversity and the bound -------------------------------------------


def induced_graph(joint: Tensor) -> Tensor:
    """A_V(x, x') = Σ_l P_M(x, l) P_M(x', l) / P_L(l): rows linked by a shared column."""
    joint = torch.as_tensor(joint, dtype=torch.float64)
    p_l = joint.sum(0)
    inv = torch.where(p_l > 0, 1.0 / p_l.clamp_min(1e-300), 0.0)
    return (joint * inv) @ joint.T


def top_subspace(
    joint: Tensor, k: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Top-k left singular vectors U_k of P̃ and all singular values.

    When σ_k is tied with σ_{k+1} (relative 1e-9), every k-dimensional subspace of the tied
    eigenspace is optimal; one is drawn uniformly at random with `generator`.
    """
    u, s, _ = torch.linalg.svd(normalized_cooccurrence(joint.cpu()), full_matrices=False)
    check_range("k", k, 1, len(s), integer=True)
    tied = ((s - s[k - 1]).abs() <= 1e-9 * s[0]).nonzero().flatten()
    first, last = int(tied.min()), int(tied.max()) + 1
    if last > k:
        g = torch.randn(last - first, last - first, generator=generator, dtype=torch.float64)
        q, _ = torch.linalg.qr(g)
        u = torch.cat([u[:, :first], u[:, first:last] @ q[:, : k - first]], 1)
    return u[:, :k], s


def spectral_features(joint: Tensor, k: int, generator: torch.Generator | None = None) -> Tensor:
    """The optimal row encoder f(x) = U_k(x) Σ_k^{1/2} / √P(x) (up to an invertible map)."""
    u, s = top_subspace(joint, k, generator)
    return u * s[:k].sqrt() / joint.sum(1).double().cpu().sqrt()[:, None]


def spectral_gap(joint: Tensor, k: int) -> float:
    """1 − σ_{k+1}²: the (k+1)-th eigenvalue of the normalized Laplacian of the induced graph."""
    s = torch.linalg.svdvals(normalized_cooccurrence(joint.cpu()))
    return max(0.0, float(1 - s[k].square())) if k < len(s) else 1.0


def consistency(joint: Tensor, row_labels: Tensor, col_labels: Tensor) -> float:
    """α = P[y(row) ≠ y(column)] over pairs drawn from the joint."""
    differ = row_labels[:, None].cpu() != col_labels[None, :].cpu()
    return float((joint.double().cpu() * differ).sum())


def disagreement(graph: Tensor, labels: Tensor) -> float:
    """φ = P[y(x) ≠ y(x')] over the edges (x, x') of a graph of total mass 1."""
    return consistency(graph, labels, labels)


def projection_head_error(
    joint: Tensor, labels: Tensor, k: int, generator: torch.Generator | None = None
) -> float:
    """P_V-weighted error of the linear head ĥ_c = D^{-1/2} Π_k D^{1/2} 1_c on the features.

    Π_k projects on U_k; ĥ is linear in `spectral_features`, and the bound
    `generalization_bound` is proved for it.
    """
    u, _ = top_subspace(joint, k, generator)
    p = joint.sum(1).double().cpu()
    onehot = nn.functional.one_hot(labels.long().cpu()).double()
    target = p.sqrt()[:, None] * onehot  # D^{1/2} 1_c
    scores = (u @ (u.T @ target)) / p.sqrt()[:, None]
    return float((p * (scores.argmax(1) != labels.cpu())).sum())


def generalization_bound(phi: float, gap: float) -> float:
    """2φ / (1 − σ_{k+1}²); infinite when the gap is zero."""
    return 2 * phi / gap if gap > 1e-12 else math.inf


def graph_report(
    joint: Tensor,
    row_labels: Tensor,
    col_labels: Tensor,
    k: int,
    seed: int = 0,
) -> dict[str, float]:
    """Consistency, diversity, bound, head error and a held-out linear probe of one graph.

    The probe is logistic regression on `spectral_features`, fitted on a random half of
    the rows and tested on the other half.
    """
    gen = torch.Generator().manual_seed(seed)
    graph = induced_graph(joint)
    phi, gap = disagreement(graph, row_labels), spectral_gap(joint, k)
    feats = spectral_features(joint, k, gen)
    head = projection_head_error(joint, row_labels, k, gen)
    order = torch.randperm(len(row_labels), generator=gen)
    tr, te = order[: len(order) // 2], order[len(order) // 2 :]
    y = row_labels.cpu()
    probe = linear_probe(feats[tr].float(), y[tr], feats[te].float(), y[te])
    return {
        "alpha": consistency(joint, row_labels, col_labels),
        "phi": phi,
        "gap": gap,
        "bound": generalization_bound(phi, gap),
        "head_error": head,
        "probe_acc": float(probe["test_acc"]),
    }


# --- the caption world -----------------------------------------------------------------------


@dataclass
class CaptionWorld:
    """Class means in the signal coordinates and the sizes of the world."""

    means: Tensor
    nuisance_dims: int
    signal_noise: float
    captions_per_class: int

    @property
    def n_classes(self) -> int:
        return self.means.shape[0]

    @property
    def caption_labels(self) -> Tensor:
        """The class of each caption: caption j belongs to class j // captions_per_class."""
        return torch.arange(self.n_classes * self.captions_per_class) // self.captions_per_class


def make_world(
    cfg: SimpleNamespace, seed: int = 0, device: torch.device | str = "cpu"
) -> CaptionWorld:
    """Class means at distance `class_sep` from each other (a scaled simplex) in the signal dims."""
    check_range("n_classes", cfg.n_classes, 2, None, integer=True)
    check_range("signal_dims", cfg.signal_dims, cfg.n_classes - 1, None, integer=True)
    check_range("nuisance_dims", cfg.nuisance_dims, 0, None, integer=True)
    check_range("class_sep", cfg.class_sep, 0.0, None)
    check_range("signal_noise", cfg.signal_noise, 0.0, None)
    check_range("captions_per_class", cfg.captions_per_class, 1, None, integer=True)
    gen = torch.Generator().manual_seed(seed)
    rot, _ = torch.linalg.qr(torch.randn(cfg.signal_dims, cfg.signal_dims, generator=gen))
    eye = torch.eye(cfg.n_classes, cfg.signal_dims)  # vertices at mutual distance √2
    means = (eye - eye.mean(0)) @ rot * (cfg.class_sep / math.sqrt(2))
    return CaptionWorld(
        means.to(device), cfg.nuisance_dims, cfg.signal_noise, cfg.captions_per_class
    )


def sample_images(
    world: CaptionWorld, n: int, generator: torch.Generator, n_replicas: int | None = None
) -> tuple[Tensor, Tensor]:
    """`n` images x = [μ_y + σ_s ε, ξ] with ξ ~ N(0, I) and a uniform class y.

    Returns x `[n, dim]` and y `[n]` (with `n_replicas`, `[R, n, dim]` and `[R, n]`).
    """
    shape = (n,) if n_replicas is None else (n_replicas, n)
    dev = generator.device
    y = torch.randint(world.n_classes, shape, generator=generator, device=dev)
    eps = torch.randn(*shape, world.means.shape[1], generator=generator, device=dev)
    xi = torch.randn(*shape, world.nuisance_dims, generator=generator, device=dev)
    return torch.cat([world.means[y] + world.signal_noise * eps, xi], -1), y


def assign_captions(
    world: CaptionWorld,
    labels: Tensor,
    m: int,
    eta: float,
    generator: torch.Generator,
) -> Tensor:
    """m caption ids per image `[N, m]`; each from a uniform wrong class with probability η."""
    check_range("captions_per_image", m, 1, None, integer=True)
    check_range("caption_noise", eta, 0.0, 1.0)
    dev = generator.device
    shape = (len(labels), m)
    wrong = torch.rand(shape, generator=generator, device=dev) < eta
    shift = torch.randint(1, world.n_classes, shape, generator=generator, device=dev)
    cls = torch.where(wrong, (labels[:, None] + shift) % world.n_classes, labels[:, None])
    pick = torch.randint(world.captions_per_class, shape, generator=generator, device=dev)
    return cls * world.captions_per_class + pick


def caption_joint(captions: Tensor, n_captions: int) -> Tensor:
    """P_M(x, l): a uniform image and one of its m captions, `[N, n_captions]` float64."""
    n, m = captions.shape
    joint = torch.zeros(n, n_captions, dtype=torch.float64, device=captions.device)
    joint.scatter_add_(1, captions, torch.full((n, m), 1.0 / (n * m), dtype=torch.float64))
    return joint


def augmentation_joint(x: Tensor, scale: float, p: Tensor | None = None) -> Tensor:
    """P(a, x) = P(x) K_s(a | x): rows are augmented views, columns natural images.

    The Gaussian augmentation x + s·ε is snapped to the pool: K_s(a | x) ∝
    exp(−‖x_a − x‖² / 2s²) over the pool points a. The induced graph of this joint links
    two views of the same image, the positive pairs of SSCL (HaoChen et al.).
    """
    check_range("scale", scale, 1e-6, None)
    x = x.double()
    logits = -torch.cdist(x, x).square() / (2 * scale**2)  # [x, a]
    kernel = torch.softmax(logits, dim=1)
    p = torch.full((len(x),), 1.0 / len(x), dtype=torch.float64) if p is None else p.double()
    return (p.to(x.device)[:, None] * kernel).T


# --- neural encoders on sampled losses -------------------------------------------------------


def fit_caption_encoder(
    x: Tensor,
    captions: Tensor,
    world: CaptionWorld,
    cfg: SimpleNamespace,
    n_replicas: int,
    seed: int = 0,
    desc: str = "MMCL encoder",
) -> tuple[MLP, Tensor, History]:
    """MMCL: an image MLP and a caption embedding table trained on the minibatch spectral loss.

    Each step draws, per replica, `neural_batch` images and one of each image's captions.
    Returns the image encoder, the caption table `[R, n_captions, k]` and the history.
    """
    dev = x.device
    k = world.n_classes
    f = MLP(x.shape[-1], [cfg.hidden], k, n_replicas, seed, device=dev)
    n_cap = world.n_classes * world.captions_per_class
    g0 = torch.randn(n_replicas, n_cap, k, generator=torch.Generator().manual_seed(seed + 1))
    g = nn.Parameter(0.1 * g0.to(dev))
    gen = torch.Generator(device=dev).manual_seed(seed)
    rows = torch.arange(n_replicas, device=dev)[:, None]
    n, m = captions.shape

    def objective(_: Tensor | None) -> Tensor:
        i = torch.randint(n, (n_replicas, cfg.neural_batch), generator=gen, device=dev)
        j = torch.randint(m, (n_replicas, cfg.neural_batch), generator=gen, device=dev)
        return spectral_contrastive_loss(f(x[i]), g[rows, captions[i, j]])

    history = train(objective, [f, g], cfg.neural_steps, lr=cfg.neural_lr, desc=desc)
    return f, g.detach(), history


def fit_augmentation_encoder(
    x: Tensor,
    scale: float,
    world: CaptionWorld,
    cfg: SimpleNamespace,
    n_replicas: int,
    seed: int = 0,
    desc: str = "SSCL encoder",
) -> tuple[MLP, History]:
    """SSCL: one MLP on two Gaussian views x + s·ε of the same image, minibatch spectral loss."""
    check_range("scale", scale, 0.0, None)
    dev = x.device
    f = MLP(x.shape[-1], [cfg.hidden], world.n_classes, n_replicas, seed, device=dev)
    gen = torch.Generator(device=dev).manual_seed(seed)

    def objective(_: Tensor | None) -> Tensor:
        i = torch.randint(len(x), (n_replicas, cfg.neural_batch), generator=gen, device=dev)
        views = x[i].expand(2, -1, -1, -1)
        views = views + scale * torch.randn(views.shape, generator=gen, device=dev)
        return spectral_contrastive_loss(f(views[0]), f(views[1]))

    history = train(objective, f, cfg.neural_steps, lr=cfg.neural_lr, desc=desc)
    return f, history


# --- CLIP-guided resampling (the paper's ImageNet experiment, in miniature) ------------------


def select_new_positive(teacher_sim: Tensor) -> Tensor:
    """AddNewPositive: for each anchor i, the other sample j ≠ i the teacher finds most similar."""
    n = teacher_sim.shape[-1]
    eye = torch.eye(n, dtype=torch.bool, device=teacher_sim.device)
    return teacher_sim.masked_fill(eye, -math.inf).argmax(-1)


def drop_negatives(teacher_sim: Tensor, fraction: float, largest: bool) -> Tensor:
    """Mask of kept negatives: drop each row's `fraction` of negatives j ≠ i with the largest
    (DropFalseNegative) or smallest (DropEasyNegative) teacher similarity."""
    check_range("fraction", fraction, 0.0, 1.0)
    n = teacher_sim.shape[-1]
    n_drop = int(round(fraction * (n - 1)))
    eye = torch.eye(n, dtype=torch.bool, device=teacher_sim.device)
    keep = ~eye.expand(teacher_sim.shape).clone()
    if n_drop:
        fill = -math.inf if largest else math.inf
        ranked = teacher_sim.masked_fill(eye, fill)
        idx = ranked.topk(n_drop, dim=-1, largest=largest).indices
        keep.scatter_(-1, idx, False)
    return keep


def drop_positives(positive_sim: Tensor, fraction: float) -> Tensor:
    """DropFalsePositive: indices of the pairs kept after dropping the `fraction` of positive
    pairs with the smallest teacher similarity (sorted, `[..., n − n_drop]`)."""
    check_range("fraction", fraction, 0.0, 1.0)
    n = positive_sim.shape[-1]
    n_keep = n - int(round(fraction * n))
    return positive_sim.topk(n_keep, dim=-1).indices.sort(-1).values


def resampling_loss(
    z1: Tensor,
    z2: Tensor,
    teacher_anchor: Tensor,
    teacher_view: Tensor,
    rule: str,
    temperature: float,
) -> Tensor:
    """SimCLR (symmetric InfoNCE between the two views) with a teacher-guided resampling rule.

    `z1`, `z2` are `[R, B, d]` student embeddings of the two views; `teacher_anchor` and
    `teacher_view` the teacher's embeddings of the images the views came from (they differ
    where a second view is a false positive). Rules: `simclr`; `new_positive` (the most
    teacher-similar other sample's view becomes an extra positive, loss ½(SimCLR + new
    term)); `drop_false_negative` (drop each row's top 5% teacher-similar negatives);
    `drop_easy_negative` (drop the bottom 10%); `drop_false_positive` (remove the 10% of
    pairs whose two images the teacher finds least similar).
    """
    check_choice("rule", rule, RESAMPLING)
    z1, z2 = nn.functional.normalize(z1, dim=-1), nn.functional.normalize(z2, dim=-1)
    ta = nn.functional.normalize(teacher_anchor, dim=-1)
    tv = nn.functional.normalize(teacher_view, dim=-1)
    logits = z1 @ z2.mT / temperature
    if rule == "simclr":
        return symmetric_info_nce_logits(logits)
    if rule == "new_positive":
        j = select_new_positive(ta @ ta.mT)[..., None]
        new = torch.logsumexp(logits, -1) - logits.gather(-1, j)[..., 0]
        back = torch.logsumexp(logits.mT, -1) - logits.mT.gather(-1, j)[..., 0]
        return 0.5 * (symmetric_info_nce_logits(logits) + 0.5 * (new + back).mean(-1))
    if rule in ("drop_false_negative", "drop_easy_negative"):
        largest = rule == "drop_false_negative"
        keep = drop_negatives(ta @ tv.mT, 0.05 if largest else 0.10, largest)
        return symmetric_info_nce_logits(logits, keep)
    kept = drop_positives((ta * tv).sum(-1), 0.10)
    n_keep = kept.shape[-1]
    sub = logits.gather(-2, kept[..., None].expand(*kept.shape, logits.shape[-1]))
    sub = sub.gather(-1, kept[..., None, :].expand(*kept.shape, n_keep))
    return symmetric_info_nce_logits(sub)


def fit_student(
    x: Tensor,
    teacher: Tensor,
    rule: str,
    cfg: SimpleNamespace,
    seed: int = 0,
    desc: str = "student",
) -> tuple[MLP, History]:
    """A SimCLR student on Gaussian views of its training images `x` `[R, N, dim]`.

    A fraction `false_positive_rate` of second views come from another random image;
    `teacher` `[R, N, e]` holds the teacher's embedding of every training image.
    """
    check_choice("rule", rule, RESAMPLING)
    check_range("false_positive_rate", cfg.false_positive_rate, 0.0, 1.0)
    r_count, n, dim = x.shape
    dev = x.device
    f = MLP(dim, [cfg.hidden, cfg.hidden], cfg.student_dim, r_count, seed, device=dev)
    gen = torch.Generator(device=dev).manual_seed(seed)
    rows = torch.arange(r_count, device=dev)[:, None]
    shape = (r_count, cfg.student_batch)

    def objective(_: Tensor | None) -> Tensor:
        i = torch.randint(n, shape, generator=gen, device=dev)
        other = torch.randint(n, shape, generator=gen, device=dev)
        swap = torch.rand(shape, generator=gen, device=dev) < cfg.false_positive_rate
        j = torch.where(swap, other, i)
        v1 = x[rows, i] + cfg.student_aug * torch.randn(*shape, dim, generator=gen, device=dev)
        v2 = x[rows, j] + cfg.student_aug * torch.randn(*shape, dim, generator=gen, device=dev)
        return resampling_loss(
            f(v1), f(v2), teacher[rows, i], teacher[rows, j], rule, cfg.temperature
        )

    history = train(objective, f, cfg.student_steps, lr=cfg.student_lr, desc=desc)
    return f, history
