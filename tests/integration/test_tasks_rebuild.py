"""A long random run of task commands (open, commit, freeze, draw, teams, recusal, redraw, merge, directory
changes), then the tasks read model rebuilt from position 0 equals the live one (SQLite and PostgreSQL)."""

import contextlib
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.tasks.overlap import OverlapError
from services.application import ConflictError
from tests.support.draws import commit_shares, reveal_shares
from tests.support.projections import assert_rebuild_equals_live
from tests.support.scenario import ADMIN, AMR_PLANNER, EEB_PLANNER, build_county, ctx

PLANNERS = {"hj-eeb": EEB_PLANNER, "hj-amr": AMR_PLANNER}

STEPS = st.lists(
    st.tuples(
        st.sampled_from(["open", "open_joint", "commit", "freeze", "draw", "teams", "recuse", "redraw", "merge",
                         "close_target", "conflict"]),
        st.integers(0, 1000),
    ),
    min_size=10, max_size=40,
)


def _step(rt: Any, county: Any, tasks: list[tuple[uuid.UUID, str]], kind: str, n: int) -> None:
    if kind in ("open", "open_joint"):
        lead = ["hj-eeb", "hj-amr"][n % 2]
        participants = {lead: county.items[lead][:1]}
        if kind == "open_joint":
            other = "hj-amr" if lead == "hj-eeb" else "hj-eeb"
            participants[other] = county.items[other][1:2]
        data = {
            "period": f"2024Q{1 + n % 4}", "reason": "随机场景", "participants": participants,
            "rules": [{"supervision_class": c, "min_ratio": "30%"} for c in ("key", "general", "special")],
            "options": {"exclude_inspected_this_year": bool(n % 3)},
        }
        try:
            done = rt.task_opening.open_task(ctx(PLANNERS[lead]), data)
        except OverlapError as exc:  # overlapping tasks are part of the scenario: declared
            done = rt.task_opening.open_task(ctx(PLANNERS[lead]), {
                **data, "overlaps": [f.id for f in exc.undeclared], "overlap_reason": "随机场景"})
        tasks.append((uuid.UUID(done.id), lead))
        return
    if kind == "close_target":
        status = ["closed", "active", "deregistered"][n % 3]
        rt.app.update("target", uuid.UUID(county.targets[n % len(county.targets)]), {"status": status}, ctx(ADMIN))
        return
    if kind == "conflict":
        dept = ["hj-eeb", "hj-amr"][n % 2]
        inspector = county.inspectors[dept][n % len(county.inspectors[dept])]
        rt.app.update("inspector", uuid.UUID(inspector), {"conflicts": [county.targets[n % len(county.targets)]]},
                      ctx(ADMIN))
        return
    if not tasks:
        return
    tid, lead = tasks[n % len(tasks)]
    task = rt.task_opening.task(tid)
    planner = ctx(PLANNERS[lead])
    if kind == "commit":
        rt.target_draws.commit(planner, tid, "测试熵源")
    elif kind == "freeze":
        commit_shares(rt, tid)
        rt.target_draws.freeze(planner, tid)
    elif kind == "draw":
        reveal_shares(rt, tid)
        rt.target_draws.draw_targets(planner, tid, str(n), "测试熵源")
    elif kind == "teams":
        for dept in task.departments:
            if dept not in task.teams:
                rt.teams.draw_inspectors(ctx(PLANNERS[dept]), tid, dept)
                return
    elif kind == "redraw":
        rt.target_draws.withdraw(planner, tid, f"重抽{n}")
    elif kind == "recuse" and task.teams:
        from domain.tasks.assignment import assignment_id

        target = task.selected[n % len(task.selected)]
        a = rt.teams.assignment(assignment_id(tid, task.round, target))
        team_of = sorted(a.teams)[0] if a.teams else None
        if team_of:
            rt.teams.recuse(ctx(PLANNERS[team_of]), a.id, a.teams[team_of]["members"][0], "利害关系")
    elif kind == "merge":
        for o in rt.merges.overlaps_of(task):
            rt.merges.merge(planner, uuid.UUID(o["this_assignment_id"]), uuid.UUID(o["assignment_id"]), "一次检查")
            return


@settings(max_examples=4, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=STEPS)
def test_the_rebuilt_tasks_read_model_equals_the_live_one(runtime, steps) -> None:
    if not hasattr(runtime, "_county"):
        runtime._county = build_county(runtime, targets=30, inspectors=6)
        runtime._tasks = []
    for kind, n in steps:
        with contextlib.suppress(DomainError, ConflictError):  # a refused command changes nothing: the run goes on
            _step(runtime, runtime._county, runtime._tasks, kind, n)
    runtime.runner.catch_up()
    assert_rebuild_equals_live(runtime, "tasks")
