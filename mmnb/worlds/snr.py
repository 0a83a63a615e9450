"""Chapter 01's world: signal and noise patches in two modalities (Huang et al., 2024).

Each sample has a label y in {-1, +1} and two patches in R^d:

* modality 1 ("image"): x = [y·μ, ξ] with ξ ~ N(0, σ_ξ² I_d);
* modality 2 ("text"): x̃ = [y·μ̃, ξ̃], same label, independent noise, ‖μ̃‖ = C_μ‖μ‖;
* the single-modal positive (augmentation): x̂ = [y·μ, ξ + ε] with ε ~ N(0, σ_ε² I_d);
* the out-of-distribution test set: [y·ν, ζ] with a different signal ν and fresh noise.

The signal-to-noise ratio is SNR = ‖μ‖ / (σ_ξ √d); the theory is governed by n·SNR².

The encoder has m bias-free ReLU neurons shared by the two patches,
h(x) = [Σ_p ReLU(⟨w_r, x^(p)⟩)]_r, and the similarity pairs patch p with patch p,
averages over neurons and stops the gradient through its second argument:
Sim(x, x') = (1/m) Σ_r Σ_p h_r(x^(p)) · sg(h_r(x'^(p))).

Training takes its gradient steps in signal–noise coordinates (`SignalNoiseEncoder`):
the weights stay in W(0) + span(μ, ξ_1, …, ξ_n), so the steps are those of W at (n+1)/d
of the cost. `SNRConfig` holds every setting of the chapter. Everything carries a leading
replica axis R: replica r draws its data from the streams (seed, "data/...", r) and its
initial weights from (seed, "init/...", r), so it equals the same replica trained alone.
The training runs live in `mmnb.worlds.snr_experiment`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from mmnb.config import WorldConfig, check_range, knob
from mmnb.losses import info_nce
from mmnb.nets import Replicas, replica_ids, replica_parameter
from mmnb.ranges import SCALE, STEPS, TEMPERATURE, Range
from mmnb.runtime import stream

__all__ = [
    "NEGATIVES",
    "PatchEncoder",
    "SNRConfig",
    "SNRData",
    "SignalNoiseEncoder",
    "VIEWS",
    "make_data",
    "multimodal_loss",
    "negatives_mask",
    "patch_activations",
    "patch_similarity",
    "signal_noise_activations",
    "single_modal_loss",
    "snr_for",
]

NEGATIVES = ("opposite_label", "all")
VIEWS = ("image", "augmented", "text")


def snr_for(n_snr2: float, n: int) -> float:
    """The SNR that gives n·SNR² = `n_snr2` with n samples."""
    return math.sqrt(n_snr2 / n)


@dataclass(frozen=True)
class SNRConfig(WorldConfig):
    """The settings of chapter 01. Defaults: the paper's Fig. 1 ("book" profile).

    τ and σ_0 are not given in the paper; they are our choice.
    """

    PAPER: ClassVar[dict] = {
        "eval_every": 5,
        "phase_n_snr2": (0.125, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 6.0),
        "phase_c_mu": (0.5, 1.0, 1.5, 2.0, 2.66, 3.0, 4.0, 5.0, 7.0),
        "phase_seeds": 5,
    }

    # the data model
    snr: float = knob(5.0 / math.sqrt(2000), Range(1e-4, 10.0))  # ‖μ‖ / (σ_ξ √d)
    c_mu: float = knob(3.0, SCALE)  # C_μ = ‖μ̃‖ / ‖μ‖
    n: int = knob(100, Range(4, 100_000))  # training samples
    d: int = knob(2000, Range(3, 1_000_000))  # patch dimension
    n_test: int = knob(200, Range(4, 1_000_000))  # OOD test samples
    sigma_xi: float = knob(1.0, Range(1e-6, 100.0))  # noise scale σ_ξ
    sigma_eps: float = knob(0.1, SCALE)  # augmentation noise σ_ε
    nu_norm: float = knob(2.0, Range(0.0, 1000.0))  # ‖ν‖, the OOD test signal along μ
    # the network and its training
    m: int = knob(50, Range(1, 10_000))  # ReLU neurons
    sigma0: float = knob(0.01, Range(0.0, 10.0))  # initialization scale σ_0
    steps: int = knob(200, STEPS)  # full-batch gradient steps
    lr: float = knob(0.01, Range(1e-8, 100.0))  # step size η
    tau: float = knob(0.1, TEMPERATURE)  # temperature τ
    negatives: str = knob("opposite_label", NEGATIVES)  # which samples are negatives
    eval_every: int = knob(10, Range(0, 200_000))  # steps between OOD probes (0: end)
    rate_steps: int = knob(20, Range(2, 200_000))  # early steps of the growth-rate fit
    # the negative control: the same run at a large n·SNR²
    control_n_snr2: float = knob(8.0, Range(1e-4, 1e4))  # n·SNR² of the control run
    # the phase diagram
    phase_diagram: bool = knob(True)  # run the phase diagram
    phase_n_snr2: tuple = knob((0.25, 0.5, 1.0, 2.0, 4.0), Range(1e-4, 1e4))  # n·SNR² grid
    phase_c_mu: tuple = knob((1.0, 1.7, 3.0, 5.0), SCALE)  # C_μ grid
    phase_seeds: int = knob(3, Range(1, 64))  # replicas per grid point

    def check(self) -> None:
        if self.rate_steps > self.steps:
            raise ValueError(
                f"rate_steps={self.rate_steps} must not exceed steps={self.steps}; "
                f"allowed: an integer in [2, {self.steps}]"
            )
        for name in ("phase_n_snr2", "phase_c_mu"):
            if not getattr(self, name):
                raise ValueError(f"{name}=(): give at least one grid value")

    @property
    def mu_norm(self) -> float:
        """‖μ‖ = SNR · σ_ξ · √d."""
        return self.snr * self.sigma_xi * math.sqrt(self.d)

    @property
    def n_snr2(self) -> float:
        return self.n * self.snr**2


# ----------------------------------------------------------------------------- data


@dataclass
class SNRData:
    """Training pairs and the OOD test set of R replicas (leading axis R).

    Patch tensors have shape `[R, N, 2, d]`: patch 0 carries the signal, patch 1 the noise.
    """

    y: Tensor
    x: Tensor
    x_aug: Tensor
    x_text: Tensor
    y_test: Tensor
    x_test: Tensor
    mu: Tensor
    mu_text: Tensor
    nu: Tensor
    sigma_xi: float

    @property
    def xi(self) -> Tensor:
        """The noise patches ξ_i of modality 1, `[R, n, d]`."""
        return self.x[:, :, 1]

    @property
    def xi_text(self) -> Tensor:
        """The noise patches ξ̃_i of modality 2, `[R, n, d]`."""
        return self.x_text[:, :, 1]

    def view(self, name: str) -> tuple[Tensor, Tensor]:
        """(signal μ `[R, d]`, noise patches `[R, n, d]`) of a view: "image" (μ, ξ_i),
        "augmented" (μ, ξ_i + ε_i) or "text" (μ̃, ξ̃_i)."""
        if name not in VIEWS:
            raise ValueError(f"view={name!r} is not allowed; choose one of {list(VIEWS)}")
        if name == "text":
            return self.mu_text, self.xi_text
        return self.mu, (self.xi if name == "image" else self.x_aug[:, :, 1])

    @property
    def snr(self) -> Tensor:
        """SNR = ‖μ‖ / (σ_ξ √d), one value per replica."""
        return self.mu.norm(dim=-1) / (self.sigma_xi * math.sqrt(self.mu.shape[-1]))

    @property
    def n_snr2(self) -> Tensor:
        """n·SNR², the quantity the theory depends on, one value per replica."""
        return self.x.shape[1] * self.snr**2


def _per_replica(name: str, value: float | Sequence[float], n_replicas: int) -> list[float]:
    values = [float(value)] * n_replicas if np.ndim(value) == 0 else [float(v) for v in value]
    if len(values) != n_replicas:
        raise ValueError(f"{name} has {len(values)} values for {n_replicas} replicas")
    for v in values:
        check_range(name, v, 0.0, None)
    return values


def make_data(
    cfg: SNRConfig,
    seed: int,
    replicas: Replicas,
    device: torch.device | str = "cpu",
    snr: float | Sequence[float] | None = None,
    c_mu: float | Sequence[float] | None = None,
) -> SNRData:
    """Draw one data set per replica; `snr` and `c_mu` (default: the config's) may be
    given per replica.

    μ = ‖μ‖ e_1 with ‖μ‖ = SNR·σ_ξ√d, μ̃ = C_μ‖μ‖ e_2 and ν = ‖ν‖ e_1. Replica r draws
    labels, noises, augmentation and test set from its own streams (seed, "data/…", r),
    on the CPU, so the data do not depend on the device (nor on `snr` or `c_mu`: the
    replicas of a grid share their noise draws).
    """
    ids = replica_ids(replicas)
    snrs = _per_replica("snr", cfg.snr if snr is None else snr, len(ids))
    cs = _per_replica("c_mu", cfg.c_mu if c_mu is None else c_mu, len(ids))
    n, d, n_test, s_xi = cfg.n, cfg.d, cfg.n_test, cfg.sigma_xi
    eye = torch.eye(d)

    def labels(purpose: str, r: int, k: int) -> Tensor:
        return 2.0 * stream(seed, purpose, r).randint(2, (k,)).float() - 1.0

    def normal(purpose: str, r: int, *shape: int) -> Tensor:
        return stream(seed, purpose, r).randn(*shape)

    parts: dict[str, list[Tensor]] = {k: [] for k in ("y", "x", "xa", "xt", "yt", "xte", "mt")}
    mus = []
    for r, s, c in zip(ids, snrs, cs, strict=True):
        mu = s * s_xi * math.sqrt(d) * eye[0]
        mu_text = c * mu.norm() * eye[1]
        y, y_test = labels("data/train/label", r, n), labels("data/test/label", r, n_test)
        xi = s_xi * normal("data/train/noise", r, n, d)
        xi_text = s_xi * normal("data/train/noise_text", r, n, d)
        eps = cfg.sigma_eps * normal("data/train/augment", r, n, d)
        zeta = s_xi * normal("data/test/noise", r, n_test, d)
        sig = y[:, None] * mu
        parts["y"].append(y)
        parts["x"].append(torch.stack([sig, xi], 1))
        parts["xa"].append(torch.stack([sig, xi + eps], 1))
        parts["xt"].append(torch.stack([y[:, None] * mu_text, xi_text], 1))
        parts["yt"].append(y_test)
        parts["xte"].append(torch.stack([y_test[:, None] * cfg.nu_norm * eye[0], zeta], 1))
        parts["mt"].append(mu_text)
        mus.append(mu)
    st = {k: torch.stack(v).to(device) for k, v in parts.items()}
    return SNRData(
        y=st["y"],
        x=st["x"],
        x_aug=st["xa"],
        x_text=st["xt"],
        y_test=st["yt"],
        x_test=st["xte"],
        mu=torch.stack(mus).to(device),
        mu_text=st["mt"],
        nu=(cfg.nu_norm * eye[0]).expand(len(ids), d).clone().to(device),
        sigma_xi=float(s_xi),
    )


# ----------------------------------------------------------------------------- model


def patch_activations(weight: Tensor, x: Tensor) -> Tensor:
    """ReLU(⟨w_r, x^(p)⟩) under `weight` `[R, m, d]` for every patch: `[R, N, P, d]` →
    `[R, N, P, m]`."""
    r, n, p, d = x.shape
    return torch.relu(torch.bmm(x.reshape(r, n * p, d), weight.mT)).view(r, n, p, -1)


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


def patch_similarity(a: Tensor, b: Tensor) -> Tensor:
    """Sim[r, i, j] = (1/m) Σ_k Σ_p a[r,i,p,k] · sg(b[r,j,p,k]) from patch activations.

    The gradient flows only through the first argument (stop-gradient on `b`).
    """
    a2, b2 = a.flatten(-2), b.detach().flatten(-2)
    return torch.matmul(a2, b2.transpose(-1, -2)) / a.shape[-1]


def negatives_mask(y: Tensor, negatives: str = "opposite_label") -> Tensor | None:
    """`mask[r, i, j]` is True where x_j is a negative of anchor i: y_j ≠ y_i for
    "opposite_label" (the paper's loss); every other sample for "all" (`None`)."""
    if negatives not in NEGATIVES:
        raise ValueError(f"negatives={negatives!r} is not allowed; choose one of {list(NEGATIVES)}")
    return y[..., :, None] != y[..., None, :] if negatives == "opposite_label" else None


def signal_noise_activations(weight: Tensor, y: Tensor, mu: Tensor, noise: Tensor) -> Tensor:
    """The activations of the patches [y·μ, noise] under `weight` `[R, m, d]` without
    forming the signal patch, `[R, N, 2, m]`.

    The signal patch of sample i is y_i·μ, so ⟨w_r, y_i μ⟩ = y_i ⟨w_r, μ⟩: one product
    per neuron instead of one per sample (half the work of the generic path).
    """
    signal = torch.relu(y[..., None] * torch.bmm(weight, mu[..., None])[..., 0][:, None, :])
    return torch.stack([signal, torch.relu(torch.bmm(weight, noise.mT).mT)], 2)


def single_modal_loss(
    h: Encoder, data: SNRData, tau: float, negatives: str = "opposite_label"
) -> Tensor:
    """InfoNCE with positive (x_i, x̂_i) and negatives x_j (opposite-label or all), `[R]`."""
    a, a_aug = h.signal_noise(data, "image"), h.signal_noise(data, "augmented")
    sim = patch_similarity(a, a)  # Sim(x_i, x_j)
    positive = (a * a_aug.detach()).sum((-1, -2)) / h.m  # Sim(x_i, x̂_i)
    eye = torch.eye(sim.shape[-1], dtype=torch.bool, device=sim.device)
    logits = torch.where(eye, positive[..., :, None], sim) / tau
    return info_nce(logits, negatives_mask(data.y, negatives))


def multimodal_loss(
    h: Encoder, g: Encoder, data: SNRData, tau: float, negatives: str = "opposite_label"
) -> Tensor:
    """L(x→x̃) + L(x̃→x): positives (x_i, x̃_i), negatives as in `single_modal_loss`, `[R]`.

    With the stop-gradient, the first term trains h and the second trains g.
    """
    a, b = h.signal_noise(data, "image"), g.signal_noise(data, "text")
    mask = negatives_mask(data.y, negatives)
    return info_nce(patch_similarity(a, b) / tau, mask) + info_nce(
        patch_similarity(b, a) / tau, mask
    )
