"""Sphinx extension: read mmnb's docstrings as the plain, Markdown-like text they are.

mmnb's docstrings mark code with single backticks (`` `MLP`s ``), write absolute values
as ``|x|`` and products as ``a * b``, and introduce code examples with an indented
block. reStructuredText, which autodoc parses, reads those as roles, substitutions and
emphasis and fails the book. This hook (``autodoc-process-docstring``) turns each
docstring into the reStructuredText that shows what the author wrote: code spans become
literals, the other markup characters are escaped, and an indented block becomes a
literal block.
"""

from __future__ import annotations

import re

CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)|``[^`\n]+``")
SPECIAL = re.compile(r"([\\*|])|(?<=\w)_(?=\W|$)")


def _inline(text: str) -> str:
    """One line of prose: code spans as literals, everything else escaped."""
    out, last = [], 0
    for match in CODE.finditer(text):
        out.append(SPECIAL.sub(lambda m: "\\" + m.group(0), text[last : match.start()]))
        code = match.group(1) if match.group(1) is not None else match.group(0)[2:-2]
        before = "\\ " if match.start() > 0 and text[match.start() - 1].isalnum() else ""
        end = match.end()
        after = "\\ " if end < len(text) and text[end].isalnum() else ""
        out.append(f"{before}``{code}``{after}")
        last = end
    out.append(SPECIAL.sub(lambda m: "\\" + m.group(0), text[last:]))
    return "".join(out)


BULLET = re.compile(r"^(\s*(?:[-*+]|\d+[.)])\s+)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _text_column(line: str) -> int:
    """Where a line's text starts (after a list marker): its continuation's indent."""
    marker = BULLET.match(line)
    return len(marker.group(1)) if marker else _indent(line)


def _prose(line: str) -> str:
    marker = BULLET.match(line)
    head = marker.group(1) if marker else ""
    return head + _inline(line[len(head) :])


def to_rst(lines: list[str]) -> list[str]:
    """A docstring's lines (as autodoc hands them over) in reStructuredText."""
    out: list[str] = []
    block_indent = None  # indentation of the enclosing prose while inside a literal block
    for i, line in enumerate(lines):
        if block_indent is not None:
            if not line.strip() or _indent(line) > block_indent:
                out.append(line)
                continue
            block_indent = None
        following = next((x for x in lines[i + 1 :] if x.strip()), None)
        starts_block = following is not None and _indent(following) > _text_column(line)
        if line.strip() and starts_block:
            # an indented block follows: show it verbatim, after a blank line
            text = _prose(line.rstrip())
            out.append(text + (":" if text.endswith(":") else " ::"))
            if i + 1 < len(lines) and lines[i + 1].strip():
                out.append("")
            block_indent = _indent(line)
            continue
        out.append(_prose(line))
    return out


def _process(app, what, name, obj, options, lines):
    lines[:] = to_rst(lines)


def setup(app):
    app.connect("autodoc-process-docstring", _process)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
