"""Test helpers for every read model: a rebuilt copy must hold exactly the rows of the live one."""

from collections import Counter
from typing import Any

import sqlalchemy as sa

from projections.runner import ProjectionRunner

CHECK_SUFFIX = "__check"


def table_rows(conn: sa.Connection, table: sa.Table) -> Counter[tuple[Any, ...]]:
    """Every row of ``table`` as a multiset (order-independent; bytes-like values as bytes)."""
    return Counter(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in conn.execute(sa.select(table)))


def schema_wide_names(engine: sa.Engine) -> set[str]:
    """Index and sequence names (PostgreSQL: schema-wide, with those of primary keys and unique constraints), or
    SQLite's index names: a rebuild must leave them as it found them."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            return set(conn.execute(sa.text(
                "SELECT relname FROM pg_class WHERE relkind IN ('i', 'S') AND relnamespace = current_schema()::regnamespace"
            )).scalars())
        return set(conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'index'")).scalars())


def live_rows(runner: ProjectionRunner, name: str) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every row of every live table of the read model ``name``, by table name."""
    with runner.engine.connect() as conn:
        return {t.name: table_rows(conn, t) for t in runner.projection(name).metadata.sorted_tables}


def assert_rebuild_equals_live(runtime: Any, projection_name: str) -> int:
    """Build a copy of ``projection_name`` from position 0 up to the live read model's position (tables
    ``<table>__check``), compare every row of every table with the live tables, drop the copy.

    ``runtime`` is a ``services.runtime.Runtime`` or a ``ProjectionRunner``. The live read model is compared as it
    stands: catch it up first if the test wants the whole log. Returns the position compared at.
    """
    runner: ProjectionRunner = getattr(runtime, "runner", runtime)
    live = runner.projection(projection_name)
    (copy,) = runner.build_copies([projection_name], suffix=CHECK_SUFFIX, until=runner.position(projection_name))
    try:
        with runner.engine.begin() as conn:
            # Hold the live row's lock: a live runner (a thread, another process) cannot move it meanwhile.
            position = runner.catch_up_copy(conn, copy, until_live=True)
            for live_table, copy_table in zip(live.metadata.sorted_tables, copy.metadata.sorted_tables, strict=True):
                assert copy_table.name == live_table.name + CHECK_SUFFIX
                expected, got = table_rows(conn, live_table), table_rows(conn, copy_table)
                if got != expected:
                    missing = list((expected - got).elements())[:5]
                    extra = list((got - expected).elements())[:5]
                    raise AssertionError(
                        f"{projection_name}: rebuilt {live_table.name} differs from the live one at position "
                        f"{position}: {sum(expected.values())} live rows, {sum(got.values())} rebuilt; only live: "
                        f"{missing}; only rebuilt: {extra}"
                    )
    finally:
        runner.drop_copy(copy)
    return position
