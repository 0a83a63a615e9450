"""Chapter 03: the symmetric InfoNCE loss learns pointwise mutual information.

After Uesaka et al. (2024), "Understanding multimodal contrastive learning through
pointwise mutual information". `PMIConfig` holds every setting of the chapter.

    config.py      PMIConfig and RHO_LIMIT, the one bound on |ρ|
    world.py       the ring world (`RingWorld`, the chapter's `World`): the joint on
                   Z_n × Z_n, its PMI and information, batches of pairs
    infonce.py     the InfoNCE loss of a logit table from the cell counts of a batch
    fit.py         training: a free logit table (`fit_free_table(s)`) and embeddings
                   with a cosine or kernel similarity (`fit_embedding(s|_dims)`)
    measures.py    read-outs of a table: expected loss, row-offset spread, rank ceiling,
                   the difference of two groups of tables against run-to-run noise
    downstream.py  the zero-shot and linear-probe risks of a label c(y), exactly
    gaussian.py    the second world: the correlated Gaussian pair and its MLP encoders
"""

from mmnb.worlds.pmi.config import RHO_LIMIT, PMIConfig
from mmnb.worlds.pmi.downstream import (
    bayes_cross_entropy,
    class_labels,
    kl_bound,
    probe_cross_entropy,
    prototype_cross_entropy,
)
from mmnb.worlds.pmi.fit import (
    KINDS,
    EmbeddingFit,
    EmbeddingTraining,
    FreeTableFit,
    embedding_objective,
    fit_embedding_dims,
    fit_embeddings,
    fit_free_table,
    fit_free_tables,
    kind_weights,
)
from mmnb.worlds.pmi.gaussian import (
    GaussianFit,
    GaussianWorld,
    fit_gaussian,
    sample_gaussian_pairs,
)
from mmnb.worlds.pmi.infonce import DIRECTIONS, batch_logits, batch_loss, pair_counts
from mmnb.worlds.pmi.measures import (
    TableDifference,
    expected_loss,
    rank_ceiling,
    shift_spread,
    table_difference,
)
from mmnb.worlds.pmi.world import (
    PairSampler,
    RingWorld,
    mutual_information,
    pmi,
    ring_joint,
)

World = RingWorld
CONFIGS = (PMIConfig,)

__all__ = [
    "CONFIGS",
    "DIRECTIONS",
    "KINDS",
    "RHO_LIMIT",
    "EmbeddingFit",
    "EmbeddingTraining",
    "FreeTableFit",
    "GaussianFit",
    "GaussianWorld",
    "PMIConfig",
    "PairSampler",
    "RingWorld",
    "TableDifference",
    "World",
    "batch_logits",
    "batch_loss",
    "bayes_cross_entropy",
    "class_labels",
    "expected_loss",
    "embedding_objective",
    "fit_embedding_dims",
    "fit_embeddings",
    "fit_free_table",
    "fit_free_tables",
    "fit_gaussian",
    "kind_weights",
    "kl_bound",
    "mutual_information",
    "pair_counts",
    "pmi",
    "probe_cross_entropy",
    "prototype_cross_entropy",
    "rank_ceiling",
    "ring_joint",
    "sample_gaussian_pairs",
    "shift_spread",
    "table_difference",
]
