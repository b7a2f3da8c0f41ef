"""A published entropy value admits exactly one accepted spelling: a known kind's form matched in full, and for
another source one line without white space at either end (a trailing line break is not a second value)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.draw.entropy import check_draw_entropy
from domain.errors import InvalidInputError

LOTTERY = "福彩3D 2024年第100期开奖号码"
OTHER = "某市公证处2024年第3号摇号公证书编号"


def accepted(source: str, value: str) -> bool:
    try:
        check_draw_entropy(source, source, value)
    except InvalidInputError:
        return False
    return True


@given(st.text(max_size=6))
def test_a_lottery_value_is_accepted_only_as_three_ascii_digits(value: str) -> None:
    canonical = len(value) == 3 and all(c in "0123456789" for c in value)
    assert accepted(LOTTERY, value) == canonical


@pytest.mark.parametrize("spelling", ["581\n", "581\r\n", " 581", "581 ", "５８１", "5８1", "0581", "58"])
def test_the_reported_spellings_of_581_are_refused(spelling: str) -> None:
    assert accepted(LOTTERY, "581")
    with pytest.raises(InvalidInputError) as refused:
        check_draw_entropy(LOTTERY, LOTTERY, spelling)
    assert refused.value.problems[0].field == "external_entropy"


@given(st.text(min_size=1, max_size=20))
def test_another_source_takes_one_line_without_surrounding_space(value: str) -> None:
    if accepted(OTHER, value):
        assert value == value.strip() and "\n" not in value and "\t" not in value
        assert not accepted(OTHER, value + "\n") and not accepted(OTHER, " " + value)
