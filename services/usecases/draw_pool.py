"""The pool of a target draw as of a log position, read for the freeze and for the server's verification.

:meth:`DrawPools.pool_at` reads the directory and tasks read models' rows whose last event is at or before the
position (the task's scope through the county index), and folds from the log only the targets and tasks that
existed at the position and changed after it (their events up to the position). Everything goes through the
pure functions of ``domain.draw.pool`` (``targets_at``, ``draws_at``, ``pool_at`` and so ``build_pool``), the
same for the freeze and the verification. :meth:`DrawPools.pool_by_fold` is the reference, the whole log up to
the position folded (what the standalone verifier does); ``tests/integration/test_draw_pool_as_of.py`` and the
benchmark ``tests/bench/bench_province_draw.py`` compare the two.

All reads of one pool are made in ONE snapshot (REPEATABLE READ on PostgreSQL; SQLite's transaction is one):
a row whose last event is at or before the position, of a target with no event after it in the same snapshot's
log, is that target's state at the position.
"""

import contextlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from eventsourcing.persistence import StoredEvent
from sqlalchemy.engine import Connection, Engine

from domain.draw.pool import (
    TOPIC_PREFIXES,
    PoolLog,
    draws_at,
    fold_targets,
    fold_tasks,
    pool_at,
    pool_by_fold,
    targets_at,
)
from domain.tasks.pool import Pool, TargetColumns
from domain.tasks.task import Task
from projections.bulk import gc_paused
from projections.directory import queries as directory
from projections.runner import ProjectionRunner, positions
from projections.tasks import queries as tasks
from services.application import DualRandom

TARGET_TOPICS = ("domain.directory:Target.", "domain.directory:DirectoryEntry.DetailsUpdated")
TASK_TOPICS = ("domain.tasks.task:Task.",)
READ_MODELS = ("directory", "tasks")
_IDS_PER_QUERY = 1_000

Watch = Callable[[TargetColumns], None]


class DrawPools:
    """Pools as of a log position: from the read models plus the log's recent changes, or by the whole fold."""

    def __init__(self, app: DualRandom, engine: Engine, runner: ProjectionRunner) -> None:
        self.app = app
        self.engine = engine
        self.runner = runner

    @property
    def _table(self) -> sa.Table:
        recorder: Any = self.app.recorder
        table: sa.Table = recorder.events_record_cls.__table__
        return table

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """One read-only snapshot of the log and the read models (REPEATABLE READ on PostgreSQL)."""
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def pool_at(self, task: Task, position: int, *, by_class: bool = True, watch: Watch | None = None) -> Pool:
        """The pool of ``task`` as of ``position`` (inclusive). ``watch`` sees every target the scope's prefilter
        reads, county and industry included (:class:`TargetColumns`): what the freeze checks item applicability
        with."""
        positions = self.runner.positions()
        if any(positions.get(name, 0) < position for name in READ_MODELS):  # e.g. a store restored from a copy
            self.runner.catch_up_named(READ_MODELS)
        with self.snapshot() as conn, gc_paused():  # a million rows' tuples and strings, and no cycles
            behind = [n for n, p in _stored_positions(conn).items() if n in READ_MODELS and p < position]
            if behind:
                raise RuntimeError(f"the read models {behind} are behind the freeze position {position}")
            changed_targets = self.changed_after(conn, position, TARGET_TOPICS)
            changed_tasks = self.changed_after(conn, position, TASK_TOPICS)
            recent_tasks = fold_tasks(self.events_of(conn, sorted(changed_tasks), position, TASK_TOPICS))
            current = tasks.current_draws_until(conn, task.year, position, task.items)
            draws = draws_at(current, changed_tasks, recent_tasks, task.year)
            recent = self._recent_targets(conn, sorted(changed_targets), position)
            rows = directory.target_columns_until(conn, position, task.scope, place=watch is not None)
            columns = targets_at(rows, changed_targets, recent)
            if watch is not None:
                watch(columns)
            return pool_at(task, columns, draws, by_class=by_class)

    def pool_by_fold(self, task: Task, position: int, *, by_class: bool = True) -> Pool:
        """The reference: every target and task event of the log up to ``position`` folded (``PoolLog``)."""
        return pool_by_fold(self.events_until(position, TOPIC_PREFIXES), task, by_class=by_class)

    def fold_until(self, position: int) -> PoolLog:
        """The whole fold itself (the reference, for comparisons)."""
        return PoolLog().apply_all(self.events_until(position, TOPIC_PREFIXES))

    # -- the log -------------------------------------------------------------------------------------------
    def changed_after(self, conn: Connection, position: int, prefixes: Sequence[str]) -> set[str]:
        """Ids (text) of the aggregates with an event of these topics after ``position`` that existed at it
        (their first event after ``position`` is not their first event: version 1 is an aggregate's first)."""
        t = self._table
        query = (
            sa.select(t.c.originator_id)
            .where(t.c.id > position, sa.or_(*[t.c.topic.like(p + "%") for p in prefixes]))
            .group_by(t.c.originator_id)
            .having(sa.func.min(t.c.originator_version) > 1)
        )
        return {str(oid) for oid in conn.execute(query).scalars()}

    def events_of(
        self, conn: Connection, ids: Sequence[str], position: int, prefixes: Sequence[str]
    ) -> Iterator[Any]:
        """The events of these topics of the aggregates ``ids`` up to ``position``, in log order per query of
        ``_IDS_PER_QUERY`` aggregates (an aggregate's events in order: enough for folds by aggregate)."""
        t = self._table
        cond = sa.or_(*[t.c.topic.like(p + "%") for p in prefixes])
        to_domain_event = self.app.mapper.to_domain_event
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = [uuid.UUID(i) for i in ids[start : start + _IDS_PER_QUERY]]
            query = (
                sa.select(t.c.originator_id, t.c.originator_version, t.c.topic, t.c.state)
                .where(t.c.originator_id.in_(chunk), t.c.id <= position, cond)
                .order_by(t.c.id)
            )
            for oid, version, topic, state in conn.execute(query):
                oid = oid if isinstance(oid, uuid.UUID) else uuid.UUID(str(oid))
                yield to_domain_event(StoredEvent(oid, version, topic, bytes(state)))

    def _recent_targets(self, conn: Connection, ids: Sequence[str], position: int) -> Iterator[tuple[str, Any]]:
        """The changed targets as of ``position``, folded ``_IDS_PER_QUERY`` at a time (memory: one chunk's)."""
        for start in range(0, len(ids), _IDS_PER_QUERY):
            yield from fold_targets(self.events_of(conn, ids[start : start + _IDS_PER_QUERY], position, TARGET_TOPICS))

    def events_until(self, position: int, topic_prefixes: Sequence[str]) -> Iterator[Any]:
        """The log's events of these topics up to ``position``, in order (the event store, read directly)."""
        t = self._table
        cond = sa.or_(*[t.c.topic.like(p + "%") for p in topic_prefixes])
        query = (
            sa.select(t.c.originator_id, t.c.originator_version, t.c.topic, t.c.state)
            .where(t.c.id <= position, cond)
            .order_by(t.c.id)
        )
        to_domain_event = self.app.mapper.to_domain_event
        with self.engine.connect() as conn:
            for oid, version, topic, state in conn.execute(query):
                oid = oid if isinstance(oid, uuid.UUID) else uuid.UUID(str(oid))
                yield to_domain_event(StoredEvent(oid, version, topic, bytes(state)))


def _stored_positions(conn: Connection) -> dict[str, int]:
    return {str(n): int(p) for n, p in conn.execute(sa.select(positions.c.name, positions.c.position))}
