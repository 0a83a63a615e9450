"""Every accepted config runs: random valid configs of every world, at tiny sizes.

Hypothesis changes up to four knobs of each world's book config to values drawn from the
config's own declared ranges and choices (sizes capped small), keeps the configs the
config accepts, builds the world through the
protocol of `mmnb.protocol` (`World(cfg, seed, device)`, `sample(n, purpose)` for every
purpose) and runs a read-out on the samples (not training): every number must be finite
and no accepted config may crash. A crash here is a config check missing or a bug.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mmnb.protocol import World  # noqa: E402
from mmnb.worlds import CHAPTERS, chapter_configs, package  # noqa: E402

TINY = 12  # the largest size a drawn integer knob takes above its lower bound
SKIP = {"digits_source": ("mnist",)}  # values that download data
N = 24  # draws per purpose


def _scalar(meta: dict[str, Any], like: Any, name: str) -> st.SearchStrategy:
    if meta.get("choices") is not None:
        return st.sampled_from([c for c in meta["choices"] if c not in SKIP.get(name, ())])
    kind = meta.get("kind") or type(like)
    low, high = meta.get("low"), meta.get("high")
    if kind is bool:
        return st.booleans()
    if kind is int:
        lo = int(low) if low is not None else 0
        return st.integers(lo, min(int(high) if high is not None else lo + TINY, lo + TINY))
    if kind is float:
        lo = float(low) if low is not None else -10.0
        hi = float(high) if high is not None else lo + 10.0
        return st.floats(
            lo, min(hi, lo + 10.0 * max(1.0, abs(lo))), allow_nan=False, allow_subnormal=False
        )
    return st.just(like)


@st.composite
def _config(draw: st.DrawFn, cls: type) -> dict[str, Any]:
    """Up to four knobs of the book profile changed to values drawn from their declared
    ranges (the checks that tie knobs together reject few such configs)."""
    fields = {}
    for f in dataclasses.fields(cls):
        if f.name in ("profile", "theory_checks"):
            continue
        meta = dict(f.metadata)
        if isinstance(f.default, tuple):
            like = f.default[0] if f.default else 0
            fields[f.name] = st.lists(_scalar(meta, like, f.name), min_size=1, max_size=3)
        else:
            fields[f.name] = _scalar(meta, f.default, f.name)
    names = draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=4, unique=True))
    return {name: draw(fields[name]) for name in names}


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if dataclasses.is_dataclass(value):
        value = [getattr(value, f.name) for f in dataclasses.fields(value)]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def _finite(value: Any) -> None:
    for t in _tensors(value):
        if t.is_floating_point():
            assert torch.isfinite(t).all(), "a sample or read-out is not finite"


def _readout(world_name: str, world: Any, sample: Any) -> Any:
    """One read-out of each world's measures on a sample (no training)."""
    pkg = package(world_name)
    if world_name == "contrastive":
        return torch.as_tensor(pkg.measures.latent_r2(sample.x, sample.z, "linear"))
    if world_name == "identifiability":
        return world.style_oracle()
    if world_name == "lenses":  # the world's heldout_r2 (kernel ridge) on the raw x
        return pkg.measures.heldout_r2(sample.x[None], sample.a, "linear")
    if world_name == "intrinsic_dim":
        return pkg.measures.alignment_ratio(sample.x[None], sample.y[None])
    return sample


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_every_accepted_config_runs(chapter: str) -> None:
    world_name = CHAPTERS[chapter]
    main = chapter_configs(chapter)[0]
    cls = package(chapter).World

    @settings(
        max_examples=8, deadline=None, derandomize=True, database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure
        suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
    )  # fmt: skip
    @given(values=_config(main), seed=st.integers(0, 2**16))
    def accepted_config_runs(values: dict[str, Any], seed: int) -> None:
        try:
            cfg = main(**values)
        except ValueError:
            assume(False)  # not an accepted config
            return
        world = cls(cfg, seed, "cpu")
        assert isinstance(world, World)
        outputs = []
        for purpose in getattr(world, "PURPOSES", ("data/train",)):
            sample = world.sample(N, purpose)
            _finite(sample)
            outputs.append(sample)
        _finite(_readout(world_name, world, outputs[0]))

    accepted_config_runs()
