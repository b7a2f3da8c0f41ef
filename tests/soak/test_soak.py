"""The soak and chaos run in its short form (CI): two API processes, two workers, two relays and nats-server on
PostgreSQL, 2 minutes of open-loop traffic while each kind of process is killed -9 at least once; afterwards the store,
the stream, a partner's copy and the rebuilt read models agree to the event and no live process answered a 5xx.
The full length is ``python -m tests.soak.run`` (docs/operations.md, "Soak and chaos")."""

import concurrent.futures
import os

import pytest
import sqlalchemy as sa

from tests.soak.run import KINDS, Options, report, run

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _postgres() -> str:
    url = os.environ.get("DUALRANDOM_TEST_DATABASE_URL") or DEFAULT_URL
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL unreachable at {url.split('@')[-1]}: {type(exc).__name__}")
    finally:
        engine.dispose()
    return url


@pytest.mark.postgres
@pytest.mark.timeout(420)
def test_the_short_soak_survives_a_kill_of_each_kind_and_everything_agrees() -> None:
    options = Options(minutes=2, rate=30, api=2, workers=2, database_url=_postgres(), kill_every=10)
    # In a thread of its own: its event loop must not meet one a test before it left running in this thread (the
    # browser tests' session-scoped Playwright keeps one until the session ends).
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        summary = pool.submit(run, options).result()
    text = report(summary)
    print(text)
    assert not summary["failures"], text
    assert all(summary["kills_by_kind"].get(kind, 0) >= 1 for kind in KINDS), text
    checks = summary["checks"]
    assert checks["stream_messages"] == checks["messages_expected"] == checks["partner_messages"] > 0, text
    assert checks["read_models_rebuilt_equal"] > 0 and summary["requests"]["by_status"].get("201", 0) > 0, text
