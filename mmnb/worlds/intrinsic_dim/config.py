"""Chapter 05's settings: the worlds, the encoders, their training and the read-outs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mmnb.config import WorldConfig, check_range, knob
from mmnb.ranges import LEARNING_RATE, STEPS, TEMPERATURE, WIDTH, Range

__all__ = ["BATCHES", "LINKS", "NORMALIZATIONS", "IntrinsicDimConfig", "authors_recipe"]

LINKS = ("linear", "smooth", "truncation")
NORMALIZATIONS = ("l2", "mean_norm")
BATCHES = ("reshuffled", "fixed")


@dataclass(frozen=True)
class IntrinsicDimConfig(WorldConfig):
    """Chapter 05's settings; the defaults are the "book" profile, `PAPER` its changes.

    "paper" follows yugjerry/mmcl-adapt (`_train_norm.py`): 10,000 training pairs plus
    2,000 for the mean-norm rescaling (the README's synthetic command), 800 epochs at lr
    1e-4 in fixed consecutive batches, τ's log learning 4× faster (the code's
    `(4·logit_scale).exp()`) under the same weight decay (see `authors_recipe`), output
    dimensions `linspace(1, 44, 15)`.
    """

    PAPER: ClassVar[dict] = {
        "n_train": 10_000,
        "n_reference": 2000,
        "epochs": 800,
        "lr": 1e-4,
        "tau_lr": 4e-4,
        "tau_weight_decay": 1e-4 / 16,
        "batches": "fixed",
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
    tau_weight_decay: float = knob(0.0, Range(0.0, 1.0))  # Adam L2 on log(τ − floor)
    batches: str = knob("reshuffled", BATCHES)  # reshuffled each epoch, or fixed consecutive
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
    tau_run_factor: int = knob(4, Range(4, 1000))  # the τ-trajectory runs: × epochs
    mispaired: float = knob(0.1, Range(0.01, 0.9))  # the control: share of pairs re-paired
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
    def steps_per_epoch(self) -> int:
        """Optimizer steps of one epoch: ⌊n_train / batch_size⌋."""
        return self.n_train // self.batch_size

    @property
    def steps(self) -> int:
        """Optimizer steps of every training pass: epochs × ⌊n_train / batch_size⌋."""
        return self.epochs * (self.n_train // self.batch_size)


def authors_recipe(cfg: IntrinsicDimConfig) -> IntrinsicDimConfig:
    """`cfg` trained as yugjerry/mmcl-adapt's `_train_norm.py` trains (its learning rate,
    epochs, data and widths kept): fixed consecutive batches never reshuffled
    (`indices = range(batch_idx*batch_size, ...)` over the same X each epoch), outputs
    divided by the mean norm of `n_append` = 1000 held-out inputs (the argparse default;
    the README's synthetic command passes 2000), τ = floor + exp(4·s) with s in the same
    Adam as the encoders (`tau_lr_frac = 4` for synthetic data: log τ moves 4× the
    encoders' learning rate) and the same weight decay on s. Adam is invariant to the
    gradient's scale, so with s' = 4s = log(τ − floor) this is Adam on s' at 4·lr with
    L2 coefficient wd/16, which is what the book's knobs express.
    """
    return cfg.replace(
        batches="fixed",
        normalization="mean_norm",
        n_reference=1000,
        tau_lr=4 * cfg.lr,
        tau_weight_decay=cfg.weight_decay / 16,
    )
