"""EmbeddedNats: a real nats-server child with JetStream that starts, listens, stops and dies with its parent."""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import nats
import pytest

from services.infra.nats_embedded import EmbeddedNats, find_nats_server, free_port, port_is_free
from tests.support.nats import nats_server  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    """Is ``pid`` a live (not zombie) process?"""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in {"Z", "X"}


def _wait_until(condition, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_the_binary_of_the_wheel_is_found_in_the_venv() -> None:
    assert Path(find_nats_server()).parent == Path(sys.executable).parent


def test_free_port_is_below_the_ephemeral_range_and_bindable() -> None:
    for _ in range(20):
        port = free_port()
        assert 20000 <= port <= 32000
        assert port_is_free(port)


def test_start_listens_with_jetstream_and_stop_ends_the_process(tmp_path: Path) -> None:
    server = EmbeddedNats(port=free_port(), store_dir=tmp_path / "var" / "nats")
    server.start()
    try:
        assert server.url == f"nats://127.0.0.1:{server.port}"
        assert _accepts(server.port)
        pid = server.pid
        assert pid is not None and _alive(pid)
        conf = server.config_path.read_text()
        assert "sync_interval: always" in conf and str(tmp_path / "var" / "nats") in conf

        async def jetstream_account() -> int:
            nc = await nats.connect(server.url, allow_reconnect=False)
            try:
                info = await nc.jetstream().account_info()
                return info.streams
            finally:
                await nc.close()

        assert asyncio.run(jetstream_account()) == 0
        assert (tmp_path / "var" / "nats" / "jetstream").is_dir()
    finally:
        server.stop()
    assert not server.running and server.pid is None
    assert not _alive(pid)
    assert not _accepts(server.port)
    server.stop()  # idempotent


def test_context_manager_starts_and_stops(tmp_path: Path) -> None:
    with EmbeddedNats(port=free_port(), store_dir=tmp_path / "nats") as server:
        pid = server.pid
        assert server.running and _accepts(server.port)
    assert pid is not None and not _alive(pid)


def test_fixture_gives_a_running_server(nats_server: EmbeddedNats) -> None:  # noqa: F811
    assert nats_server.running and _accepts(nats_server.port)


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"127.0.0.1:{port} is already in use"):
            EmbeddedNats(port=port, store_dir=tmp_path / "nats").start()


def test_a_server_that_dies_at_start_reports_its_log(tmp_path: Path) -> None:
    store = tmp_path / "nats"
    store.mkdir()
    (store / "jetstream").write_text("not a directory")  # JetStream cannot create its store
    server = EmbeddedNats(port=free_port(), store_dir=store)
    with pytest.raises(RuntimeError, match="nats-server exited") as info:
        server.start()
    assert "jetstream" in str(info.value).lower()
    assert not server.running


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_the_server_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from services.infra.nats_embedded import EmbeddedNats
        server = EmbeddedNats(port={free_port()}, store_dir={str(tmp_path / "nats")!r}).start()
        print("PID", server.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert parent.stdout is not None
        line = ""
        while not line.startswith("PID "):  # structlog may print to stdout too
            line = parent.stdout.readline()
            assert line, "the parent exited before starting nats-server"
        child = int(line.split()[1])
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=5)
        _wait_until(lambda: not _alive(child), timeout=10, what="nats-server to die with its parent")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        with contextlib.suppress(NameError, ProcessLookupError):  # if the test failed, do not leave the server behind
            os.kill(child, signal.SIGKILL)


def test_a_server_started_from_a_short_lived_thread_outlives_that_thread(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG fires when the forking *thread* ends; the server must survive its starter thread."""
    server = EmbeddedNats(port=free_port(), store_dir=tmp_path / "nats")
    native_id: list[int] = []

    def starter() -> None:
        native_id.append(threading.get_native_id())
        server.start()

    t = threading.Thread(target=starter)
    t.start()
    t.join()
    try:
        _wait_until(lambda: not os.path.exists(f"/proc/self/task/{native_id[0]}"), what="the thread to end")

        async def roundtrip() -> None:
            nc = await nats.connect(server.url, allow_reconnect=False)
            try:
                await nc.jetstream().account_info()
            finally:
                await nc.close()

        asyncio.run(roundtrip())
        assert server.running
    finally:
        server.stop()


def _time_wait_port() -> int:
    """A port whose last connection was closed by the listening side first: it lingers in TIME_WAIT."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", free_port()))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the server side closes first: its end of the connection goes to TIME_WAIT
        client.recv(1)  # the FIN reached the client
        client.close()
    return port


def test_a_port_left_in_time_wait_by_a_killed_server_is_free_at_once() -> None:
    port = _time_wait_port()
    assert port_is_free(port)
    with socket.socket() as plain, pytest.raises(OSError):  # what the check did before: no SO_REUSEADDR
        plain.bind(("127.0.0.1", port))


def test_a_restart_after_kill_9_starts_on_the_same_port_at_once(tmp_path: Path) -> None:
    server = EmbeddedNats(port=free_port(), store_dir=tmp_path / "nats").start()
    try:
        async def touch() -> None:
            nc = await nats.connect(server.url)
            await nc.close()

        asyncio.run(touch())
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)
        server.stop()
        server.start()  # no wait for the kernel to forget the old connections
        assert _accepts(server.port)
    finally:
        server.stop()


def test_two_instances_on_the_embedded_default_run_side_by_side(tmp_path: Path) -> None:
    from services.infra.nats_embedded import embedded_url
    from services.infra.settings import Settings
    from services.runtime import Runtime

    opened = []
    try:
        for name in ("first", "second"):
            settings = Settings(var_dir=tmp_path / name, database_url=f"sqlite:///{tmp_path / name}.db")
            assert settings.nats_embedded_port is None
            opened.append(Runtime(settings.with_secret()).open(with_nats=True))
        urls = [rt.nats_url for rt in opened]
        assert urls[0] != urls[1]
        for rt, name in zip(opened, ("first", "second"), strict=True):
            assert embedded_url(tmp_path / name) == rt.nats_url  # what `dualrandom subscribe` connects to
            assert _accepts(int(rt.nats_url.rsplit(":", 1)[1]))
    finally:
        for rt in opened:
            rt.close()


def test_an_explicit_port_that_is_taken_stops_start_up_naming_the_setting(tmp_path: Path) -> None:
    from services.infra.settings import Settings, SettingsError
    from services.runtime import Runtime

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        settings = Settings(var_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/x.db", nats_embedded_port=port)
        rt = Runtime(settings.with_secret())
        try:
            with pytest.raises(SettingsError, match=f"^DUALRANDOM_NATS_EMBEDDED_PORT: .*{port}"):
                rt.open(with_nats=True)
        finally:
            rt.close()
