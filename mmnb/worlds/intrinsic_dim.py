"""Chapter 05's worlds: two modalities that share a k-dimensional latent z.

Every world draws z and independent private noise for each modality:

* `linear` (the paper's synthetic link): y ~ N(0, I_dim), z = y[:k], x = (z, ξ) with
  ξ ~ N(0, I_{dim−k}); the private part of y is y[k:].
* `truncation` (the authors' nonlinear link, `gen_` in yugjerry/mmcl-adapt): as `linear`,
  but x₀ = z₀·1{z₀ < 0}, x₁ = z₁·1{z₀ + z₁ > 0.5} and x_i = z_i·1{z_i > 0} for
  2 ≤ i < k (needs k ≥ 2). x keeps only part of z, so what x and y share is a union of
  strata of different dimensions, not one k-dimensional manifold.
* `smooth` (this book's): z ~ N(0, I_k); each modality applies its own injective smooth
  map φ(z) = z + c·tanh(zA) (a contraction added to the identity, hence invertible),
  appends its private noise and is rotated by its own random orthogonal matrix.

`IntrinsicDimConfig` holds every setting of the chapter; `intrinsic_dim_encoders` trains
the two encoders (replicas with their own output width and temperature, in one pass) and
`intrinsic_dim_measures` reads dimensions, alignment and temperatures off them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import Tensor, nn

from mmnb.config import WorldConfig, check_choice, check_range, knob
from mmnb.ranges import LEARNING_RATE, STEPS, TEMPERATURE, WIDTH, Range
from mmnb.runtime import stream

__all__ = [
    "LINKS",
    "NORMALIZATIONS",
    "IntrinsicDimConfig",
    "SharedLatentSample",
    "SharedLatentWorld",
    "WorldData",
    "draw_data",
    "stack_samples",
    "truncation_link",
]

LINKS = ("linear", "smooth", "truncation")
NORMALIZATIONS = ("l2", "mean_norm")


@dataclass(frozen=True)
class IntrinsicDimConfig(WorldConfig):
    """Chapter 05's settings; the defaults are the "book" profile, `PAPER` its changes.

    "paper" follows yugjerry/mmcl-adapt (`_train_norm.py`): 10,000 training pairs plus
    2,000 for the mean-norm rescaling, 800 epochs at lr 1e-4, τ's log learning 4× faster
    (the code's `(4·logit_scale).exp()`), output dimensions `linspace(1, 44, 15)`.
    """

    PAPER: ClassVar[dict] = {
        "n_train": 10_000,
        "n_reference": 2000,
        "epochs": 800,
        "lr": 1e-4,
        "tau_lr": 4e-4,
        "normalization": "mean_norm",
        "out_dims": (1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31, 34, 37, 40, 44),
        "record_every": 50,
        "monitor_every": 50,
    }

    k: int = knob(5, Range(1, 1000))  # intrinsic dimension of the shared latent z
    dim: int = knob(20, Range(2, 1000))  # dimension of each modality
    link: str = knob("linear", ("linear", "smooth"))  # link of the main world
    other_links: tuple = knob(("smooth", "truncation"), LINKS)  # also trained at d_main (same k)
    other_ks: tuple = knob((3, 8), Range(1, 1000))  # latent dimensions also trained
    contraction: float = knob(0.9, Range(0.0, 0.99))  # Lipschitz constant of c·tanh(zA)
    n_train: int = knob(4000, Range(2, 1_000_000))  # training pairs
    n_test: int = knob(2000, Range(30, 100_000))  # test pairs (ID, probes, retrieval)
    n_reference: int = knob(1000, Range(1, 100_000))  # held-out pairs of the mean norm
    epochs: int = knob(50, Range(1, 100_000))  # passes over the training pairs
    batch_size: int = knob(256, Range(2, 65_536))  # pairs per minibatch
    lr: float = knob(1e-3, LEARNING_RATE)  # Adam learning rate of the encoders
    tau_lr: float = knob(1e-2, Range(0.0, 1.0))  # Adam learning rate of log(τ − floor)
    weight_decay: float = knob(1e-4, Range(0.0, 1.0))  # weight decay of the encoders
    hidden: tuple = knob((50, 50, 50), WIDTH)  # hidden widths of both MLPs
    normalization: str = knob("l2", NORMALIZATIONS)  # unit sphere or mean norm
    tau_init: float = knob(1.0, TEMPERATURE)  # starting temperature
    tau_floor: float = knob(1e-4, Range(0.0, 1.0))  # τ = floor + exp(s)
    out_dims: tuple = knob(  # output dimensions d (learned τ)
        (2, 3, 4, 5, 6, 8, 16, 32, 64), Range(1, 1024)
    )
    d_main: int = knob(16, Range(1, 1024))  # output dimension of the other runs
    fixed_taus: tuple = knob((5.0, 2.0, 1.0, 0.5, 0.1, 0.03), TEMPERATURE)  # fixed temperatures
    sub_batches: tuple = knob((4,), Range(2, 1024))  # learned-τ runs, batch split into this many
    n_divisors: tuple = knob((4, 2), Range(2, 1000))  # learned-τ runs on n_train // divisor pairs
    id_neighbors: int = knob(20, Range(2, 1000))  # neighbours of the MLE
    probe_neighbors: int = knob(10, Range(1, 1000))  # neighbours of the k-NN R² probe
    probe_folds: int = knob(5, Range(2, 20))  # folds of the k-NN R² probe
    record_every: int = knob(10, STEPS)  # steps between history records
    monitor_every: int = knob(5, Range(1, 100_000))  # epochs between ID/alignment reads

    def check(self) -> None:
        for name, kk in [("k", self.k), *(("other_ks", kk) for kk in self.other_ks)]:
            check_range(name, kk, 1, self.dim - 1, integer=True)
        if "truncation" in self.other_links and self.k < 2:
            raise ValueError(f"k={self.k}: the truncation link needs k ≥ 2 (it uses z₀ and z₁)")
        if self.d_main not in self.out_dims:
            raise ValueError(f"d_main={self.d_main} must be one of out_dims={self.out_dims}")
        check_range("batch_size", self.batch_size, 2, self.n_train, integer=True)
        for s in self.sub_batches:
            if self.batch_size % s or self.batch_size // s < 2:
                raise ValueError(
                    f"sub_batches={s}: must divide batch_size={self.batch_size} into "
                    "sub-batches of at least 2 pairs"
                )
        for q in self.n_divisors:
            if self.n_train // q < self.batch_size:
                raise ValueError(
                    f"n_divisors={q}: n_train // {q} = {self.n_train // q} pairs is fewer "
                    f"than batch_size={self.batch_size}"
                )
        check_range("tau_floor", self.tau_floor, 0.0, min(self.tau_init, *self.fixed_taus) / 2)
        check_range("id_neighbors", self.id_neighbors, 2, self.n_test - 1, integer=True)
        most = self.n_test - self.n_test // self.probe_folds - 1
        check_range("probe_neighbors", self.probe_neighbors, 1, most, integer=True)

    @property
    def steps(self) -> int:
        """Optimizer steps of every training pass: epochs × ⌊n_train / batch_size⌋."""
        return self.epochs * (self.n_train // self.batch_size)


@dataclass
class SharedLatentSample:
    """Paired observations x, y with their shared latent z and private parts.

    Arrays are `[n, ·]`, or `[R, n, ·]` after `stack_samples` (one world per replica).
    """

    x: Tensor
    y: Tensor
    z: Tensor
    private_x: Tensor
    private_y: Tensor

    def __len__(self) -> int:
        return self.x.shape[-2]


def stack_samples(samples: Sequence[SharedLatentSample]) -> SharedLatentSample:
    """Stack equally shaped samples along a new leading replica axis.

    The shared latent and the private parts may differ in width between worlds (k);
    they are zero-padded to the widest one. Probe a world on its own, unpadded latents:
    a constant zero column counts as perfectly predicted in a multi-output R².
    """

    def pad_stack(parts: list[Tensor]) -> Tensor:
        width = max(p.shape[-1] for p in parts)
        return torch.stack([nn.functional.pad(p, (0, width - p.shape[-1])) for p in parts])

    return SharedLatentSample(
        *(
            pad_stack([getattr(s, field.name) for s in samples])
            for field in fields(SharedLatentSample)
        )
    )


def _orthogonal(n: int, gen: torch.Generator) -> Tensor:
    q, r = torch.linalg.qr(torch.randn(n, n, generator=gen))
    return q * torch.sign(torch.diagonal(r))  # Haar-distributed rotation


def truncation_link(z: Tensor) -> Tensor:
    """The authors' nonlinear link (`gen_`, link 'nonlinear'): x's shared coordinates.

    x₀ = z₀·1{z₀ < 0}, x₁ = z₁·1{z₀ + z₁ > 0.5}, x_i = z_i·1{z_i > 0} for i ≥ 2.
    """
    if z.shape[-1] < 2:
        raise ValueError(f"the truncation link needs k ≥ 2, got k={z.shape[-1]}")
    keep = torch.cat([z[..., :1] < 0, z[..., :1] + z[..., 1:2] > 0.5, z[..., 2:] > 0], -1)
    return z * keep


class SharedLatentWorld:
    """A fixed world; `sample(n, split)` draws pairs from the stream of that split.

    `k` is the intrinsic dimension of the shared latent, `dim` the dimension of each
    modality; `contraction` (< 1) is the Lipschitz constant of the smooth link's
    perturbation of the identity. The smooth link's maps and rotations come from the
    stream (seed, "world/<name>/maps"), the pairs of a split from
    (seed, "data/<name>/<split>"), with `name` = "<link>-k<k>": data depend only on the
    seed, the world and the split, never on the device.
    """

    def __init__(
        self,
        k: int = 5,
        link: str = "linear",
        dim: int = 20,
        contraction: float = 0.9,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        check_choice("link", link, LINKS)
        check_range("dim", dim, 2, None, integer=True)
        check_range("k", k, 2 if link == "truncation" else 1, dim - 1, integer=True)
        check_range("contraction", contraction, 0.0, 0.99)
        self.k, self.link, self.dim, self.seed = k, link, dim, seed
        self.device = torch.device(device)
        self.name = f"{link}-k{k}"
        gen = stream(seed, f"world/{self.name}/maps").torch
        self.maps = []
        for _ in range(2):  # one smooth map and one rotation per modality
            a = torch.randn(k, k, generator=gen)
            a = 2.0 * a / torch.linalg.matrix_norm(a, ord=2)  # tanh(zA) is 2-Lipschitz
            self.maps.append((a.to(self.device), _orthogonal(dim, gen).to(self.device)))
        self.scale = contraction / 2.0

    def smooth_map(self, z: Tensor, modality: int) -> Tensor:
        """φ(z) = z + c·tanh(zA): injective because its second term is a contraction."""
        a, _ = self.maps[modality]
        return z + self.scale * torch.tanh(z @ a)

    def sample(self, n: int, split: str = "train") -> SharedLatentSample:
        """Draw `n` pairs of `split` ("train", "test", "reference", ...) on the world's device."""
        check_range("n", n, 1, None, integer=True)
        rng = stream(self.seed, f"data/{self.name}/{split}", device=self.device)
        k, dim = self.k, self.dim
        y = rng.randn(n, dim)
        z, private_y, private_x = y[:, :k], y[:, k:], rng.randn(n, dim - k)
        if self.link == "linear":
            x = torch.cat([z, private_x], 1)
        elif self.link == "truncation":
            x = torch.cat([truncation_link(z), private_x], 1)
        else:
            x = torch.cat([self.smooth_map(z, 0), private_x], 1) @ self.maps[0][1]
            y = torch.cat([self.smooth_map(z, 1), private_y], 1) @ self.maps[1][1]
        return SharedLatentSample(x=x, y=y, z=z, private_x=private_x, private_y=private_y)


@dataclass
class WorldData:
    """The training, test and reference (mean-norm) pairs of one world."""

    world: SharedLatentWorld
    train: SharedLatentSample
    test: SharedLatentSample
    reference: SharedLatentSample


def draw_data(
    cfg: IntrinsicDimConfig, k: int, link: str, seed: int, device: torch.device | str = "cpu"
) -> WorldData:
    """The world (k, link) of `cfg` and its three splits."""
    w = SharedLatentWorld(k, link, cfg.dim, cfg.contraction, seed, device)
    return WorldData(
        w,
        w.sample(cfg.n_train, "train"),
        w.sample(cfg.n_test, "test"),
        w.sample(cfg.n_reference, "reference"),
    )
