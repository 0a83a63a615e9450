"""Chapter 05's regime map: latent dimension k against output dimension d.

Gui, Ma and Ma's theorem: with the temperature optimized, the representation keeps all
of the shared latent z and has its intrinsic dimension k whenever the sphere S^(d−1) has
room for it, d > k; for d ≤ k it is capped by the sphere at d − 1, below z's. So the
map's boundary is the diagonal d = k + 1 (inside: d > k):

- `id_gap_d16` (the learned τ's ID within 0.6 of z's, at d = `d_main`) and `r2_shared`
  (z recovered, k-NN R² ≥ 0.85) are predicted to hold where d > k and to fail where
  d ≤ k, where the cap takes dimensions away from z;
- the control `id_drop_fixed_tau_big` (at fixed τ = 5 the ID reads ≥ 0.6 below z's) is
  predicted to hold everywhere: a large fixed τ removes the reward for dimensions
  (d > k), and the cap does the same (d ≤ k).

Each cell runs the chapter with the other experiments made small: two replicas inside
the cell, the learned-τ pass only at the map's output dimensions, two fixed temperatures
(5, the control's, and 0.1), no other worlds, split batches or training-set sweep, and
the dimension read during training every 25 epochs instead of 5. The world, encoders,
training length and estimators are the chapter's.
"""

from __future__ import annotations

from typing import Any

from mmnb.maps import Axis, RegimeMap

__all__ = ["REGIME_MAP", "premise"]

OUT_DIMS = (3, 6, 9, 16)


def premise(claim: str, k: Any, d: Any) -> bool:
    """Where the theorem predicts `claim` holds at latent dimension k, output dimension d."""
    if claim == "id_drop_fixed_tau_big":
        return True
    return int(d) > int(k)


REGIME_MAP = RegimeMap(
    chapter="05_intrinsic_dimension",
    x=Axis("k", (2, 3, 5, 8), "latent dimension k"),
    y=Axis("d_main", OUT_DIMS, "output dimension d"),
    claims=("id_gap_d16", "r2_shared", "id_drop_fixed_tau_big"),
    premise=premise,
    boundary="d = k + 1: the learned-τ representation reads z's dimension k and keeps z "
    "where d > k, and is capped by the sphere at d − 1 where d ≤ k; a large fixed τ "
    "reads below z's everywhere",
    fixed={
        "n_seeds": 2,
        "out_dims": OUT_DIMS,
        "other_ks": (),
        "other_links": (),
        "sub_batches": (),
        "n_divisors": (),
        "fixed_taus": (5.0, 0.1),
        "monitor_every": 25,
    },
    seeds=(0,),
)
