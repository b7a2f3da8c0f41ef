"""Rebuilding the past and reading history: replay into another database or schema, aggregates as of a
version or time, and the export in constant memory."""

import datetime as dt
import json
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from domain.access import SYSTEM
from domain.audit.leaf import envelope, leaf_bytes
from domain.audit.merkle import leaf_hash
from domain.errors import InvalidInputError
from projections.audit.projection import AuditProjection
from projections.audit.queries import root_at, tree_size
from projections.directory.projection import TABLES, DirectoryProjection
from services.application import CommandContext
from services.audit.history import NotYetError, aggregate_at
from services.audit.log import events_table, export_chunks, iter_records
from services.audit.replay import ReplayError, replay, resolve_until
from services.infra.store import create_engine
from services.runtime import Runtime
from tests.support.builders import a_department, a_target

CTX = CommandContext(SYSTEM, correlation_id="req-replay-test")


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    """The shared ``runtime`` fixture (tests/conftest.py) under this module's short name."""
    return runtime


@pytest.fixture
def into(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A separate database for the replay: another SQLite file, or another PostgreSQL schema (dropped after)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'replay' / 'past.db'}"
        return
    base, _, _ = database_url.partition("?")
    schema = f"replay_{uuid.uuid4().hex[:10]}"
    yield f"{base}?options=-csearch_path%3D{schema}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


def rows(engine: sa.Engine, table: sa.Table) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).all()]


def test_replay_builds_the_directory_as_it_stood_at_a_position_and_at_a_time(rt: Runtime, into: str, database_url: str) -> None:
    rt.app.register("department", a_department(), CTX)
    ids = [rt.app.register("target", a_target(), CTX).id for _ in range(4)]
    rt.app.update("target", uuid.UUID(ids[0]), {"risk_class": "D"}, CTX)
    rt.runner.catch_up()
    freeze = rt.app.recorder.max_notification_id()
    assert freeze is not None
    then_targets = rows(rt.engine, TABLES["target"])
    with rt.engine.connect() as conn:
        then_root = root_at(conn, tree_size(conn))
    # The world moves on.
    rt.app.update("target", uuid.UUID(ids[0]), {"risk_class": "A", "status": "closed"}, CTX)
    rt.app.register("target", a_target(), CTX)
    rt.runner.catch_up()
    assert rows(rt.engine, TABLES["target"]) != then_targets

    result = replay(rt.app, database_url, DirectoryProjection(), into, freeze)
    assert (result.events, result.position) == (freeze, freeze)
    past = create_engine(into)
    try:
        assert rows(past, TABLES["target"]) == then_targets
        # The audit tree of that moment too: the same root as then.
        replay(rt.app, database_url, AuditProjection(), into, freeze)
        with past.connect() as conn:
            assert root_at(conn, tree_size(conn)) == then_root
    finally:
        past.dispose()

    # --until TIME: the time of the freeze event is the same cut.
    events = events_table(rt.app)
    freeze_time = next(envelope(*r)["time"] for r in iter_records(rt.engine, events) if r[0] == freeze)
    assert resolve_until(rt.engine, events, freeze_time) == freeze
    assert resolve_until(rt.engine, events, "2000-01-01T00:00:00+08:00") == 0
    assert resolve_until(rt.engine, events, str(freeze)) == freeze
    with pytest.raises(ValueError, match="UTC offset"):
        resolve_until(rt.engine, events, "2025-03-01T10:00:00")
    # A later replay into the same place asks for --replace; the live database is refused.
    with pytest.raises(ReplayError, match="--replace"):
        replay(rt.app, database_url, DirectoryProjection(), into, freeze - 2)
    assert replay(rt.app, database_url, DirectoryProjection(), into, freeze - 2, replace=True).position == freeze - 2
    with pytest.raises(ReplayError, match="live database"):
        replay(rt.app, database_url, DirectoryProjection(), database_url, freeze)


def test_an_aggregate_is_seen_as_of_a_version_or_a_time(rt: Runtime) -> None:
    tid = uuid.UUID(rt.app.register("target", a_target(risk_class="B"), CTX).id)
    rt.app.update("target", tid, {"risk_class": "C"}, CTX)
    rt.app.update("target", tid, {"risk_class": "D", "tags": ["涉VOCs"]}, CTX)
    events = events_table(rt.app)
    now = aggregate_at(rt.app, rt.engine, events, tid)
    assert now["version"] == 4 and now["state"]["risk_class"] == "D" and len(now["events"]) == 4
    assert [e["type"] for e in now["events"]] == ["registered", "risk_class_changed", "risk_class_changed", "tagged"]
    v2 = aggregate_at(rt.app, rt.engine, events, tid, version=2)
    assert v2["as_of"]["version"] == 2 and v2["state"]["risk_class"] == "C" and v2["state"]["tags"] == []
    at = dt.datetime.fromisoformat(now["events"][1]["time"])
    by_time = aggregate_at(rt.app, rt.engine, events, tid, at=at)
    assert by_time["as_of"] == v2["as_of"] and by_time["state"] == v2["state"]
    with pytest.raises(NotYetError):
        aggregate_at(rt.app, rt.engine, events, tid, at=at - dt.timedelta(days=1))
    with pytest.raises(InvalidInputError):
        aggregate_at(rt.app, rt.engine, events, tid, version=5)


def _export(rt: Runtime, until: int | None) -> tuple[int, int, int]:
    """(events, bytes, peak traced memory) of consuming the export, checking each line on the way."""
    tracemalloc.start()
    try:
        total = count = last = 0
        for chunk in export_chunks(rt.app.recorder, until=until, page=25):
            for line in chunk.decode().splitlines():
                item = json.loads(line)
                assert item["position"] > last
                last = item["position"]
                env = {k: item[k] for k in ("position", "aggregate_id", "version", "topic", "time", "meta", "data")}
                assert leaf_hash(leaf_bytes(env)).hex() == item["leaf_hash"]
                count += 1
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return count, total, peak


def test_the_export_is_every_event_once_in_order_and_streams_in_constant_memory(rt: Runtime) -> None:
    rt.app.import_entries("target", [(i + 2, a_target()) for i in range(1500)], CTX)
    head = rt.app.recorder.max_notification_id()
    assert head is not None
    _export(rt, 100)  # warm up: statement caches, imports
    small = _export(rt, 300)
    full = _export(rt, None)
    assert small[0] == 300 and full[0] == head == 1500
    # Five times the events, about the same memory: a page of 25 events is held at a time.
    assert full[2] < small[2] * 1.5 + 50_000, (small, full)
    assert full[2] < full[1] / 4


def test_the_replay_command_builds_the_past_and_the_key_command_prints_the_public_key(
    rt: Runtime, into: str, database_url: str
) -> None:
    import os
    import subprocess
    import sys

    rt.app.register("department", a_department(), CTX)
    tid = uuid.UUID(rt.app.register("target", a_target(risk_class="B"), CTX).id)
    rt.app.update("target", tid, {"risk_class": "D"}, CTX)
    env = {**os.environ, "DUALRANDOM_DATABASE_URL": database_url, "DUALRANDOM_VAR_DIR": str(rt.settings.var_dir),
           "DUALRANDOM_RELAY_ENABLED": "false", "DUALRANDOM_LOG_LEVEL": "WARNING"}
    cli = [sys.executable, "-m", "services.cli", "audit"]
    out = subprocess.run([*cli, "replay", "--until", "2", "--projection", "directory", "--into", into],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("directory: 2 events applied, as of log position 2")
    past = create_engine(into)
    try:
        with past.connect() as conn:
            assert conn.execute(sa.select(TABLES["target"].c.risk_class)).scalar_one() == "B"  # before the change
    finally:
        past.dispose()
    bad = subprocess.run([*cli, "replay", "--until", "2025-03-01T10:00", "--projection", "directory", "--into", into],
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "UTC offset" in bad.stderr
    key = subprocess.run([*cli, "key"], env=env, capture_output=True, text=True, timeout=60)
    assert key.returncode == 0 and f"vkey: {rt.checkpointer.signer.public.vkey}" in key.stdout
