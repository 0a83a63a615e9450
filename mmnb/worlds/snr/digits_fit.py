"""Chapter 01's colored-digits experiment: SimCLR versus CLIP with an ideal caption encoder.

`fit_digits(cfg, model, seed, replicas, device)` trains one model for every replica at
once and probes its frozen image features (`mmnb.worlds.snr.measures.probe_digits`); it
returns a `DigitsFit` with the training history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mmnb.config import check_choice
from mmnb.losses import symmetric_info_nce
from mmnb.nets import MLP, ReplicaLinear, Replicas, replica_ids
from mmnb.runtime import stream
from mmnb.train import History, train
from mmnb.worlds.snr.config import DigitsConfig
from mmnb.worlds.snr.digits import (
    CAPTIONS,
    N_CLASSES,
    ColoredDigits,
    DigitsWorld,
    augment,
    crop_draws,
)
from mmnb.worlds.snr.measures import probe_digits

__all__ = ["MODELS", "DigitsFit", "fit_digits"]

MODELS = ("single", "multi")


@dataclass
class DigitsFit:
    """One trained model and its linear probe, one value per replica.

    `train_acc` (training split, its noisy labels), `test_acc` (held-out images in the
    reversed color law), `test_same_law_acc` (the same images and labels in the training
    law) and `color_reliance` = `test_same_law_acc − test_acc`.
    """

    model: str
    caption: str | None
    history: History
    encoder: MLP
    train_acc: np.ndarray
    test_acc: np.ndarray
    test_same_law_acc: np.ndarray

    @property
    def color_reliance(self) -> np.ndarray:
        """Accuracy lost on the same held-out images when their colors are reversed."""
        return self.test_same_law_acc - self.test_acc


def fit_digits(
    cfg: DigitsConfig,
    model: str,
    seed: int,
    replicas: Replicas,
    device: torch.device | str = "cpu",
    *,
    caption: str = "digit_color",
    splits: dict[str, ColoredDigits] | None = None,
    progress: bool | None = None,
) -> DigitsFit:
    """Train SimCLR (`model="single"`) or CLIP (`"multi"`) image encoders and probe them.

    The image encoder is an MLP with one hidden ReLU layer (`digits_hidden` units, 20
    outputs), trained with Adam on the symmetric InfoNCE loss with cosine similarity and
    temperature `digits_tau`, minibatches drawn per replica. SimCLR's positives are two
    augmented views of an image (`augment`, no color transforms); CLIP's are an augmented
    image and its caption (`caption`: "digit_color" or "digit"), used directly as the
    text embedding (`digits_text_encoder="onehot"`, the ideal language encoder) or through
    a learned linear map ("linear"). A logistic regression on the frozen features is
    fitted on the training split and scored on the held-out images in both color laws.
    `splits` (default: `DigitsWorld(cfg, seed, device, replicas).splits()`) shares the
    painted splits between models.
    """
    check_choice("model", model, MODELS)
    check_choice("caption", caption, CAPTIONS)
    if cfg.digits_source == "none":
        raise ValueError("digits_source='none': the colored-digits experiment is switched off")
    ids = replica_ids(replicas)
    device = torch.device(device)
    splits = splits or DigitsWorld(cfg, seed, device, ids).splits()
    train_split = splits["train"]
    n_train, (h, w) = train_split.grey.shape[0], train_split.grey.shape[1:]
    out_dim = 2 * N_CLASSES
    image_enc = MLP(
        3 * h * w,
        [cfg.digits_hidden],
        out_dim,
        ids,
        seed,
        device=device,
        purpose="init/encoder_image",
    )
    text_enc = None
    if model == "multi" and cfg.digits_text_encoder == "linear":
        text_enc = ReplicaLinear(out_dim, out_dim, ids, seed, "init/encoder_text", device=device)
    batch_size = min(cfg.digits_batch_size, n_train)
    views = crop_draws([stream(seed, "augment", r) for r in ids], batch_size, device)
    min_scale, tau = cfg.digits_min_scale, cfg.digits_tau

    def objective(batch: Tensor | None) -> Tensor:
        images = train_split.images(batch)
        u = image_enc(augment(images, views, min_scale).flatten(2))
        if model == "single":
            v = image_enc(augment(images, views, min_scale).flatten(2))
        else:
            v = train_split.captions(batch, cfg.digits_noisy_captions, caption)
            v = v if text_enc is None else text_enc(v)
        return symmetric_info_nce(u, v, tau, kind="cosine")

    params = [image_enc] if text_enc is None else [image_enc, text_enc]
    history = train(
        objective,
        params,
        cfg.digits_steps,
        optimizer="adam",
        lr=cfg.digits_lr,
        n_samples=n_train,
        batch_size=batch_size,
        seed=seed,
        replicas=ids,
        record_every=10,
        progress=progress,
        desc=f"digits {model}",
    )
    return DigitsFit(
        model=model,
        caption=caption if model == "multi" else None,
        history=history,
        encoder=image_enc,
        **probe_digits(image_enc, splits),
    )
