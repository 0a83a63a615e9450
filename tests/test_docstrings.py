"""Every mmnb docstring renders on the API page (tools/mmnb_docstrings.py + docutils).

The book's API page (api.md) shows each docstring through autodoc, which parses
reStructuredText; a docstring that docutils cannot parse fails the book build. This test
finds such a docstring quickly and names it.
"""

import importlib
import importlib.util
import inspect
import io
from pathlib import Path

import docutils.core
import docutils.utils
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("mmnb_docstrings", ROOT / "tools/mmnb_docstrings.py")
mmnb_docstrings = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mmnb_docstrings)

MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts)
    for p in (ROOT / "mmnb").rglob("*.py")
    if p.name not in ("__init__.py", "__main__.py")
)


def _problems(doc: str) -> str:
    """docutils' messages (warnings and worse) for a docstring as autodoc hands it over."""
    lines = mmnb_docstrings.to_rst(inspect.cleandoc(doc).splitlines())
    stream = io.StringIO()
    docutils.core.publish_doctree(
        "\n".join(lines),
        settings_overrides={"report_level": 2, "halt_level": 5, "warning_stream": stream},
    )
    return stream.getvalue()


def test_markdown_like_docstrings_become_rst():
    doc = "The `MLP`s of |x| * 2, name_ and\n\n    code = 1\n    more()\n\nend `a`."
    rst = "\n".join(mmnb_docstrings.to_rst(doc.splitlines()))
    assert "``MLP``\\ s" in rst and "\\|x\\| \\* 2" in rst and "name\\_" in rst
    assert "    code = 1" in rst and _problems(doc) == ""
    assert _problems("A *broken `role") != ""  # docutils does complain without the hook


@pytest.mark.parametrize("module", MODULES)
def test_docstrings_parse(module):
    mod = importlib.import_module(module)
    objects = [(module, mod)]
    for name, obj in vars(mod).items():
        if getattr(obj, "__module__", None) == module and (
            inspect.isclass(obj) or inspect.isfunction(obj)
        ):
            objects.append((f"{module}.{name}", obj))
            if inspect.isclass(obj):
                objects += [
                    (f"{module}.{name}.{m}", f)
                    for m, f in vars(obj).items()
                    if inspect.isfunction(f) or isinstance(f, (property, classmethod))
                ]
    bad = []
    for name, obj in objects:
        doc = inspect.getdoc(obj.__func__ if isinstance(obj, classmethod) else obj)
        if doc and (problems := _problems(doc)):
            bad.append(f"{name}: {problems.strip()}")
    assert not bad, "docstrings the API page cannot render:\n" + "\n".join(bad)
