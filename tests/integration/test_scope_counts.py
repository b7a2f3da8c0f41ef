"""A plan's quotas count the targets its scopes admit in the database (GROUP BY), never by loading the
directory: the counts equal the pool function's for every scope."""

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.tasks.pool import build_pool
from projections.directory import queries as directory
from tests.support.builders import a_department, a_target
from tests.support.scenario import ADMIN, ctx

INDUSTRIES = ["化工", "造纸", "食品加工"]
TAGS = ["radiation", "hazardous_waste", "a_b%"]  # a tag with LIKE's wildcards in it is matched literally
SCOPES = st.fixed_dictionaries({}, optional={
    "county": st.sampled_from(["获嘉县", "辉县市"]),
    "industries": st.lists(st.sampled_from(INDUSTRIES), max_size=2, unique=True),
    "supervision_classes": st.lists(st.sampled_from(["key", "general", "special"]), max_size=2, unique=True),
    "risk_classes": st.lists(st.sampled_from("ABCD"), max_size=2, unique=True),
    "tags": st.lists(st.sampled_from([*TAGS, "a_bx"]), max_size=2, unique=True)})


def test_scope_counts_equal_the_pool_functions_for_every_scope(runtime) -> None:
    app = runtime.app
    app.register("department", a_department(), ctx(ADMIN))
    for i in range(36):
        app.register("target", a_target(
            county=["获嘉县", "辉县市"][i % 2], industry=INDUSTRIES[i % 3], supervision_class=["key", "general", "special"][i % 3],
            risk_class="ABCD"[i % 4], tags=[TAGS[j] for j in range(3) if (i >> j) & 1],
            status=["active", "active", "active", "closed", "deregistered"][i % 5]), ctx(ADMIN))
    runtime.runner.catch_up()
    with runtime.engine.connect() as conn:
        candidates = directory.pool_candidates(conn)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(SCOPES)
    def check(scope: dict[str, Any]) -> None:
        with runtime.engine.connect() as conn:
            assert directory.scope_counts(conn, scope) == build_pool(candidates, scope).counts

    check()
