"""一公开 on NATS: a published result goes to the department's subject and to dualrandom.public.>, and no
confidential text ever reaches either."""

import asyncio
import json
import uuid
from typing import Any

from domain.access import Actor
from domain.tasks.assignment import assignment_id
from services.infra.nats_embedded import EmbeddedNats
from services.infra.relay import Relay
from tests.integration.test_relay import read_stream
from tests.support.nats import nats_server  # noqa: F401 - fixture
from tests.support.scenario import EEB_PLANNER, build_county, ctx

SECRET = "保密工艺参数XJ-7"


def test_a_published_result_reaches_the_public_subject_without_confidential_text(
    runtime: Any, nats_server: EmbeddedNats  # noqa: F811
) -> None:
    county = build_county(runtime, targets=8, inspectors=4)
    item = county.items["hj-eeb"][0]
    tid = uuid.UUID(runtime.task_opening.open_task(ctx(EEB_PLANNER), {
        "period": "2024Q3", "reason": "专项", "participants": {"hj-eeb": [item]},
        "scope": {"supervision_classes": ["key"]}, "rules": [{"supervision_class": "key", "full": True}]}).id)
    for step in (runtime.target_draws.commit, runtime.target_draws.freeze):
        step(ctx(EEB_PLANNER), tid)
    runtime.target_draws.draw_targets(ctx(EEB_PLANNER), tid, "")
    runtime.teams.draw_inspectors(ctx(EEB_PLANNER), tid, "hj-eeb")
    task = runtime.task_opening.task(tid)
    aid = assignment_id(tid, task.round, task.selected[0])
    member = runtime.teams.assignment(aid).teams["hj-eeb"]["members"][0]
    inspector = ctx(Actor(member, "hj-eeb", ("inspector",)))
    reviewer = ctx(Actor("eeb-rev", "hj-eeb", ("reviewer",)))
    ex = runtime.inspections
    done = ex.record_findings(inspector, aid, "hj-eeb", {"inspected_on": "2024-09-10", "methods": ["on_site"],
        "findings": {item: {"result": "corrected", "description": f"废气治理设施停运，{SECRET}",
                            "measures": [{"kind": "order_correction", "deadline": "2024-10-10"}],
                            "confidential": ["description"]}}})
    iid = uuid.UUID(done.id)
    ex.submit(inspector, iid)
    ex.approve(reviewer, iid, "2024-09-20")
    ex.publish(reviewer, iid, "2024-10-08")

    async def publish() -> None:
        relay = Relay(runtime.app, runtime.engine, nats_server.url)
        try:
            while await relay.run_once():
                pass
        finally:
            await relay.close()

    asyncio.run(publish())
    msgs = asyncio.run(read_stream(nats_server.url))
    public = [m for m in msgs if m.subject.startswith("dualrandom.public.")]
    assert [m.subject for m in public] == ["dualrandom.public.inspection.result_released"]
    body = json.loads(public[0].data)
    assert body["findings"] == [{"item": item, "result": "corrected", "result_wording": "发现问题已责令改正",
                                 "description": None,
                                 "measures": [{"kind": "order_correction", "deadline": "2024-10-10", "note": ""}]}]
    assert public[0].headers["ce-type"] == "cn.gov.dualrandom.public.inspection.result_released.v1"
    released = [m for m in msgs if m.subject == "dualrandom.hj-eeb.inspection.result_released"]
    assert len(released) == 1
    # The secret reaches the department's own subject only inside the findings it recorded, never public.
    assert not any(SECRET in m.data.decode() for m in public)
    assert not any(SECRET in m.data.decode() for m in released)
