"""mmnb: the helper package of *Multimodal Contrastive Learning in Theory and in Code*."""

__version__ = "0.1.0"

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

__all__ = [
    "NO_CONTROL",
    "Claims",
    "ClaimsFailed",
    "MLP",
    "History",
    "LearnedTemperature",
    "Range",
    "ReplicaLinear",
    "TrainingDiverged",
    "WorldConfig",
    "available_devices",
    "check_choice",
    "claims",
    "check_range",
    "encoder_pair",
    "info_nce",
    "knob",
    "load_results",
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
