"""Execute notebooks in the smoke profile: every full-profile code path at quick budgets.

``make test`` runs ``python tests/run_smoke.py NOTEBOOK...``. Each notebook runs with
``GANLIB_PROFILE=smoke`` and without its hidden cells (tag ``remove-cell``): those assert the
chapter's claims, which hold for the quick and full budgets, not for full-profile code at quick
budgets. Given several notebooks, two run at a time (``make test`` gives one per call and runs
its checks two at a time itself); any error fails the run, naming the notebook, the cell and the
exception.
"""
from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient

WORKERS = 2
TIMEOUT_S = 900  # per cell


def run(path: Path) -> tuple[Path, float, list[str]]:
    """Execute one notebook in the smoke profile; return its path, wall time and error lines."""
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if "remove-cell" not in c.get("metadata", {}).get("tags", [])]
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute(env={**os.environ, "GANLIB_PROFILE": "smoke"})
    except Exception as err:  # a kernel that died or timed out: report it like a cell error
        return path, time.perf_counter() - start, [f"{type(err).__name__}: {str(err)[:500]}"]
    errors = [f"cell {i}: {out.ename}: {out.evalue[:500]}" for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.output_type == "error"]
    return path, time.perf_counter() - start, errors


def main(paths: list[str]) -> int:
    if not paths:
        print("usage: python tests/run_smoke.py NOTEBOOK...", file=sys.stderr)
        return 2
    failed = False
    with ThreadPoolExecutor(WORKERS) as pool:
        for path, seconds, errors in pool.map(run, map(Path, paths)):
            print(f"{path}: {seconds:.0f} s (smoke profile){'' if not errors else ', FAILED'}", flush=True)
            for line in errors:
                print(f"    {line}", flush=True)
            failed |= bool(errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
