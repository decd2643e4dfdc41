"""Plain-text tables that stay aligned when their text is Chinese.

A terminal or a notebook's output shows a Chinese character two columns wide, so ``str.rjust``
misaligns any column with Chinese in it. :func:`text_table` pads by display width instead::

    from ganlib.chapters.tables import text_table
    print(text_table([_("k"), _("modes")], [(1, 8), (3, 7)]))
"""
from __future__ import annotations

import numbers
import unicodedata

__all__ = ["display_width", "text_table"]


def display_width(text: str) -> int:
    """Columns that ``text`` takes in a monospaced font: two for wide (CJK) characters, one otherwise."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * (width - display_width(text))
    return fill + text if right else text + fill


def text_table(header: list[str], rows: list, formats: list[str] | None = None, gap: int = 2) -> str:
    """A header line, a rule and one line per row, columns separated by ``gap`` spaces.

    Each cell is ``format(value, formats[j])`` (``formats`` default to ``str``); a column is
    right-aligned when its first row holds a number, left-aligned otherwise.
    """
    if not rows:
        raise ValueError("text_table needs at least one row")
    formats = formats or [""] * len(header)
    if not all(len(row) == len(header) == len(formats) for row in rows):
        raise ValueError(f"every row and the formats need {len(header)} entries, one per header column")
    cells = [[format(value, spec) for value, spec in zip(row, formats)] for row in rows]
    right = [isinstance(value, numbers.Real) and not isinstance(value, bool) for value in rows[0]]
    widths = [max(display_width(text) for text in column) for column in zip(header, *cells)]

    def line(values):
        return (" " * gap).join(_pad(v, w, r) for v, w, r in zip(values, widths, right)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(row) for row in cells])
