"""Chapter 01's settings: the signal–noise world (`SNRConfig`) and the colored digits
(`DigitsConfig`, knobs named `digits_*`); both are knobs of the chapter's parameters."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from mmnb.config import WorldConfig, knob
from mmnb.ranges import (
    FRACTION,
    LEARNING_RATE,
    SCALE,
    STEPS,
    TEMPERATURE,
    WIDTH,
    Range,
)

__all__ = ["NEGATIVES", "SOURCES", "DigitsConfig", "SNRConfig", "cmu_tag", "snr_for"]

NEGATIVES = ("opposite_label", "all")
SOURCES = ("sklearn", "mnist")


def snr_for(n_snr2: float, n: int) -> float:
    """The SNR that gives n·SNR² = `n_snr2` with n samples."""
    return math.sqrt(n_snr2 / n)


def cmu_tag(c_mu: float) -> str:
    """The tag of a C_μ value in a claim's name: "half" for 0.5, else the value ("1",
    "2_66")."""
    return "half" if c_mu == 0.5 else f"{c_mu:g}".replace(".", "_")


@dataclass(frozen=True)
class SNRConfig(WorldConfig):
    """The settings of chapter 01. Defaults: the paper's Fig. 1 ("book" profile).

    τ and σ_0 are not given in the paper; they are our choice.
    """

    PAPER: ClassVar[dict] = {
        "eval_every": 5,
        "phase_n_snr2": (0.125, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 6.0),
        "phase_c_mu": (0.25, 0.5, 1.0, 1.5, 2.0, 2.66, 3.0, 4.0, 5.0, 7.0),
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
    # C_μ of the controls at Fig. 1's n·SNR² (the second modality too weak to teach)
    control_c_mu: tuple = knob((1.0, 0.5), SCALE)
    # the theorem's window: n·SNR² in [1.7, 1.8] and C_μ ≥ 2.66
    window_n_snr2: float = knob(1.75, Range(1e-4, 1e4))  # n·SNR² of the window run
    window_c_mu: float = knob(2.66, SCALE)  # C_μ of the window run
    # the phase diagram
    phase_diagram: bool = knob(True)  # run the phase diagram
    phase_n_snr2: tuple = knob((0.25, 0.5, 1.0, 2.0, 4.0), Range(1e-4, 1e4))  # n·SNR² grid
    phase_c_mu: tuple = knob((0.5, 1.0, 1.7, 2.66, 3.0, 5.0), SCALE)  # C_μ grid
    phase_seeds: int = knob(3, Range(1, 64))  # replicas per grid point

    def check(self) -> None:
        if self.rate_steps > self.steps:
            raise ValueError(
                f"rate_steps={self.rate_steps} must not exceed steps={self.steps}; "
                f"allowed: an integer in [2, {self.steps}]"
            )
        for name in ("phase_n_snr2", "phase_c_mu", "control_c_mu"):
            if not getattr(self, name):
                raise ValueError(f"{name}=(): give at least one grid value")

    @property
    def mu_norm(self) -> float:
        """‖μ‖ = SNR · σ_ξ · √d."""
        return self.snr * self.sigma_xi * math.sqrt(self.d)

    @property
    def n_snr2(self) -> float:
        """n·SNR², the quantity the theory depends on."""
        return self.n * self.snr**2


@dataclass(frozen=True)
class DigitsConfig(WorldConfig):
    """The colored-digits experiment of chapter 01 (knob names start with `digits_`)."""

    PAPER: ClassVar[dict] = {"digits_source": "mnist", "digits_batch_size": 512}

    digits_source: str = knob("sklearn", (*SOURCES, "none"))  # images ('none': skip)
    digits_steps: int = knob(1000, STEPS)  # Adam steps of each model
    digits_batch_size: int = knob(256, Range(2, 60_000))  # minibatch size
    digits_lr: float = knob(1e-3, LEARNING_RATE)  # Adam learning rate
    digits_tau: float = knob(0.1, TEMPERATURE)  # temperature of the InfoNCE loss
    digits_hidden: int = knob(256, WIDTH)  # hidden ReLU units of the MLP
    digits_p_color: float = knob(0.775, FRACTION)  # P(painted in c_digit)
    digits_label_noise: float = knob(0.1, FRACTION)  # P(label replaced)
    digits_min_scale: float = knob(0.5, Range(0.05, 1.0))  # smallest crop area
    digits_noisy_captions: bool = knob(False)  # captions name the noisy label
    digits_text_encoder: str = knob("onehot", ("onehot", "linear"))  # caption map
