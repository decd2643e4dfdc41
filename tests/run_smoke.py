"""Execute notebooks in the smoke profile: every full-profile code path at quick budgets.

``make test`` runs ``python tests/run_smoke.py NOTEBOOK...``. Each notebook runs with
``GANLIB_PROFILE=smoke`` and without its hidden cells (tag ``remove-cell``): those assert the
chapter's claims, which hold for the quick and full budgets, not for full-profile code at quick
budgets. Any error fails the run, naming the notebook, the cell and the exception.

A notebook runs here only if the smoke profile changes its code. The profiles differ only in what
``ganlib.by_profile`` returns, and the smoke profile takes every number from the quick profile
(:func:`ganlib.env.smoke_value`). A notebook whose every ``by_profile`` call chooses between two
literal numbers (or tuples of numbers) therefore runs the same code in both, and ``make test``
has just run it in the quick profile under nbval: :func:`smoke_changes_code` says so and the
notebook is skipped, by name. A call that chooses arms, losses or ``None``, or whose arguments
are not literals (``by_profile(**budget)``), keeps the notebook here, and so does any
``ganlib.profile()`` call outside a printed label.

The notebooks run one at a time: two kernels on a 2-core machine each take both cores, and each
ran 3-8 times slower than alone.
"""
from __future__ import annotations

import ast
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from ganlib.env import smoke_value

TIMEOUT_S = 900  # per cell


def shown_code_cells(nb) -> list[str]:
    """The sources of the code cells that the smoke profile runs (hidden cells are dropped)."""
    return [c.source for c in nb.cells
            if c.cell_type == "code" and "remove-cell" not in c.get("metadata", {}).get("tags", [])]


def _called_name(call: ast.Call) -> str | None:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)


def _literal(node: ast.AST):
    """The value of a literal, including ``dict(key=literal, ...)``; ``ValueError`` otherwise."""
    if isinstance(node, ast.Call) and _called_name(node) == "dict" and not node.args:
        if any(kw.arg is None for kw in node.keywords):  # dict(**other)
            raise ValueError("dict(**...) is not a literal")
        return {kw.arg: _literal(kw.value) for kw in node.keywords}
    return ast.literal_eval(node)


def _in_label(node: ast.AST, parents: dict) -> bool:
    """Whether ``node`` only feeds text: it sits inside an f-string or the arguments of ``print``."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Call) and _called_name(node) == "print"):
            return True
    return False


def smoke_changes_code(sources: list[str]) -> str | None:
    """Why the smoke profile runs other code than the quick profile for these cells, or ``None``.

    ``None`` means every ``by_profile`` call has literal arguments for which
    ``smoke_value(quick, full) == quick``, and every ``profile()`` call only labels printed text.
    """
    for source in sources:
        # IPython magics and shell lines are not Python; they never read the profile
        code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(code)
        except SyntaxError:
            return "a cell is not plain Python, so its code paths cannot be read"
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _called_name(node)
            if name == "profile" and not _in_label(node, parents):
                return f"`{ast.unparse(node)}` steers code, not only a label"
            if name != "by_profile":
                continue
            try:
                args = dict(zip(("quick", "full"), map(_literal, node.args)))
                args.update({kw.arg: _literal(kw.value) for kw in node.keywords})
                same = smoke_value(args["quick"], args["full"]) == args["quick"]
            except (ValueError, TypeError, KeyError, SyntaxError):
                return f"`{ast.unparse(node)}` has arguments that are not literals"
            if not same:
                return f"`{ast.unparse(node)}` takes its choice from the full profile"
    return None


def run(path: Path) -> tuple[float, list[str]]:
    """Execute one notebook in the smoke profile; return its wall time and error lines."""
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if "remove-cell" not in c.get("metadata", {}).get("tags", [])]
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute(env={**os.environ, "GANLIB_PROFILE": "smoke"})
    except Exception as err:  # a kernel that died or timed out: report it like a cell error
        return time.perf_counter() - start, [f"{type(err).__name__}: {str(err)[:500]}"]
    errors = [f"cell {i}: {out.ename}: {out.evalue[:500]}" for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.output_type == "error"]
    return time.perf_counter() - start, errors


def main(paths: list[str]) -> int:
    if not paths:
        print("usage: python tests/run_smoke.py NOTEBOOK...", file=sys.stderr)
        return 2
    failed = False
    for path in map(Path, paths):
        reason = smoke_changes_code(shown_code_cells(nbformat.read(path, as_version=4)))
        if reason is None:
            print(f"{path}: skipped, the smoke profile runs the quick profile's code here "
                  "(every by_profile choice is a number), and nbval has just run that", flush=True)
            continue
        seconds, errors = run(path)
        print(f"{path}: {seconds:.0f} s (smoke profile: {reason}){'' if not errors else ', FAILED'}", flush=True)
        for line in errors:
            print(f"    {line}", flush=True)
        failed |= bool(errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
