"""How the live runner commits the read models' batches: one transaction a batch for every read model standing at
one position, none only to find the log's end, and (PostgreSQL) without waiting for the disk, that transaction
only."""

from typing import Any

import pytest
import sqlalchemy as sa

from domain.access import Actor
from projections.runner import ProjectionRunner
from services.application import CommandContext
from services.runtime import Runtime
from tests.support.builders import a_target

PLANNER = CommandContext(Actor("staff-7", "hj-eeb", ("planner",)), correlation_id="test-planner")


def _counting(runner: ProjectionRunner, monkeypatch: pytest.MonkeyPatch, method: str) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    original = getattr(runner, method)

    def counted(*args: Any) -> Any:
        out = original(*args)
        calls.append((*args, out))
        return out

    monkeypatch.setattr(runner, method, counted)
    return calls


def _caught_up_then_registered(runtime: Runtime, n: int) -> ProjectionRunner:
    """The runner with every read model at the head, then ``n`` targets registered."""
    runtime.runner.catch_up()
    for _ in range(n):
        runtime.app.register("target", a_target(), PLANNER)
    return runtime.runner


def _at_the_head(runner: ProjectionRunner) -> bool:
    return runner.positions() == dict.fromkeys([p.name for p in runner.projections], runner.head())


@pytest.mark.parametrize(("events", "batch_size", "batches"), [(3, 1000, [3]), (5, 2, [2, 2, 1]), (4, 2, [2, 2, 0])])
def test_read_models_at_one_position_take_each_batch_together_and_stop_at_the_first_short_one(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, events: int, batch_size: int, batches: list[int]
) -> None:
    runner = _caught_up_then_registered(runtime, events)
    monkeypatch.setattr(runner, "batch_size", batch_size)
    reads = _counting(runner, monkeypatch, "_read")
    runs = _counting(runner, monkeypatch, "run_once")
    assert runner.catch_up() == events * len(runner.projections)  # every read model took every event
    assert [len(r[-1]) for r in reads] == batches  # one read of the log a batch for all (a full one: one more)
    assert runs == []
    assert _at_the_head(runner)


def test_read_models_at_different_positions_go_one_by_one_each_ending_at_its_first_short_batch(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = _caught_up_then_registered(runtime, 3)
    assert runner.run_once(runner.projection("directory")) == 3  # ahead of the others
    for _ in range(2):
        runtime.app.register("target", a_target(), PLANNER)
    runs = _counting(runner, monkeypatch, "run_once")
    assert runner.catch_up() == 2 + 5 * (len(runner.projections) - 1)
    assert sorted((p.name, n) for p, _, n in runs) == sorted(
        [("directory", 2)] + [(p.name, 5) for p in runner.projections if p.name != "directory"])
    assert _at_the_head(runner)


def test_a_read_model_that_fails_in_the_shared_batch_holds_back_only_itself(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from projections.directory.projection import DirectoryProjection
    from projections.runner import ProjectionFailedError

    runner = _caught_up_then_registered(runtime, 3)

    def broken(self, conn, events):
        raise RuntimeError("cannot apply")

    monkeypatch.setattr(DirectoryProjection, "apply_batch", broken)
    with pytest.raises(ProjectionFailedError, match="directory"):
        runner.catch_up()
    positions = runner.positions()
    assert positions.pop("directory") < runner.head()
    assert positions == dict.fromkeys(positions, runner.head())  # the others took every event


def test_a_read_models_batch_does_not_wait_for_the_disk_and_nothing_else_changes(runtime: Runtime) -> None:
    engine = runtime.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")
    runner = runtime.runner

    def setting(conn: sa.Connection) -> str:
        return str(conn.exec_driver_sql("SHOW synchronous_commit").scalar())

    with engine.begin() as conn:
        before = setting(conn)
        runner._lock(conn, "directory", flush=False)
        assert setting(conn) == "off"
    assert before == "on"
    with engine.begin() as conn:  # for that transaction only
        assert setting(conn) == "on"
        runner._lock(conn, "directory")  # a swap's or a draw's lock: flushed
        assert setting(conn) == "on"
    seen: list[str] = []
    lock = runner._lock

    def observed(conn, name, *, flush=True):
        position = lock(conn, name, flush=flush)
        seen.append(setting(conn))
        return position

    runner._lock = observed  # type: ignore[method-assign]
    try:
        runtime.app.register("target", a_target(), PLANNER)
        assert runner.run_once(runner.projection("directory")) == 1
    finally:
        del runner._lock
    assert seen == ["off"]


def test_a_shared_batch_whose_positions_moved_meanwhile_keeps_nothing_and_the_read_models_go_one_by_one(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shared batch moves every position with one compare-and-set: when a position row is not where the
    batch found it, the row count says so, nothing of the batch stays, and each read model catches up alone."""
    from projections.runner import positions

    runner = _caught_up_then_registered(runtime, 3)
    start = runner.head() - 3
    apply_rows = runner._apply_rows
    moved: list[str] = []

    def and_one_moves(conn: Any, projections: Any, batch: Any) -> None:
        apply_rows(conn, projections, batch)
        if not moved:  # another writer's change to one position row, inside the shared transaction
            moved.append("audit")
            conn.execute(positions.update().where(positions.c.name == "audit").values(position=start - 1))

    monkeypatch.setattr(runner, "_apply_rows", and_one_moves)
    runs = _counting(runner, monkeypatch, "run_once")
    runner.catch_up()
    assert moved == ["audit"] and {p.name for p, *_ in runs} == {p.name for p in runner.projections}
    assert _at_the_head(runner)  # the one-by-one path applied every event: the shared batch had kept nothing
