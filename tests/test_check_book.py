"""The browser check of the book (tools/check_book.py) fails on each defect it looks for.

A tiny book is written to a temporary folder: one page that must pass (math rendered by
the vendored MathJax, an image that loads, a link to an anchor that exists) and one page
per defect. Needs Chromium (Debian's chromium and chromium-driver); skipped without it,
except in CI, where a missing browser is an error.
"""

import base64
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_book", ROOT / "tools" / "check_book.py")
check_book = importlib.util.module_from_spec(spec)
sys.modules["check_book"] = check_book
spec.loader.exec_module(check_book)

browser, driver = check_book.find_chromium()
if (browser is None or driver is None) and not os.environ.get("CI"):
    pytest.skip(
        "Chromium missing: apt-get install chromium chromium-driver", allow_module_level=True
    )

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
MATHJAX = '<script defer src="_static/mathjax/tex-chtml.js"></script>'


def page(body: str, head: str = "") -> str:
    return (
        f"<!DOCTYPE html><html><head><title>t</title>{head}</head><body>"
        f'<main><article class="bd-article" style="width: 600px">{body}</article></main>'
        "</body></html>"
    )


PAGES = {
    "index.html": page(
        '<p>Math: \\(x^2 + \\lVert\\mu\\rVert\\)</p><img src="dot.png">'
        '<a href="index.html#here" id="here">anchor</a><a href="https://example.org">out</a>'
        "<pre>short code</pre>",
        MATHJAX,
    ),
    "raw_tex.html": page("<p>Math: \\(x^2\\)</p>"),
    "cdn.html": page(
        "<p>\\[ x = y \\]</p>",
        '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>',
    ),
    "image.html": page('<img src="missing.png">'),
    "wide.html": page(f'<pre style="overflow: auto">{"x" * 300}</pre>'),
    "traceback.html": page(
        '<div class="cell_output"><pre>Traceback (most recent call last):\n'
        "ValueError: bad</pre></div>"
    ),
    "warning.html": page(
        '<div class="cell_output"><pre>/x.py:3: RuntimeWarning: divide by zero</pre></div>'
    ),
    "links.html": page('<a href="nope.html">a</a><a href="index.html#missing">b</a>'),
}

EXPECTED = {
    "raw_tex.html": "raw TeX",
    "cdn.html": "network request",
    "image.html": "broken image",
    "wide.html": "too wide",
    "traceback.html": "traceback or warning",
    "warning.html": "traceback or warning",
    "links.html": "dead internal link",
}


def _vendored_mathjax() -> Path:
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    assert spec is not None, "sphinx-mathjax-offline is not installed (pip install -e .[book])"
    return Path(spec.origin).parent / "static" / "mathjax"


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    html = tmp_path_factory.mktemp("book")
    for name, text in PAGES.items():
        (html / name).write_text(text)
    (html / "dot.png").write_bytes(PNG)
    shutil.copytree(_vendored_mathjax(), html / "_static" / "mathjax")
    shots = tmp_path_factory.mktemp("shots")
    code = check_book.main([str(html), "--screenshots", str(shots)])
    return code, json.loads((shots / "report.json").read_text()), shots


def test_the_good_page_passes_and_math_renders(result):
    code, report, shots = result
    assert report["index.html"]["problems"] == []
    assert report["index.html"]["math"] >= 1, "MathJax rendered no formula offline"
    assert (shots / "index.png").stat().st_size > 1000


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_defect_fails_its_page(result, name):
    code, report, _ = result
    assert code == 1
    problems = report[name]["problems"]
    assert any(EXPECTED[name] in p for p in problems), f"{name}: {problems}"


def test_missing_chromium_is_loud_and_fails_only_in_ci(tmp_path, monkeypatch, capsys):
    (tmp_path / "index.html").write_text(page("<p>hello</p>"))
    monkeypatch.setattr(check_book, "find_chromium", lambda: (None, None))
    monkeypatch.delenv("CI", raising=False)
    assert check_book.main([str(tmp_path)]) == 0
    assert "apt-get install -y chromium chromium-driver" in capsys.readouterr().err
    monkeypatch.setenv("CI", "true")
    assert check_book.main([str(tmp_path)]) == 1
    assert check_book.main([str(tmp_path), "--require"]) == 1


def test_only_the_current_builds_pages_are_checked(tmp_path):
    for name in ("index.html", "intro.html", "genindex.html", "search.html"):
        (tmp_path / name).write_text(page("x"))
    (tmp_path / "searchindex.js").write_text('Search.setIndex({"docnames": ["intro"], "x": 1})')
    names = [p.name for p in check_book.pages(tmp_path)]
    assert names == ["index.html", "intro.html", "search.html"]  # genindex.html: left over
