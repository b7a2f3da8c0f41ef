"""The freeze is witnessed before the seed is revealed: the draw waits (409, Retry-After) until a signed
checkpoint covering the freeze event was published to partners on ``dualrandom.audit.checkpoints``."""

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import nats
import pytest

from domain.tasks.task import DrawNotReadyError
from services.audit.checkpoints import SUBJECT
from services.infra.nats_embedded import EmbeddedNats
from services.infra.relay import Relay
from services.infra.settings import Settings
from services.runtime import Runtime
from tests.support.nats import nats_server  # noqa: F401 - fixture
from tests.support.scenario import EEB_PLANNER, build_county, ctx

SOURCE = "福彩3D 2024年第059期开奖号码"


@pytest.fixture
def gated(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime with the production default: the draw's checkpoint gate on."""
    settings = replace(Settings(var_dir=tmp_path / "var", relay_enabled=False), database_url=database_url).with_secret()
    assert settings.draw_checkpoint_gate is True
    rt = Runtime(settings).open(with_nats=False)
    yield rt
    rt.close()


def _publish(rt: Runtime, url: str) -> tuple[int, Any]:
    async def scenario() -> tuple[int, Any]:
        relay = Relay(rt.app, rt.engine, url)  # creates the stream (dualrandom.>), as serve does
        await relay.run_once()
        await relay.close()
        rt.checkpointer.nats_url = url
        published = await rt.checkpointer.publish_pending()
        await rt.checkpointer.close()
        nc = await nats.connect(url)
        try:
            msg = await nc.jetstream().get_last_msg("DUALRANDOM", SUBJECT)
        finally:
            await nc.close()
        return published, msg

    return asyncio.run(scenario())


def test_the_draw_waits_for_a_published_checkpoint_covering_the_freeze(gated: Runtime, nats_server: EmbeddedNats) -> None:  # noqa: F811
    rt = gated
    county = build_county(rt, targets=12)
    tid = uuid.UUID(rt.task_opening.open_task(ctx(EEB_PLANNER), {
        "period": "2024Q2", "reason": "专项", "participants": {"hj-eeb": county.items["hj-eeb"][:1]},
        "rules": [{"supervision_class": "key", "full": True}], "scope": {"county": "获嘉县"}}).id)
    rt.target_draws.commit(ctx(EEB_PLANNER), tid, SOURCE)
    rt.target_draws.freeze(ctx(EEB_PLANNER), tid)
    # The freeze asked for a checkpoint: one is signed already, covering the freeze, but not yet published.
    pending = rt.checkpointer.pending()
    assert pending and pending[-1].position >= rt.target_draws._freeze_event_position(tid)
    version = rt.task_opening.task(tid).version
    with pytest.raises(DrawNotReadyError) as refused:
        rt.target_draws.draw_targets(ctx(EEB_PLANNER), tid, "581", SOURCE)
    assert refused.value.status == 409 and refused.value.retry_after is not None
    assert refused.value.problems[0].field == "checkpoint" and "no NATS" in refused.value.message
    assert rt.task_opening.task(tid).version == version  # nothing recorded, the seed still secret

    published, msg = _publish(rt, nats_server.url)
    assert published >= 1 and msg.subject == SUBJECT
    drawn = rt.target_draws.draw_targets(ctx(EEB_PLANNER), tid, "581", SOURCE).body
    assert drawn["selected"] > 0
    record = (rt.task_opening.task(tid).draw or {})["record"]
    assert record["entropy_source"] == SOURCE and record["external_entropy"] == "581"


def test_a_checkpoint_of_an_earlier_freeze_does_not_cover_a_later_round(gated: Runtime, nats_server: EmbeddedNats) -> None:  # noqa: F811
    rt = gated
    county = build_county(rt, targets=12)
    tid = uuid.UUID(rt.task_opening.open_task(ctx(EEB_PLANNER), {
        "period": "2024Q2", "reason": "专项", "participants": {"hj-eeb": county.items["hj-eeb"][:1]},
        "rules": [{"supervision_class": "key", "full": True}], "scope": {"county": "获嘉县"}}).id)
    rt.target_draws.commit(ctx(EEB_PLANNER), tid, SOURCE)
    rt.target_draws.freeze(ctx(EEB_PLANNER), tid)
    _publish(rt, nats_server.url)
    rt.target_draws.withdraw(ctx(EEB_PLANNER), tid, "范围有误")
    rt.target_draws.commit(ctx(EEB_PLANNER), tid, SOURCE)
    rt.checkpointer.nats_url = ""  # this freeze's checkpoint is signed but stays unpublished
    rt.target_draws.freeze(ctx(EEB_PLANNER), tid)
    with pytest.raises(DrawNotReadyError):
        rt.target_draws.draw_targets(ctx(EEB_PLANNER), tid, "581", SOURCE)
