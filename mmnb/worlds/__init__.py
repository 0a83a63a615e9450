"""The chapters' worlds: one package per chapter, each with the same files by role.

`CHAPTERS` is the registry: the chapter notebook's name to its package under
`mmnb/worlds/`. Tools (the sweep's parameter checks, the benchmarks, the GPU smoke test,
the tests) find a chapter's configs and world here, never by reading its source. The
shape every package keeps is described in `mmnb.protocol`.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmnb.config import WorldConfig

__all__ = ["CHAPTERS", "chapter_configs", "package"]

CHAPTERS: dict[str, str] = {
    "00_contrastive_learning": "contrastive",
    "01_snr": "snr",
    "02_matrix_factorization": "factorization",
    "03_pmi": "pmi",
    "04_identifiability": "identifiability",
    "05_intrinsic_dimension": "intrinsic_dim",
    "06_five_lenses": "lenses",
}


def package(chapter: str) -> ModuleType:
    """The world package of `chapter` (a notebook name such as ``"01_snr"``, or a package
    name such as ``"snr"``); a `KeyError` lists the chapters."""
    name = CHAPTERS.get(chapter, chapter)
    if name not in CHAPTERS.values():
        raise KeyError(f"no world for {chapter!r}; chapters: {sorted(CHAPTERS)}")
    return importlib.import_module(f"mmnb.worlds.{name}")


def chapter_configs(chapter: str) -> tuple[type[WorldConfig], ...]:
    """The configs whose knobs the chapter's parameters cell covers, main one first."""
    return tuple(package(chapter).CONFIGS)
