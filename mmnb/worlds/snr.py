"""Chapter 01's world: signal and noise patches in two modalities (Huang et al., 2024).

Each sample has a label y in {-1, +1} and two patches in R^d:

* modality 1 ("image"): x = [y·μ, ξ] with ξ ~ N(0, σ_ξ² I_d);
* modality 2 ("text"): x̃ = [y·μ̃, ξ̃], same label, independent noise, ‖μ̃‖ = C_μ‖μ‖;
* the single-modal positive (augmentation): x̂ = [y·μ, ξ + ε] with ε ~ N(0, σ_ε² I_d);
* the out-of-distribution test set: [y·ν, ζ] with a different signal ν and fresh noise.

The signal-to-noise ratio is SNR = ‖μ‖ / (σ_ξ √d); the theory is governed by n·SNR².

The encoder has m bias-free ReLU neurons shared by the two patches,
h(x) = [Σ_p ReLU(⟨w_r, x^(p)⟩)]_r, and the similarity pairs patch p with patch p,
averages over neurons and stops the gradient through its second argument:
Sim(x, x') = (1/m) Σ_r Σ_p h_r(x^(p)) · sg(h_r(x'^(p))).

Everything carries a leading replica axis R: replica r has its own data and its own
initial weights, both drawn from its seed, so it equals the same seed trained alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import torch
from torch import Tensor, nn

from mmnb.losses import info_nce
from mmnb.params import check_choice, check_range
from mmnb.probes import linear_probe
from mmnb.train import History, train

__all__ = [
    "PROFILES",
    "PatchEncoder",
    "SNRData",
    "SNRRun",
    "check_config",
    "make_data",
    "multimodal_loss",
    "noise_memorization",
    "opposite_label_mask",
    "patch_similarity",
    "phase_diagram",
    "run",
    "run_kwargs",
    "signal_learning",
    "single_modal_loss",
    "snr_for",
]

# The paper's Fig. 1 setting (d, n, m, η, steps, ‖μ‖ = 5, ‖μ̃‖ = 15, ‖ν‖ = 2, σ_ε) is the
# default of both profiles; τ and σ_0 are not given in the paper and are our choice.
_FIG1 = {
    "snr": 5.0 / math.sqrt(2000),  # ‖μ‖ = 5 with σ_ξ = 1, d = 2000
    "c_mu": 3.0,
    "n": 100,
    "d": 2000,
    "m": 50,
    "n_test": 200,
    "steps": 200,
    "lr": 0.01,
    "tau": 0.1,
    "sigma0": 0.01,
    "sigma_xi": 1.0,
    "sigma_eps": 0.1,
    "nu_norm": 2.0,
}

PROFILES = {
    "book": {
        **_FIG1,
        "n_seeds": 5,
        "eval_every": 10,
        "threads": None,
        "phase_diagram": True,
        "phase_n_snr2": (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0),
        "phase_c_mu": (1.0, 1.5, 2.0, 2.66, 3.5, 5.0),
        "phase_seeds": 2,
        "digits_source": "sklearn",
        "digits_steps": 4000,
        "digits_batch_size": 256,
        "theory_checks": True,
    },
    "paper": {
        **_FIG1,
        "n_seeds": 10,
        "eval_every": 5,
        "threads": None,
        "phase_diagram": True,
        "phase_n_snr2": (0.125, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 6.0),
        "phase_c_mu": (0.5, 1.0, 1.5, 2.0, 2.66, 3.0, 4.0, 5.0, 7.0),
        "phase_seeds": 5,
        "digits_source": "mnist",
        "digits_steps": 3000,
        "digits_batch_size": 512,
        "theory_checks": True,
    },
}


_RUN_KNOBS = (
    "snr",
    "c_mu",
    "n",
    "d",
    "m",
    "n_test",
    "steps",
    "lr",
    "tau",
    "sigma0",
    "sigma_xi",
    "sigma_eps",
    "nu_norm",
)


def check_config(cfg: SimpleNamespace) -> None:
    """Raise a `ValueError` naming the first knob of `cfg` that is out of range."""
    check_range("n_seeds", cfg.n_seeds, 1, 256, integer=True)
    check_range("snr", cfg.snr, 1e-4, 10.0)
    check_range("c_mu", cfg.c_mu, 0.0, 100.0)
    check_range("n", cfg.n, 4, 100_000, integer=True)
    check_range("d", cfg.d, 3, 1_000_000, integer=True)
    check_range("m", cfg.m, 1, 10_000, integer=True)
    check_range("steps", cfg.steps, 1, 1_000_000, integer=True)
    check_range("lr", cfg.lr, 1e-8, 100.0)
    check_range("tau", cfg.tau, 1e-3, 100.0)
    check_range("sigma0", cfg.sigma0, 0.0, 10.0)
    check_range("sigma_eps", cfg.sigma_eps, 0.0, 100.0)
    check_range("nu_norm", cfg.nu_norm, 0.0, 1000.0)
    check_choice("phase_diagram", cfg.phase_diagram, [True, False])
    check_choice("theory_checks", cfg.theory_checks, [True, False])
    check_range("digits_steps", cfg.digits_steps, 1, 1_000_000, integer=True)


def run_kwargs(cfg: SimpleNamespace) -> dict:
    """The keyword arguments of `run` taken from a resolved profile."""
    return {name: getattr(cfg, name) for name in _RUN_KNOBS}


def snr_for(n_snr2: float, n: int) -> float:
    """The SNR that gives n·SNR² = `n_snr2` with n samples."""
    return math.sqrt(n_snr2 / n)


def _per_replica(name: str, value: float | Sequence[float], n_replicas: int) -> list[float]:
    values = [float(value)] * n_replicas if np.ndim(value) == 0 else [float(v) for v in value]
    if len(values) != n_replicas:
        raise ValueError(f"{name} has {len(values)} values for {n_replicas} seeds")
    for v in values:
        check_range(name, v, 0.0, None)
    return values


def _generator(seed: int, stream: int, device: torch.device) -> torch.Generator:
    """Independent random streams per seed: 0 data, 1 encoder h, 2 encoder g."""
    return torch.Generator(device=device).manual_seed(4 * int(seed) + stream)


# ----------------------------------------------------------------------------- data


@dataclass
class SNRData:
    """Training pairs and the OOD test set of R replicas (leading axis R).

    Patch tensors have shape `[R, N, 2, d]`: patch 0 carries the signal, patch 1 the noise.
    """

    y: Tensor
    x: Tensor
    x_aug: Tensor
    x_text: Tensor
    y_test: Tensor
    x_test: Tensor
    mu: Tensor
    mu_text: Tensor
    nu: Tensor
    sigma_xi: float

    @property
    def xi(self) -> Tensor:
        """The noise patches ξ_i of modality 1, `[R, n, d]`."""
        return self.x[:, :, 1]

    @property
    def xi_text(self) -> Tensor:
        """The noise patches ξ̃_i of modality 2, `[R, n, d]`."""
        return self.x_text[:, :, 1]

    @property
    def snr(self) -> Tensor:
        """SNR = ‖μ‖ / (σ_ξ √d), one value per replica."""
        return self.mu.norm(dim=-1) / (self.sigma_xi * math.sqrt(self.mu.shape[-1]))

    @property
    def n_snr2(self) -> Tensor:
        """n·SNR², the quantity the theory depends on, one value per replica."""
        return self.x.shape[1] * self.snr**2


def make_data(
    seeds: Sequence[int],
    n: int = 100,
    d: int = 2000,
    snr: float | Sequence[float] = 5.0 / math.sqrt(2000),
    c_mu: float | Sequence[float] = 3.0,
    sigma_xi: float = 1.0,
    sigma_eps: float = 0.1,
    nu_norm: float = 2.0,
    n_test: int = 200,
    device: torch.device | str = "cpu",
) -> SNRData:
    """Draw one data set per seed (replica); `snr` and `c_mu` may differ per replica.

    μ = ‖μ‖ e_1 with ‖μ‖ = SNR·σ_ξ√d, μ̃ = C_μ‖μ‖ e_2 and ν = ‖ν‖ e_1.
    """
    check_range("n", n, 2, None, integer=True)
    check_range("d", d, 3, None, integer=True)
    check_range("n_test", n_test, 2, None, integer=True)
    for name, value in [("sigma_xi", sigma_xi), ("sigma_eps", sigma_eps), ("nu_norm", nu_norm)]:
        check_range(name, value, 0.0, None)
    device = torch.device(device)
    n_rep = len(seeds)
    snrs, cs = _per_replica("snr", snr, n_rep), _per_replica("c_mu", c_mu, n_rep)
    eye = torch.eye(d, device=device)
    keys = ("y", "x", "xa", "xt", "yt", "xte", "mu", "mt")
    parts: dict[str, list[Tensor]] = {k: [] for k in keys}
    for seed, s, c in zip(seeds, snrs, cs, strict=True):
        gen = _generator(seed, 0, device)

        def normal(*shape: int, gen: torch.Generator = gen) -> Tensor:
            return torch.randn(*shape, generator=gen, device=device)

        def labels(k: int, gen: torch.Generator = gen) -> Tensor:
            bits = torch.randint(0, 2, (k,), generator=gen, device=device)
            return 2.0 * bits.float() - 1.0

        mu = s * sigma_xi * math.sqrt(d) * eye[0]
        mu_text = c * mu.norm() * eye[1]
        y, y_test = labels(n), labels(n_test)
        xi, xi_text = sigma_xi * normal(n, d), sigma_xi * normal(n, d)
        eps, zeta = sigma_eps * normal(n, d), sigma_xi * normal(n_test, d)
        sig = y[:, None] * mu
        parts["y"].append(y)
        parts["x"].append(torch.stack([sig, xi], 1))
        parts["xa"].append(torch.stack([sig, xi + eps], 1))
        parts["xt"].append(torch.stack([y[:, None] * mu_text, xi_text], 1))
        parts["yt"].append(y_test)
        parts["xte"].append(torch.stack([y_test[:, None] * nu_norm * eye[0], zeta], 1))
        parts["mu"].append(mu)
        parts["mt"].append(mu_text)
    st = {k: torch.stack(v) for k, v in parts.items()}
    return SNRData(
        y=st["y"],
        x=st["x"],
        x_aug=st["xa"],
        x_text=st["xt"],
        y_test=st["yt"],
        x_test=st["xte"],
        mu=st["mu"],
        mu_text=st["mt"],
        nu=(nu_norm * eye[0]).expand(n_rep, d).clone(),
        sigma_xi=float(sigma_xi),
    )


# ----------------------------------------------------------------------------- model


class PatchEncoder(nn.Module):
    """m bias-free ReLU neurons shared across patches, with R replicas: weight `[R, m, d]`.

    Replica r is initialised w_r ~ N(0, σ_0² I) from its own seed (stream `stream`).
    """

    def __init__(
        self,
        d: int,
        m: int,
        seeds: Sequence[int],
        sigma0: float = 0.01,
        stream: int = 1,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        check_range("m", m, 1, None, integer=True)
        check_range("sigma0", sigma0, 0.0, None)
        device = torch.device(device)
        w = [
            sigma0 * torch.randn(m, d, generator=_generator(s, stream, device), device=device)
            for s in seeds
        ]
        self.weight = nn.Parameter(torch.stack(w))

    @property
    def m(self) -> int:
        return self.weight.shape[1]

    def activations(self, x: Tensor) -> Tensor:
        """h_r(x^(p)) = ReLU(⟨w_r, x^(p)⟩) for every patch: `[R, N, P, d]` → `[R, N, P, m]`."""
        return torch.relu(torch.einsum("rnpd,rmd->rnpm", x, self.weight))

    def forward(self, x: Tensor) -> Tensor:
        """The embedding h(x) = Σ_p h(x^(p)), `[R, N, m]`."""
        return self.activations(x).sum(-2)


def patch_similarity(a: Tensor, b: Tensor) -> Tensor:
    """Sim[r, i, j] = (1/m) Σ_k Σ_p a[r,i,p,k] · sg(b[r,j,p,k]) from patch activations.

    The gradient flows only through the first argument (stop-gradient on `b`).
    """
    return torch.einsum("rnpk,rjpk->rnj", a, b.detach()) / a.shape[-1]


def opposite_label_mask(y: Tensor) -> Tensor:
    """`mask[r, i, j]` is True where y_j ≠ y_i: the negatives of anchor i."""
    return y[..., :, None] != y[..., None, :]


def single_modal_loss(h: PatchEncoder, data: SNRData, tau: float) -> Tensor:
    """InfoNCE with positive (x_i, x̂_i) and the opposite-label samples x_j as negatives.

    Returns one loss per replica, `[R]`.
    """
    a = h.activations(data.x)
    a_aug = h.activations(data.x_aug)
    sim = patch_similarity(a, a)  # Sim(x_i, x_j)
    positive = (a * a_aug.detach()).sum((-1, -2)) / h.m  # Sim(x_i, x̂_i)
    n = sim.shape[-1]
    eye = torch.eye(n, dtype=torch.bool, device=sim.device)
    logits = torch.where(eye, positive[..., :, None], sim) / tau
    return info_nce(logits, opposite_label_mask(data.y))


def multimodal_loss(h: PatchEncoder, g: PatchEncoder, data: SNRData, tau: float) -> Tensor:
    """L(x→x̃) + L(x̃→x): positives (x_i, x̃_i), opposite-label negatives, `[R]`.

    With the stop-gradient, the first term trains h and the second trains g.
    """
    a, b = h.activations(data.x), g.activations(data.x_text)
    mask = opposite_label_mask(data.y)
    return info_nce(patch_similarity(a, b) / tau, mask) + info_nce(
        patch_similarity(b, a) / tau, mask
    )


# ----------------------------------------------------------------------------- read-outs


def signal_learning(w: Tensor, w0: Tensor, mu: Tensor) -> Tensor:
    """γ_r = ⟨w_r(t) − w_r(0), μ⟩ / ‖μ‖, `[R, m]`."""
    return torch.einsum("rmd,rd->rm", w - w0, mu) / mu.norm(dim=-1, keepdim=True)


def noise_memorization(w: Tensor, w0: Tensor, xi: Tensor) -> Tensor:
    """ρ_{r,i} = ⟨w_r(t) − w_r(0), ξ_i⟩ / ‖ξ_i‖, `[R, m, n]`."""
    return torch.einsum("rmd,rnd->rmn", w - w0, xi) / xi.norm(dim=-1)[:, None, :]


def _probe_train_head(h: PatchEncoder, data: SNRData) -> np.ndarray:
    """Head fitted on training features h(x_i), scored on the whole OOD test set."""
    return linear_probe(h(data.x), data.y, h(data.x_test), data.y_test)["test_acc"]


def evaluate(h: PatchEncoder, w0: Tensor, data: SNRData, probe: bool = True) -> dict[str, Tensor]:
    """Signal learning, noise memorization and (optionally) the OOD accuracy of h."""
    w = h.weight.detach()
    gamma = signal_learning(w, w0, data.mu).abs()
    rho = noise_memorization(w, w0, data.xi)
    out = {
        "signal": gamma.amax(-1),
        "signal_mean": gamma.mean(-1),
        "noise": rho.amax(-2).mean(-1),
    }
    if probe:
        half = data.x_test.shape[1] // 2
        feats, y = h(data.x_test), data.y_test
        acc = linear_probe(feats[:, :half], y[:, :half], feats[:, half:], y[:, half:])["test_acc"]
        out["ood_acc"] = torch.as_tensor(acc)
    return out


# ----------------------------------------------------------------------------- experiment


@dataclass
class SNRRun:
    """What `run` returns: the data, the trained encoders and their histories."""

    data: SNRData
    histories: dict[str, History]
    encoders: dict[str, PatchEncoder]
    initial: Tensor
    final: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        """Mean over replicas of each final number, named `<metric>_<model>`."""
        return {
            f"{k}_{model}": float(np.mean(v))
            for model, vals in self.final.items()
            for k, v in vals.items()
        }


def run(
    seeds: Sequence[int],
    *,
    snr: float | Sequence[float] = 5.0 / math.sqrt(2000),
    c_mu: float | Sequence[float] = 3.0,
    n: int = 100,
    d: int = 2000,
    m: int = 50,
    n_test: int = 200,
    steps: int = 200,
    lr: float = 0.01,
    tau: float = 0.1,
    sigma0: float = 0.01,
    sigma_xi: float = 1.0,
    sigma_eps: float = 0.1,
    nu_norm: float = 2.0,
    eval_every: int = 10,
    models: Sequence[str] = ("single", "multi"),
    device: torch.device | str = "cpu",
    progress: bool | None = None,
) -> SNRRun:
    """Train single- and multimodal models for every seed at once, full-batch GD.

    Replica r uses `seeds[r]` (and `snr[r]`, `c_mu[r]` when those are sequences). Single
    and multimodal image encoders start from the same weights. Histories hold `loss`
    and, every `eval_every` steps, `signal`, `signal_mean`, `noise` and `ood_acc`.
    """
    check_range("tau", tau, 1e-6, None)
    check_range("eval_every", eval_every, 0, None, integer=True)
    for model in models:
        if model not in ("single", "multi"):
            raise ValueError(f"models: {model!r} is not one of ['single', 'multi']")
    data = make_data(seeds, n, d, snr, c_mu, sigma_xi, sigma_eps, nu_norm, n_test, device)
    w0 = PatchEncoder(d, m, seeds, sigma0, stream=1, device=device).weight.detach().clone()
    histories, encoders, final = {}, {}, {}
    for model in models:
        h = PatchEncoder(d, m, seeds, sigma0, stream=1, device=device)
        if model == "single":
            params = [h]

            def objective(_batch: Tensor | None, h: PatchEncoder = h) -> Tensor:
                return single_modal_loss(h, data, tau)

        else:
            g = PatchEncoder(d, m, seeds, sigma0, stream=2, device=device)
            encoders["multi_text"] = g
            params = [h, g]

            def objective(
                _batch: Tensor | None, h: PatchEncoder = h, g: PatchEncoder = g
            ) -> Tensor:
                return multimodal_loss(h, g, data, tau)

        def evaluation(h: PatchEncoder = h) -> dict[str, Tensor]:
            return evaluate(h, w0, data)

        hist = train(
            objective,
            params,
            steps,
            optimizer="sgd",
            lr=lr,
            evaluate=evaluation,
            eval_every=eval_every,
            progress=progress,
            desc=f"{model}-modal",
        )
        with torch.no_grad():
            final_loss = objective(None).cpu().numpy()
            hist.record(steps, {"loss": torch.as_tensor(final_loss)})
            stats = {k: hist.final(k) for k in ("signal", "signal_mean", "noise", "ood_acc")}
            stats["train_loss"] = final_loss
            stats["initial_loss"] = hist["loss"][0]
            stats["ood_acc_train_head"] = _probe_train_head(h, data)
        histories[model], encoders[model], final[model] = hist, h, stats
    return SNRRun(data=data, histories=histories, encoders=encoders, initial=w0, final=final)


def phase_diagram(
    seeds: Sequence[int],
    n_snr2_grid: Sequence[float],
    c_mu_grid: Sequence[float],
    **kwargs,
) -> dict[str, np.ndarray]:
    """OOD accuracy over a grid of n·SNR² (through ‖μ‖) and C_μ, all in one batched pass.

    `kwargs` go to `run` (their `snr` and `c_mu` are replaced by the grid). The
    single-modal model does not see the second modality, so it is trained once per
    (n·SNR², seed); the multimodal one on the whole grid. Returns arrays of shape
    `[len(n_snr2_grid), len(c_mu_grid)]` (mean over seeds): `single`, `multi`, `gap`,
    plus the axes `n_snr2` and `c_mu`.
    """
    kwargs = {k: v for k, v in kwargs.items() if k not in ("snr", "c_mu", "eval_every")}
    n = kwargs.get("n", 100)
    ns, nc, k = len(n_snr2_grid), len(c_mu_grid), len(seeds)
    snrs = [snr_for(v, n) for v in n_snr2_grid]
    single = run(
        [s for _ in snrs for s in seeds],
        snr=[v for v in snrs for _ in seeds],
        models=("single",),
        eval_every=0,
        **kwargs,
    )
    multi = run(
        [s for _ in snrs for _ in c_mu_grid for s in seeds],
        snr=[v for v in snrs for _ in c_mu_grid for _ in seeds],
        c_mu=[c for _ in snrs for c in c_mu_grid for _ in seeds],
        models=("multi",),
        eval_every=0,
        **kwargs,
    )
    acc_single = single.final["single"]["ood_acc"].reshape(ns, k).mean(-1)
    acc_multi = multi.final["multi"]["ood_acc"].reshape(ns, nc, k).mean(-1)
    acc_single = np.repeat(acc_single[:, None], nc, axis=1)
    return {
        "n_snr2": np.asarray(n_snr2_grid, dtype=float),
        "c_mu": np.asarray(c_mu_grid, dtype=float),
        "single": acc_single,
        "multi": acc_multi,
        "gap": acc_multi - acc_single,
    }
