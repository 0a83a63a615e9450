"""Chapter 01's experiments: train single- and multimodal encoders on the SNR world.

`run(cfg, seed, replicas, device)` trains both models (full-batch gradient descent on
the losses of `mmnb.worlds.snr`) for every replica at once and returns an `SNRRun`;
`signal_learning`, `noise_memorization` and the two coefficients define the read-outs
(γ, ρ) that `run` records; `phase_diagram` runs a grid of n·SNR² and C_μ as one batched
run; `growth_rates` fits the early log-slopes of the signal and noise coefficients, and
`predicted_rates` gives the rates of the linearized early dynamics. `SNRConfig` is
re-exported here so that a notebook whose knob `snr` shadows the world module can build it as
`snr_experiment.SNRConfig.from_parameters(globals())`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import Tensor

from mmnb.nets import Replicas, replica_ids
from mmnb.probes import linear_probe
from mmnb.train import History, train
from mmnb.worlds.snr import (
    PatchEncoder,
    SignalNoiseEncoder,
    SNRConfig,
    SNRData,
    make_data,
    multimodal_loss,
    single_modal_loss,
    snr_for,
)

__all__ = [
    "MODELS",
    "ModelRun",
    "PhaseDiagram",
    "SNRConfig",
    "SNRRun",
    "growth_rates",
    "noise_coefficient",
    "noise_memorization",
    "ood_accuracy",
    "phase_diagram",
    "predicted_rates",
    "run",
    "signal_coefficient",
    "signal_learning",
]

MODELS = ("single", "multi")


@dataclass
class ModelRun:
    """One trained model: its `history` (per step: `loss`, `signal`, `noise`,
    `signal_coef`, `noise_coef`; every `eval_every` steps: `ood_acc`), its encoders and
    its final numbers (one value per replica)."""

    model: str
    history: History
    encoder: SignalNoiseEncoder
    text_encoder: SignalNoiseEncoder | None
    final: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class SNRRun:
    """What `run` returns: the config, the data, the initial weights and the models."""

    cfg: SNRConfig
    data: SNRData
    initial: Tensor
    models: dict[str, ModelRun]

    @property
    def single(self) -> ModelRun:
        return self.models["single"]

    @property
    def multi(self) -> ModelRun:
        return self.models["multi"]

    def summary(self) -> dict[str, float]:
        """Mean over replicas of each final number, named `<metric>_<model>`."""
        return {
            f"{k}_{name}": float(np.mean(v))
            for name, model in self.models.items()
            for k, v in model.final.items()
        }


def ood_accuracy(h: PatchEncoder | SignalNoiseEncoder, data: SNRData) -> np.ndarray:
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


class _ReadOuts:
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


def run(
    cfg: SNRConfig,
    seed: int,
    replicas: Replicas,
    device: torch.device | str = "cpu",
    *,
    models: Sequence[str] = MODELS,
    snr: float | Sequence[float] | None = None,
    c_mu: float | Sequence[float] | None = None,
    trace: bool = True,
    progress: bool | None = None,
) -> SNRRun:
    """Train the single- and multimodal models of `cfg` for every replica at once.

    Full-batch gradient descent (`cfg.steps` steps of size `cfg.lr`) on the losses of
    `mmnb.worlds.snr` with `cfg.negatives`, taken in the signal–noise coordinates of
    `SignalNoiseEncoder` (the same steps as on the weights, at a fraction of the cost).
    `replicas` is the replica count or the replica ids; `snr` and `c_mu` override the
    config per replica (the phase diagram).
    The single- and multimodal image encoders of a replica start from the same weights.
    `trace` records the read-outs at every step and the OOD accuracy every
    `cfg.eval_every` steps; without it only the final numbers are computed.
    """
    for model in models:
        if model not in MODELS:
            raise ValueError(f"models: {model!r} is not one of {list(MODELS)}")
    ids = replica_ids(replicas)
    data = make_data(cfg, seed, ids, device, snr=snr, c_mu=c_mu)

    def encoder(purpose: str, view: str, frozen: Sequence[str] = ()) -> SignalNoiseEncoder:
        weights = PatchEncoder(cfg.d, cfg.m, ids, seed, cfg.sigma0, purpose, device)
        return SignalNoiseEncoder(weights, data, view, frozen)

    images = {  # both models' image encoders start from the same weights
        model: encoder("init/encoder_image", "image", ("augmented",) if model == "single" else ())
        for model in models
    }
    first = images[models[0]]
    w0, read_outs = first.w0, _ReadOuts(first)
    out = {}
    for model in models:
        h = images[model]
        g = encoder("init/encoder_text", "text") if model == "multi" else None

        def loss(h: SignalNoiseEncoder = h, g: SignalNoiseEncoder | None = g) -> Tensor:
            if g is None:
                return single_modal_loss(h, data, cfg.tau, cfg.negatives)
            return multimodal_loss(h, g, data, cfg.tau, cfg.negatives)

        def objective(_batch: Tensor | None, h: SignalNoiseEncoder = h, loss=loss):
            value = loss()
            if not trace:
                return value
            with torch.no_grad():
                return value, read_outs(h)

        def evaluation(h: SignalNoiseEncoder = h) -> dict[str, Tensor]:
            return {"ood_acc": torch.as_tensor(ood_accuracy(h, data))}

        hist = train(
            objective,
            [h] if g is None else [h, g],
            cfg.steps,
            optimizer="sgd",
            lr=cfg.lr,
            evaluate=evaluation if trace else None,
            eval_every=cfg.eval_every,
            progress=progress,
            desc=f"{model}-modal",
        )
        with torch.no_grad():
            final_loss = loss()
            hist.record(cfg.steps, {"loss": final_loss, **read_outs(h)})
            final = {k: hist.final(k) for k in ("signal", "signal_mean", "noise")}
            final["ood_acc"] = hist.final("ood_acc") if trace else ood_accuracy(h, data)
            final["train_loss"] = hist.final("loss")
            final["initial_loss"] = hist["loss"][0]
            # a head fitted on the training features h(x_i), scored on the whole OOD set
            with threadpool_limits(1, user_api="blas"):
                head = linear_probe(h(data.x), data.y, h(data.x_test), data.y_test)
            final["ood_acc_train_head"] = head["test_acc"]
        out[model] = ModelRun(model, hist, h, g, final)
    return SNRRun(cfg=cfg, data=data, initial=w0, models=out)


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


def growth_rates(run_: SNRRun, steps: int | None = None) -> dict[str, np.ndarray]:
    """Least-squares slopes of log(signal_coef) and log(noise_coef) against the step over
    the first `steps` steps (default `cfg.rate_steps`), one per replica and model:
    `rate_signal_single`, `rate_noise_single`, `rate_signal_multi`, `rate_noise_multi`."""
    steps = run_.cfg.rate_steps if steps is None else steps
    out = {}
    for name, model in run_.models.items():
        for kind in ("signal", "noise"):
            hist = model.history
            t = hist.steps(f"{kind}_coef")
            keep = t <= steps
            logs = np.log(np.maximum(hist[f"{kind}_coef"][keep], 1e-30))  # [T, R]
            out[f"rate_{kind}_{name}"] = np.polyfit(t[keep], logs, 1)[0]
    return out


@dataclass
class PhaseDiagram:
    """OOD accuracy and noise memorization over a grid, per replica.

    Arrays `[len(n_snr2), len(c_mu), n_seeds]` (single-modal values repeated along
    `c_mu`: that model never sees the second modality). `history` holds each model's
    training history (loss per step, replicas in grid order).
    """

    n_snr2: np.ndarray
    c_mu: np.ndarray
    acc_single: np.ndarray
    acc_multi: np.ndarray
    noise_single: np.ndarray
    noise_multi: np.ndarray
    history: dict[str, History]

    @property
    def gap(self) -> np.ndarray:
        return self.acc_multi - self.acc_single

    def mean(self, name: str) -> np.ndarray:
        return getattr(self, name).mean(-1)

    def stderr(self, name: str) -> np.ndarray:
        values = getattr(self, name)
        return (
            values.std(-1, ddof=1) / np.sqrt(values.shape[-1])
            if values.shape[-1] > 1
            else np.full(values.shape[:-1], np.nan)
        )


def phase_diagram(
    cfg: SNRConfig, seed: int, device: torch.device | str = "cpu", progress: bool | None = None
) -> PhaseDiagram:
    """Both models over the grid `cfg.phase_n_snr2` × `cfg.phase_c_mu` (n·SNR² through ‖μ‖),
    `cfg.phase_seeds` replicas per point, in one batched run per model.

    Replica k of every grid point uses the streams of replica k (same noise draws and
    initial weights across the grid). The single-modal model is trained once per
    (n·SNR², replica).
    """
    ns, nc, k = len(cfg.phase_n_snr2), len(cfg.phase_c_mu), cfg.phase_seeds
    snrs = [snr_for(v, cfg.n) for v in cfg.phase_n_snr2]
    single = run(
        cfg,
        seed,
        [r for _ in snrs for r in range(k)],
        device,
        models=("single",),
        snr=[v for v in snrs for _ in range(k)],
        trace=False,
        progress=progress,
    ).single
    multi = run(
        cfg,
        seed,
        [r for _ in snrs for _ in cfg.phase_c_mu for r in range(k)],
        device,
        models=("multi",),
        snr=[v for v in snrs for _ in cfg.phase_c_mu for _ in range(k)],
        c_mu=[c for _ in snrs for c in cfg.phase_c_mu for _ in range(k)],
        trace=False,
        progress=progress,
    ).multi

    def grid(values: np.ndarray, single_modal: bool) -> np.ndarray:
        if single_modal:
            return np.repeat(values.reshape(ns, 1, k), nc, axis=1)
        return values.reshape(ns, nc, k)

    return PhaseDiagram(
        n_snr2=np.asarray(cfg.phase_n_snr2, dtype=float),
        c_mu=np.asarray(cfg.phase_c_mu, dtype=float),
        acc_single=grid(single.final["ood_acc"], True),
        acc_multi=grid(multi.final["ood_acc"], False),
        noise_single=grid(single.final["noise"], True),
        noise_multi=grid(multi.final["noise"], False),
        history={"single": single.history, "multi": multi.history},
    )
