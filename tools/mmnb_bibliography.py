"""Sphinx extension: the bibliography in author–year form, with links back to the citations.

sphinxcontrib-bibtex cites author–year in the text (`bibtex_reference_style:
author_year`) but labels the list with alpha keys ([RKH+21]), and links an entry back to
its citations only when both sit on the same page. This extension

- registers the pybtex style `mmnb` (`bibtex_default_style: mmnb`): entries sorted by
  author, year and title, labelled "Radford et al. 2021" as the text cites them, with the
  arXiv id (`eprint`), DOI or URL of every entry as a link;
- adds under every entry of the bibliography page the pages that cite it, each a link to
  the citation itself ("Cited in: 0. Contrastive learning… (2), Notation").
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator

from docutils import nodes
from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from sphinx.application import Sphinx


def _last_name(person) -> str:
    """The surname as printed ("von Kügelgen", "HaoChen"), LaTeX accents decoded."""
    words = person.prelast_names + person.last_names
    return " ".join(Text.from_latex(w).render_as("text") for w in words)


def author_year(entry) -> str:
    """ "Wang and Isola 2020", "Radford et al. 2021": the label the text cites."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_last_name(p) for p in people]
    if not names:
        who = Text.from_latex(entry.fields.get("title", entry.key)).render_as("text")
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who} {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabels(BaseLabelStyle):
    """Author–year labels; two entries with the same label get 2020a, 2020b."""

    def format_labels(self, sorted_entries: Iterable) -> Iterator[str]:
        labels = [author_year(e) for e in sorted_entries]
        repeats = Counter(labels)
        seen: Counter = Counter()
        for label in labels:
            if repeats[label] > 1:
                seen[label] += 1
                label = f"{label}{'abcdefghijklmnopqrstuvwxyz'[seen[label] - 1]}"
            yield label


class MmnbStyle(UnsrtStyle):
    """unsrt's entries (which link `eprint` to arXiv, `doi` and `url`), sorted by author,
    year and title, with author–year labels."""

    default_label_style = "mmnb_author_year"
    default_sorting_style = "author_year_title"


register_plugin("pybtex.style.labels", "mmnb_author_year", AuthorYearLabels)
register_plugin("pybtex.style.formatting", "mmnb", MmnbStyle)


def add_backrefs(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Under each entry of a bibliography on this page: the pages that cite it, as links."""
    domain = app.env.get_domain("cite")
    keys = {c.citation_id: c.key for c in domain.citations if c.bibliography_key.docname == docname}
    if not keys:
        return
    refs: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for ref in domain.citation_refs:
        for target in ref.targets:
            refs[target.key][ref.docname].append(ref.citation_ref_id)
    order = {name: i for i, name in enumerate(_reading_order(app))}
    for citation in doctree.findall(nodes.citation):
        key = next((keys[i] for i in citation["ids"] if i in keys), None)
        if key is None or not refs.get(key):
            continue
        para = nodes.paragraph(classes=["mmnb-backrefs"])
        para += nodes.Text("Cited in: ")
        pages = sorted(refs[key], key=lambda d: (order.get(d, len(order)), d))
        for n, page in enumerate(pages):
            if n:
                para += nodes.Text("; ")
            uri = app.builder.get_relative_uri(docname, page)
            ids = refs[key][page]
            title = app.env.titles[page].astext() if page in app.env.titles else page
            para += nodes.reference("", title, refuri=f"{uri}#{ids[0]}", internal=True)
            if len(ids) > 1:
                para += nodes.Text(" (")
                for m, ref_id in enumerate(ids):
                    if m:
                        para += nodes.Text(", ")
                    para += nodes.reference("", str(m + 1), refuri=f"{uri}#{ref_id}")
                para += nodes.Text(")")
        citation += para


def _reading_order(app: Sphinx) -> list[str]:
    """The pages in the order of the table of contents (the root first)."""
    relations = app.env.collect_relations()
    page, seen = app.config.root_doc, []
    while page is not None and page not in seen:
        seen.append(page)
        page = relations.get(page, (None, None, None))[2]
    return seen


def setup(app: Sphinx) -> dict:
    app.connect("doctree-resolved", add_backrefs)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
