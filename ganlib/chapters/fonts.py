"""Fonts for figures with Chinese text: finding a CJK font, and using it in the Chinese edition.

matplotlib's default font, DejaVu Sans, has no Chinese glyphs. :func:`cjk_font` finds an
installed font that has them (Debian and Ubuntu: ``fonts-noto-cjk``). When ganlib prints in
Chinese (``GANLIB_LANG=zh_CN``, see :mod:`ganlib.i18n`), :func:`use_edition_font` makes that font
matplotlib's first font, so that figure labels from ``_()`` are drawn in Chinese (math keeps
its DejaVu fonts). Importing :mod:`ganlib.chapters` calls it.
"""
from __future__ import annotations

import warnings

from .. import i18n

__all__ = ["CJK_FAMILY_HINTS", "cjk_font", "font_has_glyphs", "use_edition_font"]

#: substrings of the family names of common CJK fonts; only fonts whose names contain one are opened
CJK_FAMILY_HINTS = ("CJK", "Han Sans", "Han Serif", "WenQuanYi", "Hei", "Song", "Ming", "Kai", "Fang",
                    "YaHei", "SimSun", "PingFang", "Droid Sans Fallback", "AR PL", "Noto Sans SC",
                    "Noto Serif SC", "Sarasa", "LXGW")

#: the glyphs a font must have to count as a Chinese font
PROBE = "生成器判别器潜在"

# among fonts with the glyphs: simplified Chinese faces first, then sans before serif
_SIMPLIFIED = ("SC", "CN", "Hans", "GB", "YaHei", "WenQuanYi", "SimSun")


def font_has_glyphs(path: str, text: str) -> bool:
    """Whether the font file at ``path`` has a glyph for every character of ``text``."""
    from matplotlib.ft2font import FT2Font

    try:
        font = FT2Font(str(path))
    except (OSError, RuntimeError, ValueError):  # unreadable or not a font matplotlib can open
        return False
    return all(font.get_char_index(ord(ch)) != 0 for ch in text)


def _candidates():
    from matplotlib.font_manager import fontManager

    def preference(entry):
        return (not any(mark in entry.name for mark in _SIMPLIFIED), "Serif" in entry.name, entry.name)

    return sorted((e for e in fontManager.ttflist if any(h.lower() in e.name.lower() for h in CJK_FAMILY_HINTS)),
                  key=preference)


def cjk_font(text: str = PROBE):
    """A FontProperties for an installed font that can draw ``text``, or None if there is none.

    Only fonts whose family name contains one of :data:`CJK_FAMILY_HINTS` are considered (so a
    machine with thousands of fonts does not open each one), and each candidate must really have
    every glyph: a family name alone is no proof. Simplified-Chinese faces are preferred.
    """
    from matplotlib.font_manager import FontProperties

    for entry in _candidates():
        if font_has_glyphs(entry.fname, text):
            return FontProperties(family=entry.name, fname=entry.fname)
    return None


def _register_new_cjk_files() -> None:
    # matplotlib caches its font list: a font installed after the cache was written is unknown to
    # it. Add the system's CJK font files (by file name) so that cjk_font can find them.
    from matplotlib.font_manager import findSystemFonts, fontManager

    known = {e.fname for e in fontManager.ttflist}
    for path in findSystemFonts():
        if path not in known and any(h.replace(" ", "").lower() in path.replace(" ", "").lower()
                                     for h in CJK_FAMILY_HINTS):
            try:
                fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue


def use_edition_font() -> str | None:
    """In the Chinese edition, make a CJK font matplotlib's first font; returns its family name.

    Does nothing in English (returns None). In Chinese without any CJK font, warns once and
    returns None: figures then show their Chinese labels as empty boxes.
    """
    if i18n.language() == "en":
        return None
    import matplotlib

    font = cjk_font()
    if font is None:
        _register_new_cjk_files()
        font = cjk_font()
    if font is None:
        warnings.warn("GANLIB_LANG asks for Chinese, but no installed font has Chinese glyphs, so figure "
                      "labels cannot be drawn; install one (e.g. Debian's fonts-noto-cjk)", stacklevel=2)
        return None
    family = font.get_family()[0]
    # The CJK font comes first: text around math ("G 的样本（$p_g$）") is drawn by mathtext in the
    # text's first font alone, without fallback. DejaVu Sans, next, supplies any glyph the CJK font
    # lacks (matplotlib falls back glyph by glyph through named families, not through a generic one
    # such as "sans-serif"). Math itself keeps mathtext's DejaVu fonts, as in the English edition.
    matplotlib.rcParams["font.family"] = [family, "DejaVu Sans"]
    return family
