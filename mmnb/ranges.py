"""The allowed values of a numeric setting: a `Range`, and the ranges every world shares.

A world's config (`mmnb.config.knob`) names a shared range where a setting means the same
in every chapter (optimizer steps, a learning rate, a probability, a temperature, a scale,
a hidden width), so that the same kind of setting is checked the same way everywhere, and
writes `Range(low, high)` for the settings of its own.
"""

from __future__ import annotations

import dataclasses

__all__ = [
    "FRACTION",
    "LEARNED_TEMPERATURE",
    "LEARNING_RATE",
    "SCALE",
    "STEPS",
    "TEMPERATURE",
    "WIDTH",
    "Range",
]


@dataclasses.dataclass(frozen=True)
class Range:
    """The closed interval [low, high] of a numeric setting (`None`: unbounded)."""

    low: float | None = None
    high: float | None = None


STEPS = Range(1, 200_000)  #: optimizer steps, or steps between evaluations
LEARNING_RATE = Range(1e-7, 1.0)  #: a learning rate of Adam or SGD
FRACTION = Range(0.0, 1.0)  #: a probability, a share or a weight in [0, 1]
TEMPERATURE = Range(1e-3, 100.0)  #: a fixed softmax temperature τ
#: τ of `mmnb.LearnedTemperature`, learned or fixed: like CLIP it caps 1/τ at 100
LEARNED_TEMPERATURE = Range(0.01, 100.0)
SCALE = Range(0.0, 100.0)  #: a non-negative std, distance, scale or scale factor
WIDTH = Range(1, 4096)  #: the width of a hidden layer
