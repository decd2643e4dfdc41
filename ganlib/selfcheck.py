"""Self-checks for the book's exercises: call one with your answer and it tells you if you are right.

Each function prints a one-line verdict and returns ``True`` or ``False``, so a reader can use it
interactively and a test can assert on it. Sections follow the chapters.
"""
from __future__ import annotations

import math


def _verdict(ok: bool, right: str, wrong: str) -> bool:
    """Print the verdict for an answer and return whether it was right."""
    print(("Correct: " + right) if ok else ("Not yet: " + wrong))
    return ok


def _close(answer: float, expected: float, rel: float = 1e-3, abs_: float = 1e-6) -> bool:
    try:
        return math.isclose(float(answer), expected, rel_tol=rel, abs_tol=abs_)
    except (TypeError, ValueError):
        return False
