"""Catch-up projection runner: works on SQLite and PostgreSQL, applies every event exactly once, and rebuilds
a read model beside the live one while the server keeps serving from it.

Each projection's position lives in ``projection_positions`` and moves in the same transaction as the
projection's rows. The transaction first locks the projection's position row (``FOR UPDATE`` on
PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite), and the final update is a compare-and-set on the position it
started from, so two workers on one read model never apply an event twice.

Cold catch-up (``bulk_lag``): ``catch_up`` rebuilds a read model that is far behind (``far_behind``) instead of
applying its events batch by batch.

Rebuild (``rebuild()``, ``dualrandom projections rebuild``): a copy of the projection (``type(p)(suffix=
"__rebuild")``, tables ``<name>__rebuild``) is built from position 0 in large batches while the live tables keep
serving and the live runner keeps applying; then one transaction locks the live position row (so no live
runner, in any process, can apply an event meanwhile), brings the copy to the head of the log, drops the live
tables, renames the copy's tables, indexes and sequences to the live names and gives the live row the copy's
position. ``ALTER TABLE ... RENAME`` is transactional on both databases: readers see the old tables or the new.
"""

import concurrent.futures
import contextlib
import datetime as dt
import functools
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
import structlog
from eventsourcing.persistence import Notification
from sqlalchemy.engine import Connection, Engine

from projections.bulk import gc_paused
from projections.decode import fast_decoder, plain_state_check

log = structlog.get_logger(__name__)

metadata = sa.MetaData()
positions = sa.Table(
    "projection_positions",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)
# The together path's lock and move (``ProjectionRunner._catch_up_together``), built once (their compiled forms
# are cached): a live worker runs them every batch, for every read model at once.
_LOCK_TOGETHER = (
    sa.select(positions.c.name, positions.c.position, sa.func.set_config("synchronous_commit", "off", True))
    .where(positions.c.name.in_(sa.bindparam("names", expanding=True)))
    .order_by(positions.c.name)
    .with_for_update()
)
_MOVE_TOGETHER = (
    positions.update()
    .where(positions.c.name.in_(sa.bindparam("names", expanding=True)), positions.c.position == sa.bindparam("start"))
    .values(position=sa.bindparam("new_position"))
)
failures = sa.Table(
    "projection_failures",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),  # the event it cannot apply (it stands just before it)
    sa.Column("error", sa.String(300), nullable=False),  # the exception's type and first line
    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
)
"""A read model that cannot apply an event: written by whichever process runs it, read by ``/ready``,
``/metrics`` and ``dualrandom projections status``; removed once it has applied that event."""


@dataclass(frozen=True)
class Failure:
    name: str
    position: int
    error: str
    since: dt.datetime


class ProjectionFailedError(Exception):
    """One or more read models cannot apply an event; the others went on (``failures()`` names them)."""

    def __init__(self, found: Sequence[Failure]) -> None:
        super().__init__("; ".join(f"{f.name} at log position {f.position}: {f.error}" for f in found))
        self.failures = list(found)


class Projection(Protocol):
    """A read model: its tables and how an event changes them. Every projection follows this contract, so that
    ``ProjectionRunner.rebuild`` (a copy built from position 0 beside the live tables, then swapped in) and
    ``tests.support.projections.assert_rebuild_equals_live`` work for it with no code of its own.

    - ``__init__(self, suffix: str = "")``: the class is constructible with ``suffix`` alone (keyword). With
      ``""`` the instance reads and writes the canonical (live) tables. With a suffix such as ``"__rebuild"``
      it builds its OWN ``sa.MetaData()`` holding the same tables, each named ``<canonical name><suffix>``, and
      ``apply_batch`` writes only to those. Pattern: a module function ``_tables(metadata, suffix)`` that
      defines every table; called once at import with ``""`` for the module-level canonical ``Table`` objects
      that ``queries.py`` uses (queries always read the canonical names), and once in ``__init__`` per suffixed
      instance. Raw SQL text must take its table names from the instance's tables, never a literal.
    - ``name: str``: its row in ``projection_positions`` (lower case, at most 40 characters). The same for
      every suffix: the runner names a copy's position row ``name + suffix`` itself.
    - ``suffix: str``: the suffix given. ``metadata: sa.MetaData``: the instance's tables and nothing else.
    - Table names end with the suffix. PostgreSQL names indexes, the indexes of primary-key and unique
      constraints, and sequences per schema, not per table, so every such name in a copy must differ from the
      live one, and removing the suffix from it must give the live name (the swap renames them so). Names
      SQLAlchemy or PostgreSQL generate from the table name (``index=True``, ``unique=True``, the primary
      key's ``<table>_pkey``, a serial's ``<table>_<col>_seq``) do this by themselves; an explicit name must
      end with the suffix: ``sa.Index(f"ix_tasks_due{suffix}", ...)``. No foreign keys to other projections'
      tables.
    - ``apply_batch(conn, events)``: applies ``(position, domain event)`` pairs in log order inside ``conn``'s
      transaction (the runner commits the rows and the new position together). The rows must depend only on
      the events and their positions, never on the clock, randomness, or how the log was cut into batches: a
      rebuild in batches of 10,000 must give the rows that live batches of 1 gave. Events of aggregates it does
      not project are ignored. A projection with the class attribute ``stored_events = True`` gets
      ``(position, stored notification)`` (undecoded: ``originator_id`` (a UUID, or its canonical text),
      ``originator_version``, ``topic``, ``state`` bytes) instead.
    - Optional ``rebuild_batch_size: int``: events per transaction while a copy is built (default 10,000).
    - Optional ``topics: tuple[str, ...]``: topic prefixes of the events it needs; the runner decodes and passes
      only those (each event decoded once per batch for all projections, none when no projection wants it) and
      skips ``apply_batch`` for a batch with none. A superset is safe; derive them from the event classes.
    - Optional ``stored_topics: tuple[str, ...]``: topic prefixes (within ``topics``) of events the projection reads
      from their stored form: it gets ``(position, stored notification)`` for them instead of a decoded event
      whenever the stored state is the plain JSON of an event that needs no upcasting
      (``projections.decode.plain_state_check``), and the decoded event otherwise; ``apply_batch`` handles both
      (``isinstance(item, Notification)``). For a read model that takes a field or two of many events.
    - Optional ``rebuild_apart = True``: the CLI's rebuild builds this copy in a process of its own
      (``services.rebuild._groups``).
    - Optional ``fold_by_aggregate = True``: the rows of an aggregate depend on that aggregate's events (and their
      positions) alone, never on another aggregate's or on the order of events of different aggregates. A copy is
      then first loaded reading the log by aggregate (``_load_by_aggregate``): each batch holds every event of
      each of its aggregates up to the build's first goal, in version order, aggregates in id order, so
      ``apply_batch`` folds an aggregate's events in memory and inserts one row (every first event is version 1:
      nothing to look up); then the copy goes on in log order. It needs ``topics`` to read only its events.
    - A rebuild inserts every row: use ``insert_rows`` (COPY on PostgreSQL) and load the rows a batch touches with
      one query per table, not one per event. While a copy is built its indexes and, on PostgreSQL, its unique
      constraints do not exist yet (they are created after the bulk load): look rows up by primary key.
    """

    name: str
    suffix: str
    metadata: sa.MetaData

    def apply_batch(self, conn: Connection, events: Sequence[tuple[int, Any]]) -> None:
        """Apply ``(position, event)`` pairs, in order, within ``conn``'s transaction."""


def insert_rows(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows (dicts with the same keys) inside ``conn``'s transaction, fast: ``COPY`` on PostgreSQL
    (psycopg formats the rows in C; ~3x an ``INSERT`` with arrays, ~5x an executemany), executemany elsewhere.

    For projections' ``apply_batch``: a rebuild inserts every row of a read model.
    """
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), list(rows))
        return
    columns = list(rows[0])
    with _copy(conn, table, columns) as copy:
        write = copy.write_row
        for row in rows:
            write([row[c] for c in columns])


def insert_tuples(conn: Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """``insert_rows`` for rows given as tuples in the order of ``columns`` (no dict per row: for the read models
    that write a row or two per event)."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), [dict(zip(columns, r)) for r in rows])
        return
    with _copy(conn, table, columns) as copy:
        write = copy.write_row
        for row in rows:
            write(row)


def insert_int_int_bytes(conn: Connection, table: sa.Table, columns: Sequence[str],
                         rows: Sequence[tuple[int, int, bytes]]) -> None:
    """``insert_tuples`` for rows of two integers and a byte string (the audit tree's leaves and nodes: two rows
    per event), written as COPY text in one piece: a third of the time of a row at a time."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        insert_tuples(conn, table, columns, rows)
        return
    with _copy(conn, table, columns) as copy:
        copy.write("".join([f"{a}\t{b}\t\\\\x{c.hex()}\n" for a, b, c in rows]))


@contextlib.contextmanager
def _copy(conn: Connection, table: sa.Table, columns: Sequence[str]) -> Iterator[Any]:
    """A ``COPY table (columns) FROM STDIN`` of psycopg inside ``conn``'s transaction."""
    q = conn.dialect.identifier_preparer.quote
    sql = f"COPY {q(table.name)} ({', '.join(q(c) for c in columns)}) FROM STDIN"
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(sql) as copy:  # type: ignore[union-attr]
        yield copy


class ProjectionConflictError(Exception):
    """Another worker moved the position first; this batch was rolled back."""


class RebuildInProgressError(Exception):
    """Another process is rebuilding the same read model."""


REBUILD_SUFFIX = "__rebuild"
FINISH_WORK_MEM = "256MB"  # PostgreSQL maintenance_work_mem while a copy's indexes are built (finish_copies)
FINISH_BUILDS = 2  # PostgreSQL: a copy's indexes built side by side (finish_copies), each with FINISH_WORK_MEM
ANALYZE_UNTIL_BATCH = 8  # a copy is analysed after its batches 1, 2, 4 and 8 (see ProjectionRunner._analyze)


def copy_of(projection: Projection, suffix: str) -> Projection:
    """A copy of ``projection`` on its own tables ``<table><suffix>`` (see the ``Projection`` contract)."""
    if not suffix:
        raise ValueError("a copy needs a suffix")
    copy: Projection = type(projection)(suffix=suffix)  # type: ignore[call-arg]
    for table in copy.metadata.sorted_tables:
        if not table.name.endswith(suffix):
            raise ValueError(f"{projection.name}: table {table.name} of a copy does not end with {suffix!r}")
    return copy


_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")  # an escaped U+0000, not an escaped backslash


def _without_nul(n: Any) -> Any:
    """The notification with every U+0000 of its stored JSON state read as U+FFFD."""
    state = bytes(n.state)
    if b"\\u0000" not in state:
        return n
    return Notification(id=n.id, originator_id=n.originator_id, originator_version=n.originator_version,
                        topic=n.topic, state=_NUL_ESCAPE.sub(rb"\1\\ufffd", state))


def _execute(statement: str, conn: Connection) -> None:
    conn.execute(sa.text(statement))


def _live_name(name: str, suffix: str) -> str:
    return name.replace(suffix, "")


class ProjectionRunner:
    """Runs projections over the application's notification log."""

    def __init__(self, app: Any, engine: Engine, projections: Sequence[Projection], batch_size: int = 1000,
                 bulk_lag: int = 0) -> None:
        self.app = app
        # catch_up rebuilds a read model (the bulk path) instead of applying its events batch by batch when it is
        # more than ``bulk_lag`` events and a quarter of the log behind the head (0: never); ``bulk`` does it
        # (default ``rebuild``; the runtime may give one that builds in worker processes).
        self.bulk_lag = bulk_lag
        self.bulk: Callable[[Sequence[str]], object] = lambda names: self.rebuild(names)
        self._no_bulk: set[str] = set()  # read models whose bulk catch-up failed here: event by event from now on
        self.engine = engine
        self.projections = list(projections)
        self.batch_size = batch_size
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._positions: dict[str, int] = {}
        self._running = 0  # run_forever loops in this process
        self.listeners: list[Callable[[], object]] = []  # called (from the runner's thread) when a position moved
        self._failed: set[str] = set()  # names with a recorded failure: cleared when they get past it
        record_cls = getattr(getattr(app, "recorder", None), "events_record_cls", None)
        self._events: sa.Table | None = record_cls.__table__ if record_cls is not None else None
        datastore = getattr(getattr(app, "recorder", None), "datastore", None)
        self._store: Engine | None = getattr(datastore, "engine", None)
        self._to_event: Callable[[Any], Any] | None = None  # the mapper's, faster (projections.decode)
        self._is_plain: Callable[[Any], bool] = lambda n: False  # stored_topics: see projections.decode
        self._routes: dict[tuple[Any, Any], dict[str, object]] = {}  # (topics, stored_topics) -> topic -> _route

    # -- positions --------------------------------------------------------------------------------------
    def setup(self) -> None:
        """Create tracking and read-model tables (idempotent)."""
        metadata.create_all(self.engine)
        for p in self.projections:
            p.metadata.create_all(self.engine)
            self._ensure_row(p.name)
            ensure_indexes = getattr(p, "ensure_indexes", None)  # indexes added after its tables were created
            if ensure_indexes is not None:
                with self.engine.begin() as conn:
                    ensure_indexes(conn)
        self._failed = {f.name for f in self.failures()}  # another process's, or before a restart: cleared here too

    def _ensure_row(self, name: str, reset: bool = False) -> None:
        with self.engine.begin() as conn:
            if conn.execute(sa.select(positions.c.position).where(positions.c.name == name)).first() is None:
                conn.execute(positions.insert().values(name=name, position=0))
            elif reset:
                conn.execute(positions.update().where(positions.c.name == name).values(position=0))

    def position(self, name: str) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(positions.c.position).where(positions.c.name == name)).scalar()
        return int(value or 0)

    def positions(self) -> dict[str, int]:
        """Every stored position by name (live read models and copies being built), one query."""
        with self.engine.connect() as conn:
            return {str(n): int(v) for n, v in conn.execute(sa.select(positions.c.name, positions.c.position))}

    def head(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)

    def _lock(self, conn: Connection, name: str, *, flush: bool = True) -> int:
        """Lock the position row ``name`` for ``conn``'s transaction; its position. ``flush=False`` (PostgreSQL):
        the transaction commits without waiting for its WAL to reach the disk (``synchronous_commit`` off for
        it, set by the same query: no round trip more). That is for a read model's own batch only: its rows and
        its position row commit or vanish together, and a crash that loses the last of them leaves the read
        model consistent at an earlier position, from which the log (committed durably) is applied again."""
        query = sa.select(positions.c.position).where(positions.c.name == name)
        if conn.dialect.name == "postgresql":
            if not flush:
                query = query.add_columns(sa.func.set_config("synchronous_commit", "off", True))
            query = query.with_for_update()
        return int(conn.execute(query).scalar_one())  # the first column: the position

    def _lock_all(self, conn: Connection, names: list[str]) -> dict[str, int]:
        """``_lock(conn, name, flush=False)`` of each of ``names`` (sorted) in one query, in the order of the
        names (as ``align`` locks them: no deadlock); their positions."""
        if conn.dialect.name != "postgresql":
            return {name: self._lock(conn, name, flush=False) for name in names}
        rows = conn.execute(_LOCK_TOGETHER, {"names": names}).all()
        found = {str(name): int(position) for name, position, _ in rows}
        if len(found) != len(names):
            raise ProjectionConflictError(f"position rows missing: {sorted(set(names) - set(found))}")
        return found

    # -- reading the log --------------------------------------------------------------------------------
    def _read(self, after: int, limit: int, until: int | None) -> list[Any]:
        """Notifications after ``after`` (up to ``until``), at most ``limit``: plain rows read through the
        store's own engine (the read models may live elsewhere, e.g. ``audit replay --into``), no ORM objects."""
        if self._events is None or self._store is None:
            return list(self.app.recorder.select_notifications(after, limit, stop=until, inclusive_of_start=False))
        # On PostgreSQL the aggregate id comes as its canonical text (``str(uuid)``): the read models that use it
        # as text (the audit leaf, execution's names) need no UUID object, and a decoder makes one as cheaply.
        if self._store.dialect.name == "postgresql":
            # Binary results: the state's bytes as they are, where text results make PostgreSQL write them in hex
            # (~8% of its work in a rebuild) and psycopg read the hex back. The plain psycopg cursor also skips
            # SQLAlchemy's row objects.
            sql = (f"SELECT id, originator_id::text, originator_version, topic, state FROM {self._events.name} "
                   f"WHERE id > %(after)s" + (" AND id <= %(until)s" if until is not None else "")
                   + " ORDER BY id LIMIT %(limit)s")
            params = {"after": after, "until": until, "limit": limit}
            with self._store.connect() as c, c.connection.driver_connection.cursor(binary=True) as cur:  # type: ignore[union-attr]
                rows = cur.execute(sql, params).fetchall()
            return [Notification(id=r[0], originator_id=r[1], originator_version=r[2], topic=r[3], state=r[4])
                    for r in rows]
        sql = f"SELECT id, originator_id, originator_version, topic, state FROM {self._events.name} WHERE id > :after"
        if until is not None:
            sql += " AND id <= :until"
        query = sa.text(sql + " ORDER BY id LIMIT :limit")
        with self._store.connect() as c:
            rows = c.execute(query, {"after": after, "until": until, "limit": limit}).all()
        return [Notification(id=int(r[0]), originator_id=_uuid(r[1]), originator_version=int(r[2]), topic=r[3],
                             state=bytes(r[4])) for r in rows]

    def _analyze_log(self) -> None:
        """PostgreSQL: give the log statistics on the columns that the by-aggregate read is planned with, when it
        has none (a log just imported or restored, autovacuum off or not there yet): each batch was then planned
        as a scan and an on-disk sort of the whole log, 1.4 s a batch instead of 0.1 s (170 s instead of 47 to load
        the directory of 1,000,000 targets). ``ANALYZE`` takes 0.3 s at a million events and makes the commands'
        inserts (which lock the log's table) wait meanwhile, hence only when missing. Without the privilege
        PostgreSQL warns and skips it."""
        if self._events is None or self._store is None or self._store.dialect.name != "postgresql":
            return
        columns = ("originator_id", "originator_version", "id", "topic")
        with self._store.begin() as conn:
            known = conn.execute(sa.text(
                "SELECT count(*) FROM pg_stats s JOIN pg_namespace n ON n.nspname = s.schemaname "
                "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename "
                "WHERE c.oid = to_regclass(:t) AND s.attname IN :columns"
            ).bindparams(sa.bindparam("columns", expanding=True)), {"t": self._events.name, "columns": list(columns)})
            if known.scalar_one() < len(columns):
                q = self._store.dialect.identifier_preparer.quote
                conn.exec_driver_sql(f"ANALYZE {q(self._events.name)} ({', '.join(columns)})")
                log.info("rebuild_log_analyzed", table=self._events.name)

    def _read_by_aggregate(self, prefixes: Sequence[str], until: int, after: Any, limit: int) -> tuple[list[Any], Any]:
        """The events up to position ``until`` whose topic starts with one of ``prefixes``, ordered by aggregate
        and version, of the aggregates after ``after`` (a stored aggregate id, None at first): about ``limit``
        of them, always every such event of each aggregate given. Returns them and the last aggregate's stored id
        (None when none is left). Read through the unique index (aggregate id, version)."""
        assert self._events is not None and self._store is not None
        pg = self._store.dialect.name == "postgresql"
        t = self._events.name
        likes = " OR ".join(f"topic LIKE :p{i}" for i in range(len(prefixes))) or "TRUE"
        # A topic holds no "%"; a "_" in a prefix matches any character there: a superset, which the routes filter.
        params: dict[str, Any] = {f"p{i}": p + "%" for i, p in enumerate(prefixes)}
        params.update(until=until, limit=limit)
        oid = "originator_id::text AS oid_text" if pg else "originator_id"
        cols = f"id, {oid}, originator_version, topic, state, originator_id"

        def fetch(where: str, extra: dict[str, Any], limited: bool) -> list[Any]:
            sql = (f"SELECT {cols} FROM {t} WHERE id <= :until AND ({likes}){where} "
                   f"ORDER BY originator_id, originator_version" + (" LIMIT :limit" if limited else ""))
            with self._store.connect() as c:  # type: ignore[union-attr]
                if pg:  # binary results, as _read
                    with c.connection.driver_connection.cursor(binary=True) as cur:  # type: ignore[union-attr]
                        return cur.execute(re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql), {**params, **extra}).fetchall()
                return list(c.execute(sa.text(sql), {**params, **extra}).all())

        rows = fetch("" if after is None else " AND originator_id > :after", {"after": after}, True)
        if not rows:
            return [], None
        last = rows[-1][5]
        if len(rows) == limit:  # the last aggregate may go on: its events are read whole, apart
            rows = [r for r in rows if r[5] != last]
            rows += fetch(" AND originator_id = :last", {"last": last}, False)
        batch = [Notification(id=int(r[0]), originator_id=r[1] if pg else _uuid(r[1]), originator_version=int(r[2]),
                              topic=r[3], state=bytes(r[4])) for r in rows]
        return batch, last

    def _decode(self, batch: list[Any]) -> list[tuple[int, Any]]:
        return self._events_for(None, batch, [None] * len(batch))

    def _events_for(self, projection: Projection | None, batch: list[Any], decoded: list[Any]) -> list[tuple[int, Any]]:
        """``(position, domain event)`` of the notifications whose topic ``projection`` wants (all when it has no
        ``topics``), each decoded once per batch (``decoded``, shared by the projections of the batch)."""
        if self._to_event is None:
            self._to_event = fast_decoder(self.app.mapper)
            self._is_plain = plain_state_check(self.app.mapper)
        to_event, is_plain = self._to_event, self._is_plain
        key = (getattr(projection, "topics", None), getattr(projection, "stored_topics", None))
        routes = self._routes.get(key)
        if routes is None:
            routes = self._routes[key] = {}
        out = []
        for i, n in enumerate(batch):
            route = routes.get(n.topic)
            if route is None:
                route = routes[n.topic] = _route(*key, n.topic)
            if route is _SKIP:
                continue
            if route is _STORED and is_plain(n):
                out.append((n.id, n))  # the projection reads the few fields it needs from the stored state
                continue
            ev = decoded[i]
            if ev is None:
                ev = decoded[i] = to_event(n)
            out.append((n.id, ev))
        return out

    # -- live ---------------------------------------------------------------------------------------------
    def run_once(self, projection: Projection, until: int | None = None) -> int:
        """Apply the next batch to one projection (no event after position ``until``, when given);
        returns how many events were applied."""
        with self.engine.begin() as conn:
            start = self._lock(conn, projection.name, flush=False)  # see _lock: a read model's batch is not flushed
            batch = self._read(start, self.batch_size, until)
            if not batch:
                self._publish(projection.name, start)
                return 0
            self._apply(conn, [(projection, projection.name, start)], batch)
        self._publish(projection.name, batch[-1].id)
        return len(batch)

    def _apply(self, conn: Connection, targets: Sequence[tuple[Projection, str, int]], batch: list[Any]) -> None:
        """Apply ``batch`` to each (projection, position row, start) and move each row, compare-and-set.

        An event is decoded once for all the projections, and only when one of them wants its topic (``topics``);
        each projection gets the events it wants, in log order, and is not called when there are none.

        A stored text with U+0000 (written before every text was checked on entry, see ``domain.text``) reaches
        the read models as U+FFFD, on every store alike (a PostgreSQL text column refuses U+0000); the log keeps
        its bytes, and the projections of stored events (the audit tree hashes them) get them as they are."""
        self._apply_rows(conn, [t[0] for t in targets], batch)
        for _, row, start in targets:
            moved = conn.execute(
                positions.update()
                .where(positions.c.name == row, positions.c.position == start)
                .values(position=batch[-1].id)
            )
            if moved.rowcount != 1:
                raise ProjectionConflictError(f"{row}: position moved from {start} by another worker")

    def _apply_rows(self, conn: Connection, projections: Sequence[Projection], batch: list[Any]) -> None:
        """The rows part of ``_apply``: each projection gets the events of ``batch`` it wants (no position moves)."""
        decoded: list[Any] = [None] * len(batch)  # the domain event of batch[i], once decoded
        readable = batch
        if any(b"\\u0000" in n.state for n in batch):
            readable = [_without_nul(n) for n in batch]
        for projection in projections:
            if getattr(projection, "stored_events", False):
                projection.apply_batch(conn, [(n.id, n) for n in batch])
            else:
                events = self._events_for(projection, readable, decoded)
                if events:
                    projection.apply_batch(conn, events)

    def catch_up(self, until: int | None = None) -> int:
        """Apply everything in the log now (up to position ``until``); returns the number of events applied.

        A read model that fails on an event does not hold the others back: it is brought to just before that
        event, the failure is recorded (``failures()``) and logged, the others go on, and then
        ProjectionFailedError names every failed one. A read model that later applies the event (the cause
        fixed, say by a new version of the code) has its failure removed."""
        total = self._bulk_catch_up() if self.bulk_lag and until is None else 0
        applied, done = self._catch_up_together(until)
        total += applied
        found: list[Failure] = []
        for p in self.projections:
            if p.name in done:
                continue
            try:
                # A batch shorter than a full one ended at the head as it was read (positions are given in commit
                # order under the log's table lock): no second transaction only to find nothing more.
                while (n := self.run_once(p, until)) > 0:
                    total += n
                    if n < self.batch_size:
                        break
            except ProjectionConflictError:
                raise
            except Exception as exc:  # noqa: BLE001 - any error of a read model is isolated and reported
                found.append(self._isolate(p, until, exc))
                continue
            if p.name in self._failed:
                self._clear_failure(p.name)
        if found:
            raise ProjectionFailedError(found)
        return total

    def _catch_up_together(self, until: int | None) -> tuple[int, set[str]]:
        """Apply the log to every read model at once while they all stand at one position (the usual case of a
        live worker): one transaction a batch for all of them (one read of the log, one commit) instead of one
        each. Returns the events applied (summed over the read models, as ``catch_up`` counts) and the names
        found at the head. Anything else (positions apart, a recorded failure, an error) is left to the read
        model by read model path, which isolates a failing one; an error rolls the shared batch back whole.
        The position rows are locked in the order of their names, as ``align`` locks them: no deadlock."""
        if len(self.projections) < 2 or self._failed:
            return 0, set()
        names = sorted(p.name for p in self.projections)
        applied = 0
        try:
            while True:
                with self.engine.begin() as conn:
                    starts = self._lock_all(conn, names)
                    start = starts[names[0]]
                    if any(position != start for position in starts.values()):
                        return applied, set()
                    batch = self._read(start, self.batch_size, until)
                    if batch:
                        self._apply_rows(conn, [self.projection(n) for n in names], batch)
                        moved = conn.execute(_MOVE_TOGETHER, {"names": names, "start": start,
                                                                    "new_position": batch[-1].id})
                        if moved.rowcount != len(names):
                            raise ProjectionConflictError(f"{', '.join(names)}: moved from {start} by another worker")
                position = batch[-1].id if batch else start
                for name in names:
                    self._publish(name, position)
                applied += len(batch) * len(names)
                if len(batch) < self.batch_size:
                    return applied, set(names)
        except Exception as exc:  # noqa: BLE001 - rolled back whole: the path below goes one by one, isolating
            log.info("projections_together_failed", error=type(exc).__name__)  # the path below logs the details
            return applied, set()

    def far_behind(self) -> list[str]:
        """The read models ``catch_up`` would rebuild (``bulk_lag``): more than ``bulk_lag`` events and a quarter
        of the log behind the head, and not stopped by a failure (those are isolated event by event, as are those
        whose bulk catch-up failed in this process)."""
        if not self.bulk_lag:
            return []
        head = self.head()
        stored = self.positions()
        return [p.name for p in self.projections if p.name not in self._failed and p.name not in self._no_bulk
                and (lag := head - stored.get(p.name, 0)) > self.bulk_lag and lag * 4 >= head]

    def _bulk_catch_up(self) -> int:
        """Rebuild the read models that are far behind (``far_behind``); returns the events they moved by.

        A rebuild reads and applies the whole log several times faster than catch-up applies it (no index is
        maintained row by row, a directory entry's events are folded into one row) and puts the rows in place only
        when complete, like ``dualrandom projections rebuild``: a crash meanwhile leaves the read model where it was,
        and the next catch-up starts the copy over. Another process rebuilding one of them: it is left to that one
        (the position moves when its swap commits)."""
        names = self.far_behind()
        if not names:
            return 0
        before = self.positions()
        log.info("projections_bulk_catch_up", projections=names, head=self.head())
        try:
            self.bulk(names)
        except RebuildInProgressError as exc:
            log.info("projections_bulk_elsewhere", reason=str(exc))
            return 0
        except Exception:
            log.exception("projections_bulk_failed", projections=names)
            self._no_bulk.update(names)
            return 0
        after = self.positions()
        for name in names:
            self._publish(name, after.get(name, 0))
        return sum(after.get(n, 0) - before.get(n, 0) for n in names)

    def failures(self) -> list[Failure]:
        """The read models that cannot apply an event, as recorded by any process (one query)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(failures).order_by(failures.c.name)).all()
        return [Failure(r.name, int(r.position), r.error,
                        r.since if r.since.tzinfo is not None else r.since.replace(tzinfo=dt.UTC)) for r in rows]

    def _isolate(self, projection: Projection, until: int | None, exc: Exception) -> Failure:
        """Apply ``projection``'s events up to the one that fails (halving the batch on each failure, down to one
        event), and record that failure."""
        self_batch = self.batch_size
        size = max(self_batch // 2, 1)
        position = self.position(projection.name)
        error = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"[:300]
        try:
            while True:
                self.batch_size = size
                try:
                    if self.run_once(projection, until) == 0:
                        break  # the batch failed, no single event does (a transient error): nothing to record
                except ProjectionConflictError:
                    continue
                except Exception as one:  # noqa: BLE001
                    if size > 1:
                        size = max(size // 2, 1)
                        continue
                    position = self.position(projection.name)
                    error = f"{type(one).__name__}: {(str(one).strip().splitlines() or [''])[0]}"[:300]
                    nxt = self._read(position, 1, until)
                    failure = Failure(projection.name, nxt[0].id if nxt else position + 1, error,
                                      dt.datetime.now(dt.UTC))
                    self._record_failure(failure)
                    log.error("projection_failed", projection=failure.name, position=failure.position,
                              error=failure.error)
                    return failure
        finally:
            self.batch_size = self_batch
        return Failure(projection.name, position + 1, error, dt.datetime.now(dt.UTC))

    def _record_failure(self, failure: Failure) -> None:
        self._failed.add(failure.name)
        with self.engine.begin() as conn:
            conn.execute(failures.delete().where(failures.c.name == failure.name))
            conn.execute(failures.insert().values(name=failure.name, position=failure.position,
                                                  error=failure.error, since=failure.since))

    def _clear_failure(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(failures.delete().where(failures.c.name == name))
        self._failed.discard(name)
        log.info("projection_recovered", projection=name)

    def catch_up_named(self, names: Sequence[str]) -> None:
        """Bring the named read models to the head of the log as it is now, in this thread (a command about to read
        them); another worker applying the same batch meanwhile is fine (compare-and-set: look again)."""
        head = self.head()
        for name in names:
            projection = self.projection(name)
            for _ in range(100):
                try:
                    if self.run_once(projection, until=head) == 0:
                        break
                except ProjectionConflictError:
                    continue

    def run_forever(self, stop: threading.Event, poll_interval: float = 0.5, coalesce: float = 0.02) -> None:
        """Loop until ``stop`` is set; ``wake()`` cuts the idle wait short.

        After a wake-up it waits ``coalesce`` seconds so that a burst of writes is applied as one batch (one
        transaction) rather than one transaction per event competing with the writers.
        """
        backoff = 0.2
        woken = True
        self._running += 1
        try:
            while not stop.is_set():
                if woken and coalesce:
                    stop.wait(coalesce)
                if not woken and self._idle():  # a timed poll and nothing new: one query, not one per read model
                    woken = self._wake.wait(poll_interval)
                    self._wake.clear()
                    continue
                try:
                    applied = self.catch_up()
                    backoff = 0.2
                except ProjectionConflictError:
                    continue
                except ProjectionFailedError:  # recorded and logged; the others went on
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                except Exception:
                    log.exception("projection_batch_failed")
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                woken = True
                if not applied:
                    woken = self._wake.wait(poll_interval)
                    self._wake.clear()
        finally:
            self._running -= 1

    def _idle(self) -> bool:
        """Whether the log's head is known to be applied by every read model (one query: the head), so that an idle
        poll does not open a transaction per read model; a process with projections in its own event loop's
        process pays every poll in its requests' latency (tests/bench/README.md, the public results' p99)."""
        known = self.known_positions([p.name for p in self.projections])
        if known is None or self._failed:
            return False
        try:
            return self.head() <= min(known, default=0)
        except Exception:  # noqa: BLE001 - the database is away: catch_up reports it
            return False

    def wake(self) -> None:
        self._wake.set()

    def _publish(self, name: str, position: int) -> None:
        with self._cond:
            self._positions[name] = position
            self._cond.notify_all()
        for listener in list(self.listeners):
            listener()

    @property
    def running_here(self) -> bool:
        """Whether a ``run_forever`` loop runs in this process (its progress is published, not polled)."""
        return self._running > 0

    def applied(self, position: int, names: Sequence[str] | None = None) -> bool:
        """Whether every (named) projection is known, in this process, to have applied ``position`` (no I/O)."""
        with self._cond:
            return all(self._positions.get(n, 0) >= position for n in names or [p.name for p in self.projections])

    def known_positions(self, names: Sequence[str]) -> list[int] | None:
        """The positions this process knows the named projections have applied (no I/O: what ``applied`` reads);
        None when one of them is not known yet."""
        with self._cond:
            found = [self._positions.get(n) for n in names]
        return None if any(p is None for p in found) else [int(p) for p in found if p is not None]

    def refresh_positions(self) -> None:
        """Read the stored positions (workers in other processes move them) and publish any progress."""
        stored = self.positions()
        with self._cond:
            for name, position in stored.items():
                self._positions[name] = max(self._positions.get(name, 0), position)
            self._cond.notify_all()
        for listener in list(self.listeners):
            listener()

    def wait_for(self, position: int, timeout: float = 5.0, names: Sequence[str] | None = None,
                 poll: float = 0.02) -> bool:
        """Block until every (named) projection has applied ``position``; False on timeout (read-your-writes).

        With the loop of ``run_forever`` running in this process, it is woken and its progress awaited. Without
        one (``DUALRANDOM_PROJECTIONS_IN_PROCESS=false``: ``dualrandom projections run`` workers in other
        processes), the stored positions are read every ``poll`` seconds.
        """
        names = list(names or [p.name for p in self.projections])
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                if all((k := self._positions.get(n)) is not None and k >= position for n in names):
                    return True
            if self._running:
                self._wake.set()
            else:
                stored = self.positions()
                with self._cond:
                    for n in names:
                        self._positions[n] = max(self._positions.get(n, 0), stored.get(n, 0))
                    if all(self._positions[n] >= position for n in names):
                        return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with self._cond:
                self._cond.wait(min(remaining, poll if not self._running else 0.05))
        stored = self.positions()  # the last word: the database
        return all(stored.get(n, 0) >= position for n in names)

    # -- rebuild --------------------------------------------------------------------------------------------
    def projection(self, name: str) -> Projection:
        for p in self.projections:
            if p.name == name:
                return p
        raise KeyError(f"{name!r} is not a read model; one of {', '.join(p.name for p in self.projections)}")

    def build_copies(
        self,
        names: Sequence[str] | None = None,
        *,
        suffix: str = REBUILD_SUFFIX,
        until: int | None = None,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
        finish: bool = True,
    ) -> list[Projection]:
        """Build copies of the named (default: all) projections on fresh tables ``<table><suffix>`` from position
        0 (up to ``until``), reading the log once for all of them; the live tables are not touched. Then
        ``finish_copies`` (indexes, constraints, statistics), unless ``finish`` is False (the caller does it).

        Leftover tables of an earlier copy with the same suffix are dropped first. Returns the copies (their
        position rows are ``<name><suffix>``); ``swap`` puts one in place of the live tables, ``drop_copy``
        throws it away.
        """
        live = [self.projection(n) for n in names] if names else list(self.projections)
        copies = [copy_of(p, suffix) for p in live]
        metadata.create_all(self.engine)
        for c in copies:
            with self.engine.begin() as conn:
                c.metadata.drop_all(conn)
                for table in c.metadata.sorted_tables:
                    # Plain indexes and (PostgreSQL) unique constraints come after the bulk load: one sort beats
                    # maintaining them row by row (the copy's lookups use the primary key).
                    conn.execute(sa.schema.CreateTable(table))
                    self._defer_unique_constraints(conn, table)
                    for index in table.indexes:
                        if index.unique:
                            index.create(conn)
            self._ensure_row(c.name + suffix, reset=True)
        size = batch_size or max(getattr(c, "rebuild_batch_size", 10_000) for c in copies)
        # A copy's batches are not flushed to disk one by one (PostgreSQL ``synchronous_commit = off`` for them):
        # a crash may lose the last few, but each batch's rows and its position row commit or vanish together, so
        # the copy stays consistent and a later rebuild starts it over; the swap that puts it live is durable.
        pg = self.engine.dialect.name == "postgresql"
        # Read models whose rows of an aggregate depend on that aggregate's events alone (``fold_by_aggregate``)
        # are first loaded up to the head as it is now (or ``until``) reading the log by aggregate: an aggregate's
        # every event comes in one batch, so a read model folds them in memory and writes one row (an entry's five
        # events: one COPYed row, not an insert and four updates). Then every copy goes on in log order.
        done = dict.fromkeys([c.name for c in copies], 0)  # the position each copy is at
        folded = [c for c in copies if getattr(c, "fold_by_aggregate", False)] if self._events is not None else []
        if folded:
            goal = until if until is not None else self.head()
            started = time.perf_counter()
            with gc_paused() as collect:
                self._load_by_aggregate(folded, suffix, goal, size, collect)
            log.info("rebuild_loaded_by_aggregate", projections=[c.name for c in folded], position=goal,
                     seconds=round(time.perf_counter() - started, 1))
            done.update(dict.fromkeys([c.name for c in folded], goal))
            self._analyze(folded)
        position = min(done.values())
        batches = 0
        reader = _Prefetch(self, size)
        with gc_paused() as collect:
            try:
                # In passes up to the head as it was when the pass began: writers cannot keep the build going for
                # ever, and what is left for the swap's locked catch-up stays under a batch. The first pass ends
                # where the folded copies stand, so that each batch finds every copy it applies to at its start.
                ahead = max(done.values())
                while True:
                    goal = until if until is not None else self.head()
                    if position < ahead:
                        goal = ahead
                    while position < goal and (batch := reader.next(position, goal)):
                        targets = [c for c in copies if done[c.name] == position]
                        with self.engine.begin() as conn:
                            if pg:  # see below
                                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                            self._apply(conn, [(c, c.name + suffix, position) for c in targets], batch)
                        position = batch[-1].id
                        for c in targets:
                            done[c.name] = position
                        batches += 1
                        if batches & (batches - 1) == 0 and batches <= ANALYZE_UNTIL_BATCH:
                            self._analyze(targets)  # after batches 1, 2, 4, 8: plans fit the growing tables
                        if progress is not None:
                            progress(position)
                        if batches % 8 == 0:
                            collect()
                    if position < ahead:  # the log held no event up to where the folded copies stand
                        raise RuntimeError(f"the log ends at {position}, before position {ahead}")
                    if until is not None or self.head() - position < size:
                        break
            finally:
                reader.close()
        log.info("rebuild_loaded", projections=[c.name for c in copies], position=position)
        if finish:
            self.finish_copies(copies)
        return copies

    def _load_by_aggregate(self, copies: Sequence[Projection], suffix: str, until: int, size: int,
                           collect: Callable[[], object]) -> None:
        """Load fresh copies of ``fold_by_aggregate`` read models with every event up to position ``until``, read by
        aggregate (``_read_by_aggregate``: about ``size`` events a batch, each aggregate's events together, in
        version order), then set their position rows to ``until``; one transaction per batch (a crash leaves a
        copy that a later rebuild starts over)."""
        prefixes: list[str] = []
        for c in copies:
            topics = getattr(c, "topics", None)
            if topics is None:
                prefixes = []
                break
            prefixes += [t for t in topics if t not in prefixes]
        pg = self.engine.dialect.name == "postgresql"
        self._analyze_log()
        after: Any = None
        batches = 0
        pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rebuild-read")
        try:
            pending = pool.submit(self._read_by_aggregate, prefixes, until, after, size)
            while True:
                batch, after = pending.result()
                if not batch:
                    break
                pending = pool.submit(self._read_by_aggregate, prefixes, until, after, size)  # the next, meanwhile
                with self.engine.begin() as conn:
                    if pg:  # as the log-order batches of build_copies
                        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                    self._apply_rows(conn, copies, batch)
                batches += 1
                if batches % 8 == 0:
                    collect()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        with self.engine.begin() as conn:
            for c in copies:
                conn.execute(positions.update().where(positions.c.name == c.name + suffix).values(position=until))

    def finish_copies(self, copies: Sequence[Projection]) -> None:
        """After the bulk load of copies: their plain indexes and (PostgreSQL) unique constraints, one sort each,
        and their statistics, so that the swapped-in read model is planned as well as the one it replaces.

        On PostgreSQL the indexes are built ``FINISH_BUILDS`` at a time, each in a transaction of its own on a
        connection of its own (``CREATE INDEX`` takes a lock that its siblings share): a trigram GIN index is built
        by one backend, so built one after another the directory's indexes kept one core busy while the other
        waited (13 s of a 40 s rebuild at 400,000 targets). A copy is not in use before it is swapped in, and a
        failed build fails the rebuild, as before."""
        started = time.perf_counter()
        builds: list[Callable[[Connection], object]] = []  # PostgreSQL: each in a transaction of its own
        for c in copies:
            with self.engine.begin() as conn:
                postgres = conn.dialect.name == "postgresql"
                # A read model's own indexes (directory: search), as statements to build side by side, longest first.
                own: Callable[[Connection], list[str]] | None = getattr(c, "index_statements", None) if postgres else None
                if postgres:  # sorts in memory (the default 64 MB spills a million rows)
                    conn.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{FINISH_WORK_MEM}'")
                if own is not None:
                    builds += [functools.partial(_execute, statement) for statement in own(conn)]
                for table in c.metadata.sorted_tables:
                    for index in table.indexes:
                        if not index.unique:
                            if postgres:
                                builds.append(functools.partial(index.create, checkfirst=True))
                            else:
                                index.create(conn, checkfirst=True)
                    if postgres and not self._unique_constraints(conn, table):
                        for constraint in table.constraints:
                            if isinstance(constraint, sa.UniqueConstraint):  # PostgreSQL names it as CREATE TABLE did
                                conn.execute(sa.schema.AddConstraint(constraint))
                ensure_indexes = getattr(c, "ensure_indexes", None)  # the same, in this transaction
                if own is None and ensure_indexes is not None:
                    ensure_indexes(conn)
        self._build_side_by_side(builds)
        self._analyze(copies, every_column=True)
        log.info("rebuild_finished", projections=[c.name for c in copies], seconds=round(time.perf_counter() - started, 1))

    def _build_side_by_side(self, builds: Sequence[Callable[[Connection], object]]) -> None:
        """Run ``builds`` ``FINISH_BUILDS`` at a time, in order, each in a transaction of its own; the first error
        is raised once every started build has ended."""
        def run(build: Callable[[Connection], object]) -> None:
            with self.engine.begin() as conn:
                conn.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{FINISH_WORK_MEM}'")
                build(conn)

        if not builds:
            return
        with concurrent.futures.ThreadPoolExecutor(FINISH_BUILDS, thread_name_prefix="rebuild-index") as pool:
            futures = [pool.submit(run, build) for build in builds]
            concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_EXCEPTION)
            for future in futures:
                future.cancel()  # after a failure: those not started yet are not built
            for future in futures:
                if not future.cancelled() and future.exception() is not None:
                    raise future.exception()  # type: ignore[misc]

    @staticmethod
    def _unique_constraints(conn: Connection, table: sa.Table) -> list[str]:
        q = conn.dialect.identifier_preparer.quote
        return list(conn.execute(sa.text(
            "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(:t) AND contype = 'u' ORDER BY conname"
        ), {"t": q(table.name)}).scalars())

    @classmethod
    def _defer_unique_constraints(cls, conn: Connection, table: sa.Table) -> None:
        """PostgreSQL: drop the new, empty table's unique constraints (not its primary key); ``finish_copies`` adds
        them back once it is loaded. SQLite cannot drop a constraint, and keeps them."""
        if conn.dialect.name != "postgresql":
            return
        q = conn.dialect.identifier_preparer.quote
        for constraint in cls._unique_constraints(conn, table):
            conn.execute(sa.text(f"ALTER TABLE {q(table.name)} DROP CONSTRAINT {q(constraint)}"))

    def _analyze(self, copies: Sequence[Projection], every_column: bool = False) -> None:
        """PostgreSQL plans a new table's queries as if it were empty until it is analysed (autovacuum may be off,
        or come long after a rebuild has made the table large): lookups turn into scans of the whole copy.

        While a copy is built: only the columns its lookups may use (the primary key's, see the contract), and
        only while the copy is young (``ANALYZE_UNTIL_BATCH``): what such a lookup's plan needs is the share of
        distinct values of its columns, known after a few batches, and the row estimates follow the table's
        physical size by themselves (every column and every doubling cost the directory copy 0.9 of its 6.3 s
        at 200,000 events). Once it is built (``every_column``): all of it, once, for the queries it will serve."""
        if self.engine.dialect.name != "postgresql":
            return
        q = self.engine.dialect.identifier_preparer.quote
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for c in copies:
                for table in c.metadata.sorted_tables:
                    if every_column:
                        conn.execute(sa.text(f"ANALYZE {q(table.name)}"))
                        continue
                    keys = [col.name for col in table.primary_key.columns]
                    keys += [col.name for ix in table.indexes if ix.unique for col in ix.columns if col.name not in keys]
                    keys += [col.name for col in table.columns if col.unique and col.name not in keys]
                    conn.execute(sa.text(f"ANALYZE {q(table.name)} ({', '.join(q(k) for k in keys)})"))

    def swap(self, copy: Projection, batch_size: int | None = None) -> int:
        """Bring ``copy`` to the head of the log and put its tables in place of the live ones, in one
        transaction holding the live position row's lock; returns the position the read model is now at."""
        suffix = copy.suffix
        live = self.projection(copy.name)
        default_size: int = getattr(copy, "rebuild_batch_size", 10_000)
        size = batch_size or default_size
        with self.engine.begin() as conn:
            position = self.catch_up_copy(conn, copy, batch_size=size)
            for table in reversed(live.metadata.sorted_tables):
                table.drop(conn, checkfirst=True)
            for table in copy.metadata.sorted_tables:
                self._rename_table(conn, table.name, _live_name(table.name, suffix), suffix)
            conn.execute(positions.update().where(positions.c.name == live.name).values(position=position))
            conn.execute(positions.delete().where(positions.c.name == copy.name + suffix))
        self._publish(live.name, position)
        self.wake()
        log.info("projection_swapped", projection=live.name, position=position)
        return position

    def align(self, conn: Connection, names: Sequence[str]) -> int:
        """Within ``conn``'s transaction: lock the named read models' position rows and bring them all to one
        log position (the head, or the furthest of them); returns it. Queries in the same transaction then read
        the read models as of that one position (e.g. a draw's frozen pool)."""
        locked = {name: self._lock(conn, name) for name in sorted(names)}  # in the order _catch_up_together locks
        target = max([self.head(), *locked.values()])
        for name, start in locked.items():
            p = self.projection(name)
            position = start
            while batch := self._read(position, self.batch_size, target):
                self._apply(conn, [(p, name, position)], batch)
                position = batch[-1].id
        return target

    def catch_up_copy(
        self, conn: Connection, copy: Projection, *, until_live: bool = False, batch_size: int | None = None
    ) -> int:
        """Within ``conn``'s transaction: lock the live read model's position row (no live runner, in any
        process, applies an event until the transaction ends), then bring ``copy`` to the head of the log (to
        the live position with ``until_live``); returns the copy's position."""
        live_position = self._lock(conn, copy.name)
        row = copy.name + copy.suffix
        position = self._lock(conn, row)
        until = live_position if until_live else None
        default_size: int = getattr(copy, "rebuild_batch_size", 10_000)
        size = batch_size or default_size
        while batch := self._read(position, size, until):
            self._apply(conn, [(copy, row, position)], batch)
            position = batch[-1].id
        return position

    def drop_copy(self, copy: Projection) -> None:
        """Drop a copy's tables and position row."""
        with self.engine.begin() as conn:
            copy.metadata.drop_all(conn)
            conn.execute(positions.delete().where(positions.c.name == copy.name + copy.suffix))

    def rebuild(
        self, names: Sequence[str] | None = None, *, batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, int]:
        """Rebuild the named (default: all) read models from position 0 while the live ones keep serving, then
        swap each in; returns the position each read model is at after its swap."""
        selected = list(names) if names else [p.name for p in self.projections]
        with self.rebuild_lock(selected):
            try:
                copies = self.build_copies(selected, batch_size=batch_size, progress=progress)
            except BaseException:
                self.drop_copies(selected)
                raise
            return {c.name: self.swap(c, batch_size=batch_size) for c in copies}

    @contextlib.contextmanager
    def rebuild_lock(self, names: Sequence[str]) -> Iterator[None]:
        """One rebuild of a read model at a time (they would share the copy's tables): PostgreSQL session
        advisory locks, held on a connection of their own until the swap; RebuildInProgressError when another
        process holds one. SQLite: no guard (one writer at a time; run one rebuild)."""
        if self.engine.dialect.name != "postgresql":
            yield
            return
        # Keyed by schema and name: advisory locks are database-wide, and schemas are separate deployments.
        lock = sa.text("SELECT pg_try_advisory_lock(hashtext(current_schema()), hashtext(:k))")
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            held = []
            try:
                for name in names:
                    key = f"dualrandom-rebuild:{name}"
                    if not conn.execute(lock, {"k": key}).scalar_one():
                        raise RebuildInProgressError(f"{name}: another rebuild of this read model is under way")
                    held.append(key)
                yield
            finally:
                for key in held:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(hashtext(current_schema()), hashtext(:k))"),
                                 {"k": key})

    def drop_copies(self, names: Sequence[str], suffix: str = REBUILD_SUFFIX) -> None:
        """Best effort after a failed rebuild: drop the copies' tables and rows (the live ones are untouched)."""
        for name in names:
            try:
                self.drop_copy(copy_of(self.projection(name), suffix))
            except Exception:
                log.exception("rebuild_cleanup_failed", projection=name)

    @staticmethod
    def _rename_table(conn: Connection, old: str, new: str, suffix: str) -> None:
        q = conn.dialect.identifier_preparer.quote
        conn.execute(sa.text(f"ALTER TABLE {q(old)} RENAME TO {q(new)}"))
        if conn.dialect.name == "postgresql":
            # Index (and constraint-index) and sequence names are schema-wide: give them the live names.
            owned = conn.execute(sa.text(
                "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
                "WHERE i.indrelid = to_regclass(:t) "
                "UNION ALL SELECT c.relname, c.relkind FROM pg_class c JOIN pg_depend d ON d.objid = c.oid "
                "WHERE c.relkind = 'S' AND d.refobjid = to_regclass(:t) AND d.classid = 'pg_class'::regclass"
            ), {"t": q(new)}).all()
            for name, kind in owned:
                if suffix in name:
                    what = "INDEX" if kind == "i" else "SEQUENCE"
                    conn.execute(sa.text(f"ALTER {what} {q(name)} RENAME TO {q(_live_name(name, suffix))}"))
        elif conn.dialect.name == "sqlite":
            # SQLite renames its automatic indexes with the table and cannot rename the others: recreate them.
            for name, sql in conn.execute(sa.text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL"
            ), {"t": new}).all():
                if suffix in name:
                    conn.execute(sa.text(f"DROP INDEX {q(name)}"))
                    conn.execute(sa.text(sql.replace(suffix, "")))


_SKIP, _STORED, _DECODED = object(), object(), object()


def _route(topics: tuple[str, ...] | None, stored: tuple[str, ...] | None, topic: str) -> object:
    """What ``_events_for`` does with an event of ``topic`` for a projection of these ``topics`` and
    ``stored_topics`` (the same for every event of the topic, so asked once per topic): skip it (not in
    ``topics``), pass it stored when its state is plain (``stored_topics``), or decode it."""
    if topics is not None and not topic.startswith(topics):
        return _SKIP
    return _STORED if stored and topic.startswith(stored) else _DECODED


class _Prefetch:
    """Reads the next batch of the log in a thread while the current one is applied (a rebuild is bound by
    reading and by applying; the driver releases the GIL while it waits for the database)."""

    def __init__(self, runner: ProjectionRunner, size: int) -> None:
        self.runner, self.size = runner, size
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rebuild-read")
        self._pending: tuple[int, int | None, concurrent.futures.Future[list[Any]]] | None = None

    def next(self, after: int, until: int | None = None) -> list[Any]:
        if self._pending is not None and self._pending[:2] == (after, until):
            batch = self._pending[2].result()
        else:
            batch = self.runner._read(after, self.size, until)
        self._pending = None
        if len(batch) == self.size and (until is None or batch[-1].id < until):
            nxt = batch[-1].id
            self._pending = (nxt, until, self._pool.submit(self.runner._read, nxt, self.size, until))
        return batch

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _uuid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        return uuid.UUID(bytes=raw) if len(raw) == 16 else uuid.UUID(raw.decode())
    return uuid.UUID(str(value))
