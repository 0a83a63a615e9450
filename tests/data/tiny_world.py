"""A world config for `tests/data/tiny_config.ipynb`: the sweep checks values against it."""

from dataclasses import dataclass
from typing import ClassVar

from mmnb.config import WorldConfig, knob
from mmnb.ranges import LEARNING_RATE, Range


@dataclass(frozen=True)
class TinyConfig(WorldConfig):
    PAPER: ClassVar[dict] = {"steps": 500}
    steps: int = knob(10, Range(1, 1000))  # training steps
    lr: float = knob(0.1, LEARNING_RATE)  # learning rate
