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
with ``PERSISTENCE_MODULE=services.recorder:BulkSQLAlchemyFactory`` (a topic naming the class: this module also
imports the library factory, so the module alone would be ambiguous).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from eventsourcing.persistence import StoredEvent
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy.orm import Session

CHUNK = 10_000  # events per INSERT statement on PostgreSQL


class BulkApplicationRecorder(SQLAlchemyApplicationRecorder):
    """``SQLAlchemyApplicationRecorder`` with a Core bulk insert of the stored events."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        table = self.events_record_cls.__table__
        self._table: sa.Table = table  # type: ignore[assignment]
        name = table.name if self.schema_name is None else f"{self.schema_name}.{table.name}"
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
            keys = [(_as_uuid(e.originator_id), e.originator_version) for e in chunk]
            topics = []
            for e in chunk:
                q = quoted.get(e.topic)
                if q is None:
                    q = quoted[e.topic] = _quote(e.topic)
                topics.append(q)
            # Four array literals as text: PostgreSQL parses them in C, where psycopg would adapt 40,000
            # Python objects one by one. States travel as hex and are decoded in the statement.
            result = session.execute(
                self._unnest_insert,
                {
                    "ids": "{" + ",".join([str(k[0]) for k in keys]) + "}",
                    "versions": "{" + ",".join([str(k[1]) for k in keys]) + "}",
                    "topics": "{" + ",".join(topics) + "}",
                    "states": '{"' + '","'.join([bytes(e.state).hex() for e in chunk]) + '"}',
                },
            )
            position = {(oid, version): nid for nid, oid, version in result}
            if len(position) != len(keys):  # pragma: no cover - the unique index makes this impossible
                raise RuntimeError(f"inserted {len(position)} rows for {len(keys)} events")
            ids.extend([position[k] for k in keys])
        return ids


def _quote(text: str) -> str:
    """One element of a PostgreSQL array literal, quoted (backslash and double quote escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _as_uuid(value: Any) -> Any:
    """Stored events may carry str ids; the database returns UUIDs."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


class BulkSQLAlchemyFactory(SQLAlchemyFactory):
    """The library's factory, with ``BulkApplicationRecorder`` as the application recorder."""

    application_recorder_class = BulkApplicationRecorder

