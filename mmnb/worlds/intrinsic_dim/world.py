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

`SharedLatentWorld` is the data model in its own terms (k, link, dim, contraction);
`World(cfg, seed, device)` is the chapter's world (k and link of the config unless
given), and `World.splits()` draws its training, test and reference pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import Tensor, nn

from mmnb.config import check_choice, check_range
from mmnb.runtime import stream
from mmnb.worlds.intrinsic_dim.config import LINKS, IntrinsicDimConfig

__all__ = [
    "SharedLatentSample",
    "SharedLatentWorld",
    "Splits",
    "World",
    "mispair",
    "stack_samples",
    "truncation_link",
]


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


def mispair(
    sample: SharedLatentSample, fraction: float, seed: int, name: str = "train"
) -> SharedLatentSample:
    """The same pairs with a share `fraction` of them re-paired at random.

    The rows ⌊fraction · n⌋ first of a random order (stream (seed, "mispair/<name>"))
    pass their y (and private part of y) one step along that order, so each of them gets
    another row's y: no re-paired row keeps its partner. x, z and the private part of x
    stay; z is x's latent, which the new y no longer shares.
    """
    check_range("fraction", fraction, 0.0, 1.0)
    n = len(sample)
    m = int(fraction * n)
    if m < 2:
        raise ValueError(f"fraction={fraction}: re-pairs {m} of {n} pairs, need at least 2")
    rows = stream(seed, f"mispair/{name}").randperm(n)[:m].to(sample.y.device)
    y, private_y = sample.y.clone(), sample.private_y.clone()
    y[..., rows, :] = sample.y[..., rows.roll(1), :]
    private_y[..., rows, :] = sample.private_y[..., rows.roll(1), :]
    return SharedLatentSample(sample.x, y, sample.z, sample.private_x, private_y)


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
    """A fixed world; `sample(n, purpose)` draws pairs from the stream of that purpose.

    `k` is the intrinsic dimension of the shared latent, `dim` the dimension of each
    modality; `contraction` (< 1) is the Lipschitz constant of the smooth link's
    perturbation of the identity. The smooth link's maps and rotations come from the
    stream (seed, "world/<name>/maps"), the pairs of a purpose from
    (seed, "data/<name>/<purpose>"), with `name` = "<link>-k<k>": data depend only on the
    seed, the world and the purpose, never on the device.
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

    def sample(self, n: int, purpose: str = "train") -> SharedLatentSample:
        """Draw `n` pairs for `purpose` ("train", "test", "reference", ...) on the
        world's device."""
        check_range("n", n, 1, None, integer=True)
        rng = stream(self.seed, f"data/{self.name}/{purpose}", device=self.device)
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
class Splits:
    """The training, test and reference (mean-norm) pairs of one world."""

    train: SharedLatentSample
    test: SharedLatentSample
    reference: SharedLatentSample


class World(SharedLatentWorld):
    """The chapter's world of latent dimension `k` and link `link` (the config's unless
    given), with the config's `dim` and `contraction`; see `SharedLatentWorld`."""

    PURPOSES: ClassVar[tuple[str, ...]] = ("train", "test", "reference")

    def __init__(
        self,
        cfg: IntrinsicDimConfig,
        seed: int = 0,
        device: torch.device | str = "cpu",
        k: int | None = None,
        link: str | None = None,
    ) -> None:
        self.cfg = cfg
        super().__init__(
            cfg.k if k is None else k,
            cfg.link if link is None else link,
            cfg.dim,
            cfg.contraction,
            seed,
            device,
        )

    def splits(self) -> Splits:
        """`cfg.n_train` training, `cfg.n_test` test and `cfg.n_reference` reference pairs."""
        cfg = self.cfg
        return Splits(
            self.sample(cfg.n_train, "train"),
            self.sample(cfg.n_test, "test"),
            self.sample(cfg.n_reference, "reference"),
        )
