"""Chapter 04's regime map: the content noise against the probability that style changes.

Daunhawer et al.'s theorem: where both modalities see the *same* content z (content
invariance) and style changes with positive probability, the minimizers of the
alignment-plus-entropy objective encode the content and nothing else. The map reads the
chapter's setting with independent latents (`Setting(p_chg)`) and its control with the
content seen through noise, z̃ = z + σ η (`content_noise` σ), at each cell:

- `content_indep_partial` (content R² ≥ 0.9 from both encoders, every replica) and
  `style_indep_partial` (style R² ≤ 0.1) read the setting with invariant content: the
  theorem predicts both at every p_chg > 0 of the map, whatever σ (σ only acts on the
  control setting of the same run);
- `r2_content_noisy_content` (content R² ≤ 0.9 where the content is seen through noise)
  and `r2_style_noisy_content` (style R² ≥ 0.1 there) are the controls. The theorem says
  nothing once content is not invariant; the chapter's argument (the encoders keep what
  the modalities share most reliably) predicts them where something is shared more
  reliably than the noisy content: where p_chg < 1, each style coordinate is shared
  *exactly* with probability 1 − p_chg (an atom: unbounded information), and where
  p_chg = 1, where a style coordinate shares ½ log 2 nats (s̃ = s + ε, unit variances)
  and a content coordinate ½ log(1 + 1/σ²), where σ ≥ 1. This boundary is the chapter's
  extension of the theorem's argument, not the paper's.

Each cell runs the chapter with its two replica ids per setting and the side experiments
made small: the encoding-size sweep at d = k only and one replica id per arm of the leak
experiment. None of these is read by the map's claims; the training (steps, batch,
widths) is the book profile's, since the claims' regime depends on it.
"""

from __future__ import annotations

from typing import Any

from mmnb.maps import Axis, RegimeMap

__all__ = ["CLAIMS", "REGIME_MAP", "premise"]

CLAIMS = (
    "content_indep_partial",
    "style_indep_partial",
    "r2_content_noisy_content",
    "r2_style_noisy_content",
)


def premise(claim: str, content_noise: Any, p_chg: Any) -> bool:
    """Where the theory (or, for the controls, the chapter's argument) predicts `claim`
    holds at this content noise σ and probability of style change."""
    if claim in ("content_indep_partial", "style_indep_partial"):
        return float(p_chg) > 0
    if claim in ("r2_content_noisy_content", "r2_style_noisy_content"):
        return float(p_chg) < 1 or float(content_noise) >= 1
    raise KeyError(f"the map of 04_identifiability reads no claim {claim!r}")


REGIME_MAP = RegimeMap(
    chapter="04_identifiability",
    x=Axis("content_noise", (0.1, 0.3, 1.0, 3.0), "content noise σ (control setting)"),
    y=Axis("p_chg", (0.5, 0.75, 1.0), "P(style changes) p_chg"),
    claims=CLAIMS,
    premise=premise,
    boundary="with invariant content the encoders recover the content and exclude "
    "style at every p_chg > 0 (the theorem); with the content seen through noise σ they "
    "lose it to style wherever style is shared more reliably: at every σ > 0 when "
    "p_chg < 1 (style is shared exactly with probability 1 − p_chg), and at p_chg = 1 "
    "only when σ ≥ 1 (the chapter's argument, not the paper's)",
    fixed={"sweep_sizes": (3,), "sweep_seeds": 1, "leak_seeds": 1},
    seeds=(0,),
)
