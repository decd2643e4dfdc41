"""What ganlib prints, in the reader's language (ganlib.i18n)."""
import ast
import json
import re
import sys
import string
from pathlib import Path

import pytest

from ganlib import i18n
from ganlib.chapters import selfcheck

GANLIB = Path(i18n.__file__).resolve().parent
BOOK = GANLIB.parent / "book"


def code_cells(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def parse_cell(cell: str) -> ast.Module:
    """A code cell's syntax tree, IPython's ``%`` and ``!`` lines left out."""
    return ast.parse("\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in cell.splitlines()))


def sources() -> list[tuple[str, ast.Module]]:
    """(name, syntax tree) of every ganlib module and every notebook code cell (IPython's ``%``
    lines and a cell's trailing ``;`` aside, the cells are plain Python)."""
    trees = [(path.name, ast.parse(path.read_text(encoding="utf-8"))) for path in GANLIB.rglob("*.py")]
    for notebook in sorted(BOOK.glob("*.ipynb")):
        for i, cell in enumerate(code_cells(notebook)):
            trees.append((f"{notebook.name}, code cell {i}", parse_cell(cell)))
    return trees


def messages_in_code() -> set[str]:
    """Every message that ganlib's code or a notebook passes to ``_()``; each must be a literal (an
    f-string or a variable would never match the catalog)."""
    found = set()
    for name, tree in sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_":
                assert len(node.args) == 1 and isinstance(node.args[0], ast.Constant), (
                    f"{name}:{node.lineno}: _() takes one literal string; format it after translating")
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


# Where a notebook's code puts text on the page: print(), a figure's titles, labels and texts, and
# the book's table and image helpers. Text there must go through _() in a translated notebook.
SHOWN_BY_CALL = {"print", "set_title", "set_xlabel", "set_ylabel", "suptitle", "text", "set_label",
                 "text_table", "show_images", "real_vs_generated", "density_and_discriminator"}
SHOWN_BY_KEYWORD = {"label", "title", "titles", "xlabel", "ylabel"}


def words(text: str) -> list[str]:
    """The English words of a displayed string, math ($...$) and format fields ({...}) left out."""
    return re.findall(r"[A-Za-z]{2,}", re.sub(r"\$[^$]*\$|\{[^}]*\}", "", text))


def untranslated_text(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, text) of each string with English words that a cell shows without _()."""
    found = []

    def visit(node, shown=False):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_":
            return  # translated
        if isinstance(node, ast.Subscript):  # scores["Bernoulli"]: a key, not text
            visit(node.value, shown)
            return
        if shown and isinstance(node, ast.Constant) and isinstance(node.value, str) and words(node.value):
            found.append((node.lineno, node.value))
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
            if shown and words(text):
                found.append((node.lineno, text))
            for value in node.values:
                if isinstance(value, ast.FormattedValue):
                    visit(value.value, shown)
            return
        if isinstance(node, ast.Call):
            callee = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            visit(node.func, shown)
            for arg in node.args:
                visit(arg, shown or callee in SHOWN_BY_CALL)
            for keyword in node.keywords:  # ha="center", color="C0": options, not text
                visit(keyword.value, shown or keyword.arg in SHOWN_BY_KEYWORD)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, shown)

    visit(tree)
    return found


def translated_notebooks() -> list[Path]:
    sys.path.insert(0, str(BOOK / "_ext"))
    from editions import translated_pages  # the rule the Chinese build uses

    return [BOOK.parent / f"{page}.ipynb" for page in sorted(translated_pages())
            if (BOOK.parent / f"{page}.ipynb").exists()]


def test_translated_notebooks_show_no_english_text_outside_underscore():
    notebooks = translated_notebooks()
    assert len(notebooks) >= 4  # Part I
    for notebook in notebooks:
        for i, cell in enumerate(code_cells(notebook)):
            left = untranslated_text(parse_cell(cell))
            assert not left, (f"{notebook.name}, code cell {i}, line {left[0][0]}: {left[0][1]!r} is shown in "
                              "English in the Chinese edition; wrap it in _() and translate it in ganlib/locale/zh_CN.po")


def test_the_untranslated_text_check_finds_what_it_should():
    cell = ast.parse('print(f"mean {m:.2f}, {scores[\'Bernoulli\']}")\nax.set_title(_("step"))\n'
                     'ax.plot(x, y, label="$p_g$")\nax.plot(x, y, label="samples")\nprint(text_table([_("k")], rows))\n'
                     'ax.text(0, 0, _("a"), ha="center", color="tab:blue")\nax.text(0, 0, "two words")')
    assert untranslated_text(cell) == [(1, "mean , "), (4, "samples"), (7, "two words")]


def binds_underscore(tree: ast.AST, top_level_only: bool) -> list[int]:
    """Lines where ``_`` is bound: assigned, a loop or comprehension target, ``except ... as _`` or
    ``import ... as _`` (the import of ganlib.i18n's ``_`` aside); top-level statements only, or all."""
    lines = []
    for statement in (tree.body if top_level_only else [tree]):
        if top_level_only and isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for node in ast.walk(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id == "_":
                lines.append(node.lineno)
            elif isinstance(node, ast.ExceptHandler) and node.name == "_":
                lines.append(node.lineno)
            elif isinstance(node, (ast.Import, ast.ImportFrom)) and "i18n" not in (getattr(node, "module", "") or ""):
                lines += [node.lineno for alias in node.names if (alias.asname or alias.name) == "_"]
    return lines


def test_code_that_translates_never_rebinds_underscore():
    # IPython binds _ to the last result unless the user did; a cell that assigns _ (e.g. "_, x = ...")
    # would replace the translation function for every later cell, and a function of a ganlib module
    # that assigns _ makes _ local there, so a _() call in it fails
    for notebook in sorted(BOOK.glob("*.ipynb")):
        cells = code_cells(notebook)
        if any("from ganlib.i18n import _" in cell for cell in cells):
            for i, cell in enumerate(cells):
                assert not binds_underscore(parse_cell(cell), True), f"{notebook.name}, code cell {i} binds _"
    for path in GANLIB.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(n, ast.ImportFrom) and (n.module or "").endswith("i18n") and any(a.name == "_" for a in n.names)
               for n in ast.walk(tree)):
            assert not binds_underscore(tree, False), f"{path.name}:{binds_underscore(tree, False)[0]} binds _"


def test_the_binding_check_sees_every_way_of_binding():
    for code in ("_, x = f()", "for _ in y: pass", "[1 for _ in y]", "try:\n    pass\nexcept E as _:\n    pass",
                 "import gettext as _"):
        assert binds_underscore(ast.parse(code), True), code
    assert not binds_underscore(ast.parse("from ganlib.i18n import _\ndef f():\n    _, x = g()"), True)
