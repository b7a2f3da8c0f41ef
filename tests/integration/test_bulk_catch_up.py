"""Cold catch-up by the bulk path (a rebuild, the directory loaded by aggregate with each entry's events folded into
one row) gives exactly the rows of the event-by-event path, whatever the history and wherever a crash stops it."""

from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from projections.runner import REBUILD_SUFFIX, ProjectionRunner, positions
from services.runtime import Runtime, all_projections
from tests.integration.test_projection_rebuild import PLANNER, World, _run, command
from tests.support.builders import a_target
from tests.support.projections import live_rows

NAMES = [p.name for p in all_projections()]


class Crash(BaseException):
    """Stands for the process dying at a chosen point (not an Exception: no handler of the runner takes it)."""


def _snapshot(runner: ProjectionRunner) -> dict[str, dict[str, Counter[tuple[Any, ...]]]]:
    return {name: live_rows(runner, name) for name in NAMES}


def _forget_read_models(runtime: Runtime) -> None:
    """As a new replica over a restored log: no read-model rows, every position 0."""
    with runtime.engine.begin() as conn:
        for p in all_projections():
            p.metadata.drop_all(conn)
        conn.execute(positions.delete())


def _cold_runner(runtime: Runtime, batch_size: int, **rebuild: Any) -> tuple[ProjectionRunner, list[list[str]]]:
    """A runner of a starting process whose catch-up takes the bulk path for any lag, in batches of ``batch_size``
    (small: an entry's events straddle the by-aggregate batches); the names it rebuilt are recorded."""
    runner = ProjectionRunner(runtime.app, runtime.engine, all_projections(), bulk_lag=1)
    runner.setup()
    calls: list[list[str]] = []

    def bulk(names: Any) -> None:
        calls.append(list(names))
        runner.rebuild(names, batch_size=batch_size, **rebuild)

    runner.bulk = bulk
    return runner, calls


def _per_event(runtime: Runtime, world: World, steps: list[Any]) -> dict[str, dict[str, Counter[tuple[Any, ...]]]]:
    _run(world, steps)
    for _ in range(3):  # five updates of one entry at least: the fold has something to fold
        world.runtime.app.register("target", a_target(), PLANNER)
    runtime.runner.bulk_lag = 0  # event by event, as the live runner
    runtime.runner.batch_size = 1000
    runtime.runner.catch_up()
    return _snapshot(runtime.runner)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(command, min_size=20, max_size=80), batch_size=st.integers(1, 9))
def test_cold_catch_up_by_the_bulk_path_gives_the_rows_of_the_event_by_event_path(
    runtime: Runtime, steps: list[Any], batch_size: int
) -> None:
    expected = _per_event(runtime, World(runtime), steps)
    head = runtime.runner.head()
    _forget_read_models(runtime)

    runner, calls = _cold_runner(runtime, batch_size)
    assert runner.far_behind() == NAMES
    assert runner.catch_up() == head * len(NAMES)
    assert calls == [NAMES]  # the bulk path did it, not the batches after it
    assert runner.positions() == dict.fromkeys(NAMES, head)
    assert _snapshot(runner) == expected


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(command, min_size=20, max_size=60), batch_size=st.integers(1, 9),
       stop=st.one_of(st.tuples(st.just("by aggregate"), st.integers(1, 12)),
                      st.tuples(st.just("log order"), st.floats(0.0, 1.0))))
def test_a_crash_in_the_middle_of_a_bulk_catch_up_is_resumed_to_the_same_rows(
    runtime: Runtime, steps: list[Any], batch_size: int, stop: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _per_event(runtime, World(runtime), steps)
    head = runtime.runner.head()
    _forget_read_models(runtime)

    where, at = stop
    if where == "by aggregate":  # the process dies while the directory is loaded by aggregate, at batch ``at``
        crashing, _ = _cold_runner(runtime, batch_size)
        read, reads = crashing._read_by_aggregate, []

        def dying_read(*args: Any) -> Any:
            reads.append(args)
            if len(reads) >= at:
                raise Crash
            return read(*args)

        monkeypatch.setattr(crashing, "_read_by_aggregate", dying_read)
    else:  # ... or in the log-order batches, once at (or past) a chosen position
        position = max(int(head * at), 1)

        def dying(reached: int) -> None:
            if reached >= position:
                raise Crash

        crashing, _ = _cold_runner(runtime, batch_size, progress=dying)
    monkeypatch.setattr(crashing, "drop_copies", lambda *a, **k: None)  # a dead process cleans nothing up
    crashed = False
    try:
        crashing.catch_up()
    except Crash:
        crashed = True
    monkeypatch.undo()
    event(f"crashed: {crashed} ({where})")
    assert crashed or where == "by aggregate"  # there, ``at`` may be past the last batch: then nothing stops it
    assert set(crashing.positions()) >= set(NAMES)

    restarted, calls = _cold_runner(runtime, batch_size)  # the process starts again
    restarted.catch_up()
    # After a crash it starts the copies over by the bulk path. Without one (by aggregate, ``at`` past the last
    # batch: how many batches there are depends on the entries' random ids, so it varies from run to run of one
    # example) the first catch-up finished and nothing is left to rebuild.
    assert calls == ([NAMES] if crashed else [])
    assert restarted.positions() == dict.fromkeys(NAMES, head)  # no copy row left behind either
    assert _snapshot(restarted) == expected
    tables = set(sa.inspect(runtime.engine).get_table_names())
    assert not [t for t in tables if t.endswith(REBUILD_SUFFIX)]


def test_a_read_model_is_rebuilt_only_when_far_behind(runtime: Runtime) -> None:
    for _ in range(40):
        runtime.app.register("target", a_target(), PLANNER)
    head = runtime.runner.head()
    runner = ProjectionRunner(runtime.app, runtime.engine, all_projections(), bulk_lag=5)
    runner.setup()
    assert runner.far_behind() == NAMES  # 40 behind of 40: more than 5, and more than a quarter of the log
    runner.catch_up(until=head - 1)  # event by event (``until``): 1 behind
    assert runner.far_behind() == []
    runner.catch_up(until=head)
    for _ in range(6):
        runtime.app.register("target", a_target(), PLANNER)
    assert runner.far_behind() == []  # 6 behind: more than 5, but less than a quarter of 46
    for _ in range(20):
        runtime.app.register("target", a_target(), PLANNER)
    assert runner.far_behind() == NAMES  # 26 behind of 66: more than a quarter
    runner.bulk_lag = 0
    assert runner.far_behind() == []  # 0: never


def test_the_server_catches_up_far_behind_by_its_rebuild(runtime: Runtime) -> None:
    """``Runtime`` gives its runner ``services.rebuild.rebuild`` (two build processes on PostgreSQL) as ``bulk``."""
    import uuid

    for i in range(30):
        w = runtime.app.register("target", a_target(name=f"冷启动{i}"), PLANNER)
        for risk in "ABCD"[: i % 5]:
            runtime.app.update("target", uuid.UUID(w.id), {"risk_class": risk}, PLANNER)
    runtime.runner.bulk_lag = 0
    runtime.runner.catch_up()
    expected, head = _snapshot(runtime.runner), runtime.runner.head()
    _forget_read_models(runtime)
    runtime.runner.setup()
    runtime.runner.bulk_lag = 10
    assert runtime.runner.far_behind() == NAMES
    assert runtime.runner.catch_up() == head * len(NAMES)
    assert runtime.runner.positions() == dict.fromkeys(NAMES, head)
    assert _snapshot(runtime.runner) == expected
