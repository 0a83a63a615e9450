"""Every chapter's world keeps one shape: a package with the same files by role, its
configs and World reached through the registry, no import circle, no module too long."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from mmnb.config import WorldConfig
from mmnb.protocol import World
from mmnb.worlds import CHAPTERS, chapter_configs, package

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mmnb"
ROLES = ("config.py", "world.py", "fit.py", "measures.py")
MAX_LINES = 400


def test_every_chapter_notebook_has_a_world() -> None:
    notebooks = {p.stem for p in (ROOT / "chapters").glob("*.ipynb")}
    assert notebooks == set(CHAPTERS)


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_world_package_has_the_same_files_by_role(chapter: str) -> None:
    folder = PACKAGE / "worlds" / CHAPTERS[chapter]
    missing = [role for role in ROLES if not (folder / role).is_file()]
    assert not missing, f"{folder.relative_to(ROOT)} lacks {missing}"


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_world_is_built_through_the_protocol(chapter: str) -> None:
    configs = chapter_configs(chapter)
    assert configs and all(issubclass(c, WorldConfig) for c in configs)
    pkg = package(chapter)
    cfg = configs[0]()
    world = pkg.World(cfg, 0, torch.device("cpu"))
    assert isinstance(world, World)
    assert world.cfg == cfg and world.seed == 0 and world.device == torch.device("cpu")
    assert world.PURPOSES, "the world names what it samples (PURPOSES)"
    first = world.sample(16, world.PURPOSES[0])
    again = pkg.World(cfg, 0, torch.device("cpu")).sample(16, world.PURPOSES[0])
    # the same seed and purpose give the same draws
    for a, b in zip(_tensors(first), _tensors(again), strict=True):
        torch.testing.assert_close(a, b)


def _tensors(sample: object) -> list[torch.Tensor]:
    if isinstance(sample, torch.Tensor):
        return [sample]
    if isinstance(sample, (tuple, list)):
        return [t for s in sample for t in _tensors(s)]
    if isinstance(sample, dict):
        return [t for s in sample.values() for t in _tensors(s)]
    fields = getattr(sample, "__dataclass_fields__", None) or getattr(sample, "__dict__", {})
    return [t for name in fields for t in _tensors(getattr(sample, name))]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The mmnb modules `name` imports (anywhere but under `if TYPE_CHECKING`)."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for t in ast.walk(tree) if _is_type_checking(t) for n in ast.walk(t)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    # the package `mmnb` itself (its lazy __init__) is not an edge
    return {m for m in found if m in modules and m != "mmnb" and m != name}


def test_no_import_circle() -> None:
    modules = _modules()
    graph = {name: _imports(path, name, modules) for name, path in modules.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_no_module_is_too_long() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by concern): {long}"
