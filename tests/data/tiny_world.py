"""A world config for `tests/data/tiny_config.ipynb`: the sweep checks values against it."""

from dataclasses import dataclass
from typing import ClassVar

from mmnb.config import WorldConfig, knob


@dataclass(frozen=True)
class TinyConfig(WorldConfig):
    PAPER: ClassVar[dict] = {"steps": 500}
    steps: int = knob(10, low=1, high=1000, doc="training steps")
    lr: float = knob(0.1, low=1e-6, high=1.0, doc="learning rate")
