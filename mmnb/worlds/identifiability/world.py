"""Chapter 04's latent model: content, style, modality-specific latents and two mixings.

Latents per sample: content c (shared exactly), style s (shared, but each coordinate of
the second modality's copy s̃ = s + b ⊙ ε is perturbed with probability p_chg) and
modality-specific m1, m2 (independent of everything). The observations are
x1 = f1(c, s, m1) and x2 = f2(c, s̃, m2), with two different invertible mixing MLPs
(`mmnb.mixing`). Optional dependencies: *statistical* (each block Gaussian with a
Wishart covariance, or only its spectrum, or only its dependence: `shaped_covariance`) and
*causal* (s ← s + B c + a). The multi-view special case has f1 = f2 and no m's. With
`content_noise` the second modality sees c + σ η instead of c (content not invariant).

Every tensor carries a leading replica axis R. A replica is a (setting, replica id)
pair: the id j names the random streams of its world (stream(seed, "world/…", j)), so
replicas of different settings with the same id share their draws (covariances, B, a,
f1, f2) and differ only in which dependencies are on. Samples are drawn from one stream
per id on the CPU and moved to the device, so they do not depend on the device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from mmnb.config import check_choice, check_range
from mmnb.mixing import invertible_mlp, mix
from mmnb.runtime import DrawAhead, stream
from mmnb.worlds.identifiability.config import (
    SIGMA_FORMS,
    IdentifiabilityConfig,
    Setting,
    table,
)

__all__ = ["BLOCKS", "LatentModel", "ReplicaStreams", "mean_abs_correlation", "shaped_covariance",
           "wishart"]  # fmt: skip

BLOCKS = ("c", "s", "s_tilde", "m1", "m2")


def wishart(n: int, generator: torch.Generator, df: int | None = None) -> Tensor:
    """A covariance `[n, n]` from Wishart(df, I), df = n by default: GᵀG with G ~ N(0, 1)^{df×n}."""
    g = torch.randn(df or n, n, generator=generator, dtype=torch.float64)
    return g.T @ g


def mean_abs_correlation(df: int) -> float:
    """E|ρ_ij| of a Wishart(df, I) matrix: the correlation of two of its coordinates is the
    cosine of the angle between two independent Gaussian vectors of R^df, whose mean
    absolute value is Γ(df/2) / (√π Γ((df + 1)/2)) (1/2 for df = 3)."""
    return math.exp(math.lgamma(df / 2) - math.lgamma((df + 1) / 2)) / math.sqrt(math.pi)


def shaped_covariance(w: Tensor, form: str, df: int) -> Tensor:
    """What `form` keeps of a Wishart(df) draw `w` `[n, n]` (see `Setting.sigma_form`).

    `"wishart"`: `w`. `"spectrum"`: diag of its eigenvalues (the same condition number, no
    dependence between coordinates). `"equicorrelated"`: `tr(w)/n · ((1 − ρ) I + ρ 11ᵀ)`
    with ρ = `mean_abs_correlation(df)`, the draw's expected strength of dependence at a
    condition number of (1 + (n − 1)ρ) / (1 − ρ) (4 for n = df = 3).
    """
    check_choice("sigma_form", form, SIGMA_FORMS)
    if form == "wishart":
        return w
    if form == "spectrum":
        return torch.diag(torch.linalg.eigvalsh(w))
    n, rho = w.shape[-1], mean_abs_correlation(df)
    corr = (1 - rho) * torch.eye(n, dtype=w.dtype) + rho * torch.ones(n, n, dtype=w.dtype)
    return w.diagonal().mean() * corr


class ReplicaStreams:
    """The stream (seed, purpose, j) of every distinct replica id j, drawn as `[R, …]`.

    Replicas that share an id get the same numbers; each id's stream advances once per
    call. `noise(n, a, b)` gives one batch's N(0, 1) `[R, n, a]` and U(0, 1) `[R, n, b]`
    draws. They are made on the CPU and moved to `device`, `ahead` batches at a time
    (`mmnb.runtime.DrawAhead`: one host-to-device copy per `ahead` training steps on a
    GPU, the same numbers per stream as batch by batch).
    """

    def __init__(
        self,
        seed: int,
        purpose: str,
        ids: Sequence[int],
        device: torch.device | str = "cpu",
        ahead: int = 1,
    ) -> None:
        unique = list(dict.fromkeys(int(i) for i in ids))
        self.seed, self.purpose, self.ids = seed, purpose, [int(i) for i in ids]
        self.device = torch.device(device)
        self.index = torch.tensor([unique.index(int(i)) for i in ids], device=self.device)
        self.streams = [stream(seed, purpose, j) for j in unique]
        self.ahead = check_range("ahead", ahead, 1, 100_000, integer=True)
        self._draws: DrawAhead | None = None
        self._shape: tuple[int, int, int] | None = None
        self._companion: ReplicaStreams | None = None

    def companion(self) -> ReplicaStreams:
        """The streams (seed, purpose + "/content_noise", j): extra draws that leave this
        object's numbers unchanged whether they are made or not."""
        if self._companion is None:
            self._companion = ReplicaStreams(
                self.seed, self.purpose + "/content_noise", self.ids, self.device, self.ahead
            )
        return self._companion

    def noise(self, n: int, normal: int, uniform: int) -> tuple[Tensor, Tensor]:
        """N(0, 1) draws `[R, n, normal]` and U(0, 1) draws `[R, n, uniform]` (per stream,
        the normal draw first)."""
        if self._draws is None:
            self._shape = (n, normal, uniform)

            def draw(g: torch.Generator) -> tuple[Tensor, Tensor]:
                return torch.randn(n, normal, generator=g), torch.rand(n, uniform, generator=g)

            self._draws = DrawAhead([s.torch for s in self.streams], draw, self.device, self.ahead)
        elif self._shape != (n, normal, uniform):
            raise ValueError(
                f"these streams draw batches of shape {self._shape}, not {(n, normal, uniform)}"
            )
        gauss, unif = self._draws()
        return gauss[self.index], unif[self.index]


class LatentModel:
    """The generative process of R replicas, one per (setting, replica id) of `pairs`
    (default: the paper's default setting, replica id 0), ready to sample on `device`.

    Noise u ~ N(0, I) maps linearly to the latents: `(c, s, m1, m2, ε) = u @ transform
    + offset`; s̃ = s + b ⊙ ε with b_j ~ Bernoulli(p_chg) (0 for fixed coordinates);
    x1 = f1(c, s, m1), x2 = f2(c, s̃, m2). A multi-view replica has m1 = m2 = 0 and
    f1 = f2 acting on (c, s) only. A replica with `content_noise` σ > 0 has
    x2 = f2(c + σ η, s̃, m2), η ~ N(0, Σ_c) from the companion streams.
    """

    #: the purposes the chapter's entry points draw pairs for (any name is a stream)
    PURPOSES: ClassVar[tuple[str, ...]] = (
        "data/train",
        "data/negatives",
        "data/track",
        "data/val",
        "data/test",
        "data/directions/val",
        "data/directions/test",
    )

    transform: Tensor  # [R, D, D] with D = n_c + 2 n_s + 2 n_m
    offset: Tensor  # [R, 1, D]
    change_prob: Tensor  # [R, 1, n_s]: probability that each style coordinate changes
    f1: Tensor  # [R, L, n, n], n = n_c + n_s + n_m
    f2: Tensor
    covariance: dict[str, Tensor]  # per block (and "eps", "cs" = Cov(c, s)), [R, ·, ·]
    mixing_condition: Tensor  # [R, 2, L]: condition number of every mixing layer
    content_noise: Tensor  # [R, 1, 1]: σ of the content noise seen by modality 2

    def __init__(
        self,
        cfg: IdentifiabilityConfig,
        seed: int,
        device: torch.device | str = "cpu",
        pairs: Sequence[tuple[Setting, int]] | None = None,
    ) -> None:
        pairs = [(table(cfg.p_chg)[-1], 0)] if pairs is None else list(pairs)
        if not pairs:
            raise ValueError("pairs is empty; give at least one (setting, replica id)")
        self.cfg, self.seed, self.device = cfg, seed, torch.device(device)
        self.settings = [s for s, _ in pairs]
        self.ids = [int(j) for _, j in pairs]
        self.n_c, self.n_s, self.n_m = cfg.n_c, cfg.n_s, cfg.n_m
        self._draw_law()

    def _draw_law(self) -> None:
        """Each replica's latent law and mixing functions, from the streams of its id."""
        cfg, seed, device = self.cfg, self.seed, self.device
        n_c, n_s, n_m, layers = self.n_c, self.n_s, self.n_m, cfg.mixing_layers
        n, dim = n_c + n_s + n_m, n_c + 2 * n_s + 2 * n_m
        sizes = {"c": n_c, "s": n_s, "m1": n_m, "m2": n_m, "eps": n_s}
        mixing = dict(n_layers=layers, draws=cfg.cond_draws, ratio=cfg.cond_ratio)
        for s in self.settings:
            check_range("fixed_style", s.fixed_style, 0, n_s, integer=True)
        transforms, offsets, f1s, f2s, conds = [], [], [], [], []
        for setting, j in zip(self.settings, self.ids, strict=True):
            sigmas = {}
            for block, d in sizes.items():  # shared: one stream for every block, as the reference
                shared = setting.covariance == "shared"
                purpose = "world/covariance" + ("" if shared else f"/{block}")
                df = setting.wishart_factor * d
                w = wishart(d, stream(seed, purpose, j).torch, df) / setting.wishart_factor
                sigmas[block] = shaped_covariance(w, setting.sigma_form, df)
            chol = {
                k: torch.linalg.cholesky(s) if setting.statistical else torch.eye(len(s)).double()
                for k, s in sigmas.items()
            }
            if setting.multiview:  # no modality-specific latents
                chol["m1"] = chol["m2"] = torch.zeros(n_m, n_m, dtype=torch.float64)
            t = torch.block_diag(*(chol[k].T for k in ("c", "s", "m1", "m2", "eps")))
            offset = torch.zeros(1, dim, dtype=torch.float64)
            if setting.causal:  # s ← s + B c + a
                gen = stream(seed, "world/causal", j).torch
                b, a = torch.randn(n_s, n_c, generator=gen), torch.randn(n_s, generator=gen)
                t[:, n_c : n_c + n_s] += t[:, :n_c] @ b.double().T
                offset[0, n_c : n_c + n_s] = a.double()
            if setting.multiview:  # one mixing function on (c, s), inputs padded with zeros
                f_view = invertible_mlp(
                    n_c + n_s, generator=stream(seed, "world/f_view", j).torch, **mixing
                )
                f1 = torch.zeros(layers, n, n)
                f1[:, : n_c + n_s, : n_c + n_s] = f_view
                f2, used = f1, torch.stack([f_view, f_view])
            else:
                f1, f2 = (
                    invertible_mlp(n, generator=stream(seed, f"world/{f}", j).torch, **mixing)
                    for f in ("f1", "f2")
                )
                used = torch.stack([f1, f2])
            transforms.append(t)
            offsets.append(offset)
            f1s.append(f1)
            f2s.append(f2)
            conds.append(torch.linalg.cond(used.double()))
        transform = torch.stack(transforms)
        cov = transform.mT @ transform
        sl = dict(
            c=(0, n_c), s=(n_c, n_c + n_s), m1=(n_c + n_s, n), m2=(n, n + n_m), eps=(n + n_m, dim)
        )
        covariance = {k: cov[:, a:b, a:b] for k, (a, b) in sl.items()}
        covariance["cs"] = cov[:, :n_c, n_c : n_c + n_s]  # Cov(c, s), non-zero if causal
        p = torch.tensor(
            [[s.p_chg] * (n_s - s.fixed_style) + [0.0] * s.fixed_style for s in self.settings],
            dtype=torch.float64,
        )
        # Cov(b ⊙ ε) = E[b bᵀ] ∘ Σ_ε with E[b_i b_j] = p_i p_j (i ≠ j), p_i (i = j)
        second = p[:, :, None] * p[:, None, :] + torch.diag_embed(p - p.square())
        covariance["s_tilde"] = covariance["s"] + second * covariance["eps"]
        self.transform = transform.float().to(device)
        self.offset = torch.stack(offsets).float().to(device)
        self.change_prob = p[:, None, :].float().to(device)
        self.f1, self.f2 = torch.stack(f1s).to(device), torch.stack(f2s).to(device)
        self.covariance = {k: v.to(device) for k, v in covariance.items()}
        self.mixing_condition = torch.stack(conds)
        noise = [[[s.content_noise]] for s in self.settings]
        self.content_noise = torch.tensor(noise, device=device)

    @property
    def pairs(self) -> list[tuple[Setting, int]]:
        """The (setting, replica id) of every replica."""
        return list(zip(self.settings, self.ids, strict=True))

    @property
    def n_replicas(self) -> int:
        return self.transform.shape[0]

    def _slices(self) -> dict[str, slice]:
        ends = np.cumsum([0, self.n_c, self.n_s, self.n_m, self.n_m, self.n_s])
        names = ("c", "s", "m1", "m2", "eps")
        return {
            k: slice(int(a), int(b)) for k, a, b in zip(names, ends[:-1], ends[1:], strict=True)
        }

    def streams(self, purpose: str, ahead: int = 1) -> ReplicaStreams:
        """The per-id streams (seed, purpose, j) of this model's replicas, on its device,
        drawing `ahead` batches at a time (see `ReplicaStreams`)."""
        return ReplicaStreams(self.seed, purpose, self.ids, self.transform.device, ahead)

    def sample(self, n: int, purpose: str | ReplicaStreams) -> dict[str, Tensor]:
        """`n` pairs per replica: the blocks c, s, s_tilde, m1, m2 and x1, x2, each `[R, n, ·]`.

        `purpose` names fresh streams (seed, purpose, j); a `ReplicaStreams` from `streams`
        goes on where it stopped (one per training run, a batch per step).
        """
        streams = self.streams(purpose) if isinstance(purpose, str) else purpose
        u, uniform = streams.noise(n, self.transform.shape[1], self.n_s)
        lat = torch.baddbmm(self.offset, u, self.transform)
        sl = self._slices()
        out = {k: lat[..., v] for k, v in sl.items() if k != "eps"}
        change = uniform < self.change_prob
        out["s_tilde"] = out["s"] + change * lat[..., sl["eps"]]
        c2 = out["c"]
        if bool((self.content_noise > 0).any()):  # η ~ N(0, Σ_c): u_c's map to c
            eta = streams.companion().noise(n, self.n_c, 0)[0]
            c2 = c2 + self.content_noise * torch.bmm(eta, self.transform[:, : self.n_c, : self.n_c])
        z1 = torch.cat([out["c"], out["s"], out["m1"]], -1)
        z2 = torch.cat([c2, out["s_tilde"], out["m2"]], -1)
        out["x1"], out["x2"] = mix(z1, self.f1), mix(z2, self.f2)
        return out

    def style_oracle(self, block: str = "s", directions: Tensor | None = None) -> Tensor:
        """R²(style | c) per replica, `[R, n_s]`: per coordinate, or along `directions`.

        E[s | c] is linear (Gaussian latents), so along a unit direction v the best
        predictor from c explains vᵀΣ_sc Σ_c⁻¹ Σ_cs v of the variance vᵀ Cov(s) v; s̃ has
        the same E[· | c] and a larger variance. `directions` `[R, n_s, k]` holds one
        direction per column (default: the coordinate axes).
        """
        check_choice("block", block, ("s", "s_tilde"))
        cs, sig_c = self.covariance["cs"], self.covariance["c"]
        explained = cs.mT @ torch.linalg.solve(sig_c, cs)  # Σ_sc Σ_c⁻¹ Σ_cs
        if directions is None:
            eye = torch.eye(self.n_s, dtype=cs.dtype, device=cs.device)
            directions = eye.expand(cs.shape[0], -1, -1)  # [R, n_s, n_s]; cs is [R, n_c, n_s]
        v = directions.to(cs.dtype)
        quad = lambda m: (v * (m @ v)).sum(-2)  # noqa: E731
        return quad(explained) / quad(self.covariance[block])
