"""A notebook's `parameters` cell, checked before any kernel starts.

`check_parameters` checks names against the cell (papermill only warns about an unknown
name and leaves the notebook's value in place). `check_values` builds the notebook's
world config (the class whose `from_parameters(globals())` the notebook calls) from the
cell's defaults and the given values, so that a value out of range, of the wrong type,
NaN, too large for the machine's memory (`mmnb.budget`) or on a device the machine
lacks stops a run or a sweep at once, with a message naming the knob, instead of failing
in a kernel minutes later.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import json
import math
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["check_parameters", "check_values", "notebook_configs"]

OUTPUT_DIR = "output_dir"
_MAGIC = re.compile(r"^(\s*)[%!].*$", re.MULTILINE)


def check_parameters(notebook: str | Path, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Check `names` against the notebook's `parameters` cell; return papermill's inference."""
    import papermill

    notebook = Path(notebook)
    if notebook.suffix != ".ipynb" or not notebook.is_file():
        raise ValueError(f"notebook {str(notebook)!r} is not an existing .ipynb file")
    known = papermill.inspect_notebook(notebook)
    if not known:
        raise ValueError(f"{notebook} has no cell tagged 'parameters'; there is nothing to set")
    if OUTPUT_DIR not in known:
        raise ValueError(
            f"{notebook} has no {OUTPUT_DIR!r} parameter; each run gets its own "
            "output_dir, which the notebook must pass to mmnb.save_metrics"
        )
    names = list(names)
    if OUTPUT_DIR in names:
        raise ValueError(f"{OUTPUT_DIR!r} is set for each run (its folder); do not set it")
    unknown = [name for name in names if name not in known]
    if unknown:
        choices = sorted(name for name in known if name != OUTPUT_DIR)
        raise ValueError(f"unknown parameter(s) {unknown} for {notebook}; known: {choices}")
    return known


def _cells(notebook: Path) -> Iterator[ast.Module]:
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        try:
            yield ast.parse(_MAGIC.sub(r"\1pass", source))
        except SyntaxError:
            continue


def _dotted(node: ast.AST) -> list[str] | None:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else [*head, node.attr]
    return None


def _resolve(binding: tuple[str, str | None]) -> Any:
    module, name = binding
    if name is None:
        return importlib.import_module(module)
    try:
        return importlib.import_module(f"{module}.{name}")
    except ImportError:
        return getattr(importlib.import_module(module), name)


@contextlib.contextmanager
def _on_path(folder: Path) -> Iterator[None]:
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(folder))


def notebook_configs(notebook: str | Path) -> list[type]:
    """The `WorldConfig` classes whose `from_parameters` the notebook calls.

    A chapter of the book is looked up in the registry (`mmnb.worlds.CHAPTERS`, by the
    notebook's name). Any other notebook's configs are found by reading its code
    (imports and `<name>.<Config>.from_parameters(...)` calls), imported with the
    notebook's folder on the path, as its kernel would; a class that cannot be found or
    imported is left out (the kernel then checks the values itself).
    """
    from mmnb.config import WorldConfig
    from mmnb.worlds import CHAPTERS, chapter_configs

    notebook = Path(notebook)
    book = Path(__file__).resolve().parents[1] / "chapters"
    if notebook.stem in CHAPTERS and notebook.resolve().parent == book:
        return list(chapter_configs(notebook.stem))
    bindings: dict[str, tuple[str, str | None]] = {}
    calls: list[list[str]] = []
    for tree in _cells(notebook):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        bindings[alias.asname] = (alias.name, None)
                    else:
                        head = alias.name.split(".")[0]
                        bindings[head] = (head, None)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    bindings[alias.asname or alias.name] = (node.module, alias.name)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "from_parameters"
            ):
                target = _dotted(node.func.value)
                if target and target[0] in bindings and target not in calls:
                    calls.append(target)
    found: list[type] = []
    with _on_path(notebook.resolve().parent):
        for head, *rest in calls:
            try:
                obj = _resolve(bindings[head])
                for attr in rest:
                    obj = getattr(obj, attr)
            except Exception:  # noqa: BLE001 - an unimportable class is the kernel's to report
                continue
            if isinstance(obj, type) and issubclass(obj, WorldConfig) and obj not in found:
                found.append(obj)
    return found


def _defaults(known: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    values = {}
    for name, info in known.items():
        try:
            values[name] = ast.literal_eval(str(info.get("default")))
        except (ValueError, SyntaxError):
            continue  # not a literal: the kernel evaluates it
    return values


def _check_run_values(params: Mapping[str, Any]) -> None:
    from mmnb.config import check_range

    for name, value in params.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name}={value!r} is not a finite number")
    if params.get("seed") is not None:
        check_range("seed", params["seed"], 0, 2**63 - 1, integer=True)
    if params.get("n_seeds") is not None:
        check_range("n_seeds", params["n_seeds"], 1, 64, integer=True)


def check_values(
    notebook: str | Path,
    points: Iterable[Mapping[str, Any]],
    known: Mapping[str, Mapping[str, Any]] | None = None,
    notes: list[str] | None = None,
    machine: bool = True,
) -> int:
    """Check every run's values with the notebook's config(s), its device and its memory
    estimate; return how many configs checked.

    A bad value raises the config's `ValueError` (it names the knob and the allowed
    values), prefixed with the run's parameters. With `machine` off (runs on a Dask
    cluster) the device and memory are the workers', not checked here. Notes for the
    user (the expected time of a `"paper"` run on a CPU) are appended to `notes`.
    """
    from mmnb.budget import check_budget, paper_note, resolve
    from mmnb.names import run_name

    if known is None:
        known = check_parameters(notebook, [])
    configs = notebook_configs(notebook)
    defaults = _defaults(known)
    for params in points:
        values = {**defaults, **params}
        try:
            _check_run_values(params)
            built = [config.from_parameters(values) for config in configs]
            if built and machine:
                check_budget(values, built)
                note = paper_note(notebook, values, built)
                if note and notes is not None and note not in notes:
                    notes.append(note)
            elif machine and "device" in params:
                resolve(params["device"])
        except ValueError as err:
            raise ValueError(f"run {run_name(params)}: {err}") from None
    return len(configs)
