"""Events are forever: an item registered before the applicability lists (``InspectionItem.Registered`` version 1)
still loads, applies to every target, and the directory read model rebuilt from it equals the live one."""

import json
import uuid

import sqlalchemy as sa

from domain.planning.applicability import applies
from tests.support.builders import a_department, a_target, an_item
from tests.support.projections import assert_rebuild_equals_live
from tests.support.scenario import ADMIN, ctx


def test_a_version_1_item_loads_with_empty_applicability_and_applies_to_every_target(runtime) -> None:
    app = runtime.app
    app.register("department", a_department(), ctx(ADMIN))
    item = app.register("item", an_item(applies_to_tags=["radiation"]), ctx(ADMIN)).id
    target = app.register("target", a_target(industry="金属制品", tags=[]), ctx(ADMIN)).id
    table = app.recorder.events_record_cls.__table__
    with runtime.engine.begin() as conn:  # the item's event as version 1 stored it: no version, no lists
        row = conn.execute(sa.select(table.c.id, table.c.state).where(
            table.c.originator_id == uuid.UUID(item), table.c.topic.like("%InspectionItem.Registered"))).one()
        state = json.loads(bytes(row.state))
        assert state.pop("class_version") == 2
        for name in ("applies_to_industries", "applies_to_tags", "applies_to_classes"):
            state["data"].pop(name)
        conn.execute(table.update().where(table.c.id == row.id).values(state=json.dumps(state).encode()))
    loaded = app.load("item", uuid.UUID(item)).data
    assert (loaded["applies_to_industries"], loaded["applies_to_tags"], loaded["applies_to_classes"]) == ([], [], [])
    assert applies(loaded, app.load("target", uuid.UUID(target)).data)
    runtime.runner.catch_up()
    assert assert_rebuild_equals_live(runtime, "directory") == runtime.runner.head()


def test_a_directory_table_created_before_a_field_existed_gains_its_column_at_setup(runtime) -> None:
    from projections.directory.projection import TABLES

    table = TABLES["target"].name
    with runtime.engine.begin() as conn:
        conn.execute(sa.text(f"DROP INDEX ix_{table}_town"))
        conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN town"))
    runtime.runner.setup()  # as a server upgraded over that database starts
    runtime.app.register("department", a_department(), ctx(ADMIN))
    target = runtime.app.register("target", a_target(town="亢村镇"), ctx(ADMIN)).id
    runtime.runner.catch_up()
    with runtime.engine.connect() as conn:
        town = conn.execute(sa.text(f"SELECT town FROM {table} WHERE id = :id"), {"id": target}).scalar_one()
    assert town == "亢村镇" and not runtime.runner.failures()
    with runtime.engine.connect() as conn:
        assert f"ix_{table}_town" in {i["name"] for i in sa.inspect(conn).get_indexes(table)}
