"""Colored digits: the ColoredMNIST recipe on real digit images (chapter 01's second world).

Recipe (Huang et al., 2024, Table 1): 10 classes and 10 colors. Each image keeps its
digit shape. Its color is drawn from its *true digit* k: in training the image is
painted in c_k with probability `digits_p_color` (77.5%), otherwise in a uniformly
random color. Its observed label is the digit, replaced by a different random class with
probability `digits_label_noise` (10%), independently of the color. So the color names
the true digit about 80% of the time and the noisy label about 72% of the time, while
the shape names the noisy label 90% of the time. In the reversed-color law of the test
split, digit k is painted in c_{9-k} with the same probability: a model that leans on
color fails there. Held-out images are also painted with the training law, so a model's
*color reliance* (accuracy under the training law minus accuracy under the reversed law,
same images, same labels) can be measured directly.

The caption of the multimodal model is the output of an "ideal language encoder": the
one-hot code of [digit ⊕ color] (20 numbers) describing what the image shows. It names
the *true* digit (clean, unlike the noisy labels) unless `digits_noisy_captions`; the
caption "digit" names the digit only (its color half is zero).

Images come from scikit-learn's `load_digits` (1,797 images of 8×8 pixels, shipped
with scikit-learn, offline; fixed split: the first 1,200 for training, the rest for
testing) or from MNIST through torchvision (profile "paper"; needs torchvision and a
download the first time). Grey images are stored once (`DigitsWorld`); colors and noisy
labels are drawn per replica from the streams (seed, "digits/…", r), and images are
painted on the fly. The training runs live in `mmnb.worlds.snr.digits_fit`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from mmnb.config import check_choice, check_range
from mmnb.nets import Replicas, replica_ids
from mmnb.runtime import DrawAhead, Stream, stream
from mmnb.worlds.snr.config import SOURCES, DigitsConfig

__all__ = [
    "CAPTIONS",
    "COLORS",
    "N_CLASSES",
    "ColoredDigits",
    "DataUnavailable",
    "DigitsWorld",
    "augment",
    "crop_draws",
    "load_grey",
    "paint",
]

N_CLASSES = 10
CAPTIONS = ("digit_color", "digit")

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


def _take(values: Tensor, index: Tensor | None) -> Tensor:
    """`values [R, N]` at `index`: `[N']` shared by the replicas or `[R, N']`, one row each."""
    if index is None:
        return values
    if index.ndim == 1:
        return values[:, index]
    return values.gather(1, index)


@dataclass
class ColoredDigits:
    """One split for R replicas: shared grey images, per-replica labels and colors."""

    grey: Tensor  # [N, H, W]
    digit: Tensor  # [N] the true digit
    label: Tensor  # [R, N] the observed (noisy) label
    color: Tensor  # [R, N] the color index

    @property
    def replicas(self) -> int:
        """The number of replicas R."""
        return self.label.shape[0]

    def images(self, index: Tensor | None = None) -> Tensor:
        """Painted images `[R, N, 3, H, W]` (optionally only the samples `index`, `[N']`
        or one row per replica `[R, N']`)."""
        if index is None or index.ndim == 1:
            grey = self.grey if index is None else self.grey[index]
            return paint(grey, _take(self.color, index))
        rgb = COLORS.to(self.grey.device)[_take(self.color, index)]  # [R, N', 3]
        return self.grey[index][:, :, None] * rgb[..., None, None]

    def captions(
        self, index: Tensor | None = None, noisy: bool = False, caption: str = "digit_color"
    ) -> Tensor:
        """One-hot [digit ⊕ color], `[R, N, 20]`: the ideal language encoder's output.

        The caption names the true digit, or the noisy label with `noisy=True` (a caption
        that repeats the annotation error); `caption="digit"` leaves the color half zero.
        """
        check_choice("caption", caption, CAPTIONS)
        digit = self.label if noisy else self.digit.expand_as(self.label)
        one = torch.nn.functional.one_hot
        color = one(_take(self.color, index), N_CLASSES)
        if caption == "digit":
            color = torch.zeros_like(color)
        return torch.cat([one(_take(digit, index), N_CLASSES), color], -1).float()

    def color_agreement(self) -> Tensor:
        """Fraction of samples painted in their (noisy) label's training color, per replica."""
        return (self.color == self.label).float().mean(-1)

    def label_noise_rate(self) -> Tensor:
        """Fraction of samples whose label differs from the true digit, per replica."""
        return (self.label != self.digit).float().mean(-1)


def paint(grey: Tensor, color: Tensor) -> Tensor:
    """Paint grey images `[N, H, W]` with color indices `[R, N]`: `[R, N, 3, H, W]`."""
    rgb = COLORS.to(grey.device)[color]  # [R, N, 3]
    return grey[None, :, None] * rgb[..., None, None]


def _labels(digits: Tensor, noise: float, rng: Stream) -> Tensor:
    n = digits.shape[0]
    flip = rng.rand(n) < noise
    other = (digits + rng.randint(N_CLASSES - 1, (n,)) + 1) % N_CLASSES
    return torch.where(flip, other, digits)


def _colors(digits: Tensor, p_color: float, reverse: bool, rng: Stream) -> Tensor:
    n = digits.shape[0]
    target = (N_CLASSES - 1 - digits) if reverse else digits
    keep = rng.rand(n) < p_color
    return torch.where(keep, target, rng.randint(N_CLASSES, (n,)))


class DigitsWorld:
    """The grey images of `cfg.digits_source` (loaded once, or given as `grey`) for R
    replicas; `sample(n, purpose)` paints and labels a split, `splits()` all of them.

    Purposes: "train" (training color law), "test" (held-out images, reversed law) and
    "test_same" (the same held-out images and labels, training law). Replica r draws its
    labels and colors on the CPU from the streams (seed, "digits/<split>/label", r) and
    (seed, "digits/<split>/color/<law>", r), <law> being "train_law" or "reversed".
    """

    PURPOSES: ClassVar[tuple[str, ...]] = ("train", "test", "test_same")

    def __init__(
        self,
        cfg: DigitsConfig,
        seed: int,
        device: torch.device | str = "cpu",
        replicas: Replicas = 1,
        grey: dict[str, Tensor] | None = None,
    ) -> None:
        self.cfg, self.seed, self.device = cfg, seed, torch.device(device)
        self.ids = replica_ids(replicas)
        self.grey = grey if grey is not None else load_grey(cfg.digits_source)

    def sample(self, n: int, purpose: str) -> ColoredDigits:
        """The first `n` images of a purpose's split, painted and labelled per replica
        (`n` = the split's size gives `splits()[purpose]`)."""
        check_choice("purpose", purpose, self.PURPOSES)
        split = "train" if purpose == "train" else "test"
        digits = self.grey[f"{split}_digits"]
        check_range("n", n, 1, digits.shape[0], integer=True)
        digits = digits[:n]
        law = "reversed" if purpose == "test" else "train_law"
        p_color, noise = self.cfg.digits_p_color, self.cfg.digits_label_noise
        labels = [
            _labels(digits, noise, stream(self.seed, f"digits/{split}/label", r)) for r in self.ids
        ]
        colors = [
            _colors(
                digits,
                p_color,
                purpose == "test",
                stream(self.seed, f"digits/{split}/color/{law}", r),
            )
            for r in self.ids
        ]
        return ColoredDigits(
            grey=self.grey[f"{split}_images"][:n].to(self.device),
            digit=digits.to(self.device),
            label=torch.stack(labels).to(self.device),
            color=torch.stack(colors).to(self.device),
        )

    def splits(self) -> dict[str, ColoredDigits]:
        """Every split at its full size: `train`, `test` and `test_same`."""
        sizes = {"train": "train_digits", "test": "test_digits", "test_same": "test_digits"}
        return {p: self.sample(self.grey[sizes[p]].shape[0], p) for p in self.PURPOSES}


def crop_draws(streams: Sequence[Stream], n: int, device: torch.device | str) -> DrawAhead:
    """The random numbers of `augment` for `n` images per replica (five per image),
    replica r's from `streams[r]`, drawn ahead on the CPU (`mmnb.runtime.DrawAhead`)."""
    return DrawAhead([s.torch for s in streams], lambda g: torch.rand(5, n, generator=g), device)


def augment(images: Tensor, draws: DrawAhead, min_scale: float = 0.5) -> Tensor:
    """SimCLR's random resized crop without its color transforms, on `[R, N, 3, H, W]`.

    Each image is cropped to a random box covering a fraction in [`min_scale`, 1] of its
    area (aspect ratio in [3/4, 4/3], random position, zero padding outside) and resized
    back to H×W; its brightness is scaled by a factor in [0.6, 1.4]. Hue, the
    information the colored-digit test is about, is untouched: no color jitter, no
    grayscale. The random numbers come from `draws` (`crop_draws`), one call per view.
    """
    r, n, c, h, w = images.shape
    dev = images.device
    u = draws().transpose(0, 1).reshape(5, r * n)  # [5, R·N], replica by replica
    area = min_scale + (1 - min_scale) * u[0]
    log_ratio = (2 * u[1] - 1) * torch.log(torch.tensor(4 / 3))
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
