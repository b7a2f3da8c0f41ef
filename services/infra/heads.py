"""Aggregate heads: the state of an aggregate at one of its versions, kept so that a large import reloads an
entry from one row plus the events recorded after it, whatever the length of its history (a snapshot store
with one row per aggregate, replaced).

- **Derived, never authoritative.** A head is written from the aggregate the import just replayed and changed,
  in the import's own transaction (rolled back with it). Writes outside imports (a PATCH, a deactivation) do not
  touch heads: a reload reads the head and the events after it, so a stale head costs a few rows, never a wrong
  state. The table can be emptied at any time (``DELETE FROM <events>_head``); the next import writes it again.
- **Shape.** A head holds the library's ``Snapshot`` of the aggregate (its ``vars``), so when an aggregate's
  attributes change shape, either give the class a ``class_version`` with ``upcast_vN_vN+1`` methods (the
  library's rule for snapshots) or bump ``FORMAT`` below: heads of another format are ignored and replaced by
  the next import.
- **When.** The streaming import writes a head for every entry it changes whose new version is 2 or more, and
  for every unchanged entry whose reload replayed 2 or more rows (no head yet, or a stale one), so the next
  import of the same file reloads each entry from one row.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import StoredEvent
from sqlalchemy.orm import Session

FORMAT = 1


class Heads:
    """The heads table beside the events table (same schema, same id type), and the statements that use it."""

    def __init__(self, recorder: Any, to_stored_event: Any) -> None:
        events: sa.Table = recorder.events_record_cls.__table__
        self.events = events
        metadata = sa.MetaData(schema=events.schema)
        self.table = sa.Table(
            f"{events.name}_head", metadata,
            sa.Column("originator_id", events.c.originator_id.type, primary_key=True),
            sa.Column("originator_version", sa.BigInteger, nullable=False),
            sa.Column("format", sa.Integer, nullable=False),
            sa.Column("topic", sa.Text, nullable=False),
            sa.Column("state", sa.LargeBinary, nullable=False),
        )
        self.engine: sa.Engine = recorder.datastore.engine
        metadata.create_all(self.engine)
        self._to_stored_event = to_stored_event

    def stored(self, aggregates: Sequence[Any]) -> list[StoredEvent]:
        """Each aggregate's head, serialised (no pending events: call after ``collect_events``)."""
        to_stored = self._to_stored_event
        return [to_stored(Snapshot.take(agg)) for agg in aggregates]

    def upsert(self, session: Session, heads: Sequence[StoredEvent]) -> None:
        """Insert or replace ``heads`` in the caller's transaction."""
        if not heads:
            return
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        stmt = insert(self.table)
        stmt = stmt.on_conflict_do_update(
            index_elements=[self.table.c.originator_id],
            set_={"originator_version": stmt.excluded.originator_version, "format": stmt.excluded.format,
                  "topic": stmt.excluded.topic, "state": stmt.excluded.state},
        )
        session.execute(stmt, [{"originator_id": h.originator_id, "originator_version": h.originator_version,
                                "format": FORMAT, "topic": h.topic, "state": h.state} for h in heads])

    def replay_sql(self, ids_clause: str) -> str:
        """Rows to rebuild the aggregates ``ids_clause`` selects (e.g. ``= ANY(CAST(:ids AS uuid[]))``): each
        one's head of this format, then its events after the head (all of them without one), in version order;
        the last column is 1 for a head row."""
        e, h = self._qualified(self.events), self._qualified(self.table)
        return (
            f"SELECT originator_id, originator_version, topic, state, 1 AS head FROM {h} "
            f"WHERE originator_id {ids_clause} AND format = {FORMAT} "
            "UNION ALL "
            f"SELECT e.originator_id, e.originator_version, e.topic, e.state, 0 FROM {e} e "
            f"LEFT JOIN {h} h ON h.originator_id = e.originator_id AND h.format = {FORMAT} "
            f"WHERE e.originator_id {ids_clause.replace('originator_id', 'e.originator_id')} "
            "AND e.originator_version > COALESCE(h.originator_version, 0) "
            "ORDER BY 1, 2"
        )

    @staticmethod
    def _qualified(table: sa.Table) -> str:
        return table.name if table.schema is None else f"{table.schema}.{table.name}"
