"""Lose nothing, see nothing twice: the relay as a real process killed with SIGKILL mid-run, the NATS server
killed and restarted (file storage, ``sync_interval: always``), and PostgreSQL unreachable for a while
(through a TCP proxy the test stops). After recovery the stream holds every event of the store exactly once,
in store order."""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import nats
import pytest
import sqlalchemy as sa

from domain.access import SYSTEM
from services.application import CommandContext, DualRandom
from services.infra.nats_embedded import EmbeddedNats, free_port
from tests.integration.test_relay import assert_stream_holds_log_once, log_events, read_stream
from tests.support.builders import a_department, a_target
from tests.support.nats import nats_server  # noqa: F401 - fixture

CTX = CommandContext(SYSTEM, correlation_id="req-faults")
ROOT = Path(__file__).resolve().parents[2]
RELAY_SCRIPT = """
import asyncio, sys
from services.application import DualRandom
from services.infra.relay import Relay
from services.infra.store import create_engine
db, url = sys.argv[1], sys.argv[2]
relay = Relay(DualRandom(db), create_engine(db), url, batch_size=int(sys.argv[3]), poll_interval=0.05,
              connect_timeout=1, ack_timeout=3)
asyncio.run(relay.run(asyncio.Event()))
"""


@pytest.fixture
def app(database_url: str) -> Iterator[DualRandom]:
    application = DualRandom(database_url)
    yield application
    application.close()


def fill(app: DualRandom, n: int) -> None:
    """n targets in one transaction (one import), after a department."""
    if not app.recorder.max_notification_id():
        app.register("department", a_department(), CTX)
    app.import_entries("target", [(i + 2, a_target()) for i in range(n)], CTX)


def head(app: DualRandom) -> int:
    return int(app.recorder.max_notification_id() or 0)


def relay_position(database_url: str) -> int:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            try:
                value = conn.execute(sa.text("SELECT position FROM relay_position WHERE name = 'DUALRANDOM'")).scalar()
            except sa.exc.DBAPIError:
                return 0
        return int(value or 0)
    finally:
        engine.dispose()


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)  # polling interval: each check opens a connection to SQLite or NATS


def stream_count(url: str) -> int:
    async def count() -> int:
        nc = await nats.connect(url, allow_reconnect=False, connect_timeout=1)
        try:
            return (await nc.jetstream(timeout=2).stream_info("DUALRANDOM")).state.messages
        except Exception:  # noqa: BLE001 - not created yet, server restarting
            return 0
        finally:
            await nc.close()

    try:
        return asyncio.run(count())
    except Exception:  # noqa: BLE001 - server down
        return 0


class RelayProcess:
    """``services.infra.relay.Relay.run`` in a child process (its output in a file), killed with SIGKILL."""

    def __init__(self, database_url: str, nats_url: str, log_path: Path, batch_size: int = 50,
                 cli: bool = False) -> None:
        """``cli``: the real ``dualrandom relay run`` command (batches of 500) instead of a small script."""
        if cli:
            self.args = [str(Path(sys.executable).parent / "dualrandom"), "relay", "run"]
        else:
            self.args = [sys.executable, "-c", RELAY_SCRIPT, database_url, nats_url, str(batch_size)]
        self.env = {"DUALRANDOM_DATABASE_URL": database_url, "DUALRANDOM_NATS_URL": nats_url,
                    "DUALRANDOM_VAR_DIR": str(log_path.parent / "var")}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "RelayProcess":
        env = {**os.environ, **self.env, "DUALRANDOM_LOG_FORMAT": "json", "PYTHONPATH": str(ROOT)}
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(self.args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def assert_exactly_once(app: DualRandom, url: str) -> None:
    msgs = [m for m in asyncio.run(read_stream(url)) if not m.subject.startswith("dualrandom.audit.")]
    assert_stream_holds_log_once(msgs, log_events(app))


def test_a_relay_killed_mid_run_resumes_without_loss_or_duplicates(
    app: DualRandom, database_url: str, nats_server: EmbeddedNats, tmp_path: Path  # noqa: F811
) -> None:
    fill(app, 3000)
    total = len(log_events(app))
    relay = RelayProcess(database_url, nats_server.url, tmp_path / "relay.log").start()
    try:
        wait_for(lambda: stream_count(nats_server.url) >= 300, what="the relay to publish")
        relay.kill()  # SIGKILL: no cleanup, a batch may be published but its position not recorded
        published, recorded = stream_count(nats_server.url), relay_position(database_url)
        assert published < total, "the relay finished before the kill: make the log longer"
        assert recorded < head(app)
        fill(app, 200)  # writes go on while no relay runs
        relay = RelayProcess(database_url, nats_server.url, tmp_path / "relay2.log").start()
        wait_for(lambda: relay_position(database_url) == head(app), what="the restarted relay to catch up")
    finally:
        relay.stop()
    assert_exactly_once(app, nats_server.url)


def test_a_nats_server_killed_and_restarted_loses_nothing(
    app: DualRandom, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = EmbeddedNats(port=free_port(), store_dir=tmp_path / "nats").start()
    fill(app, 2000)
    relay = RelayProcess(database_url, server.url, tmp_path / "relay.log", cli=True).start()
    try:
        wait_for(lambda: stream_count(server.url) >= 200, what="the relay to publish")
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)  # acks were fsynced (sync_interval: always): nothing acked is lost
        server.stop()
        fill(app, 200)
        wait_for(lambda: "relay_batch_failed" in relay.log(), what="the relay to notice")
        # The killed server's connections linger in TIME_WAIT on its port: nats-server binds anyway
        # (SO_REUSEADDR), but EmbeddedNats's own check would refuse.
        monkeypatch.setattr("services.infra.nats_embedded.port_is_free", lambda *a, **k: True)
        server.start()
        wait_for(lambda: relay_position(database_url) == head(app), what="the relay to recover")
        relay.stop()  # SIGTERM: the worker stops cleanly
        assert relay.proc is not None and relay.proc.returncode == 0, relay.log()[-2000:]
        assert_exactly_once(app, server.url)
    finally:
        relay.stop()
        server.stop()


class TcpProxy:
    """A TCP forwarder to PostgreSQL that the test can cut (closing every connection) and restore."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> "TcpProxy":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut while this one was being connected
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Stop listening and drop every open connection: the database is unreachable."""
        with self._lock:
            if self._listener is not None:
                # shutdown wakes the thread blocked in accept(): a bare close() leaves the socket listening
                # until that accept returns, and the restart's bind then fails with EADDRINUSE
                with contextlib.suppress(OSError):
                    self._listener.shutdown(socket.SHUT_RDWR)
                self._listener.close()
                self._listener = None
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


def test_the_relay_survives_the_database_being_unreachable(
    app: DualRandom, database_url: str, nats_server: EmbeddedNats, tmp_path: Path  # noqa: F811
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("a TCP proxy cuts the connection to PostgreSQL; a SQLite file cannot be unreachable")
    parts = urlsplit(database_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432)).start()
    netloc = parts.netloc.rsplit("@", 1)
    via_proxy = urlunsplit(parts._replace(netloc=(netloc[0] + "@" if len(netloc) == 2 else "")
                                          + f"127.0.0.1:{proxy.port}"))
    fill(app, 1000)
    relay = RelayProcess(via_proxy, nats_server.url, tmp_path / "relay.log").start()
    try:
        wait_for(lambda: relay_position(database_url) == head(app), what="the relay to publish")
        proxy.cut()
        fill(app, 500)  # the store still takes writes (directly); the relay cannot read them
        wait_for(lambda: "relay_batch_failed" in relay.log(), what="the relay to fail on the database")
        assert relay_position(database_url) < head(app)
        proxy.start()
        wait_for(lambda: relay_position(database_url) == head(app), what="the relay to recover")
    finally:
        relay.stop()
        proxy.cut()
    assert relay.proc is not None and relay.proc.returncode is not None
    assert_exactly_once(app, nats_server.url)
