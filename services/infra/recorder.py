"""An application recorder that inserts stored events with one Core statement instead of ORM objects.

``eventsourcing_sqlalchemy``'s ``SQLAlchemyApplicationRecorder`` builds one ORM object per event, adds it to
the session and flushes: fine for a command's one or two events, slow for an import's 100,000 (most of the
import's time). ``BulkApplicationRecorder`` keeps everything else of the library recorder (same table, same
rows, same table lock, same NOTIFY, same error translation by the datastore's transaction) and only replaces
``_insert_stored_events``:

- PostgreSQL: ``INSERT ... SELECT FROM unnest(ids, versions, topics, states) RETURNING id, originator_id,
  originator_version`` per 10,000 events (the arrays sent as text literals, the states as hex), under ``LOCK TABLE ... IN EXCLUSIVE MODE`` as before (positions
  commit in the order they are handed out). The returned ids are matched to the events by (id, version), so
  the notification ids come back in the order of ``stored_events`` whatever order RETURNING uses.
- other databases (SQLite): a Core ``INSERT ... RETURNING id`` executemany (SQLAlchemy's "insertmanyvalues",
  ids in parameter order).

A duplicate (originator_id, originator_version) still raises ``IntegrityError`` (optimistic concurrency).
``BulkSQLAlchemyFactory`` is the library factory with this recorder as its application recorder; select it
with ``PERSISTENCE_MODULE=services.infra.recorder:BulkSQLAlchemyFactory`` (a topic naming the class: this module also
imports the library factory, so the module alone would be ambiguous).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from eventsourcing.persistence import JSONTranscoder, StoredEvent
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy.orm import Session

CHUNK = 10_000  # events per INSERT statement on PostgreSQL
COPY_MIN = 1000  # from this many events on, PostgreSQL gets them by COPY (imports); fewer: INSERT ... unnest


class BulkApplicationRecorder(SQLAlchemyApplicationRecorder):
    """``SQLAlchemyApplicationRecorder`` with a Core bulk insert of the stored events."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        table = self.events_record_cls.__table__
        self._table: sa.Table = table
        name = table.name if self.schema_name is None else f"{self.schema_name}.{table.name}"
        self._qualified_name = name
        self._unnest_insert = sa.text(
            f"INSERT INTO {name} (originator_id, originator_version, topic, state) "
            "SELECT i, v, t, decode(s, 'hex') FROM unnest(CAST(:ids AS uuid[]), CAST(:versions AS bigint[]), "
            "CAST(:topics AS text[]), CAST(:states AS text[])) AS u(i, v, t, s) "
            "RETURNING id, originator_id, originator_version"
        )
        self._core_insert = sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)

    def _is_postgres(self) -> bool:
        engine = self.datastore.engine
        return engine is not None and engine.dialect.name == "postgresql"

    def _insert_stored_events(
        self, session: Session, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int]:
        self._lock_table(session)
        if not stored_events:
            self._notify_channel(session)
            return []
        if self._is_postgres():
            if len(stored_events) >= COPY_MIN:
                ids = self._insert_copy(session, stored_events)
            else:
                ids = self._insert_unnest(session, stored_events)
        else:
            rows = [
                {"originator_id": e.originator_id, "originator_version": e.originator_version,
                 "topic": e.topic, "state": e.state}
                for e in stored_events
            ]
            ids = list(session.execute(self._core_insert, rows).scalars())
        self._notify_channel(session)
        return ids

    def _insert_unnest(self, session: Session, stored_events: Sequence[StoredEvent]) -> list[int]:
        ids: list[int] = []
        quoted: dict[str, str] = {}  # a few distinct topics, each quoted once
        for start in range(0, len(stored_events), CHUNK):
            chunk = stored_events[start : start + CHUNK]
            keys, literals = _array_literals(chunk, quoted)
            # Four array literals as text: PostgreSQL parses them in C, where psycopg would adapt 40,000
            # Python objects one by one. States travel as hex and are decoded in the statement.
            result = session.execute(self._unnest_insert, literals)
            ids.extend(_in_order(keys, result))
        return ids

    def _insert_copy(self, session: Session, stored_events: Sequence[StoredEvent]) -> list[int]:
        """Many events by ``COPY``, about twice as fast as ``INSERT ... unnest`` at 100,000 events.

        COPY returns no ids, so the ids are taken first, in ascending order, from the table's own sequence
        (``nextval``, as the column default would) and written with the rows: the table lock (taken before,
        held to the commit) keeps any other writer from taking ids or inserting meanwhile, so the ids are
        handed out and committed in event order exactly as the INSERT would hand them out. A duplicate
        (originator_id, originator_version) raises ``IntegrityError`` as before."""
        import psycopg

        name = self._qualified_name
        cursor = session.connection().connection.cursor()  # the session's own DB-API connection
        try:
            try:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) AS id FROM generate_series(1, %s) ORDER BY id",
                    (name, len(stored_events)),
                )
                ids = [row[0] for row in cursor.fetchall()]
                topics: dict[str, str] = {}
                lines = []
                for n_id, e in zip(ids, stored_events, strict=True):
                    topic = topics.get(e.topic)
                    if topic is None:
                        topic = topics[e.topic] = _copy_text(e.topic)
                    lines.append(f"{n_id}\t{e.originator_id}\t{e.originator_version}\t{topic}\t\\\\x{bytes(e.state).hex()}\n")
                with cursor.copy(
                    f"COPY {name} (id, originator_id, originator_version, topic, state) FROM STDIN"
                ) as copy:
                    copy.write("".join(lines))
            except psycopg.Error as exc:  # raw DB-API errors: translate as the library's transaction does
                raise _persistence_error(exc) from exc
        finally:
            cursor.close()
        return ids

    def insert_events_one_trip(self, stored_events: Sequence[StoredEvent]) -> list[int]:
        """``insert_events`` in one round trip to PostgreSQL (elsewhere, or beyond one chunk: ``insert_events``).

        The same transaction as ``insert_events`` (``LOCK TABLE ... IN EXCLUSIVE MODE``, the same
        ``INSERT ... SELECT FROM unnest(...) RETURNING``, ``NOTIFY``, ``COMMIT``), sent as one simple-protocol
        query (``BEGIN; LOCK ...; INSERT ...; NOTIFY ...; COMMIT``) on a pooled connection, instead of five
        round trips through a session. A writer in a busy server waits for the GIL after every round trip,
        so five of them make the table lock last several switch intervals; one makes it last one. The
        group commit writes through it. Errors are the library's (``IntegrityError`` for a duplicate
        (originator_id, originator_version)); nothing of a failed transaction is stored.
        """
        if not stored_events or len(stored_events) > CHUNK or not self._is_postgres():
            return list(self.insert_events(stored_events) or ())
        import psycopg

        keys, sql = self.one_trip_sql(stored_events)
        engine = self.datastore.engine
        assert isinstance(engine, sa.Engine)
        pooled = engine.raw_connection()
        broken = False
        try:
            conn: Any = pooled.driver_connection
            conn.autocommit = True  # the statement carries its own BEGIN and COMMIT
            try:
                with conn.cursor() as cur:
                    cur.execute(sql, prepare=False)
                    rows: list[Any] = []
                    while True:
                        if cur.description is not None:
                            rows = cur.fetchall()
                        if not cur.nextset():
                            break
            except psycopg.Error as exc:
                if conn.closed or conn.broken:
                    broken = True
                elif conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    try:
                        conn.execute("ROLLBACK")
                    except psycopg.Error:
                        broken = True
                raise _persistence_error(exc) from exc
            finally:
                if not broken and not conn.closed:
                    conn.autocommit = False
        finally:
            if broken:
                pooled.invalidate()
            pooled.close()
        return _in_order(keys, rows)

    def one_trip_sql(self, stored_events: Sequence[StoredEvent]) -> tuple[list[tuple[Any, int]], str]:
        """The (id, version) keys of ``stored_events`` (at most ``CHUNK``) and the one simple-protocol query
        that stores them on PostgreSQL (``insert_events_one_trip``; ``AsyncOneTrip`` sends the same text)."""
        keys, literals = _array_literals(stored_events, {})
        name = self._qualified_name
        return keys, (
            f"BEGIN; LOCK TABLE {name} IN EXCLUSIVE MODE; "
            f"INSERT INTO {name} (originator_id, originator_version, topic, state) "
            f"SELECT i, v, t, decode(s, 'hex') FROM unnest(CAST({_sql_text(literals['ids'])} AS uuid[]), "
            f"CAST({_sql_text(literals['versions'])} AS bigint[]), CAST({_sql_text(literals['topics'])} AS text[]), "
            f"CAST({_sql_text(literals['states'])} AS text[])) AS u(i, v, t, s) "
            f"RETURNING id, originator_id, originator_version; NOTIFY {self.channel_name}; COMMIT"
        )


def _array_literals(chunk: Sequence[StoredEvent], quoted: dict[str, str]) -> tuple[list[tuple[Any, int]], dict[str, str]]:
    """The (id, version) keys of ``chunk`` and its four PostgreSQL array literals (ids, versions, topics,
    states as hex)."""
    keys = [(_as_uuid(e.originator_id), e.originator_version) for e in chunk]
    topics = []
    for e in chunk:
        q = quoted.get(e.topic)
        if q is None:
            q = quoted[e.topic] = _quote(e.topic)
        topics.append(q)
    return keys, {
        "ids": "{" + ",".join([str(k[0]) for k in keys]) + "}",
        "versions": "{" + ",".join([str(k[1]) for k in keys]) + "}",
        "topics": "{" + ",".join(topics) + "}",
        "states": '{"' + '","'.join([bytes(e.state).hex() for e in chunk]) + '"}',
    }


def _in_order(keys: list[tuple[Any, int]], rows: Any) -> list[int]:
    """Notification ids in the order of ``keys``, whatever order RETURNING gave the rows in."""
    position = {(oid, version): nid for nid, oid, version in rows}
    if len(position) != len(keys):  # pragma: no cover - the unique index makes this impossible
        raise RuntimeError(f"inserted {len(position)} rows for {len(keys)} events")
    return [position[k] for k in keys]


def _copy_text(text: str) -> str:
    """A value in COPY's text format (backslash, tab, newline and carriage return escaped)."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _sql_text(text: str) -> str:
    """A PostgreSQL escape-string literal (``E'...'``): right whatever standard_conforming_strings is."""
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _persistence_error(exc: Exception) -> Exception:
    """The eventsourcing exception for a psycopg (DB-API) one, as the library's transactions translate them."""
    import psycopg
    from eventsourcing import persistence as es

    for dbapi, ours in (
        (psycopg.IntegrityError, es.IntegrityError), (psycopg.DataError, es.DataError),
        (psycopg.OperationalError, es.OperationalError), (psycopg.ProgrammingError, es.ProgrammingError),
        (psycopg.InternalError, es.InternalError), (psycopg.NotSupportedError, es.NotSupportedError),
        (psycopg.InterfaceError, es.InterfaceError), (psycopg.DatabaseError, es.DatabaseError),
    ):
        if isinstance(exc, dbapi):
            return ours(exc)
    return es.PersistenceError(exc)


def _quote(text: str) -> str:
    """One element of a PostgreSQL array literal, quoted (backslash and double quote escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _as_uuid(value: Any) -> Any:
    """Stored events may carry str ids; the database returns UUIDs."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


class _NotPlain(Exception):
    """A value the fast encoder leaves to the library's (a float, a subclass, an unregistered type, ...)."""


_PLAIN = frozenset({str, int, bool, type(None)})


class FastJSONTranscoder(JSONTranscoder):
    """The library's ``JSONTranscoder``, encoding the same bytes about three times faster.

    The library encodes with ``json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)`` and a ``default``
    that wraps each registered type (datetime, UUID, Decimal) as ``{"_type_": name, "_data_": ...}``. Here the
    registered types are wrapped first, in Python, and msgspec writes the JSON. For str, int, bool, None,
    lists, tuples and dicts with str keys msgspec writes exactly the bytes the standard library does (checked
    for every code point); anything else (floats, str/int/dict subclasses such as enums, non-str keys,
    unregistered types) makes the whole value go through the library's encoder, unchanged. Decoding is the
    library's. Selected with ``TRANSCODER_TOPIC=services.infra.recorder:FastJSONTranscoder``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._msgspec = msgspec.json.Encoder()

    def encode(self, obj: Any) -> bytes:
        try:
            return self._msgspec.encode(self._wrap(obj))
        except (_NotPlain, TypeError, ValueError, OverflowError, msgspec.EncodeError):
            return super().encode(obj)

    def _wrap(self, o: Any) -> Any:
        """``o`` with registered types wrapped as the library's ``default`` wraps them; ``o`` itself (not a
        copy) when nothing in it needs wrapping."""
        t = type(o)
        if t in _PLAIN:
            return o
        if t is dict:
            out = None
            for k, v in o.items():
                if type(k) is not str:
                    raise _NotPlain
                if type(v) in _PLAIN:
                    continue
                w = self._wrap(v)
                if w is not v:
                    if out is None:
                        out = dict(o)
                    out[k] = w
            return o if out is None else out
        if t is list or t is tuple:
            items = None
            for i, v in enumerate(o):
                if type(v) in _PLAIN:
                    continue
                w = self._wrap(v)
                if w is not v:
                    if items is None:
                        items = list(o)
                    items[i] = w
            return o if items is None else items
        transcoding = self.types.get(t)
        if transcoding is None:
            raise _NotPlain
        return {"_type_": transcoding.name, "_data_": self._wrap(transcoding.encode(o))}


class _Pending:
    """One caller's stored events waiting in a group commit, and what became of them."""

    __slots__ = ("done", "error", "ids", "stored", "wake")

    def __init__(self, stored: Sequence[StoredEvent]) -> None:
        self.stored = stored
        self.ids: list[int] | None = None
        self.error: BaseException | None = None
        self.done = False
        self.wake = threading.Event()  # set when done, or when this caller is made the next leader


class GroupCommit:
    """Group commit: small writes of concurrent callers share one transaction.

    A caller queues its stored events. When no write is under way it becomes the leader at once (no waiting,
    so a lone caller pays nothing); otherwise it waits. The leader takes the queue (up to ``max_events``
    events, its own first), inserts all of it with one ``insert`` (one transaction: one table lock, one
    INSERT, one NOTIFY, one commit), hands each caller its notification ids, then makes the first caller still
    queued (those that arrived during the write) the next leader. So a batch is whatever gathered while the
    previous one was written.

    When the shared transaction fails (a duplicate (originator_id, originator_version): a key registered
    twice, or two concurrent writes to one aggregate; or any other error), nothing of it was stored, and the
    leader inserts each caller's events again in a transaction of its own: every caller succeeds or fails on
    its own, with the error its write alone gives (``IntegrityError`` for a duplicate), exactly as without
    grouping. Each caller's events stay together, in its order, at ascending positions.

    ``insert`` must open and commit its own transaction; never call :meth:`insert` from inside an open
    transaction of the same store (the leader would write other callers' events into it).
    """

    def __init__(self, insert: Callable[[Sequence[StoredEvent]], Sequence[int] | None], max_events: int = 1000) -> None:
        self._insert = insert
        self._max_events = max_events
        self._mutex = threading.Lock()
        self._queue: deque[_Pending] = deque()
        self._leading = False  # invariant: the queue is empty unless a leader is writing or designated
        self.transactions = 0  # shared transactions written (statistics for tests and benchmarks)
        self.grouped = 0  # caller writes that went through them
        self.retried = 0  # caller writes retried alone after their shared transaction failed

    def insert(self, stored: Sequence[StoredEvent]) -> list[int]:
        """Store ``stored`` (in a transaction shared with concurrent callers); their notification ids."""
        item = _Pending(stored)
        with self._mutex:
            self._queue.append(item)
            lead = not self._leading
            self._leading = True
        if not lead:
            item.wake.wait()
        if not item.done:  # the leader: at once, or designated by the previous leader
            self._lead()
        if item.error is not None:
            raise item.error
        assert item.ids is not None
        return item.ids

    def _lead(self) -> None:
        with self._mutex:
            batch = [self._queue.popleft()]  # the leader's own write is first in the queue
            n = len(batch[0].stored)
            while self._queue and n + len(self._queue[0].stored) <= self._max_events:
                batch.append(self._queue.popleft())
                n += len(batch[-1].stored)
        try:
            self._write(batch)
        finally:
            with self._mutex:
                successor = self._queue[0] if self._queue else None
                if successor is None:
                    self._leading = False
            for item in batch:
                if item.ids is None and item.error is None:  # pragma: no cover - the leader was interrupted
                    item.error = RuntimeError("the group commit was interrupted; the write may not be stored")
                item.done = True
                item.wake.set()
            if successor is not None:
                successor.wake.set()

    def _write(self, batch: list[_Pending]) -> None:
        self.transactions += 1
        self.grouped += len(batch)
        if len(batch) == 1:
            self._write_alone(batch[0])
            return
        try:
            ids = self._insert([s for item in batch for s in item.stored])
        except Exception:  # noqa: BLE001 - nothing was stored: each write on its own says what is wrong
            self.retried += len(batch)
            for item in batch:
                self.transactions += 1
                self._write_alone(item)
            return
        ids = list(ids or ())
        if len(ids) != sum(len(item.stored) for item in batch):  # pragma: no cover - not an application recorder
            raise RuntimeError(f"the recorder returned {len(ids)} notification ids for the batch")
        start = 0
        for item in batch:
            item.ids = ids[start : start + len(item.stored)]
            start += len(item.stored)

    def _write_alone(self, item: _Pending) -> None:
        try:
            item.ids = list(self._insert(item.stored) or ())
        except Exception as exc:  # noqa: BLE001 - handed to the caller, raised in its thread
            item.error = exc


class AsyncOneTrip:
    """``BulkApplicationRecorder.insert_events_one_trip`` awaited on the event loop: the same query text
    (``one_trip_sql``: lock, insert, notify, commit in one round trip) on a psycopg ``AsyncConnection`` of the
    loop's own (autocommit: the text carries its own BEGIN and COMMIT), so a command whose only database work
    is its write needs no worker thread. One write at a time (``AsyncGroupCommit`` sends them), so one
    connection; made at the first write, and again after one broke. A connection idle for
    ``PING_AFTER`` seconds is pinged first (as the engine's pool pings a checkout): a server restarted meanwhile
    costs a new connection, not a failed write. Errors are the library's (``IntegrityError`` for a duplicate
    (originator_id, originator_version)); nothing of a failed write is stored."""

    PING_AFTER = 10.0

    def __init__(self, recorder: BulkApplicationRecorder, conninfo: str) -> None:
        self._recorder = recorder
        self._conninfo = conninfo
        self._conn: Any = None
        self._used = 0.0  # time.monotonic() of the last write that came back

    async def insert(self, stored: Sequence[StoredEvent]) -> list[int]:
        import psycopg

        if not stored:
            return []
        if len(stored) > CHUNK:
            raise ValueError(f"at most {CHUNK} events in one write on the event loop, not {len(stored)}")
        keys, sql = self._recorder.one_trip_sql(stored)
        conn = await self._connection()
        try:
            cur = conn.cursor()
            await cur.execute(sql, prepare=False)
            rows: list[Any] = []
            while True:
                if cur.description is not None:
                    rows = await cur.fetchall()
                if not cur.nextset():
                    break
        except psycopg.Error as exc:
            await self._after_error(conn)
            raise _persistence_error(exc) from exc
        except BaseException:  # cancelled mid-way: the connection's state is unknown
            self._conn = None
            await _shielded_close(conn)
            raise
        self._used = time.monotonic()
        return _in_order(keys, rows)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def _connection(self) -> Any:
        import psycopg

        conn = self._conn
        if conn is not None and not conn.closed and time.monotonic() - self._used > self.PING_AFTER:
            try:
                await conn.execute("SELECT 1")
            except psycopg.Error:
                await conn.close()
        if conn is None or conn.closed or conn.broken:
            conn = self._conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        return conn

    async def _after_error(self, conn: Any) -> None:
        import psycopg

        if not conn.closed and not conn.broken and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                await conn.execute("ROLLBACK")
        if conn.closed or conn.broken or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self._conn = None
            await _shielded_close(conn)


async def _shielded_close(conn: Any) -> None:
    import asyncio

    with contextlib.suppress(Exception):
        await asyncio.shield(conn.close())


class AsyncGroupCommit:
    """``GroupCommit`` for coroutines of one event loop: the writes that arrive while one is being stored
    share the next transaction.

    A caller queues its stored events and awaits its answer; a writer task (started by the first caller of
    an idle committer, ended when the queue is empty) takes the queue up to ``max_events`` events at a time
    and stores each batch with one ``insert``. A lone caller waits for no one: its write starts in the same
    turn of the loop. When a shared transaction fails, nothing of it was stored, and each caller's events are
    inserted again alone: every caller succeeds or fails on its own, with the error its write alone gives.
    A caller that is cancelled while it waits does not take its write back (as a thread's would not be):
    it may be stored."""

    def __init__(self, insert: Callable[[Sequence[StoredEvent]], Any], max_events: int = 1000,
                 close: Callable[[], Any] | None = None) -> None:
        self._insert = insert
        self._close = close
        self._max_events = max_events
        self._queue: deque[tuple[Sequence[StoredEvent], Any]] = deque()
        self._writer: Any = None
        self.transactions = 0
        self.grouped = 0
        self.retried = 0

    async def insert(self, stored: Sequence[StoredEvent]) -> list[int]:
        import asyncio

        loop = asyncio.get_running_loop()
        answer = loop.create_future()
        self._queue.append((stored, answer))
        if self._writer is None:
            self._writer = loop.create_task(self._write_queued())
        return list(await asyncio.shield(answer))

    async def close(self) -> None:
        """Let the writes under way end, then close what ``insert`` writes through (``close``, if given)."""
        import asyncio

        writer = self._writer
        if writer is not None:
            await asyncio.wait([writer], timeout=10)
        if self._close is not None:
            await self._close()

    async def _write_queued(self) -> None:
        batch: list[tuple[Sequence[StoredEvent], Any]] = []
        try:
            while self._queue:
                batch = [self._queue.popleft()]
                n = len(batch[0][0])
                while self._queue and n + len(self._queue[0][0]) <= self._max_events:
                    batch.append(self._queue.popleft())
                    n += len(batch[-1][0])
                await self._write(batch)
                batch = []
        finally:
            self._writer = None
            for _, answer in [*batch, *self._queue]:  # only when the task itself was cancelled (loop closing)
                if not answer.done():
                    answer.set_exception(RuntimeError("the group commit was interrupted; the write may not be stored"))
            if batch:
                self._queue.clear()

    async def _write(self, batch: list[tuple[Sequence[StoredEvent], Any]]) -> None:
        self.transactions += 1
        self.grouped += len(batch)
        if len(batch) > 1:
            try:
                ids = list(await self._insert([s for stored, _ in batch for s in stored]))
            except Exception:  # noqa: BLE001 - nothing was stored: each write on its own says what is wrong
                self.retried += len(batch)
                self.transactions += len(batch)
            else:
                start = 0
                for stored, answer in batch:
                    if not answer.done():
                        answer.set_result(ids[start : start + len(stored)])
                    start += len(stored)
                return
        for stored, answer in batch:
            try:
                ids = list(await self._insert(stored))
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                if not answer.done():
                    answer.set_exception(exc)
            else:
                if not answer.done():
                    answer.set_result(ids)


class WalOnceDatastore(SQLAlchemyDatastore):
    """The library datastore, switching a SQLite file to WAL once, whatever the number of threads.

    The library checks "tried already?" outside its lock, so threads that start their first transactions
    together each run ``PRAGMA journal_mode=WAL``; a late one runs it while the others already write, and
    SQLite answers "database is locked" without waiting (seen in CI). Here the check is repeated under the
    lock, a file that is already in WAL mode is only asked (``PRAGMA journal_mode``), and the switch itself is
    retried for a while when another connection holds the file.
    """

    WAL_ATTEMPTS = 50
    WAL_PAUSE = 0.05  # seconds between attempts: up to 2.5 s in all

    def init_sqlite_wal_mode(self) -> None:
        self._tried_init_sqlite_wal_mode = True
        if not self.is_sqlite_filedb or self.is_sqlite_wal_mode:
            return
        with self._wal_mode_lock:
            if self.is_sqlite_wal_mode:
                return
            assert isinstance(self.engine, sa.Engine)
            for attempt in range(self.WAL_ATTEMPTS):
                try:
                    with self.engine.connect() as connection:
                        mode = connection.execute(sa.text("PRAGMA journal_mode")).scalar()
                        if str(mode).lower() != "wal":
                            mode = connection.execute(sa.text("PRAGMA journal_mode=WAL")).scalar()
                    self.is_sqlite_wal_mode = str(mode).lower() == "wal"
                    return
                except sa.exc.OperationalError as exc:
                    if "locked" not in str(exc) or attempt == self.WAL_ATTEMPTS - 1:
                        raise
                    time.sleep(self.WAL_PAUSE)


class BulkSQLAlchemyFactory(SQLAlchemyFactory):
    """The library's factory, with ``BulkApplicationRecorder`` as the application recorder and
    ``WalOnceDatastore`` as the datastore."""

    application_recorder_class = BulkApplicationRecorder
    datastore_class = WalOnceDatastore

