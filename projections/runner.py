"""Catch-up projection runner: works on SQLite and PostgreSQL, applies every event exactly once.

Each projection's position lives in ``projection_positions`` and moves in the same transaction as the
projection's rows. The transaction first locks the projection's position row (``FOR UPDATE`` on
PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite), and the final update is a compare-and-set on the position it
started from, so two workers on one read model never apply an event twice.
"""

import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.logging import get_logger

log = get_logger(__name__)

metadata = sa.MetaData()
positions = sa.Table(
    "projection_positions",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)


class Projection(Protocol):
    """A read model: its tables and how an event changes them."""

    name: str
    metadata: sa.MetaData

    def apply_batch(self, conn: Connection, events: Sequence[tuple[int, Any]]) -> None:
        """Apply ``(position, domain event)`` pairs, in order, within ``conn``'s transaction.

        A projection with ``stored_events = True`` gets ``(position, stored notification)`` instead.
        """


class ProjectionConflictError(Exception):
    """Another worker moved the position first; this batch was rolled back."""


class ProjectionRunner:
    """Runs projections over the application's notification log."""

    def __init__(self, app: Any, engine: Engine, projections: Sequence[Projection], batch_size: int = 1000) -> None:
        self.app = app
        self.engine = engine
        self.projections = list(projections)
        self.batch_size = batch_size
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._positions: dict[str, int] = {}

    def setup(self) -> None:
        """Create tracking and read-model tables (idempotent)."""
        metadata.create_all(self.engine)
        for p in self.projections:
            p.metadata.create_all(self.engine)
            with self.engine.begin() as conn:
                if conn.execute(sa.select(positions.c.position).where(positions.c.name == p.name)).first() is None:
                    conn.execute(positions.insert().values(name=p.name, position=0))

    def position(self, name: str) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(positions.c.position).where(positions.c.name == name)).scalar()
        return int(value or 0)

    def head(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)

    def run_once(self, projection: Projection, until: int | None = None) -> int:
        """Apply the next batch to one projection (no event after position ``until``, when given);
        returns how many events were applied."""
        with self.engine.begin() as conn:
            query = sa.select(positions.c.position).where(positions.c.name == projection.name)
            if self.engine.dialect.name == "postgresql":
                query = query.with_for_update()
            start = int(conn.execute(query).scalar_one())
            batch = self.app.recorder.select_notifications(
                start, self.batch_size, stop=until, inclusive_of_start=False
            )
            if not batch:
                self._publish(projection.name, start)
                return 0
            if getattr(projection, "stored_events", False):
                events = [(n.id, n) for n in batch]
            else:
                events = [(n.id, self.app.mapper.to_domain_event(n)) for n in batch]
            projection.apply_batch(conn, events)
            moved = conn.execute(
                positions.update()
                .where(positions.c.name == projection.name, positions.c.position == start)
                .values(position=batch[-1].id)
            )
            if moved.rowcount != 1:
                raise ProjectionConflictError(f"{projection.name}: position moved from {start} by another worker")
        self._publish(projection.name, batch[-1].id)
        return len(batch)

    def catch_up(self, until: int | None = None) -> int:
        """Apply everything in the log now (up to position ``until``); returns the number of events applied."""
        total = 0
        for p in self.projections:
            while (n := self.run_once(p, until)) > 0:
                total += n
        return total

    def run_forever(self, stop: threading.Event, poll_interval: float = 0.5, coalesce: float = 0.02) -> None:
        """Loop until ``stop`` is set; ``wake()`` cuts the idle wait short.

        After a wake-up it waits ``coalesce`` seconds so that a burst of writes is applied as one batch (one
        transaction) rather than one transaction per event competing with the writers.
        """
        backoff = 0.2
        while not stop.is_set():
            if coalesce:
                stop.wait(coalesce)
            try:
                applied = self.catch_up()
                backoff = 0.2
            except ProjectionConflictError:
                continue
            except Exception:  # noqa: BLE001 - keep serving; the log says why
                log.exception("projection_batch_failed")
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if not applied:
                self._wake.wait(poll_interval)
                self._wake.clear()

    def wake(self) -> None:
        self._wake.set()

    def _publish(self, name: str, position: int) -> None:
        with self._cond:
            self._positions[name] = position
            self._cond.notify_all()

    def wait_for(self, position: int, timeout: float = 5.0, names: Sequence[str] | None = None) -> bool:
        """Block until every (named) projection has applied ``position``; False on timeout.

        With no background loop running, catches up in the calling thread.
        """
        names = list(names or [p.name for p in self.projections])
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                known = [self._positions.get(n) for n in names]
                if all(k is not None and k >= position for k in known):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.05))
                self._wake.set()
        # The background loop may be absent (CLI, tests) or the cached positions stale (another process).
        for n in names:
            self._positions[n] = self.position(n)
        return all(self._positions[n] >= position for n in names)
