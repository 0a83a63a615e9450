"""Losses against hand computations and closed forms."""

import itertools
import math
import shutil

import pytest
import torch

from mmnb.losses import (
    LearnedTemperature,
    info_nce,
    pairwise_dot,
    similarity,
    spectral_contrastive_loss,
    symmetric_info_nce,
    symmetric_info_nce_logits,
)


def lse(*values: float) -> float:
    return math.log(sum(math.exp(v) for v in values))


def test_info_nce_two_by_two_by_hand():
    a, b, c, d = 0.3, -1.2, 0.7, 2.0
    logits = torch.tensor([[a, b], [c, d]])
    expected = 0.5 * ((lse(a, b) - a) + (lse(c, d) - d))
    assert info_nce(logits).item() == pytest.approx(expected, rel=1e-6)


def test_symmetric_info_nce_two_by_two_by_hand():
    u = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    v = torch.tensor([[0.8, 0.6], [0.0, 2.0]])
    tau = 0.5
    cos = [[0.8, 0.0], [0.96, 0.8]]  # cos(u_i, v_j)
    s = [[c / tau for c in row] for row in cos]
    rows = 0.5 * ((lse(*s[0]) - s[0][0]) + (lse(*s[1]) - s[1][1]))
    cols = 0.5 * ((lse(s[0][0], s[1][0]) - s[0][0]) + (lse(s[0][1], s[1][1]) - s[1][1]))
    loss = symmetric_info_nce(u, v, tau, kind="cosine")
    assert loss.item() == pytest.approx(0.5 * (rows + cols), rel=1e-6)


def test_negative_mask_drops_pairs():
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.0, -1.0], [2.0, 1.0, 0.0]])
    mask = torch.tensor([[False, True, False], [True, False, False], [False, False, False]])
    expected = ((lse(1.0, 2.0) - 1.0) + (lse(0.5, 0.0) - 0.0) + 0.0) / 3
    assert info_nce(logits, mask).item() == pytest.approx(expected, rel=1e-6)


def test_replica_axis_and_per_replica_temperature():
    u, v = torch.randn(3, 5, 4), torch.randn(3, 5, 4)
    tau = torch.tensor([0.1, 0.5, 1.0])
    batched = symmetric_info_nce(u, v, tau)
    alone = torch.stack([symmetric_info_nce(u[r], v[r], tau[r].item()) for r in range(3)])
    assert batched.shape == (3,)
    torch.testing.assert_close(batched, alone)


def test_similarity_kinds():
    u, v = torch.randn(4, 3), torch.randn(5, 3)
    un, vn = u / u.norm(dim=1, keepdim=True), v / v.norm(dim=1, keepdim=True)
    torch.testing.assert_close(similarity(u, v, "cosine"), un @ vn.T)
    torch.testing.assert_close(similarity(u, v, "dot"), u @ v.T)
    sq = ((u[:, None] - v[None]) ** 2).sum(-1)
    torch.testing.assert_close(similarity(u, v, "neg_sqdist"), -sq, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="similarity='l1'.*'cosine'"):
        similarity(u, v, "l1")


def test_learned_temperature():
    tau = LearnedTemperature(3, init=[0.5, 1.0, 2.0])
    torch.testing.assert_close(tau(), torch.tensor([0.5, 1.0, 2.0]))
    assert tau.log_excess.requires_grad
    fixed = LearnedTemperature(2, init=0.001, learn=False)
    assert not any(p.requires_grad for p in fixed.parameters())
    assert torch.allclose(fixed(), torch.full((2,), 0.01))  # CLIP's cap: 1/τ ≤ 100
    with pytest.raises(ValueError, match="floor"):
        LearnedTemperature(1, init=0.1, floor=0.2)


def expected_symmetric_loss_k2(table: torch.Tensor, joint: torch.Tensor) -> torch.Tensor:
    """Exact population symmetric InfoNCE for batches of K = 2 pairs drawn from `joint`."""
    n = joint.numel()
    pairs = torch.tensor(list(itertools.product(range(n), repeat=2)))  # two pair indices
    xs = pairs.div(joint.shape[1], rounding_mode="floor")
    ys = pairs % joint.shape[1]
    weights = joint.reshape(-1)[pairs].prod(1)
    logits = table[xs[:, :, None], ys[:, None, :]]  # [n², 2, 2]
    rows = info_nce(logits)
    cols = info_nce(logits.transpose(-1, -2))
    return (weights * 0.5 * (rows + cols)).sum()


def test_free_table_learns_pmi():
    """The symmetric loss over an unrestricted similarity is minimised at PMI + const."""
    joint = torch.tensor(
        [[0.20, 0.05, 0.05], [0.02, 0.25, 0.03], [0.10, 0.05, 0.25]], dtype=torch.float64
    )
    pmi = (joint / joint.sum(1, keepdim=True) / joint.sum(0, keepdim=True)).log()
    table = torch.zeros_like(joint, requires_grad=True)
    opt = torch.optim.LBFGS(
        [table],
        lr=1,
        max_iter=500,
        tolerance_grad=1e-12,
        tolerance_change=1e-14,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = expected_symmetric_loss_k2(table, joint)
        loss.backward()
        return loss

    opt.step(closure)
    learned = table.detach() - table.detach().mean()
    torch.testing.assert_close(learned, pmi - pmi.mean(), atol=1e-4, rtol=0)


def test_spectral_loss_is_matrix_factorization():
    """L(f, g) = ‖P̃ − F_V F_Lᵀ‖² − ‖P̃‖² with F_V = √P_V f, F_L = √P_L g (population form)."""
    gen = torch.Generator().manual_seed(0)
    joint = torch.rand(6, 5, generator=gen, dtype=torch.float64)
    joint /= joint.sum()
    f = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    g = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    p_v, p_l = joint.sum(1), joint.sum(0)
    p_tilde = joint / (p_v[:, None].sqrt() * p_l[None, :].sqrt())
    f_v, f_l = p_v.sqrt()[:, None] * f, p_l.sqrt()[:, None] * g
    mf = (p_tilde - f_v @ f_l.T).square().sum() - p_tilde.square().sum()
    torch.testing.assert_close(spectral_contrastive_loss(f, g, joint), mf)


def test_spectral_loss_minibatch_by_hand():
    f = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    g = torch.tensor([[1.0, 1.0], [0.5, 0.0]])
    # positives <f0,g0>=1, <f1,g1>=0; negatives <f0,g1>=0.5, <f1,g0>=2
    expected = -2 * (1 + 0) / 2 + (0.5**2 + 2**2) / 2
    assert spectral_contrastive_loss(f, g).item() == pytest.approx(expected)


def test_symmetric_info_nce_matches_logsumexp_with_gradients():
    """The fused two-direction loss equals the textbook formula, values and gradients."""
    logits = (5 * torch.randn(3, 7, 7, dtype=torch.float64)).requires_grad_()
    ours = symmetric_info_nce_logits(logits)
    rows = torch.logsumexp(logits, -1) - logits.diagonal(dim1=-2, dim2=-1)
    cols = torch.logsumexp(logits, -2) - logits.diagonal(dim1=-2, dim2=-1)
    textbook = 0.5 * (rows.mean(-1) + cols.mean(-1))
    torch.testing.assert_close(ours, textbook)
    weights = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    (g_ours,) = torch.autograd.grad((ours * weights).sum(), logits)
    (g_book,) = torch.autograd.grad((textbook * weights).sum(), logits)
    torch.testing.assert_close(g_ours, g_book)
    one = logits[:1].detach().requires_grad_()
    assert torch.autograd.gradcheck(symmetric_info_nce_logits, (one,))


def test_symmetric_info_nce_is_exact_on_widely_spread_float32_logits():
    """Logits spread over hundreds (a small τ) underflow exp; the clamp keeps the loss and
    its gradient equal to the float64 textbook values."""
    gen = torch.Generator().manual_seed(0)
    logits = (300 * torch.randn(2, 64, 64, generator=gen)).requires_grad_()
    ours = symmetric_info_nce_logits(logits)
    ref = logits.detach().double().requires_grad_()
    diag = ref.diagonal(dim1=-2, dim2=-1)
    textbook = 0.5 * ((torch.logsumexp(ref, -1) - diag).mean(-1)
                      + (torch.logsumexp(ref, -2) - diag).mean(-1))  # fmt: skip
    # float32 arithmetic on losses of several hundred: equal to float32 rounding
    torch.testing.assert_close(ours.double(), textbook, rtol=1.3e-6, atol=1e-5)
    (g_ours,) = torch.autograd.grad(ours.sum(), logits)
    (g_book,) = torch.autograd.grad(textbook.sum(), ref)
    torch.testing.assert_close(g_ours.double(), g_book, rtol=1e-5, atol=1e-7)


def test_temperature_learned_per_replica():
    from mmnb.losses import LearnedTemperature

    tau = LearnedTemperature(3, init=[1.0, 1.0, 0.5], learn=[True, False, True])
    tau().sum().backward()
    grad = tau.log_excess.grad
    assert grad[0] != 0 and grad[1] == 0 and grad[2] != 0
    frozen = LearnedTemperature(2, init=0.3, learn=False)
    assert not list(frozen.parameters())
    torch.testing.assert_close(frozen(), torch.tensor([0.3, 0.3]))


def test_pairwise_dot_values_and_gradients():
    """`pairwise_dot`'s own backward equals autograd's matmul, batched or broadcast."""
    gen = torch.Generator().manual_seed(3)
    u = torch.randn(2, 5, 3, dtype=torch.float64, generator=gen).requires_grad_()
    v = torch.randn(2, 6, 3, dtype=torch.float64, generator=gen).requires_grad_()
    torch.testing.assert_close(pairwise_dot(u, v), u @ v.mT)
    assert torch.autograd.gradcheck(pairwise_dot, (u, v))
    shared = v[0].detach().requires_grad_()  # [6, 3] against [2, 5, 3]: broadcast path
    assert torch.autograd.gradcheck(pairwise_dot, (u, shared))


@pytest.mark.skipif(
    not (shutil.which("g++") or shutil.which("clang++")), reason="compiling needs a C++ compiler"
)
def test_losses_run_under_torch_compile():
    """`train(compile=True)` compiles the objective: the custom autograd functions
    (`pairwise_dot`, symmetric InfoNCE) trace, and give the eager values and gradients."""
    gen = torch.Generator().manual_seed(5)
    u, v = (torch.randn(2, 16, 3, generator=gen).requires_grad_() for _ in range(2))
    compiled = torch.compile(lambda a, b: symmetric_info_nce(a, b, 0.5, "neg_sqdist"))
    out = compiled(u, v)
    eager = symmetric_info_nce(u, v, 0.5, "neg_sqdist")
    torch.testing.assert_close(out, eager)
    (g_compiled,) = torch.autograd.grad(out.sum(), u)
    (g_eager,) = torch.autograd.grad(eager.sum(), u)
    torch.testing.assert_close(g_compiled, g_eager)
