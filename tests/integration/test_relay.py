"""The relay against a real store (SQLite file, PostgreSQL when configured) and a real JetStream server.

Every event must reach the stream once, in log order, on its department's subject, with its stable id in
``Nats-Msg-Id``/``ce-id``; the relay must resume from its recorded position after a restart, and a replay of
already-published events (crash after publish, before recording) must not duplicate anything.
"""

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import nats
import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from domain.access import SYSTEM
from domain.contracts import REGISTRY
from services.application import CommandContext, DualRandom, describe_event
from services.infra.nats_embedded import EmbeddedNats, free_port
from services.infra.relay import Relay, event_id, json_safe, relay_position
from services.infra.store import create_engine
from tests.support.builders import a_department, a_target, an_inspector
from tests.support.nats import nats_server  # noqa: F401 - fixture

STREAM = "DUALRANDOM"
CTX = CommandContext(SYSTEM, correlation_id="req-relay-test")


@pytest.fixture
def app(database_url: str) -> Iterator[DualRandom]:
    application = DualRandom(database_url)
    yield application
    application.close()


@pytest.fixture
def engine(database_url: str, app: DualRandom) -> Iterator[sa.Engine]:
    eng = create_engine(database_url)
    yield eng
    eng.dispose()


def register_some(app: DualRandom, targets: int = 2, inspectors: int = 2) -> list[str]:
    """Register entries of several owners; returns the target ids."""
    ids = []
    if not app.recorder.max_notification_id():
        app.register("department", a_department(), CTX)
    for _ in range(targets):
        ids.append(app.register("target", a_target(), CTX).id)
    for _ in range(inspectors):
        app.register("inspector", an_inspector(), CTX)
    return ids


def log_events(app: DualRandom) -> list[dict[str, Any]]:
    """Every stored event, described as the relay describes it, in log order."""
    out: list[dict[str, Any]] = []
    position = 0
    while batch := app.recorder.select_notifications(position, 1000, inclusive_of_start=False):
        out.extend(describe_event(app.mapper.to_domain_event(n), n.id) for n in batch)
        position = batch[-1].id
    return out


def head(app: DualRandom) -> int:
    return int(app.recorder.max_notification_id() or 0)


async def drain_relay(relay: Relay) -> int:
    total = 0
    while n := await relay.run_once():
        total += n
    return total


async def read_stream(url: str, stream: str = STREAM, timeout: float = 10.0) -> list[Any]:
    """Every message of the stream, in stream order, through an ephemeral pull consumer."""
    nc = await nats.connect(url, allow_reconnect=False)
    try:
        js = nc.jetstream()
        expected = (await js.stream_info(stream)).state.messages
        sub = await js.pull_subscribe("dualrandom.>", durable=None, stream=stream)
        msgs: list[Any] = []
        deadline = time.monotonic() + timeout
        try:
            while len(msgs) < expected:
                if time.monotonic() > deadline:
                    raise AssertionError(f"read {len(msgs)} of {expected} messages in {timeout} s")
                try:
                    got = await sub.fetch(min(expected - len(msgs), 256), timeout=1)
                except nats.errors.TimeoutError:
                    continue
                for m in got:
                    await m.ack()  # the consumer stops at 1,000 unacknowledged messages
                msgs.extend(got)
        finally:
            await sub.unsubscribe()  # else closing waits for the drain timeout after a timed-out fetch
        return msgs
    finally:
        await nc.close()


def expected_subject(ev: dict[str, Any]) -> str:
    return f"dualrandom.{ev['meta']['owner']}.{ev['meta']['aggregate']}.{ev['type']}"


def assert_stream_holds_log_once(msgs: list[Any], events: list[dict[str, Any]]) -> None:
    """One message per event (events of one owner each), in log order."""
    assert [m.headers["ce-id"] for m in msgs] == [event_id(e["aggregate_id"], e["version"]) for e in events]
    assert [m.headers["Nats-Msg-Id"] for m in msgs] == [
        f"{event_id(e['aggregate_id'], e['version'])}:{e['meta']['owner']}" for e in events
    ]
    assert [m.metadata.sequence.stream for m in msgs] == list(range(1, len(events) + 1))


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


async def wait_for_async(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


def test_event_id_is_stable_and_distinct() -> None:
    agg = uuid.uuid4()
    assert event_id(agg, 1) == event_id(str(agg), 1)
    assert event_id(agg, 1) != event_id(agg, 2)
    assert uuid.UUID(event_id(agg, 1)).version == 5


def test_every_event_arrives_once_in_order_on_its_subject(
    app: DualRandom, engine: sa.Engine, nats_server: EmbeddedNats  # noqa: F811
) -> None:
    target_ids = register_some(app, targets=3, inspectors=2)
    app.update("target", uuid.UUID(target_ids[0]), {"risk_class": "D", "name": "获嘉县示例化工有限公司（新）"}, CTX)
    events = log_events(app)
    relay = Relay(app, engine, nats_server.url, batch_size=3)
    assert relay.position() == 0

    async def scenario() -> tuple[int, list[Any], Any]:
        try:
            published = await drain_relay(relay)
        finally:
            await relay.close()
        nc = await nats.connect(nats_server.url, allow_reconnect=False)
        try:
            info = await nc.jetstream().stream_info(STREAM)
        finally:
            await nc.close()
        return published, await read_stream(nats_server.url), info

    published, msgs, info = asyncio.run(scenario())

    assert published == len(events) == 1 + 3 + 2 + 2  # department, targets, inspectors, risk change + details
    assert info.config.subjects == ["dualrandom.>"]
    assert info.config.storage == "file"  # StorageType.FILE is a str enum
    assert info.config.duplicate_window == 120
    assert_stream_holds_log_once(msgs, events)
    subjects = [m.subject for m in msgs]
    assert subjects == [expected_subject(e) for e in events]
    assert subjects[0] == "dualrandom.hj-eeb.department.registered"
    assert subjects.count("dualrandom.shared.target.registered") == 3
    assert subjects.count("dualrandom.hj-eeb.inspector.registered") == 2
    assert "dualrandom.shared.target.risk_class_changed" in subjects
    assert "dualrandom.shared.target.details_updated" in subjects
    for msg, ev in zip(msgs, events, strict=True):
        h = msg.headers
        eid = event_id(ev["aggregate_id"], ev["version"])
        assert h["ce-id"] == eid
        assert h["Nats-Msg-Id"] == f"{eid}:{ev['meta']['owner']}"
        assert h["ce-specversion"] == "1.0"
        assert h["ce-source"] == f"/dualrandom/xinxiang-huojia/{ev['meta']['owner']}"
        assert h["ce-type"] == f"cn.gov.dualrandom.{ev['meta']['aggregate']}.{ev['type']}.v1"
        contract = REGISTRY.by_name(h["ce-dataschema"].rsplit(":", 1)[1])
        assert contract.type_for(ev["meta"]["aggregate"]) == h["ce-type"]
        assert h["ce-aggregateversion"] == str(ev["version"])
        assert h["ce-subject"] == ev["aggregate_id"]
        assert h["ce-time"] == ev["time"]
        assert h["ce-position"] == str(ev["position"])
        assert h["ce-correlationid"] == "req-relay-test"
        assert h["ce-causationid"] == ev["meta"]["causation_id"]
        assert h["content-type"] == "application/json"
        body = json.loads(msg.data.decode("utf-8"))
        expected = contract.to_message(json_safe(ev["data"]))
        assert body == json.loads(msgspec.json.encode(expected))
        if ev["type"] == "registered" and ev["meta"]["aggregate"] == "target":
            assert body["credit_code"] == ev["data"]["data"]["credit_code"]
    assert "获嘉县" in msgs[1].data.decode("utf-8")  # UTF-8, not \u escapes
    assert relay.position() == head(app) == events[-1]["position"]


def test_a_new_relay_resumes_from_the_recorded_position(
    app: DualRandom, engine: sa.Engine, nats_server: EmbeddedNats  # noqa: F811
) -> None:
    register_some(app, targets=2, inspectors=1)
    first_head = head(app)

    async def publish_with_a_fresh_relay() -> int:
        relay = Relay(app, engine, nats_server.url, batch_size=2)
        try:
            return await drain_relay(relay)
        finally:
            await relay.close()

    assert asyncio.run(publish_with_a_fresh_relay()) == 4
    assert Relay(app, engine, nats_server.url).position() == first_head

    register_some(app, targets=3, inspectors=2)
    assert asyncio.run(publish_with_a_fresh_relay()) == 5  # only what came after the recorded position
    assert asyncio.run(publish_with_a_fresh_relay()) == 0

    msgs = asyncio.run(read_stream(nats_server.url))
    assert_stream_holds_log_once(msgs, log_events(app))
    assert Relay(app, engine, nats_server.url).position() == head(app)


def test_republishing_after_a_lost_position_does_not_duplicate(
    app: DualRandom, engine: sa.Engine, nats_server: EmbeddedNats  # noqa: F811
) -> None:
    register_some(app, targets=3, inspectors=2)
    relay = Relay(app, engine, nats_server.url, batch_size=4)

    async def publish() -> int:
        try:
            return await drain_relay(relay)
        finally:
            await relay.close()

    total = asyncio.run(publish())
    assert total == len(log_events(app))  # not head(app): PostgreSQL positions may have gaps
    # A crash after JetStream acked but before the position was written: the position is behind.
    with engine.begin() as conn:
        conn.execute(relay_position.update().where(relay_position.c.name == STREAM).values(position=0))
    assert relay.position() == 0
    register_some(app, targets=1, inspectors=0)

    assert asyncio.run(publish()) == total + 1  # everything is sent again, plus the new event
    msgs = asyncio.run(read_stream(nats_server.url))
    assert_stream_holds_log_once(msgs, log_events(app))
    assert relay.position() == head(app)


def test_the_run_loop_follows_writes_wakes_early_and_stops_promptly(
    app: DualRandom, engine: sa.Engine, nats_server: EmbeddedNats  # noqa: F811
) -> None:
    register_some(app, targets=1, inspectors=0)
    # A poll interval far longer than the test: only wake() can make the relay see the later writes in time.
    relay = Relay(app, engine, nats_server.url, poll_interval=60)

    def write_then_wake() -> None:  # what an API worker thread does after a command
        register_some(app, targets=2, inspectors=1)
        relay.wake()

    async def scenario() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        await wait_for_async(lambda: relay.position() == head(app), what="the first events")
        writer = threading.Thread(target=write_then_wake)
        writer.start()
        await asyncio.to_thread(writer.join)
        await wait_for_async(lambda: relay.position() == head(app), timeout=5, what="a woken relay")
        t0 = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, timeout=5)
        return time.monotonic() - t0

    stopped_in = asyncio.run(scenario())
    assert stopped_in < 2
    assert relay.position() == head(app)
    msgs = asyncio.run(read_stream(nats_server.url))
    assert_stream_holds_log_once(msgs, log_events(app))


def test_the_run_loop_retries_until_nats_is_reachable(
    app: DualRandom, engine: sa.Engine, tmp_path: Any
) -> None:
    register_some(app, targets=2, inspectors=1)
    server = EmbeddedNats(port=free_port(), store_dir=tmp_path / "late-nats")
    relay = Relay(app, engine, server.url, connect_timeout=1)

    async def scenario() -> None:
        stop = asyncio.Event()
        with capture_logs() as logs:
            task = asyncio.create_task(relay.run(stop))
            try:
                await wait_for_async(
                    lambda: any(e["event"] == "relay_batch_failed" for e in logs), what="a failed attempt"
                )
                assert relay.position() == 0
                await asyncio.to_thread(server.start)
                await wait_for_async(lambda: relay.position() == head(app), what="the relay to recover")
            finally:
                stop.set()
                await asyncio.wait_for(task, timeout=5)

    try:
        asyncio.run(scenario())
        msgs = asyncio.run(read_stream(server.url))
    finally:
        server.stop()
    assert_stream_holds_log_once(msgs, log_events(app))


def test_an_existing_stream_is_reused_and_widened(
    app: DualRandom, engine: sa.Engine, nats_server: EmbeddedNats  # noqa: F811
) -> None:
    from nats.js.api import StorageType, StreamConfig

    async def precreate() -> None:
        nc = await nats.connect(nats_server.url, allow_reconnect=False)
        try:
            await nc.jetstream().add_stream(
                StreamConfig(name=STREAM, subjects=["dualrandom.other"], storage=StorageType.FILE, duplicate_window=30)
            )
        finally:
            await nc.close()

    async def publish_and_inspect() -> tuple[int, Any]:
        relay = Relay(app, engine, nats_server.url)
        try:
            n = await drain_relay(relay)
        finally:
            await relay.close()
        nc = await nats.connect(nats_server.url, allow_reconnect=False)
        try:
            return n, await nc.jetstream().stream_info(STREAM)
        finally:
            await nc.close()

    asyncio.run(precreate())
    register_some(app, targets=1, inspectors=1)
    n, info = asyncio.run(publish_and_inspect())
    assert n == 3
    assert info.config.subjects == ["dualrandom.>"]
    assert info.config.duplicate_window == 120
    assert info.state.messages == 3
