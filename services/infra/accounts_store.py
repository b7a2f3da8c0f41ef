"""Account credentials and current state, looked up for every authenticated request.

Written in the same command as the account's events (``services/usecases/accounts.py``). A deactivation, a
removed role or a revoked token is refused by the next request of the process that made the change, and of every
other process sharing the database once PostgreSQL has delivered the change's notification (milliseconds): on
PostgreSQL the servers keep the accounts they looked up (``AsyncPrincipalReader``), and a trigger on these tables
notifies ``ACCOUNTS_CHANNEL`` of every change that could make a kept answer wrong, whoever makes it (the API, the
CLI, SQL). On SQLite every request reads the table. Password and token hashes live here only, never in an event.

Passwords: scrypt (``hashlib.scrypt``, OpenSSL), a memory-hard KDF: n=2**15, r=8, p=1 (32 MiB, ~0.1 s), a
16-byte random salt, 32-byte key; stored as ``scrypt$n$r$p$salt_b64$key_b64``.
"""

import base64
import hashlib
import hmac
import secrets
import time
import weakref
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

metadata = sa.MetaData()

ACCOUNT = sa.Table(
    "account_auth", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("username", sa.String(100), nullable=False, unique=True),
    sa.Column("display_name", sa.String(100), nullable=False),
    sa.Column("department", sa.String(32), nullable=False),
    sa.Column("roles", sa.String(200), nullable=False),  # comma-separated
    sa.Column("inspector", sa.String(64), nullable=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=True),
    sa.Column("failed", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", sa.Float, nullable=False, default=0.0),
)
TOKEN = sa.Table(
    "account_token", metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # the token's jti
    sa.Column("account_id", sa.String(36), nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("session", sa.Boolean, nullable=False),
    sa.Column("issued_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
)
SECURITY_LOG = sa.Table(
    "security_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("username", sa.String(100), nullable=False),
    sa.Column("account_id", sa.String(36), nullable=True),
    sa.Column("event", sa.String(40), nullable=False),  # login, logout, password_change, ...
    sa.Column("outcome", sa.String(40), nullable=False),  # ok, bad_password, unknown_user, locked, inactive
    sa.Column("source", sa.String(100), nullable=False),  # the client's address
)

N, R, P = 2**15, 8, 1
_MAXMEM = 64 * 1024 * 1024


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, maxmem=_MAXMEM, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${N}${R}${P}${b64(salt).decode()}${b64(key).decode()}"


def check_password(stored: str | None, password: str) -> bool:
    """Does ``password`` match ``stored``? (Hashes a dummy when there is none: same time either way.)"""
    if not stored:
        hash_password(password)
        return False
    _, n, r, p, salt, key = stored.split("$")
    got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                         maxmem=_MAXMEM, dklen=32)
    return hmac.compare_digest(got, base64.b64decode(key))


@dataclass(frozen=True)
class Principal:
    """An authenticated request's account, as stored now (not as the token claimed)."""

    account_id: str
    username: str
    display_name: str
    department: str
    roles: tuple[str, ...]
    inspector: str | None  # the inspector entry id the link resolves to (the link itself when unresolved)
    kind: str


ACCOUNTS_CHANNEL = "dualrandom_accounts"
"""The PostgreSQL channel a trigger notifies, in the changing transaction, of every change to an account's state or
a token (``setup``), with the tables' schema as the payload: the servers of that schema drop the accounts they
kept (``AsyncPrincipalReader``) when they hear it; deployments in other schemas of the database ignore it."""

# The columns a principal is made of (and a token's validity): an UPDATE naming one of them, a DELETE or a
# TRUNCATE notifies. A login's bookkeeping (failed attempts, lockout, password hash) does not.
_NOTIFYING_COLUMNS = {
    "account_auth": ("username", "display_name", "department", "roles", "inspector", "kind", "active", "id"),
    "account_token": ("id", "account_id", "expires_at", "revoked"),
}


KEPT_SECONDS = 5.0
"""How long a server gives a looked-up account again without reading it (``AsyncPrincipalReader``): changes to
accounts and tokens are notified at once; this bounds only what notifies nothing (the inspector link's resolution
through the directory)."""

ACCOUNTS_TRIGGER = "dualrandom_accounts_changed_v1"  # a new column list gets a new name (setup creates what is missing)


def setup(engine: Engine) -> None:
    metadata.create_all(engine)
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        present = set(conn.execute(sa.text(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = :name AND c.relnamespace = to_regnamespace(current_schema())::oid"
        ), {"name": ACCOUNTS_TRIGGER}).scalars())
        missing = [table for table in _NOTIFYING_COLUMNS if table not in present]
        if not missing:
            return
        conn.execute(sa.text(
            "CREATE OR REPLACE FUNCTION dualrandom_accounts_changed() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN PERFORM pg_notify('{ACCOUNTS_CHANNEL}', TG_TABLE_SCHEMA); RETURN NULL; END $$"
        ))
        for table in missing:
            conn.execute(sa.text(
                f"CREATE TRIGGER {ACCOUNTS_TRIGGER} AFTER UPDATE OF {', '.join(_NOTIFYING_COLUMNS[table])} OR DELETE "
                f"OR TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION dualrandom_accounts_changed()"
            ))


_READERS: "weakref.WeakSet[AsyncPrincipalReader]" = weakref.WeakSet()


def accounts_changed() -> None:
    """This process committed a change to an account or a token: every reader of this process drops what it kept
    at once, without waiting for the notification (so the change holds from the very next request here)."""
    for reader in list(_READERS):
        reader.forget()


def principal_query(inspectors: sa.Table) -> sa.Select[Any]:
    """The look-up of a token's account, with parameters ``token_id`` and ``now``: one statement by primary keys,
    the inspector link resolved to the entry id in the account's department (by entry id, else staff id) by two
    indexed scalar subqueries, which run only for an account with a link. One definition for both paths (``principal`` and ``AsyncPrincipalReader``)."""
    a, t, i = ACCOUNT, TOKEN, inspectors
    by_id = sa.select(i.c.id).where(i.c.id == a.c.inspector, i.c.owner == a.c.department).limit(1)
    by_staff = sa.select(i.c.id).where(i.c.staff_id == a.c.inspector, i.c.owner == a.c.department).limit(1)
    return (
        sa.select(a.c.id, a.c.username, a.c.display_name, a.c.department, a.c.roles, a.c.inspector, a.c.kind,
                  sa.case((a.c.inspector.is_(None), sa.null()),  # no link: neither subquery runs
                          else_=sa.func.coalesce(by_id.scalar_subquery(), by_staff.scalar_subquery())).label("entry"),
                  t.c.expires_at)
        .select_from(t.join(a, a.c.id == t.c.account_id))
        .where(t.c.id == sa.bindparam("token_id"), t.c.revoked.is_(False), t.c.expires_at > sa.bindparam("now"),
               a.c.active.is_(True))
    )


def _principal(row: Any) -> Principal | None:
    if row is None:
        return None
    return Principal(row[0], row[1], row[2], row[3], tuple(row[4].split(",")), row[7] or row[5], row[6])


def principal(conn: Connection, token_id: str, now: float, inspectors: sa.Table) -> Principal | None:
    """The active account of a token not revoked and not expired, with its inspector link resolved to the
    entry id (by entry id, else staff id, in the account's department); None otherwise. One query."""
    return _principal(conn.execute(principal_query(inspectors), {"token_id": token_id, "now": now}).first())


class SqlitePrincipalReader:
    """``principal`` on SQLite without a worker thread: one connection of the event loop's own, the statement
    compiled once. A read in WAL mode never waits for a writer; in the rare case the file is busy (recovery, a
    checkpoint's lock) it fails at once (``busy_timeout`` 0) and the caller reads in a worker thread instead."""

    def __init__(self, path: str, inspectors: sa.Table) -> None:
        import sqlite3

        from sqlalchemy.dialects import sqlite

        compiled = principal_query(inspectors).compile(dialect=sqlite.dialect(paramstyle="named"))
        self._sql, self._fixed = str(compiled), dict(compiled.params)
        self._conn = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)

    def close(self) -> None:
        self._conn.close()

    def principal(self, token_id: str, now: float) -> Principal | None:
        """May raise ``sqlite3.OperationalError`` (busy)."""
        return _principal(self._conn.execute(self._sql, {**self._fixed, "token_id": token_id, "now": now})
                          .fetchone())


class AsyncPrincipalReader:
    """``principal`` on PostgreSQL without a worker thread, and without a round trip for an account it has kept.

    **Kept accounts.** An answer (never a refusal) is kept by token id, and given again while all of these hold:
    the reader is listening on ``ACCOUNTS_CHANNEL`` (a connection of its own, ``LISTEN``); no notification has
    come since (the trigger of ``setup`` notifies every change to an account's state or a token, in the changing
    transaction; this process's own changes also call ``accounts_changed``, which drops them at once); the token
    has not expired; and it was read less than ``ttl`` seconds ago (``KEPT_SECONDS``: the inspector link is
    resolved through the directory's read model, which notifies nothing). Before a kept answer is given, what
    the listening connection has received is read (a non-blocking read of its socket), so a change whose
    notification has arrived holds from that request on. Without the listening connection (not yet made, or
    lost: everything kept is dropped then, and it is made again in the background) every look-up reads.
    An answer read while a notification came is not kept. At most ``max_kept`` answers are kept (the oldest
    go first).

    **Look-ups** go through dedicated psycopg async connections of the event loop (autocommit, binary results),
    each with one held cursor on which the statement is prepared once: one round trip, awaited on the event loop.
    At most ``max_size`` look-ups run at once (more wait their turn); a connection is made when none is free and
    kept. One is made by ``open`` (when the server is not reachable then, the first look-up makes it). A connection
    the server dropped is discarded and the read retried once on a new one; a look-up cancelled mid-way discards
    its connection (its state is unknown). Opened and closed by the app's lifespan: the connections belong to the
    loop that opened them."""

    def __init__(self, url: sa.URL, inspectors: sa.Table, max_size: int = 8, *, ttl: float | None = None,
                 max_kept: int = 10_000) -> None:
        import asyncio

        from sqlalchemy.dialects import postgresql

        compiled = principal_query(inspectors).compile(dialect=postgresql.psycopg.dialect())
        self._sql, self._fixed = str(compiled), dict(compiled.params)  # (the LIMITs' values)
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._free: list[Any] = []  # (connection, its held cursor), the last used first
        self._slots = asyncio.Semaphore(max_size)
        self._closed = False
        self.ttl = KEPT_SECONDS if ttl is None else ttl
        self._max_kept = max_kept
        self._kept: dict[str, tuple[Principal, float, float]] = {}  # token id -> (principal, expires_at, read at)
        self._generation = 0  # +1 whenever what is kept may be wrong: an answer read across a change is not kept
        self._listener: Any = None  # the LISTEN connection while it works
        self._schema = b""  # the notifications of this schema's tables concern this reader
        self._relisten: Any = None  # the task making it again
        self._relisten_at = 0.0
        _READERS.add(self)

    @property
    def listening(self) -> bool:
        return self._listener is not None

    @property
    def kept(self) -> int:
        return len(self._kept)

    def forget(self) -> None:
        """Drop every kept answer (a change was committed or heard, or the notifications may have been missed)."""
        self._generation += 1
        self._kept.clear()

    async def _connect(self) -> tuple[Any, Any]:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True, prepare_threshold=0)
        return conn, conn.cursor(binary=True)

    async def _listen(self) -> None:
        import asyncio

        import psycopg

        try:
            conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            await conn.execute(f"LISTEN {ACCOUNTS_CHANNEL}")
            row = await (await conn.execute("SELECT current_schema()")).fetchone()
            self._schema = str(row[0] if row else "").encode()
        except psycopg.OperationalError:
            return  # not reachable now: look-ups read, and the next one tries again (at most once a second)
        if self._closed or self._listener is not None:
            await conn.close()
            return
        self.forget()  # anything kept before the LISTEN began may have missed a notification
        self._listener = conn
        asyncio.get_running_loop().add_reader(conn.pgconn.socket, self._heard)

    def _heard(self) -> None:
        """Read what the LISTEN connection has received: a notification drops everything kept; an error (the
        connection lost) too, and the connection is made again in the background."""
        import psycopg

        conn = self._listener
        if conn is None:
            return
        pgconn = conn.pgconn
        try:
            # Twice: a connection the server ends sends a last message (read by the first) before its end (the
            # second fails); otherwise the second finds nothing to read and returns at once.
            pgconn.consume_input()
            pgconn.consume_input()
            notified = False
            while (heard := pgconn.notifies()) is not None:
                notified = notified or heard.extra == self._schema
        except psycopg.Error:  # the connection is gone
            self._lost()
            return
        if notified:
            self.forget()

    def _lost(self) -> None:
        import asyncio
        import contextlib

        conn, self._listener = self._listener, None
        self.forget()
        if conn is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(conn.pgconn.socket)
            with contextlib.suppress(Exception):
                conn.pgconn.finish()

    def _listen_again(self, now: float) -> None:
        import asyncio

        if self._closed or (self._relisten is not None and not self._relisten.done()) or now < self._relisten_at:
            return
        self._relisten_at = now + 1.0
        self._relisten = asyncio.get_running_loop().create_task(self._listen())

    async def open(self) -> None:
        import contextlib

        import psycopg

        self._closed = False
        # Not reachable now: the first look-up connects (and answers 500 if it still cannot).
        with contextlib.suppress(psycopg.OperationalError):
            self._free.append(await self._connect())
        if self.ttl > 0:
            await self._listen()

    async def close(self) -> None:
        import asyncio
        import contextlib

        self._closed = True
        task, self._relisten = self._relisten, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        listener = self._listener
        self._lost()
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.close()
        free, self._free = self._free, []
        for conn, _ in free:
            await conn.close()

    async def principal(self, token_id: str, now: float) -> Principal | None:
        if self.ttl <= 0:  # nothing kept: every look-up reads
            return _principal(await self._read(token_id, now))
        if self._listener is None:
            self._listen_again(now)
        else:
            self._heard()  # a notification already received holds before anything kept is given
            kept = self._kept.get(token_id)
            if kept is not None:
                given, expires_at, read_at = kept
                if expires_at > now and now - read_at < self.ttl:
                    return given
                self._kept.pop(token_id, None)  # (``forget`` may empty it from another thread meanwhile)
        generation = self._generation
        row = await self._read(token_id, now)
        found = _principal(row)
        if found is not None and self._listener is not None:
            self._heard()
            if generation == self._generation:
                if len(self._kept) >= self._max_kept:
                    self._kept.pop(next(iter(self._kept), ""), None)
                self._kept[token_id] = (found, float(row[8]), now)
        return found

    async def _read(self, token_id: str, now: float) -> Any:
        import asyncio

        import psycopg

        params = {**self._fixed, "token_id": token_id, "now": now}
        async with self._slots:
            for attempt in (1, 2):
                held = self._free.pop() if self._free else await self._connect()
                conn, cursor = held
                try:
                    await cursor.execute(self._sql, params, prepare=True)
                    row = await cursor.fetchone()
                except psycopg.OperationalError:
                    await conn.close()  # dropped by the server (or broken): discarded, read again on a new one
                    stale, self._free = self._free, []  # a restart or a termination drops the idle ones too
                    for other, _ in stale:
                        await other.close()
                    if attempt == 2:
                        raise
                    continue
                except BaseException:
                    await asyncio.shield(conn.close())  # cancelled or failed mid-way: its state is unknown
                    raise
                if self._closed:
                    await conn.close()
                else:
                    self._free.append(held)
                return row
        return None


def account_row(conn: Connection, *, account_id: str | None = None, username: str | None = None) -> Any:
    q = sa.select(ACCOUNT)
    q = q.where(ACCOUNT.c.id == account_id) if account_id else q.where(ACCOUNT.c.username == username)
    return conn.execute(q).first()


def put_account(conn: Connection, values: dict[str, Any]) -> None:
    values = {**values, "roles": ",".join(values["roles"])} if "roles" in values else values
    if account_row(conn, account_id=values["id"]) is None:
        conn.execute(ACCOUNT.insert().values(failed=0, locked_until=0.0, **values))
    else:
        conn.execute(ACCOUNT.update().where(ACCOUNT.c.id == values["id"]).values(**values))


def log_security(conn: Connection, username: str, account_id: str | None, event: str, outcome: str,
                 source: str) -> None:
    conn.execute(SECURITY_LOG.insert().values(at=time.time(), username=username[:100], account_id=account_id,
                                              event=event, outcome=outcome, source=source[:100]))
