"""Chapter 04, identifiability: multimodal contrastive learning block-identifies the
content (Daunhawer et al., 2023, "Identifiability Results for Multimodal Contrastive
Learning").

    config.py    `IdentifiabilityConfig`; the paper's table of settings (`Setting`,
                 `table`, `replicas`)
    world.py     the latent model (`LatentModel`, the chapter's `World`): content,
                 style, modality-specific latents and two invertible mixings
    fit.py       the encoders, the two contrastive objectives and `run`
    measures.py  R² of every latent block from the encodings (`evaluate`,
                 `direction_r2`)
    figures.py   the generative process as a graph
    long.py      the long experiment, run once and stored (`long.load`)
"""

from mmnb.worlds.identifiability import long
from mmnb.worlds.identifiability.config import (
    COVARIANCES,
    OBJECTIVES,
    SIGMA_FORMS,
    IdentifiabilityConfig,
    Setting,
    replicas,
    table,
)
from mmnb.worlds.identifiability.fit import (
    ALIGN,
    Encoders,
    IdentifiabilityRun,
    batches_ahead,
    contrastive_loss,
    make_encoders,
    pad_hidden_units,
    reference_info_nce,
    run,
)
from mmnb.worlds.identifiability.measures import Evaluation, direction_r2, encode, evaluate
from mmnb.worlds.identifiability.world import (
    BLOCKS,
    LatentModel,
    ReplicaStreams,
    mean_abs_correlation,
    shaped_covariance,
    wishart,
)

World = LatentModel
CONFIGS = (IdentifiabilityConfig,)

__all__ = [
    "ALIGN",
    "BLOCKS",
    "CONFIGS",
    "COVARIANCES",
    "OBJECTIVES",
    "SIGMA_FORMS",
    "Encoders",
    "Evaluation",
    "IdentifiabilityConfig",
    "IdentifiabilityRun",
    "LatentModel",
    "ReplicaStreams",
    "Setting",
    "World",
    "batches_ahead",
    "contrastive_loss",
    "direction_r2",
    "encode",
    "evaluate",
    "long",
    "make_encoders",
    "mean_abs_correlation",
    "pad_hidden_units",
    "reference_info_nce",
    "replicas",
    "run",
    "shaped_covariance",
    "table",
    "wishart",
]
