"""The shape every chapter's world keeps, so that chapters, tests and tools reach all alike.

A chapter's world is a package `mmnb/worlds/<name>/` with the same files by role:

    config.py    the chapter's config (a `WorldConfig`)
    world.py     the data model: a class built as `World(cfg, seed, device)`
    fit.py       training: entry points that take the config (and the world) and
                 return a dataclass carrying its `history`
    measures.py  read-outs of trained models

(and a file named for a second world, as chapter 01's digits). Its `__init__` names
`CONFIGS` (the configs whose knobs the chapter's parameters cell covers, main one first),
`World`, and the entry points. `mmnb.worlds.CHAPTERS` maps each chapter to its package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from mmnb.config import WorldConfig
    from mmnb.train import History

__all__ = ["Result", "World"]


@runtime_checkable
class World(Protocol):
    """A chapter's data model, built from (config, seed, device); it samples by purpose."""

    cfg: WorldConfig
    seed: int
    device: torch.device

    def sample(self, n: int, purpose: str) -> Any:
        """`n` draws for `purpose` (e.g. ``"train"``, ``"test"``), each purpose from its
        own named random stream of (seed, purpose)."""


@runtime_checkable
class Result(Protocol):
    """What an experiment returns: a dataclass that carries its training `history`."""

    history: History
