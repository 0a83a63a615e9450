"""Colored digits: the ColoredMNIST recipe on real digit images.

Recipe (Huang et al., 2024, Table 1): 10 classes and 10 colors. Each image keeps its
digit shape; its observed label is the digit, replaced by a different random class
with probability `label_noise` (10%). In training the image is painted in the label's
color c_y with probability `p_color` (77.5%), otherwise in a uniformly random color. At
test the correlation is reversed: the image is painted in the color of another class,
c_{9-y}, with the same probability. A model that leans on color therefore fails at test.

The caption of the multimodal model is the output of an "ideal language encoder": the
one-hot code of [digit ⊕ color] (20 numbers) describing what the image shows.

Images come from scikit-learn's `load_digits` (1,797 images of 8×8 pixels, shipped
with scikit-learn, offline; fixed split: the first 1,200 for training, the rest for
testing) or from MNIST through torchvision (profile "paper"; needs torchvision and a
download the first time). Grey images are stored once; colors and noisy labels are
drawn per replica from its seed, and the images are painted on the fly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mmnb.losses import symmetric_info_nce
from mmnb.nets import MLP, ReplicaLinear
from mmnb.params import check_choice, check_range
from mmnb.probes import linear_probe
from mmnb.train import train

__all__ = [
    "COLORS",
    "ColoredDigits",
    "DataUnavailable",
    "augment",
    "load_grey",
    "make_colored_digits",
    "paint",
    "run",
]

N_CLASSES = 10

# Ten well-separated RGB colors; class k is associated with COLORS[k] in training.
COLORS = torch.tensor(
    [
        [0.90, 0.10, 0.10],
        [0.10, 0.75, 0.10],
        [0.15, 0.30, 0.95],
        [0.95, 0.85, 0.10],
        [0.85, 0.15, 0.85],
        [0.10, 0.85, 0.85],
        [0.95, 0.55, 0.10],
        [0.55, 0.30, 0.10],
        [0.60, 0.60, 0.60],
        [0.50, 0.10, 0.60],
    ]
)

SOURCES = ("sklearn", "mnist")


class DataUnavailable(RuntimeError):
    """The requested image source cannot be loaded here (missing package, offline)."""


def load_grey(source: str = "sklearn", root: str | None = None) -> dict[str, Tensor]:
    """Grey images in [0, 1] and digits of the fixed train/test split.

    Returns `train_images [N, H, W]`, `train_digits [N]`, `test_images`, `test_digits`.
    """
    check_choice("digits_source", source, SOURCES)
    if source == "sklearn":
        from sklearn.datasets import load_digits

        data = load_digits()
        images = torch.as_tensor(data.images, dtype=torch.float32) / 16.0
        digits = torch.as_tensor(data.target, dtype=torch.long)
        return {
            "train_images": images[:1200],
            "train_digits": digits[:1200],
            "test_images": images[1200:],
            "test_digits": digits[1200:],
        }
    try:
        from torchvision.datasets import MNIST
    except ImportError as err:
        raise DataUnavailable(
            "digits_source='mnist' needs torchvision (pip install torchvision); "
            "use digits_source='sklearn' for the offline 8x8 digits"
        ) from err
    import os

    root = root or os.environ.get("MMNB_DATA", os.path.expanduser("~/.cache/mmnb"))
    out = {}
    for split, is_train in [("train", True), ("test", False)]:
        try:
            ds = MNIST(root, train=is_train, download=True)
        except Exception as err:  # offline, proxy, checksum …
            raise DataUnavailable(
                f"MNIST could not be loaded or downloaded into {root!r} ({err}); "
                "connect to the internet once, or use digits_source='sklearn'"
            ) from err
        out[f"{split}_images"] = ds.data.float() / 255.0
        out[f"{split}_digits"] = ds.targets.long()
    return out


@dataclass
class ColoredDigits:
    """One split for R replicas: shared grey images, per-replica labels and colors."""

    grey: Tensor  # [N, H, W]
    digit: Tensor  # [N] the true digit
    label: Tensor  # [R, N] the observed (noisy) label
    color: Tensor  # [R, N] the color index

    @property
    def n_replicas(self) -> int:
        return self.label.shape[0]

    def images(self, index: Tensor | None = None) -> Tensor:
        """Painted images `[R, N, 3, H, W]` (optionally only the samples `index`)."""
        grey = self.grey if index is None else self.grey[index]
        color = self.color if index is None else self.color[:, index]
        return paint(grey, color)

    def captions(self, index: Tensor | None = None, noisy: bool = False) -> Tensor:
        """One-hot [digit ⊕ color], `[R, N, 20]`: the ideal language encoder's output.

        The caption describes the image: its digit and its color. `noisy=True` writes the
        noisy label instead of the digit (a caption that repeats the annotation error).
        """
        digit = self.label if noisy else self.digit.expand_as(self.label)
        digit = digit if index is None else digit[:, index]
        color = self.color if index is None else self.color[:, index]
        one = torch.nn.functional.one_hot
        return torch.cat([one(digit, N_CLASSES), one(color, N_CLASSES)], -1).float()

    def color_agreement(self) -> Tensor:
        """Fraction of samples painted in their label's training color c_y, per replica."""
        return (self.color == self.label).float().mean(-1)

    def label_noise_rate(self) -> Tensor:
        """Fraction of samples whose label differs from the true digit, per replica."""
        return (self.label != self.digit).float().mean(-1)


def paint(grey: Tensor, color: Tensor) -> Tensor:
    """Paint grey images `[N, H, W]` with color indices `[R, N]`: `[R, N, 3, H, W]`."""
    rgb = COLORS.to(grey.device)[color]  # [R, N, 3]
    return grey[None, :, None] * rgb[..., None, None]


def _colorize(
    digits: Tensor,
    seed: int,
    p_color: float,
    label_noise: float,
    reverse: bool,
    stream: int,
) -> tuple[Tensor, Tensor]:
    """Noisy labels and colors of one replica (CPU generator, so every device agrees)."""
    gen = torch.Generator().manual_seed(8 * int(seed) + stream)
    n = digits.shape[0]
    flip = torch.rand(n, generator=gen) < label_noise
    other = (digits + torch.randint(1, N_CLASSES, (n,), generator=gen)) % N_CLASSES
    label = torch.where(flip, other, digits)
    target = (N_CLASSES - 1 - digits) if reverse else digits
    keep = torch.rand(n, generator=gen) < p_color
    random_color = torch.randint(0, N_CLASSES, (n,), generator=gen)
    return label, torch.where(keep, target, random_color)


def make_colored_digits(
    seeds: Sequence[int],
    source: str = "sklearn",
    p_color: float = 0.775,
    label_noise: float = 0.1,
    device: torch.device | str = "cpu",
    grey: dict[str, Tensor] | None = None,
) -> tuple[ColoredDigits, ColoredDigits]:
    """The training split (colors correlated with labels) and the reversed-color test split."""
    check_range("p_color", p_color, 0.0, 1.0)
    check_range("label_noise", label_noise, 0.0, 1.0)
    grey = grey if grey is not None else load_grey(source)
    splits = []
    for split, reverse, stream in [("train", False, 0), ("test", True, 1)]:
        digits = grey[f"{split}_digits"]
        pairs = [_colorize(digits, s, p_color, label_noise, reverse, stream) for s in seeds]
        splits.append(
            ColoredDigits(
                grey=grey[f"{split}_images"].to(device),
                digit=digits.to(device),
                label=torch.stack([p[0] for p in pairs]).to(device),
                color=torch.stack([p[1] for p in pairs]).to(device),
            )
        )
    return splits[0], splits[1]


def augment(images: Tensor, gens: Sequence[torch.Generator], min_scale: float = 0.5) -> Tensor:
    """SimCLR's random resized crop without its color transforms, on `[R, N, 3, H, W]`.

    Each image is cropped to a random box covering a fraction in [`min_scale`, 1] of its
    area (aspect ratio in [3/4, 4/3], random position, zero padding outside) and resized
    back to H×W; its brightness is scaled by a factor in [0.6, 1.4]. Hue, the
    information the colored-digit test is about, is untouched: no color jitter, no
    grayscale. Replica r draws its randomness from `gens[r]`.
    """
    r, n, c, h, w = images.shape
    dev = images.device
    u = torch.cat([torch.rand(5, n, generator=g, device=dev) for g in gens], 1)
    area = min_scale + (1 - min_scale) * u[0]
    log_ratio = (2 * u[1] - 1) * np.log(4 / 3)
    sx = (area * log_ratio.exp()).sqrt().clamp(max=1.0)
    sy = (area / log_ratio.exp()).sqrt().clamp(max=1.0)
    tx, ty = (2 * u[2] - 1) * (1 - sx), (2 * u[3] - 1) * (1 - sy)
    theta = torch.zeros(r * n, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, tx, sy, ty
    flat = images.reshape(r * n, c, h, w)
    grid = torch.nn.functional.affine_grid(theta, list(flat.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(flat, grid, align_corners=False)
    scale = 0.6 + 0.8 * u[4]
    return (out * scale[:, None, None, None]).reshape(r, n, c, h, w)


def _features(encoder: MLP, split: ColoredDigits, chunk: int = 4096) -> Tensor:
    with torch.no_grad():
        n = split.grey.shape[0]
        parts = []
        for start in range(0, n, chunk):
            idx = torch.arange(start, min(n, start + chunk), device=split.grey.device)
            parts.append(encoder(split.images(idx).flatten(2)))
        return torch.cat(parts, 1)


def _probe(encoder: MLP, train_split: ColoredDigits, test_split: ColoredDigits) -> dict:
    ftr, fte = _features(encoder, train_split), _features(encoder, test_split)
    out = linear_probe(ftr, train_split.label, fte, test_split.label, max_iter=1000)
    return {k: out[k] for k in ("train_acc", "test_acc")}


def run(
    seeds: Sequence[int],
    *,
    source: str = "sklearn",
    steps: int = 300,
    lr: float = 1e-3,
    tau: float = 0.1,
    hidden: int = 256,
    out_dim: int = 2 * N_CLASSES,
    batch_size: int | None = 256,
    p_color: float = 0.775,
    label_noise: float = 0.1,
    noisy_captions: bool = False,
    text_encoder: str = "onehot",
    min_scale: float = 0.5,
    device: torch.device | str = "cpu",
    progress: bool | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Train SimCLR (single-modal) and CLIP (image + caption) encoders, probe them.

    Both image encoders are the same MLP (one hidden ReLU layer), trained with Adam on
    the symmetric InfoNCE loss with cosine similarity and temperature `tau`; single-modal
    positives are two augmented views of an image, multimodal positives an image and its
    caption. The caption is the one-hot [digit ⊕ color] used directly as the text embedding
    (`text_encoder="onehot"`, the ideal language encoder) or through a learned linear map
    (`"linear"`). Augmentation: `augment` with `min_scale`. `batch_size=None` trains
    full-batch. Returns, per model, the linear-probe
    accuracy (fitted on frozen training features) on the training split (`train_acc`)
    and on the reversed-color test split (`test_acc`), one value per replica.
    """
    check_choice("text_encoder", text_encoder, ("onehot", "linear"))
    if text_encoder == "onehot" and out_dim != 2 * N_CLASSES:
        raise ValueError(f"out_dim={out_dim!r}: the one-hot caption needs out_dim={2 * N_CLASSES}")
    device = torch.device(device)
    train_split, test_split = make_colored_digits(seeds, source, p_color, label_noise, device)
    n_train, (h, w) = train_split.grey.shape[0], train_split.grey.shape[1:]
    in_dim, r = 3 * h * w, len(seeds)
    seed0 = int(seeds[0])
    if list(seeds) != list(range(seed0, seed0 + r)):
        raise ValueError(f"seeds={list(seeds)!r} must be consecutive (seed, seed + 1, ...)")
    out = {}
    for model in ("single", "multi"):
        # replica r of MLP(seed=s) is initialised from s + r = seeds[r]
        image_enc = MLP(in_dim, [hidden], out_dim, r, seed=seed0, device=device)
        text_enc = None
        if model == "multi" and text_encoder == "linear":
            text_enc = ReplicaLinear(2 * N_CLASSES, out_dim, r, seed=seed0 + 50_000, device=device)
        gens = [torch.Generator(device=device).manual_seed(8 * int(s) + 2) for s in seeds]
        objective = _objective(
            model, image_enc, text_enc, train_split, gens, min_scale, tau, noisy_captions
        )
        params = [image_enc] if text_enc is None else [image_enc, text_enc]
        train(
            objective,
            params,
            steps,
            optimizer="adam",
            lr=lr,
            n_samples=n_train,
            batch_size=batch_size,
            seed=seed0,
            progress=progress,
            desc=f"digits {model}",
        )
        out[model] = _probe(image_enc, train_split, test_split)
    return out


def _objective(
    model: str,
    image_enc: MLP,
    text_enc: ReplicaLinear | None,
    split: ColoredDigits,
    gens: Sequence[torch.Generator],
    min_scale: float,
    tau: float,
    noisy_captions: bool,
):
    """SimCLR (two augmented views) or CLIP (augmented image, caption) on a minibatch."""

    def objective(batch: Tensor | None) -> Tensor:
        images = split.images(batch)
        u = image_enc(augment(images, gens, min_scale).flatten(2))
        if model == "single":
            v = image_enc(augment(images, gens, min_scale).flatten(2))
        else:
            v = split.captions(batch, noisy_captions)
            v = v if text_enc is None else text_enc(v)
        return symmetric_info_nce(u, v, tau, kind="cosine")

    return objective
