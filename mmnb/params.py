"""Profiles and parameter checks shared by every chapter's `parameters` cell."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

__all__ = ["check_choice", "check_range", "resolve_profile"]


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return `value` if it is one of `allowed`, else raise a `ValueError` naming both."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {allowed}")
    return value


def check_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    integer: bool = False,
) -> Any:
    """Return `value` if it is a number in [low, high] (an int if `integer`), else raise."""
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        raise ValueError(f"{name}={value!r} must be {kind}")
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name}={value!r} is out of range; allowed: {kind} in [{lo}, {hi}]")
    return value


def resolve_profile(
    profile: str, profiles: Mapping[str, Mapping[str, Any]], **knobs: Any
) -> SimpleNamespace:
    """Merge a chapter's knobs over its profile's defaults.

    A knob left at `None` takes the profile's value; an unknown profile or a knob the
    profile does not define raises a `ValueError` that lists the allowed names.
    """
    check_choice("profile", profile, profiles)
    config = dict(profiles[profile])
    for name, value in knobs.items():
        if name not in config:
            raise ValueError(f"unknown parameter {name!r}; known: {sorted(config)}")
        if value is not None:
            config[name] = value
    return SimpleNamespace(profile=profile, **config)
