"""Draws on the real store (SQLite and PostgreSQL): the frozen pool is the log's at the freeze position, the
verification replays the log, teams obey the rules, and the tasks read model rebuilds to the live one."""

import datetime as dt
import unicodedata
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.draw.matching import InsufficientInspectorsError
from domain.draw.sampler import EmptyPoolError
from domain.errors import InvalidInputError, PermissionDeniedError
from domain.tasks.overlap import OverlapError
from domain.tasks.task import TaskStateError
from tests.support.builders import a_target
from tests.support.draws import commit_shares, reveal_shares
from tests.support.projections import assert_rebuild_equals_live
from tests.support.scenario import ADMIN, AMR_PLANNER, AUDITOR, EEB_PLANNER, build_county, ctx

KEY_ONLY = [{"supervision_class": "key", "min_ratio": "50%"}, {"supervision_class": "general", "min_ratio": "25%"}]


def _open(rt: Any, county: Any, **extra: Any) -> uuid.UUID:
    """Open a task; the overlaps with earlier tasks of these tests (same item, period and scope) are declared."""
    data = {"period": "2024Q2", "reason": "专项检查", "participants": {"hj-eeb": county.items["hj-eeb"][:1]},
            "rules": KEY_ONLY, "scope": {"county": "获嘉县"}, **extra}
    try:
        return uuid.UUID(rt.task_opening.open_task(ctx(EEB_PLANNER), data).id)
    except OverlapError as exc:
        data = {**data, "overlaps": [f.id for f in exc.undeclared], "overlap_reason": "测试：同一事项再次抽取"}
        return uuid.UUID(rt.task_opening.open_task(ctx(EEB_PLANNER), data).id)


SOURCE = "福彩3D 2024年第059期开奖号码"


def _draw(rt: Any, tid: uuid.UUID, entropy: str = "581") -> dict[str, Any]:
    """Commit (declaring SOURCE), the joint task's shares, freeze, reveal, draw with ``entropy``."""
    rt.target_draws.commit(ctx(EEB_PLANNER), tid, SOURCE)
    commit_shares(rt, tid)
    rt.target_draws.freeze(ctx(EEB_PLANNER), tid)
    reveal_shares(rt, tid)
    return rt.target_draws.draw_targets(ctx(EEB_PLANNER), tid, entropy, SOURCE).body


def test_the_pool_is_the_log_at_the_freeze_position_whatever_changes_afterwards(runtime) -> None:
    county = build_county(runtime, targets=24)
    tid = _open(runtime, county)
    runtime.target_draws.commit(ctx(EEB_PLANNER), tid, SOURCE)
    frozen = runtime.target_draws.freeze(ctx(EEB_PLANNER), tid).body
    # After the freeze: a new target in scope, one closed, one reclassified. None of it touches this draw.
    runtime.app.register("target", a_target(supervision_class="key"), ctx(ADMIN))
    runtime.app.update("target", uuid.UUID(county.targets[0]), {"status": "closed"}, ctx(ADMIN))
    runtime.app.update("target", uuid.UUID(county.targets[1]), {"supervision_class": "special"}, ctx(ADMIN))
    drawn = runtime.target_draws.draw_targets(ctx(EEB_PLANNER), tid, "581", SOURCE).body
    assert sum(s["pool_size"] for s in drawn["strata"].values()) == frozen["pool_size"] == 24
    verified = runtime.target_draws.verify_draw(AUDITOR, tid)
    assert verified["match"] is True and verified["pool_digest"] == frozen["pool_digest"]
    # The seed is revealed by the draw event, and was committed before: SHA-256(seed) == commitment.
    task = runtime.task_opening.task(tid)
    import hashlib

    assert hashlib.sha256(bytes.fromhex(task.draw["record"]["seed"])).hexdigest() == task.draw["record"]["commitment"]
    runtime.runner.catch_up()
    assert_rebuild_equals_live(runtime, "tasks")


def test_verification_names_the_first_difference_when_the_record_does_not_reproduce(runtime) -> None:
    county = build_county(runtime, targets=16)
    tid = _open(runtime, county)
    _draw(runtime, tid)
    task = runtime.task_opening.task(tid)
    (current,) = runtime.target_draws.rounds(AUDITOR, tid)["rounds"]
    r = runtime.target_draws.read_round(AUDITOR, tid, current["round"])
    r["record"]["selected"] = list(reversed(r["record"]["selected"]))  # the record as a forger would present it
    out = runtime.target_draws.check_round(task, r)
    assert out["match"] is False and "selected" in out["first_difference"]


def test_closed_and_already_inspected_targets_never_enter_the_pool(runtime) -> None:
    county = build_county(runtime, targets=20)
    runtime.app.update("target", uuid.UUID(county.targets[0]), {"status": "deregistered"}, ctx(ADMIN))
    every = [{"supervision_class": "key", "min_ratio": "100%"}]
    first = _open(runtime, county, rules=every)
    drawn_first = runtime.task_opening.task(first) if _draw(runtime, first) else None
    second = _open(runtime, county, rules=every)
    _draw(runtime, second)
    a, b = runtime.task_opening.task(first), runtime.task_opening.task(second)
    assert [o["id"] for o in b.overlaps] == [str(first)]  # declared, since it overlaps the first
    assert county.targets[0] not in a.selected + b.selected
    assert a.selected and not set(a.selected) & set(b.selected)
    assert drawn_first is not None
    assert b.frozen["excluded"] == {"inactive": 1, "inspected_this_year": len(drawn_first.selected),
                                    "kept_by_full_rule": 0}
    # ``full`` (100% every period) wins over the yearly exclusion: the targets stay, counted as kept.
    full = _open(runtime, county, rules=[{"supervision_class": "key", "full": True}])
    _draw(runtime, full)
    f = runtime.task_opening.task(full)
    assert set(a.selected) <= set(f.selected) and f.frozen["excluded"]["kept_by_full_rule"] == len(a.selected)
    assert f.frozen["excluded"]["inspected_this_year"] == 0
    assert runtime.target_draws.verify_draw(AUDITOR, full)["match"] is True
    # A task that does not exclude them draws them again (configurable).
    third = _open(runtime, county, rules=[{"supervision_class": "key", "full": True}],
                  options={"exclude_inspected_this_year": False})
    _draw(runtime, third)
    assert set(a.selected) <= set(runtime.task_opening.task(third).selected)


def test_only_the_lead_planner_draws_and_nothing_changes_on_a_refusal(runtime) -> None:
    county = build_county(runtime, targets=12)
    tid = _open(runtime, county)
    before = runtime.task_opening.task(tid).version
    for actor in (AMR_PLANNER, AUDITOR, ADMIN):
        with pytest.raises(PermissionDeniedError):
            runtime.target_draws.commit(ctx(actor), tid)
    with pytest.raises(TaskStateError):
        runtime.target_draws.freeze(ctx(EEB_PLANNER), tid)  # no commitment yet
    with pytest.raises(TaskStateError):
        runtime.target_draws.draw_targets(ctx(EEB_PLANNER), tid)
    assert runtime.task_opening.task(tid).version == before


def test_an_empty_pool_records_nothing(runtime) -> None:
    county = build_county(runtime, targets=8)
    tid = _open(runtime, county, scope={"county": "原阳县"})
    runtime.target_draws.commit(ctx(EEB_PLANNER), tid)
    version = runtime.task_opening.task(tid).version
    with pytest.raises(EmptyPoolError):
        runtime.target_draws.freeze(ctx(EEB_PLANNER), tid)
    assert runtime.task_opening.task(tid).version == version


def test_too_few_eligible_inspectors_names_the_department_and_the_shortfall(runtime) -> None:
    county = build_county(runtime, targets=12, inspectors=3)
    for iid in county.inspectors["hj-amr"][:2]:
        runtime.app.update("inspector", uuid.UUID(iid), {"certificate_expiry": "2023-06-30"}, ctx(ADMIN))
    tid = _open(runtime, county, participants={"hj-eeb": county.items["hj-eeb"][:1],
                                               "hj-amr": county.items["hj-amr"][:1]})
    _draw(runtime, tid)
    runtime.teams.draw_inspectors(ctx(EEB_PLANNER), tid, "hj-eeb")
    with pytest.raises(InsufficientInspectorsError) as err:
        runtime.teams.draw_inspectors(ctx(AMR_PLANNER), tid, "hj-amr")
    assert "hj-amr" in str(err.value) and "short" in str(err.value)
    assert "hj-amr" not in runtime.task_opening.task(tid).teams


def test_teams_are_the_same_from_the_same_seed_and_obey_the_rules(runtime) -> None:
    county = build_county(runtime, targets=24, inspectors=5)
    conflicted = county.inspectors["hj-eeb"][0]
    tid = _open(runtime, county)
    _draw(runtime, tid)
    task = runtime.task_opening.task(tid)
    runtime.app.update("inspector", uuid.UUID(conflicted), {"conflicts": task.selected[:1]}, ctx(ADMIN))
    runtime.teams.draw_inspectors(ctx(EEB_PLANNER), tid, "hj-eeb", dt.date(2024, 5, 6))
    teams = runtime.task_opening.task(tid).teams["hj-eeb"]["teams"]
    loads: dict[str, int] = {}
    for team in teams.values():
        assert len(set(team["members"])) >= 2 and team["leader"] == team["members"][0]
        for m in team["members"]:
            loads[m] = loads.get(m, 0) + 1
    assert conflicted not in teams[task.selected[0]]["members"]
    mean = 2 * len(teams) / 5
    assert max(loads.values()) <= -(-2 * len(teams) // 5) + 1 and mean > 0
    # Same seed, same directory: the same teams (recomputed from the recorded key).
    from domain.draw.matching import match_teams
    from domain.tasks.task import team_key

    inspectors, _ = runtime.lookups.staff("hj-eeb")
    from domain.draw.matching import VisitNeed

    again = match_teams(team_key(task.draw["record"]["seed"], str(tid), "hj-eeb"), "hj-eeb",
                        [VisitNeed(t, region="获嘉县") for t in task.selected], inspectors, dt.date(2024, 5, 6))
    assert {t: list(v.members) for t, v in again.items()} == {t: v["members"] for t, v in teams.items()}
    runtime.runner.catch_up()
    assert_rebuild_equals_live(runtime, "tasks")


def test_a_recusal_redraw_keeps_history_and_never_brings_the_inspector_back(runtime) -> None:
    county = build_county(runtime, targets=12, inspectors=6)
    tid = _open(runtime, county)
    _draw(runtime, tid)
    runtime.teams.draw_inspectors(ctx(EEB_PLANNER), tid, "hj-eeb")
    task = runtime.task_opening.task(tid)
    from domain.tasks.assignment import assignment_id

    aid = assignment_id(tid, task.round, task.selected[0])
    gone = []
    for n in range(2):
        team = runtime.teams.assignment(aid).teams["hj-eeb"]
        leaving = team["members"][0]
        done = runtime.teams.recuse(ctx(EEB_PLANNER), aid, leaving, f"利害关系{n}")
        gone.append(leaving)
        assert done.body["counter"] == n + 1
    a = runtime.teams.assignment(aid)
    assert not set(gone) & set(a.teams["hj-eeb"]["members"])
    assert [r["inspector_id"] for r in a.recusals] == gone
    with pytest.raises(InvalidInputError):
        runtime.teams.recuse(ctx(EEB_PLANNER), aid, gone[0], "again")
    runtime.runner.catch_up()
    assert_rebuild_equals_live(runtime, "tasks")


@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(st.tuples(st.integers(0, 11), st.sampled_from(["status", "supervision_class", "risk_class"]),
                                  st.integers(0, 3)), max_size=12),
       entropy=st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), max_size=10)
       .filter(lambda t: not any(c.isspace() for c in t) and unicodedata.normalize("NFKC", t) == t))
def test_the_verified_pool_always_equals_the_frozen_one(runtime, changes, entropy) -> None:
    if not hasattr(runtime, "_county"):
        runtime._county = build_county(runtime, targets=12)
    county = runtime._county
    values = {"status": ["active", "closed", "deregistered", "active"], "supervision_class": ["key", "general",
              "special", "key"], "risk_class": ["A", "B", "C", "D"]}
    for i, name, v in changes:
        runtime.app.update("target", uuid.UUID(county.targets[i]), {name: values[name][v]}, ctx(ADMIN))
    tid = _open(runtime, county, rules=[{"supervision_class": c, "min_ratio": "50%"} for c in ("key", "general")],
                options={"exclude_inspected_this_year": False})
    runtime.target_draws.commit(ctx(EEB_PLANNER), tid, "任意公开来源" if entropy else "")
    try:
        runtime.target_draws.freeze(ctx(EEB_PLANNER), tid)
    except EmptyPoolError:
        return
    runtime.target_draws.draw_targets(ctx(EEB_PLANNER), tid, entropy, "任意公开来源" if entropy else "")
    assert runtime.target_draws.verify_draw(AUDITOR, tid)["match"] is True


def test_a_weighted_draw_strata_are_supervision_classes_and_it_verifies(runtime) -> None:
    county = build_county(runtime, targets=24)
    tid = _open(runtime, county, rules=[{"supervision_class": c, "min_ratio": "50%"} for c in ("key", "general")],
                options={"weighted": True, "exclude_inspected_this_year": False})
    drawn = _draw(runtime, tid)
    task = runtime.task_opening.task(tid)
    assert task.draw is not None and task.draw["record"]["weighted"] is True
    assert set(drawn["strata"]) <= {"key", "general", "special"} and all("/" not in s for s in task.frozen["strata"])
    assert runtime.target_draws.verify_draw(AUDITOR, tid)["match"] is True
    with pytest.raises(InvalidInputError) as refused:
        _open(runtime, county, rules=[{"supervision_class": "key", "risk_class": "D", "full": True}],
              options={"weighted": True})
    assert refused.value.problems[0].rule == "risk_class_rules"


def test_a_version_1_seed_commitment_reads_as_no_declared_source_and_its_draw_verifies(runtime) -> None:
    """Events are forever: a ``SeedCommitted`` stored before version 2 (no ``entropy_source``) is upcast."""
    import json

    import sqlalchemy as sa

    county = build_county(runtime, targets=12)
    tid = _open(runtime, county, rules=[{"supervision_class": "key", "full": True}])
    runtime.target_draws.commit(ctx(EEB_PLANNER), tid)
    table = runtime.app.recorder.events_record_cls.__table__
    with runtime.engine.begin() as conn:
        row = conn.execute(sa.select(table.c.id, table.c.state).where(
            table.c.originator_id == tid, table.c.topic.like("%Task.SeedCommitted"))).one()
        state = json.loads(bytes(row.state))
        assert state.pop("class_version") == 2 and state.pop("entropy_source") == ""
        conn.execute(table.update().where(table.c.id == row.id).values(state=json.dumps(state).encode()))
    task = runtime.task_opening.task(tid)
    assert task.entropy_source == "" and task.state == "committed"
    runtime.target_draws.freeze(ctx(EEB_PLANNER), tid)
    runtime.target_draws.draw_targets(ctx(EEB_PLANNER), tid)
    assert runtime.target_draws.verify_draw(AUDITOR, tid)["match"] is True


def test_version_1_team_and_redraw_records_read_with_no_position(runtime) -> None:
    """Events are forever: ``InspectorsDrawn`` and ``MemberRedrawn`` stored before version 2 (no ``position``) are
    upcast with ``position`` None; version 2 records the position its inputs were read at, below its own."""
    import json

    import sqlalchemy as sa

    from domain.tasks.assignment import assignment_id

    county = build_county(runtime, targets=12, inspectors=6)
    tid = _open(runtime, county)
    _draw(runtime, tid)
    drawn = runtime.teams.draw_inspectors(ctx(EEB_PLANNER), tid, "hj-eeb")
    task = runtime.task_opening.task(tid)
    assert 0 < task.teams["hj-eeb"]["position"] < drawn.position
    aid = assignment_id(tid, task.round, task.selected[0])
    runtime.teams.recuse(ctx(EEB_PLANNER), aid, runtime.teams.assignment(aid).teams["hj-eeb"]["members"][0], "亲属")
    table = runtime.app.recorder.events_record_cls.__table__
    with runtime.engine.begin() as conn:
        for oid, topic in ((tid, "%Task.InspectorsDrawn"), (aid, "%Assignment.MemberRedrawn")):
            row = conn.execute(sa.select(table.c.id, table.c.state).where(
                table.c.originator_id == oid, table.c.topic.like(topic))).one()
            state = json.loads(bytes(row.state))
            assert state.pop("class_version") == 2 and state.pop("position") > 0
            conn.execute(table.update().where(table.c.id == row.id).values(state=json.dumps(state).encode()))
    assert runtime.task_opening.task(tid).teams["hj-eeb"]["position"] is None
    a = runtime.teams.assignment(aid)
    assert a.redraws["hj-eeb"] == 1 and len(a.teams["hj-eeb"]["members"]) == 2
