"""Witnesses over a real nats-server with the users ``dualrandom nats-config`` writes: a partner's witness
cosigns a checkpoint, the server stores the cosignature, coverage and ``verify --witnesses`` see it; a
department cannot publish another's cosignatures; a fork across two servers started on diverging copies is
refused by the witness on its own subject."""

import asyncio
import json
import sqlite3
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import nats
import pytest
import sqlalchemy as sa

from services.audit.checkpoints import Checkpoint, SignerAlarmError, create_checkpoint
from services.audit.external import fetch_jetstream
from services.audit.log import events_table
from services.audit.verify import verify_log
from services.audit.witness import (
    REFUSED_TYPE,
    Verdict,
    Witness,
    WitnessKey,
    cosignatures,
    coverage_of,
    subject,
    witnessed_checkpoints,
)
from services.cli.witness import run_witness
from services.infra.relay import Relay
from services.infra.settings import Settings
from services.runtime import Runtime
from tests.integration.test_audit_external import store_proofs
from tests.integration.test_audit_tamper import CTX, fill
from tests.integration.test_nats_isolation import ConfiguredNats, secured  # noqa: F401 - fixture
from tests.support.builders import a_target

SEED = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # the documented example key; never use it


def open_runtime(tmp_path: Path, name: str, db: Path) -> Runtime:
    settings = replace(Settings(var_dir=tmp_path / name, relay_enabled=False), database_url=f"sqlite:///{db}",
                       audit_signing_key=SEED).with_secret()
    return Runtime(settings).open(with_nats=False)


async def judge_until(witness: Witness, url: str, count: int) -> list[Verdict]:
    """Run the witness until it has judged ``count`` checkpoints (deadline 20 s)."""
    stop = asyncio.Event()
    verdicts: list[Verdict] = []

    def seen(v: Verdict) -> None:
        verdicts.append(v)
        if len(verdicts) >= count:
            stop.set()

    await asyncio.wait_for(run_witness(witness, url, "hj-eeb", stop=stop, on_verdict=seen), timeout=20)
    return verdicts


async def publish(rt: Runtime, relay_url: str) -> Checkpoint | None:
    relay = Relay(rt.app, rt.engine, relay_url)
    try:
        while await relay.run_once():
            pass
    finally:
        await relay.close()
    rt.checkpointer.nats_url = relay_url
    cp = await rt.checkpointer.sign_once()
    await rt.checkpointer.publish_pending()
    return cp


def test_a_witness_cosigns_the_server_stores_it_and_verify_counts_it(
    secured: tuple[ConfiguredNats, dict[str, str]], tmp_path: Path,  # noqa: F811
) -> None:
    server, passwords = secured
    relay_url = server.url_for("relay", passwords["relay"])
    rt = open_runtime(tmp_path, "a", tmp_path / "a.db")
    wkey = WitnessKey.from_seed("hj-eeb.example.gov.cn/witness", bytes(range(1, 33)))
    rt.checkpointer.witness_keys = [wkey.public]
    witness = Witness(wkey, rt.checkpointer.signer.public, tmp_path / "witness.json", store_proofs(rt))
    try:
        fill(rt)
        rt.runner.catch_up()

        async def scenario() -> tuple[Checkpoint | None, list[Verdict], int, list[Any]]:
            cp = await publish(rt, relay_url)
            verdicts = await judge_until(witness, server.url_for("hj-eeb", passwords["hj-eeb"]), 1)
            stored = await rt.checkpointer.collect_cosignatures(wait=2)
            # hj-smb may not publish hj-eeb's cosignatures: refused by the server (error_cb), not stored.
            errors: list[Any] = []

            async def on_error(exc: Exception) -> None:
                errors.append(exc)

            nc = await nats.connect(server.url_for("hj-smb", passwords["hj-smb"]), error_cb=on_error,
                                    inbox_prefix="_INBOX_hj-smb")
            await nc.publish(subject("hj-eeb"), b'{"forged": true}')
            await nc.publish(subject("hj-smb"), b'{"own": true}')
            await nc.flush()
            deadline = time.monotonic() + 5
            while not errors and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await nc.close()
            return cp, verdicts, stored, errors

        cp, verdicts, stored, errors = asyncio.run(scenario())
        assert cp is not None and [v.kind for v in verdicts] == ["cosigned"] and stored == 1
        assert any("permissions violation" in str(e).lower() and subject("hj-eeb") in str(e) for e in errors), errors
        assert json.loads((tmp_path / "witness.json").read_text())["tree_size"] == cp.tree_size
        with rt.engine.connect() as conn:
            view = coverage_of(conn, rt)
        assert view["witnessed_checkpoint"]["tree_size"] == cp.tree_size
        assert [w["witness"] for w in view["latest_checkpoint"]["witnesses"]] == [wkey.public.name]
        assert view["events_since_witnessed"] == 0
        # verify --witnesses 1: the cosigned checkpoint stands even when its row is deleted.
        from services.audit.checkpoints import checkpoints

        with rt.engine.begin() as conn:
            conn.execute(checkpoints.delete())
        report = verify_log(rt.engine, events_table(rt.app), rt.checkpointer.signer.public,
                            witnessed=witnessed_checkpoints(rt.engine, [wkey.public], 1), witnesses_required=1)
        assert report.ok and report.witnessed_latest == cp.tree_size, report.lines()
        two = verify_log(rt.engine, events_table(rt.app), rt.checkpointer.signer.public,
                         witnessed=witnessed_checkpoints(rt.engine, [wkey.public], 2), witnesses_required=2)
        assert [f.kind for f in two.findings] == ["witnesses"]
        with rt.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(cosignatures)).scalar_one() == 1
    finally:
        rt.close()


def test_a_fork_across_two_servers_on_diverging_copies_is_refused_by_the_witness(
    secured: tuple[ConfiguredNats, dict[str, str]], tmp_path: Path,  # noqa: F811
) -> None:
    server, passwords = secured
    relay_url = server.url_for("relay", passwords["relay"])
    a = open_runtime(tmp_path, "a", tmp_path / "a.db")
    fill(a)
    a.runner.catch_up()
    with sqlite3.connect(tmp_path / "a.db") as src, sqlite3.connect(tmp_path / "b.db") as dst:
        src.backup(dst)
    b = open_runtime(tmp_path, "b", tmp_path / "b.db")
    wkey = WitnessKey.from_seed("hj-eeb.example.gov.cn/witness", bytes(range(1, 33)))
    witness = Witness(wkey, a.checkpointer.signer.public, tmp_path / "witness.json", store_proofs(a))
    try:
        a.app.register("target", a_target(), CTX)
        b.app.register("target", a_target(), CTX)
        b.app.register("target", a_target(), CTX)
        a.runner.catch_up()
        b.runner.catch_up()

        async def scenario() -> tuple[list[Verdict], list[Any]]:
            assert (await publish(a, relay_url)) is not None
            first = await judge_until(witness, server.url_for("hj-eeb", passwords["hj-eeb"]), 1)
            # b does not relay (its events would clash with a's ids in the stream): it only signs and publishes.
            # b's own signer sees a's checkpoint in JetStream and refuses (its tree does not extend it) ...
            b.checkpointer.nats_url = relay_url
            with pytest.raises(SignerAlarmError, match="not the one published"):
                await b.checkpointer.sign_once()
            # ... so b signs as a signer checking only its own database would.
            assert (await asyncio.to_thread(create_checkpoint, b.engine, b.checkpointer.signer))[1]
            await b.checkpointer.publish_pending()
            second = await judge_until(witness, server.url_for("hj-eeb", passwords["hj-eeb"]), 1)
            nc = await nats.connect(relay_url)
            try:
                msg = await nc.jetstream().get_last_msg("DUALRANDOM", subject("hj-eeb"))
            finally:
                await nc.close()
            return first + second, [msg, await fetch_jetstream(relay_url)]

        verdicts, (msg, published) = asyncio.run(scenario())
        assert [v.kind for v in verdicts] == ["cosigned", "fork"], verdicts
        assert (msg.headers or {})["ce-type"] == REFUSED_TYPE
        refusal = json.loads(msg.data)
        assert refusal["refused"] == "fork" and refusal["tree_size"] == 14
        # The state still holds the accepted checkpoint of a.
        assert json.loads((tmp_path / "witness.json").read_text())["tree_size"] == 13
        # audit verify on a with everything JetStream holds: b's checkpoint is beyond a's log.
        report = verify_log(a.engine, events_table(a.app), a.checkpointer.signer.public, external=published)
        assert [f.kind for f in report.findings] == ["external_beyond_log"]
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("vkey", ["x+00000000+AQ==", "name+deadbeef+" + "BA" + "A" * 42])
def test_a_bad_witness_key_is_refused_at_start(tmp_path: Path, vkey: str) -> None:
    from services.infra.settings import SettingsError

    settings = replace(Settings(var_dir=tmp_path / "v", relay_enabled=False),
                       database_url=f"sqlite:///{tmp_path / 'x.db'}", audit_witness_keys=(vkey,)).with_secret()
    with pytest.raises(SettingsError, match="DUALRANDOM_AUDIT_WITNESS_KEYS"):
        Runtime(settings).open(with_nats=False)
