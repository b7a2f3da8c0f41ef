"""What the tests of both group commits (threads: ``GroupCommit``; one event loop: ``AsyncGroupCommit``) share: a
fake store's rows and the checks of a batched run."""

import uuid
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent


def stored(oid: uuid.UUID, *versions: int) -> list[StoredEvent]:
    return [StoredEvent(oid, v, "t", b"{}") for v in versions]


class FakeRows:
    """A store's unique (id, version) and positions: ``record`` refuses a duplicate like the store's unique index
    and stores nothing of a transaction that fails; ``transactions`` lists the events of each one tried."""

    def __init__(self) -> None:
        self.rows: dict[tuple[Any, int], int] = {}  # StoredEvent.originator_id is UUID | str
        self.transactions: list[int] = []

    def record(self, events: Sequence[StoredEvent]) -> list[int]:
        self.transactions.append(len(events))
        keys = [(e.originator_id, e.originator_version) for e in events]
        if len(set(keys)) != len(keys) or any(k in self.rows for k in keys):
            raise IntegrityError("duplicate key value violates unique constraint")
        start = len(self.rows) + 1
        for i, k in enumerate(keys):
            self.rows[k] = start + i
        return [self.rows[k] for k in keys]


def assert_batched(store: FakeRows, group: Any, writes: list[list[StoredEvent]], results: list[list[int]]) -> None:
    """64 writes of two events each went through ``group`` in shared transactions, and each caller got its own
    positions, its two events together and in order."""
    assert sum(store.transactions) == 128 and len(store.transactions) < 64  # batched
    assert group.grouped == 64 and group.transactions == len(store.transactions)
    for write, ids in zip(writes, results, strict=True):
        assert ids == [store.rows[(e.originator_id, e.originator_version)] for e in write]
        assert ids[1] == ids[0] + 1  # one caller's events stay together, in order
    assert sorted(i for ids in results for i in ids) == list(range(1, 129))
