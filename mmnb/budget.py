"""What a run needs, checked before any kernel starts: memory, device, and time.

For every chapter (the registry `mmnb.worlds.CHAPTERS`, keyed here by its world package),
`needs` estimates from the config's sizes the bytes of the largest arrays a run holds
at once (data, weights with Adam's state, activations and `batch × batch` similarity
matrices, over the vectorized replicas) and the work of its training, a count of
multiply-adds. The estimates are rough lower bounds, so a run they refuse could not
fit; one they pass can still run out of memory (the sweep then records it as failed).
`check_budget` refuses a run whose estimate exceeds 90% of the memory of the device it
would run on, and a device this machine lacks; `paper_note` tells how long a `"paper"`
run on a CPU is expected to take, from the measured book-profile time and the ratio of
the two profiles' work.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

__all__ = ["check_budget", "machine_memory", "needs", "paper_note"]

GB = 1024**3
ROOT = Path(__file__).resolve().parents[1]


def _width(*widths: Any) -> int:
    flat = [w for v in widths for w in (v if isinstance(v, (list, tuple)) else [v])]
    return max(int(w) for w in flat)


def _mlp(d_in: int, hidden: Any, d_out: int) -> int:
    sizes = [d_in, *(hidden if isinstance(hidden, (list, tuple)) else [hidden]), d_out]
    return sum(a * b + b for a, b in zip(sizes, sizes[1:], strict=False))


def _contrastive(c: Any) -> tuple[float, float, float]:
    latent = c.shared_dim + 2 * c.private_dim
    data = (c.n_train + c.n_test) * (c.x_dim + c.y_dim + latent)
    params = _mlp(c.x_dim, c.hidden, c.embed_dim) + _mlp(c.y_dim, c.hidden, c.embed_dim)
    act = c.batch_size * (2 * c.hidden + 2 * c.embed_dim) * 3 + 3 * c.batch_size**2
    runs = 1 + len(c.fixed_taus)
    work = runs * c.steps * (c.batch_size * params * 3 + c.batch_size**2 * c.embed_dim)
    return data + 4 * params + act, 0, work


def _snr(c: Any) -> tuple[float, float, float]:
    grid = len(c.phase_n_snr2) * len(c.phase_c_mu) * c.phase_seeds if c.phase_diagram else 1
    one = (c.n + c.n_test) * c.d * 2 + c.m * c.d * 4 + c.n**2
    source = getattr(c, "digits_source", "none")
    images = {"mnist": 70000 * 3 * 784, "none": 0}.get(source, 1797 * 3 * 64)
    digits = (
        0
        if source == "none"
        else images + 3 * c.digits_batch_size**2 + (c.digits_batch_size * c.digits_hidden * 6)
    )
    work = grid * c.steps * c.n * c.m * c.d * 3
    if source != "none":
        work += c.digits_steps * c.digits_batch_size * 784 * c.digits_hidden * 6
    return one * (c.phase_seeds if c.phase_diagram else 1), digits, work


def _factorization(c: Any) -> tuple[float, float, float]:
    dims = c.signal_dims + c.nuisance_dims
    batch = max(c.minibatch_size, c.neural_batch, c.student_batch)
    size = (
        c.n_images * c.n_texts * 8
        + c.pool_size**2 * 4
        + (c.n_test + c.student_train + c.pool_size) * dims * 2
        + 3 * batch**2
        + _mlp(dims, c.hidden, c.hidden) * 4
    )
    work = (c.table_steps + c.minibatch_steps) * c.n_images * c.n_texts * 4 + (
        c.neural_steps + c.student_steps
    ) * batch * (_mlp(dims, c.hidden, c.hidden) * 3 + batch * c.student_dim)
    return size, 0, work


def _pmi(c: Any) -> tuple[float, float, float]:
    batch = max(c.batch_size, *c.batch_sizes, *c.bound_batch_sizes)
    size = (
        c.n_states**2 * 8 * (1 + len(c.embed_dims))
        + 3 * batch**2
        + c.n_features * c.n_states * 2
        + c.gauss_eval_points**2 * 2
        + 3 * c.gauss_batch**2
        + c.gauss_batch * c.gauss_hidden * 6
    )
    gauss = _mlp(c.gauss_x_dim, [c.gauss_hidden, c.gauss_hidden], c.gauss_dim)
    work = (
        # three free tables: symmetric, one-directional and the floor run
        3 * c.table_steps * c.batch_size * c.n_states
        + len(c.batch_sizes) * c.pairs_seen * c.n_states
        + len(c.embed_dims) * c.embed_steps * c.n_states**2 * max(c.embed_dims)
        + c.oracle_batches * batch**2
        + c.gauss_steps * c.gauss_batch * (gauss * 6 + c.gauss_batch * c.gauss_dim)
    )
    return size, 0, work


def _identifiability(c: Any) -> tuple[float, float, float]:
    d_in = c.n_c + c.n_s + c.n_m
    params = 2 * _mlp(d_in, c.hidden, max(c.n_c, *c.sweep_sizes))
    act = c.batch_size * sum(c.hidden) * 2 * 3 + 3 * c.batch_size**2
    data = (c.n_val + c.n_test + 2 * c.track_points) * d_in * 4 + c.cond_draws * d_in**2
    kernel = c.kernel_points**2 * 2 * 2  # float64 Gram matrix and its factor, one at a time
    # the main settings, the encoding-size sweep, three leak arms, noisy content and the
    # reference objective's replicas
    leaks = 3 * c.leak_seeds + 1
    runs = 1 + len(c.sweep_sizes) * c.sweep_seeds + leaks + 2
    work = runs * c.steps * c.batch_size * (params * 3 + c.batch_size * c.n_c)
    return data + 4 * params + act, kernel, work


def _intrinsic_dim(c: Any) -> tuple[float, float, float]:
    out = max(c.d_main, *c.out_dims)
    params = 2 * _mlp(c.dim, c.hidden, out)
    act = c.batch_size * sum(c.hidden) * 2 * 3 + 3 * c.batch_size**2
    data = (c.n_train + c.n_test + c.n_reference) * (2 * c.dim + c.k) + 2 * c.n_test**2
    runs = 1 + len(c.out_dims) + len(c.fixed_taus) + len(c.other_links) + len(c.other_ks)
    runs += len(c.sub_batches) + len(c.n_divisors)
    steps = c.epochs * max(1, c.n_train // c.batch_size)
    work = runs * steps * c.batch_size * (params * 3 + c.batch_size * out)
    return data + 4 * params + act, 0, work


def _lenses(c: Any) -> tuple[float, float, float]:
    dim = c.content_dim + c.private_dim
    params = 2 * _mlp(dim, c.hidden, c.embed_dim)
    act = c.batch_size * sum(c.hidden) * 2 * 3 + 3 * c.batch_size**2
    data = (c.n_train + c.n_test) * dim * 4 + 2 * c.n_test**2
    work = 6 * c.steps * c.batch_size * (params * 3 + c.batch_size * c.embed_dim)
    return data + 4 * params + act, 0, work


# world package -> (knobs -> (float32 numbers per replica, numbers shared, multiply-adds))
WORLDS: dict[str, Callable[[Any], tuple[float, float, float]]] = {
    "contrastive": _contrastive,
    "snr": _snr,
    "factorization": _factorization,
    "pmi": _pmi,
    "identifiability": _identifiability,
    "intrinsic_dim": _intrinsic_dim,
    "lenses": _lenses,
}


def _world(config: Any) -> str | None:
    parts = type(config).__module__.split(".")
    return parts[2] if parts[:2] == ["mmnb", "worlds"] and len(parts) > 2 else None


def needs(configs: list[Any], n_seeds: int = 1) -> tuple[float, float] | None:
    """(bytes, multiply-adds) of a run of the chapter whose configs these are (main one
    first), or None for a notebook that is not a chapter of the book."""
    if not configs or _world(configs[0]) not in WORLDS:
        return None
    merged: dict[str, Any] = {}
    for config in reversed(configs):  # the main config's value wins
        merged.update(vars(config))
    try:
        replica, shared, work = WORLDS[_world(configs[0])](SimpleNamespace(**merged))
    except (AttributeError, TypeError, ValueError):  # a world's knobs changed: no estimate
        return None
    return 4.0 * (replica * max(1, n_seeds) + shared), float(work) * max(1, n_seeds)


def machine_memory(device: str) -> tuple[float, str]:
    """(bytes, what) of the memory a run on `device` may use: the GPU's or the machine's."""
    if device.startswith("cuda"):
        import torch

        index = int(device.split(":")[1]) if ":" in device else 0
        return float(torch.cuda.get_device_properties(index).total_memory), f"GPU {device}"
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        import psutil

        total = psutil.virtual_memory().total
    return float(total), "this machine"


def resolve(device: Any) -> str:
    """The device a run would use ("auto" resolved); a `ValueError` names a missing one."""
    from mmnb.runtime import resolve_device

    return str(resolve_device("auto" if device is None else device))


def check_budget(params: Mapping[str, Any], configs: list[Any]) -> None:
    """Raise a `ValueError` when the run's device is missing here or its estimated memory
    exceeds 90% of that device's."""
    device = resolve(params.get("device", "auto"))
    n_seeds = int(params.get("n_seeds") or 1)
    need = needs(configs, n_seeds)
    if need is None:
        return
    have, where = machine_memory(device)
    if need[0] > 0.9 * have:
        raise ValueError(
            f"the run needs about {need[0] / GB:.1f} GB of memory at once (estimated from "
            f"the config's sizes and n_seeds={n_seeds}); {where} has {have / GB:.1f} GB. "
            "Lower the sizes (samples, widths, batch size) or n_seeds"
        )


def paper_note(notebook: str | Path, params: Mapping[str, Any], configs: list[Any]) -> str:
    """A note on the expected time when a `"paper"` profile is to run on a CPU, else ''."""
    if params.get("profile") != "paper" or not configs:
        return ""
    device = resolve(params.get("device", "auto"))
    if device != "cpu":
        return ""
    stem = Path(notebook).stem
    paper_cost, book_cost = needs(configs), needs([type(c)() for c in configs])
    try:
        results = json.loads((ROOT / "benchmarks" / "results.json").read_text())
        seconds = float(results["chapter_book_seconds"][stem])
    except (OSError, ValueError, KeyError, TypeError):
        seconds = math.nan
    if paper_cost is None or book_cost is None or not math.isfinite(seconds):
        return "note: profile 'paper' runs the paper's full scale on a CPU; expect hours or days"
    hours = seconds * paper_cost[1] / max(book_cost[1], 1.0) / 3600
    return (
        f"note: profile 'paper' on a CPU: expect about {hours:,.1f} hours ({stem}'s book "
        f"profile took {seconds:.0f} s when benchmarked; the paper profile has "
        f"{paper_cost[1] / max(book_cost[1], 1.0):,.0f}x its work). It is meant for a GPU "
        "(-p device cuda)"
    )
