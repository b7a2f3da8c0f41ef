"""The pool's reader (``projections.directory.queries.target_columns_until``) reads the directory's targets as the
entries hold them, in id order, on both stores: the tags from the ``|a|b|`` column where it says them exactly,
from the entry's JSON where a tag holds a ``|``, and the pool over the columns is the pool over the entries for
every scope."""

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.tasks.pool import build_pool
from projections.directory import queries as directory
from tests.support.builders import a_department, a_target
from tests.support.scenario import ADMIN, ctx

TAGS = ["radiation", "a|b", "positive_list", "x||y", "|edge"]
SCOPES = st.fixed_dictionaries({}, optional={
    "county": st.sampled_from(["获嘉县", "辉县市"]),
    "industries": st.lists(st.sampled_from(["化工", "造纸"]), max_size=2, unique=True),
    "supervision_classes": st.lists(st.sampled_from(["key", "general", "special"]), max_size=2, unique=True),
    "tags": st.lists(st.sampled_from(TAGS), max_size=2, unique=True)})


def test_the_reader_gives_each_target_as_its_entry_and_the_same_pool_for_every_scope(runtime) -> None:
    app = runtime.app
    app.register("department", a_department(), ctx(ADMIN))
    entries: dict[str, dict[str, Any]] = {}
    for i in range(30):
        tags = [TAGS[j] for j in range(len(TAGS)) if (i >> j) & 1]
        data = a_target(county=["获嘉县", "辉县市"][i % 2], industry=["化工", "造纸"][i % 2 or (i // 2) % 2],
                        supervision_class=["key", "general", "special"][i % 3], risk_class="ABCD"[i % 4],
                        status=["active", "active", "closed"][i % 3], **({"tags": tags} if i % 7 else {}))
        if i % 5 == 0:  # a | elsewhere in the entry sends it to the JSON path, with or without tags
            data["address"] = "获嘉县|亢村镇"
        entries[app.register("target", data, ctx(ADMIN)).id] = data
    changed = next(iter(entries))
    app.update("target", uuid.UUID(changed), {"tags": ["a|b"]}, ctx(ADMIN))
    entries[changed] = {**entries[changed], "tags": ["a|b"]}
    runtime.runner.catch_up()
    head = runtime.runner.head()

    with runtime.engine.connect() as conn:
        columns = directory.target_columns_until(conn, head, {}, place=True)
    assert columns.ids == sorted(entries, key=lambda i: i.encode())
    for tid, got in columns.pairs():
        want = entries[tid]
        assert (got["supervision_class"], got["risk_class"], got["county"], got["industry"]) == (
            want["supervision_class"], want["risk_class"], want["county"], want["industry"])
        assert sorted(got.get("tags") or []) == sorted(want.get("tags") or []), tid
        assert got.get("status", "active") == want["status"]
    with runtime.engine.connect() as conn:  # read before the change: the row's last event is after it
        assert changed not in directory.target_columns_until(conn, head - 1, {}).ids

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(SCOPES)
    def check(scope: dict[str, Any]) -> None:
        with runtime.engine.connect() as conn:
            read = directory.target_columns_until(conn, head, scope)
        assert build_pool(read, scope) == build_pool(list(entries.items()), scope)

    check()
