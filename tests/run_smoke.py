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
are not literals (``by_profile(**budget)``), keeps the notebook here, and so does any other
touch of the profile (:func:`smoke_changes_code` lists them): the rule errs towards running.

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


PROFILE_NAMES = {"by_profile", "profile"}  # what reads the active profile (besides GANLIB_PROFILE)


def _same(a, b) -> bool:
    """Equal and of the same types throughout (``True == 1`` is a different choice here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _is_label(call: ast.Call, parents: dict) -> bool:
    """Whether a ``profile()`` call only names the profile in text: a direct argument of ``print``,
    or a field of an f-string that is one, or an element or key of a literal tuple, list or dict
    (a label in a table of results). An f-string assigned or passed anywhere else (a path, say)
    is not a label."""
    node = parents.get(call)
    if isinstance(node, ast.FormattedValue):
        node = parents.get(parents.get(node))  # FormattedValue -> JoinedStr -> its user
        child = parents.get(parents.get(call))
    else:
        child = call
    if isinstance(node, ast.Call) and _called_name(node) == "print" and child in node.args:
        return True
    return isinstance(node, (ast.Tuple, ast.List)) or (isinstance(node, ast.Dict) and child in node.keys)


def smoke_changes_code(sources: list[str]) -> str | None:
    """Why the smoke profile may run other code than the quick profile for these cells, or ``None``.

    ``None`` means: every ``by_profile`` call has literal arguments for which
    ``smoke_value(quick, full)`` is ``quick`` (same values, same types); every ``profile()`` call
    only labels text; and nothing else touches the profile (no other use of these names, no alias
    of them, no string naming ``GANLIB_PROFILE``). Anything this cannot read keeps the notebook in
    the smoke run.
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
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and "GANLIB_PROFILE" in node.value
                    and not isinstance(parents.get(node), ast.Expr)):  # a docstring reads nothing
                return "a string names GANLIB_PROFILE"
            if (isinstance(node, ast.alias) and node.asname
                    and node.name.split(".")[-1] in PROFILE_NAMES | {"ganlib", "env"}):
                return f"`{node.name}` is imported under another name"
            if isinstance(node, ast.Name):
                name = node.id
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("ganlib", "env"):
                name = node.attr  # ganlib.by_profile, env.profile; args.profile is something else
            else:
                continue
            if name not in PROFILE_NAMES:
                continue
            call = parents.get(node)
            if not (isinstance(call, ast.Call) and call.func is node) or name not in ("by_profile", "profile"):
                return f"`{ast.unparse(node)}` is used otherwise than in a call this check reads"
            if name == "profile":
                if not _is_label(call, parents):
                    return f"`{ast.unparse(call)}` may steer code, not only label text"
                continue
            try:
                args = dict(zip(("quick", "full"), map(_literal, call.args)))
                args.update({kw.arg: _literal(kw.value) for kw in call.keywords})
                same = _same(smoke_value(args["quick"], args["full"]), args["quick"])
            except (ValueError, TypeError, KeyError, SyntaxError):
                return f"`{ast.unparse(call)}` has arguments that are not literals"
            if not same:
                return f"`{ast.unparse(call)}` takes its choice from the full profile"
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
                  "(every by_profile choice is a number)", flush=True)
            continue
        seconds, errors = run(path)
        print(f"{path}: {seconds:.0f} s (smoke profile: {reason}){'' if not errors else ', FAILED'}", flush=True)
        for line in errors:
            print(f"    {line}", flush=True)
        failed |= bool(errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
