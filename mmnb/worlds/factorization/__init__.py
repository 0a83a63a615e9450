"""Chapter 02, *Multimodal contrastive learning is asymmetric matrix factorization*
(Zhang, Wang and Wang, ICML 2023).

The multimodal spectral contrastive loss factorizes the normalized image–text
co-occurrence matrix P̃ = D_V^{-1/2} P_M D_L^{-1/2} (`measures`), and its image encoder
is the single-modal optimum on the graph of images that share a caption (`graphs`:
induced graphs, consistency, diversity and the generalization bound). Two worlds
(`world`): a block-structured joint written down whole (`block_joint`), and `World`
(`CaptionWorld`): classes, nuisance and caption pools, whose images are drawn by
purpose. The entry points (`fit`, config first) train embedding tables
(`fit_factorization`) and neural MMCL/SSCL encoders (`fit_caption_encoder`,
`fit_augmentation_encoder`); `resampling` holds the CLIP-guided resampling rules of the
paper's ImageNet experiment and the SimCLR students they steer (`fit_students`);
`figures` the chapter's own figure.
"""

from __future__ import annotations

from mmnb.worlds.factorization import figures
from mmnb.worlds.factorization.config import FactorizationConfig
from mmnb.worlds.factorization.fit import (
    CaptionEncoder,
    CaptionEncoderFit,
    EncoderTraining,
    FactorizationFit,
    SSCLEncoderFit,
    caption_encoder,
    fit_augmentation_encoder,
    fit_caption_encoder,
    fit_factorization,
)
from mmnb.worlds.factorization.graphs import (
    GraphReport,
    augmentation_joint,
    consistency,
    disagreement,
    generalization_bound,
    graph_report,
    induced_graph,
    projection_head_error,
    spectral_features,
    spectral_gap,
    top_subspace,
)
from mmnb.worlds.factorization.measures import (
    SVDOptimum,
    factor_loss,
    normalized_cooccurrence,
    svd_optimum,
    weighted_factors,
)
from mmnb.worlds.factorization.resampling import (
    RESAMPLING,
    Student,
    StudentFit,
    drop_negatives,
    drop_positives,
    fit_student,
    fit_students,
    resampling_loss,
    select_new_positive,
)
from mmnb.worlds.factorization.world import (
    AUGMENTATIONS,
    Augmentation,
    CaptionWorld,
    Images,
    block_joint,
    caption_joint,
)

World = CaptionWorld
CONFIGS = (FactorizationConfig,)

__all__ = [
    "AUGMENTATIONS",
    "CONFIGS",
    "RESAMPLING",
    "Augmentation",
    "CaptionEncoder",
    "CaptionEncoderFit",
    "CaptionWorld",
    "EncoderTraining",
    "FactorizationConfig",
    "FactorizationFit",
    "GraphReport",
    "Images",
    "SSCLEncoderFit",
    "SVDOptimum",
    "Student",
    "StudentFit",
    "World",
    "augmentation_joint",
    "block_joint",
    "caption_encoder",
    "caption_joint",
    "consistency",
    "disagreement",
    "drop_negatives",
    "drop_positives",
    "figures",
    "factor_loss",
    "fit_augmentation_encoder",
    "fit_caption_encoder",
    "fit_factorization",
    "fit_student",
    "fit_students",
    "generalization_bound",
    "graph_report",
    "induced_graph",
    "normalized_cooccurrence",
    "projection_head_error",
    "resampling_loss",
    "select_new_positive",
    "spectral_features",
    "spectral_gap",
    "svd_optimum",
    "top_subspace",
    "weighted_factors",
]
