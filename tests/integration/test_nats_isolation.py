"""Each department's NATS user reads its own events and nothing else: a real nats-server run with the
configuration ``dualrandom nats-config`` writes, the relay publishing through its own user.

nats-py: a permission refusal does not raise; it arrives in ``error_cb``, and a forbidden JetStream call
surfaces only as a timeout. So isolation is shown by what is received (nothing) and what error_cb saw.
"""

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from domain.access import SYSTEM
from services.application import CommandContext, DualRandom, describe_event
from services.cli.nats import write_nats_config
from services.infra.nats_embedded import EmbeddedNats, free_port
from services.infra.partner import Subscription
from services.infra.relay import Relay, event_id
from services.infra.store import create_engine
from tests.support.builders import a_department, a_target, an_inspector
from tests.support.serve import log_of, spawn, wait_ready

CTX = CommandContext(SYSTEM, correlation_id="req-isolation")
DEPARTMENTS = ["hj-eeb", "hj-smb"]


class ConfiguredNats(EmbeddedNats):
    """The embedded server with extra configuration text (an ``include`` of the generated auth.conf)."""

    def __init__(self, port: int, store_dir: Path, extra: str) -> None:
        super().__init__(port, store_dir)
        self.extra = extra

    def write_config(self) -> Path:
        path = super().write_config()
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(self.extra)
        return path

    def url_for(self, user: str, password: str) -> str:
        return f"nats://{user}:{password}@{self.host}:{self.port}"


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[ConfiguredNats, dict[str, str]]]:
    passwords = write_nats_config(tmp_path / "conf", DEPARTMENTS)
    auth = tmp_path / "conf" / "auth.conf"
    assert oct(auth.stat().st_mode & 0o777) == "0o600"
    # NATS resolves an include relative to the including file's directory.
    server = ConfiguredNats(free_port(), tmp_path / "nats", 'include "../conf/auth.conf"\n')
    server.start()
    try:
        yield server, passwords
    finally:
        server.stop()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[DualRandom]:
    application = DualRandom(f"sqlite:///{tmp_path / 'events.db'}")
    yield application
    application.close()


def publish_all(app: DualRandom, url: str, engine: sa.Engine) -> int:
    async def run() -> int:
        relay = Relay(app, engine, url)
        try:
            total = 0
            while n := await relay.run_once():
                total += n
            return total
        finally:
            await relay.close()

    return asyncio.run(run())


def described(app: DualRandom) -> list[dict[str, Any]]:
    batch = app.recorder.select_notifications(0, 1000, inclusive_of_start=False)
    return [describe_event(app.mapper.to_domain_event(n), n.id) for n in batch]


async def read_all(sub: Subscription, expected: int, timeout: float = 10) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    async for event in sub.events(idle_timeout=1):
        out.append(event)
        await sub.ack(event)
        if len(out) >= expected or time.monotonic() > deadline:
            break
    return out


def test_a_department_receives_its_own_events_and_nothing_of_another(
    secured: tuple[ConfiguredNats, dict[str, str]], app: DualRandom, tmp_path: Path
) -> None:
    server, passwords = secured
    for code in DEPARTMENTS:
        app.register("department", a_department(code=code), CTX)
        app.register("inspector", an_inspector(department=code), CTX)
    app.register("target", a_target(), CTX)
    events = described(app)
    engine = create_engine(f"sqlite:///{tmp_path / 'events.db'}")
    assert publish_all(app, server.url_for("relay", passwords["relay"]), engine) == len(events) == 5
    engine.dispose()
    own = [e for e in events if e["meta"]["owner"] == "hj-eeb"]
    eeb = server.url_for("hj-eeb", passwords["hj-eeb"])

    async def scenario() -> dict[str, Any]:
        result: dict[str, Any] = {}
        # 1. Its own consumer: exactly its own events, in log order.
        async with Subscription(eeb, "hj-eeb") as sub:
            got = await read_all(sub, len(own))
            result["own"] = got
            result["own_errors"] = list(sub.errors)
        async with Subscription(eeb, "hj-eeb", "shared") as sub:
            result["shared"] = await read_all(sub, 1)
        # Starting after a log position works with the department's own permissions (no stream information).
        async with Subscription(eeb, "hj-eeb", from_position=own[0]["position"]) as sub:
            result["after_first"] = await read_all(sub, len(own) - 1)
            result["after_first_errors"] = list(sub.errors)
        # 2. What it may not do: each refusal reaches error_cb; nothing arrives.
        errors: list[Exception] = []

        async def on_error(exc: Exception) -> None:
            errors.append(exc)

        nc = await nats.connect(eeb, inbox_prefix="_INBOX_hj-eeb", error_cb=on_error, allow_reconnect=False)
        try:
            received: list[Any] = []

            async def collect(msg: Any) -> None:
                received.append(msg)

            await nc.subscribe("dualrandom.hj-smb.>", cb=collect)  # core NATS: refused
            await nc.subscribe("dualrandom.>", cb=collect)
            await nc.publish("dualrandom.hj-eeb.department.registered", b"{}")  # a forged event: refused
            await nc.flush()
            js = nc.jetstream(timeout=1)
            from nats.js.api import ConsumerConfig

            refused: list[str] = []
            for name, attempt in [
                # Its own consumer name, another department's filter: not in its allowed subjects.
                ("widened filter", js.add_consumer("DUALRANDOM", ConsumerConfig(
                    name="hj-eeb", durable_name="hj-eeb", filter_subject="dualrandom.hj-smb.>"))),
                # Another department's consumer name.
                ("other consumer", js.add_consumer("DUALRANDOM", ConsumerConfig(
                    name="hj-smb", durable_name="hj-smb", filter_subject="dualrandom.hj-smb.>"))),
                # The whole stream through direct get.
                ("direct get", js.get_msg("DUALRANDOM", 1)),
                # The stream's information, which with a subjects filter names every department's subjects.
                ("stream info", js.stream_info("DUALRANDOM", subjects_filter=">")),
            ]:
                try:
                    await attempt
                except (TimeoutError, nats.errors.TimeoutError):
                    refused.append(name)
            # Pulling from another department's consumer (as if it existed): refused, nothing delivered.
            pull = await js.pull_subscribe_bind("hj-smb", "DUALRANDOM")
            try:
                await pull.fetch(1, timeout=1)
            except nats.errors.TimeoutError:
                refused.append("fetch other")
            finally:
                await pull.unsubscribe()
            await nc.flush()
            deadline = time.monotonic() + 5
            while len(errors) < 7 and time.monotonic() < deadline:  # the callbacks run as tasks
                await nc.flush()
            result["received"] = received
            result["refused"] = refused
        finally:
            await nc.close()
        result["errors"] = [str(e) for e in errors]
        return result

    result = asyncio.run(scenario())
    assert [e["id"] for e in result["own"]] == [event_id(e["aggregate_id"], e["version"]) for e in own]
    assert {e["source"] for e in result["own"]} == {"/dualrandom/xinxiang-huojia/hj-eeb"}
    assert [e["type"] for e in result["own"]] == ["cn.gov.dualrandom.department.registered.v1",
                                                  "cn.gov.dualrandom.inspector.registered.v1"]
    assert result["own"][0]["data"]["code"] == "hj-eeb"
    assert result["own_errors"] == [] and result["after_first_errors"] == []
    assert [e["id"] for e in result["after_first"]] == [e["id"] for e in result["own"][1:]]
    assert [e["type"] for e in result["shared"]] == ["cn.gov.dualrandom.target.registered.v1"]
    assert result["received"] == []
    assert result["refused"] == ["widened filter", "other consumer", "direct get", "stream info", "fetch other"]
    violations = " | ".join(result["errors"]).lower()
    assert "permissions violation for subscription to \"dualrandom.hj-smb.>\"" in violations
    assert "permissions violation for publish to \"dualrandom.hj-eeb.department.registered\"" in violations
    assert "$js.api.consumer.create.dualrandom.hj-eeb.dualrandom.hj-smb.>" in violations
    assert "$js.api.consumer.msg.next.dualrandom.hj-smb" in violations
    assert "$js.api.stream.info.dualrandom" in violations


def test_nats_config_command_writes_users_for_registered_departments(tmp_path: Path, monkeypatch: Any) -> None:
    from services.cli import main

    monkeypatch.setenv("DUALRANDOM_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DUALRANDOM_DATABASE_URL", f"sqlite:///{tmp_path / 'events.db'}")
    monkeypatch.setenv("DUALRANDOM_RELAY_ENABLED", "false")
    app = DualRandom(f"sqlite:///{tmp_path / 'events.db'}")
    app.register("department", a_department(code="hj-eeb"), CTX)
    app.register("department", a_department(code="hj-smb"), CTX)
    app.close()
    out = tmp_path / "deploy-nats"
    runner = CliRunner()
    result = runner.invoke(main, ["nats-config", "--out", str(out), "--department", "hj-tax"])
    assert result.exit_code == 0, result.output
    conf = (out / "auth.conf").read_text("utf-8")
    creds = json.loads((out / "credentials.json").read_text("utf-8"))
    assert set(creds) == {"operator", "relay", "hj-eeb", "hj-smb", "hj-tax"}
    for code in ("hj-eeb", "hj-smb", "hj-tax"):
        assert f'"$JS.API.CONSUMER.CREATE.DUALRANDOM.{code}.dualrandom.{code}.>"' in conf
        assert f'"_INBOX_{code}.>"' in conf
    again = runner.invoke(main, ["nats-config", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert json.loads((out / "credentials.json").read_text("utf-8"))["hj-eeb"] == creds["hj-eeb"]  # kept


def test_a_full_serve_run_logs_no_configured_secret(
    secured: tuple[ConfiguredNats, dict[str, str]], database_url: str, tmp_path: Path
) -> None:
    """`dualrandom serve` with every secret configured (the relay's NATS password, the database password, the
    token key, the checkpoint signing key), tokens used and refused, the relay publishing, then stopped: no
    secret, token or password appears in any log line."""
    import base64
    import os
    import signal
    import subprocess
    import sys

    import httpx

    from services.api.auth import issue_token

    server, passwords = secured
    if database_url.startswith("postgresql"):  # the machine's PostgreSQL trusts local connections: any password
        database_url = database_url.replace("postgresql+psycopg://postgres@", "postgresql+psycopg://postgres:pg-Secret-77@")
        assert "pg-Secret-77" in database_url
    secret_key = "token-key-" + "k" * 40
    signing_key = base64.b64encode(bytes(range(32))).decode()
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DUALRANDOM_")},
           "DUALRANDOM_VAR_DIR": str(tmp_path / "var"), "DUALRANDOM_DATABASE_URL": database_url,
           "DUALRANDOM_NATS_URL": server.url_for("relay", passwords["relay"]), "DUALRANDOM_SECRET_KEY": secret_key,
           "DUALRANDOM_AUDIT_SIGNING_KEY": signing_key, "DUALRANDOM_LOG_FORMAT": "json"}
    cli = str(Path(sys.executable).parent / "dualrandom")
    subprocess.run([cli, "accounts", "create-admin", "--username", "eeb-admin", "--display-name", "管理员",
                    "--department", "hj-eeb", "--password-stdin"], env=env, input="a long admin passphrase\n",
                   text=True, check=True, capture_output=True)
    token = subprocess.run([cli, "token", "issue", "--username", "eeb-admin", "--ttl", "10m"], env=env, text=True,
                           check=True, capture_output=True).stdout.strip()
    proc = spawn(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    url = f"http://127.0.0.1:{port}"
    forged = issue_token("another-key-" + "x" * 40, "hj-eeb", ["admin"], None, 600)
    try:
        wait_ready(url, proc)
        h = {"Authorization": f"Bearer {token}"}
        r = httpx.post(url + "/api/v1/departments", headers=h, json=a_department(code="hj-eeb"))
        assert r.status_code == 201, r.text
        assert httpx.get(url + "/api/v1/targets", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
        position = r.json()["position"]
        deadline = time.monotonic() + 30
        while (httpx.get(url + "/ready").json()["relay"] or {}).get("position", 0) < position:  # published
            assert time.monotonic() < deadline, "the relay did not publish"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    stderr = log_of(proc)
    assert proc.returncode == 0, stderr[-2000:]
    assert '"serving"' in stderr
    for secret in (passwords["relay"], "pg-Secret-77", secret_key, signing_key, token, forged):
        assert secret not in stderr, f"a secret reached the log: {secret[:6]}..."
