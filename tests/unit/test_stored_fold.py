"""Folding a directory aggregate's events from their stored form (``projections.decode.stored_step``, what the
directory read model does) gives the aggregate the domain gives, for any sequence of changes."""

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from eventsourcing.domain import CanMutateAggregate, OriginatorVersionError
from eventsourcing.utils import get_topic, resolve_topic
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.directory import Inspector, Target
from projections.decode import plain_state_check, stored_decoder, stored_step
from projections.directory.projection import DirectoryProjection
from tests.support.builders import a_target, an_inspector
from tests.unit.test_projection_decode import MAPPER

# Text a field accepts (domain.text): no C0 control character but tab and line feed, no carriage return.
_ACCEPTED = st.characters(codec="utf-8", exclude_characters=[chr(c) for c in range(32) if c not in (9, 10)])

STATUS = st.sampled_from(["active", "closed", "deregistered"])
TAGS = st.lists(st.sampled_from(["双随机重点", "信用", "食品", "危化"]), unique=True, max_size=3)
TARGET_CHANGES = st.lists(st.one_of(
    st.fixed_dictionaries({"risk_class": st.sampled_from(["A", "B", "C", "D"])}),
    st.fixed_dictionaries({"supervision_class": st.sampled_from(["key", "general", "special"])}),
    st.fixed_dictionaries({"tags": TAGS}),
    st.fixed_dictionaries({"status": STATUS}),
    st.fixed_dictionaries({"name": st.text(_ACCEPTED, min_size=1, max_size=20).filter(str.strip),
                           "industry": st.text(_ACCEPTED, max_size=8)}),
), max_size=8)


def members_of(step: Callable[..., Any]) -> Any:
    """The state members a step reads: ``stored_step`` sets them on the function it returns (not in its type)."""
    return vars(step)["members"]


def fold(events: Sequence[Any]) -> Any:
    """The aggregate from the events' stored states, as the directory read model folds them (a state that is not
    plain JSON, e.g. with a ``\\u`` escape, reaches it decoded: it mutates the aggregate itself)."""
    plain = plain_state_check(MAPPER)
    agg = None
    for ev in events:
        stored = MAPPER.to_stored_event(ev)
        if not plain(stored):
            event = MAPPER.to_domain_event(stored)
            assert isinstance(event, CanMutateAggregate)
            agg = event.mutate(agg)
            continue
        step = stored_step(resolve_topic(stored.topic))
        assert step is not None and stored.topic in DirectoryProjection.stored_topics
        state = stored_decoder(step)(stored.state)  # only what the step reads, as the read model decodes it
        assert set(state) <= {*members_of(step), "timestamp", "_meta"} and set(state.get("_meta", {})) <= {"aggregate"}
        when = dt.datetime.fromisoformat(state["timestamp"]["_data_"])
        agg = step(agg, stored.originator_id, stored.originator_version, state, when)
    return agg


def same(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    assert {k: v for k, v in vars(a).items() if k != "_pending_events"} == \
        {k: v for k, v in vars(b).items() if k != "_pending_events"}


@settings(max_examples=60, deadline=None)
@given(changes=TARGET_CHANGES)
def test_a_target_folded_from_stored_states_is_the_domains(changes: list[dict[str, Any]]) -> None:
    target = Target(Target.validate_new(a_target()))
    for change in changes:
        target.change(change)
    events = target.collect_events()
    same(fold(events), target)
    replayed = None
    for ev in events:
        replayed = ev.mutate(replayed)
    same(fold(events), replayed)


@settings(max_examples=30, deadline=None)
@given(flips=st.lists(st.booleans(), max_size=6), conflicts=st.lists(st.integers(0, 3), max_size=6))
def test_an_inspector_folded_from_stored_states_is_the_domains(flips: list[bool], conflicts: list[int]) -> None:
    inspector = Inspector(Inspector.validate_new(an_inspector()))
    targets = [str(uuid.UUID(int=i + 1)) for i in range(4)]
    for active, c in zip(flips, conflicts + [0] * len(flips), strict=False):
        inspector.change({"active": active})
        inspector.change({"conflicts": sorted({*inspector.data.get("conflicts", []), targets[c]})})
    same(fold(inspector.collect_events()), inspector)


def test_an_event_out_of_sequence_is_refused_as_the_domain_refuses_it() -> None:
    target = Target(Target.validate_new(a_target()))
    target.change({"risk_class": "D"})
    target.change({"risk_class": "A"})
    created, _first, second = target.collect_events()
    with pytest.raises(OriginatorVersionError):
        fold([created, second])


def test_classes_that_mutate_in_their_own_way_are_not_folded() -> None:
    class Custom(Target.Tagged):  # an apply of its own: only the event itself knows what it does
        def apply(self, aggregate: Any) -> None:
            aggregate.data["tags"] = ["?"]

    assert stored_step(Custom) is None
    assert stored_step(resolve_topic(get_topic(Target.Tagged))) is not None


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=80, deadline=None)
@given(topic=st.sampled_from(sorted(DirectoryProjection.stored_topics)),
       members=st.dictionaries(st.text(max_size=12), _JSON, max_size=6),
       meta=st.dictionaries(st.sampled_from(["aggregate", "actor", "department", "correlation_id", "owner"]), _JSON))
def test_a_step_s_decoder_gives_what_the_whole_state_gives_for_the_members_it_reads(
    topic: str, members: dict[str, Any], meta: dict[str, Any]
) -> None:
    import json

    step = stored_step(resolve_topic(topic))
    assert step is not None
    whole = {**members, "timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-02T03:04:05+00:00"}, "_meta": meta}
    raw = json.dumps(whole, ensure_ascii=False).encode()
    got = stored_decoder(step)(raw)
    wanted = {k: v for k, v in whole.items() if k in (*members_of(step), "timestamp")}
    wanted["_meta"] = {k: v for k, v in meta.items() if k == "aggregate"}
    assert got == wanted


def test_a_step_s_decoder_refuses_a_meta_that_is_not_an_object() -> None:
    import msgspec

    step = stored_step(Target.Tagged)
    assert step is not None
    with pytest.raises(msgspec.ValidationError):
        stored_decoder(step)(b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-02"},"tag":"x","_meta":null}')
