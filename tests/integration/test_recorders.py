"""The eventsourcing library's own recorder test cases, run against the persistence the project uses.

``DualRandom`` stores events with ``eventsourcing_sqlalchemy`` (an ``SQLAlchemyDatastore`` built from a URL)
on a SQLite file or on PostgreSQL (``postgresql+psycopg://``). These subclasses of the shipped test cases in
``eventsourcing.tests.persistence`` check that this configuration keeps the library's contract: ordered,
gap-free-per-transaction notification ids, optimistic concurrency (IntegrityError), tracking, process
recorders, non-interleaving of concurrent transactions, and the infrastructure factory (mapper, cipher,
compressor). Every test gets a fresh database: a new SQLite file, or a new PostgreSQL schema selected with
``?options=-csearch_path%3D<schema>`` (dropped afterwards).

PostgreSQL runs when ``DUALRANDOM_TEST_DATABASE_URL`` is set (e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/test``); otherwise those classes are skipped.
"""

import os
import shutil
import sqlite3
import tempfile
import threading
import unittest
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from eventsourcing.persistence import InfrastructureFactory, StoredEvent
from eventsourcing.tests import persistence as cases
from eventsourcing.utils import Environment, get_topic
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import (
    SQLAlchemyAggregateRecorder,
    SQLAlchemyApplicationRecorder,
    SQLAlchemyProcessRecorder,
    SQLAlchemyTrackingRecorder,
)

from services.application import _with_sqlite_timeout
from services.infra.recorder import BulkApplicationRecorder, BulkSQLAlchemyFactory, WalOnceDatastore

PG_ENV = "DUALRANDOM_TEST_DATABASE_URL"
PG_SKIP = f"PostgreSQL recorder tests need {PG_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"

EVENTS_TABLE = "testcase_events"  # the names the factory test derives from its env name "TestCase"
SNAPSHOTS_TABLE = "testcase_snapshots"
TRACKING_TABLE = "testcase_tracking"  # one tracking record class per table name (no SAWarning)


# -- databases --------------------------------------------------------------------------------------
class _SQLiteFile:
    """A new SQLite file per test, with the URL options ``DualRandom`` uses (busy timeout)."""

    __test__ = True  # the concrete classes; the abstract bases below say False

    def _open_database(self) -> str:
        self._tmpdir = tempfile.mkdtemp(prefix="dualrandom-recorders-")
        return _with_sqlite_timeout(f"sqlite:///{self._tmpdir}/events.db")

    def _close_database(self) -> None:
        shutil.rmtree(self._tmpdir, ignore_errors=True)


class _PostgresSchema:
    """A new schema per test on the test PostgreSQL, chosen by the URL's search_path option."""

    __test__ = True
    _admin: sa.Engine | None = None

    def _open_database(self) -> str:
        base = os.environ.get(PG_ENV)
        if not base:
            raise unittest.SkipTest(PG_SKIP)
        self._schema = f"t_{uuid.uuid4().hex[:12]}"
        self._admin = admin = sa.create_engine(base)
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {self._schema}"))
        sep = "&" if "?" in base else "?"
        return f"{base}{sep}options=-csearch_path%3D{self._schema}"

    def _close_database(self) -> None:
        admin = self._admin
        if admin is None:
            return
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {self._schema} CASCADE"))
        admin.dispose()
        self._admin = None


class _WithDatastore:
    """setUp/tearDown: a fresh database and one SQLAlchemyDatastore on it (as the factory builds it)."""

    __test__ = False  # pytest collects every unittest.TestCase subclass whatever its name

    datastore: SQLAlchemyDatastore

    def setUp(self) -> None:
        self.url = self._open_database()  # type: ignore[attr-defined]
        try:
            self.datastore = WalOnceDatastore(url=self.url)  # the datastore BulkSQLAlchemyFactory builds
            super().setUp()  # type: ignore[misc]
        except BaseException:
            self._close_database()  # type: ignore[attr-defined]  # tearDown does not run when setUp fails
            raise

    def tearDown(self) -> None:
        try:
            super().tearDown()  # type: ignore[misc]
        finally:
            if self.datastore.engine is not None:
                self.datastore.engine.dispose()  # type: ignore[union-attr]
            self._close_database()  # type: ignore[attr-defined]


# -- recorders --------------------------------------------------------------------------------------
class _AggregateRecorder(_WithDatastore, cases.AggregateRecorderTestCase):
    def create_recorder(self) -> SQLAlchemyAggregateRecorder:
        recorder = SQLAlchemyAggregateRecorder(datastore=self.datastore, events_table_name=EVENTS_TABLE)
        recorder.create_table()
        return recorder


class _SnapshotRecorder(_WithDatastore, cases.AggregateRecorderTestCase):
    def create_recorder(self) -> SQLAlchemyAggregateRecorder:
        recorder = SQLAlchemyAggregateRecorder(
            datastore=self.datastore, events_table_name=SNAPSHOTS_TABLE, for_snapshots=True
        )
        recorder.create_table()
        return recorder


class _ApplicationRecorder(_WithDatastore, cases.ApplicationRecorderTestCase):
    def create_recorder(self) -> SQLAlchemyApplicationRecorder:
        recorder = SQLAlchemyApplicationRecorder(datastore=self.datastore, events_table_name=EVENTS_TABLE)
        recorder.create_table()
        return recorder


class _TrackingRecorder(_WithDatastore, cases.TrackingRecorderTestCase):
    def create_recorder(self) -> SQLAlchemyTrackingRecorder:
        recorder = SQLAlchemyTrackingRecorder(datastore=self.datastore, tracking_table_name=TRACKING_TABLE)
        recorder.create_table()
        return recorder


class _ProcessRecorder(_WithDatastore, cases.ProcessRecorderTestCase):
    def create_recorder(self) -> SQLAlchemyProcessRecorder:
        recorder = SQLAlchemyProcessRecorder(
            datastore=self.datastore, events_table_name=EVENTS_TABLE, tracking_table_name=TRACKING_TABLE
        )
        recorder.create_table()
        return recorder


class _NonInterleaving(_WithDatastore, cases.NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> SQLAlchemyApplicationRecorder:
        recorder = SQLAlchemyApplicationRecorder(datastore=self.datastore, events_table_name=EVENTS_TABLE)
        recorder.create_table()
        return recorder


class _SubclassTrackingRecorder(SQLAlchemyTrackingRecorder):
    """For the factory test: a tracking recorder class given as argument or topic is used as is."""


class _Factory(cases.InfrastructureFactoryTestCase[SQLAlchemyFactory]):
    """The factory as ``DualRandom`` configures it: PERSISTENCE_MODULE, SQLALCHEMY_URL, CREATE_TABLE."""

    __test__ = False

    def setUp(self) -> None:
        self.url = self._open_database()  # type: ignore[attr-defined]
        self.addCleanup(self._close_database)  # type: ignore[attr-defined]  # also when setUp fails
        self.env = Environment(
            "TestCase",
            {
                InfrastructureFactory.PERSISTENCE_MODULE: "eventsourcing_sqlalchemy",
                SQLAlchemyFactory.SQLALCHEMY_URL: self.url,
                SQLAlchemyFactory.CREATE_TABLE: "y",
            },
        )
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        engine: Any = self.factory.datastore.engine
        if engine is not None:
            engine.dispose()

    def expected_factory_class(self) -> type[SQLAlchemyFactory]:
        return SQLAlchemyFactory

    def expected_aggregate_recorder_class(self) -> type[SQLAlchemyAggregateRecorder]:
        return SQLAlchemyAggregateRecorder

    def expected_application_recorder_class(self) -> type[SQLAlchemyApplicationRecorder]:
        return SQLAlchemyApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[SQLAlchemyTrackingRecorder]:
        return SQLAlchemyTrackingRecorder

    def tracking_recorder_subclass(self) -> type[SQLAlchemyTrackingRecorder]:
        return _SubclassTrackingRecorder

    def expected_process_recorder_class(self) -> type[SQLAlchemyProcessRecorder]:
        return SQLAlchemyProcessRecorder


# -- the project's recorder (services/infra/recorder.py): Core bulk insert instead of ORM objects -------------
class _BulkApplicationRecorder(_WithDatastore, cases.ApplicationRecorderTestCase):
    def create_recorder(self) -> BulkApplicationRecorder:
        recorder = BulkApplicationRecorder(datastore=self.datastore, events_table_name=EVENTS_TABLE)
        recorder.create_table()
        return recorder


class _BulkNonInterleaving(_WithDatastore, cases.NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> BulkApplicationRecorder:
        recorder = BulkApplicationRecorder(datastore=self.datastore, events_table_name=EVENTS_TABLE)
        recorder.create_table()
        return recorder


class _BulkFactory(_Factory):
    """The factory as ``DualRandom`` now selects it: ``PERSISTENCE_MODULE`` names ``BulkSQLAlchemyFactory``."""

    def setUp(self) -> None:
        self.url = self._open_database()  # type: ignore[attr-defined]
        self.addCleanup(self._close_database)  # type: ignore[attr-defined]
        self.env = Environment(
            "TestCase",
            {
                InfrastructureFactory.PERSISTENCE_MODULE: get_topic(BulkSQLAlchemyFactory),
                SQLAlchemyFactory.SQLALCHEMY_URL: self.url,
                SQLAlchemyFactory.CREATE_TABLE: "y",
            },
        )
        cases.InfrastructureFactoryTestCase.setUp(self)

    def expected_factory_class(self) -> type[SQLAlchemyFactory]:
        return BulkSQLAlchemyFactory

    def expected_application_recorder_class(self) -> type[SQLAlchemyApplicationRecorder]:
        return BulkApplicationRecorder


# -- SQLite file ------------------------------------------------------------------------------------
class TestSQLiteAggregateRecorder(_SQLiteFile, _AggregateRecorder):
    pass


class TestSQLiteSnapshotRecorder(_SQLiteFile, _SnapshotRecorder):
    pass


class TestSQLiteApplicationRecorder(_SQLiteFile, _ApplicationRecorder):
    def test_insert_subscribe(self) -> None:
        self.skipTest(
            "eventsourcing_sqlalchemy implements subscribe() with LISTEN/NOTIFY, on PostgreSQL only "
            "(SQLite raises NotImplementedError); the project's projections poll select_notifications there"
        )


class TestSQLiteTrackingRecorder(_SQLiteFile, _TrackingRecorder):
    pass


class TestSQLiteProcessRecorder(_SQLiteFile, _ProcessRecorder):
    pass


class TestSQLiteNonInterleaving(_SQLiteFile, _NonInterleaving):
    pass


class TestSQLiteFactory(_SQLiteFile, _Factory):
    pass


class TestSQLiteBulkApplicationRecorder(_SQLiteFile, _BulkApplicationRecorder):
    def test_insert_subscribe(self) -> None:
        self.skipTest("subscribe() is LISTEN/NOTIFY, PostgreSQL only (see TestSQLiteApplicationRecorder)")


class TestSQLiteBulkNonInterleaving(_SQLiteFile, _BulkNonInterleaving):
    pass


class TestSQLiteBulkFactory(_SQLiteFile, _BulkFactory):
    pass


# -- PostgreSQL -------------------------------------------------------------------------------------
@pytest.mark.postgres
class TestPostgresAggregateRecorder(_PostgresSchema, _AggregateRecorder):
    pass


@pytest.mark.postgres
class TestPostgresSnapshotRecorder(_PostgresSchema, _SnapshotRecorder):
    pass


@pytest.mark.postgres
class TestPostgresApplicationRecorder(_PostgresSchema, _ApplicationRecorder):
    def test_insert_subscribe(self) -> None:
        """The optional LISTEN/NOTIFY subscription test of the shipped case (PostgreSQL only)."""
        self.optional_test_insert_subscribe()


@pytest.mark.postgres
class TestPostgresTrackingRecorder(_PostgresSchema, _TrackingRecorder):
    pass


@pytest.mark.postgres
class TestPostgresProcessRecorder(_PostgresSchema, _ProcessRecorder):
    pass


@pytest.mark.postgres
class TestPostgresNonInterleaving(_PostgresSchema, _NonInterleaving):
    pass


@pytest.mark.postgres
class TestPostgresFactory(_PostgresSchema, _Factory):
    pass


@pytest.mark.postgres
class TestPostgresBulkApplicationRecorder(_PostgresSchema, _BulkApplicationRecorder):
    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


@pytest.mark.postgres
class TestPostgresBulkNonInterleaving(_PostgresSchema, _BulkNonInterleaving):
    pass


@pytest.mark.postgres
class TestPostgresBulkFactory(_PostgresSchema, _BulkFactory):
    pass


# -- WAL mode switched once (services.infra.recorder.WalOnceDatastore) ----------------------------------------
def _sqlite_file(tmp_path: Any, journal_mode: str) -> str:
    path = tmp_path / "events.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA journal_mode={journal_mode}")
    conn.execute("CREATE TABLE x (a)")
    conn.commit()
    conn.close()
    return str(path)


def test_a_file_already_in_wal_mode_is_only_asked(tmp_path: Any) -> None:
    path = _sqlite_file(tmp_path, "wal")
    datastore = WalOnceDatastore(url=f"sqlite:///{path}")
    statements: list[str] = []
    sa.event.listen(datastore.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    datastore.init_sqlite_wal_mode()
    datastore.init_sqlite_wal_mode()
    assert datastore.is_sqlite_wal_mode
    assert statements == ["PRAGMA journal_mode"]  # asked once, never switched while others may write
    datastore.engine.dispose()  # type: ignore[union-attr]


def test_the_switch_waits_for_a_connection_that_holds_the_file(tmp_path: Any) -> None:
    """The library datastore fails at once here ("database is locked"); this one retries until it is free."""
    path = _sqlite_file(tmp_path, "delete")
    holder = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO x VALUES (1)")
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    datastore = WalOnceDatastore(url=f"sqlite:///{path}?timeout=0")  # no busy handler: only the retries
    try:
        datastore.init_sqlite_wal_mode()
        assert datastore.is_sqlite_wal_mode
    finally:
        release.join()
        holder.close()
        datastore.engine.dispose()  # type: ignore[union-attr]


def test_threads_starting_together_on_a_fresh_file_all_write(tmp_path: Any) -> None:
    """The CI failure: every thread's first transaction at once, each one's events stored."""
    for round_ in range(5):
        url = _with_sqlite_timeout(f"sqlite:///{tmp_path}/race{round_}.db")
        recorder = BulkApplicationRecorder(datastore=WalOnceDatastore(url=url), events_table_name=EVENTS_TABLE)
        recorder.create_table()
        start = threading.Barrier(8)
        errors: list[BaseException] = []

        def write(
            recorder: BulkApplicationRecorder = recorder,
            start: threading.Barrier = start,
            errors: list[BaseException] = errors,
        ) -> None:
            start.wait()
            try:
                recorder.insert_events([StoredEvent(uuid.uuid4(), 1, "topic", b"{}")])
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=write) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert recorder.max_notification_id() == 8
        recorder.datastore.engine.dispose()  # type: ignore[union-attr]


def test_shipped_cases_still_exist() -> None:
    """Fail loudly (rather than silently run fewer tests) if an eventsourcing upgrade renames a case."""
    for name in (
        "AggregateRecorderTestCase", "ApplicationRecorderTestCase", "TrackingRecorderTestCase",
        "ProcessRecorderTestCase", "NonInterleavingNotificationIDsBaseCase", "InfrastructureFactoryTestCase",
    ):
        assert hasattr(cases, name), f"eventsourcing.tests.persistence.{name} is gone: update this module"
    assert get_topic(SQLAlchemyFactory) == "eventsourcing_sqlalchemy.factory:SQLAlchemyFactory"
