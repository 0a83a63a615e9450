"""`glue`: hand a value measured in a chapter to the book's prose, without myst-nb.

The book writes measured numbers into its prose with myst-nb's ``{glue:text}`` roles,
which read notebook outputs that carry a ``scrapbook`` name. ``myst_nb.glue`` writes
those outputs but needs myst-nb (and Sphinx) installed, which a reader in Colab does not
have. This function writes exactly the same output with IPython alone, so the chapters
run anywhere and the book still finds its numbers.
"""

from __future__ import annotations

from typing import Any

GLUE_PREFIX = "application/papermill.record/"


def glue(name: str, variable: Any, display: bool = True) -> None:
    """Record `variable`'s displayed value under `name` (as ``myst_nb.glue`` does).

    With `display=False` the value is stored for the prose but not shown in the cell's
    output. A scalar numpy value or 0-d tensor is stored as the Python number it holds, so
    that ``{glue:text}`name:.3f` `` can format it (numpy 2 shows ``np.float32(0.29)``).
    """
    if getattr(variable, "ndim", None) == 0 and hasattr(variable, "item"):
        variable = variable.item()
    import IPython.core.formatters
    from IPython.display import display as ipy_display

    mimebundle, metadata = IPython.core.formatters.format_display_data(variable)
    mime_prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = dict(name=name, mime_prefix=mime_prefix)
    ipy_display({mime_prefix + k: v for k, v in mimebundle.items()}, raw=True, metadata=metadata)
