"""An event too large for the NATS server does not stop the relay, and a refused one does not go unseen: a REAL
nats-server started with a small ``max_payload``, the relay publishing the store (SQLite and PostgreSQL), and a
partner fetching the omitted data through the API at the CloudEvent's ``ce-dataref``."""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import nats
import pytest
from nats.js.api import DiscardPolicy, StorageType, StreamConfig

from domain.access import SYSTEM
from domain.contracts import REGISTRY, Registry, topic_of
from services.application import CommandContext
from services.infra.nats_embedded import EmbeddedNats
from services.infra.partner import to_event
from services.infra.relay import (
    DATA_OMITTED_HEADER,
    DUPLICATE_WINDOW_SECONDS,
    ContractError,
    PublishRefusedError,
    Relay,
    event_id,
    json_safe,
    recipients,
)
from tests.integration.test_relay import read_stream
from tests.support.builders import a_department, a_target
from tests.support.nats import embedded_nats

CTX = CommandContext(SYSTEM, correlation_id="req-large")
MAX_PAYLOAD = 1500  # a plain target's message takes ~800 bytes with its headers, the large one below ~2,200
STREAM = "DUALRANDOM"


@pytest.fixture
def small_nats(tmp_path: Path) -> Iterator[EmbeddedNats]:
    with embedded_nats(tmp_path, max_payload=MAX_PAYLOAD) as server:
        yield server


def head(runtime: Any) -> int:
    return int(runtime.app.recorder.max_notification_id() or 0)


async def publish_all(relay: Relay, until: int) -> None:
    """Run the relay until its recorded position reaches ``until``."""
    try:
        while await asyncio.to_thread(relay.position) < until:
            await relay.run_once()
    finally:
        await relay.close()


def contract_body(runtime: Any, position: int) -> bytes:
    """The integration message of the event at ``position``, encoded as the relay encodes a CloudEvent's data."""
    n = runtime.app.recorder.select_notifications(position, 1)[0]
    ev = runtime.app.mapper.to_domain_event(n)
    contract = REGISTRY.current(topic_of(type(ev)))
    assert contract is not None
    data = {k: v for k, v in vars(ev).items()
            if k not in {"originator_id", "originator_version", "timestamp", "_meta", "originator_topic"}}
    return msgspec.json.encode(contract.to_message(json_safe(data)))


def test_a_message_too_large_goes_without_its_data_the_next_ones_flow_and_a_partner_fetches_it(
    runtime: Any, client: Any, auth: Any, small_nats: EmbeddedNats
) -> None:
    app = runtime.app
    app.register("department", a_department(), CTX)
    app.register("target", a_target(), CTX)
    large = app.register("target", a_target(address="亢" * 300, name="名" * 200), CTX)
    large_position = head(runtime)
    for _ in range(3):  # events of later positions, and of the same subject
        app.register("target", a_target(), CTX)
    last = head(runtime)

    relay = Relay(app, runtime.engine, small_nats.url, deployment=runtime.settings.deployment, batch_size=2)
    asyncio.run(publish_all(relay, last))
    msgs = asyncio.run(read_stream(small_nats.url))

    # Every event once, in log order, the large one at its place.
    positions = [int(m.headers["ce-position"]) for m in msgs]
    assert positions == list(range(1, last + 1))
    big = msgs[large_position - 1]
    assert big.subject == "dualrandom.shared.target.registered"
    assert big.headers["ce-id"] == event_id(large.id, 1)
    assert big.headers["Nats-Msg-Id"] == f"{event_id(large.id, 1)}:shared"
    assert big.headers[DATA_OMITTED_HEADER] == "too-large"
    assert big.headers["ce-dataref"] == f"/api/v1/audit/events/{large_position}/message"
    assert big.headers["ce-dataschema"] == "urn:dualrandom:schema:TargetRegisteredV1"
    assert "content-type" not in big.headers
    assert big.data == b""
    event = to_event(big)  # the partner helper: no data, where to fetch it, and why
    assert event["data"] is None and event["dataomitted"] == "too-large"
    assert event["dataref"] == big.headers["ce-dataref"] and event["position"] == large_position
    for m in msgs:
        if m is not big:  # the others carry their data as before
            assert DATA_OMITTED_HEADER not in m.headers and "ce-dataref" not in m.headers
            assert m.data == contract_body(runtime, int(m.headers["ce-position"]))
    assert relay.failure() is None

    # A partner of any department (targets are the shared directory) fetches exactly the message.
    r = client.get(big.headers["ce-dataref"], headers=auth("hj-amr", "partner"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.content == contract_body(runtime, large_position)
    assert json.loads(r.content)["address"] == "亢" * 300
    for h in ("ce-id", "ce-type", "ce-dataschema", "ce-position"):
        assert r.headers[h] == big.headers[h]

    # The department's own event: its department reads it, another department's partner may not.
    n = app.recorder.select_notifications(1, 1)[0]
    owners = recipients(app.mapper.to_domain_event(n)._meta)
    other = next(d for d in ("hj-amr", "hj-eeb", "hj-sj") if d not in owners)
    assert client.get("/api/v1/audit/events/1/message", headers=auth(owners[0], "partner")).content \
        == msgs[0].data
    refused = client.get("/api/v1/audit/events/1/message", headers=auth(other, "partner"))
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("application/problem+json")
    assert client.get("/api/v1/audit/events/1/message", headers=auth(other, "auditor")).status_code == 200
    missing = client.get(f"/api/v1/audit/events/{last + 1}/message", headers=auth("hj-amr", "partner"))
    assert missing.status_code == 404
    no_public = client.get(f"/api/v1/audit/events/{large_position}/message?form=public",
                           headers=auth("hj-amr", "partner"))
    assert no_public.status_code == 404  # a target's registration has no public form
    bad = client.get("/api/v1/audit/events/0/message", headers=auth("hj-amr", "partner"))
    assert bad.status_code == 400 and "position" in bad.text


async def create_strict_stream(url: str) -> None:
    """The stream as an operator might have limited it: one message per subject, further ones refused."""
    nc = await nats.connect(url)
    try:
        await nc.jetstream().add_stream(StreamConfig(
            name=STREAM, subjects=["dualrandom.>"], storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_SECONDS, max_msgs_per_subject=1, discard=DiscardPolicy.NEW,
            discard_new_per_subject=True,
        ))
    finally:
        await nc.close()


async def lift_the_limit(url: str) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        config = (await js.stream_info(STREAM)).config
        await js.update_stream(config.evolve(max_msgs_per_subject=-1, discard_new_per_subject=False))
    finally:
        await nc.close()


def test_an_event_jetstream_refuses_is_reported_by_ready_and_metrics_until_it_is_published(
    runtime: Any, client: Any, small_nats: EmbeddedNats
) -> None:
    app = runtime.app
    app.register("department", a_department(), CTX)
    app.register("target", a_target(), CTX)
    app.register("target", a_target(), CTX)  # the second message on dualrandom.shared.target.registered
    refused_at = head(runtime)
    asyncio.run(create_strict_stream(small_nats.url))
    relay = Relay(app, runtime.engine, small_nats.url, deployment=runtime.settings.deployment, batch_size=1)
    runtime.relay = relay
    try:
        async def until_refused() -> None:
            try:
                while True:
                    await relay.run_once()
            finally:
                await relay.close()

        with pytest.raises(PublishRefusedError) as raised:
            asyncio.run(until_refused())
        assert raised.value.position == refused_at
        assert relay.position() == refused_at - 1

        ready = client.get("/ready")
        assert ready.status_code == 503, ready.text
        body = ready.json()
        assert body["status"] == "failed"
        failed = body["relay"]["failed"]
        assert failed["position"] == refused_at
        assert failed["error"].startswith("PublishRefusedError: JetStream refused the message of position "
                                          f"{refused_at} on dualrandom.shared.target.registered")
        assert "maximum messages per subject exceeded" in failed["error"]
        metrics = client.get("/metrics").text
        assert "dualrandom_relay_failed 1\n" in metrics
        assert f"dualrandom_relay_failed_position {refused_at}\n" in metrics

        # The operator lifts the limit: the relay publishes the event, and the report is gone.
        asyncio.run(lift_the_limit(small_nats.url))
        asyncio.run(publish_all(relay, refused_at))
        assert relay.failure() is None
        assert "dualrandom_relay_failed 0\n" in client.get("/metrics").text
        ready = client.get("/ready")
        assert ready.json()["relay"]["failed"] is None
        assert ready.status_code == 200, ready.text
    finally:
        runtime.relay = None


def test_an_event_without_a_contract_is_reported_with_its_type_only_until_a_fixed_relay_publishes_it(
    runtime: Any, client: Any, small_nats: EmbeddedNats
) -> None:
    app = runtime.app
    app.register("department", a_department(), CTX)
    app.register("target", a_target(), CTX)
    broken = Relay(app, runtime.engine, small_nats.url, deployment=runtime.settings.deployment,
                   registry=Registry())  # a build that lost its contracts
    runtime.relay = broken
    try:
        async def once(relay: Relay) -> None:
            try:
                await relay.run_once()
            finally:
                await relay.close()

        with pytest.raises(ContractError):
            asyncio.run(once(broken))
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["status"] == "failed"
        assert ready.json()["relay"]["failed"]["position"] == 1
        assert ready.json()["relay"]["failed"]["error"] == "ContractError"  # no text that may quote stored data
        assert "dualrandom_relay_failed_position 1\n" in client.get("/metrics").text

        fixed = Relay(app, runtime.engine, small_nats.url, deployment=runtime.settings.deployment)
        runtime.relay = fixed
        asyncio.run(publish_all(fixed, head(runtime)))
        ready = client.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["relay"] == {"position": head(runtime), "lag": 0, "failed": None}
    finally:
        runtime.relay = None
