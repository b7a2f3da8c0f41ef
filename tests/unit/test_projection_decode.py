"""The projections' decoder (projections.decode) gives the objects the application's mapper gives, for any
event state, and hands what it does not handle to the mapper."""

import datetime as dt
import decimal
import uuid
from typing import Any

from eventsourcing.persistence import Mapper, Notification
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.directory import Target
from projections.decode import fast_decoder
from services.infra.recorder import FastJSONTranscoder

OID = uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")


def _mapper() -> Mapper[Any]:
    from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, UUIDAsHex

    transcoder = FastJSONTranscoder()
    for t in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(t)
    return Mapper(transcoder=transcoder)


MAPPER = _mapper()
FAST = fast_decoder(MAPPER)


def _same(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    assert list(vars(a)) == list(vars(b))
    assert vars(a) == vars(b)
    for key in vars(a):  # equal is not enough: 1 == 1.0 == True
        assert type(vars(a)[key]) is type(vars(b)[key])


def _notification(state: bytes, topic: str = "domain.directory:Target.Tagged", version: int = 3) -> Notification:
    return Notification(id=7, originator_id=OID, originator_version=version, topic=topic, state=state)


def test_a_stored_event_decodes_to_the_mappers_object() -> None:
    target = Target(data={"credit_code": "91410724000000001J", "name": "获嘉", "tags": ["a"], "n": 2, "x": None})
    target._tag("双随机重点")
    target._update_details({"address": "城关镇 \"1\" 号\n", "nested": {"a": [1, {"b": True}]}})
    for event in target.collect_events():
        stored = MAPPER.to_stored_event(event)
        n = Notification(id=1, originator_id=stored.originator_id, originator_version=stored.originator_version,
                         topic=stored.topic, state=stored.state)
        _same(FAST(n), MAPPER.to_domain_event(n))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300)
@given(body=st.dictionaries(st.text(max_size=8).filter(lambda k: k not in {"timestamp"}), json_values, max_size=5),
       extra=st.sampled_from([None, dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), OID,
                              decimal.Decimal("1.50")]))
def test_any_state_decodes_as_the_mapper_decodes_it(body: dict[str, Any], extra: Any) -> None:
    state = {"timestamp": dt.datetime(2025, 1, 1, tzinfo=dt.UTC), **body}
    if extra is not None:  # a second wrapper (nested): the mapper's path
        state["extra"] = {"inner": extra}
    n = _notification(MAPPER.transcoder.encode(state))
    _same(FAST(n), MAPPER.to_domain_event(n))


def test_what_the_fast_path_does_not_take_goes_to_the_mapper() -> None:
    ts = b'{"_type_":"datetime_iso","_data_":"2025-01-01T00:00:00+00:00"}'
    for state in (
        b'{"timestamp":' + ts + b',"tag":"\\u005ftype_"}',  # an escape
        b'{"timestamp":' + ts + b',"tag":NaN}',  # not msgspec's JSON
        b'{"timestamp":' + ts + b',"tag":1e400}',  # beyond a double
        b'{"timestamp":' + ts + b',"tag":"a","tag":"b"}',  # a repeated name
        b'{"tag":' + ts + b',"timestamp":"2025"}',  # the wrapper elsewhere
    ):
        n = _notification(state)
        try:
            expected = MAPPER.to_domain_event(n)
        except Exception as exc:  # noqa: BLE001 - the same error either way
            try:
                FAST(n)
            except Exception as got:  # noqa: BLE001
                assert type(got) is type(exc)
            else:
                raise AssertionError(f"{state!r}: the mapper raised {exc!r}, the fast path did not") from None
        else:
            _same(FAST(n), expected)
