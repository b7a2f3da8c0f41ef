"""A published entropy value admits exactly one accepted spelling: a known kind's form matched in full (a source
naming a known lottery under another name is that kind), and for another source a value without any white space
or compatibility character (a trailing line break, inner spaces or fullwidth digits are not other values)."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.draw.entropy import check_draw_entropy, source_kind
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
def test_another_source_takes_a_value_without_white_space_or_compatibility_characters(value: str) -> None:
    if accepted(OTHER, value):
        assert not any(c.isspace() for c in value) and unicodedata.normalize("NFKC", value) == value
        assert not accepted(OTHER, value + "\n") and not accepted(OTHER, " " + value)
        assert len(value) < 2 or not accepted(OTHER, value[0] + " " + value[1:])


@pytest.mark.parametrize(("source", "kind"), [
    ("福彩3D 2024年第300期开奖号码", "福彩3D"),
    ("中国福利彩票3D游戏 2024年第300期开奖号码", "福彩3D"),  # an outside tester's way around the one form
    ("福利彩票３Ｄ 2024300", "福彩3D"),
    ("体彩排列 五 第24300期", "排列5"),
    ("体育彩票排列三 2024300", "排列3"),
    ("League of Entropy DRAND round 4200000", "drand"),
    ("NIST beacon 2023 Dec 5 12:00 UTC", None),
    (OTHER, None),
])
def test_a_source_naming_a_known_kind_anywhere_is_that_kind(source: str, kind: str | None) -> None:
    assert source_kind(source) == kind


def test_a_known_lottery_under_another_name_takes_only_its_one_form() -> None:
    renamed = "中国福利彩票3D游戏 2024年第300期开奖号码"
    assert accepted(renamed, "260")
    for spelling in ("2 6 0", "2-6-0", "２６０", "260\n"):
        assert not accepted(renamed, spelling)
