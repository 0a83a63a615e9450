"""One point, one name: canonical parameter values and run-folder names.

`1`, `1.0` and `True` are one point of a grid (Python calls them equal and papermill
writes them into the same notebook code up to spelling), so they get one run folder:
names are sorted, numbers are spelled by value (`1.0` as `1`, `True` as `1`), and a
value whose spelling is not safe in a file name, or a name longer than a file system
allows, is shortened and made unique with a hash. Imports nothing heavy.
"""

from __future__ import annotations

import ast
import hashlib
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["canonical", "literal", "run_name", "same_params", "token"]

_SAFE = re.compile(r"[A-Za-z0-9.+-]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9.+-]+")
MAX_NAME = 200  # bytes of a run folder's name (file systems allow 255)


def literal(text: str) -> Any:
    """A value typed as text: a Python literal (number, bool, None, quoted string, list of
    those), else the text itself."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    if isinstance(value, tuple):
        value = list(value)
    return value


def canonical(value: Any) -> Any:
    """The value as one point: bools and integral floats as ints, lists as tuples."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple, str)):
        value = value.item()  # numpy scalars
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, (list, tuple)):
        return tuple(canonical(v) for v in value)
    return value


def _hash(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def token(value: Any) -> str:
    """The spelling of a value in a folder name: unique for each canonical value."""
    value = canonical(value)
    if value is None or isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ",".join(token(v) for v in value) + "]"
    text = str(value)
    if isinstance(value, str) and _SAFE.fullmatch(text) and literal(text) == text:
        return text
    # unsafe characters, or a string that reads as another value ("1", "None")
    return f"{_UNSAFE.sub('-', text)[:40]}~{_hash(repr(value))}"


def run_name(params: Mapping[str, Any]) -> str:
    """The run's folder name: `name=value` pairs sorted by name and joined by `__`
    (`defaults` when empty); longer than 200 bytes, cut and ended by a hash of the whole."""
    if not params:
        return "defaults"
    name = "__".join(f"{key}={token(params[key])}" for key in sorted(params))
    if len(name.encode()) > MAX_NAME:
        name = f"{name.encode()[: MAX_NAME - 20].decode(errors='ignore')}~{_hash(name, 16)}"
    return name


def same_params(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two parameter sets are one point (same names, canonically equal values)."""
    return set(a) == set(b) and all(canonical(a[k]) == canonical(b[k]) for k in a)
