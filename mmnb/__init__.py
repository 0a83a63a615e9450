"""mmnb: the helper package of *Multimodal Contrastive Learning in Theory and in Code*.

Names are imported on first use (`mmnb.setup`, `mmnb.plots`, ...), so that `import mmnb`
and the command line (`python -m mmnb --help`) start without torch, pandas, scikit-learn
or matplotlib; a chapter pays for what it uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # the same names, for type checkers and readers (and the book's cache keys)
    from mmnb import claims, plots, probes
    from mmnb.claims import NO_CONTROL, Claims, ClaimsFailed, paired
    from mmnb.config import WorldConfig, check_choice, check_range, knob
    from mmnb.losses import (
        LearnedTemperature,
        info_nce,
        similarity,
        spectral_contrastive_loss,
        symmetric_info_nce,
    )
    from mmnb.nets import MLP, ReplicaLinear, encoder_pair, replica_parameter
    from mmnb.ranges import Range
    from mmnb.results import load_results, mean_std, save_metrics
    from mmnb.runtime import available_devices, resolve_device, setup, stream
    from mmnb.train import History, TrainingDiverged, train

_WHERE = {
    "mmnb.claims": ["NO_CONTROL", "Claims", "ClaimsFailed", "paired"],
    "mmnb.config": ["WorldConfig", "check_choice", "check_range", "knob"],
    "mmnb.losses": [
        "LearnedTemperature",
        "info_nce",
        "similarity",
        "spectral_contrastive_loss",
        "symmetric_info_nce",
    ],
    "mmnb.nets": ["MLP", "ReplicaLinear", "encoder_pair", "replica_parameter"],
    "mmnb.ranges": ["Range"],
    "mmnb.results": ["load_results", "mean_std", "save_metrics"],
    "mmnb.runtime": ["available_devices", "resolve_device", "setup", "stream"],
    "mmnb.train": ["History", "TrainingDiverged", "train"],
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}
_SUBMODULES = ("claims", "maps", "plots", "probes")

__all__ = [
    "Claims",
    "ClaimsFailed",
    "History",
    "LearnedTemperature",
    "MLP",
    "NO_CONTROL",
    "Range",
    "ReplicaLinear",
    "TrainingDiverged",
    "WorldConfig",
    "available_devices",
    "check_choice",
    "check_range",
    "claims",
    "encoder_pair",
    "info_nce",
    "knob",
    "load_results",
    "maps",
    "mean_std",
    "paired",
    "plots",
    "probes",
    "replica_parameter",
    "resolve_device",
    "save_metrics",
    "setup",
    "similarity",
    "spectral_contrastive_loss",
    "stream",
    "symmetric_info_nce",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        value = importlib.import_module(f"mmnb.{name}")
    elif name in _MODULE_OF:
        value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    else:
        raise AttributeError(f"module 'mmnb' has no attribute {name!r}")
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
