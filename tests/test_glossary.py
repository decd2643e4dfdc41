"""The glossary, book/glossary.yml, is the one source of the book's Chinese terms: the entries are
well-formed, every Chinese gloss in the prose is an entry's term, no prose uses a synonym where the
glossary names the standard term, and each term is glossed at its first use in reading order.

Prose is the markdown of the pages in _toc.yml (notebooks: markdown cells only), read in the order
of _toc.yml, without code, math, labels and link targets. A gloss is a parenthesis with Chinese in
it that follows English text, ``term (中文)``, ``(GANs, 生成对抗网络)`` or ``(fidelity, 保真度)``;
its Chinese parts are the ones between commas, semicolons or colons that hold Han characters."""
import json
import re
from pathlib import Path

import pytest
import yaml

from test_book import toc_entries as toc_pages  # the docnames of _toc.yml in reading order

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = yaml.safe_load((ROOT / "book" / "glossary.yml").read_text())
HAN = re.compile(r"[\u3400-\u9fff]")
# One rendering of each English word that several terms share (the Chinese edition must not mix
# 潜/隐 for "latent" or 崩溃/崩塌 for "collapse").
ONE_RENDERING = {"latent": "潜在", "collapse": "崩溃"}


def source_of(page):
    """The file behind a docname, for messages."""
    nb = ROOT / f"{page}.ipynb"
    return f"{page}.ipynb" if nb.exists() else f"{page}.md"


def markdown_of(page):
    """The page's markdown: a notebook's markdown cells joined, or the .md file."""
    nb, md = ROOT / f"{page}.ipynb", ROOT / f"{page}.md"
    if nb.exists():
        cells = json.loads(nb.read_text())["cells"]
        return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return md.read_text() if md.exists() else ""  # a missing page is test_book.py's to report


def prose_of(markdown):
    """The markdown as a reader reads it: code blocks, math, inline code and roles' targets,
    MyST labels, directive options and link targets blanked; emphasis markers removed."""
    lines, fences = [], []  # fences: the open ones, (marker, is_code)
    for line in markdown.split("\n"):
        fence = re.match(r"\s*(`{3,}|:{3,})(.*)", line)
        if fence and fences and fence.group(1) == fences[-1][0] and not fence.group(2).strip():
            fences.pop()
            lines.append("")
            continue
        if fence:
            info = fence.group(2).strip()
            code = not info.startswith("{") or info.split("}")[0] in ("{code-block", "{code-cell", "{code", "{math")
            fences.append((fence.group(1), code or any(c for _, c in fences)))
            lines.append("")
            continue
        code = any(c for _, c in fences)
        option = fences and re.match(r"\s*:[\w-]+:", line)
        label = re.match(r"\s*\([\w-]+\)=\s*$", line)
        lines.append("" if code or option or label else line)
    text = "\n".join(lines)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"(?<!\\)\$[^$]+?(?<!\\)\$", " ", text, flags=re.S)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return text.replace("*", "")


PROSE = [(page, prose_of(markdown_of(page))) for page in toc_pages()]
ZH = {entry["zh"]: entry for entry in GLOSSARY}


def parts(inside):
    """The parts of a parenthesis, between commas, semicolons or colons, whitespace collapsed."""
    return [" ".join(p.split()) for p in re.split(r"[,;:，；：]", inside)]


def glosses(text):
    """(start, end, Chinese parts) of every gloss: a parenthesis that holds Chinese and follows
    English text. One that follows Chinese (a book's title, its translators) glosses nothing."""
    for m in re.finditer(r"\(([^()]*)\)", text):
        before = text[:m.start()].rstrip()[-1:]
        chinese = [p for p in parts(m.group(1)) if HAN.search(p) and not p.startswith("《")]  # 《title》
        if chinese and not (HAN.search(before) or before in set("》」』）。，、")):
            yield m.start(), m.end(), chinese


def term_pattern(en):
    """The English term as a whole word, case-insensitive, -ise or -ize, hyphen or space between
    words, with a plural s."""
    words = [re.escape(w).replace("is", "i[sz]").replace("iz", "i[sz]") for w in re.split(r"[\s-]+", en)]
    return re.compile(r"(?<![\w-])" + r"[\s-]+".join(words) + r"(?:s|es)?(?![\w-])", re.I)


def is_glossed(text, start, end, zh):
    """Whether the term at text[start:end] carries zh: in the parenthesis right after it, or, where
    the term itself stands inside a parenthesis (``(fidelity, 保真度)``), later in that one."""
    after = re.match(r"[\s\"'”’]*\(([^()]*)\)", text[end:])
    if after and zh in parts(after.group(1)):
        return True
    opened, closed = text.rfind("(", 0, start), text.rfind(")", 0, start)
    close = text.find(")", end)
    if opened > closed and close != -1 and "(" not in text[end:close]:
        return zh in parts(text[end:close])
    return False


def first_use(entry):
    """(page, text, match) of the entry's first use in reading order, from its first_use page on;
    a use inside a longer term of the glossary belongs to that term, and an unglossed use in a
    heading is passed over."""
    pages = [p for p, _ in PROSE]
    begin = pages.index(entry["first_use"]) if "first_use" in entry else 0
    longer = [term_pattern(e["en"]) for e in GLOSSARY
              if e is not entry and term_pattern(entry["en"]).search(e["en"])]
    for page, text in PROSE[begin:]:
        covered = [m.span() for pattern in longer for m in pattern.finditer(text)]
        for m in term_pattern(entry["en"]).finditer(text):
            if any(a <= m.start() and m.end() <= b for a, b in covered):
                continue
            # a heading names its section, and the gloss goes with the text under it
            heading = text[text.rfind("\n", 0, m.start()) + 1:].lstrip().startswith("#")
            if not heading or is_glossed(text, m.start(), m.end(), entry["zh"]):
                return page, text, m
    return None


def test_every_entry_is_well_formed():
    pages = list(toc_pages())
    for entry in GLOSSARY:
        name = entry.get("en", entry)
        assert {"en", "zh", "synonyms", "defined"} <= set(entry), f"book/glossary.yml: {name} needs en, zh, synonyms and defined"
        assert set(entry) <= {"en", "zh", "synonyms", "defined", "abbr", "first_use"}, f"book/glossary.yml: {name} has unknown fields"
        assert HAN.search(entry["zh"]), f"book/glossary.yml: {name}'s zh {entry['zh']!r} holds no Chinese"
        assert isinstance(entry["synonyms"], list), f"book/glossary.yml: {name}'s synonyms must be a list (may be [])"
        for key in ("defined", "first_use"):
            if key in entry:
                assert entry[key] in pages, f"book/glossary.yml: {name}'s {key} {entry[key]!r} is not a page of _toc.yml"
                assert any((ROOT / f"{entry[key]}{ext}").exists() for ext in (".ipynb", ".md")), (
                    f"book/glossary.yml: {name}'s {key} {entry[key]!r} names no file")


def test_terms_and_synonyms_are_unique():
    for key in ("en", "zh"):
        seen = [e[key].lower() for e in GLOSSARY]
        twice = sorted({v for v in seen if seen.count(v) > 1})
        assert not twice, f"book/glossary.yml: these {key} terms have two entries, merge them: {twice}"
    for entry in GLOSSARY:
        for synonym in entry["synonyms"]:
            assert synonym not in ZH, f"book/glossary.yml: {entry['en']}'s synonym {synonym} is itself the term of {ZH[synonym]['en']}"


def test_entries_are_sorted_by_english_term():
    keys = [e["en"].lower() for e in GLOSSARY]
    assert keys == sorted(keys), "book/glossary.yml: keep the entries sorted alphabetically by en"


@pytest.mark.parametrize("word", sorted(ONE_RENDERING))
def test_a_shared_english_word_has_one_chinese_rendering(word):
    rendering = ONE_RENDERING[word]
    for entry in GLOSSARY:
        if re.search(rf"\b{word}", entry["en"], re.I):
            assert rendering in entry["zh"], (
                f"book/glossary.yml: {entry['en']} is {entry['zh']}; the book renders {word!r} as {rendering}")


@pytest.mark.parametrize("page", [p for p, _ in PROSE])
def test_every_gloss_is_a_glossary_term(page):
    text = dict(PROSE)[page]
    for start, end, chinese in glosses(text):
        for part in chinese:
            assert part in ZH, (
                f"{source_of(page)}: the gloss {text[start:end]!r} uses {part!r}, which is no zh term of book/glossary.yml; "
                f"use the entry's term, or add an entry for it")


@pytest.mark.parametrize("page", [p for p, _ in PROSE])
def test_no_prose_uses_a_synonym(page):
    text = dict(PROSE)[page]
    for zh in sorted(ZH, key=len, reverse=True):  # a synonym inside a standard term is that term
        text = text.replace(zh, "□")
    for entry in GLOSSARY:
        for synonym in entry["synonyms"]:
            assert synonym not in text, (
                f"{source_of(page)}: {synonym!r} is a synonym; write the glossary's term {entry['zh']} ({entry['en']}) instead")


@pytest.mark.parametrize("entry", GLOSSARY, ids=lambda e: e["en"])
def test_each_term_is_glossed_at_its_first_use(entry):
    found = first_use(entry)
    assert found, f"book/glossary.yml: {entry['en']} is used nowhere in the book's prose; remove the entry or fix en"
    page, text, m = found
    context = " ".join(text[max(0, m.start() - 60):m.end() + 60].split())
    assert is_glossed(text, m.start(), m.end(), entry["zh"]), (
        f"{source_of(page)}: the first use of {entry['en']!r} is not glossed; write ({entry['zh']}) after it "
        f"in: ...{context}... (where that place is awkward, give the entry first_use: <page>)")
