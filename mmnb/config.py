"""One typed, frozen config per world: fields are the chapter's settings.

A world declares its settings as a frozen dataclass that subclasses `WorldConfig`:

    @dataclass(frozen=True)
    class ContrastiveConfig(WorldConfig):
        PAPER: ClassVar[dict] = {"n_train": 65536, "steps": 5000}
        n_train: int = knob(4096, Range(64, 1_000_000))  # training pairs
        lr: float = knob(3e-3, LEARNING_RATE)  # Adam learning rate

The defaults are the `"book"` profile; `PAPER` holds only what the `"paper"` profile
changes. A field's allowed values are a `Range` or a collection of choices; the ranges
that mean the same in every world (`STEPS`, `LEARNING_RATE`, `FRACTION`, `TEMPERATURE`,
`SCALE`, `WIDTH`) are named once, in `mmnb.ranges`. Every field is validated in one place
(`__post_init__`): a wrong type, NaN, infinity or a value out of range raises a
`ValueError` naming the field and the allowed values. `from_profile` merges a chapter's
knobs (`None` = the profile's value) over a profile, and `from_parameters` does so from a
notebook's `parameters` cell.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from mmnb.ranges import Range

__all__ = [
    "WorldConfig",
    "check_choice",
    "check_range",
    "knob",
]

C = TypeVar("C", bound="WorldConfig")


def _kind(value: Any) -> type:
    """bool, str or a number: `1` is not `True`, and `"1"` is not `1`."""
    return bool if isinstance(value, bool) else str if isinstance(value, str) else float


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return `value` if it is one of `allowed` (a bool only as a bool, a number only as a
    number), else raise a `ValueError` naming both."""
    allowed = list(allowed)
    for choice in allowed:
        if _kind(choice) is _kind(value) and choice == value:
            return value
    raise ValueError(f"{name}={value!r} is not allowed; choose one of {allowed}")


def check_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    integer: bool = False,
) -> Any:
    """Return `value` if it is a finite number in [low, high] (an int if `integer`), else raise."""
    kind = "an integer" if integer else "a finite number"
    lo = "-inf" if low is None else low
    hi = "inf" if high is None else high
    allowed = f"allowed: {kind} in [{lo}, {hi}]"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        raise ValueError(f"{name}={value!r} must be {kind}; {allowed}")
    if not math.isfinite(value):
        raise ValueError(f"{name}={value!r} is not finite; {allowed}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name}={value!r} is out of range; {allowed}")
    return value


def knob(
    default: Any,
    allowed: Range | tuple | list | None = None,
    *,
    optional: bool = False,
    kind: type | None = None,
) -> Any:
    """A config field with its allowed values: a `Range` or a tuple of choices.

    The kind of value is read off the default: `int` (an integer in the range), `float`
    (a finite number in the range; ints are accepted), `bool`, `str` (one of the choices,
    any string without them), or a tuple (each element checked like its first default
    element; lists are accepted and stored as tuples). `optional=True` also allows
    `None`; a field whose default is `None` names its `kind` (`int`, `float`, `bool` or
    `str`). Write the field's meaning as a comment beside it.
    """
    if default is None and kind is None:
        raise TypeError("knob(None, ...) needs kind=int, float, bool or str")
    if isinstance(allowed, Range):
        if isinstance(default, (bool, str)):
            raise TypeError(f"knob({default!r}, ...): a Range bounds numbers; give choices")
    elif allowed is not None and not isinstance(allowed, (tuple, list)):
        raise TypeError(f"knob's allowed values are a Range or a tuple of choices, not {allowed!r}")
    bounds = allowed if isinstance(allowed, Range) else Range()
    meta = {
        "low": bounds.low,
        "high": bounds.high,
        "choices": None if allowed is None or isinstance(allowed, Range) else tuple(allowed),
        "optional": optional or default is None,
        "kind": kind,
    }
    if isinstance(default, (list, tuple)):
        return dataclasses.field(default=tuple(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


_EXAMPLES: dict[type, Any] = {bool: True, int: 0, float: 0.0, str: ""}
# a field of a config's source: `name: type = knob(...)`
_FIELD = re.compile(r"^\s+(\w+)\s*:[^=]*=\s*knob\(")


def _check_scalar(name: str, value: Any, like: Any, meta: Mapping[str, Any]) -> Any:
    if meta["kind"] is not None:
        like = _EXAMPLES[meta["kind"]]
    if meta["choices"] is not None:
        return check_choice(name, value, meta["choices"])
    if isinstance(like, bool):
        return check_choice(name, value, [True, False])
    if isinstance(like, int):
        return check_range(name, value, meta["low"], meta["high"], integer=True)
    if isinstance(like, float):
        return float(check_range(name, value, meta["low"], meta["high"]))
    if isinstance(like, str):
        if not isinstance(value, str):
            raise ValueError(f"{name}={value!r} must be a string")
        return value
    raise TypeError(f"config field {name!r}: unsupported default {like!r}")


@dataclasses.dataclass(frozen=True)
class WorldConfig:
    """Base of every world's config; subclasses add fields made with `knob`."""

    PAPER: ClassVar[dict[str, Any]] = {}

    profile: str = knob("book", ("book", "paper"))  # the profile of the defaults
    # stop the chapter (after saving its metrics) when a prediction, control or identity
    # fails; off, the claims are recorded and the chapter goes on
    theory_checks: bool = knob(True)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.metadata.get("optional"):
                continue
            if isinstance(f.default, tuple):
                if not isinstance(value, (list, tuple)):
                    raise ValueError(f"{f.name}={value!r} must be a list of values")
                like = f.default[0] if f.default else 0
                checked = tuple(
                    _check_scalar(f"{f.name}[{i}]", v, like, f.metadata)
                    for i, v in enumerate(value)
                )
            else:
                checked = _check_scalar(f.name, value, f.default, f.metadata)
            object.__setattr__(self, f.name, checked)
        self.check()

    def check(self) -> None:
        """Checks that involve several fields; subclasses override (raise `ValueError`)."""

    @classmethod
    def knobs(cls) -> list[str]:
        """The names of the settings (every field but `profile`)."""
        return [f.name for f in dataclasses.fields(cls) if f.name != "profile"]

    @classmethod
    def from_profile(cls: type[C], profile: str = "book", **knobs: Any) -> C:
        """The config of `profile` with `knobs` set; a knob at `None` keeps the profile's value.

        An unknown profile or knob name raises a `ValueError` listing the allowed names.
        """
        check_choice("profile", profile, ("book", "paper"))
        unknown = sorted(set(knobs) - set(cls.knobs()))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; known: {sorted(cls.knobs())}")
        values = dict(cls.PAPER) if profile == "paper" else {}
        values.update({k: v for k, v in knobs.items() if v is not None})
        return cls(profile=profile, **values)

    @classmethod
    def from_parameters(cls: type[C], namespace: Mapping[str, Any]) -> C:
        """The config from a notebook's parameters: `profile` and every knob found by name."""
        return cls.from_profile(
            namespace.get("profile", "book"),
            **{k: namespace[k] for k in cls.knobs() if k in namespace},
        )

    @classmethod
    def meanings(cls) -> dict[str, str]:
        """Each setting's meaning: the comment beside its field (or the comment lines just
        above it) in the config's source, base classes first."""
        found: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            if not (isinstance(klass, type) and issubclass(klass, WorldConfig)):
                continue
            above: list[str] = []
            for line in inspect.getsource(klass).splitlines():
                text = line.strip()
                if text.startswith("#"):
                    above.append(text.lstrip("# ").strip())
                    continue
                field = _FIELD.match(line)
                if field:
                    beside = line.split("#", 1)[1].strip() if "#" in line else ""
                    found[field.group(1)] = beside or " ".join(above)
                above = []
        return {name: found.get(name, "") for name in cls.knobs()}

    def table(self, *others: WorldConfig) -> Any:
        """The settings as one table: value, the "book" default, allowed values, meaning
        (with `others`, a chapter's further configs, their settings below; shared ones once)."""
        import pandas as pd

        book = type(self)()
        meanings = self.meanings()
        rows = []
        for f in dataclasses.fields(self):
            if f.name == "profile":
                continue
            meta = f.metadata
            if meta.get("choices") is not None:
                allowed = " | ".join(map(str, meta["choices"]))
            elif isinstance(f.default, bool):
                allowed = "True | False"
            elif meta.get("low") is not None or meta.get("high") is not None:
                allowed = f"[{meta.get('low')}, {meta.get('high')}]"
            else:
                allowed = "any"
            rows.append(
                {
                    "setting": f.name,
                    "value": getattr(self, f.name),
                    "book": getattr(book, f.name),
                    "allowed": allowed,
                    "meaning": meanings.get(f.name, ""),
                }
            )
        table = pd.DataFrame(rows).set_index("setting")
        for other in others:
            more = other.table()
            table = pd.concat([table, more.drop(index=table.index.intersection(more.index))])
        return table

    def replace(self: C, **changes: Any) -> C:
        """A copy with `changes` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (tuples as lists), for `metrics.json`."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }
