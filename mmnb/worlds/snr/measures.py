"""Chapter 01's read-outs of trained encoders.

Signal learning γ and noise memorization ρ (`signal_learning`, `noise_memorization`) and
their coefficients with the initial weights included; the OOD accuracy of a linear probe
(`ood_accuracy`); the early growth rates, measured (`growth_rates`) and predicted by the
linearized dynamics (`predicted_rates`); and the probe of the colored digits
(`digit_features`, `probe_digits`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import Tensor

from mmnb.nets import MLP
from mmnb.probes import linear_probe
from mmnb.train import History
from mmnb.worlds.snr.config import SNRConfig
from mmnb.worlds.snr.digits import ColoredDigits
from mmnb.worlds.snr.encoders import Encoder, SignalNoiseEncoder
from mmnb.worlds.snr.world import SNRData

__all__ = [
    "ReadOuts",
    "digit_features",
    "growth_rates",
    "noise_coefficient",
    "noise_memorization",
    "ood_accuracy",
    "predicted_rates",
    "probe_digits",
    "signal_coefficient",
    "signal_learning",
]


def ood_accuracy(h: Encoder, data: SNRData) -> np.ndarray:
    """Logistic regression on frozen h(x_test): fitted on the first half of the OOD test
    set, scored on the second half; one accuracy per replica."""
    half = data.x_test.shape[1] // 2
    feats, y = h(data.x_test), data.y_test
    with threadpool_limits(1, user_api="blas"):  # tiny fits: threaded BLAS is 10× slower
        return linear_probe(feats[:, :half], y[:, :half], feats[:, half:], y[:, half:])["test_acc"]


def signal_learning(w: Tensor, w0: Tensor, mu: Tensor) -> Tensor:
    """γ_r = ⟨w_r(t) − w_r(0), μ⟩ / ‖μ‖, `[R, m]`."""
    return torch.bmm(w - w0, mu[..., None])[..., 0] / mu.norm(dim=-1, keepdim=True)


def noise_memorization(w: Tensor, w0: Tensor, xi: Tensor) -> Tensor:
    """ρ_{r,i} = ⟨w_r(t) − w_r(0), ξ_i⟩ / ‖ξ_i‖, `[R, m, n]`."""
    return torch.bmm(w - w0, xi.transpose(1, 2)) / xi.norm(dim=-1)[:, None, :]


def signal_coefficient(w: Tensor, mu: Tensor) -> Tensor:
    """max_r |⟨w_r(t), μ⟩| / ‖μ‖ (initial weights included), `[R]`: grows like e^{kt} in
    the early, linear phase, so its log-slope is the signal's growth rate k."""
    return signal_learning(w, torch.zeros_like(w), mu).abs().amax(-1)


def noise_coefficient(w: Tensor, xi: Tensor) -> Tensor:
    """mean_i max_r ⟨w_r(t), ξ_i⟩ / ‖ξ_i‖ (initial weights included), `[R]`."""
    return noise_memorization(w, torch.zeros_like(w), xi).amax(-2).mean(-1)


class ReadOuts:
    """γ and ρ (changes since the start) and the coefficients (initial weights included),
    read off the scores ⟨w_r, μ⟩ and ⟨w_r, ξ_i⟩ of the image encoder."""

    def __init__(self, h: SignalNoiseEncoder) -> None:
        self.norms = h.patches.norm(dim=-1)[:, None, :]  # ‖μ‖, ‖ξ_i‖: [R, 1, n + 1]
        self.gamma0, self.rho0 = self.project(h.s0)

    def project(self, scores: Tensor) -> tuple[Tensor, Tensor]:
        """⟨w_r, μ⟩/‖μ‖ `[R, m]` and ⟨w_r, ξ_i⟩/‖ξ_i‖ `[R, m, n]`."""
        unit = scores / self.norms
        return unit[..., 0], unit[..., 1:]

    def __call__(self, h: SignalNoiseEncoder) -> dict[str, Tensor]:
        gamma, rho = self.project(h.scores().detach())
        return {
            "signal": (gamma - self.gamma0).abs().amax(-1),
            "signal_mean": (gamma - self.gamma0).abs().mean(-1),
            "noise": (rho - self.rho0).amax(-2).mean(-1),
            "signal_coef": gamma.abs().amax(-1),  # = signal_coefficient
            "noise_coef": rho.amax(-2).mean(-1),  # = noise_coefficient
        }


def predicted_rates(cfg: SNRConfig) -> dict[str, float]:
    """Per-step growth rates of the signal and noise coefficients in the early phase.

    While all similarities are ≪ τ the softmax of every anchor is uniform and the
    gradient step is linear in the coefficients (the first stage of the paper's
    analysis, following Cao et al. 2022). For a neuron with ⟨w_r, μ⟩ > 0 the samples of
    label +1 (half of them) add η‖μ‖²/(2τm)·⟨w_r, μ⟩ per step; opposite-label negatives
    do not act on it (a ReLU that responds to +μ is silent on −μ). In the multimodal
    loss h's signal step is weighted by g's response to μ̃ and vice versa, a coupled pair
    growing at η‖μ‖‖μ̃‖/(2τm) = C_μ times faster. A noise direction ξ_i is pushed by its
    own sample, weight 1/n, with ‖ξ_i‖² ≈ σ_ξ²d: rate ησ_ξ²d/(nτm), the same for the
    co-memorized pair (ξ_i, ξ̃_i) of the multimodal loss.
    """
    base = cfg.lr / (2 * cfg.tau * cfg.m)
    signal = base * cfg.mu_norm**2
    noise = 2 * base * cfg.sigma_xi**2 * cfg.d / cfg.n
    return {
        "rate_signal_single": signal,
        "rate_signal_multi": cfg.c_mu * signal,
        "rate_noise_single": noise,
        "rate_noise_multi": noise,
    }


def growth_rates(history: Mapping[str, History], steps: int) -> dict[str, np.ndarray]:
    """Least-squares slopes of log(signal_coef) and log(noise_coef) against the step over
    the first `steps` steps, one per replica and model (`history`: model name to its
    training history, as `SNRFit.history`): `rate_signal_<model>`, `rate_noise_<model>`."""
    out = {}
    for name, hist in history.items():
        for kind in ("signal", "noise"):
            t = hist.steps(f"{kind}_coef")
            keep = t <= steps
            logs = np.log(np.maximum(hist[f"{kind}_coef"][keep], 1e-30))  # [T, R]
            out[f"rate_{kind}_{name}"] = np.polyfit(t[keep], logs, 1)[0]
    return out


def digit_features(encoder: MLP, split: ColoredDigits, chunk: int = 4096) -> Tensor:
    """Frozen image features `[R, N, out_dim]` of a split, in chunks."""
    with torch.no_grad():
        n = split.grey.shape[0]
        parts = []
        for start in range(0, n, chunk):
            idx = torch.arange(start, min(n, start + chunk), device=split.grey.device)
            parts.append(encoder(split.images(idx).flatten(2)))
        return torch.cat(parts, 1)


def probe_digits(encoder: MLP, splits: Mapping[str, ColoredDigits]) -> dict[str, np.ndarray]:
    """A logistic regression on the frozen features, fitted on the training split and its
    noisy labels; one accuracy per replica: `train_acc`, `test_acc` (held-out images in
    the reversed color law) and `test_same_law_acc` (the same images and labels in the
    training law)."""
    train, test, same = splits["train"], splits["test"], splits["test_same"]
    accs = linear_probe(
        digit_features(encoder, train),
        train.label,
        digit_features(encoder, test),
        test.label,
        max_iter=1000,
        more_tests={"test_same": (digit_features(encoder, same), same.label)},
    )
    return {
        "train_acc": accs["train_acc"],
        "test_acc": accs["test_acc"],
        "test_same_law_acc": accs["test_same_acc"],
    }
