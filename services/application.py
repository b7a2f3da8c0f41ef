"""The eventsourcing Application: directory use cases, one transaction each, with event metadata."""

import contextvars
import itertools
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Notification, Recording, StoredEvent
from eventsourcing_sqlalchemy.datastore import transactions as _open_transactions

from domain import access
from domain.access import Actor
from domain.directory import (
    KINDS,
    DirectoryEntry,
    conflict_credit_codes,
    target_id_of,
    with_conflicts_resolved,
)
from domain.errors import FieldProblem, InvalidInputError, PermissionDeniedError
from projections.bulk import gc_paused
from services.infra.heads import Heads
from services.infra.imports import MAX_REPORTED_PROBLEMS
from services.infra.recorder import AsyncGroupCommit, AsyncOneTrip, GroupCommit

APP_NAME = "dualrandom"  # events table: dualrandom_events
_PIPELINE_CHUNK = 5000  # events serialised while the previous chunk is inserted (large saves only)
_GROUP_MAX_EVENTS = 1000  # saves up to this size go through the group commit; larger ones write alone


_CONFLICT = (
    "another write to the same entry was stored first (or the entry already exists); nothing was stored: reload and retry"
)


class NotFoundError(Exception):
    """No entry of that kind with that id."""

    def __init__(self, kind: str, entry_id: str) -> None:
        super().__init__(f"no {kind} with id {entry_id}")
        self.kind = kind
        self.entry_id = entry_id


class ConflictError(Exception):
    """A concurrent write or an existing key: nothing was stored."""


@dataclass(frozen=True)
class CommandContext:
    """Who issues a command and in which request (correlation id); causation defaults to the command."""

    actor: Actor
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    causation_id: str | None = None


@dataclass(frozen=True)
class Written:
    """What a command stored: the entry id, its version, the last log position (None: nothing changed)."""

    id: str
    version: int
    position: int | None
    changed: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int
    events: int
    position: int | None


class DualRandom(Application):
    """Use cases of dualrandom. Every event gets ``_meta``: actor, department, role, correlation and
    causation ids, the command, the aggregate kind and its owning department."""

    name = APP_NAME

    def __init__(self, database_url: str) -> None:
        super().__init__(
            env={
                # eventsourcing_sqlalchemy's factory with a recorder that bulk-inserts (services/infra/recorder.py).
                "PERSISTENCE_MODULE": "services.infra.recorder:BulkSQLAlchemyFactory",
                # the library's JSON, the same bytes, written by msgspec (services/infra/recorder.py)
                "TRANSCODER_TOPIC": "services.infra.recorder:FastJSONTranscoder",
                "SQLALCHEMY_URL": _with_sqlite_timeout(database_url),
                "CREATE_TABLE": "y",
            }
        )
        # Concurrent commands (the server's request threads) share transactions: see services/infra/recorder.py.
        recorder: Any = self.recorder
        self.group_commit = GroupCommit(recorder.insert_events_one_trip, max_events=_GROUP_MAX_EVENTS)
        self.heads = Heads(recorder, self.mapper.to_stored_event)
        engine = recorder.datastore.engine
        self._is_postgres = engine is not None and engine.dialect.name == "postgresql"

    # -- writing ---------------------------------------------------------------------------------
    def record(self, ctx: CommandContext, command: str, *aggregates: Any) -> int | None:
        """Stamp metadata (who, which request, which command) on the aggregates' pending events and store them
        in one transaction; the last log position written (None: nothing was pending). ConflictError when
        another write to one of them was stored first."""
        events = _stamp(_meta_base(ctx, command), aggregates)
        if not events:
            return None
        try:
            if self.repository.cache is not None or self.snapshots is not None:
                recordings = self.save(*aggregates)  # the library's path keeps its cache and snapshots right
            elif len(events) <= _GROUP_MAX_EVENTS and _open_transactions.get(None) is None:
                recordings = self._save_grouped(aggregates, events)
            else:
                recordings = self._save_events(aggregates, events)
        except IntegrityError as exc:
            raise ConflictError(_CONFLICT) from exc
        return max(r.notification.id for r in recordings) if recordings else None

    def _save_grouped(self, aggregates: Sequence[Any], events: list[Any]) -> list[Any]:
        """``_save_events`` through the group commit: this command's events are serialised here, in the
        calling thread, then stored in one transaction shared with the commands of other threads that are
        waiting meanwhile (each command still succeeds or fails on its own: ``GroupCommit``)."""
        stored = self._serialised(aggregates, events)
        return self._recorded(events, stored, self.group_commit.insert(stored))

    def _serialised(self, aggregates: Sequence[Any], events: list[Any]) -> list[StoredEvent]:
        """The stored form of the aggregates' pending ``events`` (which are collected: no longer pending)."""
        for agg in aggregates:
            agg.collect_events()
        to_stored_event = self.mapper.to_stored_event
        return [to_stored_event(ev) for ev in events]

    def _recorded(self, events: list[Any], stored: list[StoredEvent], ids: Sequence[int]) -> list[Recording]:
        """What ``save`` returns for events stored at ``ids``, after the notification hooks have had them."""
        recordings = _recordings(events, stored, ids)
        self._notify(recordings)
        self.notify(events)  # deprecated hook, as save() calls it
        return recordings

    def _save_events(self, aggregates: Sequence[DirectoryEntry], events: list[Any]) -> list[Any]:
        """What ``save`` does for many aggregates without cache or snapshots, minus its per-object protocol
        checks (``isinstance`` against runtime-checkable Protocols, slow at 100,000 objects): collect the
        pending events, put them in the event store (one transaction), notify."""
        for agg in aggregates:
            agg.collect_events()  # clears the pending events (the list above holds them)
        recordings = self._put_pipelined(events) if len(events) > _PIPELINE_CHUNK else self.events.put(events)
        self._notify(recordings)
        self.notify(events)  # deprecated hook, as save() calls it
        return recordings

    def _put_pipelined(self, events: list[Any]) -> list[Any]:
        """``self.events.put(events)`` for many events, in one transaction, with the serialising of chunk k+1
        (Python, holds the GIL) overlapping the INSERT of chunk k (the database; psycopg releases the GIL
        while it waits). One worker thread runs the inserts one after the other on the transaction's session;
        the main thread never touches the session meanwhile. Positions ascend in event order (the table
        lock is taken by the first insert and kept to the commit)."""
        recorder: Any = self.recorder
        to_stored_event = self.mapper.to_stored_event
        stored_all: list[StoredEvent] = []
        notification_ids: list[int] = []
        with recorder.transaction(commit=True) as session, ThreadPoolExecutor(
            1, thread_name_prefix="dualrandom-insert"
        ) as pool:  # the pool exits first: an insert still running ends before the rollback
            running: Future[Any] | None = None
            for start in range(0, len(events), _PIPELINE_CHUNK):
                stored = [to_stored_event(ev) for ev in events[start : start + _PIPELINE_CHUNK]]
                if running is not None:
                    notification_ids.extend(running.result())
                running = pool.submit(recorder.insert_events, stored, session=session)
                stored_all.extend(stored)
            assert running is not None
            notification_ids.extend(running.result())
        return _recordings(events, stored_all, notification_ids)

    def register(self, kind: str, data: dict[str, Any], ctx: CommandContext) -> Written:
        """Register a new directory entry."""
        agg, values = self._new_entry(kind, self.resolve_conflicts(data), ctx)
        # No read before the write: the deterministic id and the store's unique (id, version) refuse a
        # second registration; only that rare failure pays for finding out which case it was.
        try:
            position = self.record(ctx, f"register_{kind}", agg)
        except ConflictError:
            if self._exists(agg.id):
                raise ConflictError(f"a {kind} with this key already exists: {agg.id}") from None
            raise
        return Written(str(agg.id), agg.version, position, tuple(values))

    def registers_on_loop(self, data: dict[str, Any]) -> bool:
        """Can ``register_on_loop`` take this registration? When the only database work it needs is its write
        (no 回避对象 given as credit codes to look up) and saves need no cache or snapshots kept."""
        return self.repository.cache is None and self.snapshots is None and not conflict_credit_codes(data)

    async def register_on_loop(
        self, kind: str, data: dict[str, Any], ctx: CommandContext, group: AsyncGroupCommit,
    ) -> Written:
        """``register`` with its write awaited on the event loop through ``group`` (``services.infra.recorder``:
        the same query, the same transaction, shared with the other registrations waiting meanwhile), so the
        server's request needs no worker thread. Only for what ``registers_on_loop`` accepts."""
        import asyncio

        if not self.registers_on_loop(data):
            raise ValueError("this registration reads before it writes: use register")
        agg, values = self._new_entry(kind, data, ctx)
        events = _stamp(_meta_base(ctx, f"register_{kind}"), [agg])
        stored = self._serialised([agg], events)
        try:
            ids = await group.insert(stored)
        except IntegrityError:
            if await asyncio.to_thread(self._exists, agg.id):
                raise ConflictError(f"a {kind} with this key already exists: {agg.id}") from None
            raise ConflictError(_CONFLICT) from None
        self._recorded(events, stored, ids)
        return Written(str(agg.id), agg.version, max(ids), tuple(values))

    def loop_writes(self) -> AsyncGroupCommit | None:
        """For the running event loop, the group commit ``register_on_loop`` writes through: on PostgreSQL an
        ``AsyncOneTrip`` of its own on this application's database; None elsewhere (a SQLite write keeps to a
        worker thread). Close it (``await ....close()``) before the loop ends."""
        recorder: Any = self.recorder
        engine = recorder.datastore.engine
        if not self._is_postgres:
            return None
        one_trip = AsyncOneTrip(recorder, engine.url.set(drivername="postgresql").render_as_string(hide_password=False))
        return AsyncGroupCommit(one_trip.insert, max_events=_GROUP_MAX_EVENTS, close=one_trip.close)

    def _new_entry(self, kind: str, data: dict[str, Any], ctx: CommandContext) -> tuple[DirectoryEntry, dict[str, Any]]:
        """A new entry of ``kind`` from validated ``data`` (403 unless the actor may write its department)."""
        cls = KINDS[kind]
        values = cls.validate_new(data)
        access.require_write(ctx.actor, kind, _owner(cls, values))
        agg = cls(data=values)  # type: ignore[call-arg]  # each kind's __init__(data) is its @event("Registered")
        return agg, values

    def update(
        self, kind: str, entry_id: uuid.UUID, data: dict[str, Any], ctx: CommandContext,
        expected_version: int | None = None,
    ) -> Written:
        """Change fields of an entry; only real changes are recorded."""
        agg = self.load(kind, entry_id)
        access.require_write(ctx.actor, kind, agg.department)
        if expected_version is not None and agg.version != expected_version:
            raise ConflictError(f"the {kind} is at version {agg.version}, not {expected_version}")
        changed = agg.change(self.resolve_conflicts(data))
        position = self.record(ctx, f"update_{kind}", agg)
        return Written(str(agg.id), agg.version, position, tuple(changed))

    def import_entries(
        self, kind: str, rows: Iterable[tuple[int, dict[str, Any]]], ctx: CommandContext,
        progress: Callable[[int], None] | None = None, *, known_departments_only: bool = False,
    ) -> ImportResult:
        """All-or-nothing import: validate every row, then store every change in one transaction.

        ``known_departments_only`` (the HTTP API and the CLI): a row of an item, inspector or expert naming a
        department that is not registered is a bad row (``unknown_department``).

        ``rows`` may be a list or an iterator (``services.infra.imports.iter_file``): a large one is read and
        stored a chunk at a time (``_import_streaming``), so memory holds a bounded window of rows, aggregates
        and events, whatever the file's size; ``progress(n)`` is called as rows are done."""
        # An import makes hundreds of thousands of objects and no garbage cycles: the cyclic collector
        # would walk the growing heap again and again. Pause it for the import (as it was afterwards).
        with gc_paused():
            return self._import_entries(kind, rows, ctx, progress, known_departments_only)

    def _import_entries(
        self, kind: str, rows: Iterable[tuple[int, dict[str, Any]]], ctx: CommandContext,
        progress: Callable[[int], None] | None, known_departments_only: bool = False,
    ) -> ImportResult:
        cls = KINDS[kind]
        exists = self.department_exists if known_departments_only else None
        it = iter(rows)
        head = list(itertools.islice(it, _PIPELINE_CHUNK + 1))  # more than one chunk: the streamed path
        if len(head) > _PIPELINE_CHUNK and self.repository.cache is None and self.snapshots is None:
            stream = itertools.chain(head, it)
            del head, rows  # the chain holds the first chunk until it is consumed, then lets it go
            return self._import_streaming(cls, stream, ctx, progress, exists)
        rows = head + list(it)  # small (or a cache/snapshots app, which saves through the library's path)
        del head
        check = _RowCheck(cls, ctx, exists, self.resolve_conflicts)
        valid = check.rows(rows)
        check.raise_if_bad()
        existing = self.load_many(cls, [agg_id for _, _, agg_id in valid])
        problems = _Problems()
        to_save: list[DirectoryEntry] = []
        counts = [0, 0, 0]  # created, updated, unchanged
        registered = getattr(cls, "Registered", None)
        for i, (rownum, values, agg_id) in enumerate(valid, 1):
            agg = _imported(cls, registered, existing.get(agg_id), rownum, values, agg_id, counts, problems)
            if agg is not None:
                to_save.append(agg)
            if progress and i % 1000 == 0:
                progress(1000)
        problems.raise_if_any()
        if progress:
            progress(len(valid) % 1000)
        events = sum(len(a.pending_events) for a in to_save)
        position = self.record(ctx, f"import_{kind}", *to_save)
        return ImportResult(counts[0], counts[1], counts[2], events, position)

    def _import_streaming(
        self, cls: type[DirectoryEntry], rows: Iterator[tuple[int, dict[str, Any]]], ctx: CommandContext,
        progress: Callable[[int], None] | None, exists: Callable[[str], bool] | None = None,
    ) -> ImportResult:
        """A large import in one pass and one transaction that starts at once: chunk k+1 of the file is
        read (``rows`` may be a lazy iterator), validated, its existing entries loaded, its aggregates made,
        stamped (the metadata ``_store`` gives, one causation id for the whole import) and serialised while a
        worker thread inserts chunk k.

        Bounded memory: a chunk's rows, aggregates and events are let go once it is inserted; what is kept
        for the whole file is the count of events, the last position and, for duplicate keys, one entry per
        row (``_RowCheck.seen``); problems are kept up to ``MAX_REPORTED_PROBLEMS`` and counted beyond.

        Still all or nothing, with the same answers as the small path: once a row is bad (or forbidden)
        nothing more is loaded, made or inserted, the rest of the file is still validated so that the answer
        lists every bad row, and the transaction is rolled back. A forbidden row answers 403 before bad rows
        answer 422, as before; problems found while applying rows to existing entries count only when every
        row validated. Existing entries are read on a connection of their own (the worker thread owns the
        transaction's): they are the committed ones, and the table lock taken by the first insert keeps
        them from changing until the commit."""
        kind = cls.KIND
        base = _meta_base(ctx, f"import_{kind}")
        registered = getattr(cls, "Registered", None)
        recorder: Any = self.recorder
        to_stored_event = self.mapper.to_stored_event
        check = _RowCheck(cls, ctx, exists, self.resolve_conflicts)
        problems = _Problems()  # from applying rows to existing entries
        refused: InvalidInputError | None = None  # an id of another kind (load_many)
        counts = [0, 0, 0]  # created, updated, unchanged
        # The notification hooks get every recording after the commit: kept only when a subclass listens.
        hooked = (
            getattr(self._notify, "__func__", None) is not Application._notify
            or getattr(self.notify, "__func__", None) is not Application.notify
        )
        events_all: list[Any] = []
        stored_all: list[StoredEvent] = []
        notification_ids: list[int] = []  # only when hooked
        n_events = 0
        position: int | None = None

        def inserted(ids: list[int]) -> None:
            nonlocal position
            if ids:
                position = max(ids) if position is None else max(position, max(ids))
            if hooked:
                notification_ids.extend(ids)

        try:
            with recorder.transaction(commit=True) as session, ThreadPoolExecutor(
                1, thread_name_prefix="dualrandom-insert"
            ) as pool:  # the pool exits first: an insert still running ends before the rollback
                running: Future[Any] | None = None
                while part := list(itertools.islice(rows, _PIPELINE_CHUNK)):
                    valid = check.rows(part)
                    if progress:
                        progress(len(part))
                    del part
                    if check.bad or refused is not None:
                        continue  # nothing more to store: the rest is validated for the answer only
                    replayed: dict[uuid.UUID, int] = {}
                    try:  # outside this thread's transaction: a pooled connection of its own
                        existing = contextvars.Context().run(self._load_many, cls, [a for _, _, a in valid],
                                                             replayed)
                    except InvalidInputError as exc:
                        refused = exc
                        continue
                    chunk: list[DirectoryEntry] = []
                    stale: list[DirectoryEntry] = []  # unchanged, reloaded from 2 rows or more: a head saves that
                    for rownum, values, agg_id in valid:
                        agg = _imported(cls, registered, existing.get(agg_id), rownum, values, agg_id, counts, problems)
                        if agg is not None:
                            chunk.append(agg)
                        elif replayed.get(agg_id, 0) >= 2:
                            stale.append(existing[agg_id])
                    del valid, existing
                    if problems:
                        continue  # nothing more to store; the rest is still applied, for the answer only
                    events = _stamp(base, chunk)
                    for agg in chunk:
                        agg.collect_events()
                    heads = self.heads.stored([a for a in chunk if a.version >= 2] + stale)
                    del chunk, stale
                    if not events and not heads:
                        continue
                    stored = [to_stored_event(ev) for ev in events]
                    if running is not None:
                        inserted(running.result())
                    running = pool.submit(self._insert_chunk, stored, heads, session)
                    n_events += len(events)
                    if hooked:
                        events_all.extend(events)
                        stored_all.extend(stored)
                    del events, stored, heads
                if running is not None:
                    inserted(running.result())
                    running = None
                check.raise_if_bad()
                if refused is not None:
                    raise refused
                problems.raise_if_any()
        except IntegrityError as exc:
            raise ConflictError(_CONFLICT) from exc
        if hooked and events_all:
            self._notify(_recordings(events_all, stored_all, notification_ids))
            self.notify(events_all)  # deprecated hook, as save() calls it
        return ImportResult(counts[0], counts[1], counts[2], n_events, position)

    def _insert_chunk(self, stored: list[StoredEvent], heads: list[StoredEvent], session: Any) -> Any:
        """One chunk of a streamed import, in its transaction: the events, then the heads of what they changed."""
        recorder: Any = self.recorder
        ids = recorder.insert_events(stored, session=session) if stored else []
        self.heads.upsert(session, heads)
        return ids

    # -- reading ---------------------------------------------------------------------------------
    def _exists(self, agg_id: uuid.UUID) -> bool:
        return bool(self.recorder.select_events(agg_id, limit=1))

    def target_known(self, credit_code: str) -> bool:
        """Is a target with this credit code registered? Asked of the event store (no read model to lag)."""
        return self._exists(target_id_of(credit_code))

    def resolve_conflicts(self, data: dict[str, Any], known: dict[str, bool] | None = None) -> dict[str, Any]:
        """回避对象 given as credit codes become the targets' ids (an unknown code is left for validation to name);
        ``known``: a cache of answers (credit code -> registered), kept across the rows of an import."""
        codes = conflict_credit_codes(data) if isinstance(data, dict) else []
        if not codes:
            return data
        cache = {} if known is None else known
        for code in codes:
            if code not in cache:
                cache[code] = self.target_known(code)
        return with_conflicts_resolved(data, {c for c in codes if cache[c]})

    def department_exists(self, code: str) -> bool:
        """Is department ``code`` registered? Asked of the event store (no read model to lag behind)."""
        try:
            self.load("department", KINDS["department"].id_for({"code": code}))
        except NotFoundError:
            return False
        return True

    def load(self, kind: str, entry_id: uuid.UUID) -> DirectoryEntry:
        """The entry, replayed from its events; NotFoundError when absent or of another kind."""
        try:
            agg: Any = self.repository.get(entry_id)
        except AggregateNotFoundError:
            raise NotFoundError(kind, str(entry_id)) from None
        if not isinstance(agg, KINDS[kind]):
            raise NotFoundError(kind, str(entry_id))
        return agg

    def load_many(self, cls: type[DirectoryEntry], ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, DirectoryEntry]:
        """Replay many aggregates with one query per chunk (imports touch thousands at a time): on PostgreSQL
        ``originator_id = ANY(:ids)`` with 5,000 ids a query, elsewhere ``IN`` with 500; plain rows."""
        return self._load_many(cls, ids)

    def _load_many(self, cls: type[DirectoryEntry], ids: Iterable[uuid.UUID],
                   replayed: dict[uuid.UUID, int] | None = None) -> dict[uuid.UUID, DirectoryEntry]:
        """``load_many``, each aggregate from its head (``services/infra/heads.py``) and the events after it;
        ``replayed`` gets the number of rows each one took."""
        recorder: Any = self.recorder
        ids = list(ids)
        found: dict[uuid.UUID, DirectoryEntry] = {}
        id_type = self.heads.events.c.originator_id.type
        if self._is_postgres:
            chunk_size = 5000
            stmt: Any = sa.text(self.heads.replay_sql("= ANY(CAST(:ids AS uuid[]))"))
        else:
            chunk_size = 500
            # the ids bound at execution: a statement holding its values stays in SQLAlchemy's compiled cache
            # with them (an import's ids would pile up there)
            stmt = sa.text(self.heads.replay_sql("IN :ids")).bindparams(
                sa.bindparam("ids", expanding=True, type_=id_type))
        stmt = stmt.columns(sa.column("originator_id", id_type), sa.column("originator_version", sa.BigInteger),
                            sa.column("topic", sa.Text), sa.column("state", sa.LargeBinary),
                            sa.column("head", sa.Integer))
        to_domain_event = self.mapper.to_domain_event
        for start in range(0, len(ids), chunk_size):
            chunk = ids[start : start + chunk_size]
            with recorder.transaction(commit=False) as session:
                rows = session.execute(stmt, {"ids": chunk}).all()
            for oid, version, topic, state, _ in rows:
                ev: Any = to_domain_event(StoredEvent(oid, version, topic, bytes(state)))
                found[ev.originator_id] = ev.mutate(found.get(ev.originator_id))
                if replayed is not None:
                    replayed[ev.originator_id] = replayed.get(ev.originator_id, 0) + 1
        for agg_id, agg in found.items():
            if not isinstance(agg, cls):
                raise InvalidInputError([FieldProblem(_key_field(cls), "kind", f"{agg_id} is not a {cls.KIND}")])
        return found

    def get(self, kind: str, entry_id: uuid.UUID, actor: Actor) -> DirectoryEntry:
        agg = self.load(kind, entry_id)
        access.require_read(actor, kind, agg.department)
        return agg

    def history(self, kind: str, entry_id: uuid.UUID, actor: Actor) -> list[dict[str, Any]]:
        """Every event of one entry with its log position, time, metadata and data."""
        self.get(kind, entry_id, actor)
        return self.stream(entry_id)

    def stream(self, aggregate_id: uuid.UUID) -> list[dict[str, Any]]:
        """Every event of one aggregate with its log position, time, metadata and data, oldest first."""
        entry_id = aggregate_id
        recorder: Any = self.recorder
        record_cls = recorder.events_record_cls
        with recorder.transaction(commit=False) as session:
            records = (
                session.query(record_cls)
                .filter(record_cls.originator_id == entry_id)
                .order_by(record_cls.originator_version)
                .all()
            )
            rows = [(r.id, r.originator_id, r.originator_version, r.topic, bytes(r.state)) for r in records]
        from eventsourcing.persistence import StoredEvent

        out = []
        for position, oid, version, topic, state in rows:
            ev: Any = self.mapper.to_domain_event(StoredEvent(oid, version, topic, state))
            out.append(describe_event(ev, position))
        return out


def _meta_base(ctx: CommandContext, command: str) -> dict[str, Any]:
    """The metadata every event of one command shares (one causation id per command)."""
    return {
        "actor": ctx.actor.subject,
        "department": ctx.actor.department,
        "role": ctx.actor.role,
        "correlation_id": ctx.correlation_id,
        "causation_id": ctx.causation_id or str(uuid.uuid4()),
        "command": command,
    }


def _stamp(base: dict[str, Any], aggregates: Sequence[Any]) -> list[Any]:
    """Set ``_meta`` on the pending events of ``aggregates`` (base + aggregate kind and owner, and the
    departments of a joint task); the pending events, in order."""
    setattr_ = object.__setattr__
    events: list[Any] = []
    for agg in aggregates:
        pending = agg.pending_events
        if not pending:
            continue
        meta = {**base, "aggregate": agg.KIND, "owner": agg.department}
        departments = getattr(agg, "departments", None)
        if departments and list(departments) != [agg.department]:
            meta["departments"] = sorted(departments)  # a joint task's events go to every department
        for ev in pending:
            setattr_(ev, "_meta", meta)
        events.extend(pending)
    return events


def describe_event(ev: Any, position: int | None) -> dict[str, Any]:
    """A plain description of a stored event (history, relay, audit)."""
    state = {
        k: v for k, v in vars(ev).items()
        if k not in {"originator_id", "originator_version", "timestamp", "_meta", "originator_topic"}
    }
    meta = dict(getattr(ev, "_meta", {}) or {})
    return {
        "position": position,
        "aggregate_id": str(ev.originator_id),
        "version": ev.originator_version,
        "type": event_name(ev),
        "time": ev.timestamp.isoformat(),
        "meta": meta,
        "data": state,
    }


def event_name(ev: Any) -> str:
    """snake_case name of the event class: ``Target.Reclassified`` -> ``reclassified``."""
    name = type(ev).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


_DEPARTMENT_OWNED = frozenset({"item", "inspector", "expert"})  # kinds whose rows name their department


class _RowCheck:
    """Validation of import rows, chunk after chunk: field problems, keys repeated anywhere in the file,
    rows the actor may not write (``can_write`` once per owner)."""

    def __init__(
        self, cls: type[DirectoryEntry], ctx: CommandContext, department_exists: Callable[[str], bool] | None,
        resolve: Callable[[dict[str, Any], dict[str, bool]], dict[str, Any]] | None = None,
    ) -> None:
        self.cls = cls
        self.ctx = ctx
        self.department_exists = department_exists
        self.departments: dict[str, bool] = {}  # owner code -> registered (asked once per code)
        self.problems = _Problems()
        self.forbidden = _Problems()
        # The one thing that grows with the file: the id of every row so far (16 bytes, as a bytes object) and
        # its row number, to name the first row of a repeated key; about 130 bytes a row (tests/bench/README.md).
        self.seen: dict[bytes, int] = {}
        self.writable: dict[str, bool] = {}
        self.resolve = resolve  # 回避对象 given as credit codes -> target ids (known codes cached here)
        self.targets_known: dict[str, bool] = {}

    @property
    def bad(self) -> bool:
        return bool(self.problems or self.forbidden)

    def rows(self, rows: Iterable[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any], uuid.UUID]]:
        """The valid rows: (row number, the validated values of the columns the file has, id)."""
        cls, kind = self.cls, self.cls.KIND
        problems, forbidden, seen, writable = self.problems, self.forbidden, self.seen, self.writable
        valid: list[tuple[int, dict[str, Any], uuid.UUID]] = []
        for rownum, raw in rows:
            if self.resolve is not None and "conflicts" in raw:
                raw = self.resolve(raw, self.targets_known)
            try:
                values = cls.validate_new(raw, row=rownum)
            except InvalidInputError as exc:
                problems.add(exc.problems)
                continue
            agg_id = cls.id_for(values)
            first = seen.get(agg_id.bytes)
            if first is not None:
                key = cls.key_of(values)
                problems.add([FieldProblem(_key_field(cls), "duplicate", f"{key} repeats row {first}", rownum)])
                continue
            seen[agg_id.bytes] = rownum
            owner = _owner(cls, values)
            allowed = writable.get(owner)
            if allowed is None:
                allowed = writable[owner] = access.can_write(self.ctx.actor, kind, owner)
            if not allowed:
                forbidden.add(
                    [FieldProblem("department", "forbidden", f"you may not write {kind} entries of {owner}", rownum)]
                )
                continue
            if self.department_exists is not None and kind in _DEPARTMENT_OWNED:
                known = self.departments.get(owner)
                if known is None:
                    known = self.departments[owner] = self.department_exists(owner)
                if not known:
                    problems.add([FieldProblem(
                        "department", "unknown_department", f"no department {owner!r} in the directory", rownum
                    )])
                    continue
            # Only the fields the file has: an absent column leaves the stored value alone.
            valid.append((rownum, {k: v for k, v in values.items() if k in raw}, agg_id))
        return valid

    def raise_if_bad(self) -> None:
        kind = self.cls.KIND
        if self.forbidden:
            raise PermissionDeniedError(
                f"{self.forbidden.rows} rows are {kind} entries you may not write; nothing was imported"
                + self.forbidden.shown(),
                list(self.forbidden),
            )
        self.problems.raise_if_any()


class _Problems(list[FieldProblem]):
    """Problems of an import, one call of ``add`` per bad row: the first ``MAX_REPORTED_PROBLEMS`` are kept
    (a file of a million bad rows cannot fill memory with its answer), the bad rows and problems counted."""

    def __init__(self) -> None:
        super().__init__()
        self.rows = 0
        self.total = 0

    def add(self, problems: Sequence[FieldProblem]) -> None:
        self.rows += 1
        self.total += len(problems)
        room = MAX_REPORTED_PROBLEMS - len(self)
        if room > 0:
            self.extend(problems[:room])

    def shown(self) -> str:
        return f" (the first {len(self)} of {self.total} problems are listed)" if self.total > len(self) else ""

    def raise_if_any(self) -> None:
        if self:
            raise InvalidInputError(list(self), f"{self.rows} bad rows; nothing was imported{self.shown()}")


def _imported(
    cls: type[DirectoryEntry], registered: Any, agg: DirectoryEntry | None, rownum: int, values: dict[str, Any],
    agg_id: uuid.UUID, counts: list[int], problems: "_Problems",
) -> DirectoryEntry | None:
    """One import row applied: a new aggregate (created with the id computed during validation: no second
    uuid5), or the existing one changed; None when unchanged or bad (its problems appended)."""
    if agg is None:
        data = {**cls.SPEC.defaults(), **values}
        counts[0] += 1
        if registered is not None:
            return cls._create(registered, id=agg_id, data=data)
        return cls(data=data)  # type: ignore[call-arg]  # each kind's __init__(data) is its @event("Registered")
    try:
        changed = agg.change(values, row=rownum)
    except InvalidInputError as exc:
        problems.add(exc.problems)
        return None
    if changed:
        counts[1] += 1
        return agg
    counts[2] += 1
    return None


def _owner(cls: type[DirectoryEntry], values: dict[str, Any]) -> str:
    if cls.KIND == "department":
        return str(values["code"])
    if cls.KIND == "target":
        return "shared"
    return str(values["department"])


def _key_field(cls: type[DirectoryEntry]) -> str:
    return next(f.name for f in cls.SPEC.fields.values() if f.identity and f.name != "department")


__all__ = [
    "CommandContext", "ConflictError", "DualRandom", "ImportResult", "NotFoundError",
    "PermissionDeniedError", "Written", "describe_event", "event_name",
]


def _recordings(events: Sequence[Any], stored: Sequence[StoredEvent], ids: Sequence[int]) -> list[Recording]:
    """What ``Application.save`` returns (and hands to ``_notify``): each event with its stored notification."""
    return [
        Recording(ev, Notification(id=n_id, originator_id=s.originator_id, originator_version=s.originator_version,
                                   topic=s.topic, state=s.state))
        for ev, s, n_id in zip(events, stored, ids, strict=True)
    ]


def _with_sqlite_timeout(url: str) -> str:
    """SQLite writers wait for each other (30 s) instead of failing at once with "database is locked"."""
    if url.startswith("sqlite") and "timeout=" not in url:
        return url + ("&" if "?" in url else "?") + "timeout=30"
    return url
