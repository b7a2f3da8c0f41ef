"""The execution read model on SQLite and PostgreSQL: built live in small batches, rebuilt from position 0 in one,
the same rows; public rows carry no confidential text; names follow renames."""

import datetime as dt
import json
import uuid
from typing import Any

import sqlalchemy as sa

from domain.access import Actor
from domain.execution.inspection import inspection_id
from domain.tasks.assignment import assignment_id
from projections.execution.queries import PUBLIC, public_results
from services.application import CommandContext
from tests.support.projections import assert_rebuild_equals_live
from tests.support.scenario import ADMIN, EEB_PLANNER, build_county, ctx

SECRET = "商业秘密：配方A-17"
REVIEWER = Actor("eeb-reviewer", "hj-eeb", ("reviewer",))


def _visit(rt: Any, county: Any) -> tuple[Any, list[str]]:
    """A one-department task over the key targets, drawn, with its teams; the assignments."""
    task = rt.task_opening.open_task(ctx(EEB_PLANNER), {
        "period": "2024Q3", "reason": "专项", "participants": {"hj-eeb": county.items["hj-eeb"][:1]},
        "scope": {"county": "获嘉县", "supervision_classes": ["key"]},
        "rules": [{"supervision_class": "key", "full": True}]})
    tid = uuid.UUID(task.id)
    rt.target_draws.commit(ctx(EEB_PLANNER), tid)
    rt.target_draws.freeze(ctx(EEB_PLANNER), tid)
    rt.target_draws.draw_targets(ctx(EEB_PLANNER), tid)
    rt.teams.draw_inspectors(ctx(EEB_PLANNER), tid, "hj-eeb", dt.date(2024, 7, 1))
    t = rt.task_opening.task(tid)
    return t, [str(assignment_id(t.id, t.round, target)) for target in t.selected]


def test_the_execution_read_model_rebuilds_to_the_live_rows_and_keeps_secrets_out_of_public_rows(runtime) -> None:
    county = build_county(runtime, targets=12)
    ex = runtime.inspections
    task, visits = _visit(runtime, county)
    item = county.items["hj-eeb"][0]
    for n, aid in enumerate(visits):
        a = runtime.teams.assignment(uuid.UUID(aid))
        inspector = Actor(a.teams["hj-eeb"]["members"][0], "hj-eeb", ("inspector",))
        finding = {"result": "corrected", "description": f"问题{n}，{SECRET}", "confidential": ["description"],
                   "measures": [{"kind": "order_correction", "deadline": "2024-10-30"}]}
        ex.record_findings(CommandContext(inspector), uuid.UUID(aid), "hj-eeb",
                           {"inspected_on": "2024-09-10", "methods": ["on_site"], "findings": {item: finding}})
        runtime.runner.catch_up()  # live batches of a few events
        iid = inspection_id(aid, "hj-eeb")
        ex.submit(CommandContext(inspector), iid)
        ex.approve(CommandContext(REVIEWER), iid, "2024-09-20")
        if n % 2 == 0:
            ex.publish(CommandContext(REVIEWER), iid, "2024-09-25")
        runtime.runner.catch_up()
    first = inspection_id(visits[0], "hj-eeb")
    runtime.referrals.refer(ctx(EEB_PLANNER), {"inspection_id": str(first), "item": item, "kind": "department",
                                               "to": "hj-amr", "reason": "移送市场监管", "transferred_on": "2024-09-21"})
    target = runtime.teams.assignment(uuid.UUID(visits[0])).target_id
    runtime.app.update("target", uuid.UUID(target), {"name": "获嘉县改名后的企业"}, ctx(ADMIN))
    runtime.runner.catch_up()

    assert_rebuild_equals_live(runtime, "execution")
    with runtime.engine.connect() as conn:
        rows = conn.execute(sa.select(PUBLIC)).all()
    assert len(rows) == (len(visits) + 1) // 2
    assert all(SECRET not in r.findings for r in rows)
    found = public_results(runtime.engine, "改名后")
    assert [r["id"] for r in found["items"]] == [str(first)]
    assert found["items"][0]["task_number"] == f"{task.lead}-{task.number}" and found["items"][0]["type"] == "定向"
    assert "description" not in found["items"][0]["findings"][0]
    assert json.dumps(found, ensure_ascii=False).count(SECRET) == 0
