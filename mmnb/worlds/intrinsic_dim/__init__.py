"""Chapter 05, *Intrinsic dimension*: Gui, Ma and Ma, "Multi-modal Contrastive Learning
Adapts to Intrinsic Dimensions of Shared Latent Variables" (NeurIPS 2025, arXiv
2505.12473).

Two modalities share a k-dimensional latent z (`world`); encoders f and g, one replica
per output dimension or temperature, are trained with the symmetric InfoNCE loss
(`fit`); their dimension, alignment, retrieval and batch spacing are read off the test
pairs (`measures`), and a second dimension off the slope of the loss in log τ
(`tau_slope`); where a learned temperature can stop is read off the stationarity of the
loss in 1/τ (`tau_optimum`).

    config.py     IntrinsicDimConfig
    world.py      World(cfg, seed, device): the shared-latent world, its links and splits
    encoders.py   IntrinsicFit: the encoder pair, its temperatures and embeddings
    fit.py        fit_encoders (and training_objective, one step of it)
    measures.py   measure: ID, alignment ratio, retrieval, spacing per replica
    tau_slope.py  the τ-slope dimension and its population prediction
    tau_optimum.py  where the minibatch loss is stationary in τ (frozen embeddings)
    figures.py    the chapter's own figure helpers (markers, legends, the spacing scatter)
    regime.py     REGIME_MAP: the regime map over k and d (`mmnb.maps`)
"""

from mmnb.worlds.intrinsic_dim.config import (
    BATCHES,
    LINKS,
    NORMALIZATIONS,
    IntrinsicDimConfig,
    authors_recipe,
)
from mmnb.worlds.intrinsic_dim.encoders import IntrinsicFit
from mmnb.worlds.intrinsic_dim.fit import (
    Training,
    fit_encoders,
    sub_batch_info_nce,
    sub_batch_mask,
    training_objective,
)
from mmnb.worlds.intrinsic_dim.measures import (
    Measures,
    alignment_ratio,
    authors_retrieval,
    id_estimates,
    knn_r2_columns,
    measure,
    nn_spacing,
)
from mmnb.worlds.intrinsic_dim.tau_optimum import (
    partner_nearest,
    stationarity_gap,
    stationary_tau,
)
from mmnb.worlds.intrinsic_dim.tau_slope import (
    TauSlope,
    tau_slope_dimension,
    tau_slope_population,
)
from mmnb.worlds.intrinsic_dim.world import (
    SharedLatentSample,
    SharedLatentWorld,
    Splits,
    World,
    mispair,
    stack_samples,
    truncation_link,
)

CONFIGS = (IntrinsicDimConfig,)

__all__ = [
    "BATCHES",
    "CONFIGS",
    "LINKS",
    "NORMALIZATIONS",
    "IntrinsicDimConfig",
    "IntrinsicFit",
    "Measures",
    "SharedLatentSample",
    "SharedLatentWorld",
    "Splits",
    "TauSlope",
    "Training",
    "World",
    "alignment_ratio",
    "authors_recipe",
    "authors_retrieval",
    "fit_encoders",
    "id_estimates",
    "knn_r2_columns",
    "measure",
    "mispair",
    "nn_spacing",
    "partner_nearest",
    "stack_samples",
    "stationarity_gap",
    "stationary_tau",
    "sub_batch_info_nce",
    "sub_batch_mask",
    "tau_slope_dimension",
    "tau_slope_population",
    "training_objective",
    "truncation_link",
]
