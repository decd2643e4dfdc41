"""The profile switch: quick, full, and the smoke setting that runs full-profile code at quick budgets."""
import pytest

import ganlib
from ganlib.env import smoke_value


@pytest.mark.parametrize("name, expected", [("quick", 300), ("full", 20_000), ("smoke", 300)])
def test_by_profile_picks_the_active_profile(monkeypatch, name, expected):
    monkeypatch.setenv("GANLIB_PROFILE", name)
    assert ganlib.profile() == name
    assert ganlib.by_profile(quick=300, full=20_000) == expected


def test_smoke_takes_budgets_from_quick_and_code_paths_from_full():
    assert smoke_value((0,), (0, 1, 2)) == (0,)                      # seeds: a budget
    assert smoke_value([1, 10, 100], [1, 10, 100, 5000]) == [1, 10, 100]
    assert smoke_value(("minimax",), ("minimax", "nonsaturating")) == ("minimax", "nonsaturating")
    assert smoke_value(["real + generated"], ["real only", "real + generated"]) == ["real only", "real + generated"]
    assert smoke_value(dict(n=600, n_kept=10_000), dict(n=2000, n_kept=None)) == dict(n=600, n_kept=None)
    assert smoke_value((5000, 250), (60_000, 3000)) == (5000, 250)
    assert smoke_value(True, False) is False                           # a switch is a code path, not a budget


def test_an_unknown_profile_names_the_choices(monkeypatch):
    monkeypatch.setenv("GANLIB_PROFILE", "fast")
    with pytest.raises(ValueError, match=r"'quick', 'full', 'smoke'"):
        ganlib.profile()
