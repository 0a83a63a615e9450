"""Every chapter keeps the chapter contract and is committed without outputs."""

import json
import re
from pathlib import Path

import pytest
import yaml

from mmnb.config import WorldConfig
from mmnb.worlds import chapter_configs

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
REQUIRED = ("profile", "seed", "n_seeds", "device", "output_dir")


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _assigned(source: str) -> set[str]:
    """The names a parameters cell assigns (comment lines skipped)."""
    return {
        line.split("=")[0].strip()
        for line in source.splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }


def test_parameters_cells_are_generated_from_the_configs():
    """tools/set_parameters_cell.py wrote every chapter's parameters and config-table cells."""
    import subprocess
    import sys

    tool = ROOT / "tools" / "set_parameters_cell.py"
    out = subprocess.run([sys.executable, str(tool), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_there_are_chapters():
    assert CHAPTERS, "no chapter notebooks found"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    for i, cell in enumerate(_cells(path)):
        if cell["cell_type"] == "code":
            assert not cell["outputs"], f"{path.name}: cell {i} stores outputs; clear them"
            assert cell["execution_count"] is None, f"{path.name}: cell {i} has an execution count"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_contract(path):
    cells = _cells(path)
    code = [c for c in cells if c["cell_type"] == "code"]
    assert "remove-cell" in code[0].get("metadata", {}).get("tags", []), "setup cell first"
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, f"{path.name}: exactly one 'parameters' cell"
    names = _assigned(_source(params[0]))
    missing = set(REQUIRED) - names
    assert not missing, f"{path.name}: parameters cell lacks {sorted(missing)}"
    assert "mmnb.setup(" in "".join(_source(c) for c in code)
    last = _source(code[-1])
    save = "mmnb.save_metrics(output_dir, metrics, cfg, claims=claims)"
    decide = "claims.decide(cfg.theory_checks)"
    assert save in last and decide in last, f"the last cell: {save}, then {decide}"
    assert last.index(save) < last.index(decide), "claims are recorded before they are decided"
    for i, cell in enumerate(code):
        assert not re.search(r"^\s*assert\b", _source(cell), re.M), (
            f"{path.name}: code cell {i} asserts; state the check as a claim (mmnb.claims)"
        )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_parameters_cell_covers_the_config(path):
    """Every field of the chapter's configs (from the registry) is a knob of the parameters
    cell, and every knob a config field; the main config is built from the parameters."""
    code = [c for c in _cells(path) if c["cell_type"] == "code"]
    params = next(c for c in code if "parameters" in c.get("metadata", {}).get("tags", []))
    names = _assigned(_source(params))
    configs = chapter_configs(path.stem)
    source = "".join(_source(c) for c in code)
    for cls in configs:
        assert f"{cls.__name__}.from_parameters(globals())" in source, (
            f"{path.name}: build each config with <world>.{cls.__name__}.from_parameters(globals())"
        )
    fields: list[str] = []
    for cls in configs:
        # the base config's knobs (theory_checks) are shared by a chapter's configs
        fields += [k for k in cls.knobs() if not (k in WorldConfig.knobs() and k in fields)]
    assert len(fields) == len(set(fields)), f"{path.name}: two configs share a knob name"
    assert names - set(REQUIRED) == set(fields), (
        f"{path.name}: parameters cell and config differ: only in the cell "
        f"{sorted(names - set(REQUIRED) - set(fields))}, only in the config "
        f"{sorted(set(fields) - names)}"
    )
    from papermill.inspection import inspect_notebook

    parsed = set(inspect_notebook(str(path)))
    assert parsed == names, f"{path.name}: papermill cannot read {sorted(names - parsed)}"
    for line in _source(params).splitlines():
        if "=" in line and line.split("=")[0].strip() in fields:
            assert line.split("=", 1)[1].split("#")[0].strip() == "None", (
                f"{path.name}: knob {line!r} must default to None (the profile's value)"
            )


def test_every_chapter_is_in_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = {ch["file"] for part in toc["parts"] for ch in part["chapters"]}
    for path in CHAPTERS:
        assert f"chapters/{path.stem}" in files, f"{path.name} is missing from _toc.yml"
