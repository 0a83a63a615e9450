"""Files that are never half-written and never silently wrong: atomic writes, strict JSON.

This module imports nothing heavy (no torch, numpy or pandas): a sweep's run processes
use it before any kernel starts.
"""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["read_json", "read_metrics", "strict_json", "write_json_atomic", "write_text_atomic"]


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write text to a temporary file in the same folder, then rename it into place.

    Readers see the old file or the new one, never half of one; the file gets the
    usual permissions (0666 less the umask), not the private ones of a temporary file.
    A symbolic link at `path` is replaced by the file, its target is left alone.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def strict_json(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def write_json_atomic(path: str | Path, payload: Any) -> None:
    """Write `payload` as strict JSON (non-finite numbers as null) with `write_text_atomic`."""
    text = json.dumps(strict_json(payload), indent=2, sort_keys=True, allow_nan=False)
    write_text_atomic(path, text)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_json(path: str | Path) -> Any:
    """Read strict JSON without following a symbolic link; `ValueError` names path and reason."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ValueError(f"{path}: is a symbolic link, which is not followed") from err
        raise ValueError(f"{path}: cannot be read ({err.strerror})") from err
    try:
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read()
    except OSError as err:
        raise ValueError(f"{path}: cannot be read ({err.strerror})") from err
    if not raw.strip():
        raise ValueError(f"{path}: is empty")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{path}: is not valid JSON ({err})") from err


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def read_metrics(path: str | Path) -> dict[str, Any]:
    """Read and check a `metrics.json` written by `mmnb.save_metrics`.

    Returns the payload: an object whose `params` is an object and whose `metrics` maps
    names to numbers (or null). Anything else raises a `ValueError` naming the file and
    what is wrong with it.
    """
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: holds a JSON {type(data).__name__}, not an object")
    for key in ("params", "metrics"):
        if not isinstance(data.get(key), dict):
            raise ValueError(f"{path}: has no {key!r} object")
    bad = [name for name, value in data["metrics"].items() if not _is_number(value)]
    if bad:
        raise ValueError(f"{path}: metric(s) {bad} are not numbers")
    claims = data.get("claims", [])
    if not isinstance(claims, list) or not all(
        isinstance(c, dict) and isinstance(c.get("name"), str) for c in claims
    ):
        raise ValueError(f"{path}: 'claims' is not a list of named claims")
    if not _is_number(data.get("wall_seconds")):
        raise ValueError(f"{path}: 'wall_seconds' is not a number")
    return data


DECISIVE_KINDS = ("prediction", "control", "identity")  # as mmnb.claims.DECISIVE


def failing_claims(data: dict[str, Any]) -> list[str]:
    """The names of the decisive claims (prediction, control, identity) that a
    `metrics.json` payload records as failed."""
    claims = data.get("claims") or []
    return [
        str(c.get("name"))
        for c in claims
        if isinstance(c, dict) and c.get("kind") in DECISIVE_KINDS and c.get("verdict") == "fails"
    ]
