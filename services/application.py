"""The eventsourcing Application: directory use cases, one transaction each, with event metadata."""

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from domain import access
from domain.access import Actor
from domain.directory import KINDS, DirectoryEntry
from domain.errors import FieldProblem, InvalidInputError, PermissionDeniedError

APP_NAME = "dualrandom"  # events table: dualrandom_events


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
                "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
                "SQLALCHEMY_URL": _with_sqlite_timeout(database_url),
                "CREATE_TABLE": "y",
            }
        )

    # -- writing ---------------------------------------------------------------------------------
    def _store(self, ctx: CommandContext, command: str, aggregates: Sequence[DirectoryEntry]) -> int | None:
        """Stamp metadata on pending events and save all aggregates in one transaction."""
        causation = ctx.causation_id or str(uuid.uuid4())
        base = {
            "actor": ctx.actor.subject,
            "department": ctx.actor.department,
            "role": ctx.actor.role,
            "correlation_id": ctx.correlation_id,
            "causation_id": causation,
            "command": command,
        }
        pending = False
        for agg in aggregates:
            meta = {**base, "aggregate": agg.KIND, "owner": agg.department}
            for ev in agg.pending_events:
                object.__setattr__(ev, "_meta", meta)
                pending = True
        if not pending:
            return None
        try:
            recordings = self.save(*aggregates)
        except IntegrityError as exc:
            raise ConflictError(
                "another write to the same entry was stored first (or the entry already exists); "
                "nothing was stored: reload and retry"
            ) from exc
        return max(r.notification.id for r in recordings) if recordings else None

    def register(self, kind: str, data: dict[str, Any], ctx: CommandContext) -> Written:
        """Register a new directory entry."""
        cls = KINDS[kind]
        values = cls.validate_new(data)
        access.require_write(ctx.actor, kind, _owner(cls, values))
        agg = cls(data=values)
        # No read before the write: the deterministic id and the store's unique (id, version) refuse a
        # second registration; only that rare failure pays for finding out which case it was.
        try:
            position = self._store(ctx, f"register_{kind}", [agg])
        except ConflictError:
            if self._exists(agg.id):
                raise ConflictError(f"a {kind} with this key already exists: {agg.id}") from None
            raise
        return Written(str(agg.id), agg.version, position, tuple(values))

    def update(
        self, kind: str, entry_id: uuid.UUID, data: dict[str, Any], ctx: CommandContext,
        expected_version: int | None = None,
    ) -> Written:
        """Change fields of an entry; only real changes are recorded."""
        agg = self.load(kind, entry_id)
        access.require_write(ctx.actor, kind, agg.department)
        if expected_version is not None and agg.version != expected_version:
            raise ConflictError(f"the {kind} is at version {agg.version}, not {expected_version}")
        changed = agg.change(data)
        position = self._store(ctx, f"update_{kind}", [agg])
        return Written(str(agg.id), agg.version, position, tuple(changed))

    def import_entries(
        self, kind: str, rows: Sequence[tuple[int, dict[str, Any]]], ctx: CommandContext,
        progress: Callable[[int], None] | None = None,
    ) -> ImportResult:
        """All-or-nothing import: validate every row, then store every change in one transaction."""
        cls = KINDS[kind]
        problems: list[FieldProblem] = []
        forbidden: list[FieldProblem] = []
        valid: list[tuple[int, dict[str, Any], uuid.UUID]] = []
        seen: dict[uuid.UUID, int] = {}
        for rownum, raw in rows:
            try:
                values = cls.validate_new(raw, row=rownum)
            except InvalidInputError as exc:
                problems.extend(exc.problems)
                continue
            agg_id = cls.id_for(values)
            if agg_id in seen:
                key = cls.key_of(values)
                problems.append(FieldProblem(_key_field(cls), "duplicate", f"{key} repeats row {seen[agg_id]}", rownum))
                continue
            seen[agg_id] = rownum
            if not access.can_write(ctx.actor, kind, _owner(cls, values)):
                forbidden.append(
                    FieldProblem("department", "forbidden", f"you may not write {kind} entries of {_owner(cls, values)}", rownum)
                )
                continue
            # Only the fields the file has: an absent column leaves the stored value alone.
            valid.append((rownum, {k: v for k, v in values.items() if k in raw}, agg_id))
        if forbidden:
            raise PermissionDeniedError(
                f"{len(forbidden)} rows are {kind} entries you may not write; nothing was imported", forbidden
            )
        if problems:
            raise InvalidInputError(problems, f"{len({p.row for p in problems})} bad rows; nothing was imported")
        existing = self.load_many(cls, [agg_id for _, _, agg_id in valid])
        to_save: list[DirectoryEntry] = []
        created = updated = unchanged = 0
        for i, (rownum, values, agg_id) in enumerate(valid, 1):
            agg = existing.get(agg_id)
            if agg is None:
                to_save.append(cls(data={**cls.SPEC.defaults(), **values}))
                created += 1
            else:
                try:
                    changed = agg.change(values, row=rownum)
                except InvalidInputError as exc:
                    problems.extend(exc.problems)
                    continue
                if changed:
                    to_save.append(agg)
                    updated += 1
                else:
                    unchanged += 1
            if progress and i % 1000 == 0:
                progress(1000)
        if problems:
            raise InvalidInputError(problems, f"{len({p.row for p in problems})} bad rows; nothing was imported")
        if progress:
            progress(len(valid) % 1000)
        events = sum(len(a.pending_events) for a in to_save)
        position = self._store(ctx, f"import_{kind}", to_save)
        return ImportResult(created, updated, unchanged, events, position)

    # -- reading ---------------------------------------------------------------------------------
    def _exists(self, agg_id: uuid.UUID) -> bool:
        return bool(self.recorder.select_events(agg_id, limit=1))

    def load(self, kind: str, entry_id: uuid.UUID) -> DirectoryEntry:
        """The entry, replayed from its events; NotFoundError when absent or of another kind."""
        try:
            agg = self.repository.get(entry_id)
        except AggregateNotFoundError:
            raise NotFoundError(kind, str(entry_id)) from None
        if not isinstance(agg, KINDS[kind]):
            raise NotFoundError(kind, str(entry_id))
        return agg

    def load_many(self, cls: type[DirectoryEntry], ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, DirectoryEntry]:
        """Replay many aggregates with one query per chunk (imports touch thousands at a time)."""
        recorder: Any = self.recorder
        record_cls = recorder.events_record_cls
        ids = list(ids)
        found: dict[uuid.UUID, DirectoryEntry] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            with recorder.transaction(commit=False) as session:
                records = (
                    session.query(record_cls)
                    .filter(record_cls.originator_id.in_(chunk))
                    .order_by(record_cls.originator_id, record_cls.originator_version)
                    .all()
                )
                stored = [(r.originator_id, r.originator_version, r.topic, bytes(r.state)) for r in records]
            from eventsourcing.persistence import StoredEvent

            for oid, version, topic, state in stored:
                ev: Any = self.mapper.to_domain_event(StoredEvent(oid, version, topic, state))
                found[ev.originator_id] = ev.mutate(found.get(ev.originator_id))
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


def _with_sqlite_timeout(url: str) -> str:
    """SQLite writers wait for each other (30 s) instead of failing at once with "database is locked"."""
    if url.startswith("sqlite") and "timeout=" not in url:
        return url + ("&" if "?" in url else "?") + "timeout=30"
    return url
