"""A read model that cannot apply an event is reported and holds no other back (SQLite and PostgreSQL)."""

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from domain.access import Actor
from domain.directory import Target
from projections.audit.projection import AuditProjection
from projections.directory.projection import DirectoryProjection
from projections.runner import ProjectionFailedError, ProjectionRunner
from services.application import CommandContext, DualRandom
from services.infra.store import create_engine
from tests.support.builders import a_target
from tests.support.projections import assert_rebuild_equals_live

PLANNER = CommandContext(Actor("staff-7", "hj-eeb", ("planner",)))


class Refusing:
    """A read model of target names that refuses the names in ``refuse`` (as a read model whose code cannot
    handle some stored value would): its rows are real rows in the database."""

    name = "refusing"
    topics = ("domain.directory:",)

    def __init__(self, suffix: str = "", refuse: Sequence[str] = ()) -> None:
        self.suffix = suffix
        self.refuse = set(refuse)
        self.metadata = sa.MetaData()
        self.names = sa.Table(f"rm_refusing{suffix}", self.metadata, sa.Column("position", sa.BigInteger,
                                                                                primary_key=True),
                              sa.Column("name", sa.Text, nullable=False))

    def apply_batch(self, conn: Connection, events: Sequence[tuple[int, Any]]) -> None:
        for position, event in events:
            name = getattr(event, "data", {}).get("name") if isinstance(event, Target.Registered) else None
            if name is None:
                continue
            if name in self.refuse:
                raise ValueError(f"cannot project the name {name!r}")
            conn.execute(self.names.insert().values(position=position, name=name))


@pytest.fixture
def app(database_url: str) -> Iterator[DualRandom]:
    application = DualRandom(database_url)
    yield application
    application.close()


def test_a_failing_read_model_stops_just_before_its_event_and_the_others_go_on(
    app: DualRandom, database_url: str
) -> None:
    written = [app.register("target", a_target(name=n), PLANNER) for n in ("甲公司", "毒", "乙公司")]
    poison = written[1].position
    assert poison is not None
    refusing = Refusing(refuse=["毒"])
    engine = create_engine(database_url)
    runner = ProjectionRunner(app, engine, [refusing, DirectoryProjection(), AuditProjection()], batch_size=1000)
    runner.setup()
    with pytest.raises(ProjectionFailedError) as err:
        runner.catch_up()
    head = runner.head()
    assert [(f.name, f.position) for f in err.value.failures] == [("refusing", poison)]
    assert "ValueError: cannot project the name '毒'" in err.value.failures[0].error
    assert runner.position("directory") == head and runner.position("audit") == head
    assert runner.position("refusing") < poison  # every event before it applied, none after
    with engine.connect() as conn:
        assert conn.execute(sa.select(refusing.names.c.name)).scalars().all() == ["甲公司"]
    # Another process (here: another runner on the same database) sees the failure.
    other = ProjectionRunner(app, create_engine(database_url), [Refusing(refuse=["毒"])])
    assert [(f.name, f.position) for f in other.failures()] == [("refusing", poison)]
    # Again: still failing at the same event, the failure kept; the others stay at the head.
    with pytest.raises(ProjectionFailedError):
        runner.catch_up()
    assert [f.position for f in runner.failures()] == [poison]
    # The cause fixed (a new version of the read model's code): it goes past the event, the failure is gone.
    refusing.refuse.clear()
    runner.catch_up()
    assert runner.failures() == [] and runner.position("refusing") == head
    with engine.connect() as conn:
        assert conn.execute(sa.select(refusing.names.c.name).order_by(refusing.names.c.position)
                            ).scalars().all() == ["甲公司", "毒", "乙公司"]


def test_projections_status_names_the_failed_read_model_and_exits_1(
    app: DualRandom, database_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from services.cli import main

    poison = app.register("target", a_target(name="毒"), PLANNER).position
    runner = ProjectionRunner(app, create_engine(database_url), [Refusing(refuse=["毒"])])
    runner.setup()
    with pytest.raises(ProjectionFailedError):
        runner.catch_up()
    monkeypatch.setenv("DUALRANDOM_DATABASE_URL", database_url)
    monkeypatch.setenv("DUALRANDOM_VAR_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["projections", "status"])
    assert result.exit_code == 1, result.output
    line = next(ln for ln in result.output.splitlines() if ln.startswith("refusing:"))
    assert f"FAILED at log position {poison}" in line and "ValueError: cannot project the name '毒'" in line


def test_ready_and_metrics_report_a_failed_read_model(runtime: Any) -> None:
    from litestar.testing import TestClient

    from services.api.app import create_app

    refusing = Refusing(refuse=["毒"])
    runtime.runner.projections.append(refusing)
    runtime.runner.setup()
    with TestClient(create_app(runtime, background=False)) as client:
        runtime.app.register("target", a_target(name="甲公司"), PLANNER)
        runtime.runner.catch_up()
        assert client.get("/ready").json()["status"] == "ready"
        poison = runtime.app.register("target", a_target(name="毒"), PLANNER).position
        with pytest.raises(ProjectionFailedError):
            runtime.runner.catch_up()
        r = client.get("/ready")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "failed"
        assert body["projections"]["refusing"]["failed"]["position"] == poison
        assert body["projections"]["refusing"]["failed"]["error"] == "ValueError"  # the type: no stored data
        assert body["projections"]["refusing"]["ready"] is False
        assert all(body["projections"][n]["failed"] is None and body["projections"][n]["lag"] == 0
                   for n in ("directory", "audit", "tasks", "execution"))
        metrics = client.get("/metrics").text
        assert 'dualrandom_projection_failed{projection="refusing"} 1' in metrics
        assert 'dualrandom_projection_failed{projection="directory"} 0' in metrics
        assert f'dualrandom_projection_failed_position{{projection="refusing"}} {poison}' in metrics
        refusing.refuse.clear()
        runtime.runner.catch_up()
        assert client.get("/ready").json()["status"] == "ready"
        assert 'dualrandom_projection_failed{projection="refusing"} 0' in client.get("/metrics").text


def test_a_stored_nul_reaches_the_read_models_as_a_replacement_character(runtime: Any) -> None:
    """A store written before every text was checked may hold a name with U+0000, which a PostgreSQL text
    column refuses: every read model still reaches the head with the name read as U+FFFD (on SQLite too: the
    stores agree), and a rebuild gives the same rows."""
    from projections.directory.queries import list_entries
    from tests.support.builders import registered_before_the_text_rule

    registered_before_the_text_rule(runtime.app, PLANNER, "target", a_target(name="获嘉\x00化工"))
    runtime.app.register("target", a_target(name="获嘉正常"), PLANNER)
    runtime.runner.catch_up()
    head = runtime.runner.head()
    assert runtime.runner.failures() == []
    assert all(runtime.runner.position(p.name) == head for p in runtime.runner.projections)
    names = {e["name"] for e in list_entries(runtime.engine, "target", {}, 50, 0).items}
    assert names == {"获嘉\ufffd化工", "获嘉正常"}
    for name in ("directory", "execution", "tasks", "audit"):
        assert_rebuild_equals_live(runtime, name)
