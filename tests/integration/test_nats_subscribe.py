"""``dualrandom subscribe`` and the partner helper: a durable consumer that resumes, starts over from a log
position or a time, writes JSON lines or POSTs, and delivers each event once."""

import asyncio
import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import nats
import pytest
from click.testing import CliRunner

from domain.access import SYSTEM
from services.application import CommandContext, DualRandom, describe_event
from services.cli import main
from services.infra.nats_embedded import EmbeddedNats, free_port
from services.infra.partner import Subscription
from services.infra.relay import Relay, event_id
from services.infra.store import create_engine
from tests.support.builders import a_department, a_target, an_inspector
from tests.support.nats import nats_server  # noqa: F401 - fixture

CTX = CommandContext(SYSTEM, correlation_id="req-subscribe")


@pytest.fixture
def world(tmp_path: Path, nats_server: EmbeddedNats, monkeypatch: pytest.MonkeyPatch  # noqa: F811
          ) -> Iterator[tuple[DualRandom, Any]]:
    db = f"sqlite:///{tmp_path / 'events.db'}"
    monkeypatch.setenv("DUALRANDOM_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DUALRANDOM_NATS_URL", nats_server.url)
    app = DualRandom(db)
    engine = create_engine(db)

    def publish() -> None:
        async def run() -> None:
            relay = Relay(app, engine, nats_server.url)
            try:
                while await relay.run_once():
                    pass
            finally:
                await relay.close()

        asyncio.run(run())

    yield app, publish
    engine.dispose()
    app.close()


def own_events(app: DualRandom, department: str = "hj-eeb") -> list[dict[str, Any]]:
    batch = app.recorder.select_notifications(0, 10_000, inclusive_of_start=False)
    out = [describe_event(app.mapper.to_domain_event(n), n.id) for n in batch]
    return [e for e in out if e["meta"]["owner"] == department]


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [event_id(e["aggregate_id"], e["version"]) for e in events]


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def subscribe(*args: str) -> None:
    result = CliRunner().invoke(main, ["subscribe", "--department", "hj-eeb", "--idle-exit", "1", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)


def test_subscribe_writes_json_lines_resumes_and_starts_over(world: tuple[DualRandom, Any], tmp_path: Path) -> None:
    app, publish = world
    app.register("department", a_department(), CTX)
    for _ in range(3):
        app.register("inspector", an_inspector(), CTX)
    app.register("target", a_target(), CTX)  # shared: not on hj-eeb's own subjects
    publish()
    out = tmp_path / "events.jsonl"
    subscribe("--output", str(out))
    first = read_lines(out)
    assert [e["id"] for e in first] == ids(own_events(app))
    assert first[0]["specversion"] == "1.0" and first[0]["type"] == "cn.gov.dualrandom.department.registered.v1"
    assert first[1]["data"]["department"] == "hj-eeb" and isinstance(first[1]["position"], int)
    assert [e["position"] for e in first] == sorted(e["position"] for e in first)

    subscribe("--output", str(out))  # nothing new: nothing written twice
    assert len(read_lines(out)) == len(first)
    cut = last_message_time(world_url(app)) + dt.timedelta(microseconds=1)
    app.register("inspector", an_inspector(), CTX)
    app.register("inspector", an_inspector(), CTX)
    publish()
    subscribe("--output", str(out))  # the durable consumer resumes after what was acknowledged
    assert [e["id"] for e in read_lines(out)] == ids(own_events(app))

    replay = tmp_path / "replay.jsonl"
    after = first[1]["position"]
    subscribe("--output", str(replay), "--from-position", str(after))
    assert [e["id"] for e in read_lines(replay)] == ids([e for e in own_events(app) if e["position"] > after])
    since = tmp_path / "since.jsonl"
    subscribe("--output", str(since), "--from-time", cut.strftime("%Y-%m-%dT%H:%M:%S.%f%z"))
    assert [e["id"] for e in read_lines(since)] == ids(own_events(app))[-2:]
    shared = tmp_path / "shared.jsonl"
    subscribe("--output", str(shared), "--scope", "shared")
    assert [e["type"] for e in read_lines(shared)] == ["cn.gov.dualrandom.target.registered.v1"]


def world_url(app: DualRandom) -> str:
    import os

    return os.environ["DUALRANDOM_NATS_URL"]


def last_message_time(url: str) -> dt.datetime:
    """When the stream stored its last message (the server's clock: what --from-time compares with)."""

    async def get() -> dt.datetime:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            last = (await js.stream_info("DUALRANDOM")).state.last_seq
            msg = await js.get_msg("DUALRANDOM", last)
            assert msg.time is not None
            return msg.time
        finally:
            await nc.close()

    return asyncio.run(get())


def test_subscribe_posts_each_event_and_acks_after_a_2xx(world: tuple[DualRandom, Any]) -> None:
    app, publish = world
    app.register("department", a_department(), CTX)
    app.register("inspector", an_inspector(), CTX)
    publish()
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        subscribe("--post", f"http://127.0.0.1:{server.server_port}/events")
    finally:
        server.shutdown()
    assert [e["id"] for e in received] == ids(own_events(app))


def test_the_partner_helper_skips_a_copy_with_an_event_id_it_has_seen(
    world: tuple[DualRandom, Any], nats_server: EmbeddedNats  # noqa: F811
) -> None:
    app, publish = world
    app.register("department", a_department(), CTX)
    app.register("inspector", an_inspector(), CTX)
    publish()

    async def scenario() -> list[str]:
        # A copy published again after the duplicate window: a new Nats-Msg-Id, the same ce-id.
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        original = (await js.get_msg("DUALRANDOM", 2))
        assert original.subject is not None and original.data is not None and original.headers is not None
        headers = {**original.headers, "Nats-Msg-Id": "later-copy"}
        await js.publish(original.subject, original.data, headers=headers)
        await nc.close()
        got = []
        async with Subscription(nats_server.url, "hj-eeb") as sub:
            async for event in sub.events(idle_timeout=1):
                got.append(event["id"])
                await sub.ack(event)
        return got

    assert asyncio.run(scenario()) == ids(own_events(app))
