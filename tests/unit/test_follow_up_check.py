"""The server's follow-up check (``domain.execution.followup_check``) and the standalone verifier's
``check_follow_up`` say the same of the same log: the vector of section 17.1 as an export, changed one way at a
time, gives the same first difference (same text) from both; the pool fold equals the verifier's
``Log.follow_up_pool`` for random inspection histories."""

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.execution.followup_check import FollowUpCheck, check_follow_up, follow_up_pool, read_position
from tests.unit.test_follow_up_vector import (
    INS,
    POOL,
    ROUND,
    SELECTED,
    SOURCE,
    F,
    T,
    _inspection_id,
    vector_export,
    verifier,
)


def server_check(items: list[dict[str, Any]]) -> FollowUpCheck:
    """What the server's use case does (services/usecases/follow_up_verification.py), over export items."""
    planned = next((ev["position"], ev["data"]) for ev in items if ev["topic"] == F + "Planned")
    drawn = [(ev["position"], ev["data"]["record"]) for ev in items if ev["topic"] == F + "Drawn"]
    planned_at, plan = planned
    if len(drawn) > 1:
        return check_follow_up(plan, planned_at, drawn[0][1], None, [p for p, _ in drawn])
    upto = read_position(plan, planned_at)
    pool = None if upto is None else follow_up_pool(
        ((ev["topic"], ev["aggregate_id"], ev["data"]) for ev in items if ev["position"] <= upto),
        plan["department"], plan["period"])
    return check_follow_up(plan, planned_at, drawn[0][1], pool)


def both(change: Any) -> tuple[str | None, FollowUpCheck]:
    items = vector_export()
    by = {ev["position"]: ev for ev in items}
    change(by)
    items = sorted(by.values(), key=lambda ev: ev["position"])
    items = json.loads(json.dumps(items, ensure_ascii=False))
    [(_, _, difference)] = verifier.verify(items)
    return difference, server_check(items)


def _set(at: int, **data: Any) -> Any:
    return lambda by: by[at]["data"].update(data)


def _drop(at: int, key: str) -> Any:
    return lambda by: by[at]["data"].pop(key)


def _second_draw(by: dict[int, Any]) -> None:
    by[31] = {**json.loads(json.dumps(by[30])), "position": 31}


def _moved(by: dict[int, Any]) -> None:  # l's findings dated after the period: ed9453c9 leaves the pool
    next(ev for ev in by.values() if ev["topic"] == INS + "FindingsRecorded"
         and ev["aggregate_id"] == _inspection_id("l"))["data"]["inspected_on"] = "2024-07-01"


CHANGES = [
    pytest.param(lambda by: None, None, id="unchanged"),
    pytest.param(_set(29, pool=POOL[1:]), f"pool: recorded 6 ids, recomputed 7; first difference at [0]: recorded "
                                          f"'{POOL[1]}', recomputed '{POOL[0]}'", id="pool-short"),
    pytest.param(_moved, f"pool: recorded 7 ids, recomputed 6; first difference at [6]: recorded '{T['ed9453c9']}', "
                         "recomputed nothing", id="inspection-day"),
    pytest.param(_set(29, position=24), f"pool: recorded 7 ids, recomputed 6; first difference at [6]: recorded "
                                        f"'{T['ed9453c9']}', recomputed nothing", id="position-earlier"),
    pytest.param(_set(29, position=29), "position: 29 is not below the Planned event's own position 29",
                 id="position-not-below"),
    pytest.param(_set(29, position="27"), "position: '27' is not an integer", id="position-text"),
    pytest.param(_set(29, position=True), "position: True is not an integer", id="position-bool"),
    pytest.param(_set(29, quota=2), "quota: planned 2, recomputed 3", id="quota"),
    pytest.param(_set(29, ratio="0.25"), "quota: planned 3, recomputed 2", id="ratio-changed"),
    pytest.param(_set(29, ratio="1.5"), "ratio: '1.5' is not an exact ratio in (0, 1]", id="ratio-bad"),
    pytest.param(_set(29, commitment="00" * 32), "commitment: the draw's is not the one made when the round was "
                                                 "planned", id="commitment"),
    pytest.param(_drop(29, "entropy_source"), f"entropy_source: the draw names '{SOURCE}', the round declared none "
                                              "(planned before sources were declared)", id="downgraded"),
    pytest.param(_set(29, entropy_source="福彩3D 2024年第149期开奖号码"),
                 f"entropy_source: the draw names '{SOURCE}', the commitment declared '福彩3D 2024年第149期开奖号码'",
                 id="source-planned"),
    pytest.param(lambda by: by[30]["data"]["record"].update(entropy_source="福彩3D 2024年第151期开奖号码"),
                 f"entropy_source: the draw names '福彩3D 2024年第151期开奖号码', the commitment declared '{SOURCE}'",
                 id="source-drawn"),
    pytest.param(lambda by: (by[29]["data"].update(entropy_source=""),
                             by[30]["data"]["record"].update(entropy_source="")),
                 "external_entropy: the commitment declared no entropy source, the draw used some", id="no-source"),
    pytest.param(lambda by: by[30]["data"]["record"]["strata"]["all"].update(quota=2),
                 "strata['all'].quota: recorded 2, planned 3", id="strata-quota"),
    pytest.param(_second_draw, "drawn: the round was drawn 2 times (positions 30, 31)", id="drawn-twice"),
]


@pytest.mark.parametrize(("change", "expected"), CHANGES)
def test_the_server_and_the_verifier_name_the_same_difference(change: Any, expected: str | None) -> None:
    difference, server = both(change)
    assert difference == expected
    assert server.first_difference == expected and not server.skipped


@pytest.mark.parametrize("change", [
    lambda by: by[30]["data"]["record"]["strata"]["all"].update(selected=list(reversed(SELECTED))),
    lambda by: by[30]["data"]["record"].update(external_entropy="160"),
    lambda by: by[30]["data"]["record"].update(selected=list(reversed(SELECTED))),
    lambda by: by[30]["data"]["record"].update(seed="11" * 32),
])
def test_a_changed_draw_is_a_mismatch_of_both(change: Any) -> None:
    """The draw itself (§9) is re-run by each one's own code: both name the same field, each in its words."""
    difference, server = both(change)
    assert difference is not None and not isinstance(difference, verifier.Skipped)
    assert server.first_difference is not None and not server.skipped
    assert re.split(r"[\[.:]", server.first_difference)[0] == re.split(r"[\[.:]", difference)[0]


def test_a_version_1_round_is_skipped_by_both_when_an_inspection_came_between() -> None:
    def v1(by: dict[int, Any]) -> None:
        del by[29]["data"]["position"]
        del by[29]["data"]["entropy_source"]
        by[30]["data"]["record"].pop("entropy_source")
    difference, server = both(v1)
    assert isinstance(difference, verifier.Skipped)
    assert server.skipped and server.first_difference == difference and not server.match

    def v1_reproducing(by: dict[int, Any]) -> None:
        v1(by)
        del by[28]  # m's findings: nothing between the read and Planned
    difference, server = both(v1_reproducing)
    assert difference is None and server.match and not server.skipped


DEPARTMENTS = ("hj-eeb", "hj-amr")
DAYS = ("2024-03-31", "2024-04-01", "2024-05-15", "2024-06-30", "2024-07-01")
_event = st.one_of(
    st.tuples(st.just("open"), st.integers(0, 7), st.sampled_from(DEPARTMENTS), st.integers(0, 5)),
    st.tuples(st.just("findings"), st.integers(0, 7), st.sampled_from(DAYS), st.just(0)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_event, max_size=40), st.sampled_from(DEPARTMENTS), st.sampled_from(("2024Q2", "2024-06", "2024")))
def test_the_fold_is_the_verifiers_pool(history: list[tuple[str, int, str, int]], department: str,
                                        period: str) -> None:
    """Random inspection histories (each inspection opened once, findings only after it was opened)."""
    events: list[dict[str, Any]] = []
    opened: set[int] = set()
    for kind, n, value, target in history:
        oid = f"00000000-0000-4000-8000-{n:012d}"
        if kind == "open" and n not in opened:
            opened.add(n)
            events.append({"topic": INS + "Opened", "aggregate_id": oid,
                           "data": {"department": value, "target_id": f"t{target}"}})
        elif kind == "findings" and n in opened:
            events.append({"topic": INS + "FindingsRecorded", "aggregate_id": oid, "data": {"inspected_on": value}})
    log = verifier.Log()
    for ev in events:
        log.apply(ev)
    assert follow_up_pool(((ev["topic"], ev["aggregate_id"], ev["data"]) for ev in events), department, period) \
        == log.follow_up_pool(department, period)


def test_the_vector_pool_and_its_round_name() -> None:
    items = vector_export()
    assert follow_up_pool(((ev["topic"], ev["aggregate_id"], ev["data"]) for ev in items if ev["position"] <= 27),
                          "hj-eeb", "2024Q2") == POOL
    assert ROUND in {ev["aggregate_id"] for ev in items}


def _printed(tmp_path: Any, capsys: Any, change: Any) -> list[str]:
    items = vector_export()
    by = {ev["position"]: ev for ev in items}
    change(by)
    path = tmp_path / "export.ndjson"
    path.write_text("".join(json.dumps(ev, ensure_ascii=False) + "\n" for ev in sorted(
        by.values(), key=lambda ev: ev["position"])), encoding="utf-8")
    assert verifier.main([str(path)]) == 1
    return [line for line in capsys.readouterr().out.splitlines() if ROUND in line]


def test_the_verifier_prints_one_line_for_a_round_drawn_twice(tmp_path: Any, capsys: Any) -> None:
    assert _printed(tmp_path, capsys, _second_draw) == [
        f"MISMATCH  follow-up {ROUND} round 1: drawn: the round was drawn 2 times (positions 30, 31)"]


def test_the_verifier_says_a_text_position_is_not_an_integer(tmp_path: Any, capsys: Any) -> None:
    assert _printed(tmp_path, capsys, _set(29, position="27")) == [
        f"MISMATCH  follow-up {ROUND} round 1: position: '27' is not an integer"]
