"""The directories on a real store (SQLite file and PostgreSQL): metadata, conflicts, read models."""

import multiprocessing as mp
import uuid

import pytest
import sqlalchemy as sa

from domain.access import Actor
from projections.directory.projection import TABLES, DirectoryProjection
from projections.directory.queries import list_entries
from projections.runner import ProjectionRunner
from services.application import CommandContext, ConflictError, DualRandom
from services.infra.store import create_engine
from tests.support.builders import a_department, a_target, an_inspector

PLANNER = Actor("staff-7", "hj-eeb", ("planner",))
ADMIN = Actor("root", "hj-eeb", ("admin",))


@pytest.fixture
def app(database_url: str):
    application = DualRandom(database_url)
    yield application
    application.close()


@pytest.fixture
def runner(app: DualRandom, database_url: str):
    engine = create_engine(database_url)
    r = ProjectionRunner(app, engine, [DirectoryProjection()], batch_size=50)
    r.setup()
    yield r
    engine.dispose()


def test_every_event_records_actor_department_role_correlation_and_causation(app: DualRandom) -> None:
    ctx = CommandContext(PLANNER, correlation_id="req-1")
    w = app.register("target", a_target(), ctx)
    app.update("target", uuid.UUID(w.id), {"risk_class": "D", "tags": ["positive_list"]}, CommandContext(PLANNER, "req-2"))
    history = app.history("target", uuid.UUID(w.id), ADMIN)
    assert [h["type"] for h in history] == ["registered", "risk_class_changed", "tagged"]
    assert [h["position"] for h in history] == sorted(h["position"] for h in history)
    for h in history:
        assert h["meta"]["actor"] == "staff-7" and h["meta"]["department"] == "hj-eeb" and h["meta"]["role"] == "planner"
        assert h["meta"]["causation_id"]
    assert [h["meta"]["correlation_id"] for h in history] == ["req-1", "req-2", "req-2"]
    # one command, one causation
    assert history[1]["meta"]["causation_id"] == history[2]["meta"]["causation_id"] != history[0]["meta"]["causation_id"]


def test_registering_the_same_key_twice_is_a_conflict(app: DualRandom) -> None:
    data = a_target()
    app.register("target", data, CommandContext(PLANNER))
    before = app.recorder.max_notification_id()
    with pytest.raises(ConflictError):
        app.register("target", dict(data), CommandContext(PLANNER))
    assert app.recorder.max_notification_id() == before


def test_two_writers_from_the_same_version_one_wins_nothing_is_lost(app: DualRandom) -> None:
    w = app.register("target", a_target(), CommandContext(PLANNER))
    first = app.load("target", uuid.UUID(w.id))
    second = app.load("target", uuid.UUID(w.id))
    first.change({"risk_class": "C"})
    second.change({"risk_class": "D"})
    app.record(CommandContext(PLANNER), "update_target", first)
    with pytest.raises(ConflictError):
        app.record(CommandContext(PLANNER), "update_target", second)
    assert app.load("target", uuid.UUID(w.id)).data["risk_class"] == "C"


def test_an_update_with_a_stale_expected_version_is_refused(app: DualRandom) -> None:
    w = app.register("department", a_department(), CommandContext(ADMIN))
    app.update("department", uuid.UUID(w.id), {"name": "新名称"}, CommandContext(ADMIN), expected_version=1)
    with pytest.raises(ConflictError):
        app.update("department", uuid.UUID(w.id), {"name": "再改"}, CommandContext(ADMIN), expected_version=1)


def test_the_read_model_matches_the_aggregates_and_filters(app: DualRandom, runner: ProjectionRunner) -> None:
    ctx = CommandContext(PLANNER)
    ids = [app.register("target", a_target(risk_class=r, name=f"企业{i}"), ctx).id for i, r in enumerate("ABCDD")]
    app.update("target", uuid.UUID(ids[0]), {"tags": ["positive_list"], "status": "closed"}, ctx)
    app.register("inspector", an_inspector(), ctx)
    assert runner.catch_up() == app.recorder.max_notification_id()
    page = list_entries(runner.engine, "target", {"risk_class": "D"})
    assert page.total == 2
    tagged = list_entries(runner.engine, "target", {"tags": "positive_list"}).items
    assert [t["id"] for t in tagged] == [ids[0]] and tagged[0]["status"] == "closed"
    for row in list_entries(runner.engine, "target", {}, limit=500).items:
        agg = app.load("target", uuid.UUID(row["id"]))
        assert row["version"] == agg.version
        assert {k: row[k] for k in agg.data} == agg.data
    assert list_entries(runner.engine, "target", {"name": "企业"}, limit=2, offset=4).items[0]["name"] == "企业4"
    assert list_entries(runner.engine, "inspector", {"department": "hj-eeb", "active": True}).total == 1


def test_a_rebuilt_read_model_equals_the_live_one(app: DualRandom, runner: ProjectionRunner, database_url: str) -> None:
    ctx = CommandContext(PLANNER)
    for i in range(30):
        w = app.register("target", a_target(), ctx)
        if i % 3 == 0:
            app.update("target", uuid.UUID(w.id), {"supervision_class": "key", "tags": ["radiation"]}, ctx)
        runner.catch_up()  # live: applied in small steps as the log grows
    live = _rows(runner.engine)
    with runner.engine.begin() as conn:
        for t in TABLES.values():
            conn.execute(t.delete())
        conn.execute(sa.text("UPDATE projection_positions SET position = 0"))
    runner.catch_up()
    assert _rows(runner.engine) == live


def _rows(engine: sa.Engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {k: sorted(tuple(r) for r in conn.execute(sa.select(t))) for k, t in TABLES.items()}


def _worker(url: str, out: "mp.Queue[int]") -> None:
    app = DualRandom(url)
    engine = create_engine(url)
    r = ProjectionRunner(app, engine, [DirectoryProjection()], batch_size=7)
    applied = 0
    idle = 0
    while idle < 3:
        n = r.run_once(r.projections[0])
        applied += n
        idle = idle + 1 if n == 0 else 0
    out.put(applied)


def test_two_worker_processes_never_apply_an_event_twice(app: DualRandom, runner: ProjectionRunner, database_url: str) -> None:
    ctx = CommandContext(PLANNER)
    for _ in range(120):
        app.register("target", a_target(), ctx)
    total = app.recorder.max_notification_id()
    ctx_mp = mp.get_context("spawn")
    out: mp.Queue[int] = ctx_mp.Queue()
    procs = [ctx_mp.Process(target=_worker, args=(database_url, out)) for _ in range(2)]
    for p in procs:
        p.start()
    counts = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert sum(counts) == 120
    assert runner.position("directory") == total
    assert list_entries(runner.engine, "target", {}).total == 120


def test_a_large_import_is_stored_whole_in_order_and_once(app: DualRandom) -> None:
    # Over 5,000 events the store inserts chunks in a worker thread while the next is serialised.
    from tests.support.builders import credit_code

    rows = [(i + 2, a_target(credit_code=credit_code(900_000 + i), name=f"批量{i}")) for i in range(6_000)]
    result = app.import_entries("target", rows, CommandContext(ADMIN))
    assert (result.created, result.events) == (6_000, 6_000)
    notifications = app.recorder.select_notifications(None, 10_000)
    assert len(notifications) == 6_000 and notifications[-1].id == result.position
    assert [n.id for n in notifications] == sorted(n.id for n in notifications)
    assert app.import_entries("target", rows, CommandContext(ADMIN)).events == 0
