"""What ganlib prints, in the reader's language (ganlib.i18n)."""
import ast
import string
from pathlib import Path

import pytest

from ganlib import i18n
from ganlib.chapters import selfcheck

GANLIB = Path(i18n.__file__).resolve().parent


def messages_in_code() -> set[str]:
    """Every message that ganlib's code passes to ``_()``; each must be a literal (an f-string or a
    variable would never match the catalog)."""
    found = set()
    for path in GANLIB.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_":
                assert len(node.args) == 1 and isinstance(node.args[0], ast.Constant), (
                    f"{path.name}:{node.lineno}: _() takes one literal string; format it after translating")
                found.add(node.args[0].value)
    return found


def fields(text: str) -> list:
    return sorted((name, spec) for _, name, spec, _ in string.Formatter().parse(text) if name is not None)


def test_english_is_the_default_and_chinese_is_one_setting(monkeypatch, capsys):
    monkeypatch.delenv("GANLIB_LANG", raising=False)
    assert selfcheck.check_math_disjoint_value(0.0)
    assert capsys.readouterr().out.startswith("Correct: JSD = log 2")
    monkeypatch.setenv("GANLIB_LANG", "zh_CN")
    assert not selfcheck.check_training_real_samples(1)
    out = capsys.readouterr().out
    assert out.startswith("还不对：") and "小批量" in out
    assert selfcheck.check_training_real_samples(320_000)
    assert capsys.readouterr().out == "正确：k * m * 迭代次数 = 5 * 64 * 1000 = 320,000。\n"


def test_a_message_without_translation_stays_english(monkeypatch):
    monkeypatch.setenv("GANLIB_LANG", "zh_CN")
    assert i18n._("a sentence nobody translated") == "a sentence nobody translated"


@pytest.mark.parametrize("spelling", ["zh_CN", "zh-CN", "zh", "ZH_cn"])
def test_the_usual_spellings_of_chinese_are_understood(monkeypatch, spelling):
    monkeypatch.setenv("GANLIB_LANG", spelling)
    assert i18n.language() == "zh_CN" and i18n._("Correct: ") == "正确："


def test_an_unknown_language_is_refused_with_the_choices(monkeypatch):
    monkeypatch.setenv("GANLIB_LANG", "fr")
    with pytest.raises(ValueError, match=r"GANLIB_LANG='fr'.*\('en', 'zh_CN'\)"):
        i18n._("Correct: ")


def test_every_message_in_the_code_has_a_chinese_translation_with_the_same_fields():
    catalog = i18n.read_po(GANLIB / "locale" / "zh_CN.po")
    in_code = messages_in_code()
    assert len(in_code) >= 20  # the check reads real calls
    missing = sorted(in_code - catalog.keys())
    assert not missing, f"ganlib/locale/zh_CN.po has no translation of {missing[:3]}; add them"
    stale = sorted(catalog.keys() - in_code)
    assert not stale, f"ganlib/locale/zh_CN.po translates messages the code no longer has: {stale[:3]}"
    for message in in_code:
        assert fields(catalog[message]) == fields(message), f"the translation of {message!r} changes its fields"


def test_read_po_joins_lines_unescapes_and_skips_fuzzy_and_empty(tmp_path):
    path = tmp_path / "t.po"
    path.write_text('#, fuzzy\nmsgid ""\nmsgstr "header"\n\nmsgid "a "\n"b"\nmsgstr "甲"\n"乙\\"\\n"\n\n'
                    '#, fuzzy\nmsgid "c"\nmsgstr "丙"\n\nmsgid "d"\nmsgstr ""\n', encoding="utf-8")
    assert i18n.read_po(path) == {"a b": '甲乙"\n'}
    for bad, line in (('msgid "a"\nmsgstr 3\n', 2), ('msgid "a"\nmsgstr "b\n', 2), ('msgctxt "c"\nmsgid "a"\n', 1)):
        path.write_text(bad, encoding="utf-8")
        with pytest.raises(ValueError, match=f"t.po:{line}: not a line of a gettext catalog"):
            i18n.read_po(path)
