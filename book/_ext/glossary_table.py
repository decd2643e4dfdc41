"""The glossary table, rendered at build time from the book's one list of terms.

A local extension, named in ``_config.yml`` under ``local_extensions``. In a page::

    ```{glossary-table} glossary.yml
    ```

The argument is the YAML file (relative to the page, or ``/`` for the book's root): a list of
entries with ``en``, ``zh``, ``synonyms``, ``defined`` (a docname) and an optional ``abbr``
(``tests/test_glossary.py`` checks the file and the prose against it). The directive emits a
plain docutils table, English | 中文 | synonyms | defined in, sorted by the English term, with a
link to the defining page; the page needs no JavaScript and loads nothing from elsewhere. Each row
has an anchor, ``#term-<english>``, so a page can link to one term.
"""
from pathlib import Path

import yaml
from docutils import nodes
from sphinx import addnodes
from sphinx.util.docutils import SphinxDirective

# the header in the edition's language (book/_ext/editions.py); the English column stays English
HEADERS = {"en": ("English", "中文", "Synonyms (sources, other texts)", "Defined in"),
           "zh_CN": ("英文", "中文", "同义词（源文章及其他文献）", "定义于")}
WIDTHS = (30, 20, 25, 25)


class GlossaryTable(SphinxDirective):
    required_arguments = 1
    has_content = False

    def run(self):
        rel, path = self.env.relfn2path(self.arguments[0], self.env.docname)
        self.env.note_dependency(rel)  # editing the YAML rebuilds the page
        try:
            entries = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as err:
            raise self.error(f"glossary-table: cannot read {rel}: {err}")
        if not isinstance(entries, list):
            raise self.error(f"glossary-table: {rel} must hold a list of entries")

        for entry in entries:
            missing = [key for key in ("en", "zh", "defined") if not isinstance(entry, dict) or not entry.get(key)]
            if missing:
                raise self.error(f"glossary-table: {rel}: entry {entry!r} lacks {', '.join(missing)}")
        header = HEADERS.get(self.config.language or "en", HEADERS["en"])
        group = nodes.tgroup(cols=len(header))
        group += [nodes.colspec(colwidth=width) for width in WIDTHS]
        group += nodes.thead("", self._row([nodes.Text(text) for text in header]))
        body = nodes.tbody()
        for entry in sorted(entries, key=lambda e: str(e["en"]).lower()):
            row = self._row([
                # the English term, marked as such: the Chinese edition keeps this column in English
                nodes.inline("", entry["en"] + (f" ({entry['abbr']})" if entry.get("abbr") else ""), classes=["en"]),
                nodes.inline("", entry["zh"], classes=["zh"]),
                nodes.Text("、".join(entry.get("synonyms") or [])),
                self._doc_link(entry["defined"]),
            ])
            row["ids"].append(nodes.make_id("term-" + entry["en"]))
            body += row
        group += body
        table = nodes.table("", group, classes=["glossary-table"])
        self.set_source_info(table)
        return [table]

    def _doc_link(self, docname):
        # a :doc: reference: Sphinx resolves it to the page's title, and warns if the page is missing
        ref = addnodes.pending_xref("", nodes.inline("", docname), refdomain="std", reftype="doc",
                                    reftarget="/" + docname, refexplicit=False, refwarn=True,
                                    refdoc=self.env.docname)
        self.set_source_info(ref)
        return ref

    @staticmethod
    def _row(contents):
        return nodes.row("", *[nodes.entry("", nodes.paragraph("", "", content)) for content in contents])


def setup(app):
    app.add_directive("glossary-table", GlossaryTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
