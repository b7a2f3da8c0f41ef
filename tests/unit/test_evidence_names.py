"""Evidence file names: one rule for uploads and for references in findings (``file_name_problem``)."""

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from domain.errors import FieldProblem
from domain.execution.evidence import file_name_problem, validate_ref

UNSAFE = [chr(c) for c in range(0x20)] + ["\x7f", "\x85", "\u200e", "\u200f", "\u202a", "\u202b", "\u202c",
                                          "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "/", "\\"]
REF = {"sha256": "a" * 64, "size": 10, "media_type": "image/jpeg"}


@given(st.text(min_size=1, max_size=300))
def test_an_accepted_name_is_safe_to_show_and_to_save(name: str) -> None:
    if file_name_problem(name) is None:
        text = name.strip()
        assert 1 <= len(text) <= 255 and text not in {".", ".."}
        assert not any(c in text for c in UNSAFE)
        assert all(unicodedata.category(c) != "Cc" for c in text)


@given(st.text(max_size=20), st.sampled_from(UNSAFE), st.text(max_size=20))
def test_a_name_with_a_control_direction_or_separator_character_is_refused(a: str, bad: str, b: str) -> None:
    assert file_name_problem(f"x{a}{bad}{b}x.jpg") is not None


def test_dot_names_are_refused_and_ordinary_chinese_names_kept() -> None:
    assert file_name_problem(".") and file_name_problem("..") and file_name_problem("   ")
    assert file_name_problem("现场照片（1）.jpg") is None


def test_a_reference_in_findings_follows_the_same_rule() -> None:
    problems: list[FieldProblem] = []
    assert validate_ref({**REF, "name": "照片\u202egpj.exe"}, "evidence[0]", problems) is None
    assert [(p.field, p.rule) for p in problems] == [("evidence[0].name", "format")]
    assert validate_ref({**REF, "name": " 照片.jpg "}, "evidence[0]", []) == {**REF, "name": "照片.jpg"}
