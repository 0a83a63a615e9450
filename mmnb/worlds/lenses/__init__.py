"""Chapter 06, *One world, five lenses*: one Gaussian latent model read through the theories
of chapters 1–5 (our synthesis, one lens per paper).

`World` (`LensesWorld`) draws pairs (x, y): two invertible mixings of ρ-correlated Gaussian
content and private latents, so the PMI is known in closed form (`mmnb.gaussian`); the
same draw with content shared exactly (`shared=True`) serves the lenses whose premise that
is, and `repaired` re-pairs a fraction of the pairs (a PMI bounded below). The
entry points train the three models (`fit_clip`, `fit_spectral`, `fit_single_modal`,
config first; CLIP's data and replicas as one `ClipSetup`); the read-outs (`measures`)
and the Hermite singular functions (`hermite`) measure what each lens predicts.
"""

from __future__ import annotations

from mmnb.worlds.lenses.config import LensesConfig
from mmnb.worlds.lenses.fit import (
    AUGMENT_BLOCK,
    VIEWS,
    ClipObjective,
    ClipSetup,
    TwoTowerFit,
    augmentation_noise,
    clip_objective,
    fit_clip,
    fit_single_modal,
    fit_spectral,
)
from mmnb.worlds.lenses.hermite import hermite_exponents, hermite_features, hermite_gram_variance
from mmnb.worlds.lenses.measures import (
    PMIReadout,
    embed,
    heldout_loss,
    heldout_r2,
    latent_r2,
    logits,
    ood_accuracy,
    pmi_readout,
    pmi_weights,
    tau_ratio,
)
from mmnb.worlds.lenses.world import LensesSample, LensesWorld, repaired, repaired_pmi

World = LensesWorld
CONFIGS = (LensesConfig,)

__all__ = [
    "AUGMENT_BLOCK",
    "CONFIGS",
    "ClipObjective",
    "ClipSetup",
    "VIEWS",
    "LensesConfig",
    "LensesSample",
    "LensesWorld",
    "PMIReadout",
    "TwoTowerFit",
    "World",
    "augmentation_noise",
    "clip_objective",
    "embed",
    "fit_clip",
    "fit_single_modal",
    "fit_spectral",
    "heldout_loss",
    "heldout_r2",
    "hermite_exponents",
    "hermite_features",
    "hermite_gram_variance",
    "latent_r2",
    "logits",
    "ood_accuracy",
    "pmi_readout",
    "pmi_weights",
    "repaired",
    "repaired_pmi",
    "tau_ratio",
]
