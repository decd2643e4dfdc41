"""The book's two editions, English and Chinese (zh_CN), from the same notebooks.

A local extension, named in ``_config.yml``. The Chinese edition is the same Sphinx build with
``language: zh_CN`` and the translated messages of ``book/locales/zh_CN/LC_MESSAGES`` (Sphinx's
gettext); ``make book`` builds it into ``_build/html/zh_CN`` (``book/_ext/build_config.py``). A
page is translated when its catalog there translates at least one message; the edition shows the
others in English. This extension does three things:

* **Only prose is translated.** What a code cell shows (printed text, tables, Markdown that code
  displays) is marked untranslatable before Sphinx extracts or applies messages, so the catalogs
  hold the book's prose alone and a number that changes never breaks a translation. Text that
  ganlib prints is translated by ganlib itself (``ganlib.i18n``), when the notebook runs.
* **A language switch on every page**: an English page links to its Chinese version where there
  is one, and a Chinese page to its English version. The links are plain relative anchors, so they
  work offline and from ``file://``. English pages link only in the Makefile's builds, which set
  ``book_editions`` because they build the Chinese edition too (a plain ``jupyter-book build .``
  would link to pages that do not exist).
* **A note on each page of the edition that is not translated yet**, in Chinese, above the English.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po
from docutils import nodes
from sphinx.transforms import SphinxTransform
from sphinx.transforms.post_transforms import SphinxPostTransform

ROOT = Path(__file__).resolve().parents[2]
EDITIONS = ("zh_CN",)  # the editions besides English; each sits in the English site's folder of its name
CATALOGS = ROOT / "book" / "locales" / "zh_CN" / "LC_MESSAGES"
NOT_TRANSLATED = "本页尚未译成中文，以下为英文原文。"


@lru_cache(maxsize=None)
def translated_pages() -> frozenset[str]:
    """The docnames of the pages the Chinese edition translates: those whose catalog translates a
    message (``make translations PAGES=...`` starts a page with an empty one)."""
    def translates(path):
        with path.open("rb") as f:
            return any(m.id and m.string and not m.fuzzy for m in read_po(f))
    return frozenset(p.relative_to(CATALOGS).with_suffix("").as_posix() for p in CATALOGS.rglob("*.po")
                     if translates(p))


def _mark_outputs_untranslatable(doctree) -> None:
    for output in doctree.findall(nodes.container):
        if "cell_output" in output.get("classes", []):
            for node in output.findall(nodes.Element):
                node["translatable"] = False


class OutputsStayAsRun(SphinxTransform):
    """Code outputs are not messages: mark them before the i18n transform (priority 20) runs."""

    default_priority = 10

    def apply(self, **kwargs):
        _mark_outputs_untranslatable(self.document)


class OutputsStayAsRunAfterRendering(SphinxPostTransform):
    """The same for outputs that myst-nb renders late (Markdown that a code cell displays)."""

    default_priority = 1000

    def run(self, **kwargs):
        _mark_outputs_untranslatable(self.document)


def _language_switch(app, pagename, templatename, context, doctree):
    if doctree is None or "body" not in context:
        return
    depth, translated = pagename.count("/"), pagename in translated_pages()
    note = ""
    if app.config.language == "zh_CN":
        href, label, lang = "../" * (depth + 1) + f"{pagename}.html", "English", "en"
        if not translated:
            note = f'<p class="edition-note">{NOT_TRANSLATED}</p>\n'
    elif translated and "zh_CN" in app.config.book_editions:
        href, label, lang = "../" * depth + f"zh_CN/{pagename}.html", "中文", "zh-CN"
    else:
        return
    context["body"] = (f'<p class="language-switch"><a href="{href}" hreflang="{lang}" lang="{lang}">'
                       f"{label}</a></p>\n" + note + context["body"])


def setup(app):
    app.add_transform(OutputsStayAsRun)
    app.add_post_transform(OutputsStayAsRunAfterRendering)
    app.add_config_value("book_editions", [], "html")  # set by book/_ext/build_config.py
    app.connect("html-page-context", _language_switch)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
