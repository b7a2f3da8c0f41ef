"""RFC 8785 (JCS): the RFC's examples, the reference implementation's test data, and the fast path agreeing
with the general encoder."""

import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.audit.canonical import CanonicalFormError, _encode, canonicalize

# RFC 8785 Appendix B: IEEE 754 doubles and their canonical text.
APPENDIX_B = [
    ("0000000000000000", "0"), ("8000000000000000", "0"), ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"), ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"), ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"), ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"), ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"), ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"), ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"), ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"), ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"), ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"), ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]

# cyberphone/json-canonicalization testdata (input -> output), the RFC author's reference implementation.
REFERENCE = [
    ('[56,{"d":true,"10":null,"1":[]}]', '[56,{"1":[],"10":null,"d":true}]'),  # arrays
    ('{"peach":"This sorting order","péché":"is wrong according to French","pêche":"but canonicalization MUST",'
     '"sin":"ingnore locale"}',
     '{"peach":"This sorting order","péché":"is wrong according to French","pêche":"but canonicalization MUST",'
     '"sin":"ingnore locale"}'),  # french
    ('{"1":{"f":{"f":"hi","F":5},"\\n":56.0},"10":{},"":"empty","a":{},"111":[{}],"A":{}}',
     '{"":"empty","1":{"\\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}}'),  # structures
    ('{"Unnormalized Unicode":"\\u1e0d\\u0307"}', '{"Unnormalized Unicode":"\u1e0d\u0307"}'),  # unicode
    ('{"numbers":[1E30,4.50,333333333.33333329,2e-3,0.000000000000000000000000001],'
     '"escaping":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
     '{"escaping":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/","literals":[null,true,false],'
     '"numbers":[1e+30,4.5,333333333.3333333,0.002,1e-27]}'),  # values
    ('{"\\u20ac":"Euro Sign","1":"One","\\u0080":"Control\\u007f","\\ud83d\\ude02":"Smiley",'
     '"\\u00f6":"Latin Small Letter O With Diaeresis","\\ufb33":"Hebrew Letter Dalet With Dagesh",'
     '"</script>":"Browser Challenge"}',
     '{"1":"One","</script>":"Browser Challenge","\u0080":"Control\u007f","ö":"Latin Small Letter O With Diaeresis",'
     '"\u20ac":"Euro Sign","\U0001f602":"Smiley","\ufb33":"Hebrew Letter Dalet With Dagesh"}'),  # weird: UTF-16 order
]


@pytest.mark.parametrize(("bits", "text"), APPENDIX_B)
def test_numbers_are_written_as_rfc_8785_appendix_b_says(bits: str, text: str) -> None:
    value = struct.unpack(">d", bytes.fromhex(bits))[0]
    assert canonicalize(value) == text.encode()
    assert canonicalize({"n": value}) == b'{"n":' + text.encode() + b"}"


def test_the_rfc_section_3_2_2_example_gives_its_bytes() -> None:
    given_text = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}'
    )
    expected_hex = (
        "7b 22 6c 69 74 65 72 61 6c 73 22 3a 5b 6e 75 6c 6c 2c 74 72 75 65 2c 66 61 6c 73 65 5d 2c 22 6e 75 6d 62"
        " 65 72 73 22 3a 5b 33 33 33 33 33 33 33 33 33 2e 33 33 33 33 33 33 33 2c 31 65 2b 33 30 2c 34 2e 35 2c 30"
        " 2e 30 30 32 2c 31 65 2d 32 37 5d 2c 22 73 74 72 69 6e 67 22 3a 22 e2 82 ac 24 5c 75 30 30 30 66 5c 6e 41"
        " 27 42 5c 22 5c 5c 5c 5c 5c 22 2f 22 7d"
    )
    assert canonicalize(json.loads(given_text)) == bytes.fromhex(expected_hex)


@pytest.mark.parametrize(("given_text", "expected"), REFERENCE)
def test_the_reference_implementation_test_data_canonicalises_alike(given_text: str, expected: str) -> None:
    assert canonicalize(json.loads(given_text)) == expected.encode("utf-8")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), {"a": float("-inf")}, "\ud800", {1: "x"}, {"a": {1, 2}}, 2**1100])
def test_values_without_a_canonical_form_are_refused(bad: object) -> None:
    with pytest.raises(CanonicalFormError):
        canonicalize(bad)


def test_large_integers_are_written_as_the_double_they_become() -> None:
    assert canonicalize(2**53) == b"9007199254740992"
    assert canonicalize(10**21) == b"1e+21"
    assert canonicalize(-(2**60)) == b"-1152921504606847000"  # the shortest digits of that double


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"]), max_size=6), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_the_fast_path_and_the_general_encoder_agree_and_the_output_is_json_of_the_same_value(value: object) -> None:
    out = canonicalize(value)
    assert out == _encode(value).encode("utf-8")
    assert canonicalize(json.loads(out)) == out  # idempotent
    assert b" " not in out.replace(b'" "', b"") or isinstance(value, (str, dict, list))
