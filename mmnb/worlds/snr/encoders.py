"""Chapter 01's network: m bias-free ReLU neurons shared by the two patches.

h(x) = [Σ_p ReLU(⟨w_r, x^(p)⟩)]_r. `PatchEncoder` holds the weights W `[R, m, d]` of R
replicas; `SignalNoiseEncoder` takes its gradient steps in signal–noise coordinates: the
weights stay in W(0) + span(μ, ξ_1, …, ξ_n), so the steps are those of W at (n+1)/d of
the cost. Replica r draws its initial weights from the stream (seed, "init/…", r), so it
equals the same replica trained alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mmnb.config import check_range
from mmnb.nets import Replicas, replica_parameter
from mmnb.worlds.snr.world import SNRData

__all__ = [
    "Encoder",
    "PatchEncoder",
    "SignalNoiseEncoder",
    "patch_activations",
    "signal_noise_activations",
]


def patch_activations(weight: Tensor, x: Tensor) -> Tensor:
    """ReLU(⟨w_r, x^(p)⟩) under `weight` `[R, m, d]` for every patch: `[R, N, P, d]` →
    `[R, N, P, m]`."""
    r, n, p, d = x.shape
    return torch.relu(torch.bmm(x.reshape(r, n * p, d), weight.mT)).view(r, n, p, -1)


def signal_noise_activations(weight: Tensor, y: Tensor, mu: Tensor, noise: Tensor) -> Tensor:
    """The activations of the patches [y·μ, noise] under `weight` `[R, m, d]` without
    forming the signal patch, `[R, N, 2, m]`.

    The signal patch of sample i is y_i·μ, so ⟨w_r, y_i μ⟩ = y_i ⟨w_r, μ⟩: one product
    per neuron instead of one per sample (half the work of the generic path).
    """
    signal = torch.relu(y[..., None] * torch.bmm(weight, mu[..., None])[..., 0][:, None, :])
    return torch.stack([signal, torch.relu(torch.bmm(weight, noise.mT).mT)], 2)


class PatchEncoder(nn.Module):
    """m bias-free ReLU neurons shared across patches, with R replicas: weight `[R, m, d]`.

    Replica r is initialised w_r ~ N(0, σ_0² I) from the stream (seed, `purpose`, r).
    """

    def __init__(
        self,
        d: int,
        m: int,
        replicas: Replicas,
        seed: int = 0,
        sigma0: float = 0.01,
        purpose: str = "init/encoder_image",
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        check_range("m", m, 1, None, integer=True)
        check_range("sigma0", sigma0, 0.0, None)
        self.weight = replica_parameter(
            lambda gen: sigma0 * torch.randn(m, d, generator=gen), replicas, seed, purpose, device
        )

    @property
    def m(self) -> int:
        return self.weight.shape[1]

    def activations(self, x: Tensor) -> Tensor:
        """h_r(x^(p)) = ReLU(⟨w_r, x^(p)⟩) for every patch: `[R, N, P, d]` → `[R, N, P, m]`."""
        return patch_activations(self.weight, x)

    def forward(self, x: Tensor) -> Tensor:
        """The embedding h(x) = Σ_p h(x^(p)), `[R, N, m]`."""
        return self.activations(x).sum(-2)

    def signal_noise(self, data: SNRData, view: str) -> Tensor:
        """The activations of a view of the training set, `[R, n, 2, m]`."""
        return signal_noise_activations(self.weight, data.y, *data.view(view))


class _SpanStep(torch.autograd.Function):
    """S = S(0) + A·G whose gradient with respect to A is reported as ∂L/∂S: a plain
    gradient step on A is then the gradient step on W = W(0) + A·P."""

    @staticmethod
    def forward(ctx, coef: Tensor, s0: Tensor, gram: Tensor) -> Tensor:  # noqa: ARG004
        return torch.baddbmm(s0, coef, gram)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:  # noqa: ARG004
        return grad, None, None


class SignalNoiseEncoder(nn.Module):
    """A `PatchEncoder` trained in signal–noise coordinates: the same network, cheaper steps.

    The losses read W only through the scores S = W Pᵀ of the training patches
    P = [μ, ξ_1, …, ξ_n] (sample i's signal patch is y_i μ), so every gradient
    ∂L/∂W = (∂L/∂S) P lies in their span and W(t) = W(0) + A(t) P: the paper's
    signal–noise decomposition, w_r = w_r(0) + γ_r μ/‖μ‖² + Σ_i ρ_r,i ξ_i/‖ξ_i‖² with
    A = [γ/‖μ‖², ρ/‖ξ‖²]. A gradient step of size η on W is the step A ← A − η ∂L/∂S, and
    S = S(0) + A P Pᵀ costs m(n+1)² per step instead of m(n+1)d. Views the loss reads
    without a gradient (`frozen`, e.g. the augmented one) are scored through their
    cross-Gram matrices. `weight` gives W for evaluation.
    """

    def __init__(
        self, encoder: PatchEncoder, data: SNRData, view: str, frozen: Sequence[str] = ()
    ) -> None:
        super().__init__()
        self.view = view
        w0 = encoder.weight.detach()
        mu, noise = data.view(view)
        patches = torch.cat([mu[:, None], noise], 1)  # [R, n + 1, d]
        self.register_buffer("w0", w0.clone())
        self.register_buffer("patches", patches)
        self.register_buffer("s0", torch.bmm(w0, patches.mT))
        self.register_buffer("gram", torch.bmm(patches, patches.mT))
        self.coef = nn.Parameter(torch.zeros_like(self.s0))
        self.frozen: dict[str, tuple[Tensor, Tensor]] = {}
        for name in frozen:
            other = torch.cat([mu[:, None], data.view(name)[1]], 1)
            self.frozen[name] = (torch.bmm(w0, other.mT), torch.bmm(patches, other.mT))

    @property
    def m(self) -> int:
        return self.w0.shape[1]

    @property
    def weight(self) -> Tensor:
        """W = W(0) + A P, `[R, m, d]` (no gradient)."""
        return torch.baddbmm(self.w0, self.coef.detach(), self.patches)

    def scores(self, view: str | None = None) -> Tensor:
        """⟨w_r, p⟩ for the patches p = [μ, noise_1, …] of a view, `[R, m, n + 1]`."""
        if view is None or view == self.view:
            return _SpanStep.apply(self.coef, self.s0, self.gram)
        if view not in self.frozen:
            raise ValueError(f"view={view!r}: this encoder scores {[self.view, *self.frozen]}")
        s0, cross = self.frozen[view]
        return torch.baddbmm(s0, self.coef.detach(), cross)

    def signal_noise(self, data: SNRData, view: str) -> Tensor:
        """The activations of a view of the training set, `[R, n, 2, m]`."""
        s = self.scores(view)
        signal = torch.relu(data.y[..., None] * s[:, None, :, 0])
        return torch.stack([signal, torch.relu(s[..., 1:].mT)], 2)

    def forward(self, x: Tensor) -> Tensor:
        """h(x) = Σ_p ReLU(⟨w_r, x^(p)⟩) with the current W, `[R, N, m]`."""
        return patch_activations(self.weight, x).sum(-2)


Encoder = PatchEncoder | SignalNoiseEncoder
