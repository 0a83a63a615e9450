"""CLIP-guided resampling (the paper's ImageNet experiment, in miniature).

Zhang et al. (2023) let a CLIP model steer SimCLR: inside each batch, the teacher's image
embeddings score every pair of samples, and the score changes which pairs the SimCLR
loss uses (AddNewPositive, DropFalseNegative, DropEasyNegative, DropFalsePositive). The
student here is an MLP trained with SimCLR's InfoNCE on augmented views, a fraction of
whose second views come from another image (false positives).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mmnb.config import check_choice, check_range
from mmnb.losses import symmetric_info_nce_logits
from mmnb.nets import MLP
from mmnb.runtime import DrawAhead, stream
from mmnb.train import History, train
from mmnb.worlds.factorization.config import FactorizationConfig
from mmnb.worlds.factorization.fit import EncoderTraining, noise_draws
from mmnb.worlds.factorization.world import Augmentation

__all__ = [
    "RESAMPLING",
    "Student",
    "StudentFit",
    "drop_negatives",
    "drop_positives",
    "fit_student",
    "fit_students",
    "resampling_loss",
    "select_new_positive",
]

RESAMPLING = (
    "simclr",
    "new_positive",
    "drop_false_negative",
    "drop_easy_negative",
    "drop_false_positive",
)


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
    drop_false_negative: float = 0.05,
    drop_easy_negative: float = 0.10,
    drop_false_positive: float = 0.10,
) -> Tensor:
    """SimCLR (symmetric InfoNCE between the two views) with a teacher-guided resampling rule.

    `z1`, `z2` are `[R, B, d]` student embeddings of the two views; `teacher_anchor` and
    `teacher_view` the teacher's embeddings of the images the views came from (they differ
    where a second view is a false positive). Rules: `simclr`; `new_positive` (the most
    teacher-similar other sample's view becomes an extra positive, loss ½(SimCLR + new
    term)); `drop_false_negative` (drop each row's `drop_false_negative` fraction of most
    teacher-similar negatives; paper: 5%); `drop_easy_negative` (drop the least similar
    `drop_easy_negative`; paper: 10%); `drop_false_positive` (remove the
    `drop_false_positive` fraction of pairs whose two images the teacher finds least
    similar; paper: 10%).
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
    if rule == "drop_false_negative":
        return symmetric_info_nce_logits(
            logits, drop_negatives(ta @ tv.mT, drop_false_negative, True)
        )
    if rule == "drop_easy_negative":
        return symmetric_info_nce_logits(
            logits, drop_negatives(ta @ tv.mT, drop_easy_negative, False)
        )
    kept = drop_positives((ta * tv).sum(-1), drop_false_positive)
    n_keep = kept.shape[-1]
    sub = logits.gather(-2, kept[..., None].expand(*kept.shape, logits.shape[-1]))
    sub = sub.gather(-1, kept[..., None, :].expand(*kept.shape, n_keep))
    return symmetric_info_nce_logits(sub)


@dataclass
class StudentFit:
    """A SimCLR student (one MLP for both views) and its history."""

    encoder: MLP
    history: History


@dataclass(frozen=True)
class Student:
    """One student of `fit_students`: the teacher's embedding of every training image
    `[R, N, e]`, the resampling rule and the fraction of false-positive second views."""

    teacher: Tensor
    rule: str
    false_positive_rate: float

    def __post_init__(self) -> None:
        check_choice("rule", self.rule, RESAMPLING)
        check_range("false_positive_rate", self.false_positive_rate, 0.0, 1.0)


def _group(f: MLP, rows: slice) -> MLP:
    """The replicas `rows` of `f` as an MLP of their own."""
    part = copy.deepcopy(f)
    for layer in part.layers:
        layer.weight = nn.Parameter(layer.weight.detach()[rows].clone())
        if layer.bias is not None:
            layer.bias = nn.Parameter(layer.bias.detach()[rows].clone())
    return part


def fit_students(
    cfg: FactorizationConfig,
    x: Tensor,
    students: list[Student],
    replicas: int,
    seed: int,
    desc: str = "students",
) -> list[StudentFit]:
    """SimCLR students (MLPs with two hidden layers) on views of their images `x` `[R, N, dim]`,
    all trained at once as one batch of len(students) · R replicas.

    Each student's views are Gaussian (scale `student_aug`), its loss `resampling_loss` at
    `temperature` with the config's drop fractions, its training the `student_*` settings
    (`EncoderTraining.student`). A fraction `false_positive_rate` of a student's second
    views come from another random image; its `teacher` holds the teacher's embedding of
    every training image. Replica r of every student starts from the stream (seed,
    "init/student", r), visits its images in the order of (seed, "minibatch", r) and draws
    its swaps and views from (seed, "data/false_positives", r) and (seed,
    "augment/student", r): students differ only in teacher, rule and false-positive rate,
    so their comparison is paired, and each trains as it would alone (`fit_student`).
    """
    t, (n_replicas, n, dim), dev = EncoderTraining.student(cfg, replicas, seed), x.shape, x.device
    if n_replicas != replicas:
        raise ValueError(f"x holds {n_replicas} replicas, replicas={replicas}")
    augmentation, temperature = Augmentation("gaussian", cfg.student_aug), cfg.temperature
    fractions = {
        "drop_false_negative": cfg.drop_false_negative,
        "drop_easy_negative": cfg.drop_easy_negative,
        "drop_false_positive": cfg.drop_false_positive,
    }
    ids = list(range(n_replicas)) * len(students)
    f = MLP(dim, [t.hidden] * 2, t.out_dim, ids, t.seed, device=dev, purpose="init/student")
    b = t.batch_size
    swaps = DrawAhead(
        [stream(t.seed, "data/false_positives", r).torch for r in range(n_replicas)],
        lambda g: (torch.rand(b, generator=g), torch.randint(n, (b,), generator=g)),
        dev,
    )
    gens = [stream(t.seed, "augment/student", r).torch for r in range(n_replicas)]
    views = noise_draws(gens, (2, b, dim), dev)
    rows = torch.arange(n_replicas, device=dev)[:, None]

    def objective(batch: Tensor) -> Tensor:
        i = batch[:n_replicas]  # every student's replica r sees the same batch
        (u, other), noise = swaps(), views()
        v1 = augmentation(x[rows, i], noise[:, 0])
        js = [torch.where(u < s.false_positive_rate, other, i) for s in students]
        v2 = [augmentation(x[rows, j], noise[:, 1]) for j in js]
        z1 = f(v1.repeat(len(students), 1, 1)).split(n_replicas)
        z2 = f(torch.cat(v2)).split(n_replicas)
        return torch.cat([
            resampling_loss(a, c, s.teacher[rows, i], s.teacher[rows, j], s.rule, temperature,
                            **fractions)
            for a, c, s, j in zip(z1, z2, students, js, strict=True)
        ])  # fmt: skip

    history = train(objective, f, t.steps, lr=t.lr, n_samples=n, batch_size=t.batch_size,
                    seed=t.seed, replicas=ids, desc=desc)  # fmt: skip
    groups = [slice(g * n_replicas, (g + 1) * n_replicas) for g in range(len(students))]
    return [StudentFit(_group(f, rows), history.replicas(rows)) for rows in groups]


def fit_student(
    cfg: FactorizationConfig,
    x: Tensor,
    teacher: Tensor,
    rule: str,
    replicas: int,
    seed: int,
    false_positive_rate: float | None = None,
    desc: str = "student",
) -> StudentFit:
    """One SimCLR student of `fit_students` (teacher `[R, N, e]`, `rule`, false-positive
    rate: `cfg.false_positive_rate` by default)."""
    if false_positive_rate is None:
        false_positive_rate = cfg.false_positive_rate
    student = Student(teacher, rule, false_positive_rate)
    return fit_students(cfg, x, [student], replicas, seed, desc)[0]
