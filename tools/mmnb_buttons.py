"""Sphinx extension: the page's launch and download buttons, as a reader needs them.

sphinx-book-theme offers "open in Colab" on every page that has a kernel, the MyST
Markdown pages (sweeps.md, paper_scale.md) too, and Colab opens the `.md` file it cannot
read; and for a notebook it offers only the source `.ipynb`, without outputs. After the
theme has made its buttons (`html-page-context`, priority 501) this hook

- drops the launch buttons (Colab) from every page whose source is not a `.ipynb`;
- offers a notebook's *executed* copy, with every figure and number, beside the source,
  as `_executed/<page>.ipynb`: the source merged with its outputs from the build's
  jupyter-cache (myst-nb's own copy in `jupyter_execute/` has no outputs when a page comes
  from the cache). Only where an executed copy exists: not in `make book-fast`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from sphinx.application import Sphinx

EXECUTED = "_executed"


def write_executed(app: Sphinx, pagename: str, target: Path) -> bool:
    """Write the page's notebook with its outputs to `target`; False where none exists."""
    source = Path(app.env.doc2path(pagename))
    notebook = nbformat.read(source, as_version=4)
    if app.config.nb_execution_mode == "cache":
        from jupyter_cache import get_cache

        try:
            _, notebook = get_cache(app.config.nb_execution_cache_path).merge_match_into_notebook(
                notebook
            )
        except KeyError:  # not in the cache (an excluded or failed page)
            return False
    else:
        executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
        if not executed.exists():
            return False
        notebook = nbformat.read(executed, as_version=4)
    if not any(c.get("outputs") for c in notebook.cells if c.cell_type == "code"):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)
    return True


def adjust_buttons(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree
) -> None:
    buttons = context.get("header_buttons")
    if buttons is None:
        return
    notebook = context.get("page_source_suffix") == ".ipynb"
    if not notebook:
        buttons[:] = [b for b in buttons if b.get("label") != "launch-buttons"]
        return
    downloads = next((b for b in buttons if b.get("label") == "download-buttons"), None)
    if downloads is None or app.config.nb_execution_mode == "off":
        return
    target = Path(app.outdir) / EXECUTED / f"{pagename}.ipynb"
    if not write_executed(app, pagename, target):
        return
    for button in downloads["buttons"]:
        if button.get("label") == "download-source-button":
            button["text"] = ".ipynb (source)"
            button["tooltip"] = "Download the notebook as written, without outputs"
    downloads["buttons"].insert(
        0,
        {
            "type": "link",
            "url": f"{context['pathto'](EXECUTED, 1)}/{pagename}.ipynb",
            "text": ".ipynb (executed)",
            "tooltip": "Download the notebook with its outputs, as this page shows it",
            "icon": "fas fa-code",
            "label": "download-executed-notebook-button",
        },
    )


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", adjust_buttons, priority=510)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
