"""The Chinese edition's message catalogs (book/locales/zh_CN): complete where they exist, and
faithful in everything that is not prose: roles, references, math, code and numbers."""
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

babel_pofile = pytest.importorskip("babel.messages.pofile")

ROOT = Path(__file__).resolve().parents[1]
MESSAGES_DIR = ROOT / "book" / "locales" / "zh_CN" / "LC_MESSAGES"
CATALOGS = sorted(MESSAGES_DIR.rglob("*.po"))
GLOSSARY = yaml.safe_load((ROOT / "book" / "glossary.yml").read_text(encoding="utf-8"))
TERMS_LONGEST_FIRST = sorted((entry["zh"] for entry in GLOSSARY), key=len, reverse=True)

# what a translation must carry over unchanged: MyST roles with their targets, inline math,
# inline code, and (display) math blocks; and the numbers of the prose
ROLE = re.compile(r"\{[a-z:-]+\}`[^`]*`")
MATH = re.compile(r"\$\$.+?\$\$|\$[^$]+\$", re.S)
CODE = re.compile(r"(?<![}`])`[^`]+`")
NUMBER = re.compile(r"(?<![\w.$-])\d[\d,.]*\d|(?<![\w.$-])\d(?![\w$])")


def messages(path):
    with path.open("rb") as f:
        catalog = babel_pofile.read_po(f)
    return [m for m in catalog if m.id]


def kept(text: str) -> Counter:
    roles = ROLE.findall(text)
    rest = ROLE.sub(" ", text)
    maths = MATH.findall(rest)
    rest = MATH.sub(" ", rest)
    codes = CODE.findall(rest)
    rest = CODE.sub(" ", rest)
    return Counter(roles + maths + codes + [n.replace(",", "") for n in NUMBER.findall(rest)])


def page(path) -> str:
    return path.relative_to(MESSAGES_DIR).with_suffix("").as_posix()


def test_the_catalogs_cover_part_one_the_intro_the_glossary_and_the_errata():
    pages = {page(p) for p in CATALOGS}
    assert {"book/intro", "book/generative_models", "book/gan_concepts", "book/training_algorithm",
            "book/gan_math", "book/glossary", "book/appendix_errata"} <= pages


@pytest.mark.parametrize("path", CATALOGS, ids=page)
def test_every_message_is_translated(path):
    missing = [m.id for m in messages(path) if not m.string or m.fuzzy]
    assert not missing, (f"{page(path)}: {len(missing)} messages have no (or a fuzzy) translation, "
                         f"the first: {missing[0][:120]!r}; translate them in {path.relative_to(ROOT)}")


@pytest.mark.parametrize("path", CATALOGS, ids=page)
def test_translations_keep_roles_math_code_and_numbers(path):
    for m in messages(path):
        if not m.string:
            continue
        source, translation = kept(m.id), kept(m.string)
        assert source == translation, (
            f"{page(path)}: the translation of {m.id[:80]!r} changes what must stay as it is: "
            f"missing {dict(source - translation)}, added {dict(translation - source)}")


@pytest.mark.parametrize("path", CATALOGS, ids=page)
def test_translations_use_the_glossary_terms(path):
    # an English gloss "term (中文)" in the source: the translation writes that Chinese term
    for m in messages(path):
        if not m.string:
            continue
        for entry in GLOSSARY:
            if f"({entry['zh']}" in m.id or f"（{entry['zh']}" in m.id:
                assert entry["zh"] in m.string, (
                    f"{page(path)}: the source glosses {entry['en']!r} as {entry['zh']}, but the translation "
                    f"of {m.id[:60]!r} does not use {entry['zh']}")
            # a synonym inside a standard term is that term (值函数 in 价值函数): look past the terms
            rest = m.string
            for term in TERMS_LONGEST_FIRST:
                rest = rest.replace(term, " ")
            for synonym in entry.get("synonyms") or []:
                assert synonym not in rest or synonym in m.id, (
                    f"{page(path)}: the translation uses {synonym!r}; the book's term is {entry['zh']}")
