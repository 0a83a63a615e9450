"""Chapter 06's regime map: the content correlation ρ against the output dimension d.

Three lenses draw where their claims should hold:

- `id_clip` (lens 2, Gui et al.: with a learned τ the representation of the *exact*
  version has the content's dimension, ID ≤ k + 1) is predicted in every cell: the exact
  version shares the content exactly whatever ρ is (it does not see ρ), and the config
  allows only d ≥ k + 1, where the sphere S^(d−1) has room for the content;
- `r2_hermite_degree2` (lens 4, Zhang et al. with Mehler's formula: the spectral model's
  linear read-out of the degree-2 Hermite functions of the content, R² ≥ 0.9) is
  predicted where the output holds all C(k + 2, 2) singular functions of degree ≤ 2, and
  to fail where it has fewer outputs than that;
- `tau_ratio_half` (lens 3, Uesaka et al.: the Gaussian PMI is unbounded, so τ keeps
  falling) and its control `tau_ratio_half_repaired` (re-paired pairs bound the PMI
  below, τ falls markedly more slowly) are predicted in every cell: the PMI is unbounded
  at every ρ < 1 and re-pairing bounds it below at every ρ. The argument draws no line
  in ρ; the threshold 0.65 was calibrated at ρ = 0.9, so the map measures how far the
  forecast carries.

Each cell runs the chapter with one replica of every model (every claim read here has
the rule `all`) and the linear probes during training only at the end (`eval_every` =
`steps`, the history of one figure). The world, encoders, training length, read-outs and
the other lenses are the chapter's: its config has no knob to skip a lens.
"""

from __future__ import annotations

import math
from typing import Any

from mmnb.maps import Axis, RegimeMap
from mmnb.worlds.lenses.config import LensesConfig

__all__ = ["REGIME_MAP", "premise"]

BASE = LensesConfig()


def premise(claim: str, rho: Any, d: Any) -> bool:
    """Where the lenses predict `claim` holds at content correlation ρ and output
    dimension d (the chapter's content dimension k)."""
    if claim in ("id_clip", "tau_ratio_half", "tau_ratio_half_repaired"):
        return True
    if claim == "r2_hermite_degree2":
        return int(d) >= math.comb(BASE.content_dim + 2, 2)
    raise KeyError(f"the map of 06_five_lenses reads no claim {claim!r}")


REGIME_MAP = RegimeMap(
    chapter="06_five_lenses",
    x=Axis("content_corr", (0.5, 0.75, 0.9, 0.99), "content correlation ρ"),
    y=Axis("embed_dim", (3, 4, 8, 16), "output dimension d"),
    claims=("id_clip", "r2_hermite_degree2", "tau_ratio_half", "tau_ratio_half_repaired"),
    premise=premise,
    boundary="d = C(k + 2, 2) = 6 for the degree-2 read-out (room for every singular "
    "function of degree ≤ 2); none for the exact version's dimension (exact sharing at "
    "every ρ, room for the content at every d ≥ k + 1) or for τ (the Gaussian PMI is "
    "unbounded at every ρ < 1, bounded below once re-paired)",
    fixed={"n_seeds": 1, "eval_every": BASE.steps},
    seeds=(0,),
)
