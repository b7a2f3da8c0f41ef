"""The per-request account look-up (``app.state.principals``): on PostgreSQL an async prepared read on the event
loop, elsewhere the store's read in a worker thread. Both answer the same for every account state, and the
PostgreSQL reader survives a connection the server dropped."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
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
from tests.support.accounts import account_token, person, stored_token
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


@contextlib.asynccontextmanager
async def _opened(runtime: Runtime, **options: Any) -> AsyncIterator[store.AsyncPrincipalReader]:
    """An opened PostgreSQL reader of the runtime's database, closed afterwards."""
    reader = store.AsyncPrincipalReader(runtime.engine.url, TABLES["inspector"], **options)
    await reader.open()
    try:
        yield reader
    finally:
        await reader.close()


def _planner_token_id(runtime: Runtime) -> str:
    _postgresql_only(runtime)
    return _token_id(runtime, account_token(runtime, "hj-eeb", ["planner"]))


# -- kept accounts (PostgreSQL) --------------------------------------------------------------------------------
def _sql(runtime: Runtime, *statements: str, params: dict[str, Any] | None = None) -> None:
    with runtime.engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement), params or {})


def _quietly(runtime: Runtime, statement: str, params: dict[str, Any]) -> None:
    """A change the trigger does not see (``session_replication_role = replica`` fires no trigger): only a kept
    answer can then still say what the table no longer says."""
    _sql(runtime, "SET LOCAL session_replication_role = replica", statement, params=params)


async def _until(probe: Any, done: Any, bound: float = 20.0) -> Any:
    """``probe()`` again until ``done(answer)``: waits for the notification's delivery, never for a set time
    (the bound only stops a broken run)."""
    deadline = time.monotonic() + bound
    while True:
        answer = await probe()
        if done(answer) or time.monotonic() > deadline:
            return answer
        await anyio.sleep(0.01)


def test_a_kept_account_is_given_until_its_schema_is_notified_and_read_again_after(runtime: Runtime) -> None:
    """The second look-up of a token is answered from what was kept: a revocation the trigger does not see is not
    noticed, a notification for another schema changes nothing, and one for this schema makes the next look-ups
    read again (the token is then refused)."""
    token_id = _planner_token_id(runtime)

    async def run() -> tuple[Any, Any, Any, Any, int]:
        async with _opened(runtime, ttl=3600) as reader:  # only a notification
            assert reader.listening
            first = await reader.principal(token_id, time.time())
            assert reader.kept == 1
            _quietly(runtime, "UPDATE account_token SET revoked = true WHERE id = :t", {"t": token_id})
            kept = await reader.principal(token_id, time.time())
            _sql(runtime, f"SELECT pg_notify('{store.ACCOUNTS_CHANNEL}', 'another_schema')")
            other = await reader.principal(token_id, time.time())
            _sql(runtime, f"SELECT pg_notify('{store.ACCOUNTS_CHANNEL}', current_schema())")
            after = await _until(lambda: reader.principal(token_id, time.time()), lambda p: p is None)
            return first, kept, other, after, reader.kept

    first, kept, other, after, left = anyio.run(run)
    assert first is not None and kept == first  # the table says revoked: this answer was kept
    assert other == first  # another schema's notification is not this reader's
    assert after is None and left == 0


CHANGES = [  # (a change by plain SQL, does it notify)
    ("UPDATE account_token SET revoked = true WHERE id = :t", True),
    ("UPDATE account_token SET expires_at = 1 WHERE id = :t", True),
    ("DELETE FROM account_token WHERE id = :t", True),
    ("UPDATE account_auth SET active = false WHERE id = :a", True),
    ("UPDATE account_auth SET roles = 'reviewer' WHERE id = :a", True),
    ("UPDATE account_auth SET department = 'hj-amr' WHERE id = :a", True),
    ("UPDATE account_auth SET inspector = 'x-1' WHERE id = :a", True),
    ("UPDATE account_auth SET display_name = '李四' WHERE id = :a", True),
    ("DELETE FROM account_auth WHERE id = :a", True),
    ("UPDATE account_auth SET failed = 3, locked_until = 0 WHERE id = :a", False),  # a login's bookkeeping
    ("UPDATE account_auth SET password_hash = 'x' WHERE id = :a", False),
]


def test_every_change_that_could_make_a_kept_answer_wrong_is_notified(runtime: Runtime) -> None:
    """Whoever makes it (here plain SQL), a change to an account's state or a token notifies the channel with the
    schema, in its transaction; a login's bookkeeping does not. After each change a marker is notified: the next
    notification heard is the trigger's, or the marker when the change notifies nothing."""
    _postgresql_only(runtime)
    import psycopg

    with runtime.engine.connect() as conn:
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
    conninfo = runtime.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    heard_first = []
    with psycopg.connect(conninfo, autocommit=True) as listener:
        listener.execute(f"LISTEN {store.ACCOUNTS_CHANNEL}")
        for n, (change, _) in enumerate(CHANGES):
            token_id = _token_id(runtime, account_token(runtime, "hj-eeb", ["planner"], subject=f"p{n}"))
            with runtime.engine.connect() as conn:
                account = conn.execute(sa.select(store.TOKEN.c.account_id).where(store.TOKEN.c.id == token_id)).scalar()
            _sql(runtime, change, params={"t": token_id, "a": account})
            _sql(runtime, f"SELECT pg_notify('{store.ACCOUNTS_CHANNEL}', 'marker:' || current_schema())")
            heard = []
            for notification in listener.notifies(timeout=20):
                if notification.payload in (schema, f"marker:{schema}"):
                    heard.append(notification.payload)
                if notification.payload == f"marker:{schema}":
                    break
            heard_first.append(heard[0] if heard else None)
    assert heard_first == [schema if notifies else f"marker:{schema}" for _, notifies in CHANGES]


def test_a_change_made_by_this_process_holds_at_its_next_look_up(runtime: Runtime) -> None:
    """Revoking through the accounts use case drops what this process kept at once (``accounts_changed``), before
    any notification: the next look-up reads and refuses."""
    _postgresql_only(runtime)
    from domain.access import SYSTEM
    from services.application import CommandContext

    build_county(runtime, targets=0, inspectors=0)
    admin = CommandContext(SYSTEM)
    account = person(runtime, "zhang-planner", ["planner"])["id"]
    token_id = runtime.accounts.issue(admin, account, "test", 3600).token_id

    async def run() -> tuple[Any, Any]:
        async with _opened(runtime) as reader:
            # The revocation notifies nothing here: only the process's own call can drop what is kept.
            _sql(runtime, f"ALTER TABLE account_token DISABLE TRIGGER {store.ACCOUNTS_TRIGGER}")
            first = await reader.principal(token_id, time.time())
            assert reader.kept == 1
            admin = CommandContext(SYSTEM)
            assert runtime.accounts.revoke(admin, account, token_id, "测试")
            return first, await reader.principal(token_id, time.time())

    first, after = anyio.run(run)
    assert first is not None and after is None


def test_a_kept_account_is_read_again_after_its_time_and_a_refusal_is_never_kept(runtime: Runtime) -> None:
    """What notifies nothing (the inspector link's resolution) is read again once ``ttl`` has passed; an unknown
    token is read every time (nothing kept for it); at most ``max_kept`` answers are kept."""
    _postgresql_only(runtime)
    tokens = [_token_id(runtime, account_token(runtime, "hj-eeb", [role]))
              for role in ("planner", "reviewer", "auditor", "admin", "inspector")]

    async def run() -> tuple[Any, Any, int]:
        async with _opened(runtime, ttl=0.2, max_kept=3) as reader:
            answers = [await reader.principal(t, time.time()) for t in tokens]
            kept_after_five = reader.kept
            assert await reader.principal("0" * 32, time.time()) is None and reader.kept == kept_after_five
            _quietly(runtime, "UPDATE account_token SET revoked = true WHERE id = :t", {"t": tokens[-1]})
            after = await _until(lambda: reader.principal(tokens[-1], time.time()), lambda p: p is None)
            return answers, after, kept_after_five

    answers, after, kept = anyio.run(run)
    assert [a.roles for a in answers] == [("planner",), ("reviewer",), ("auditor",), ("admin",), ("inspector",)]
    assert kept == 3  # the two oldest went
    assert after is None  # read again once its time had passed: the table says revoked


def test_a_lost_listening_connection_drops_what_was_kept_and_is_made_again(runtime: Runtime) -> None:
    """The LISTEN connection ended by the server: notifications could be missed, so nothing kept is given any more
    (a revocation the trigger did not see is refused at the next look-up), and the reader listens again."""
    token_id = _planner_token_id(runtime)

    async def run() -> tuple[Any, Any, bool]:
        async with _opened(runtime, ttl=3600) as reader:
            first = await reader.principal(token_id, time.time())
            pid = reader._listener.info.backend_pid
            _sql(runtime, "SELECT pg_terminate_backend(:p, 20000)", params={"p": pid})  # returns once it has gone
            _quietly(runtime, "UPDATE account_token SET revoked = true WHERE id = :t", {"t": token_id})
            after = await reader.principal(token_id, time.time())
            back = await _until(lambda: _listening(reader), bool)
            return first, after, back

    first, after, back = anyio.run(run)
    assert first is not None and after is None and back


async def _listening(reader: store.AsyncPrincipalReader) -> bool:
    await reader.principal("0" * 32, time.time())  # a look-up starts listening again (at most once a second)
    return reader.listening


def test_keeping_nothing_reads_every_request(runtime: Runtime) -> None:
    """``DUALRANDOM_ACCOUNT_KEEP_SECONDS=0``: no listening connection, nothing kept, a change nobody notified is
    seen at the next look-up."""
    token_id = _planner_token_id(runtime)

    async def run() -> tuple[Any, Any, bool, int]:
        async with _opened(runtime, ttl=0) as reader:
            first = await reader.principal(token_id, time.time())
            _quietly(runtime, "UPDATE account_token SET revoked = true WHERE id = :t", {"t": token_id})
            return first, await reader.principal(token_id, time.time()), reader.listening, reader.kept

    first, after, listening, kept = anyio.run(run)
    assert first is not None and after is None and not listening and kept == 0


def test_every_connection_the_server_dropped_is_replaced_by_one_read(runtime: Runtime) -> None:
    """All of the reader's connections ended by the server at once (a restart, an operator's termination): the next
    look-up discards them all and reads on a new one, instead of failing on the second dead one."""
    token_id = _planner_token_id(runtime)

    async def run() -> tuple[Any, Any]:
        async with _opened(runtime, ttl=0) as reader:
            firsts = await asyncio.gather(*[reader.principal(token_id, time.time()) for _ in range(3)])
            pids = [conn.info.backend_pid for conn, _ in reader._free]
            assert len(pids) >= 2
            _sql(runtime, "SELECT pg_terminate_backend(pid, 20000) FROM unnest(CAST(:p AS int[])) AS pid",
                 params={"p": pids})
            return firsts[0], await reader.principal(token_id, time.time())

    first, after = anyio.run(run)
    assert first is not None and after == first
