"""Processes started together on a new PostgreSQL schema set it up one at a time: before, two that both found a
table missing both created it, and the second failed (``pg_type_typname_nsp_index``) and exited (a relay in the
soak test, when its start met another's)."""

import threading
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.infra.settings import Settings, SettingsError
from services.infra.store import SETUP_LOCK, setting_up
from services.runtime import Runtime

STARTS = 6


def _postgres(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the setup lock is PostgreSQL's (a SQLite file's processes start one after another)")


def test_processes_started_together_on_a_new_schema_all_open(database_url: str, tmp_path: Path) -> None:
    _postgres(database_url)
    barrier = threading.Barrier(STARTS)
    opened: list[Runtime] = []
    failures: list[BaseException] = []

    def start(i: int) -> None:
        settings = replace(Settings(var_dir=tmp_path / f"var-{i}", relay_enabled=False, draw_checkpoint_gate=False),
                           database_url=database_url).with_secret()
        runtime = Runtime(settings)
        barrier.wait()
        try:
            opened.append(runtime.open(with_nats=False))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(STARTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert not failures, [f"{type(e).__name__}: {str(e).splitlines()[0]}" for e in failures]
        assert len(opened) == STARTS
        # every start sees the same tables, and the read models' positions
        engine = opened[0].engine
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert {"dualrandom_events", "projection_positions", "rm_target", "audit_leaves", "frozen_pools",
                "account_token", "evidence_chunks"} <= tables
        with engine.connect() as conn:
            names = set(conn.execute(sa.text("SELECT name FROM projection_positions")).scalars())
        assert names >= {"directory", "audit", "tasks", "execution"}
        assert all(set(sa.inspect(r.engine).get_table_names()) == tables for r in opened)
    finally:
        for r in opened:
            r.close()


def test_a_setup_that_waits_too_long_for_another_fails_with_the_setting_named(database_url: str) -> None:
    _postgres(database_url)
    holder = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with holder.connect() as conn:
            conn.execute(sa.text(SETUP_LOCK))  # another process in the middle of its setup
            conn.commit()
            with (pytest.raises(SettingsError, match="DUALRANDOM_DATABASE_URL: another process has been setting up"),
                  setting_up(database_url, wait_seconds=0.3)):
                pytest.fail("set up while another process held the setup lock")
        # the holder's session ended: the next setup goes ahead
        ran = []
        with setting_up(database_url, wait_seconds=5):
            ran.append(True)
        assert ran == [True]
    finally:
        holder.dispose()
