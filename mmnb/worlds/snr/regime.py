"""Chapter 01's regime map: the signal-to-noise ratio against the second modality's strength.

Huang et al.'s theorems (in the chapter's reading): with one modality the noise of each
training sample is memorized faster than the signal is learned while n·SNR² is small, so
the single-modal encoder fails out of distribution; a second modality whose signal is
C_μ times stronger and whose noise is independent makes the signal grow C_μ times faster,
and the multimodal encoder learns it. The proofs hold in a narrow window
(1.7 ≤ n·SNR² ≤ 1.8, C_μ ≥ 2.66); the chapter's rate comparison of the linearized
dynamics puts the two boundaries at n·SNR² ≈ 2 (one modality learns the signal above it)
and C_μ·n·SNR² ≈ 2 (two modalities learn it above it). The map crosses both:

- `ood_acc_multi` (the multimodal OOD accuracy, t95 ≥ 0.9) is predicted to hold where
  C_μ·n·SNR² > 2;
- `ood_gap` (multi − single, paired, t95 ≥ 0.15) where C_μ·n·SNR² > 2 and n·SNR² < 2:
  the second modality teaches a signal that one modality alone does not learn;
- `ood_acc_single` (the single-modal OOD accuracy stays below 0.85, t95) where
  n·SNR² < 2, whatever C_μ (the single-modal model never sees the second modality): the
  prediction's control across the map.

The axes are the knobs `snr` (n·SNR² = 100·snr² with the chapter's n = 100: 0.25 to 4)
and `c_mu`. Each cell runs the chapter with its five replicas, without the phase diagram
and the colored digits, with the OOD probe at the end only (`eval_every=0`; the final
accuracy is the same probe) and with one C_μ control (C_μ = 1) instead of two. The
chapter's other runs (the control at n·SNR² = 8, the window run and the label-free
negatives) have no knob that skips them and run in every cell.
"""

from __future__ import annotations

from typing import Any

from mmnb.maps import Axis, RegimeMap
from mmnb.worlds.snr.config import SNRConfig

__all__ = ["REGIME_MAP", "n_snr2", "premise"]

N = SNRConfig().n
BOUNDARY = 2.0  # the rate comparison's boundary, for n·SNR² and for C_μ·n·SNR²


def n_snr2(snr: Any) -> float:
    """n·SNR² of a cell at the chapter's n, rounded as the axis states it."""
    return round(N * float(snr) ** 2, 2)


def premise(claim: str, snr: Any, c_mu: Any) -> bool:
    """Where the theory predicts `claim` holds at this SNR and C_μ."""
    single_fails = n_snr2(snr) < BOUNDARY
    multi_learns = float(c_mu) * n_snr2(snr) > BOUNDARY
    if claim == "ood_acc_single":
        return single_fails
    if claim == "ood_acc_multi":
        return multi_learns
    if claim == "ood_gap":
        return single_fails and multi_learns
    raise KeyError(f"the map of 01_snr reads no claim {claim!r}")


REGIME_MAP = RegimeMap(
    chapter="01_snr",
    x=Axis("snr", (0.05, 0.0707, 0.1, 0.1414, 0.2), "SNR (n·SNR² = 0.25, 0.5, 1, 2, 4)"),
    y=Axis("c_mu", (0.5, 1.0, 1.7, 2.66, 5.0), "C_μ"),
    claims=("ood_acc_multi", "ood_gap", "ood_acc_single"),
    premise=premise,
    boundary="C_μ·n·SNR² = 2 (the multimodal encoder learns the signal above it) and "
    "n·SNR² = 2 (the single-modal one learns it too above it): the gap is predicted "
    "between the two, the single-modal accuracy stays low left of n·SNR² = 2",
    fixed={
        "phase_diagram": False,
        "digits_source": "none",
        "eval_every": 0,
        "control_c_mu": (1.0,),
    },
    seeds=(0,),
)
