"""The library's recorder test cases against ``BulkApplicationRecorder`` with every insert sent by COPY.

Imports insert their events by COPY (``COPY_MIN`` events and more, PostgreSQL only); here the threshold is 1 so
that the shipped application-recorder and non-interleaving cases (ordered notification ids, IntegrityError on
a duplicate, concurrent writers never interleaving) run through that path.
"""

from typing import Any

import pytest

import services.infra.recorder as recorder_module
from tests.integration.test_recorders import _BulkApplicationRecorder, _BulkNonInterleaving, _PostgresSchema


class _AlwaysCopy:
    def setUp(self) -> None:
        self._copy_min = recorder_module.COPY_MIN
        recorder_module.COPY_MIN = 1
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:
        try:
            super().tearDown()  # type: ignore[misc]
        finally:
            recorder_module.COPY_MIN = self._copy_min


@pytest.mark.postgres
class TestPostgresCopyApplicationRecorder(_AlwaysCopy, _PostgresSchema, _BulkApplicationRecorder):
    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()

    def test_a_copy_is_used(self) -> None:
        recorder: Any = self.create_recorder()
        calls = []
        original = recorder._insert_copy

        def spy(session: Any, events: Any) -> Any:
            calls.append(len(events))
            return original(session, events)

        recorder._insert_copy = spy
        import uuid

        from eventsourcing.persistence import StoredEvent

        ids = recorder.insert_events([StoredEvent(uuid.uuid4(), 1, "a\tb\\c\nd", b"\x00\\x")])
        assert calls == [1] and len(ids) == 1
        (got,) = recorder.select_events(recorder.select_notifications(0, 1)[0].originator_id)
        assert (got.topic, got.state) == ("a\tb\\c\nd", b"\x00\\x")


@pytest.mark.postgres
class TestPostgresCopyNonInterleaving(_AlwaysCopy, _PostgresSchema, _BulkNonInterleaving):
    pass
