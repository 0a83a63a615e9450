"""Parameter grids: values checked one by one, YAML files read with a strict schema.

A grid maps parameter names to a value or a list of values; a value is a number, a
string, a bool, None, or (for a list knob such as `fixed_taus`) a list of those. YAML
grid files are read with YAML 1.2's core schema, not PyYAML's YAML 1.1 default: `010` is
ten (not octal eight), `1:30` is a string (not base-60 ninety), `yes`/`no`/`on`/`off` are
strings (only `true`/`false` are bools), and `1e-3` is a float. Values that are one point
(`1`, `1.0`, `True`) may not be listed twice on one axis.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mmnb.names import canonical

__all__ = ["axis", "expand_grid", "load_grid", "scalar"]


class _CoreLoader(yaml.SafeLoader):
    """PyYAML's safe loader with the YAML 1.2 core schema's scalars."""


_DROP = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
_CoreLoader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag not in _DROP]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag, _pattern, _first in [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
]:
    _CoreLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def _core_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    return int(text, 16) if text.startswith("0x") else int(text, 10)


def _core_float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    text = loader.construct_scalar(node).lower()
    return float(text.replace(".inf", "inf").replace(".nan", "nan"))


_CoreLoader.add_constructor("tag:yaml.org,2002:int", _core_int)
_CoreLoader.add_constructor("tag:yaml.org,2002:float", _core_float)


def scalar(name: str, value: Any, nested: bool = False) -> Any:
    """One value of parameter `name`, checked (a list only of scalars)."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple, str)):
        value = value.item()  # numpy scalars
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"parameter {name!r}: {value!r} is not a finite number")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and not nested:
        return [scalar(name, v, nested=True) for v in value]
    raise ValueError(
        f"parameter {name!r}: value {value!r} is a {type(value).__name__}; each value must "
        "be a number, a string, a bool, None, or a list of those (for a list knob)"
    )


def axis(name: str, values: Any) -> list[Any]:
    """The values of one parameter: a value or a list of values, none listed twice."""
    if hasattr(values, "tolist"):
        values = values.tolist()
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    if not values:
        raise ValueError(f"parameter {name!r} has no values")
    values = [scalar(name, v) for v in values]
    for i, value in enumerate(values):
        if any(canonical(v) == canonical(value) for v in values[:i]):
            raise ValueError(
                f"parameter {name!r} lists the value {value!r} twice (1, 1.0 and True are "
                "one value)"
            )
    return values


def load_grid(path: str | Path) -> dict[str, list[Any]]:
    """Read a YAML grid file: a mapping of parameter name to one value or a list of values
    (a list knob's values as lists of lists, e.g. `fixed_taus: [[0.1, 1.0], [0.3]]`)."""
    path = Path(path)
    try:
        data = yaml.load(path.read_text(), Loader=_CoreLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as err:
        raise ValueError(f"grid file {path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(
            f"grid file {path} must map parameter names to a value or a list of values, "
            f"e.g. 'lr: [1e-3, 1e-2]'"
        )
    return {str(name): axis(str(name), values) for name, values in data.items()}


def expand_grid(grid: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the last parameter varying fastest."""
    axes = {name: axis(name, values) for name, values in grid.items()}
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]
