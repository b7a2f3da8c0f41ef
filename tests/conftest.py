"""Shared fixtures: database URLs for SQLite and (when configured) PostgreSQL."""

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

# The machine is shared and noisy: no per-example deadline, no "too slow" health check.
settings.register_profile("dualrandom", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("dualrandom")

PG_ENV = "DUALRANDOM_TEST_DATABASE_URL"


def _pg_base() -> str | None:
    return os.environ.get(PG_ENV) or None


def _fresh_pg_schema(base: str) -> Iterator[str]:
    """A new schema on the test PostgreSQL, set as the search_path of every connection of the URL."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    except sa.exc.OperationalError as exc:
        # Set means required: an unreachable PostgreSQL fails the run instead of skipping it.
        pytest.fail(f"{PG_ENV} is set but PostgreSQL does not answer: {str(exc.orig).splitlines()[0]}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A clean database: a SQLite file, or a fresh schema on the test PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'events.db'}"
        return
    base = _pg_base()
    if not base:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    yield from _fresh_pg_schema(base)


@pytest.fixture
def runtime(database_url: str, tmp_path):
    """An opened Runtime (store, read models, projections) on ``database_url``, without NATS."""
    from dataclasses import replace

    from services.infra.settings import Settings
    from services.runtime import Runtime

    # No NATS here, so no checkpoint is ever published: the draw's checkpoint gate is off (tests/integration/
    # test_draw_checkpoint_gate.py runs it with a real nats-server).
    settings = replace(Settings(var_dir=tmp_path / "var", relay_enabled=False, draw_checkpoint_gate=False),
                       database_url=database_url).with_secret()
    rt = Runtime(settings).open(with_nats=False)
    yield rt
    rt.close()
