"""Chapter 02: the CLIP-guided resampling rules and the SimCLR student."""

import math

import pytest
import torch

from mmnb.losses import symmetric_info_nce_logits
from mmnb.worlds import factorization
from mmnb.worlds.factorization import CaptionWorld, FactorizationConfig


def test_select_new_positive_and_drop_rules_by_hand():
    sim = torch.tensor([[9.0, 1.0, 3.0, 2.0], [1.0, 9.0, 0.0, 5.0], [3.0, 0.0, 9.0, 4.0],
                        [2.0, 5.0, 4.0, 9.0]])  # fmt: skip
    assert factorization.select_new_positive(sim).tolist() == [2, 3, 3, 1]
    keep_hard = factorization.drop_negatives(sim, 1 / 3, largest=True)  # drop 1 of 3 negatives
    expected = ~torch.eye(4, dtype=torch.bool)
    for i, j in enumerate([2, 3, 3, 1]):
        expected[i, j] = False
    assert torch.equal(keep_hard, expected)
    keep_easy = factorization.drop_negatives(sim, 1 / 3, largest=False)
    expected = ~torch.eye(4, dtype=torch.bool)
    for i, j in enumerate([1, 2, 1, 0]):
        expected[i, j] = False
    assert torch.equal(keep_easy, expected)
    kept = factorization.drop_positives(torch.tensor([0.5, -0.2, 0.9, 0.1]), 0.25)
    assert kept.tolist() == [0, 2, 3]


def _by_hand(z1, z2, ta, tv, rule, tau, fractions):
    """One replica, explicit loops: the resampling rules as written in the chapter."""
    z1, z2 = [torch.nn.functional.normalize(z, dim=-1) for z in (z1, z2)]
    ta, tv = [torch.nn.functional.normalize(t, dim=-1) for t in (ta, tv)]
    n = len(z1)
    logits = z1 @ z2.T / tau
    rows = list(range(n))
    keep = torch.ones(n, n, dtype=torch.bool)
    if rule == "drop_false_positive":
        pos = (ta * tv).sum(-1)
        n_keep = n - round(fractions["drop_false_positive"] * n)
        rows = sorted(pos.argsort(descending=True)[:n_keep].tolist())
    if rule in ("drop_false_negative", "drop_easy_negative"):
        sim = ta @ tv.T
        for i in range(n):
            others = [j for j in range(n) if j != i]
            ranked = sorted(others, key=lambda j: sim[i, j].item(), reverse=True)
            drop = ranked if rule == "drop_false_negative" else ranked[::-1]
            for j in drop[: round(fractions[rule] * (n - 1))]:
                keep[i, j] = False

    def ce(mat, mask, i, target):
        cols = [j for j in rows if mask[i, j] or j == target]
        return torch.logsumexp(mat[i, cols], 0) - mat[i, target]

    row = sum(ce(logits, keep, i, i) for i in rows) / len(rows)
    col = sum(ce(logits.T, keep.T, i, i) for i in rows) / len(rows)
    loss = 0.5 * (row + col)
    if rule == "new_positive":
        sa = ta @ ta.T
        sa.fill_diagonal_(-math.inf)
        new = [ce(logits, keep, i, int(sa[i].argmax())) for i in range(n)]
        back = [ce(logits.T, keep.T, i, int(sa[i].argmax())) for i in range(n)]
        loss = 0.5 * (loss + 0.5 * (sum(new) + sum(back)) / n)
    return loss


@pytest.mark.parametrize("rule", factorization.RESAMPLING)
@pytest.mark.parametrize("fractions", [{}, {"drop_false_negative": 0.1, "drop_easy_negative":
                                            0.2, "drop_false_positive": 0.2}])  # fmt: skip
def test_resampling_loss_matches_the_rule_by_hand(rule, fractions):
    gen = torch.Generator().manual_seed(7)
    n = 21  # 20 negatives per row: 5% is one, 10% two; 10% of 21 positives is two
    z1, z2 = torch.randn(2, 2, n, 3, generator=gen, dtype=torch.float64)
    ta, tv = torch.randn(2, 2, n, 4, generator=gen, dtype=torch.float64)
    got = factorization.resampling_loss(z1, z2, ta, tv, rule, 0.5, **fractions)
    full = {"drop_false_negative": 0.05, "drop_easy_negative": 0.10, "drop_false_positive": 0.10}
    full.update(fractions)
    want = torch.stack([_by_hand(z1[r], z2[r], ta[r], tv[r], rule, 0.5, full) for r in range(2)])
    torch.testing.assert_close(got, want)
    if rule == "simclr":
        logits = (
            torch.nn.functional.normalize(z1, dim=-1) @ torch.nn.functional.normalize(z2, dim=-1).mT
        )
        torch.testing.assert_close(got, symmetric_info_nce_logits(logits / 0.5))
    else:  # every other rule changes the loss
        assert not torch.allclose(got, factorization.resampling_loss(z1, z2, ta, tv, "simclr", 0.5))


def _students_cfg() -> FactorizationConfig:
    """Students of 4 outputs and 8 hidden units, 4 steps of 10 images."""
    return FactorizationConfig(student_dim=4, hidden=8, student_steps=4, student_batch=10,
                               student_train=30, student_lr=1e-2, student_aug=0.1,
                               temperature=0.5, false_positive_rate=0.3)  # fmt: skip


def test_student_replica_alone_equals_replica_in_group_and_rules_share_the_draws():
    cfg = _students_cfg()
    x, _ = CaptionWorld(cfg, seed=0).sample(30, "data/student", replicas=2)
    group = factorization.fit_student(cfg, x, x, "new_positive", replicas=2, seed=2)
    first = factorization.fit_student(cfg, x[:1], x[:1], "new_positive", replicas=1, seed=2)
    other = factorization.fit_student(cfg, x, x, "simclr", replicas=2, seed=2)
    with torch.no_grad():
        torch.testing.assert_close(group.encoder(x)[0], first.encoder(x[:1])[0])
        assert not torch.allclose(group.encoder(x)[0], group.encoder(x)[1])
        assert not torch.allclose(group.encoder(x), other.encoder(x))


def test_students_trained_together_equal_students_trained_alone():
    cfg = _students_cfg()
    x, y = CaptionWorld(cfg, seed=0).sample(30, "data/student", replicas=2)
    teacher = torch.nn.functional.one_hot(y).float()
    jobs = [(x, "simclr", 0.3), (x, "simclr", 0.0), (teacher, "drop_false_positive", 0.3)]
    students = [factorization.Student(*j) for j in jobs]
    together = factorization.fit_students(cfg, x, students, replicas=2, seed=2)
    for (t, rule, fpr), fit in zip(jobs, together, strict=True):
        alone = factorization.fit_student(cfg, x, t, rule, 2, 2, false_positive_rate=fpr)
        with torch.no_grad():
            torch.testing.assert_close(fit.encoder(x), alone.encoder(x))
        assert fit.history["loss"].shape == alone.history["loss"].shape == (4, 2)
    with torch.no_grad():
        assert not torch.allclose(together[0].encoder(x), together[1].encoder(x))
    with pytest.raises(ValueError, match="false_positive_rate"):
        factorization.Student(x, "simclr", 1.5)


def test_bad_parameters_name_themselves():
    cfg = FactorizationConfig(student_batch=4)
    with pytest.raises(ValueError, match="replicas"):
        factorization.fit_student(cfg, torch.zeros(1, 5, 3), torch.zeros(1, 5, 3), "simclr",
                                  replicas=2, seed=0)  # fmt: skip
    with pytest.raises(ValueError, match="rule.*simclr"):
        factorization.resampling_loss(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2),
                                      torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), "drop_all",
                                      0.1)  # fmt: skip
    with pytest.raises(ValueError, match="fraction"):
        factorization.drop_negatives(torch.zeros(3, 3), 1.5, True)
