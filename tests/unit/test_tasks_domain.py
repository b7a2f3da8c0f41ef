"""Task and Assignment aggregates and the pool: pure rules, no store."""

import hashlib
import uuid
from collections.abc import Sequence
from fractions import Fraction
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.draw.sampler import Candidate, commitment, draw
from domain.errors import InvalidInputError
from domain.planning.rules import SamplingRule
from domain.tasks.assignment import Assignment
from domain.tasks.pool import PoolRow, admits, build_pool, inspected_this_year
from domain.tasks.task import Task, TaskStateError, validate_options

SEED = bytes(range(32))


def _candidates(rows: Sequence[PoolRow]) -> Sequence[Candidate]:
    """The pool's rows as draw() takes them: it reads any rows with id, stratum and weight (see its doc),
    but declares Sequence[Candidate]."""
    return cast("Sequence[Candidate]", rows)


def a_task(**over):
    data = {"number": "2024-001", "name": "新乡市获嘉县生态环境局获嘉分局2024年第一季度一般检查事项随机抽查",
                "lead": "hj-eeb", "period": "2024Q1", "category": "general", "origin": "ad_hoc", "reason": "专项",
                "participants": {"hj-eeb": ["i1", "i2"]}, "scope": {"county": "获嘉县"}}
    data.update(over)
    return Task.open(**data)


def drawn_task() -> Task:
    task = a_task()
    task.commit_seed(commitment(SEED))
    pool = build_pool([(f"t{i}", {"county": "获嘉县", "supervision_class": "key", "risk_class": "A"}) for i in range(5)],
                      task.scope)
    result = draw(SEED, "", _candidates(pool.rows), {"key/A": 2})
    task.freeze_pool(10, result.pool_digest, 5, {"key/A": {"pool_size": 5, "quota": 2}}, pool.excluded)
    task.record_draw(result.as_record(), [])
    return task


def test_a_task_is_joint_when_more_than_one_department_brings_items() -> None:
    assert not a_task().is_joint
    joint = a_task(participants={"hj-eeb": ["i1"], "hj-amr": ["m1"]})
    assert joint.is_joint and joint.departments == ["hj-amr", "hj-eeb"] and joint.items == ["m1", "i1"]


def test_a_task_outside_the_plan_needs_a_reason_and_the_lead_must_take_part() -> None:
    with pytest.raises(InvalidInputError) as err:
        a_task(reason=" ", participants={"hj-amr": ["m1"]})
    fields = {p.field for p in err.value.problems}
    assert {"reason", "participants"} <= fields
    with pytest.raises(InvalidInputError) as err:
        a_task(origin="planned", plan_entry=None)
    assert err.value.problems[0].field == "plan_entry"


def test_case_triggered_tasks_are_not_random_and_name_their_targets() -> None:
    task = a_task(origin="case", reason="投诉举报")
    assert not task.is_random
    with pytest.raises(TaskStateError):
        a_task().designate_targets(["t1"], "00" * 32)
    task.designate_targets(["t2", "t1", "t1"], "00" * 32)
    assert task.selected == ["t1", "t2"] and task.state == "drawn"


def test_the_draw_needs_the_committed_seed_and_the_frozen_pool() -> None:
    task = a_task()
    task.commit_seed(commitment(SEED))
    pool = build_pool([("t1", {"supervision_class": "key", "risk_class": "A"})], {})
    result = draw(SEED, "", _candidates(pool.rows), {"key/A": 1})
    with pytest.raises(TaskStateError):
        task.record_draw(result.as_record(), [])  # not frozen yet
    task.freeze_pool(3, result.pool_digest, 1, {}, {})
    other = draw(bytes(32), "", _candidates(pool.rows), {"key/A": 1})
    with pytest.raises(TaskStateError) as err:
        task.record_draw(other.as_record(), [])
    assert err.value.problems[0].field == "seed"
    forged = {**result.as_record(), "pool_digest": hashlib.sha256(b"x").hexdigest()}
    with pytest.raises(TaskStateError):
        task.record_draw(forged, [])
    task.record_draw(result.as_record(), [])
    assert task.selected == ["t1"]


@given(st.sampled_from(["commit", "freeze", "draw", "teams", "withdraw"]))
def test_a_command_in_the_wrong_state_raises_and_records_nothing(command: str) -> None:
    task = a_task()
    before = len(task.pending_events)
    calls = {
        "commit": lambda: (task.commit_seed(commitment(SEED)), task.commit_seed(commitment(SEED))),
        "freeze": lambda: task.freeze_pool(1, "00" * 32, 1, {}, {}),
        "draw": lambda: task.record_draw({"seed": SEED.hex()}, []),
        "teams": lambda: task.record_teams("hj-eeb", __import__("datetime").date(2024, 1, 2), {}, ""),
        "withdraw": lambda: task.withdraw_draw("原因"),
    }
    with pytest.raises(TaskStateError):
        calls[command]()
    assert len(task.pending_events) == before + (1 if command == "commit" else 0)


def test_a_withdrawn_round_stays_in_the_history_and_the_next_round_starts_over() -> None:
    task = drawn_task()
    with pytest.raises(InvalidInputError):
        task.withdraw_draw("")
    assert task.withdraw_draw("名录有误") == 1
    assert task.state == "open" and task.selected == [] and task.withdrawn[0]["reason"] == "名录有误"
    assert task.commit_seed(commitment(bytes(32))) == 2
    # Replaying the events gives the same state.
    replayed: Task | None = None
    for ev in task.collect_events():
        replayed = ev.mutate(replayed)
    assert replayed is not None
    assert replayed.withdrawn == task.withdrawn and replayed.round == 2 and replayed.state == "committed"


def test_teams_cover_every_drawn_target_of_a_participating_department() -> None:
    import datetime as dt

    task = drawn_task()
    with pytest.raises(InvalidInputError):
        task.record_teams("hj-amr", dt.date(2024, 2, 1), {}, "")
    with pytest.raises(InvalidInputError):
        task.record_teams("hj-eeb", dt.date(2024, 2, 1), {}, "")
    teams = {t: {"leader": "p1", "members": ["p1", "p2"], "experts": []} for t in task.selected}
    task.record_teams("hj-eeb", dt.date(2024, 2, 1), teams, "d")
    with pytest.raises(TaskStateError):
        task.record_teams("hj-eeb", dt.date(2024, 2, 1), teams, "d")


def _visit(task_id: str, target: str = "t1", items=None) -> Assignment:
    return Assignment.dispatch(task_id=task_id, task_number="2024-001", round=1, target_id=target, lead="hj-eeb",
                               period="2024Q1", items=items or {"hj-eeb": ["i1"]})


def test_an_assignment_is_dispatched_once_every_department_has_a_team() -> None:
    a = _visit(str(uuid.uuid4()), items={"hj-eeb": ["i1"], "hj-amr": ["m1"]})
    a.assign_team("hj-eeb", "p1", ["p1", "p2"], [], "2024-02-01")
    assert a.state == "awaiting_teams"
    with pytest.raises(InvalidInputError):
        a.assign_team("hj-amr", "q1", ["q1"], [], "2024-02-01")  # fewer than 2
    a.assign_team("hj-amr", "q1", ["q1", "q2"], [], "2024-02-01")
    assert a.state == "dispatched" and a.members() == ["q1", "q2", "p1", "p2"]


def test_a_recusal_records_who_left_why_and_who_came_and_moves_the_leader() -> None:
    a = _visit(str(uuid.uuid4()))
    a.assign_team("hj-eeb", "p1", ["p1", "p2"], [], "2024-02-01")
    a.recuse("hj-eeb", "p1", "亲属", "p1", "p3")
    assert a.teams["hj-eeb"] == {"leader": "p2", "members": ["p2", "p3"], "experts": []}
    assert a.redraws == {"hj-eeb": 1} and a.recusals[0]["reason"] == "亲属"
    names = [type(e).__name__ for e in a.pending_events]
    assert names[-2:] == ["InspectorRecused", "MemberRedrawn"]


def test_two_visits_to_one_target_merge_into_one_covering_both_tasks() -> None:
    a, b = _visit("task-a"), _visit("task-b", items={"hj-em": ["e1"]})
    b.assign_team("hj-em", "e1", ["e1", "e2"], [], "2024-02-03")
    a.absorb(b, "一次检查")
    assert set(a.items) == {"hj-eeb", "hj-em"} and a.teams["hj-em"]["members"] == ["e1", "e2"]
    assert b.state == "merged" and b.merged_into == str(a.id)
    with pytest.raises(TaskStateError):
        _visit("task-c").absorb(b, "again")
    with pytest.raises(InvalidInputError):
        a.absorb(_visit("task-d", target="t9"), "other target")


TARGETS = st.lists(
    st.tuples(
        st.uuids().map(str),
        st.fixed_dictionaries({
            "county": st.sampled_from(["获嘉县", "原阳县"]),
            "industry": st.sampled_from(["化工", "造纸", ""]),
            "supervision_class": st.sampled_from(["key", "general", "special"]),
            "risk_class": st.sampled_from("ABCD"),
            "tags": st.lists(st.sampled_from(["positive_list", "hazardous_waste"]), unique=True),
            "status": st.sampled_from(["active", "active", "closed", "deregistered"]),
        }),
    ),
    unique_by=lambda t: t[0], max_size=40,
)
SCOPES = st.fixed_dictionaries({
    "county": st.sampled_from(["", "获嘉县"]),
    "industries": st.lists(st.sampled_from(["化工", "造纸"]), unique=True),
    "supervision_classes": st.lists(st.sampled_from(["key", "general", "special"]), unique=True),
    "tags": st.lists(st.sampled_from(["hazardous_waste"]), unique=True),
})


@given(TARGETS, SCOPES, st.data())
def test_the_pool_holds_exactly_the_active_admitted_targets_not_excluded(targets, scope, data) -> None:
    ids = [t for t, _ in targets]
    excluded = set(data.draw(st.lists(st.sampled_from(ids), unique=True))) if ids else set()
    pool = build_pool(targets, scope, excluded_ids=excluded)
    chosen = [r.id for r in pool.rows]
    expected = {t for t, d in targets if admits(scope, d) and d["status"] == "active" and t not in excluded}
    assert set(chosen) == expected and chosen == sorted(chosen)
    assert sum(pool.counts.values()) == len(chosen)
    assert pool.off_site_first == {t for t, d in targets if t in expected and "positive_list" in d["tags"]}
    assert sum(pool.in_scope.values()) == len(chosen) + pool.excluded["inspected_this_year"]


def test_inspected_this_year_counts_other_tasks_of_the_year_sharing_an_item() -> None:
    draws = [("a", 2024, ["i1"], ["t1"]), ("b", 2024, ["i2"], ["t2"]), ("c", 2023, ["i1"], ["t3"]),
             ("me", 2024, ["i1"], ["t4"])]
    assert inspected_this_year(draws, "me", 2024, ["i1", "i9"]) == {"t1"}


def test_per_visit_a_target_is_excluded_only_once_every_item_of_the_task_was_drawn_on_it() -> None:
    # Another department's joint task brought one of the 14 items: the other 13 are still to do, the target stays.
    draws = [("amr-joint", 2024, ["i1"], ["t1", "t2"]), ("q1", 2024, ["i2", "i3"], ["t2", "t3"]),
             ("old", 2023, ["i1", "i2", "i3"], ["t4"])]
    assert inspected_this_year(draws, "me", 2024, ["i1", "i2", "i3"], every_item=True) == {"t2"}
    assert inspected_this_year(draws, "me", 2024, ["i1", "i2", "i3"]) == {"t1", "t2", "t3"}


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.lists(st.sampled_from(["i1", "i2", "i3"])),
                          st.lists(st.sampled_from(["t1", "t2", "t3"]))), max_size=6),
       st.lists(st.sampled_from(["i1", "i2", "i3"]), min_size=1, unique=True))
def test_the_per_visit_exclusion_is_never_wider_than_the_per_item_one(draws, items) -> None:
    rows = [(task, 2024, its, sel) for task, its, sel in draws]
    narrow = inspected_this_year(rows, "me", 2024, items, every_item=True)
    assert narrow <= inspected_this_year(rows, "me", 2024, items)
    for t in narrow:
        assert set(items) <= {i for _, _, its, sel in rows if t in sel for i in its}


def test_a_full_rule_keeps_the_targets_the_yearly_exclusion_would_take() -> None:
    targets = [(f"t{i}", {"supervision_class": "key", "risk_class": r}) for i, r in enumerate("ADDA")]
    rules = (SamplingRule("key", "D", full=True), SamplingRule("key", min_ratio=Fraction(1, 4)))
    pool = build_pool(targets, {}, excluded_ids={"t0", "t1", "t2"}, full_rules=rules)
    assert [r.id for r in pool.rows] == ["t1", "t2", "t3"]
    assert pool.excluded == {"inactive": 0, "inspected_this_year": 1, "kept_by_full_rule": 2}
    assert build_pool(targets, {}, excluded_ids={"t0", "t1", "t2"}).excluded == {"inactive": 0,
                                                                                "inspected_this_year": 3}


def test_draw_options_are_checked_and_defaulted() -> None:
    assert validate_options(None)["team_size"] == 2
    with pytest.raises(InvalidInputError) as err:
        validate_options({"team_size": 1, "weighted": "yes", "colour": True})
    assert {p.field for p in err.value.problems} == {"options.team_size", "options.weighted", "options.colour"}
