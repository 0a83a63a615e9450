"""Chapter 04's settings: the config (`IdentifiabilityConfig`) and the rows of the
paper's table (`Setting`, `table`, `replicas`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mmnb.config import WorldConfig, check_choice, check_range, knob
from mmnb.ranges import WIDTH, Range

__all__ = [
    "COVARIANCES",
    "OBJECTIVES",
    "SIGMA_FORMS",
    "IdentifiabilityConfig",
    "Setting",
    "replicas",
    "table",
]

OBJECTIVES = ("clip", "reference")
COVARIANCES = ("shared", "independent")
#: what is kept of each block's Wishart draw W: W itself; its eigenvalues on the
#: diagonal (W's conditioning, independent coordinates); or an equicorrelated matrix with
#: W's trace and the draw's mean |correlation| (W's dependence, well conditioned)
SIGMA_FORMS = ("wishart", "spectrum", "equicorrelated")


@dataclass(frozen=True)
class IdentifiabilityConfig(WorldConfig):
    """The chapter's settings; defaults are the "book" profile, `PAPER` the paper's changes."""

    PAPER: ClassVar[dict] = {
        "n_c": 5,
        "n_s": 5,
        "n_m": 5,
        "mixing_layers": 3,
        "hidden": (150, 750, 750, 750, 750, 150),
        "lr": 1e-4,
        "batch_size": 6144,
        "steps": 300_001,
        "compile": True,  # fused elementwise work: 1.2× faster per step on a CPU
        "n_val": 20_480,
        "n_test": 20_480,
        "kernel_points": 20_480,
        "kernel_alphas": (1.0, 0.1, 0.01, 0.001),
        "kernel_gammas": tuple(float(g) for g in np.logspace(-2, 2, 4)),
        "sweep_sizes": tuple(range(1, 16)),
        "sweep_seeds": 3,
    }

    # the world
    n_c: int = knob(3, Range(1, 32))  # content dimensions (= the encoding size)
    n_s: int = knob(3, Range(1, 32))  # style dimensions
    n_m: int = knob(3, Range(1, 32))  # modality-specific dimensions per modality
    p_chg: float = knob(0.75, Range(0.5, 1.0))  # P(style changes), partial-change rows
    mixing_layers: int = knob(2, Range(1, 8))  # layers of each mixing MLP
    cond_draws: int = knob(25_000, Range(1000, 1_000_000))  # draws for the cond. quantile
    cond_ratio: float = knob(0.001, Range(1e-4, 0.5))  # kept quantile of condition numbers
    # training
    objective: str = knob("clip", OBJECTIVES)  # main loss: CLIP's or the reference's
    hidden: tuple = knob((128, 128, 128), WIDTH)  # hidden widths of the encoders
    lr: float = knob(1e-3, Range(1e-6, 0.1))  # Adam learning rate
    batch_size: int = knob(128, Range(16, 65_536))  # fresh pairs per step
    steps: int = knob(2000, Range(1, 400_000))  # optimizer steps (paper profile: 300,001)
    grad_clip: float = knob(2.0, Range(1e-3, 1e3))  # per-replica gradient-norm clip
    compile: bool = knob(False)  # torch.compile the objective
    track_evals: int = knob(8, Range(0, 1000))  # held-out R² evaluations while training
    track_points: int = knob(1024, Range(100, 100_000))  # pairs per tracking split
    # evaluation
    n_val: int = knob(2048, Range(100, 1_000_000))  # pairs to fit the regressions
    n_test: int = knob(2048, Range(100, 1_000_000))  # pairs to score them
    kernel_points: int = knob(1000, Range(100, 50_000))  # kernel-ridge training pairs
    kernel_alphas: tuple = knob((1.0,), Range(1e-8, 1e4))  # kernel-ridge penalties
    kernel_gammas: tuple = knob((0.1,), Range(1e-6, 1e4))  # RBF bandwidths
    # side experiments
    sweep_sizes: tuple = knob((1, 2, 3, 4, 6, 9), Range(1, 256))  # encoding sizes swept, + n_c
    sweep_seeds: int = knob(1, Range(1, 16))  # replica ids per swept size
    leak_seeds: int = knob(4, Range(1, 16))  # replica ids per arm of the leak experiment
    content_noise: float = knob(1.0, Range(0.01, 100.0))  # noise/signal of c in x2 (a control)

    def check(self) -> None:
        if self.kernel_points > self.n_val:
            raise ValueError(
                f"kernel_points={self.kernel_points} is out of range; allowed: at most "
                f"n_val={self.n_val}"
            )

    @property
    def track_every(self) -> int:
        """Steps between two tracking evaluations (0: no tracking)."""
        return max(1, self.steps // self.track_evals) if self.track_evals else 0


@dataclass(frozen=True)
class Setting:
    """One row of the experiment: how style changes and which dependencies are on.

    `covariance="shared"` (with statistical dependence) draws every block's Wishart
    matrix from the same stream, so blocks of one size share one matrix, Σ_ε included:
    the reference code's design (it seeds each draw with the same random state);
    `"independent"` draws one matrix per block. `wishart_factor` k draws each block's
    matrix with k times its size as degrees of freedom (better conditioned for larger k),
    divided by k to keep its mean I·size.
    `sigma_form` keeps all of each Wishart draw W (`"wishart"`), only its eigenvalues on
    the diagonal (`"spectrum"`: W's conditioning without dependence) or only its
    dependence (`"equicorrelated"`: W's trace, every correlation equal to the mean
    |correlation| of such draws, well conditioned); see `world.shaped_covariance`.
    `content_noise` σ > 0 lets the second modality see the content through noise,
    c̃ = c + σ η with η ~ N(0, Σ_c): a violation of content invariance.
    `fixed_style` style coordinates (the last ones) never change: a negative control of
    the assumption that style changes. `encoding_size=None` means n_c; `multiview=True`
    uses one mixing function for both modalities and no modality-specific latents.
    """

    p_chg: float = 1.0
    statistical: bool = False
    causal: bool = False
    multiview: bool = False
    encoding_size: int | None = None
    covariance: str = "shared"
    wishart_factor: int = 1
    fixed_style: int = 0
    sigma_form: str = "wishart"
    content_noise: float = 0.0

    def __post_init__(self) -> None:
        check_range("p_chg", self.p_chg, 0.0, 1.0)
        check_choice("covariance", self.covariance, COVARIANCES)
        check_range("fixed_style", self.fixed_style, 0, 256, integer=True)
        if self.encoding_size is not None:
            check_range("encoding_size", self.encoding_size, 1, 256, integer=True)
        check_range("wishart_factor", self.wishart_factor, 1, 10_000, integer=True)
        check_choice("sigma_form", self.sigma_form, SIGMA_FORMS)
        check_range("content_noise", self.content_noise, 0.0, 100.0)

    @property
    def dependence(self) -> str:
        """`indep`, `stat`, `causal` or `stat_causal`."""
        parts = [n for n, on in (("stat", self.statistical), ("causal", self.causal)) if on]
        return "_".join(parts) or "indep"

    @property
    def name(self) -> str:
        """A short identifier such as `p075_stat_causal` (used in metric names)."""
        name = f"p{self.p_chg:g}".replace(".", "") + f"_{self.dependence}"
        if self.multiview:
            name = "multiview_" + name
        if self.covariance != "shared":
            name += f"_{self.covariance}"
        if self.wishart_factor != 1:
            name += f"_df{self.wishart_factor}n"
        if self.fixed_style:
            name += f"_fixed{self.fixed_style}"
        if self.sigma_form != "wishart":
            name += f"_{self.sigma_form}"
        if self.content_noise:
            name += "_cnoise" + f"{self.content_noise:g}".replace(".", "")
        return name if self.encoding_size is None else f"{name}_d{self.encoding_size}"


def table(p_chg: float) -> tuple[Setting, ...]:
    """The paper's five rows: style always changing or with probability `p_chg`, with and
    without statistical and causal dependence; the last is the default setting."""
    return (
        Setting(1.0),
        Setting(1.0, causal=True),
        Setting(1.0, statistical=True),
        Setting(p_chg),
        Setting(p_chg, statistical=True, causal=True),
    )


def replicas(settings: Sequence[Setting], n_ids: int) -> list[tuple[Setting, int]]:
    """Every (setting, replica id) pair, ids `0 … n_ids − 1` for each setting."""
    return [(s, j) for s in settings for j in range(n_ids)]
