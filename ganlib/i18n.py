"""Text that ganlib prints, in the reader's language: English, or Chinese with ``GANLIB_LANG=zh_CN``.

The book has an English and a Chinese edition built from the same notebooks. The prose is
translated by the book's build; what ganlib itself prints (a self-check's verdict, a table's
header, a figure's labels) is translated here, when the code runs::

    from ganlib.i18n import _
    print(_("Correct: ") + _("{n:,} parameters").format(n=count))

A message is looked up by its English text in ``ganlib/locale/<language>.po``, a standard gettext
catalog; a message without a translation stays English. Messages with numbers are format strings,
filled in after translation, so a translator moves the placeholders but never sees a number.
"""
from __future__ import annotations

import ast
import os
from functools import lru_cache
from pathlib import Path

LANGUAGES = ("en", "zh_CN")
SPELLINGS = {"en": "en", "en_us": "en", "en_gb": "en", "zh": "zh_CN", "zh_cn": "zh_CN", "zh_hans": "zh_CN"}
CATALOG_DIR = Path(__file__).resolve().parent / "locale"


def language() -> str:
    """The language ganlib prints in: ``GANLIB_LANG`` (``en`` when unset; ``zh``, ``zh-CN`` and
    ``zh_CN`` all mean Chinese)."""
    value = os.environ.get("GANLIB_LANG", "").strip() or "en"
    lang = SPELLINGS.get(value.lower().replace("-", "_"))
    if lang is None:
        raise ValueError(f"GANLIB_LANG={value!r} is not a language ganlib prints; set it to one of {LANGUAGES} "
                         "(or unset it for English)")
    return lang


def read_po(path: Path) -> dict[str, str]:
    """The translated messages of a gettext catalog: ``{msgid: msgstr}``, empty and fuzzy ones left out.

    Reads the subset of the format that catalogs of plain messages use: ``msgid``/``msgstr`` with
    strings split over quoted lines, C escapes, ``#`` comments and the ``#, fuzzy`` flag; anything
    else (``msgctxt``, plural forms) is refused with the file and line.
    """
    messages, fields, field, fuzzy = {}, {}, None, False

    def flush():
        nonlocal fields, fuzzy
        if fields.get("msgid") and fields.get("msgstr") and not fuzzy:
            messages[fields["msgid"]] = fields["msgstr"]
        fields, fuzzy = {}, False

    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            if line.startswith("#,") and "fuzzy" in line:
                flush()
                fuzzy = True
            elif not line and "msgstr" in fields:
                flush()
            continue
        keyword, _, rest = line.partition(" ")
        if keyword in ("msgid", "msgstr"):
            if keyword == "msgid" and "msgstr" in fields:
                flush()
            field, line = keyword, rest
        try:
            if field is None or not line.startswith('"'):
                raise ValueError("expected msgid, msgstr or a quoted string")
            fields[field] = fields.get(field, "") + ast.literal_eval(line)
        except (ValueError, SyntaxError) as err:
            raise ValueError(f"{path}:{number}: not a line of a gettext catalog ({err}): {line[:60]!r}") from None
    flush()
    return messages


@lru_cache(maxsize=None)
def _catalog(lang: str) -> dict[str, str]:
    path = CATALOG_DIR / f"{lang}.po"
    return read_po(path) if path.exists() else {}


def _(message: str) -> str:
    """``message`` in the current language (:func:`language`); the English text where untranslated."""
    lang = language()
    return message if lang == "en" else _catalog(lang).get(message, message)
