"""The execution read model's names from directory events in their stored form: decoding only the members it reads
(``_NamedOnly``) gives the names that decoding those members whole (``_Named``) gives, for any stored state."""

import json
import uuid
from typing import Any

import pytest
from eventsourcing.persistence import Notification
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.execution import projection as execution

_SCALAR = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=6)
_JSON = st.recursive(_SCALAR, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner,
                                                                                           max_size=2), max_leaves=5)
_NAMES = st.sampled_from(["name", "credit_code", "code", "department", "address", "industry"])
_OBJECT = st.dictionaries(_NAMES, _JSON, max_size=5)
_MEMBER = st.one_of(_OBJECT, _JSON)  # mostly objects, sometimes another shape (the careful decoder decides)
_META = st.one_of(st.fixed_dictionaries({"aggregate": st.sampled_from(["target", "item", "department", "task"])},
                                        optional={"actor": st.text(max_size=8), "owner": st.text(max_size=4)}), _JSON)


def _names(state: dict[str, Any], topic: str, version: int) -> dict[Any, Any]:
    names: dict[Any, Any] = {}
    n = Notification(id=1, originator_id=uuid.UUID(int=7), originator_version=version, topic=topic,
                     state=json.dumps(state, ensure_ascii=False).encode())
    execution.ExecutionProjection()._name_stored(names, n)
    return names


@settings(max_examples=150, deadline=None)
@given(data=_MEMBER, changes=_MEMBER, meta=_META, extra=_JSON, version=st.integers(1, 3),
       topic=st.sampled_from(["domain.directory:Department.Registered", "domain.directory:DirectoryEntry.DetailsUpdated",
                              "domain.directory:InspectionItem.Registered"]))
def test_the_names_of_a_stored_state_are_those_of_its_members_decoded_whole(
    data: Any, changes: Any, meta: Any, extra: Any, version: int, topic: str
) -> None:
    state = {"timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-02T00:00:00+00:00"}, "data": data,
             "changes": changes, "_meta": meta, "originator_topic": "domain.directory:Target", "other": extra}
    got = _names(state, topic, version)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(execution, "_READ_NAMED_ONLY", execution._READ_NAMED)
        wanted = _names(state, topic, version)
    assert got == wanted


def test_a_registered_item_gives_its_name_code_and_department_and_a_target_none() -> None:
    state = {"timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-02T00:00:00+00:00"},
             "data": {"name": "食品生产监督检查", "code": "SC-001", "department": "hj-amr", "category": "x"},
             "_meta": {"aggregate": "item", "actor": "x"}}
    (row,) = _names(state, "domain.directory:InspectionItem.Registered", 1).values()
    assert row["row"]["name"] == "食品生产监督检查" and row["row"]["code"] == "SC-001" and row["new"]
    assert json.loads(row["row"]["extra"]) == {"department": "hj-amr"}
    # A target's name is the directory read model's: this read model keeps none (queries.names reads it there).
    target = {**state, "data": {"name": "获嘉县某公司", "credit_code": "91410724000000001J"},
              "_meta": {"aggregate": "target"}}
    assert _names(target, "domain.directory:Target.Registered", 1) == {}
