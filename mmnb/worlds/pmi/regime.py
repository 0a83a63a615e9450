"""Chapter 03's regime map: the batch size against the width of the ring's offset.

Uesaka et al.'s theorem: for every batch size N ≥ 2 the symmetric InfoNCE loss is
minimized by the similarity PMI + C. A similarity with enough capacity (the free table)
can reach it at every N; a rank-d similarity (the cosine of d-dimensional embeddings)
cannot get closer than the best rank-d approximation of the centred PMI, whose RMSE is
sd(PMI)·√(1 − c_d²) with c_d the rank-d ceiling (Eckart–Young). The width of the ring's
offset sets how much of the PMI a rank-d matrix misses: a narrow offset makes a peaked,
high-rank PMI, a wide one a smooth PMI that a few Fourier modes carry. The map crosses
that boundary:

- `pmi_rmse_table` (the free table's RMSE to the PMI is at most √(1 − 0.95²) sd(PMI),
  rule all) is predicted to hold in every cell: the optimum does not depend on N, and the
  bar scales with the PMI's spread. Where it fails, the run has not reached the optimum
  within the chapter's 12000 steps (the rate depends on N; the target does not);
- `rmse_gap_cos_mix_d8` (the mix kernel's RMSE below the cosine's by 0.2 nats at d = 8,
  t95) is predicted where the rank limit alone costs the cosine more than that margin at
  d = 8, sd(PMI)·√(1 − c_8²) > 0.2;
- its control `rmse_gap_change_d16` (the advantage is smaller at d = 16, t95 ≤ 0) is
  predicted where the rank limit's cost falls by more than the margin from d = 8 to
  d = 16: there is an advantage to shrink.

The axes are the knobs `batch_size` (the free table's and the embeddings' N) and `width`.
Each cell runs the chapter with its four replicas, the free table and the embeddings as
the chapter trains them, and the other experiments made small: one batch size in the
batch-size runs with few pairs, two batch sizes for the InfoNCE bound, fewer Monte-Carlo
batches, embedding dimensions 8 and 16 only, 64 random features, a short continuous
world, and evaluations every 500 steps (the history only). None of these is read by the
map's claims.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

from mmnb.maps import Axis, RegimeMap
from mmnb.worlds.pmi.config import PMIConfig
from mmnb.worlds.pmi.measures import rank_ceiling
from mmnb.worlds.pmi.world import pmi, ring_joint

__all__ = ["MARGIN", "REGIME_MAP", "premise", "rank_limit_rmse"]

MARGIN = 0.2  # nats: the chapter's margin of rmse_gap_cos_mix_d8 (`gap_margin`)
BASE = PMIConfig()


@cache
def rank_limit_rmse(width: float, d: int) -> float:
    """The least RMSE to the centred PMI of any rank-d matrix, sd(PMI)·√(1 − c_d²), on
    the chapter's ring (its `n_states` and `uniform_mix`) with offset width `width`."""
    table = pmi(ring_joint(BASE.n_states, float(width), BASE.uniform_mix))
    sd = float((table - table.mean()).square().mean().sqrt())
    return sd * math.sqrt(max(0.0, 1 - rank_ceiling(table, d) ** 2))


def premise(claim: str, batch_size: Any, width: Any) -> bool:
    """Where the theory predicts `claim` holds at this batch size and offset width."""
    if claim == "pmi_rmse_table":
        return int(batch_size) >= 2
    if claim == "rmse_gap_cos_mix_d8":
        return rank_limit_rmse(width, 8) > MARGIN
    if claim == "rmse_gap_change_d16":
        return rank_limit_rmse(width, 8) - rank_limit_rmse(width, 16) > MARGIN
    raise KeyError(f"the map of 03_pmi reads no claim {claim!r}")


REGIME_MAP = RegimeMap(
    chapter="03_pmi",
    x=Axis("batch_size", (16, 64, 256, 1024), "batch size N"),
    y=Axis("width", (1.0, 1.5, 2.0, 3.0), "width of the offset"),
    claims=("pmi_rmse_table", "rmse_gap_cos_mix_d8", "rmse_gap_change_d16"),
    premise=premise,
    boundary="the free table reaches the PMI at every batch size N ≥ 2; the kernel's "
    "advantage over the cosine at d = 8 is predicted where the rank-8 limit costs the "
    "cosine more than 0.2 nats, sd(PMI)·√(1 − c₈²) > 0.2 (width ≤ 2 here), and its "
    "shrinking at d = 16 where that cost falls by more than 0.2 from d = 8 to 16",
    fixed={
        "batch_sizes": (64,),
        "pairs_seen": 2**14,
        "bound_batch_sizes": (2, 16),
        "oracle_batches": 100,
        "embed_dims": (8, 16),
        "n_features": 64,
        "gauss_steps": 100,
        "gauss_eval_points": 64,
        "eval_every": 500,
    },
    seeds=(0,),
)
