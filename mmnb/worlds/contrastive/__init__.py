"""Chapter 00, contrastive learning in one notebook (CLIP: Radford et al., 2021).

A paired world with a known shared latent (`PairedWorld`, built as
`PairedWorld(cfg, seed, device)`) and CLIP-style training of two encoders with the
symmetric InfoNCE loss (`fit_encoders(cfg, ClipSetup(train_pairs, taus, …), test_pairs)`),
one replica per seed and temperature; `held_out_measures` reads retrieval, alignment and
uniformity off held-out pairs, `latent_r2` the held-out R² of a latent; `PairedWorld.unpaired`
shuffles the partners (the control).
"""

from __future__ import annotations

from mmnb.worlds.contrastive.config import ContrastiveConfig
from mmnb.worlds.contrastive.fit import (
    ClipObjective,
    ClipSetup,
    PairedFit,
    clip_objective,
    fit_encoders,
)
from mmnb.worlds.contrastive.measures import KERNEL_ALPHAS, held_out_measures, latent_r2
from mmnb.worlds.contrastive.world import PairedSample, PairedWorld

__all__ = [
    "CONFIGS",
    "KERNEL_ALPHAS",
    "ClipObjective",
    "ClipSetup",
    "ContrastiveConfig",
    "PairedFit",
    "PairedSample",
    "PairedWorld",
    "World",
    "clip_objective",
    "fit_encoders",
    "held_out_measures",
    "latent_r2",
]

CONFIGS = (ContrastiveConfig,)
World = PairedWorld
