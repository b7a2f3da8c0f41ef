"""Registrations written on the event loop: ``AsyncGroupCommit`` and ``AsyncOneTrip`` (services/infra/recorder.py),
``DualRandom.register_on_loop`` and the HTTP create that uses it on PostgreSQL.

``AsyncGroupCommit`` alone (an async fake insert, so batching is forced and visible); then the real one-trip write
on PostgreSQL (the query the threads' group commit sends, on a connection of the loop): duplicates refused, a
dropped connection replaced; then many registrations at once on one loop, each answering for itself, with the
same events and metadata as ``register``; then the server: a create is written on the loop, an inspector's (whose
department is read first) in a worker thread, and both answer alike.
"""

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from eventsourcing.persistence import IntegrityError, StoredEvent

from domain.access import Actor
from services.application import CommandContext, ConflictError, DualRandom
from services.infra.recorder import AsyncGroupCommit
from tests.support.builders import a_target
from tests.support.group_commits import FakeRows, assert_batched, stored

PLANNER = Actor("staff-7", "hj-eeb", ("planner",))
ADMIN = Actor("root", "hj-eeb", ("admin",))


class FakeStore(FakeRows):
    """An async insert that yields to the loop for a while (so callers pile up) and checks that no two
    transactions overlap; ``fail``: every transaction fails with that message."""

    def __init__(self, delay: float = 0.005, fail: str | None = None) -> None:
        super().__init__()
        self.delay = delay
        self.fail = fail
        self.active = 0

    async def insert(self, stored: Sequence[StoredEvent]) -> list[int]:
        self.active += 1
        assert self.active == 1, "the group commit wrote two transactions at once"
        try:
            await asyncio.sleep(self.delay)
            if self.fail:
                self.transactions.append(len(stored))
                raise RuntimeError(self.fail)
            return self.record(stored)
        finally:
            self.active -= 1


async def _outcome(group: AsyncGroupCommit, events: list[StoredEvent]) -> Any:
    try:
        return await group.insert(events)
    except IntegrityError:
        return "conflict"
    except RuntimeError as exc:
        return str(exc)


def test_writes_that_arrive_together_share_transactions_and_each_gets_its_own_positions() -> None:
    store = FakeStore()
    group = AsyncGroupCommit(store.insert)
    writes = [stored(uuid.uuid4(), 1, 2) for _ in range(64)]

    async def run() -> list[list[int]]:
        return list(await asyncio.gather(*(group.insert(w) for w in writes)))

    assert_batched(store, group, writes, asyncio.run(run()))


def test_a_lone_writer_is_written_alone_at_once() -> None:
    store = FakeStore(delay=0)
    group = AsyncGroupCommit(store.insert)
    oid = uuid.uuid4()

    async def run() -> tuple[list[int], list[int]]:
        return await group.insert(stored(oid, 1)), await group.insert(stored(oid, 2))

    assert asyncio.run(run()) == ([1], [2])
    assert store.transactions == [1, 1] and group.retried == 0


def test_a_duplicate_in_a_batch_fails_alone_and_the_others_are_stored() -> None:
    store = FakeStore()
    group = AsyncGroupCommit(store.insert)
    taken = uuid.uuid4()

    async def run() -> list[Any]:
        await group.insert(stored(taken, 1))
        return list(await asyncio.gather(*(
            _outcome(group, stored(taken, 1) if i % 8 == 0 else stored(uuid.uuid4(), 1)) for i in range(64)
        )))

    outcomes = asyncio.run(run())
    assert [i for i, r in enumerate(outcomes) if r == "conflict"] == list(range(0, 64, 8))
    assert len(store.rows) == 1 + 56 and group.retried > 0


def test_an_error_other_than_a_conflict_reaches_every_caller_and_the_group_goes_on() -> None:
    store = FakeStore(fail="database down")
    group = AsyncGroupCommit(store.insert)

    async def run() -> tuple[list[Any], Any]:
        failed = list(await asyncio.gather(*(_outcome(group, stored(uuid.uuid4(), 1)) for _ in range(32))))
        store.fail = None
        return failed, await group.insert(stored(uuid.uuid4(), 1))

    failed, after = asyncio.run(run())
    assert failed == ["database down"] * 32 and after == [1]


def test_a_batch_holds_at_most_max_events_but_always_a_whole_write() -> None:
    store = FakeStore()
    group = AsyncGroupCommit(store.insert, max_events=5)

    async def run() -> None:
        await asyncio.gather(*(group.insert(stored(uuid.uuid4(), 1, 2)) for _ in range(32)))
        await asyncio.gather(*(group.insert(stored(uuid.uuid4(), *range(1, 8))) for _ in range(4)))

    asyncio.run(run())
    assert all(n <= 5 for n in store.transactions[:-4]) and store.transactions[-4:] == [7, 7, 7, 7]


def test_a_writer_that_stops_waiting_does_not_take_its_write_back() -> None:
    """A request cancelled while its write is under way (the client went away) leaves the write to finish, as
    a worker thread would: the others of its batch are not disturbed, and it is stored."""
    store = FakeStore(delay=0.05)
    group = AsyncGroupCommit(store.insert)
    mine, theirs = stored(uuid.uuid4(), 1), stored(uuid.uuid4(), 1)

    async def run() -> list[int]:
        first = asyncio.create_task(group.insert(mine))
        other = asyncio.create_task(group.insert(theirs))
        while not store.active:  # the first write is under way
            await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        ids = await other
        await group.close()
        return ids

    ids = asyncio.run(run())
    assert (mine[0].originator_id, 1) in store.rows and ids == [store.rows[(theirs[0].originator_id, 1)]]


# -- on PostgreSQL ------------------------------------------------------------------------------------
@pytest.fixture
def app(database_url: str):
    application = DualRandom(database_url)
    application.recorder.max_notification_id()
    yield application
    application.close()


def _postgres_only(app: DualRandom) -> None:
    if not app._is_postgres:
        assert asyncio.run(_none_elsewhere(app)) is None  # SQLite: registrations keep to a worker thread
        pytest.skip("the write on the event loop is PostgreSQL's")


async def _none_elsewhere(app: DualRandom) -> Any:
    return app.loop_writes()


def test_the_one_trip_write_on_the_loop_stores_refuses_duplicates_and_survives_a_dropped_connection(
    app: DualRandom, database_url: str
) -> None:
    _postgres_only(app)
    recorder: Any = app.recorder
    a = uuid.uuid4()

    async def run() -> tuple[list[int], list[int]]:
        group = app.loop_writes()
        assert group is not None
        try:
            ids = await group.insert([*stored(a, 1, 2), StoredEvent(uuid.uuid4(), 1, "odd'\"\\{},", b"\x00'\\")])
            for _ in range(2):  # a duplicate fails alone; the connection is fine afterwards
                with pytest.raises(IntegrityError):
                    await group.insert([*stored(uuid.uuid4(), 1), *stored(a, 2)])
            one_trip = group._insert.__self__  # type: ignore[attr-defined]
            _terminate(database_url, one_trip._conn.info.backend_pid)  # the server drops the loop's connection
            one_trip.PING_AFTER = 0.0  # pinged before the next write
            more = await group.insert(stored(uuid.uuid4(), 1))
            return ids, more
        finally:
            await group.close()

    ids, more = asyncio.run(run())
    assert len(ids) == 3 and ids == sorted(ids) and more[0] > ids[-1]
    assert [n.id for n in recorder.select_notifications(0, 10)] == [*ids, *more]  # nothing of the failures


def _terminate(database_url: str, pid: int) -> None:
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    finally:
        engine.dispose()


def test_registrations_on_the_loop_are_grouped_and_each_answers_for_itself(app: DualRandom, database_url: str) -> None:
    _postgres_only(app)
    rows = [a_target() for _ in range(120)]
    dup = a_target()  # registered by ten coroutines at once: one wins, nine get 409

    async def run() -> list[tuple[int, Any]]:
        group = app.loop_writes()
        assert group is not None

        async def register(i: int) -> tuple[int, Any]:
            data = dict(dup) if i >= 120 else rows[i]
            try:
                return i, await app.register_on_loop("target", data, CommandContext(PLANNER, f"req-{i}"), group)
            except ConflictError as exc:
                return i, str(exc)

        try:
            distinct = list(await asyncio.gather(*(register(i) for i in range(120))))
            assert group.transactions < group.grouped  # some transactions were shared
            return distinct + list(await asyncio.gather(*(register(i) for i in range(120, 130))))
        finally:
            await group.close()

    outcomes = asyncio.run(run())
    ok = [(i, w) for i, w in outcomes if not isinstance(w, str)]
    assert len(ok) == 121 and Counter("already exists" in w for _, w in outcomes if isinstance(w, str)) == {True: 9}
    for i, w in ok:
        assert w.version == 1 and w.changed == tuple(app.load("target", uuid.UUID(w.id)).data)
        history = app.history("target", uuid.UUID(w.id), ADMIN)
        assert [h["position"] for h in history] == [w.position]
        meta = history[0]["meta"]
        assert meta["correlation_id"] == f"req-{i}" and meta["command"] == "register_target"
        assert set(meta) == {"actor", "department", "role", "correlation_id", "causation_id", "command",
                             "aggregate", "owner"}


def test_a_registration_on_the_loop_stores_what_register_stores(app: DualRandom) -> None:
    """The same entry registered both ways (two targets differing only in the credit code) has the same state
    and the same metadata keys: the loop's path is the thread's path without the thread."""
    _postgres_only(app)
    one, two = a_target(), a_target()
    two = {**one, "credit_code": two["credit_code"]}
    by_thread = app.register("target", one, CommandContext(PLANNER, "c-1"))

    async def run() -> Any:
        group = app.loop_writes()
        assert group is not None
        try:
            return await app.register_on_loop("target", two, CommandContext(PLANNER, "c-1"), group)
        finally:
            await group.close()

    on_loop = asyncio.run(run())
    a, b = (app.history("target", uuid.UUID(w.id), ADMIN)[0] for w in (by_thread, on_loop))
    assert a["data"]["data"]["credit_code"] == one["credit_code"] and b["data"]["data"]["credit_code"] == two["credit_code"]
    assert {**a["data"]["data"], "credit_code": ""} == {**b["data"]["data"], "credit_code": ""}
    assert on_loop.changed == by_thread.changed and on_loop.version == by_thread.version == 1
    assert a["type"] == b["type"] and set(a["meta"]) == set(b["meta"])
    assert {k: a["meta"][k] for k in ("actor", "role", "command", "owner")} == {
        k: b["meta"][k] for k in ("actor", "role", "command", "owner")}
    with pytest.raises(ValueError, match="reads before it writes"):
        asyncio.run(app.register_on_loop("inspector", {"conflicts": [one["credit_code"]]}, CommandContext(PLANNER),
                                         AsyncGroupCommit(FakeStore().insert)))
