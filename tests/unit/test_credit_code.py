"""GB 32100-2015 check character: known codes, and properties over all inputs."""

from hypothesis import given
from hypothesis import strategies as st

from domain.credit_code import ALPHABET, check_character, credit_code_error

# Published codes of real organisations (public registers).
KNOWN_VALID = ["91350100M000100Y43", "91110000600037341L", "91440300708461136T"]


def test_known_published_codes_are_valid() -> None:
    for code in KNOWN_VALID:
        assert credit_code_error(code) is None, code


def test_a_wrong_check_character_is_named_with_the_expected_one() -> None:
    rule, message = credit_code_error("91350100M000100Y44")  # type: ignore[misc]
    assert rule == "check_digit"
    assert "'3'" in message


def test_length_and_alphabet_are_checked_first() -> None:
    assert credit_code_error("9135")[0] == "length"  # type: ignore[index]
    assert credit_code_error("91350100M000100YI3")[0] == "alphabet"  # type: ignore[index]


body = st.text(alphabet=ALPHABET, min_size=9, max_size=9)
division = st.text(alphabet="0123456789", min_size=6, max_size=6)


@given(reg=st.sampled_from("159ANY"), kind=st.sampled_from("1239"), div=division, org=body)
def test_every_code_built_with_its_check_character_is_valid(reg: str, kind: str, div: str, org: str) -> None:
    first17 = reg + kind + div + org
    assert credit_code_error(first17 + check_character(first17)) is None


@given(reg=st.sampled_from("159ANY"), div=division, org=body, pos=st.integers(0, 16), data=st.data())
def test_changing_any_single_character_is_detected(reg: str, div: str, org: str, pos: int, data: st.DataObject) -> None:
    first17 = reg + "1" + div + org
    code = first17 + check_character(first17)
    replacement = data.draw(st.sampled_from([c for c in ALPHABET if c != code[pos]]))
    changed = code[:pos] + replacement + code[pos + 1 :]
    assert credit_code_error(changed) is not None
