"""Which notebooks ``tests/run_smoke.py`` runs: those whose code the smoke profile changes."""
import ast
from pathlib import Path

import pytest

from run_smoke import smoke_changes_code

GANLIB = Path(__file__).resolve().parents[1] / "ganlib"


@pytest.mark.parametrize("cell", [
    "steps = ganlib.by_profile(quick=300, full=2000)",
    "seeds = ganlib.by_profile(quick=(0,), full=(0, 1, 2))",
    "n, k = by_profile((5000, 250), (60_000, 3000))",
    "print('profile:', ganlib.profile())",
    "rows = [('quick', f'this run ({ganlib.profile()} profile)')]",
    "print(f'profile {ganlib.profile()}')",
    "%matplotlib inline\nx = ganlib.by_profile(quick=1.0, full=2.0)",
])
def test_numeric_choices_and_labels_leave_the_code_as_in_the_quick_profile(cell):
    assert smoke_changes_code([cell]) is None


@pytest.mark.parametrize("cell, words", [
    ("arms = ganlib.by_profile(quick=['a'], full=['a', 'b'])", "takes its choice from the full profile"),
    ("cfg = ganlib.by_profile(quick=dict(n=6, kept=10), full=dict(n=20, kept=None))", "from the full profile"),
    ("x = ganlib.by_profile(quick=False, full=True)", "from the full profile"),
    ("x = ganlib.by_profile(**budget)", "not literals"),
    ("x = ganlib.by_profile(quick=n, full=2 * n)", "not literals"),
    ("if ganlib.profile() == 'full':\n    train_more()", "steer code"),
    ("ckpt = f'runs/{ganlib.profile()}.pt'", "steer code"),
    ("print(train(mode=ganlib.profile()))", "steer code"),
    ("pick = ganlib.by_profile\npick(['a'], ['a', 'b'])", "otherwise than in a call"),
    ("from ganlib import by_profile as bp", "another name"),
    ("import ganlib.env as e\ne.profile()", "another name"),
    ("import os\nfast = os.environ['GANLIB_PROFILE'] == 'smoke'", "names GANLIB_PROFILE"),
    ("x = ganlib.by_profile(quick=1, full=True)", "from the full profile"),
])
def test_choices_of_code_paths_keep_a_notebook_in_the_smoke_run(cell, words):
    assert words in smoke_changes_code(["import ganlib", cell])


def test_ganlib_itself_chooses_only_budgets_by_profile():
    """The skip is sound only if ganlib's own profile choices are numbers: check every one."""
    sources = [p.read_text() for p in GANLIB.rglob("*.py") if p.name != "env.py"]
    assert any("by_profile(" in s for s in sources)  # the check below reads real calls
    assert smoke_changes_code(sources) is None
