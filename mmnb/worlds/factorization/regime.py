"""Chapter 02's regime map: the nuisance-only augmentation's scale against the pool size.

Zhang, Wang and Wang's bound (in the chapter's form, error ≤ 2φ / (1 − σ²_k+1)): a graph of
positive pairs gives good features when its pairs stay in their class (consistency) and
it links each class together (diversity). An augmentation snapped to a pool of n images
by a Gaussian kernel of scale s on some coordinates has both when, on those coordinates,

- the nearest pool image of the same class gets at least e⁻¹ of an image's own weight,
  d_nn(n) ≤ √2·s (diverse; d_nn shrinks as the pool grows), and
- two class means, `class_sep` apart, get less than that, `class_sep` > √2·s
  (consistent).

On the signal coordinates (the nuisance-only augmentation) both hold in a window of s
that widens as the pool grows. On all coordinates (the Gaussian augmentation) the
nuisance makes d_nn larger than `class_sep` at every pool size of the map, so no
Gaussian scale is both: captions, consistent and diverse by construction, and the
nuisance-only augmentation inside its window, are predicted to beat the best one.

- `nuisance_only_bound_best` (the best Gaussian bound minus the nuisance-only bound at
  s = `aug_nuisance`, t95 ≥ 0.595) is predicted where s is inside the window at that
  pool size; below it the graph falls apart, above it the kernel crosses classes (the
  chapter's controls `nuisance_only_bound_narrow`/`_wide` are its two ends);
- `probe_acc_text_minus_aug_exact` (captions over the best Gaussian scale, exact graphs,
  t95 ≥ 0.13) where no Gaussian scale is consistent and diverse: d_nn > `class_sep` on
  all coordinates (every cell here: the pool would need far more images);
- its control `consistency_removed` (noisy captions, η = `noisy_caption_noise`, stay
  below that margin) is predicted to hold in every cell.

d_nn is the median distance from a pool image to its nearest pool image of the same
class, on one pool of the chapter's world drawn at calibration seed 100 (never reported).
The axes are the knobs `aug_nuisance` (the nuisance-only scale the prediction reads;
the sweep of the nuisance-only scales is the axis itself) and `pool_size`. Each cell runs
the chapter's exact-graph analysis as it is (three draws of pool and captions, the
chapter's Gaussian scales), with the caption sweeps at one point each and the other
experiments made small: one rank and short runs of the embedding tables, and two
replicas of tiny, briefly trained neural encoders and students. None of those is read by
the map's claims.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import cache
from typing import Any

from mmnb.maps import Axis, RegimeMap
from mmnb.worlds.factorization.config import FactorizationConfig

__all__ = ["REGIME_MAP", "SCALES", "nearest_same_class", "premise", "window"]

BASE = FactorizationConfig()
SCALES = (0.1, 0.3, 0.5, 0.75, 1.0, 1.5)  # nuisance-only scales s (the map's x axis)
POOLS = (100, 200, 400, 800)
CALIBRATION_SEED = 100


@cache
def nearest_same_class(pool_size: int, coords: str = "signal") -> float:
    """Median distance to the nearest same-class image in a pool of the chapter's world
    (calibration seed 100), on the signal coordinates or on `all` of them."""
    import torch

    from mmnb.worlds.factorization.world import CaptionWorld

    cfg = replace(BASE, pool_size=int(pool_size), neural_batch=min(BASE.neural_batch, 64))
    x, y = CaptionWorld(cfg, CALIBRATION_SEED).sample(cfg.pool_size, "data/pool", 0)
    z = x.double() if coords == "all" else x.double()[:, : cfg.signal_dims]
    dist = torch.cdist(z, z).fill_diagonal_(math.inf)
    dist = dist.masked_fill(y[:, None] != y[None, :], math.inf)
    return float(dist.min(1).values.median())


def window(pool_size: int, coords: str = "signal") -> tuple[float, float]:
    """The scales s, [d_nn/√2, class_sep/√2), at which a kernel on `coords` is both
    diverse and consistent (empty when the first end exceeds the second)."""
    return nearest_same_class(pool_size, coords) / math.sqrt(2), BASE.class_sep / math.sqrt(2)


def premise(claim: str, scale: Any, pool_size: Any) -> bool:
    """Where the bound predicts `claim` holds at nuisance-only scale s and pool size n."""
    lo, hi = window(int(pool_size))
    gauss_lo, gauss_hi = window(int(pool_size), "all")
    no_good_gaussian = gauss_lo >= gauss_hi
    if claim == "nuisance_only_bound_best":
        return no_good_gaussian and lo <= float(scale) < hi
    if claim == "probe_acc_text_minus_aug_exact":
        return no_good_gaussian
    if claim == "consistency_removed":
        return True
    raise KeyError(f"the map of 02_matrix_factorization reads no claim {claim!r}")


REGIME_MAP = RegimeMap(
    chapter="02_matrix_factorization",
    x=Axis("aug_nuisance", SCALES, "nuisance-only scale s"),
    y=Axis("pool_size", POOLS, "pool size n"),
    claims=(
        "nuisance_only_bound_best",
        "probe_acc_text_minus_aug_exact",
        "consistency_removed",
    ),
    premise=premise,
    boundary="the nuisance-only augmentation beats the best Gaussian scale for "
    "d_nn(n)/√2 ≤ s < class_sep/√2 (d_nn: nearest same-class pool image on the signal "
    "coordinates; the window opens to smaller s as the pool grows); captions beat it in "
    "every cell (on all coordinates d_nn exceeds class_sep: no Gaussian scale is "
    "consistent and diverse); noisy captions do not",
    fixed={
        "nuisance_aug_grid": SCALES,
        "noise_grid": (0.1,),
        "m_grid": (3,),
        "gap_ranks": (4,),
        "table_steps": 100,
        "minibatch_steps": 100,
        "hidden": 16,
        "neural_steps": 20,
        "neural_batch": 64,
        "neural_replicas": 2,
        "n_test": 200,
        "student_train": 256,
        "student_steps": 20,
        "student_batch": 32,
    },
    seeds=(0,),
)
