"""Plain-text tables aligned by display width (ganlib.chapters.tables)."""
import numpy as np
import pytest

from ganlib.chapters.tables import display_width, text_table


def test_display_width_counts_chinese_characters_twice():
    assert display_width("abc") == 3
    assert display_width("模式") == 4
    assert display_width("k = 1，模式 8") == 13  # the full-width comma is wide too


def test_columns_line_up_in_display_width_with_numbers_right_aligned():
    table = text_table(["模型", "k", "high-quality"], [("伯努利", 1, 0.5), ("Markov", np.int64(10), 0.25)],
                       ["", "", ".2f"])
    lines = table.splitlines()
    assert lines[1] == "------  --  ------------"
    assert lines[2] == "伯努利   1          0.50"   # the label padded to 6 columns, numbers flush right
    assert lines[3] == "Markov  10          0.25"
    assert len({display_width(line) for line in lines}) == 1


def test_a_row_of_the_wrong_length_is_refused_with_the_count():
    with pytest.raises(ValueError, match="3 entries"):
        text_table(["a", "b", "c"], [(1, 2)])
    with pytest.raises(ValueError, match="at least one row"):
        text_table(["a"], [])
