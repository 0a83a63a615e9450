"""mmnb: the helper package of *Multimodal Contrastive Learning in Theory and in Code*."""

__version__ = "0.1.0"

from mmnb import plots, probes
from mmnb.losses import (
    LearnedTemperature,
    info_nce,
    similarity,
    spectral_contrastive_loss,
    symmetric_info_nce,
)
from mmnb.nets import MLP, ReplicaLinear
from mmnb.params import check_choice, check_range, resolve_profile
from mmnb.results import load_results, save_metrics
from mmnb.runtime import available_devices, resolve_device, setup
from mmnb.train import History, TrainingDiverged, train

__all__ = [
    "MLP",
    "History",
    "LearnedTemperature",
    "ReplicaLinear",
    "TrainingDiverged",
    "available_devices",
    "check_choice",
    "check_range",
    "info_nce",
    "load_results",
    "plots",
    "probes",
    "resolve_device",
    "resolve_profile",
    "save_metrics",
    "setup",
    "similarity",
    "spectral_contrastive_loss",
    "symmetric_info_nce",
    "train",
]
