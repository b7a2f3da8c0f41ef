"""Directory listings at province scale, on both stores: cursor pages put together are the whole listing, a
credit-code prefix is a byte-wise range, totals are counted up to a cap, and PostgreSQL has the indexes."""

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.access import Actor
from projections.directory import queries
from projections.directory.queries import decode_cursor, list_entries, prefix_range
from services.application import CommandContext
from services.runtime import Runtime
from tests.support.builders import a_target

PLANNER = CommandContext(Actor("staff-7", "hj-eeb", ("planner",)))


def _register(runtime: Runtime, n: int, **over: str) -> list[dict[str, str]]:
    targets = [a_target(**over) for _ in range(n)]
    for t in targets:
        runtime.app.register("target", t, PLANNER)
    runtime.runner.catch_up()
    return targets


def test_cursor_pages_together_are_the_whole_listing(runtime: Runtime) -> None:
    _register(runtime, 7)
    _register(runtime, 3, name="新乡市某某食品厂")
    _register(runtime, 4, county="原阳县", supervision_class="key")
    for filters in ({}, {"name": "食品"}, {"county": "获嘉县"}, {"county": "原阳县", "supervision_class": "key"},
                    {"county": "原阳县", "supervision_class": "general"}):
        whole = list_entries(runtime.engine, "target", filters, limit=100)
        assert whole.next_cursor is None
        seen, after = [], None
        while True:
            page = list_entries(runtime.engine, "target", filters, limit=2, after=after)
            seen += page.items
            if page.next_cursor is None:
                break
            after = decode_cursor(page.next_cursor)
        assert [i["id"] for i in seen] == [i["id"] for i in whole.items]
        assert page.total == whole.total == len(whole.items)


def test_a_credit_code_prefix_finds_exactly_the_codes_that_start_with_it(runtime: Runtime) -> None:
    targets = _register(runtime, 6)
    codes = [t["credit_code"] for t in targets]
    for code in codes:
        for n in (1, 5, 17):
            found = list_entries(runtime.engine, "target", {"credit_code": code[:n]}, limit=100).items
            assert sorted(i["credit_code"] for i in found) == sorted(c for c in codes if c.startswith(code[:n]))
    assert list_entries(runtime.engine, "target", {"credit_code": "Z"}, limit=100).items == []


@settings(max_examples=60, deadline=None)
@given(words=st.lists(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=4), max_size=8),
       prefix=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=3))
def test_the_prefix_range_is_startswith_for_all_texts(words: list[str], prefix: str) -> None:
    """Byte-wise (SQLite's BINARY): the range holds exactly the texts that start with the prefix."""
    engine = sa.create_engine("sqlite://")
    md = sa.MetaData()
    t = sa.Table("w", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("v", sa.Text))
    md.create_all(engine)
    with engine.begin() as conn:
        if words:
            conn.execute(t.insert(), [{"v": w} for w in words])
        got = conn.execute(sa.select(t.c.v).where(prefix_range(t.c.v, prefix, "sqlite"))).scalars().all()
    assert sorted(got) == sorted(w for w in words if w.startswith(prefix))


def test_totals_are_counted_up_to_the_cap_unless_asked_exactly(runtime: Runtime, monkeypatch) -> None:
    _register(runtime, 5)
    monkeypatch.setattr(queries, "COUNT_CAP", 3)
    capped = list_entries(runtime.engine, "target", {}, limit=2)
    exact = list_entries(runtime.engine, "target", {}, limit=2, exact_total=True)
    assert (capped.total, capped.total_exact) == (3, False)
    assert (exact.total, exact.total_exact) == (5, True)
    assert list_entries(runtime.engine, "target", {"name": "无此名"}, limit=2).total_exact


def test_a_search_with_few_matches_is_read_through_its_index_never_by_walking_the_registration_order(
    runtime: Runtime, monkeypatch
) -> None:
    """A substring search with at most COUNT_CAP matches orders its page by an expression the registration-order
    index cannot serve (the planner then reads the matches through the search's index and sorts them); with more
    matches, or without a search, the page walks that index. Both give the same rows."""
    _register(runtime, 4, name="新乡市某化工厂")
    _register(runtime, 3, name="新乡市某某食品厂")
    monkeypatch.setattr(queries, "COUNT_CAP", 3)
    orders: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:
        if "ORDER BY" in statement:
            orders.append(statement.rsplit("ORDER BY", 1)[1].split("LIMIT")[0].strip())

    sa.event.listen(runtime.engine, "before_cursor_execute", seen)
    try:
        few = list_entries(runtime.engine, "target", {"name": "食品"}, limit=2)
        many = list_entries(runtime.engine, "target", {"name": "某"}, limit=2)  # 7 matches > the cap of 3
        plain = list_entries(runtime.engine, "target", {}, limit=2)
    finally:
        sa.event.remove(runtime.engine, "before_cursor_execute", seen)
    assert [o.split(".")[-1].split(" ")[0] for o in orders] == ["first_position"] * 3
    assert ["+" in o for o in orders] == [True, False, False]
    assert (few.total, len(few.items), many.total_exact, plain.total_exact) == (3, 2, False, False)
    monkeypatch.setattr(queries, "COUNT_CAP", 1000)  # the same pages with the plain order
    assert list_entries(runtime.engine, "target", {"name": "食品"}, limit=2).items == few.items


def test_postgresql_has_the_listing_indexes(runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "postgresql":
        return
    with runtime.engine.connect() as conn:
        names = set(conn.execute(sa.text(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'rm_target'"
        )).scalars())
        trgm = conn.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).scalar()
    assert {"ix_rm_target_owner_first", "ix_rm_target_credit_code_c", "ix_rm_target_county_first",
            "ix_rm_target_county_class_first"} <= names
    if trgm:
        assert {"ix_rm_target_name_trgm", "ix_rm_target_address_trgm"} <= names


def test_a_second_setup_beside_a_busy_writer_takes_no_lock_on_the_read_models(runtime: Runtime) -> None:
    """A process starting while a worker writes (the soak's relay, kill -9'd and restarted): its start-up finds the
    listing indexes in the catalog instead of asking ``CREATE INDEX IF NOT EXISTS``, which takes each table's SHARE
    lock before it looks and so queued behind, and deadlocked with, the worker's open transaction."""
    if runtime.engine.dialect.name != "postgresql":
        return
    _register(runtime, 1)
    with runtime.engine.connect() as writer:
        writer.begin()
        # the worker's open transaction: row locks on the read models, as applying a batch holds them
        writer.execute(sa.text("UPDATE rm_target SET modified_on = modified_on"))
        writer.execute(sa.text("UPDATE rm_inspector SET modified_on = modified_on"))
        with runtime.engine.connect() as starting, starting.begin():
            starting.execute(sa.text("SET LOCAL lock_timeout = '5s'"))  # before the fix: LockNotAvailable
            for projection in runtime.runner.projections:
                ensure = getattr(projection, "ensure_indexes", None)
                if ensure is not None:
                    ensure(starting)
        writer.rollback()
