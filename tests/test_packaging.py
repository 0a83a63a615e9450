"""Packaging: the declared dependencies, the one repository URL, and installs that work.

The install tests build mmnb's wheel, make a fresh virtual environment (uv, from the
package registry and the machine's local wheels), and run chapter 00 in it through the
notebook's own setup cell with the Colab branch taken (a fake ``google.colab`` module),
the install source pointed at the wheel (``MMNB_SOURCE``):

- ``test_colab_install_newest``: every dependency at its newest release (in ``make test``);
- ``test_colab_install_lower_bounds``: every dependency at the lower bound pyproject.toml
  declares (``make test-lower-bounds``: old releases are downloaded, which takes minutes).

torch stays at the build installed here in both (the local CPU wheel): any other torch
is a multi-gigabyte CUDA download.
"""

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_00 = ROOT / "chapters" / "00_contrastive_learning.ipynb"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

spec = importlib.util.spec_from_file_location("set_setup_cell", ROOT / "tools/set_setup_cell.py")
set_setup_cell = importlib.util.module_from_spec(spec)
spec.loader.exec_module(set_setup_cell)


def _normalise(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).lower()


def test_environment_yml_matches_pyproject():
    wanted = list(PROJECT["dependencies"])
    for extra in PROJECT["optional-dependencies"].values():
        wanted += extra
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = [p for p in pip if not p.startswith("-e")]
    assert sorted(map(_normalise, listed)) == sorted(map(_normalise, wanted))
    assert "python>=3.10" in env["dependencies"]
    assert PROJECT["requires-python"] == ">=3.10"


def test_constraints_pin_torch_and_jupyter_book_1():
    pins = dict(
        line.split("==")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["torch"] == "2.13.0"
    assert pins["jupyter-book"].startswith("1.")


# --- one repository URL --------------------------------------------------------------


def test_one_repository_url_everywhere():
    """`repository.url` in _config.yml is the one URL; every other mention agrees."""
    url = set_setup_cell.repository_url()
    owner_repo = re.match(r"https://github\.com/([^/]+/[^/]+)$", url).group(1)
    assert PROJECT["urls"]["Repository"] == url
    mention = re.compile(r"github(?:\.com)?/([\w.-]+/[\w.-]+?)(?:\.git)?(?=[/@\"'\s)`]|$)")
    files = [ROOT / "README.md", ROOT / "pyproject.toml", *ROOT.glob("*.md")]
    files += sorted((ROOT / "chapters").glob("*.ipynb"))
    wrong = [
        f"{path.relative_to(ROOT)}: {found}"
        for path in sorted(set(files))
        for found in mention.findall(path.read_text())
        if found != owner_repo
    ]
    assert not wrong, f"repository URLs other than {url} (_config.yml): {wrong}"


def test_setup_cells_install_this_version():
    """Colab installs the tag of mmnb.__version__; run tools/set_setup_cell.py if not."""
    import mmnb

    assert set_setup_cell.package_version() == mmnb.__version__
    spec = set_setup_cell.install_spec()
    stale = []
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        cell0 = "".join(json.loads(path.read_text())["cells"][0]["source"])
        if spec not in cell0 or '%pip install -q "$MMNB_SOURCE"' not in cell0:
            stale.append(path.name)
    assert not stale, f"run `python tools/set_setup_cell.py`: stale setup cells in {stale}"


def test_set_setup_cell_rewrites_only_the_install_block():
    source = [
        "import sys\n",
        "\n",
        'if "google.colab" in sys.modules:\n',
        '    %pip install -q "mmnb @ git+https://example.org/x"\n',
        "\n",
        "import torch\n",
        "from myst_nb import glue\n",
        "import mmnb",
    ]
    new = set_setup_cell.rewrite(source)
    assert new[-6:] == [
        "\n",
        "import torch\n",
        "from mmnb.glue import glue\n",
        "import mmnb\n",
        "\n",
        set_setup_cell.STYLE,  # the figure style, where the figures are drawn
    ]
    text = "".join(new)
    assert set_setup_cell.install_spec() in text and "import os\n" in text
    assert set_setup_cell.rewrite(new) == new  # idempotent
    with pytest.raises(ValueError, match="install"):
        set_setup_cell.rewrite(["import torch\n"])


def test_mmnb_glue_writes_what_myst_nb_glue_writes(monkeypatch):
    myst_nb = pytest.importorskip("myst_nb")
    import IPython.display

    from mmnb.glue import glue

    calls = []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: calls.append((a, k)))
    for display in (True, False):
        myst_nb.glue("x", 0.123, display=display)
        glue("x", 0.123, display=display)
        assert calls[-1] == calls[-2]


# --- installs --------------------------------------------------------------------------


def _uv() -> str:
    uv = Path(sys.executable).parent / "uv"
    found = str(uv) if uv.exists() else shutil.which("uv")
    if found is None:
        pytest.fail("uv is missing: pip install -c constraints.txt -e '.[dev]'")
    return found


def _find_links() -> list[str]:
    """pip's configured --find-links (where the local torch CPU wheel lies)."""
    links = os.environ.get("PIP_FIND_LINKS", "").split()
    config = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    ).stdout
    for line in config.splitlines():
        if line.split("=")[0].endswith("find-links"):
            links += line.split("=", 1)[1].strip("'\"").split()
    return sorted(set(links))


def _requirements(wheel: Path) -> list[str]:
    """The wheel's own dependencies (no extras), torch replaced by the build used here."""
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA")))
    reqs = [
        line.split(":", 1)[1].strip()
        for line in meta.decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert reqs == PROJECT["dependencies"], "the wheel declares other dependencies"
    torch = f"torch=={importlib.metadata.version('torch')}"
    return [torch] + [r for r in reqs if not r.startswith("torch")]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """mmnb's wheel, built from a copy of the package (the work tree gets no build/)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "mmnb", src / "mmnb", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(out),
        ],
        check=True,
    )
    return next(out.glob("mmnb-*.whl"))


def _fresh_venv(where: Path, requirements: list[str], *uv_options: str) -> Path:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    subprocess.run(
        [_uv(), "venv", "--quiet", "--seed", "--python", sys.executable, str(where)],
        check=True,
        env=env,
    )
    python = where / "bin" / "python"
    links = [arg for link in _find_links() for arg in ("--find-links", link)]
    subprocess.run(
        [
            _uv(),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            *links,
            *uv_options,
            *requirements,
        ],
        check=True,
        env=env,
    )
    return python


def _run_chapter_00_as_in_colab(python: Path, wheel: Path, tmp: Path) -> dict:
    """Chapter 00 in a kernel of `python`, cell 0's Colab branch installing `wheel`."""
    installed = subprocess.run([python, "-m", "pip", "show", "mmnb"], capture_output=True)
    assert installed.returncode != 0, "mmnb must not be installed before the setup cell"
    ipython = tmp / "ipython"
    startup = ipython / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text(
        "import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')\n"
    )
    work = tmp / "work"  # outside the repository: `import mmnb` finds the installed wheel
    work.mkdir()
    shutil.copy(CHAPTER_00, work / CHAPTER_00.name)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(
        IPYTHONDIR=str(ipython),
        MMNB_SOURCE=f"mmnb @ {wheel.as_uri()}",
        MMNB_PROGRESS="0",
        PATH=f"{python.parent}{os.pathsep}{env['PATH']}",  # the kernel runs this python
    )
    done = subprocess.run(
        [
            python,
            "-m",
            "papermill",
            CHAPTER_00.name,
            "out.ipynb",
            "-k",
            "python3",
            "-p",
            "output_dir",
            str(work / "metrics"),
            "--log-level",
            "WARNING",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    where = subprocess.run(
        [python, "-c", "import mmnb; print(mmnb.__file__, mmnb.__version__)"],
        capture_output=True,
        text=True,
        cwd=tmp,
        check=True,
    ).stdout
    assert str(python.parents[1]) in where, f"mmnb imported from {where}"
    return json.loads((work / "metrics" / "metrics.json").read_text())


def _colab_ready():
    cell0 = "".join(json.loads(CHAPTER_00.read_text())["cells"][0]["source"])
    if "$MMNB_SOURCE" not in cell0:
        pytest.fail(f"{CHAPTER_00.name}: run `python tools/set_setup_cell.py` first")


def test_colab_install_newest(wheel, tmp_path):
    """Newest release of every dependency (torch: the local build), chapter 00 as in Colab."""
    _colab_ready()
    python = _fresh_venv(tmp_path / "venv", _requirements(wheel))
    metrics = _run_chapter_00_as_in_colab(python, wheel, tmp_path)
    assert metrics["versions"]["mmnb"] == set_setup_cell.package_version()


@pytest.mark.skipif(
    not os.environ.get("MMNB_LOWER_BOUNDS"),
    reason="downloads old releases for minutes: `make test-lower-bounds`",
)
def test_colab_install_lower_bounds(wheel, tmp_path):
    """Every dependency at pyproject.toml's lower bound (uv --resolution lowest-direct)."""
    _colab_ready()
    python = _fresh_venv(tmp_path / "venv", _requirements(wheel), "--resolution", "lowest-direct")
    freeze = subprocess.run(
        [_uv(), "pip", "freeze", "--python", str(python)], capture_output=True, text=True
    ).stdout
    print(freeze)
    _run_chapter_00_as_in_colab(python, wheel, tmp_path)
