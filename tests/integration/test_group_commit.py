"""Group commit: concurrent commands share a transaction, and each still succeeds or fails on its own.

``GroupCommit`` alone (a fake insert, so batching is forced and visible), then ``DualRandom`` on a real store
(SQLite file and PostgreSQL) with many threads: distinct keys, the same key registered by many threads at
once (one 201, the rest 409), concurrent updates of one entry (no lost update), metadata of every event.
"""

import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa
from eventsourcing.persistence import IntegrityError, StoredEvent

from domain.access import Actor
from services.application import CommandContext, ConflictError, DualRandom
from services.infra.recorder import GroupCommit
from tests.support.builders import a_target
from tests.support.group_commits import FakeRows, assert_batched, stored

PLANNER = Actor("staff-7", "hj-eeb", ("planner",))
ADMIN = Actor("root", "hj-eeb", ("admin",))


# -- GroupCommit alone ----------------------------------------------------------------------------
class FakeStore(FakeRows):
    """An insert that takes a while (so callers pile up) and checks that no two transactions overlap."""

    def __init__(self, delay: float = 0.01) -> None:
        super().__init__()
        self.delay = delay
        self.lock = threading.Lock()
        self.active = 0

    def insert(self, stored: Sequence[StoredEvent]) -> list[int]:
        with self.lock:
            self.active += 1
            assert self.active == 1, "the group commit wrote two transactions at once"
        try:
            time.sleep(self.delay)
            return self.record(stored)
        finally:
            with self.lock:
                self.active -= 1


def test_concurrent_writes_share_transactions_and_each_gets_its_own_positions() -> None:
    store = FakeStore()
    group = GroupCommit(store.insert)
    writes = [stored(uuid.uuid4(), 1, 2) for _ in range(64)]
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(group.insert, writes))
    assert_batched(store, group, writes, results)


def test_a_lone_caller_does_not_wait() -> None:
    store = FakeStore(delay=0)
    group = GroupCommit(store.insert)
    oid = uuid.uuid4()
    assert group.insert(stored(oid, 1)) == [1]
    assert group.insert(stored(oid, 2)) == [2]
    assert store.transactions == [1, 1] and group.retried == 0


def test_a_duplicate_in_a_batch_fails_alone_and_the_others_are_stored() -> None:
    store = FakeStore()
    group = GroupCommit(store.insert)
    taken = uuid.uuid4()
    group.insert(stored(taken, 1))
    outcomes: list[Any] = []
    lock = threading.Lock()

    def write(i: int) -> None:
        events = stored(taken, 1) if i % 8 == 0 else stored(uuid.uuid4(), 1)
        try:
            ids = group.insert(events)
        except IntegrityError:
            result: Any = "conflict"
        else:
            result = ids
        with lock:
            outcomes.append((i, result))

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(write, range(64)))
    conflicts = sorted(i for i, r in outcomes if r == "conflict")
    assert conflicts == list(range(0, 64, 8))
    assert len(store.rows) == 1 + 56
    assert group.retried > 0  # some batches failed and were retried one by one


def test_two_writes_of_one_aggregate_version_in_one_batch_one_wins() -> None:
    store = FakeStore(delay=0.02)
    group = GroupCommit(store.insert)
    oid = uuid.uuid4()
    gate = threading.Barrier(8)

    def write(_: int) -> str:
        gate.wait()
        try:
            group.insert(stored(oid, 1))
        except IntegrityError:
            return "conflict"
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        outcomes = Counter(pool.map(write, range(8)))
    assert outcomes == {"ok": 1, "conflict": 7}


def test_an_error_other_than_a_conflict_reaches_every_caller_of_the_batch() -> None:
    calls = []

    def broken(events: Sequence[StoredEvent]) -> list[int]:
        calls.append(len(events))
        time.sleep(0.005)
        raise RuntimeError("database down")

    group = GroupCommit(broken)
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(group.insert, stored(uuid.uuid4(), 1)) for _ in range(32)]
    for f in futures:
        with pytest.raises(RuntimeError, match="database down"):
            f.result()
    # and the group commit is usable afterwards
    group._insert = FakeStore(delay=0).insert
    assert group.insert(stored(uuid.uuid4(), 1)) == [1]


def test_a_batch_holds_at_most_max_events_but_always_the_leaders_write() -> None:
    store = FakeStore()
    group = GroupCommit(store.insert, max_events=5)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(group.insert, [stored(uuid.uuid4(), 1, 2) for _ in range(32)]))
        list(pool.map(group.insert, [stored(uuid.uuid4(), *range(1, 8)) for _ in range(4)]))
    assert all(n <= 5 for n in store.transactions[: -4]) and store.transactions[-4:] == [7, 7, 7, 7]


# -- DualRandom on a real store -------------------------------------------------------------------
@pytest.fixture
def app(database_url: str):
    application = DualRandom(database_url)
    application.recorder.max_notification_id()  # SQLite switches to WAL on the first transaction
    yield application
    application.close()


def _slow_first_insert(app: DualRandom, delay: float = 0.05) -> None:
    """Make the group commit's first insert slow so that the other threads pile up behind it."""
    insert = app.group_commit._insert
    first = threading.Event()

    def slow(events: Any) -> Any:
        if not first.is_set():
            first.set()
            time.sleep(delay)
        return insert(events)

    app.group_commit._insert = slow


def _events(database_url: str) -> list[tuple[int, uuid.UUID, int]]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT id, originator_id, originator_version FROM dualrandom_events ORDER BY id")
            )
            return [(pos, _uuid(oid), v) for pos, oid, v in rows]
    finally:
        engine.dispose()


def _uuid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(bytes=bytes(value)) if isinstance(value, (bytes, memoryview)) else uuid.UUID(str(value))


def test_concurrent_registrations_are_grouped_and_each_answers_for_itself(app: DualRandom, database_url: str) -> None:
    _slow_first_insert(app)
    rows = [a_target() for _ in range(120)]
    dup = rows[7]  # registered by ten threads at once: one wins, nine get 409

    def register(i: int) -> tuple[str, Any]:
        data = dict(dup) if i >= 120 else rows[i]
        ctx = CommandContext(PLANNER, correlation_id=f"req-{i}")
        try:
            return ("ok", app.register("target", data, ctx))
        except ConflictError as exc:
            return ("conflict", str(exc))

    with ThreadPoolExecutor(32) as pool:
        outcomes = list(pool.map(register, range(129)))
    ok = [(i, w) for i, (kind, w) in enumerate(outcomes) if kind == "ok"]
    conflicts = [m for kind, m in outcomes if kind == "conflict"]
    assert len(ok) == 120 and len(conflicts) == 9
    assert all("already exists" in m for m in conflicts)  # the same 409 as without grouping
    stored = _events(database_url)
    assert len(stored) == 120 and len({oid for _, oid, _ in stored}) == 120
    by_id = {str(oid): pos for pos, oid, _ in stored}
    for i, w in ok:
        assert w.version == 1 and by_id[w.id] == w.position
        history = app.history("target", uuid.UUID(w.id), ADMIN)
        assert len(history) == 1
        meta = history[0]["meta"]
        assert meta["correlation_id"] == f"req-{i}"
        assert set(meta) == {"actor", "department", "role", "correlation_id", "causation_id", "command",
                             "aggregate", "owner"}
        assert meta["command"] == "register_target" and meta["owner"] == "shared"
    assert app.group_commit.transactions < app.group_commit.grouped  # some transactions were shared


def test_concurrent_updates_of_one_entry_lose_nothing(app: DualRandom, database_url: str) -> None:
    w = app.register("target", a_target(), CommandContext(PLANNER))
    entry = uuid.UUID(w.id)
    _slow_first_insert(app)
    names = [f"获嘉县示例企业{i}有限公司" for i in range(24)]
    gate = threading.Barrier(24)

    def rename(i: int) -> str:
        gate.wait()
        try:
            app.update("target", entry, {"name": names[i]}, CommandContext(PLANNER), expected_version=1)
        except ConflictError:
            return "conflict"
        return "ok"

    with ThreadPoolExecutor(24) as pool:
        outcomes = Counter(pool.map(rename, range(24)))
    assert outcomes == {"ok": 1, "conflict": 23}
    agg = app.load("target", entry)
    assert agg.version == 2 and agg.data["name"] in names
    assert [v for _, oid, v in _events(database_url) if oid == entry] == [1, 2]


def test_each_command_stays_whole_across_a_shared_transaction(app: DualRandom, database_url: str) -> None:
    targets = [app.register("target", a_target(), CommandContext(PLANNER)) for _ in range(16)]
    _slow_first_insert(app)

    def change(w: Any) -> Any:  # three events in one command: risk class, a tag, details
        return app.update("target", uuid.UUID(w.id), {"risk_class": "D", "tags": ["positive_list"], "industry": "造纸"},
                          CommandContext(PLANNER, correlation_id=f"c-{w.id}"))

    with ThreadPoolExecutor(16) as pool:
        written = list(pool.map(change, targets))
    stored = _events(database_url)
    for w in written:
        mine = [(pos, v) for pos, oid, v in stored if str(oid) == w.id]
        assert [v for _, v in mine] == [1, 2, 3, 4] and w.version == 4 and w.position == mine[-1][0]
        history = app.history("target", uuid.UUID(w.id), ADMIN)
        assert {h["meta"]["correlation_id"] for h in history[1:]} == {f"c-{w.id}"}
        assert len({h["meta"]["causation_id"] for h in history[1:]}) == 1


def test_a_write_inside_an_open_transaction_is_not_grouped(app: DualRandom) -> None:
    before = app.group_commit.transactions
    recorder: Any = app.recorder
    with recorder.transaction(commit=True):
        w = app.register("target", a_target(), CommandContext(PLANNER))
    assert app.group_commit.transactions == before
    assert app.load("target", uuid.UUID(w.id)).version == 1


def test_the_one_round_trip_insert_stores_refuses_duplicates_and_keeps_its_connection(app: DualRandom) -> None:
    recorder: Any = app.recorder
    a, b = uuid.uuid4(), uuid.uuid4()
    odd_topic = "tests.odd:Topic'with\"quotes\\and{braces},"  # escaping of the literals
    ids = recorder.insert_events_one_trip([*stored(a, 1, 2), StoredEvent(b, 1, odd_topic, b"\x00'\\\"{}")])
    assert len(ids) == 3 and ids == sorted(ids) and len(set(ids)) == 3
    for _ in range(3):  # a duplicate fails alone, and the connection it used is fine afterwards
        with pytest.raises(IntegrityError):
            recorder.insert_events_one_trip([*stored(uuid.uuid4(), 1), *stored(a, 2)])
    got = recorder.select_events(b)
    assert [(e.topic, e.state) for e in got] == [(odd_topic, b"\x00'\\\"{}")]
    assert [e.originator_version for e in recorder.select_events(a)] == [1, 2]
    notifications = recorder.select_notifications(0, 10)
    assert [n.id for n in notifications] == ids  # nothing of the failed transactions was stored
    more = recorder.insert_events_one_trip(stored(uuid.uuid4(), 1))
    assert more[0] > ids[-1]
