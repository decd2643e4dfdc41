"""The package's shape: the command line at the edge, small classes, each fact defined once."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ganlib"
MODULES = {path: ast.parse(path.read_text()) for path in sorted(PACKAGE.rglob("*.py"))}


def test_no_module_but_the_command_line_imports_it():
    for path, tree in MODULES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and path.name != "__main__.py":
                assert node.module is None or not node.module.endswith("__main__"), path


def test_no_class_is_over_170_lines():
    for path, tree in MODULES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                length = node.end_lineno - node.lineno + 1
                assert length <= 170, f"{path.relative_to(PACKAGE.parent)}: class {node.name} has {length} lines"


def test_the_results_folder_is_defined_once():
    defined = [path.relative_to(PACKAGE.parent) for path, tree in MODULES.items() for node in tree.body
               if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "RESULTS_DIR" for t in node.targets)]
    assert [str(p) for p in defined] == ["ganlib/env.py"]


def test_own_modules_are_imported_at_the_top():
    local = []
    for path, tree in MODULES.items():
        for func in ast.walk(tree):
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                local += [f"{path.relative_to(PACKAGE.parent)}:{node.lineno}" for node in ast.walk(func)
                          if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("ganlib"))]
    assert local == []
