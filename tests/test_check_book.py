"""The browser check of the book (tools/check_book.py) fails on each defect it looks for.

A tiny book is written to a temporary folder: one page that must pass (math rendered by
the vendored MathJax, a captioned figure that loads, a link to an anchor that exists,
display math and a table that scroll inside their own box at a phone's width) and one page
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
        '<!DOCTYPE html><html><head><meta name="viewport" content="width=device-width">'
        f"<title>t</title>{head}</head><body>"
        f'<main><article class="bd-article" style="max-width: 600px">{body}</article></main>'
        "</body></html>"
    )


def figure(alt: str, caption: str = "A dot.", number: str = "Fig. 1 ") -> str:
    """A figure as Sphinx writes it (a numbered one has a name, hence an id)."""
    label = f'<span class="caption-number">{number}</span>' if number else ""
    text = f'<figcaption><p>{label}<span class="caption-text">{caption}</span></p></figcaption>'
    return f'<figure id="fig-dot"><img src="dot.png" alt="{alt}">{text if caption else ""}</figure>'


# 500 px: fits the 600 px article on a laptop, not a phone's 390 px
SCROLLS_IN_ITS_BOX = (
    '<mjx-container display="true" style="display: block; overflow-x: auto">'
    '<span style="display: inline-block; width: 500px">x = y</span></mjx-container>'
    '<div style="overflow-x: auto"><table style="width: 500px"><tr><td>a</td></tr></table></div>'
)


PAGES = {
    "index.html": page(
        "<p>Math: \\(x^2 + \\lVert\\mu\\rVert\\)</p>"
        + figure("A black dot on white.")
        + '<a href="index.html#here" id="here">anchor</a><a href="https://example.org">out</a>'
        "<pre>short code</pre>" + SCROLLS_IN_ITS_BOX,
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
    "figure_no_caption.html": page(figure("A black dot on white.", caption="")),
    "figure_unnumbered.html": page(figure("A black dot on white.", number="")),
    "image_alone.html": page('<p><img src="dot.png" alt="A black dot on white."></p>'),
    "alt_file_name.html": page(figure("dot.png")),
    "alt_path.html": page(figure("../_images/dot.png")),
    "alt_empty.html": page(figure("")),
    "phone_cut_off.html": page('<div style="width: 500px">a box 500 px wide</div>'),
    "phone_long_word.html": page(f"<p>{'x' * 55}</p>"),
    "phone_hidden.html": page(
        '<div style="overflow-x: hidden"><p style="width: 500px">cut</p></div>'
    ),
}
FIGURES = {
    "figure_no_caption.html": "no caption",
    "figure_unnumbered.html": "caption not numbered",
    "image_alone.html": "no caption",
    "alt_file_name.html": "no alt text",
    "alt_path.html": "no alt text",
    "alt_empty.html": "no alt text",
}

EXPECTED = {
    "raw_tex.html": "raw TeX",
    "cdn.html": "network request",
    "image.html": "broken image",
    "wide.html": "too wide",
    "traceback.html": "traceback or warning",
    "warning.html": "traceback or warning",
    "links.html": "dead internal link",
    **FIGURES,
    "phone_cut_off.html": "at 390 px: cut off (div",
    "phone_hidden.html": "at 390 px: cut off (div hides",
    "phone_long_word.html": "at 390 px: cut off (text of p",
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
    code = check_book.main([str(html), "--screenshots", str(shots), "--figures"])
    return code, json.loads((shots / "report.json").read_text()), shots


def test_the_good_page_passes_and_math_renders(result):
    code, report, shots = result
    assert report["index.html"]["problems"] == []
    assert report["index.html"]["math"] >= 1, "MathJax rendered no formula offline"
    assert (shots / "index.png").stat().st_size > 1000
    assert (shots / "390px" / "index.png").stat().st_size > 1000


def test_a_box_wider_than_a_phone_fails_only_at_390_px(result):
    _, report, _ = result
    problems = report["phone_cut_off.html"]["problems"]
    assert problems and all(p.startswith("at 390 px: ") for p in problems), problems
    assert any("the page scrolls sideways" in p for p in problems), problems


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_defect_fails_its_page(result, name):
    code, report, _ = result
    assert code == 1
    problems = report[name]["problems"]
    assert any(EXPECTED[name] in p for p in problems), f"{name}: {problems}"


def test_the_figure_check_is_on_by_default_and_can_be_switched_off(tmp_path, monkeypatch, capsys):
    """On (as `make book` and `make test` run it) unless `MMNB_CHECK_FIGURES=0` or
    --no-figures: then figures are counted, not failed."""
    (tmp_path / "index.html").write_text(page("<p>hello</p>"))
    for name in FIGURES:
        (tmp_path / name).write_text(PAGES[name])
    (tmp_path / "dot.png").write_bytes(PNG)
    monkeypatch.delenv("MMNB_CHECK_FIGURES", raising=False)
    assert check_book.main([str(tmp_path)]) == 1
    assert not check_book.parse_args([str(tmp_path), "--no-figures"]).figures
    monkeypatch.setenv("MMNB_CHECK_FIGURES", "0")
    assert check_book.main([str(tmp_path)]) == 0
    assert f"{len(FIGURES)} figures lack" in capsys.readouterr().out
    assert check_book.parse_args([str(tmp_path), "--figures"]).figures  # the flag wins


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
