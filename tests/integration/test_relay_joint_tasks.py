"""A joint task through the relay: every stored event of a task's life fits its contract, and each event of
the task reaches every participating department's subject (one copy each, one event id) and no other."""

import asyncio
import uuid
from typing import Any

from services.infra.nats_embedded import EmbeddedNats
from services.infra.relay import Relay, event_id, messages_for, recipients
from tests.integration.test_relay import read_stream
from tests.support.draws import commit_shares, reveal_shares
from tests.support.nats import nats_server  # noqa: F401 - fixture
from tests.support.scenario import EEB_PLANNER, build_county, ctx


def test_a_joint_task_reaches_each_participant_once_and_fits_its_contracts(
    runtime: Any, nats_server: EmbeddedNats  # noqa: F811
) -> None:
    county = build_county(runtime, targets=12, inspectors=5)
    data = {"period": "2024Q2", "reason": "联合检查",
            "participants": {"hj-eeb": county.items["hj-eeb"][:1], "hj-amr": county.items["hj-amr"][:1]},
            "rules": [{"supervision_class": "key", "min_ratio": "50%"},
                      {"supervision_class": "general", "min_ratio": "25%"}],
            "scope": {"county": "获嘉县"}}
    tid = uuid.UUID(runtime.task_opening.open_task(ctx(EEB_PLANNER), data).id)
    runtime.target_draws.commit(ctx(EEB_PLANNER), tid)
    commit_shares(runtime, tid)
    runtime.target_draws.freeze(ctx(EEB_PLANNER), tid)
    reveal_shares(runtime, tid)
    runtime.target_draws.draw_targets(ctx(EEB_PLANNER), tid, "")
    app = runtime.app
    stored: list[Any] = []
    position = 0
    while batch := app.recorder.select_notifications(position, 1000, inclusive_of_start=False):
        stored.extend((app.mapper.to_domain_event(n), n.id) for n in batch)
        position = batch[-1].id
    # Every stored event maps to its contract (a mismatch raises ContractError).
    expected: list[tuple[str, str]] = []
    joint = 0
    for ev, pos in stored:
        meta = getattr(ev, "_meta", {})
        for out in messages_for(ev, pos, "test"):
            expected.append((out.subject, out.headers["Nats-Msg-Id"]))
        if meta.get("departments"):
            joint += 1
            assert recipients(meta) == ["hj-amr", "hj-eeb"]
    assert joint >= 4  # opened, seed committed, pool frozen, targets drawn (+ assignments)

    async def publish() -> None:
        relay = Relay(app, runtime.engine, nats_server.url)
        try:
            while await relay.run_once():
                pass
        finally:
            await relay.close()

    asyncio.run(publish())
    msgs = asyncio.run(read_stream(nats_server.url))
    assert [(m.subject, m.headers["Nats-Msg-Id"]) for m in msgs] == expected
    drawn = [m for m in msgs if m.subject.endswith(".task.targets_drawn")]
    assert sorted(m.subject.split(".")[1] for m in drawn) == ["hj-amr", "hj-eeb"]
    assert len({m.headers["ce-id"] for m in drawn}) == 1
    ev = next(e for e, _ in stored if type(e).__name__ == "TargetsDrawn")
    assert drawn[0].headers["ce-id"] == event_id(ev.originator_id, ev.originator_version)
    assert drawn[0].headers["ce-type"] == "cn.gov.dualrandom.task.targets_drawn.v1"
    assert drawn[0].headers["ce-dataschema"] == "urn:dualrandom:schema:TaskTargetsDrawnV1"
