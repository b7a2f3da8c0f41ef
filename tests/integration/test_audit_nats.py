"""Checkpoints reach partner agencies: published on ``dualrandom.audit.checkpoints`` in the JetStream stream,
once, and verifiable with nothing but the public key."""

import asyncio
import base64
import json
from dataclasses import replace
from pathlib import Path

import nats
import sqlalchemy as sa

from domain.access import SYSTEM
from services.application import CommandContext
from services.audit.checkpoints import SUBJECT, checkpoints, parse_body
from services.audit.keys import PublicKey
from services.infra.nats_embedded import EmbeddedNats, write_embedded_url
from services.infra.relay import Relay
from services.infra.settings import Settings
from services.runtime import Runtime
from tests.support.builders import a_department, a_target
from tests.support.nats import nats_server  # noqa: F401 - fixture

CTX = CommandContext(SYSTEM, correlation_id="req-checkpoint-test")


def test_a_checkpoint_is_published_once_and_a_partner_verifies_it(nats_server: EmbeddedNats, tmp_path: Path) -> None:  # noqa: F811
    settings = replace(Settings(var_dir=tmp_path / "var", relay_enabled=False),
                       database_url=f"sqlite:///{tmp_path / 'events.db'}").with_secret()
    rt = Runtime(settings).open(with_nats=False)
    try:
        rt.app.register("department", a_department(), CTX)
        rt.app.register("target", a_target(), CTX)
        rt.runner.catch_up()
        cp = rt.checkpointer.checkpoint()
        assert cp is not None and rt.checkpointer.checkpoint() is None  # the tree did not grow
        partner_key = rt.checkpointer.signer.public.vkey  # handed to the partner out of band

        async def scenario() -> tuple[int, int, object]:
            relay = Relay(rt.app, rt.engine, nats_server.url)  # creates the stream (dualrandom.>), as in serve
            await relay.run_once()
            await relay.close()
            rt.checkpointer.nats_url = nats_server.url
            first = await rt.checkpointer.publish_pending()
            again = await rt.checkpointer.publish_pending()
            await rt.checkpointer.close()
            nc = await nats.connect(nats_server.url)
            try:
                msg = await nc.jetstream().get_last_msg("DUALRANDOM", SUBJECT)
            finally:
                await nc.close()
            return first, again, msg

        first, again, msg = asyncio.run(scenario())
        assert (first, again) == (1, 0)
        with rt.engine.connect() as conn:
            assert conn.execute(sa.select(checkpoints.c.published)).scalar_one() is True
        headers = msg.headers or {}  # type: ignore[attr-defined]
        assert headers["Nats-Msg-Id"] == f"checkpoint:{cp.origin}:{cp.tree_size}"
        assert headers["ce-type"] == "cn.gov.dualrandom.audit.checkpoint.v1"
        # The partner: only the message and the verifier key.
        body = json.loads(msg.data)  # type: ignore[attr-defined]
        key = PublicKey.parse(partner_key, "")
        assert key.verify(body["body"].encode(), base64.b64decode(body["signature"]))
        origin, size, root, _ = parse_body(body["body"])
        assert (origin, size, root.hex()) == (key.name, 2, body["root_hash"])
        assert not key.verify(body["body"].replace("\n2\n", "\n3\n").encode(), base64.b64decode(body["signature"]))
        _verify_from_nats_finds_the_embedded_url(settings, nats_server.url)
    finally:
        rt.close()


def _verify_from_nats_finds_the_embedded_url(settings: Settings, url: str) -> None:
    """`audit verify --from-nats -` on the embedded default: no DUALRANDOM_NATS_URL, the URL the running server
    recorded in <var>/nats/url; without either, a usage error naming that file."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("DUALRANDOM_")}
    env |= {"DUALRANDOM_DATABASE_URL": settings.database_url, "DUALRANDOM_VAR_DIR": str(settings.var_dir),
            "DUALRANDOM_SECRET_KEY": settings.secret_key, "DUALRANDOM_RELAY_ENABLED": "false"}
    cli = [sys.executable, "-m", "services.cli", "audit", "verify", "--from-nats", "-"]
    (settings.var_dir / "nats").mkdir(parents=True, exist_ok=True)
    (settings.var_dir / "nats" / "url").unlink(missing_ok=True)
    none = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
    assert none.returncode == 2 and "nats/url" in none.stderr, none.stdout + none.stderr
    write_embedded_url(settings.var_dir, url)
    found = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stdout + found.stderr
    assert "OK" in found.stdout and "held outside the database: 1 (newest at size 2)" in found.stdout, found.stdout
