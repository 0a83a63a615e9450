"""Chapter 01's training: single- and multimodal encoders on the signal–noise world.

`fit_snr(cfg, seed, replicas, device)` trains both models (full-batch gradient descent on
the losses of `mmnb.worlds.snr.losses`) for every replica at once and returns an
`SNRFit`, recording the read-outs of `mmnb.worlds.snr.measures`; `phase_diagram` runs a
grid of n·SNR² and C_μ as one batched run per model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import Tensor

from mmnb.nets import Replicas, replica_ids
from mmnb.probes import linear_probe
from mmnb.train import History, train
from mmnb.worlds.snr.config import SNRConfig, snr_for
from mmnb.worlds.snr.encoders import PatchEncoder, SignalNoiseEncoder
from mmnb.worlds.snr.losses import multimodal_loss, single_modal_loss
from mmnb.worlds.snr.measures import ReadOuts, ood_accuracy
from mmnb.worlds.snr.world import SNRData, SNRWorld

__all__ = [
    "MODELS",
    "ModelFit",
    "PhaseDiagram",
    "SNRFit",
    "fit_snr",
    "make_encoder",
    "model_loss",
    "phase_diagram",
]

MODELS = ("single", "multi")


@dataclass
class ModelFit:
    """One trained model: its `history` (per step: `loss`, `signal`, `noise`,
    `signal_coef`, `noise_coef`; every `eval_every` steps: `ood_acc`), its encoders and
    its final numbers (one value per replica)."""

    model: str
    history: History
    encoder: SignalNoiseEncoder
    text_encoder: SignalNoiseEncoder | None
    final: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class SNRFit:
    """What `fit_snr` returns: the config, the data, the initial weights and the models."""

    cfg: SNRConfig
    data: SNRData
    initial: Tensor
    models: dict[str, ModelFit]

    @property
    def history(self) -> dict[str, History]:
        """Each model's training history, by model name."""
        return {name: model.history for name, model in self.models.items()}

    @property
    def single(self) -> ModelFit:
        return self.models["single"]

    @property
    def multi(self) -> ModelFit:
        return self.models["multi"]

    def summary(self) -> dict[str, float]:
        """Mean over replicas of each final number, named `<metric>_<model>`."""
        return {
            f"{k}_{name}": float(np.mean(v))
            for name, model in self.models.items()
            for k, v in model.final.items()
        }


def make_encoder(
    cfg: SNRConfig,
    data: SNRData,
    ids: Sequence[int],
    seed: int,
    purpose: str,
    view: str,
    frozen: Sequence[str] = (),
    device: torch.device | str = "cpu",
) -> SignalNoiseEncoder:
    """One encoder of the chapter: ReLU patch weights drawn from the stream `purpose`,
    trained in the signal–noise coordinates of `data` seen as `view`."""
    weights = PatchEncoder(cfg.d, cfg.m, ids, seed, cfg.sigma0, purpose, device)
    return SignalNoiseEncoder(weights, data, view, frozen)


def model_loss(
    cfg: SNRConfig, data: SNRData, h: SignalNoiseEncoder, g: SignalNoiseEncoder | None = None
) -> Callable[[], Tensor]:
    """The full-batch loss the chapter trains: single-modal without a text encoder `g`,
    multimodal with one (per replica, shape `[R]`)."""

    def loss() -> Tensor:
        if g is None:
            return single_modal_loss(h, data, cfg.tau, cfg.negatives)
        return multimodal_loss(h, g, data, cfg.tau, cfg.negatives)

    return loss


def fit_snr(
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
) -> SNRFit:
    """Train the single- and multimodal models of `cfg` for every replica at once.

    Full-batch gradient descent (`cfg.steps` steps of size `cfg.lr`) on the losses of
    `mmnb.worlds.snr.losses` with `cfg.negatives`, taken in the signal–noise coordinates
    of `SignalNoiseEncoder` (the same steps as on the weights, at a fraction of the
    cost). `replicas` is the replica count or the replica ids; `snr` and `c_mu` override
    the config per replica (the phase diagram).
    The single- and multimodal image encoders of a replica start from the same weights.
    `trace` records the read-outs at every step and the OOD accuracy every
    `cfg.eval_every` steps; without it only the final numbers are computed.
    """
    for model in models:
        if model not in MODELS:
            raise ValueError(f"models: {model!r} is not one of {list(MODELS)}")
    ids = replica_ids(replicas)
    data = SNRWorld(cfg, seed, device, ids, snr=snr, c_mu=c_mu).data()

    def encoder(purpose: str, view: str, frozen: Sequence[str] = ()) -> SignalNoiseEncoder:
        return make_encoder(cfg, data, ids, seed, purpose, view, frozen, device)

    images = {  # both models' image encoders start from the same weights
        model: encoder("init/encoder_image", "image", ("augmented",) if model == "single" else ())
        for model in models
    }
    first = images[models[0]]
    w0, read_outs = first.w0, ReadOuts(first)
    out = {}
    for model in models:
        h = images[model]
        g = encoder("init/encoder_text", "text") if model == "multi" else None

        loss = model_loss(cfg, data, h, g)

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
        out[model] = ModelFit(model, hist, h, g, final)
    return SNRFit(cfg=cfg, data=data, initial=w0, models=out)


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
    single = fit_snr(
        cfg,
        seed,
        [r for _ in snrs for r in range(k)],
        device,
        models=("single",),
        snr=[v for v in snrs for _ in range(k)],
        trace=False,
        progress=progress,
    ).single
    multi = fit_snr(
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
