"""FastJSONTranscoder writes exactly the bytes of the library's JSONTranscoder (and raises where it raises)."""

import datetime as dt
import decimal
import enum
import uuid
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder
from hypothesis import given
from hypothesis import strategies as st

from services.infra.recorder import FastJSONTranscoder


def transcoders() -> tuple[JSONTranscoder, FastJSONTranscoder]:
    app: Application[uuid.UUID] = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    lib, fast = JSONTranscoder(), FastJSONTranscoder()
    app.register_transcodings(lib)
    app.register_transcodings(fast)
    return lib, fast


LIB, FAST = transcoders()


def outcome(transcoder: JSONTranscoder, value: Any) -> Any:
    try:
        return transcoder.encode(value)
    except Exception as exc:  # noqa: BLE001
        return type(exc)


class Colour(str, enum.Enum):
    RED = "red"


def test_the_same_bytes_for_events_and_for_what_the_fast_path_leaves_to_the_library() -> None:
    now = dt.datetime.now(dt.UTC)
    values: list[Any] = [
        {"timestamp": now, "originator_topic": "domain.directory:Target",
         "data": {"credit_code": "91410724000000001J", "name": "获嘉县示例企业有限公司", "tags": ["a", "b"],
                  "active": True, "expiry": None},
         "_meta": {"actor": "x", "correlation_id": "c", "departments": ["hj-eeb", "hj-amr"]}},
        {"u": uuid.uuid4(), "d": decimal.Decimal("1.50"), "nested": [{"t": now}, (1, uuid.uuid4())]},
        {"float": 1.5}, {"nan": float("nan")}, {"enum": Colour.RED}, {1: "int key"}, {"big": 2**80},
        {"date": dt.date(2024, 1, 2)}, {"bytes": b"x"}, {"set": {1}}, {"s": "\x00\x1f\x7f\u2028\"\\ 中文 😀"},
        [1, "a", None, True, False], "plain", 7, None,
    ]
    for value in values:
        assert outcome(FAST, value) == outcome(LIB, value), value


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.datetimes(timezones=st.just(dt.UTC))
    | st.uuids() | st.floats(allow_nan=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(json_like)
def test_property_the_same_bytes_as_the_library(value: Any) -> None:
    assert outcome(FAST, value) == outcome(LIB, value)


def test_decoding_is_the_librarys() -> None:
    value = {"t": dt.datetime.now(dt.UTC), "u": uuid.uuid4(), "l": ["中文"]}
    assert FAST.decode(FAST.encode(value)) == LIB.decode(LIB.encode(value)) == value
