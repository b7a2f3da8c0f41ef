"""One rule for every text that enters (``domain.text``), here through the directory's fields."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.directory import KINDS
from domain.errors import InvalidInputError
from domain.text import control_character, normalise_newlines

TARGET = KINDS["target"].SPEC
REFUSED = [chr(c) for c in range(32) if c not in (9, 10, 13)]


@given(st.text(max_size=40))
def test_text_is_accepted_clean_or_refused_naming_the_field(text: str) -> None:
    try:
        out = TARGET.validate({"address": text}, partial=True)
    except InvalidInputError as err:
        assert [(p.field, p.rule) for p in err.problems] in ([("address", "control_character")],
                                                             [("address", "max_length")])
        return
    stored = out.get("address") or ""
    assert not any(c in stored for c in REFUSED) and "\r" not in stored


@given(st.text(max_size=10), st.sampled_from(REFUSED), st.text(max_size=10))
def test_every_c0_control_but_tab_and_line_feed_is_refused(a: str, bad: str, b: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        TARGET.validate({"name": f"获嘉{a}{bad}{b}公司"}, partial=True)
    assert any(p.field == "name" and p.rule == "control_character" for p in err.value.problems)


def test_a_nul_in_a_name_or_a_tag_is_refused() -> None:
    with pytest.raises(InvalidInputError) as err:
        TARGET.validate({"name": "获嘉\x00公司", "tags": ["a\x00b"]}, partial=True)
    assert {(p.field, p.rule) for p in err.value.problems} == {("name", "control_character"), ("tags", "control_character")}
    assert "U+0000" in err.value.problems[0].message


def test_tab_and_line_feed_are_kept_and_a_carriage_return_becomes_a_line_feed() -> None:
    out = TARGET.validate({"address": "获嘉县\t太山乡\r\n一号\r二号"}, partial=True)
    assert out["address"] == "获嘉县\t太山乡\n一号\n二号"
    assert control_character(normalise_newlines("a\r\nb")) is None
