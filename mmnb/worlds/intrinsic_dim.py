"""Chapter 05's worlds: two modalities that share a k-dimensional latent z.

Every world draws z and independent private noise for each modality:

* `linear` (the paper's synthetic link): y ~ N(0, I_dim), z = y[:k], x = (z, ξ) with
  ξ ~ N(0, I_{dim−k}); the private part of y is y[k:].
* `smooth`: z ~ N(0, I_k); each modality applies its own injective smooth map
  φ(z) = z + c·tanh(zA) (a contraction added to the identity, hence invertible), appends
  its private noise and is rotated by its own random orthogonal matrix.
* `truncation` (in the paper's code): as `linear`, but x = (z·1{z > 0}, ξ). x only keeps
  the positive coordinates of z, so what x and y share is a union of strata of different
  dimensions (0 to k), not one k-dimensional manifold.

The module also holds the chapter's encoders (replicas with their own output dimension
and temperature, trained in one pass) and its profiles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from types import SimpleNamespace

import torch
from torch import Tensor, nn

from mmnb.losses import LearnedTemperature, symmetric_info_nce
from mmnb.nets import MLP
from mmnb.params import check_choice, check_range
from mmnb.train import History, train

__all__ = [
    "LINKS",
    "NORMALIZATIONS",
    "PROFILES",
    "IntrinsicFit",
    "SharedLatentSample",
    "SharedLatentWorld",
    "fit_encoders",
    "stack_samples",
]

LINKS = ("linear", "smooth", "truncation")
NORMALIZATIONS = ("l2", "mean_norm")

PROFILES = {
    "book": dict(
        k=5,
        dim=20,
        link="linear",
        n_train=4000,
        n_test=2000,
        n_reference=1000,
        epochs=50,
        batch_size=256,
        lr=1e-3,
        tau_lr=1e-2,
        weight_decay=1e-4,
        hidden=[50, 50, 50],
        normalization="l2",
        tau_init=1.0,
        tau_floor=1e-4,
        out_dims=[2, 3, 4, 5, 6, 8, 16, 32, 64],
        d_main=16,
        fixed_taus=[5.0, 2.0, 1.0, 0.5, 0.1, 0.03],
        other_ks=[3, 8],
        id_neighbors=20,
        probe_neighbors=10,
        record_every=10,
    ),
    "paper": dict(
        k=5,
        dim=20,
        link="linear",
        n_train=10000,
        n_test=2000,
        n_reference=2000,
        epochs=800,
        batch_size=256,
        lr=1e-4,
        tau_lr=4e-4,
        weight_decay=1e-4,
        hidden=[50, 50, 50],
        normalization="mean_norm",
        tau_init=1.0,
        tau_floor=1e-4,
        out_dims=[1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31, 34, 37, 40, 44],
        d_main=16,
        fixed_taus=[5.0, 2.0, 1.0, 0.5, 0.1, 0.03],
        other_ks=[3, 8],
        id_neighbors=20,
        probe_neighbors=10,
        record_every=50,
    ),
}


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


class SharedLatentWorld:
    """A fixed world (its maps and rotations drawn from `seed`); `sample(n)` draws pairs.

    `k` is the intrinsic dimension of the shared latent, `dim` the dimension of each
    modality; `contraction` (< 1) is the Lipschitz constant of the smooth link's
    perturbation of the identity.
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
        check_range("k", k, 1, dim - 1, integer=True)
        check_range("contraction", contraction, 0.0, 0.99)
        self.k, self.link, self.dim, self.device = k, link, dim, torch.device(device)
        gen = torch.Generator().manual_seed(seed)
        self.maps = []
        for _ in range(2):  # one smooth map and one rotation per modality
            a = torch.randn(k, k, generator=gen)
            a = 2.0 * a / torch.linalg.matrix_norm(a, ord=2)  # tanh(zA) is 2-Lipschitz
            rotation = _orthogonal(dim, gen)
            self.maps.append((a.to(self.device), rotation.to(self.device)))
        self.scale = contraction / 2.0

    def smooth_map(self, z: Tensor, modality: int) -> Tensor:
        """φ(z) = z + c·tanh(zA): injective because its second term is a contraction."""
        a, _ = self.maps[modality]
        return z + self.scale * torch.tanh(z @ a)

    def sample(self, n: int, seed: int = 0) -> SharedLatentSample:
        """Draw `n` pairs on the world's device."""
        check_range("n", n, 1, None, integer=True)
        gen = torch.Generator(device=self.device).manual_seed(seed)

        def normal(*shape: int) -> Tensor:
            return torch.randn(*shape, generator=gen, device=self.device)

        k, dim = self.k, self.dim
        y = normal(n, dim)
        z, private_y, private_x = y[:, :k], y[:, k:], normal(n, dim - k)
        if self.link == "linear":
            x = torch.cat([z, private_x], 1)
        elif self.link == "truncation":
            x = torch.cat([z.clamp(min=0.0), private_x], 1)
        else:
            x = torch.cat([self.smooth_map(z, 0), private_x], 1) @ self.maps[0][1]
            y = torch.cat([self.smooth_map(z, 1), private_y], 1) @ self.maps[1][1]
        return SharedLatentSample(x=x, y=y, z=z, private_x=private_x, private_y=private_y)


# --- encoders ---------------------------------------------------------------------------------


@dataclass
class IntrinsicFit:
    """Encoders f (for x), g (for y) with one replica per entry of `out_dims`.

    Replica r keeps the first `out_dims[r]` output coordinates (the others are masked to
    zero, so replicas of different dimension train in one pass); `fixed[r]` is its fixed
    temperature, NaN where τ is learned.
    """

    f: MLP
    g: MLP
    temperature: LearnedTemperature
    mask: Tensor
    fixed: Tensor
    normalization: str
    reference: SharedLatentSample
    history: History

    @property
    def out_dims(self) -> list[int]:
        return [int(d) for d in self.mask.sum(1)]

    def tau(self) -> Tensor:
        """The temperature of every replica, learned or fixed."""
        return torch.where(self.fixed.isnan(), self.temperature(), self.fixed)

    def _embed(self, net: MLP, x: Tensor, reference: Tensor) -> Tensor:
        h = net(x) * self.mask[:, None, :]
        if self.normalization == "l2":
            return nn.functional.normalize(h, dim=-1)
        mean_norm = (net(reference) * self.mask[:, None, :]).norm(dim=-1).mean(-1)
        return h / mean_norm[:, None, None]

    def embed_x(self, x: Tensor) -> Tensor:
        """f(x) for every replica, `[R, n, max(out_dims)]` (masked coordinates are 0)."""
        return self._embed(self.f, x, self.reference.x)

    def embed_y(self, y: Tensor) -> Tensor:
        """g(y) for every replica, like `embed_x`."""
        return self._embed(self.g, y, self.reference.y)


def fit_encoders(
    train_pairs: SharedLatentSample,
    reference: SharedLatentSample,
    cfg: SimpleNamespace,
    out_dims: Sequence[int],
    fixed_taus: Sequence[float | None],
    seed: int = 0,
    desc: str = "training",
) -> IntrinsicFit:
    """Train MLP encoders with the symmetric InfoNCE loss, one replica per `out_dims` entry.

    `fixed_taus[r]` is replica r's fixed temperature, or None to learn it from
    `cfg.tau_init` (τ = floor + exp(s), with its own learning rate `cfg.tau_lr` and no
    weight decay). Samples may be shared (`[n, dim]`) or one world per replica
    (`[R, n, dim]`). `reference` holds the held-out inputs of the mean-norm rescaling.
    Replica r is seeded with `seed + r`; the history records the loss and τ.
    """
    check_choice("normalization", cfg.normalization, NORMALIZATIONS)
    n_rep = len(out_dims)
    if len(fixed_taus) != n_rep:
        raise ValueError(f"fixed_taus has {len(fixed_taus)} entries, out_dims {n_rep}")
    for d in out_dims:
        check_range("out_dim", d, 1, None, integer=True)
    for t in fixed_taus:
        if t is not None:
            check_range("fixed tau", t, 1e-4, None)
    device = train_pairs.x.device
    width = max(out_dims)
    dim_x, dim_y = train_pairs.x.shape[-1], train_pairs.y.shape[-1]
    f = MLP(dim_x, cfg.hidden, width, n_rep, seed, device=device)
    g = MLP(dim_y, cfg.hidden, width, n_rep, seed + 10_000, device=device)
    tau = LearnedTemperature(
        n_rep, cfg.tau_init, floor=cfg.tau_floor, max_inverse=1.0 / cfg.tau_floor
    ).to(device)
    mask = torch.arange(width, device=device) < torch.tensor(out_dims, device=device)[:, None]
    fixed = torch.tensor([math.nan if t is None else t for t in fixed_taus], device=device)
    fit = IntrinsicFit(f, g, tau, mask.float(), fixed, cfg.normalization, reference, History())

    def rows(a: Tensor, batch: Tensor) -> Tensor:
        return a[..., batch, :]

    def objective(batch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        t = fit.tau()
        u = fit.embed_x(rows(train_pairs.x, batch))
        v = fit.embed_y(rows(train_pairs.y, batch))
        return symmetric_info_nce(u, v, t, kind="dot"), {"tau": t.detach()}

    nets = [p for net in (f, g) for p in net.parameters()]
    groups = [
        {"params": nets},
        {"params": [tau.log_excess], "lr": cfg.tau_lr, "weight_decay": 0.0},
    ]
    n = len(train_pairs)
    fit.history = train(
        objective,
        groups,
        cfg.epochs * (n // cfg.batch_size),
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        n_samples=n,
        batch_size=cfg.batch_size,
        seed=seed,
        record_every=cfg.record_every,
        desc=desc,
    )
    return fit
