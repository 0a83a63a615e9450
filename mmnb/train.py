"""One training loop for every chapter."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

with warnings.catch_warnings():  # without ipywidgets, tqdm.auto falls back to text bars
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm

from mmnb.config import check_choice, check_range
from mmnb.nets import Replicas, replica_ids
from mmnb.runtime import stream

__all__ = [
    "OPTIMIZERS",
    "History",
    "TrainingDiverged",
    "clip_grad_norm_per_replica_",
    "make_optimizer",
    "train",
]

OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}

Objective = Callable[[Tensor | None], Tensor | tuple[Tensor, Mapping[str, Tensor]]]
Evaluate = Callable[[], Mapping[str, Any]]


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite."""


@dataclass
class History:
    """Named scalars recorded during training, one value per replica.

    `history["loss"]` is a `[T, R]` NumPy array; `history.steps("loss")` the steps
    at which it was recorded.
    """

    _steps: dict[str, list[int]] = field(default_factory=dict)
    _values: dict[str, list[Tensor]] = field(default_factory=dict)

    def record(self, step: int, values: Mapping[str, Any]) -> None:
        for name, value in values.items():
            self._steps.setdefault(name, []).append(step)
            self._values.setdefault(name, []).append(torch.as_tensor(value).detach().reshape(-1))

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._values:
            raise KeyError(f"{name!r} was not recorded; recorded: {sorted(self._values)}")
        return torch.stack(self._values[name]).float().cpu().numpy()

    def steps(self, name: str) -> np.ndarray:
        return np.asarray(self._steps[name])

    def final(self, name: str) -> np.ndarray:
        """The last recorded value of `name` for each replica."""
        return self[name][-1]

    def names(self) -> list[str]:
        return sorted(self._values)

    def replicas(self, rows: slice) -> History:
        """The history of the replicas `rows` alone (of a model trained as several)."""
        part = History()
        for name, values in self._values.items():
            part._steps[name] = list(self._steps[name])
            part._values[name] = [value[rows] for value in values]
        return part


def _collect_parameters(params: Any) -> list[Any]:
    if isinstance(params, nn.Module):
        return [p for p in params.parameters() if p.requires_grad]
    groups: list[Any] = []
    for item in params:
        if isinstance(item, nn.Module):
            groups.extend(p for p in item.parameters() if p.requires_grad)
        else:
            groups.append(item)
    return groups


def _first_device(params: list[Any]) -> torch.device:
    first = params[0]
    if isinstance(first, dict):
        first = next(iter(first["params"]))
    return first.device


def _progress_default() -> bool:
    return os.environ.get("MMNB_PROGRESS", "1") != "0"


def make_optimizer(
    name: str, parameters: Iterable, lr: float, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """The optimizer `name` ("sgd", "adam", "adamw"), with PyTorch's fused kernel when
    this version and device have one (on the CPU, fused Adam runs one kernel instead of a
    dozen passes per tensor: tens of times faster for large nets), the default otherwise.
    """
    check_choice("optimizer", name, OPTIMIZERS)
    parameters = list(parameters)
    try:
        return OPTIMIZERS[name](parameters, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel here
        return OPTIMIZERS[name](parameters, lr=lr, weight_decay=weight_decay)


def clip_grad_norm_per_replica_(parameters: Iterable[Tensor], max_norm: float) -> Tensor:
    """Rescale each replica's gradient so that its norm over all `parameters` is ≤ `max_norm`.

    Every parameter carries the leading replica axis, so replica r's gradient norm is
    taken over slice r of every tensor. Returns the norms before clipping, shape `[R]`;
    runs on the device without synchronizing with the host.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        raise ValueError("parameters: no gradient to clip")
    squares = [g.reshape(g.shape[0], -1).square().sum(1) for g in grads]
    norms = torch.stack(squares).sum(0).sqrt()
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    torch._foreach_mul_(grads, [scale.view(-1, *[1] * (g.ndim - 1)) for g in grads])
    return norms


def _check_finite(pending: list[tuple[int, Tensor]], lr: float) -> None:
    losses = torch.stack([loss for _, loss in pending])
    bad = ~torch.isfinite(losses)
    if bool(bad.any()):
        t, r = (int(i) for i in bad.nonzero()[0])
        step = pending[t][0]
        raise TrainingDiverged(
            f"loss became {losses[t, r].item()} at step {step} in replica {r}; "
            f"try a smaller learning rate (lr={lr:g}), a larger temperature, "
            "or check the data for NaN"
        )


def train(
    objective: Objective,
    parameters: nn.Module | Iterable[Any],
    steps: int,
    *,
    optimizer: str = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    n_samples: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    replicas: Replicas | None = None,
    evaluate: Evaluate | None = None,
    eval_every: int = 0,
    clip_grad_norm: float | None = None,
    compile: bool = False,
    record_every: int = 1,
    check_every: int | None = None,
    progress: bool | None = None,
    desc: str = "training",
) -> History:
    """Minimise `objective` for `steps` optimizer steps and return the `History`.

    `objective(batch)` returns the loss per replica (shape `[R]` or a scalar), or a
    pair (loss, dict of named scalars to record). `batch` is `None` for full-batch
    training, else a `[R, batch_size]` tensor of sample indices in `range(n_samples)`:
    row r is replica r's minibatch, drawn without replacement epoch by epoch from the
    stream (`seed`, "minibatch", r), so a replica sees the same batches alone or in a
    group (`replicas`: the replica count R or the replica indices; needed with
    `batch_size`). Replicas are independent because their losses are summed before
    the backward pass.
    `evaluate()` runs without gradients before training, every `eval_every` steps
    and at the end; its named scalars join the history. `clip_grad_norm` clips each
    replica's gradient norm (parameters with a leading replica axis) before every step.
    `compile=True` runs the objective through `torch.compile`, which fuses the elementwise
    work of large batches (a one-time compilation of about a minute; worth it for long runs).
    A NaN or infinite loss raises `TrainingDiverged` naming the step and the replica.
    """
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_range("steps", steps, 0, None, integer=True)
    check_range("lr", lr, 0.0, None)
    groups = _collect_parameters(parameters)
    if not groups:
        raise ValueError("parameters: nothing to train (no parameter requires a gradient)")
    device = _first_device(groups)
    if clip_grad_norm is not None:
        check_range("clip_grad_norm", clip_grad_norm, 0.0, None)
        tensors = [p for g in groups for p in (g["params"] if isinstance(g, dict) else [g])]
    minibatch = batch_size is not None
    if minibatch:
        if n_samples is None:
            raise ValueError("batch_size needs n_samples, the number of training samples")
        check_range("batch_size", batch_size, 1, n_samples, integer=True)
        if replicas is None:
            raise ValueError("batch_size needs replicas, the replica count or indices")
        shufflers = [stream(seed, "minibatch", r, device) for r in replica_ids(replicas)]
    opt = make_optimizer(optimizer, groups, lr, weight_decay)
    check_choice("compile", compile, [True, False])
    if compile:
        objective = torch.compile(objective)
    check_every = check_every or (10 if device.type == "cpu" else 50)  # one host sync per check
    history = History()
    pending: list[tuple[int, Tensor]] = []
    order, cursor = None, 0

    def run_evaluate(step: int) -> None:
        if evaluate is not None:
            with torch.no_grad():
                history.record(step, evaluate())

    run_evaluate(0)
    show = _progress_default() if progress is None else progress
    bar = tqdm(range(steps), desc=desc, disable=not show, leave=False, mininterval=0.5)
    for step in bar:
        batch = None
        if minibatch:
            if order is None or cursor + batch_size > n_samples:
                order = torch.stack([s.randperm(n_samples) for s in shufflers])
                cursor = 0
            batch, cursor = order[:, cursor : cursor + batch_size], cursor + batch_size
        out = objective(batch)
        loss, extras = out if isinstance(out, tuple) else (out, {})
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        if clip_grad_norm is not None:
            clip_grad_norm_per_replica_(tensors, clip_grad_norm)
        opt.step()
        detached = loss.detach().reshape(-1)
        pending.append((step, detached))
        if step % record_every == 0 or step == steps - 1:
            history.record(step, {"loss": detached, **extras})
        if len(pending) >= check_every or step == steps - 1:
            _check_finite(pending, lr)
            if show:
                bar.set_postfix(loss=f"{pending[-1][1].mean().item():.4g}", refresh=False)
            pending = []
        if eval_every and (step + 1) % eval_every == 0 and step != steps - 1:
            run_evaluate(step + 1)
    if steps:
        run_evaluate(steps)
    return history
