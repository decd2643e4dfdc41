"""ganlib's own source on a chapter's page, so that the code a page teaches is the code that runs.

``source(DCGANGenerator)`` returns the class's source as a fenced Python block. Jupyter, Colab and
the book's site (myst-nb renders ``text/markdown`` outputs) all show it highlighted, and since
it is read from the installed package when the cell runs, page and package cannot disagree.
"""
from __future__ import annotations

import ast
import inspect
import textwrap


class SourceCode:
    """Source text that notebooks display as a highlighted Python block (``_repr_markdown_``)."""

    def __init__(self, text: str):
        self.text = text

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.text}\n```"

    def __str__(self) -> str:
        return self.text


def _without_docstrings(text: str) -> str:
    """``text`` (Python source) without the docstrings of its classes and functions."""
    tree = ast.parse(text)
    drop = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and ast.get_docstring(node):
            doc = node.body[0]
            drop.update(range(doc.lineno - 1, doc.end_lineno))
    return "\n".join(line for i, line in enumerate(text.splitlines()) if i not in drop)


def source(*objects, docstrings: bool = True) -> SourceCode:
    """The source of classes, functions or methods, one after another, as they are installed.

    Args:
        objects: what to show, e.g. ``models.DCGANGenerator`` or ``GANTrainer.gan_step``.
        docstrings: keep the docstrings (``False`` shows only the code).
    """
    if not objects:
        raise ValueError("source() needs at least one class, function or method, e.g. source(models.DCGANGenerator)")
    parts = []
    for obj in objects:
        try:
            text = textwrap.dedent(inspect.getsource(obj))
        except TypeError:
            raise TypeError(f"source() shows classes, functions and methods; got {type(obj).__name__}") from None
        parts.append(text.rstrip() if docstrings else _without_docstrings(text).rstrip())
    return SourceCode("\n\n".join(parts))
