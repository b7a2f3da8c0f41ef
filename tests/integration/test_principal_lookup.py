"""The per-request account look-up (``app.state.principals``): on PostgreSQL an async prepared read on the event
loop, elsewhere the store's read in a worker thread. Both answer the same for every account state, and the
PostgreSQL reader survives a connection the server dropped."""

import time
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from projections.directory.projection import TABLES
from services.api.auth import verify
from services.api.middleware import PrincipalLookup
from services.infra import accounts_store as store
from services.runtime import Runtime
from tests.support.accounts import account_token, stored_token
from tests.support.scenario import build_county


def _token_id(runtime: Runtime, token: str) -> str:
    return verify(runtime.settings.secret_key, token)[1]


def test_both_paths_answer_alike_for_every_account_state(runtime: Runtime) -> None:
    """Active, linked by staff id, linked by entry id, another department's entry, revoked, deactivated, expired,
    unknown: the lookup the middleware uses answers as the store's own read does."""
    county = build_county(runtime, targets=0, inspectors=1)
    eeb, amr = county.inspectors["hj-eeb"][0], county.inspectors["hj-amr"][0]
    tokens = {
        "plain": account_token(runtime, "hj-eeb", ["planner"]),
        "by-staff": account_token(runtime, "hj-eeb", ["inspector"], county.staff[eeb]),
        "by-entry": account_token(runtime, "hj-eeb", ["inspector", "planner"], eeb),
        "elsewhere": account_token(runtime, "hj-eeb", ["inspector"], county.staff[amr]),  # hj-amr's: unresolved
        "revoked": account_token(runtime, "hj-eeb", ["reviewer"]),
        "inactive": account_token(runtime, "hj-eeb", ["auditor"]),
        "expired": account_token(runtime, "hj-eeb", ["admin"]),
    }
    ids = {name: _token_id(runtime, tok) for name, tok in tokens.items()} | {"unknown": "0" * 32}
    with runtime.engine.begin() as conn:
        conn.execute(store.TOKEN.update().where(store.TOKEN.c.id == ids["revoked"]).values(revoked=True))
        conn.execute(store.TOKEN.update().where(store.TOKEN.c.id == ids["expired"]).values(expires_at=time.time() - 1))
        account = conn.execute(sa.select(store.TOKEN.c.account_id).where(store.TOKEN.c.id == ids["inactive"])).scalar()
        conn.execute(store.ACCOUNT.update().where(store.ACCOUNT.c.id == account).values(active=False))

    async def through_lookup() -> dict[str, Any]:
        lookup = PrincipalLookup(runtime.engine, runtime.accounts.authenticate)
        await lookup.open()
        try:
            return {name: await lookup(token_id) for name, token_id in ids.items()}
        finally:
            await lookup.close()

    got = anyio.run(through_lookup)
    with runtime.engine.connect() as conn:
        expected = {name: store.principal(conn, token_id, time.time(), TABLES["inspector"])
                    for name, token_id in ids.items()}
    assert got == expected
    assert [name for name, p in got.items() if p is None] == ["revoked", "inactive", "expired", "unknown"]
    assert got["by-staff"].inspector == eeb and got["by-entry"].inspector == eeb
    assert got["elsewhere"].inspector == county.staff[amr]  # another department's entry is not this account's
    assert got["by-entry"].roles == ("inspector", "planner")


def test_the_postgresql_reader_replaces_a_connection_the_server_dropped(runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("the async reader serves PostgreSQL; SQLite reads in a worker thread")
    token_id = _token_id(runtime, account_token(runtime, "hj-eeb", ["planner"]))

    async def run() -> tuple[Any, Any]:
        reader = store.AsyncPrincipalReader(runtime.engine.url, TABLES["inspector"], max_size=1)
        await reader.open()
        try:
            first = await reader.principal(token_id, time.time())
            [(conn, _)] = reader._free  # its only connection
            pid = conn.info.backend_pid
            with runtime.engine.begin() as admin:
                assert admin.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
            return first, await reader.principal(token_id, time.time())
        finally:
            await reader.close()

    first, after = anyio.run(run)
    assert first is not None and after == first


def test_a_busy_sqlite_file_never_holds_the_event_loop(tmp_path: Path) -> None:
    """Another connection holds the file exclusively: the look-up leaves the loop (its own read fails at once,
    the worker thread's read waits), the loop keeps serving, and the answer comes once the lock is released."""
    import sqlite3

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    TABLES["inspector"].metadata.create_all(engine, tables=[TABLES["inspector"]])
    token_id = verify("k" * 40, stored_token(engine, "k" * 40, "hj-eeb", ["planner"]))[1]

    def authenticate(token: str) -> store.Principal | None:  # the store's read, as the Accounts use case does it
        with engine.connect() as conn:
            return store.principal(conn, token, time.time(), TABLES["inspector"])

    engine.dispose()
    holder = sqlite3.connect(tmp_path / "auth.db", isolation_level=None)

    async def run() -> tuple[Any, int]:
        lookup = PrincipalLookup(engine, authenticate)
        await lookup.open()
        ticks = 0
        try:
            holder.execute("PRAGMA locking_mode=EXCLUSIVE")
            holder.execute("BEGIN EXCLUSIVE")
            async with anyio.create_task_group() as tg:
                answer: list[Any] = []

                async def look() -> None:
                    answer.append(await lookup(token_id))

                tg.start_soon(look)
                while ticks < 20:  # the loop runs other work while the look-up waits in its thread
                    await anyio.sleep(0)
                    ticks += 1
                assert not answer
                holder.close()  # the lock goes with the connection
            return answer[0], ticks
        finally:
            await lookup.close()

    principal, ticks = anyio.run(run)
    assert principal is not None and principal.roles == ("planner",) and ticks == 20


def _postgresql_only(runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("the async reader serves PostgreSQL; SQLite reads on the loop's own connection or a thread")


def test_concurrent_look_ups_beyond_the_connections_wait_their_turn_and_all_answer(runtime: Runtime) -> None:
    """Twelve look-ups at once on a reader of two connections: each answers its own token's account, and the
    reader never holds more than two connections."""
    _postgresql_only(runtime)
    tokens = [_token_id(runtime, account_token(runtime, "hj-eeb", [role]))
              for role in ("planner", "reviewer", "auditor")]

    async def run() -> tuple[list[Any], int]:
        reader = store.AsyncPrincipalReader(runtime.engine.url, TABLES["inspector"], max_size=2)
        await reader.open()
        try:
            answers: list[Any] = [None] * 12
            async with anyio.create_task_group() as tg:
                for i in range(12):
                    async def look(i: int = i) -> None:
                        answers[i] = await reader.principal(tokens[i % 3], time.time())
                    tg.start_soon(look)
            return answers, len(reader._free)
        finally:
            await reader.close()

    answers, kept = anyio.run(run)
    assert [a.roles for a in answers] == [("planner",), ("reviewer",), ("auditor",)] * 4
    assert 1 <= kept <= 2


def test_a_look_up_cancelled_mid_way_leaves_no_connection_behind(runtime: Runtime) -> None:
    """A look-up cancelled while its query is out (the client went away) discards its connection, whose state
    is unknown: the next look-up answers on another one."""
    _postgresql_only(runtime)
    token_id = _token_id(runtime, account_token(runtime, "hj-eeb", ["planner"]))

    async def run() -> tuple[Any, Any, bool]:
        reader = store.AsyncPrincipalReader(runtime.engine.url, TABLES["inspector"], max_size=1)
        await reader.open()
        try:
            [(first_conn, _)] = reader._free
            with anyio.CancelScope() as scope:
                async def cancel_when_sent() -> None:
                    while reader._free:  # the look-up has taken the connection: its query is on the way
                        await anyio.sleep(0)
                    scope.cancel()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(cancel_when_sent)
                    await reader.principal(token_id, time.time())
            assert scope.cancelled_caught
            after = await reader.principal(token_id, time.time())
            [(now_conn, _)] = reader._free
            return after, first_conn.closed, now_conn is not first_conn
        finally:
            await reader.close()

    after, first_closed, replaced = anyio.run(run)
    assert after is not None and after.roles == ("planner",)
    assert first_closed and replaced


def test_a_server_not_reachable_at_start_does_not_stop_the_reader_opening(runtime: Runtime) -> None:
    """``open`` with no server to reach returns (the app still starts; /ready tells); a look-up then fails with
    the driver's error, answered as a 500, never as a valid principal."""
    _postgresql_only(runtime)
    import psycopg

    nowhere = runtime.engine.url.set(host="127.0.0.1", port=1)

    async def run() -> None:
        reader = store.AsyncPrincipalReader(nowhere, TABLES["inspector"])
        await reader.open()
        try:
            assert reader._free == []
            with pytest.raises(psycopg.OperationalError):
                await reader.principal("0" * 32, time.time())
        finally:
            await reader.close()

    anyio.run(run)
