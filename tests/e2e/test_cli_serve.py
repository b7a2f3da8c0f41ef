"""The two README paths as a newcomer takes them: `dualrandom serve` on the embedded default, tokens, demo."""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import nats
import pytest

from services.infra.nats_embedded import free_port
from tests.support.serve import admin_token, create_admin, log_of, run_cli, spawn, stop, wait_ready


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DUALRANDOM_")}
    return {**base, "DUALRANDOM_VAR_DIR": str(tmp_path / "var"), "DUALRANDOM_NATS_EMBEDDED_PORT": str(free_port()),
            "DUALRANDOM_LOG_FORMAT": "json"}


async def stream_subjects(nats_url: str, count: int, timeout: float = 15) -> list[tuple[str, dict]]:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    sub = await js.pull_subscribe("dualrandom.>", durable=None, stream="DUALRANDOM")
    got: list[tuple[str, dict]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        try:
            for m in await sub.fetch(count - len(got), timeout=1):
                got.append((m.subject, json.loads(m.data)))
                await m.ack()
        except nats.errors.TimeoutError:
            continue
    await sub.unsubscribe()
    await nc.close()
    return got


def test_serve_on_the_embedded_default_stores_serves_and_relays(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    proc = spawn(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        assert (tmp_path / "var" / "dualrandom.db").exists() and (tmp_path / "var" / "secret.key").exists()
        assert create_admin(env).returncode == 0
        token = run_cli(["token", "issue", "--username", "eeb-admin"], env).stdout.strip()
        h = {"Authorization": f"Bearer {token}"}
        r = httpx.post(url + "/api/v1/departments", headers=h, json={
            "code": "hj-eeb", "name": "新乡市生态环境局获嘉分局", "city": "新乡市", "county": "获嘉县", "kind": "ecology"})
        assert r.status_code == 201, r.text
        # listings are eventually consistent; min_position reads this write (the projection thread may lag)
        listing = httpx.get(url + "/api/v1/departments", headers=h, params={"min_position": r.json()["position"]})
        assert listing.json()["total"] == 1, listing.text
        nats_url = f"nats://127.0.0.1:{env['DUALRANDOM_NATS_EMBEDDED_PORT']}"
        got = asyncio.run(stream_subjects(nats_url, 5))  # the admin's account (created, password, token), then this
        got = [(s, d) for s, d in got if s.startswith("dualrandom.hj-eeb.")]  # (audit checkpoints interleave)
        assert [s for s, _ in got] == ["dualrandom.hj-eeb.account.created", "dualrandom.hj-eeb.account.password_set",
                                       "dualrandom.hj-eeb.account.token_issued",
                                       "dualrandom.hj-eeb.department.registered"]
        assert "a long admin passphrase" not in json.dumps([d for _, d in got])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    stderr = log_of(proc)
    assert proc.returncode == 0, stderr
    assert token not in stderr  # the token never reaches the logs
    for line in stderr.splitlines():
        json.loads(line)  # DUALRANDOM_LOG_FORMAT=json: every line is a JSON object
    # the embedded nats-server stopped with the server
    with pytest.raises(OSError):
        import socket

        socket.create_connection(("127.0.0.1", int(env["DUALRANDOM_NATS_EMBEDDED_PORT"])), timeout=1).close()


@pytest.mark.parametrize(
    ("key", "value"),
    [("DUALRANDOM_DATABASE_URL", "postgresql+psycopg://nobody:hunter2@127.0.0.1:1/none"),
     ("DUALRANDOM_DATABASE_URL", "mysql://x"),
     ("DUALRANDOM_NATS_URL", "nats://127.0.0.1:1")],
)
def test_a_wrong_or_unreachable_url_stops_start_up_with_one_clear_line(env: dict[str, str], key: str, value: str) -> None:
    result = run_cli(["serve", "--port", str(free_port())], {**env, key: value})
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and key in lines[0], result.stderr
    assert "hunter2" not in result.stderr


def test_token_issue_refuses_unknown_users_roles_departments_and_bad_durations(env: dict[str, str]) -> None:
    unknown = run_cli(["token", "issue", "--username", "nobody"], env)
    assert unknown.returncode != 0 and "no account with username 'nobody'" in unknown.stderr
    assert create_admin(env).returncode == 0
    again = create_admin(env, "second-admin")
    assert again.returncode != 0 and "an admin account exists already" in again.stderr
    assert run_cli(["token", "issue", "--username", "eeb-admin", "--role", "king"], env).returncode != 0
    role = run_cli(["token", "issue", "--username", "eeb-admin", "--role", "planner"], env)
    assert role.returncode != 0 and "does not hold the role(s) planner" in role.stderr
    dept = run_cli(["token", "issue", "--username", "eeb-admin", "--department", "hj-amr"], env)
    assert dept.returncode != 0 and "is of department 'hj-eeb'" in dept.stderr
    bad = run_cli(["token", "issue", "--username", "eeb-admin", "--ttl", "forever"], env)
    assert bad.returncode != 0 and "duration" in bad.stderr
    nodept = run_cli(["accounts", "create", "--username", "x", "--display-name", "x", "--department", "hj-nope",
                      "--role", "planner", "--service"], env)
    assert nodept.returncode != 0 and "department" in nodept.stderr and "unknown_department" in nodept.stderr
    ok = run_cli(["token", "issue", "--username", "eeb-admin", "--department", "hj-eeb", "--role", "admin"], env)
    assert ok.returncode == 0 and ok.stdout.count(".") == 2  # a JWT
    assert run_cli(["accounts", "deactivate", "eeb-admin", "--reason", "离职"], env).returncode == 0
    gone = run_cli(["token", "issue", "--username", "eeb-admin"], env)
    assert gone.returncode != 0 and "deactivated" in gone.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_drains_and_exits_within_a_bounded_time_under_load(env: dict[str, str], sig: int,
                                                                    tmp_path: Path) -> None:
    """Under writes and reads from 8 clients, SIGTERM (or SIGINT) stops the server cleanly (exit 0) within the
    documented bound, and no request got a 5xx: each was answered or refused a connection."""
    import threading

    port = free_port()
    proc = spawn(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    url = f"http://127.0.0.1:{port}"
    statuses: list[int] = []
    refused = 0
    h: dict[str, str] = {}
    threads: list[threading.Thread] = []
    done = threading.Event()

    def client(n: int) -> None:
        nonlocal refused
        with httpx.Client(base_url=url, headers=h, timeout=30) as c:
            i = 0
            while not done.is_set():
                i += 1
                try:
                    if i % 2:
                        r = c.post("/api/v1/items", json={
                            "department": "hj-eeb", "code": f"X{n}-{i:05d}", "name": "水污染防治监督检查",
                            "category": "general", "methods": ["on_site"], "documents": ["排污许可证"]})
                    else:
                        r = c.get("/api/v1/items", params={"limit": 20})
                    statuses.append(r.status_code)
                except httpx.TransportError:  # the listener closed: the server is draining or gone
                    refused += 1
                    return

    try:
        wait_ready(url, proc)
        assert create_admin(env).returncode == 0
        token = run_cli(["token", "issue", "--username", "eeb-admin"], env).stdout.strip()
        h.update({"Authorization": f"Bearer {token}"})
        r = httpx.post(url + "/api/v1/departments", headers=h, json={
            "code": "hj-eeb", "name": "新乡市生态环境局获嘉分局", "city": "新乡市", "county": "获嘉县", "kind": "ecology"})
        assert r.status_code == 201, r.text
        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(statuses) < 200:  # under load: 200 answers in
            assert time.monotonic() < deadline and proc.poll() is None, "no load reached the server"
            time.sleep(0.05)
        sent = time.monotonic()
        proc.send_signal(sig)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)  # serve dumps every thread's stack on stderr: why it hangs
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=3)
            pytest.fail("no exit 40 s after the signal:\n" + log_of(proc)[-12000:])
        took = time.monotonic() - sent
    finally:
        done.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for t in threads:
            t.join(30)
    assert proc.returncode == 0, log_of(proc)[-2000:]
    assert took < 30, f"exit took {took:.1f} s"
    assert not [s for s in statuses if s >= 500], sorted(set(statuses))
    print(f"{signal.Signals(sig).name}: exited in {took:.2f} s after {len(statuses)} answers, {refused} refused")


def test_an_api_process_reads_what_a_worker_process_projected(env: dict[str, str], tmp_path: Path) -> None:
    """`serve --role api` (no projections, no NATS) and `serve --role worker` (the projections alone) make one
    system: a write through the API is read back with min_position once the worker applied it."""
    env = {**env, "DUALRANDOM_RELAY_ENABLED": "false"}
    port = free_port()
    worker = spawn(["serve", "--role", "worker"], env, tmp_path / "worker.log")
    api = spawn(["serve", "--role", "api", "--port", str(port)], env, tmp_path / "api.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, api)
        assert create_admin(env).returncode == 0
        token = run_cli(["token", "issue", "--username", "eeb-admin"], env).stdout.strip()
        h = {"Authorization": f"Bearer {token}"}
        r = httpx.post(url + "/api/v1/departments", headers=h, json={
            "code": "hj-eeb", "name": "新乡市生态环境局获嘉分局", "city": "新乡市", "county": "获嘉县", "kind": "ecology"})
        assert r.status_code == 201, r.text
        listing = httpx.get(url + "/api/v1/departments", headers=h, params={"min_position": r.json()["position"]},
                            timeout=10)
        assert listing.status_code == 200 and listing.json()["total"] == 1, listing.text
        assert worker.poll() is None
    finally:
        for proc in (api, worker):
            proc.send_signal(signal.SIGTERM)
        for proc in (api, worker):
            proc.wait(timeout=30)
        outs = [log_of(proc)[-2000:] for proc in (api, worker)]
    assert (api.returncode, worker.returncode) == (0, 0), outs


def test_an_account_deactivated_from_another_process_is_refused_by_the_running_server(
    env: dict[str, str], tmp_path: Path
) -> None:
    """PostgreSQL: the server keeps the accounts it looked up (here for an hour, so that only the notification can
    end it); `dualrandom accounts deactivate`, another process, changes the table, whose trigger notifies every
    server of the schema: the server refuses the token from then on (waited for as the refusal itself, bounded)."""
    from tests.conftest import _fresh_pg_schema, _pg_base

    base = _pg_base()
    if base is None:
        pytest.skip("PostgreSQL is not configured (DUALRANDOM_TEST_DATABASE_URL)")
    with contextlib.contextmanager(_fresh_pg_schema)(base) as url:
        env = {**env, "DUALRANDOM_DATABASE_URL": url, "DUALRANDOM_RELAY_ENABLED": "false",
               "DUALRANDOM_ACCOUNT_KEEP_SECONDS": "3600"}
        token = admin_token(env)
        port = free_port()
        proc = spawn(["serve", "--port", str(port)], env, tmp_path / "serve.log")
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_ready(base_url, proc)
            with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as http:
                assert [http.get("/api/v1/accounts").status_code for _ in range(3)] == [200, 200, 200]  # kept
                done = run_cli(["accounts", "deactivate", "eeb-admin", "--reason", "离职"], env)
                assert done.returncode == 0, done.stderr
                deadline = time.monotonic() + 20
                while (status := http.get("/api/v1/accounts").status_code) == 200 and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert status == 401
                assert http.get("/api/v1/accounts").status_code == 401
        finally:
            stop(proc)
