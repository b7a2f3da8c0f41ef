"""The audit leaf of a stored event (``domain.audit.leaf.record_leaf``) is SHA-256(0x00 || RFC 8785 bytes of its
envelope) for every stored form: its fast path (one ``translate`` to rule out what it cannot do, the decoded state
reused as the envelope's data) must agree with the careful, pure-Python RFC 8785 encoder on all inputs."""

import json
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.audit.canonical import _encode
from domain.audit.leaf import _fast_ok, envelope, record_leaf
from domain.audit.merkle import leaf_hash

_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)  # no lone surrogates: no JSON form
_keys = st.one_of(_text, st.sampled_from(["a", "é", "\U0001f600", "\uffff", "\ue000", "z" * 3, "timestamp_"]))
_ints = st.one_of(st.integers(-(2**53) + 1, 2**53 - 1), st.integers(-(10**20), 10**20), st.sampled_from(
    [2**53, -(2**53), 2**53 - 1, 10**15, 10**16, -(10**16), 0]))
_floats = st.floats(allow_nan=False, allow_infinity=False)
_scalars = st.one_of(st.none(), st.booleans(), _ints, _floats, _text)
_json = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=4)), max_leaves=12)

_FORMS = {
    "compact": {"separators": (",", ":"), "ensure_ascii": False},
    "ascii escapes": {"separators": (",", ":"), "ensure_ascii": True},
    "spaced": {"separators": (", ", ": "), "ensure_ascii": False},
    "indented": {"indent": 1, "ensure_ascii": False},
}


def _reference(position: int, oid: uuid.UUID, version: int, topic: str, state: bytes) -> bytes:
    return leaf_hash(_encode(envelope(position, oid, version, topic, state)).encode("utf-8"))


@settings(max_examples=400, deadline=None)
@given(
    data=st.dictionaries(_keys, _json, max_size=5),
    meta=st.one_of(st.none(), st.dictionaries(_keys, _scalars, max_size=3)),
    form=st.sampled_from(sorted(_FORMS)),
    position=st.integers(1, 2**40),
    version=st.one_of(st.integers(1, 10**6), st.sampled_from([2**53 - 1, 2**53, 2**60])),
    topic=st.sampled_from(["domain.directory:Target.Registered", "domain.x:Ä.Ünïcode"]),
    oid=st.uuids(),
)
def test_the_leaf_is_the_rfc8785_hash_of_the_envelope_whatever_the_stored_form(
    data: dict[str, Any], meta: dict[str, Any] | None, form: str, position: int, version: int, topic: str,
    oid: uuid.UUID,
) -> None:
    state: dict[str, Any] = {**data, "timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-02T03:04:05+00:00"}}
    if meta is not None:
        state["_meta"] = meta
    raw = json.dumps(state, **_FORMS[form]).encode("utf-8")  # type: ignore[arg-type]
    assert record_leaf(position, oid, version, topic, raw) == _reference(position, oid, version, topic, raw)


def test_what_the_fast_path_leaves_to_the_careful_one() -> None:
    assert _fast_ok(b'{"a":"b","n":123456789012345,"t":"2026-01-02"}')
    assert not _fast_ok(b'{"n":1234567890123456}')  # may be beyond 2^53
    assert not _fast_ok(b'{"n": -1234567890123456}')
    assert not _fast_ok(b'{"n":[1,\n1234567890123456]}')
    assert not _fast_ok(b'{"n":[-1234567890123456]}')
    assert not _fast_ok(b'{"n":-1234567890123456}')
    assert _fast_ok(b'{"a\\"b":"c\\\\d","n":-123456789012345}')  # escapes other than \u are canonical here
    assert not _fast_ok(b'{"a":"\\u00e9"}')  # an escape may spell a surrogate or a name's order
    assert not _fast_ok('{"\U0001f600":1}'.encode())  # sorts differently by UTF-16 code units
    assert _fast_ok('{"é":"中文"}'.encode())  # below U+D800: code-point order is UTF-16 order
    assert _fast_ok('{"name":"获嘉县某（有限合伙）企业","\ue000":"\uffff"}'.encode())  # BMP: the same order both ways


def test_a_state_that_is_not_an_event_has_no_leaf() -> None:
    import pytest

    from domain.audit.canonical import CanonicalFormError

    for raw in (b"[1,2]", b'{"a":1}', b'{"timestamp":{"_type_":"datetime_iso","_data_":1}}', b"not json"):
        with pytest.raises(CanonicalFormError):
            record_leaf(1, uuid.uuid4(), 1, "t", raw)


@settings(max_examples=200, deadline=None)
@given(oid=st.uuids(), form=st.sampled_from(["uuid", "text", "upper", "hex", "bytes"]))
def test_the_leaf_is_the_same_whatever_form_the_aggregate_id_is_read_in(oid: uuid.UUID, form: str) -> None:
    """The runner reads ids as canonical text on PostgreSQL, as UUIDs elsewhere; other stores may give hex."""
    state = json.dumps({"timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-02T03:04:05+00:00"},
                        "data": {"name": "获嘉"}, "_meta": {"aggregate": "target"}}).encode()
    given_id: Any = {"uuid": oid, "text": str(oid), "upper": str(oid).upper(), "hex": oid.hex,
                     "bytes": oid.bytes}[form]
    assert record_leaf(7, given_id, 1, "t", state) == record_leaf(7, oid, 1, "t", state)
    assert envelope(7, given_id, 1, "t", state)["aggregate_id"] == str(oid)
