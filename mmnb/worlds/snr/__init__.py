"""Chapter 01, signal and noise: why two modalities learn what one cannot (Huang et al., 2024).

Two worlds. The signal–noise world (`SNRWorld(cfg, seed, device, replicas)`, config
`SNRConfig`): two-patch samples [y·μ, ξ] in two modalities, encoded by shared bias-free
ReLU neurons (`PatchEncoder`) and trained on the single-modal or multimodal InfoNCE
loss (`fit_snr`, over a grid: `phase_diagram`), read out as signal learning and noise
memorization (`measures`). The colored digits (`DigitsWorld`, config `DigitsConfig`):
the ColoredMNIST recipe, SimCLR against CLIP with an ideal caption encoder
(`fit_digits`), read out as color reliance.
"""

from __future__ import annotations

from mmnb.worlds.snr.config import DigitsConfig, SNRConfig, cmu_tag, snr_for
from mmnb.worlds.snr.digits import ColoredDigits, DataUnavailable, DigitsWorld
from mmnb.worlds.snr.digits_fit import DigitsFit, fit_digits
from mmnb.worlds.snr.encoders import PatchEncoder, SignalNoiseEncoder
from mmnb.worlds.snr.fit import (
    ModelFit,
    PhaseDiagram,
    SNRFit,
    fit_snr,
    make_encoder,
    model_loss,
    phase_diagram,
)
from mmnb.worlds.snr.losses import multimodal_loss, single_modal_loss
from mmnb.worlds.snr.measures import (
    growth_rates,
    noise_memorization,
    ood_accuracy,
    predicted_rates,
    signal_learning,
)
from mmnb.worlds.snr.world import SNRData, SNRSample, SNRWorld

__all__ = [
    "CONFIGS",
    "ColoredDigits",
    "DataUnavailable",
    "DigitsConfig",
    "DigitsFit",
    "DigitsWorld",
    "ModelFit",
    "PatchEncoder",
    "PhaseDiagram",
    "SNRConfig",
    "SNRData",
    "SNRFit",
    "SNRSample",
    "SNRWorld",
    "SignalNoiseEncoder",
    "World",
    "cmu_tag",
    "fit_digits",
    "fit_snr",
    "make_encoder",
    "model_loss",
    "growth_rates",
    "multimodal_loss",
    "noise_memorization",
    "ood_accuracy",
    "phase_diagram",
    "predicted_rates",
    "signal_learning",
    "single_modal_loss",
    "snr_for",
]

CONFIGS = (SNRConfig, DigitsConfig)
World = SNRWorld
