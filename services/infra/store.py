"""The event store's database: URL checks, a read-model engine beside it, and positional log reads."""

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from services.infra.logging import mask_credentials
from services.infra.settings import SettingsError


def safe_url(url: str) -> str:
    """The URL with any password hidden, fit for messages and logs."""
    if "," in url:  # a list of servers (NATS): each one masked
        return mask_credentials(url)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is reported as such
        return "<malformed url>"


def create_engine(url: str, pool_size: int = 10) -> Engine:
    """An engine for read models and tracking, in the same database as the events.

    On SQLite every write transaction starts with BEGIN IMMEDIATE, so concurrent writers (the API, a
    projection worker in another process) queue on the busy timeout instead of failing on upgrade.
    """
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _: Any) -> None:
            dbapi_connection.isolation_level = None
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def check_database(url: str) -> None:
    """Connect once; raise SettingsError with one line naming the setting when that fails."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001
        raise SettingsError("DUALRANDOM_DATABASE_URL: not a valid database URL") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    elif parsed.drivername != "postgresql+psycopg":
        raise SettingsError("DUALRANDOM_DATABASE_URL: must start with sqlite:/// or postgresql+psycopg://")
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5} if parsed.get_backend_name() != "sqlite" else {})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
        raise SettingsError(f"DUALRANDOM_DATABASE_URL: cannot connect to {safe_url(url)}: {reason}") from None
    finally:
        engine.dispose()


SETUP_WAIT_SECONDS = 120
SETUP_LOCK = "SELECT pg_advisory_lock(hashtext(coalesce(current_schema(), '')), hashtext('dualrandom:setup'))"


@contextlib.contextmanager
def setting_up(url: str, wait_seconds: float = SETUP_WAIT_SECONDS) -> Iterator[None]:
    """One process at a time sets up a deployment's tables on PostgreSQL: a session advisory lock keyed by the
    schema, held on a connection of its own (outside any pool) while the body runs, released when it ends (or
    with the session, should the process die). Creating a table is "look for it, then create it" (SQLAlchemy's
    ``create_all``, the event library's ``checkfirst``, adding a column or an index): two processes started at
    once on a new schema both found ``relay_position`` missing, and the second failed (``duplicate key value
    violates unique constraint "pg_type_typname_nsp_index"``) and exited. A setup over tables that exist takes
    a few hundred milliseconds, so the others' wait is short; one stuck longer than ``wait_seconds`` makes the
    waiting process fail with a SettingsError instead of hanging. SQLite: a file is one host's, its processes
    are started one after another (the lock is not taken)."""
    if not url.startswith("postgresql"):
        yield
        return
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f"SET lock_timeout = '{int(wait_seconds * 1000)}ms'"))
            try:
                conn.execute(sa.text(SETUP_LOCK))
            except sa.exc.OperationalError:
                raise SettingsError(
                    f"DUALRANDOM_DATABASE_URL: another process has been setting up the tables of "
                    f"{safe_url(url)} for more than {wait_seconds:g} s (stuck? see its log)"
                ) from None
            conn.commit()
            yield  # the connection closes after the body: the session's lock goes with it
    finally:
        engine.dispose()


def iter_notifications(recorder: Any, after: int = 0, until: int | None = None, page: int = 1000) -> Iterator[Any]:
    """Every notification after position ``after`` (and up to ``until``), in order, page by page.

    Reads "after the last id seen", never "last id + 1": PostgreSQL leaves gaps.
    """
    position = after
    while True:
        batch = recorder.select_notifications(position, page, stop=until, inclusive_of_start=False)
        if not batch:
            return
        yield from batch
        position = batch[-1].id
        if len(batch) < page:
            return
