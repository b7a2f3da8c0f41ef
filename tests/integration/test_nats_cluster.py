"""The shipped 3-node cluster configuration (deploy/nats/cluster) on loopback: the relay creates an R3 stream,
publishes, the stream's leader is stopped, writes go on, and nothing is lost or duplicated."""

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from domain.access import SYSTEM
from services.application import CommandContext, DualRandom
from services.cli.nats import write_nats_config
from services.infra.nats_embedded import EmbeddedNats, free_port
from services.infra.relay import Relay
from services.infra.store import create_engine
from tests.integration.test_relay import assert_stream_holds_log_once, log_events, read_stream
from tests.support.builders import a_department, a_target

ROOT = Path(__file__).resolve().parents[2]
CTX = CommandContext(SYSTEM, correlation_id="req-cluster")


class ClusterNode(EmbeddedNats):
    """deploy/nats/cluster/node-N.conf with loopback ports and a temporary store."""

    def __init__(self, n: int, ports: list[int], routes: list[int], root: Path) -> None:
        super().__init__(ports[n - 1], root / f"node-{n}")
        self.n, self.ports, self.routes = n, ports, routes

    def write_config(self) -> Path:
        text = (ROOT / f"deploy/nats/cluster/node-{self.n}.conf").read_text("utf-8")
        text = text.replace("listen: 0.0.0.0:4222", f"listen: 127.0.0.1:{self.port}")
        text = re.sub(r"^http: .*$", "", text, flags=re.M)
        text = text.replace("store_dir: /data/jetstream", f'store_dir: "{self.store_dir}/js"')
        text = text.replace("listen: 0.0.0.0:6222", f"listen: 127.0.0.1:{self.routes[self.n - 1]}")
        for i in (1, 2, 3):
            text = text.replace(f"nats-route://nats-{i}:6222", f"nats-route://127.0.0.1:{self.routes[i - 1]}")
        text = text.replace("include ../auth.conf", 'include "../auth.conf"')
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(text, "utf-8")
        return self.config_path


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[list[ClusterNode], dict[str, str]]]:
    passwords = write_nats_config(tmp_path, ["hj-eeb"])  # tmp_path/auth.conf: ../auth.conf of each node
    ports = [free_port() for _ in range(3)]
    routes = [free_port() for _ in range(3)]
    nodes = [ClusterNode(n, ports, routes, tmp_path) for n in (1, 2, 3)]
    threads = [threading.Thread(target=node.start, kwargs={"timeout": 20}) for node in nodes]
    for t in threads:  # together: each waits for the others' routes
        t.start()
    for t in threads:
        t.join()
    try:
        assert all(node.running for node in nodes)
        yield nodes, passwords
    finally:
        for node in nodes:
            node.stop()


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def test_an_r3_stream_loses_nothing_when_its_leader_stops(
    cluster: tuple[list[ClusterNode], dict[str, str]], tmp_path: Path
) -> None:
    nodes, passwords = cluster
    db = f"sqlite:///{tmp_path / 'events.db'}"
    app = DualRandom(db)
    engine = create_engine(db)
    url = ",".join(f"nats://relay:{passwords['relay']}@127.0.0.1:{n.port}" for n in nodes)
    relay = Relay(app, engine, url, replicas=3, connect_timeout=1, ack_timeout=3, poll_interval=0.05)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    runner = threading.Thread(target=loop.run_until_complete, args=(relay.run(stop),), daemon=True)
    operator = f"nats://operator:{passwords['operator']}@127.0.0.1:"

    def head() -> int:
        return int(app.recorder.max_notification_id() or 0)

    async def info(port: int) -> Any:
        nc = await nats.connect(operator + str(port), allow_reconnect=False, connect_timeout=1)
        try:
            return await nc.jetstream(timeout=2).stream_info("DUALRANDOM")
        finally:
            await nc.close()

    try:
        app.register("department", a_department(), CTX)
        app.import_entries("target", [(i + 2, a_target()) for i in range(500)], CTX)
        runner.start()  # the stream is created once the cluster has a JetStream leader (the relay retries)
        wait_for(lambda: relay.position() == head(), what="the first events")
        before = asyncio.run(info(nodes[0].port))
        assert before.config.num_replicas == 3
        leader = next(n for n in nodes if f"nats-{n.n}" == before.cluster.leader)
        leader.stop()
        survivors = [n for n in nodes if n is not leader]
        for _i in range(5):  # writes go on, as commands: the relay must fail over to a new leader
            app.import_entries("target", [(j + 2, a_target()) for j in range(100)], CTX)
            relay.wake()
        wait_for(lambda: relay.position() == head(), what="the relay after the leader stopped")
        after = asyncio.run(info(survivors[0].port))
        assert after.cluster.leader != before.cluster.leader
        msgs = asyncio.run(read_stream(operator + str(survivors[1].port)))
        assert_stream_holds_log_once(msgs, log_events(app))
        assert len(msgs) == 1 + 500 + 500
    finally:
        loop.call_soon_threadsafe(stop.set)
        runner.join(timeout=15)
        engine.dispose()
        app.close()
