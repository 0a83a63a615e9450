"""Chapter 04's world: two modalities that share content (Daunhawer et al., 2023).

Latents per sample: content c (shared exactly), style s (shared, but each coordinate of
the second modality's copy s̃ = s + b ⊙ ε is perturbed with probability p_chg) and
modality-specific m1, m2 (independent of everything). The observations are
x1 = f1(c, s, m1) and x2 = f2(c, s̃, m2), with two different invertible mixing MLPs.
Optional dependencies: *statistical* (each block Gaussian with a Wishart covariance)
and *causal* (s ← s + B c + a). The multi-view special case has f1 = f2 and no m's.

Everything carries a leading replica axis R: replica r has its own latent law, mixing
functions and encoders, and the data of every replica is drawn at once on the device,
so several settings and seeds train as one batched model.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import SimpleNamespace

import numpy as np
import torch
from torch import Tensor, nn

from mmnb.losses import symmetric_info_nce
from mmnb.nets import MLP
from mmnb.params import check_choice, check_range
from mmnb.probes import r2_scores
from mmnb.train import History, train

__all__ = [
    "BLOCKS",
    "DEFAULT",
    "MULTIVIEW",
    "PROFILES",
    "TABLE",
    "Encoders",
    "Evaluation",
    "IdentifiabilityRun",
    "LatentModel",
    "Setting",
    "check_config",
    "condition_threshold",
    "contrastive_loss",
    "encode_pairs",
    "evaluate",
    "invertible_mlp",
    "make_encoders",
    "make_latent_model",
    "mix",
    "replicas",
    "run",
    "unmix",
    "wishart",
]

BLOCKS = ("c", "s", "s_tilde", "m1", "m2")
MIXING_SLOPE = 0.2  # LeakyReLU slope between the mixing layers
ENCODER_SLOPE = 0.01  # LeakyReLU slope of the encoders (mmnb's "leaky_relu")

PROFILES = {
    "book": dict(
        n_c=3,
        n_s=3,
        n_m=3,
        encoding_size=3,
        mixing_layers=2,
        cond_draws=25_000,
        cond_ratio=0.001,
        hidden=[128, 128, 128],
        lr=1e-3,
        batch_size=256,
        steps=2000,
        grad_clip=2.0,
        compile=False,
        n_val=2048,
        n_test=2048,
        kernel_points=2000,
        kernel_alphas=[1.0],
        kernel_gammas=[0.1],
        sweep_sizes=[1, 2, 3, 4, 6, 9],
        sweep_seeds=1,
    ),
    "paper": dict(
        n_c=5,
        n_s=5,
        n_m=5,
        encoding_size=5,
        mixing_layers=3,
        cond_draws=25_000,
        cond_ratio=0.001,
        hidden=[150, 750, 750, 750, 750, 150],
        lr=1e-4,
        batch_size=6144,
        steps=300_001,
        grad_clip=2.0,
        compile=True,  # fused elementwise work: 1.2× faster per step on a CPU
        n_val=20_480,
        n_test=20_480,
        kernel_points=20_480,
        kernel_alphas=[1.0, 0.1, 0.01, 0.001],
        kernel_gammas=[float(g) for g in np.logspace(-2, 2, 4)],
        sweep_sizes=list(range(1, 16)),
        sweep_seeds=3,
    ),
}


def check_config(cfg: SimpleNamespace) -> None:
    """Raise a `ValueError` naming any knob of a resolved profile that is out of range."""
    for name in ("n_c", "n_s"):
        check_range(name, getattr(cfg, name), 1, 64, integer=True)
    check_range("n_m", cfg.n_m, 0, 64, integer=True)
    check_range("encoding_size", cfg.encoding_size, 1, 256, integer=True)
    check_range("mixing_layers", cfg.mixing_layers, 1, 16, integer=True)
    check_range("cond_draws", cfg.cond_draws, 10, 10**7, integer=True)
    check_range("cond_ratio", cfg.cond_ratio, 1e-5, 1.0)
    check_range("lr", cfg.lr, 1e-7, 1.0)
    check_range("batch_size", cfg.batch_size, 2, 65_536, integer=True)
    check_range("steps", cfg.steps, 1, 10**7, integer=True)
    check_range("grad_clip", cfg.grad_clip, 1e-6, None)
    check_choice("compile", cfg.compile, [True, False])
    check_range("n_val", cfg.n_val, 10, 10**6, integer=True)
    check_range("n_test", cfg.n_test, 10, 10**6, integer=True)
    check_range("kernel_points", cfg.kernel_points, 10, cfg.n_val, integer=True)
    for width in cfg.hidden:
        check_range("hidden", width, 1, 65_536, integer=True)
    for alpha in cfg.kernel_alphas:
        check_range("kernel_alphas", alpha, 1e-12, None)
    for gamma in cfg.kernel_gammas:
        check_range("kernel_gammas", gamma, 1e-12, None)
    for size in cfg.sweep_sizes:
        check_range("sweep_sizes", size, 1, 256, integer=True)
    check_range("sweep_seeds", cfg.sweep_seeds, 1, 64, integer=True)


# --- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One row of the experiment: how style changes and which dependencies are on.

    `encoding_size=None` takes the profile's; `multiview=True` uses one mixing function
    for both modalities and no modality-specific latents. Two variants of the statistical
    dependence serve the chapter's investigation: `shared_covariance=True` gives every
    block the content's Wishart matrix (what the reference code does, by seeding each draw
    alike), and `wishart_df` draws the covariances with more degrees of freedom (better
    conditioned), rescaled by n / df to keep their mean n·I.
    """

    p_chg: float = 1.0
    statistical: bool = False
    causal: bool = False
    multiview: bool = False
    encoding_size: int | None = None
    shared_covariance: bool = False
    wishart_df: int | None = None

    def __post_init__(self) -> None:
        check_range("p_chg", self.p_chg, 0.0, 1.0)
        if self.encoding_size is not None:
            check_range("encoding_size", self.encoding_size, 1, 256, integer=True)
        if self.wishart_df is not None:
            check_range("wishart_df", self.wishart_df, 1, 10**6, integer=True)

    @property
    def dependence(self) -> str:
        """`indep`, `stat`, `causal` or `stat_causal`."""
        parts = [n for n, on in (("stat", self.statistical), ("causal", self.causal)) if on]
        return "_".join(parts) or "indep"

    @property
    def name(self) -> str:
        """A short identifier such as `p075_stat_causal` (used in metric names)."""
        p = f"{self.p_chg:g}".replace(".", "")
        name = f"p{p}_{self.dependence}"
        if self.multiview:
            name = "multiview_" + name
        if self.shared_covariance:
            name += "_shared"
        if self.wishart_df is not None:
            name += f"_df{self.wishart_df}"
        return name if self.encoding_size is None else f"{name}_d{self.encoding_size}"


TABLE = (
    Setting(1.0),
    Setting(1.0, causal=True),
    Setting(1.0, statistical=True),
    Setting(0.75),
    Setting(0.75, statistical=True, causal=True),
)
DEFAULT = TABLE[-1]
MULTIVIEW = replace(DEFAULT, multiview=True)


# --- mixing functions -------------------------------------------------------------------------


def _unit_columns(n: int, count: int, generator: torch.Generator) -> Tensor:
    """`count` matrices `[n, n]` with entries uniform in [−1, 1] and unit-norm columns."""
    a = torch.rand(count, n, n, generator=generator, dtype=torch.float64) * 2 - 1
    return a / a.norm(dim=-2, keepdim=True)


@functools.lru_cache(maxsize=16)
def condition_threshold(n: int, draws: int = 25_000, ratio: float = 0.001, seed: int = 0) -> float:
    """The `ratio`-quantile of the condition numbers of `draws` random mixing matrices `[n, n]`."""
    check_range("cond_ratio", ratio, 0.0, 1.0)
    gen = torch.Generator().manual_seed(seed)
    cond = torch.linalg.cond(_unit_columns(n, draws, gen)).sort().values
    return float(cond[int(draws * ratio)])


def invertible_mlp(
    n: int, n_layers: int, generator: torch.Generator, draws: int = 25_000, ratio: float = 0.001
) -> Tensor:
    """Weights `[L, n, n]` of an invertible mixing MLP (no biases, LeakyReLU(0.2) between).

    Each weight has entries uniform in [−1, 1] and unit-norm columns, and is kept only
    when its condition number is below the `ratio`-quantile of `draws` random draws
    (rejection sampling, as in the reference implementation; the quantile is computed
    once per size from a fixed seed).
    """
    threshold = condition_threshold(n, draws, ratio)
    chunk = max(64, min(int(2 / ratio), 4096))
    layers = []
    while len(layers) < n_layers:
        candidates = _unit_columns(n, chunk, generator)
        good = candidates[torch.linalg.cond(candidates) <= threshold]
        layers.extend(good[: n_layers - len(layers)])
    return torch.stack(layers).float()


def mix(z: Tensor, weights: Tensor) -> Tensor:
    """x = W_L σ(… σ(W_1 z)) with σ = LeakyReLU(0.2); `weights` is `[L, n, n]` or `[R, L, n, n]`."""
    x = z
    for i in range(weights.shape[-3]):
        x = x @ weights[..., i, :, :].transpose(-1, -2)
        if i < weights.shape[-3] - 1:
            x = nn.functional.leaky_relu(x, MIXING_SLOPE)
    return x


def unmix(x: Tensor, weights: Tensor) -> Tensor:
    """The inverse of `mix`: undo each layer, last first."""
    z = x
    for i in reversed(range(weights.shape[-3])):
        if i < weights.shape[-3] - 1:
            z = torch.where(z >= 0, z, z / MIXING_SLOPE)
        z = torch.linalg.solve(weights[..., i, :, :], z.transpose(-1, -2)).transpose(-1, -2)
    return z


def wishart(n: int, generator: torch.Generator, df: int | None = None) -> Tensor:
    """A covariance `[n, n]` from Wishart(df, I), df = n by default: GᵀG with G ~ N(0, 1)^{df×n}."""
    g = torch.randn(df or n, n, generator=generator, dtype=torch.float64)
    return g.T @ g


# --- the latent model -------------------------------------------------------------------------


@dataclass
class LatentModel:
    """The generative process of R replicas, ready to sample on its device.

    Noise u ~ N(0, I) maps linearly to the latents: `(c, s, m1, m2, ε) = u @ transform
    + offset`; s̃ = s + b ⊙ ε with b ~ Bernoulli(p_chg); x1 = f1(c, s, m1), x2 = f2(c, s̃, m2).
    A multi-view replica pads its inputs with zeros where the m's would be.
    """

    settings: list[Setting]
    n_c: int
    n_s: int
    n_m: int
    transform: Tensor  # [R, D, D] with D = n_c + 2 n_s + 2 n_m
    offset: Tensor  # [R, 1, D]
    p_chg: Tensor  # [R]
    f1: Tensor  # [R, L, n, n], n = n_c + n_s + n_m
    f2: Tensor
    covariance: dict[str, Tensor]  # per block (and "eps", "cs" = Cov(c, s)), [R, ·, ·]
    mixing_condition: Tensor  # [R, 2, L]: condition number of every mixing layer

    @property
    def n_replicas(self) -> int:
        return self.transform.shape[0]

    def _slices(self) -> dict[str, slice]:
        c, s, m = self.n_c, self.n_s, self.n_m
        ends = np.cumsum([0, c, s, m, m, s])
        names = ("c", "s", "m1", "m2", "eps")
        return {
            k: slice(int(a), int(b)) for k, a, b in zip(names, ends[:-1], ends[1:], strict=True)
        }

    def sample(self, n: int, generator: torch.Generator) -> dict[str, Tensor]:
        """`n` pairs per replica: the blocks c, s, s_tilde, m1, m2 and x1, x2, each `[R, n, ·]`."""
        r, dev = self.n_replicas, self.transform.device
        u = torch.randn(r, n, self.transform.shape[1], generator=generator, device=dev)
        lat = torch.baddbmm(self.offset, u, self.transform)
        sl = self._slices()
        out = {k: lat[..., v] for k, v in sl.items() if k != "eps"}
        flips = torch.rand(r, n, self.n_s, generator=generator, device=dev)
        change = flips < self.p_chg.view(-1, 1, 1)
        out["s_tilde"] = out["s"] + change * lat[..., sl["eps"]]
        z1 = torch.cat([out["c"], out["s"], out["m1"]], -1)
        z2 = torch.cat([out["c"], out["s_tilde"], out["m2"]], -1)
        out["x1"], out["x2"] = mix(z1, self.f1), mix(z2, self.f2)
        return out

    def style_oracle(self, block: str = "s") -> Tensor:
        """R²(style | c) per replica and coordinate, `[R, n_s]`, from the generative process.

        E[s | c] = B c + a is the best predictor, so R²_j = (B Σ_c Bᵀ)_jj / Var(s_j); for
        s̃ the denominator also holds p_chg · Var(ε_j).
        """
        check_choice("block", block, ("s", "s_tilde"))
        sl = self._slices()
        # s = u_s Lsᵀ + u_c Lcᵀ Bᵀ + a: the part explained by c is u_c · transform[c, s].
        explained = self.transform[:, sl["c"], sl["s"]].double().square().sum(1)
        return explained / self.covariance[block].diagonal(dim1=-2, dim2=-1)


def make_latent_model(
    settings: Sequence[Setting],
    seeds: Sequence[int],
    cfg: SimpleNamespace,
    device: torch.device | str = "cpu",
) -> LatentModel:
    """Build one replica per (setting, seed): latent law and mixing functions from the seed.

    With the same seed, replicas of different settings share their draws (covariances,
    B, a, f1, f2) and differ only in which dependencies are switched on.
    """
    if len(settings) != len(seeds):
        raise ValueError(f"settings ({len(settings)}) and seeds ({len(seeds)}) must pair up")
    nc, ns, nm = cfg.n_c, cfg.n_s, cfg.n_m
    n = nc + ns + nm
    dim = nc + 2 * ns + 2 * nm
    draws = (cfg.cond_draws, cfg.cond_ratio)
    transforms, offsets, f1s, f2s, conds = [], [], [], [], []
    for setting, seed in zip(settings, seeds, strict=True):
        gen = torch.Generator().manual_seed(int(seed))
        dims = {"c": nc, "s": ns, "eps": ns, "m1": nm, "m2": nm}
        sigmas = {k: wishart(d, gen) for k, d in dims.items()}
        b, a = torch.randn(ns, nc, generator=gen), torch.randn(ns, generator=gen)
        f1, f2 = (invertible_mlp(n, cfg.mixing_layers, gen, *draws) for _ in range(2))
        used = torch.stack([f1, f2])
        if setting.multiview:  # one mixing function on (c, s), inputs padded with zeros
            f_view = invertible_mlp(nc + ns, cfg.mixing_layers, gen, *draws)
            f1 = torch.zeros(cfg.mixing_layers, n, n)
            f1[:, : nc + ns, : nc + ns] = f_view
            f2, used = f1, torch.stack([f_view, f_view])
        if setting.wishart_df is not None:  # drawn last: the other draws stay the same
            df = setting.wishart_df
            sigmas = {k: wishart(d, gen, df) * (d / df) for k, d in dims.items()}
        if setting.shared_covariance:
            if len(set(dims.values())) > 1:
                raise ValueError(f"shared_covariance needs n_c = n_s = n_m, got {dims}")
            sigmas = dict.fromkeys(dims, sigmas["c"])
        chol = {
            k: torch.linalg.cholesky(s) if setting.statistical else torch.eye(s.shape[0]).double()
            for k, s in sigmas.items()
        }
        t = torch.zeros(dim, dim, dtype=torch.float64)
        c0, s0, m10, m20, e0 = np.cumsum([0, nc, ns, nm, nm])
        t[c0:s0, c0:s0] = chol["c"].T
        t[s0:m10, s0:m10] = chol["s"].T
        if not setting.multiview:
            t[m10:m20, m10:m20] = chol["m1"].T
            t[m20:e0, m20:e0] = chol["m2"].T
        t[e0:, e0:] = chol["eps"].T
        offset = torch.zeros(1, dim, dtype=torch.float64)
        if setting.causal:  # s ← s + B c + a
            t[:, s0:m10] += t[:, c0:s0] @ b.double().T
            offset[0, s0:m10] = a.double()
        transforms.append(t)
        offsets.append(offset)
        f1s.append(f1)
        f2s.append(f2)
        conds.append(torch.linalg.cond(used.double()))
    transform = torch.stack(transforms)
    cov = transform.transpose(-1, -2) @ transform
    sl = dict(c=(0, nc), s=(nc, nc + ns), m1=(nc + ns, n), m2=(n, n + nm), eps=(n + nm, dim))
    covariance = {k: cov[:, a:b, a:b] for k, (a, b) in sl.items()}
    covariance["cs"] = cov[:, :nc, nc : nc + ns]  # Cov(c, s), non-zero with causal dependence
    p = torch.tensor([s.p_chg for s in settings], dtype=torch.float64)
    covariance["s_tilde"] = covariance["s"] + p.view(-1, 1, 1) * covariance["eps"]
    return LatentModel(
        settings=list(settings),
        n_c=nc,
        n_s=ns,
        n_m=nm,
        transform=transform.float().to(device),
        offset=torch.stack(offsets).float().to(device),
        p_chg=p.float().to(device),
        f1=torch.stack(f1s).to(device),
        f2=torch.stack(f2s).to(device),
        covariance={k: v.to(device) for k, v in covariance.items()},
        mixing_condition=torch.stack(conds),
    )


# --- encoders and the loss --------------------------------------------------------------------


class Encoders(nn.Module):
    """The two encoders g1, g2 of R replicas; replica r keeps its first `sizes[r]` outputs.

    Both nets have `max(sizes)` outputs; the others are multiplied by zero, so replicas
    with different encoding sizes train as one batched model.
    """

    def __init__(
        self,
        n_in: int,
        hidden: Sequence[int],
        sizes: Sequence[int],
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        width, r = max(sizes), len(sizes)
        self.g1 = MLP(n_in, hidden, width, r, seed, "leaky_relu", device=device)
        self.g2 = MLP(n_in, hidden, width, r, seed + 10_000, "leaky_relu", device=device)
        self.sizes = [int(k) for k in sizes]
        keep = torch.arange(width)[None, :] < torch.tensor(self.sizes)[:, None]
        self.register_buffer(
            "mask", None if bool(keep.all()) else keep[:, None, :].float().to(device)
        )

    def forward(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
        u, v = self.g1(x1), self.g2(x2)
        if self.mask is not None:
            u, v = u * self.mask, v * self.mask
        return u, v


def make_encoders(
    cfg: SimpleNamespace,
    sizes: Sequence[int] | int,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> Encoders:
    """The profile's encoder pair (LeakyReLU(0.01) MLPs, `cfg.hidden` wide) for R replicas.

    `sizes` is the encoding size of each replica, or the number of replicas (all with
    `cfg.encoding_size`). Replica r is initialised from seed `seed + r`.
    """
    if isinstance(sizes, int):
        sizes = [cfg.encoding_size] * sizes
    return Encoders(cfg.n_c + cfg.n_s + cfg.n_m, cfg.hidden, sizes, seed, device)


def contrastive_loss(
    encoders: Encoders, model: LatentModel, batch_size: int, generator: torch.Generator
) -> Tensor:
    """Symmetric InfoNCE (similarity −‖·‖², τ = 1) on a fresh batch per replica, shape `[R]`.

    Negatives are the other pairs of the batch in the other modality (CLIP's loss).
    """
    batch = model.sample(batch_size, generator)
    u, v = encoders(batch["x1"], batch["x2"])
    return symmetric_info_nce(u, v, 1.0, "neg_sqdist")


# --- evaluation -------------------------------------------------------------------------------


def encode_pairs(
    encoders: Encoders, model: LatentModel, n: int, generator: torch.Generator
) -> tuple[dict[str, Tensor], Tensor]:
    """`n` fresh pairs per replica and their encodings by both encoders, `[R, 2, n, d]`."""
    with torch.no_grad():
        data = model.sample(n, generator)
        return data, torch.stack(encoders(data["x1"], data["x2"]), 1)


@dataclass
class Evaluation:
    """R² of every block from every encoder: `linear[r, modality, block]`, `kernel[...]`.

    `*_coords` hold the per-coordinate values, `[R, 2, n_c + 2 n_s + 2 n_m]` in the order
    of `BLOCKS`; `oracle[r]` is R²(s | c) of replica r.
    """

    linear: Tensor
    kernel: Tensor
    linear_coords: Tensor
    kernel_coords: Tensor
    oracle: Tensor
    oracle_tilde: Tensor


def evaluate(
    encoders: Encoders, model: LatentModel, cfg: SimpleNamespace, generator: torch.Generator
) -> Evaluation:
    """Fit regressors on `cfg.n_val` fresh pairs, score them on `cfg.n_test` others.

    Kernel ridge uses the first `cfg.kernel_points` validation pairs. Blocks the model
    lacks (m1, m2 in a multi-view replica) score NaN.
    """
    (val, f_val), (test, f_test) = (
        encode_pairs(encoders, model, n, generator) for n in (cfg.n_val, cfg.n_test)
    )
    feats = [f_val, f_test]
    sizes = [model.n_c, model.n_s, model.n_s, model.n_m, model.n_m]
    targets = [
        torch.cat([d[b] for b in BLOCKS], -1)[:, None].expand(-1, 2, -1, -1) for d in (val, test)
    ]
    k = cfg.kernel_points
    linear = r2_scores(feats[0], targets[0], feats[1], targets[1], "linear")
    kernel = torch.cat(
        [
            r2_scores(
                feats[0][r : r + 1, :, :k],
                targets[0][r : r + 1, :, :k],
                feats[1][r : r + 1],
                targets[1][r : r + 1],
                "kernel",
                cfg.kernel_alphas,
                cfg.kernel_gammas,
                sizes,
            )
            for r in range(model.n_replicas)
        ]
    )
    multiview = torch.tensor([s.multiview for s in model.settings], device=linear.device)
    ends = np.cumsum([0, *sizes])
    m_cols = torch.zeros(ends[-1], dtype=torch.bool, device=linear.device)
    m_cols[int(ends[3]) :] = True
    missing = multiview[:, None, None] & m_cols  # [R, 1, T]
    linear, kernel = (torch.where(missing, float("nan"), c) for c in (linear, kernel))

    def blocks(coords: Tensor) -> Tensor:
        return torch.stack(
            [coords[..., a:b].mean(-1) for a, b in zip(ends[:-1], ends[1:], strict=True)], -1
        )

    return Evaluation(
        linear=blocks(linear).cpu(),
        kernel=blocks(kernel).cpu(),
        linear_coords=linear.cpu(),
        kernel_coords=kernel.cpu(),
        oracle=model.style_oracle("s").mean(-1).cpu(),
        oracle_tilde=model.style_oracle("s_tilde").mean(-1).cpu(),
    )


# --- the experiment ---------------------------------------------------------------------------


@dataclass
class IdentifiabilityRun:
    """Trained replicas: one per (setting, seed), in the order of `replicas`."""

    replicas: list[tuple[Setting, int]]
    model: LatentModel
    encoders: Encoders
    history: History
    evaluation: Evaluation

    def rows(self, setting: Setting) -> list[int]:
        """The replica indices of one setting (its seeds)."""
        rows = [i for i, (s, _) in enumerate(self.replicas) if s == setting]
        if not rows:
            raise ValueError(f"setting {setting.name!r} was not trained in this run")
        return rows

    def r2(self, setting: Setting, kind: str = "kernel", modality: int = 1) -> Tensor:
        """R² of every block (`BLOCKS` order) for each seed of `setting`: `[n_seeds, 5]`."""
        check_choice("kind", kind, ("kernel", "linear"))
        check_choice("modality", modality, (1, 2))
        return getattr(self.evaluation, kind)[self.rows(setting), modality - 1]


def replicas(settings: Sequence[Setting], n_seeds: int, seed: int = 0) -> list[tuple[Setting, int]]:
    """Every (setting, world seed) pair: seeds `seed … seed + n_seeds − 1` for each setting."""
    check_range("n_seeds", n_seeds, 1, 64, integer=True)
    return [(s, seed + j) for s in settings for j in range(n_seeds)]


def run(
    pairs: Sequence[tuple[Setting, int]],
    cfg: SimpleNamespace,
    seed: int = 0,
    device: torch.device | str = "cpu",
    steps: int | None = None,
    track_every: int = 0,
    desc: str = "identifiability",
) -> IdentifiabilityRun:
    """Train every (setting, world seed) pair as one replica of a single batched model.

    Replica r uses the world drawn from its seed and encoders initialised from
    `seed + r`; each step draws a fresh batch for all replicas at once. Every
    `track_every` steps the history records the linear R² of content and style from
    encoder 1 on 1024 held-out pairs (`r2_c`, `r2_s`). Ends with `evaluate`.
    """
    model = make_latent_model([s for s, _ in pairs], [j for _, j in pairs], cfg, device)
    sizes = [s.encoding_size or cfg.encoding_size for s, _ in pairs]
    encoders = make_encoders(cfg, sizes, seed, device)
    gen = torch.Generator(device=device).manual_seed(seed)
    held, held_gen = {}, torch.Generator(device=device).manual_seed(seed + 2)

    def objective(_: Tensor | None) -> Tensor:
        return contrastive_loss(encoders, model, cfg.batch_size, gen)

    def track() -> dict[str, Tensor]:
        if not held:
            held["val"], held["test"] = model.sample(1024, held_gen), model.sample(1024, held_gen)
        f_val, f_test = (encoders(held[k]["x1"], held[k]["x2"])[0] for k in ("val", "test"))
        return {
            f"r2_{b}": r2_scores(f_val, held["val"][b], f_test, held["test"][b]).mean(-1)
            for b in ("c", "s")
        }

    history = train(
        objective,
        encoders,
        steps or cfg.steps,
        lr=cfg.lr,
        clip_grad_norm=cfg.grad_clip,
        compile=cfg.compile,
        evaluate=track if track_every else None,
        eval_every=track_every,
        record_every=50,
        desc=desc,
    )
    eval_gen = torch.Generator(device=device).manual_seed(seed + 1)
    evaluation = evaluate(encoders, model, cfg, eval_gen)
    return IdentifiabilityRun(list(pairs), model, encoders, history, evaluation)
