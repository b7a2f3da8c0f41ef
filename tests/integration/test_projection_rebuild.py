"""Rebuilding read models while the server serves, and the property every read model keeps: a rebuild from
position 0 gives exactly the live rows, whatever the commands and however the live runner cut the log."""

import contextlib
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from domain.access import Actor
from domain.tasks.overlap import OverlapError
from projections.directory.queries import list_entries
from projections.runner import REBUILD_SUFFIX, ProjectionRunner
from services.application import CommandContext
from services.runtime import Runtime, all_projections
from tests.support.builders import (
    a_department,
    a_target,
    an_expert,
    an_inspector,
    an_item,
    registered_before_the_text_rule,
)
from tests.support.projections import CHECK_SUFFIX, assert_rebuild_equals_live, schema_wide_names

ADMIN = CommandContext(Actor("root", "hj-eeb", ("admin",)), correlation_id="test-admin")
PLANNER = CommandContext(Actor("staff-7", "hj-eeb", ("planner",)), correlation_id="test-planner")
NAMES = [p.name for p in all_projections()]


def _table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_a_rebuild_equals_the_live_read_models_and_swaps_in_under_the_live_names(runtime: Runtime) -> None:
    for i in range(40):
        w = runtime.app.register("target", a_target(name=f"企业{i}"), PLANNER)
        if i % 4 == 0:
            runtime.app.update("target", uuid.UUID(w.id), {"risk_class": "D", "tags": ["radiation"]}, PLANNER)
        runtime.runner.catch_up()  # live: small batches
    head = runtime.runner.head()
    for name in NAMES:
        assert assert_rebuild_equals_live(runtime, name) == head
    tables, indexes = _table_names(runtime.engine), schema_wide_names(runtime.engine)

    assert runtime.runner.rebuild() == dict.fromkeys(NAMES, head)
    assert _table_names(runtime.engine) == tables  # the live names, no copy left behind
    assert schema_wide_names(runtime.engine) == indexes  # indexes (and PostgreSQL's pkeys) renamed back
    assert set(runtime.runner.positions()) == set(NAMES)
    assert list_entries(runtime.engine, "target", {"risk_class": "D"}).total == 10
    # ...and it keeps going: live events after the swap, then a second rebuild (no name collides).
    runtime.app.register("target", a_target(name="企业后来"), PLANNER)
    runtime.runner.catch_up()
    runtime.runner.rebuild(["directory"])
    for name in NAMES:
        assert_rebuild_equals_live(runtime, name)
    assert list_entries(runtime.engine, "target", {"name": "企业后来"}).total == 1


def test_the_swap_applies_what_was_written_after_the_copy_was_built(runtime: Runtime) -> None:
    for _ in range(10):
        runtime.app.register("target", a_target(), PLANNER)
    runtime.runner.catch_up()
    rebuilder = ProjectionRunner(runtime.app, runtime.engine, all_projections())  # as in another process
    copies = rebuilder.build_copies()
    assert {c.name: rebuilder.position(c.name + REBUILD_SUFFIX) for c in copies} == dict.fromkeys(NAMES, 10)
    late = [runtime.app.register("target", a_target(), PLANNER).position for _ in range(3)]
    assert runtime.runner.position("directory") == 10  # the live runner has not seen them either
    for c in copies:
        assert rebuilder.swap(c) == late[-1]
    assert list_entries(runtime.engine, "target", {}).total == 13
    assert runtime.runner.catch_up() == 0  # the swapped-in read models are at the head
    for name in NAMES:
        assert_rebuild_equals_live(runtime, name)


def test_the_rebuild_check_names_a_live_row_that_a_rebuild_does_not_give(runtime: Runtime) -> None:
    runtime.app.register("target", a_target(risk_class="B"), PLANNER)
    runtime.runner.catch_up()
    with runtime.engine.begin() as conn:
        conn.execute(sa.text("UPDATE rm_target SET risk_class = 'A'"))  # a read model that drifted
    with pytest.raises(AssertionError, match="rebuilt rm_target differs"):
        assert_rebuild_equals_live(runtime, "directory")
    assert not any(t.endswith(CHECK_SUFFIX) for t in _table_names(runtime.engine))  # the copy is gone


def test_a_rebuild_while_serving_never_stops_reads_or_writes_and_misses_nothing(runtime: Runtime) -> None:
    """The live runner (a thread, as in `serve`) applies while writers write and readers list; a second runner
    (as `dualrandom projections rebuild` in another process) rebuilds every read model and swaps them in."""
    for _ in range(60):
        runtime.app.register("target", a_target(), PLANNER)
    runtime.runner.catch_up()
    stop, errors = threading.Event(), []
    written: list[int] = []

    def guarded(fn: Callable[[], None]) -> Callable[[], None]:
        def loop() -> None:
            try:
                while not stop.is_set():
                    fn()
            except Exception as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)
        return loop

    def write() -> None:
        written.append(runtime.app.register("target", a_target(), PLANNER).position or 0)
        runtime.after_write()

    def read() -> None:
        assert list_entries(runtime.engine, "target", {"supervision_class": "general"}, limit=5).total >= 60

    live = threading.Thread(target=runtime.runner.run_forever, args=(stop,), kwargs={"coalesce": 0})
    threads = [live, threading.Thread(target=guarded(write)), threading.Thread(target=guarded(read))]
    for t in threads:
        t.start()
    try:
        rebuilder = ProjectionRunner(runtime.app, runtime.engine, all_projections())
        swapped = rebuilder.rebuild(batch_size=25)
        # keep writing a little after the swap: the live runner continues on the new tables
        target = max(swapped.values()) + 5
        while (written[-1] if written else 0) < target and not errors:
            threading.Event().wait(0.01)
    finally:
        stop.set()
        runtime.runner.wake()
        for t in threads:
            t.join(timeout=30)
    assert errors == []
    runtime.runner.catch_up()  # what was written after the live thread's last look
    head = runtime.runner.head()
    assert list_entries(runtime.engine, "target", {}, exact_total=True).total == 60 + len(written)
    for name in NAMES:
        assert assert_rebuild_equals_live(runtime, name) == head


# -- property: any sequence of commands ------------------------------------------------------------------
@dataclass
class World:
    """What the commands so far created, so that later commands can pick an existing entry."""

    runtime: Runtime
    ids: dict[str, list[str]] = field(default_factory=lambda: {"target": [], "inspector": [], "item": [],
                                                               "expert": [], "department": []})
    tasks: list[uuid.UUID] = field(default_factory=list)
    inspections: list[uuid.UUID] = field(default_factory=list)

    def pick(self, kind: str, index: int) -> uuid.UUID | None:
        known = self.ids[kind]
        return uuid.UUID(known[index % len(known)]) if known else None


def _register(kind: str, build: Callable[..., dict[str, Any]]) -> Callable[[World, dict[str, Any]], None]:
    def run(world: World, over: dict[str, Any]) -> None:
        ctx = ADMIN if kind == "department" else PLANNER
        world.ids[kind].append(world.runtime.app.register(kind, build(**over), ctx).id)
    return run


def _update(kind: str) -> Callable[[World, dict[str, Any]], None]:
    def run(world: World, params: dict[str, Any]) -> None:
        entry = world.pick(kind, params.pop("index"))
        if entry is not None:
            world.runtime.app.update(kind, entry, params, ADMIN if kind == "department" else PLANNER)
    return run


def _import_targets(world: World, params: dict[str, Any]) -> None:
    """A file of new targets and changes to existing ones, one transaction (the bulk path)."""
    rows = []
    for _i, (index, risk) in enumerate(params["changes"]):
        entry = world.pick("target", index)
        if entry is not None:
            current = world.runtime.app.load("target", entry).data
            rows.append({**{k: current[k] for k in ("credit_code", "name", "county", "supervision_class")},
                         "risk_class": risk})
    rows = list({r["credit_code"]: r for r in rows}.values())
    news = [a_target(risk_class=r) for r in params["new"]]
    result = world.runtime.app.import_entries("target", [(n + 2, r) for n, r in enumerate(rows + news)], PLANNER)
    world.ids["target"].extend(str(_target_id(r)) for r in news)
    assert result.created == len(news)


def _target_id(row: dict[str, Any]) -> uuid.UUID:
    from domain.directory import Target

    return Target.id_for(row)


def _live_batch(world: World, params: dict[str, Any]) -> None:
    """The live runner applies what is there in batches of some size: rows must not depend on the cuts."""
    runner = world.runtime.runner
    runner.batch_size = params["size"]
    for p in runner.projections:
        for _ in range(params["times"]):
            runner.run_once(p)


def _rebuild(world: World, params: dict[str, Any]) -> None:
    world.runtime.runner.rebuild(params["names"] or None, batch_size=params["size"])


def _open_task(world: World, params: dict[str, Any]) -> None:
    """A task of hj-eeb over one of its items (the department is registered when missing)."""
    from services.application import ConflictError

    rt, items = world.runtime, world.ids["item"]
    if not items:
        return
    with contextlib.suppress(ConflictError):
        world.ids["department"].append(rt.app.register("department", a_department(), ADMIN).id)
    classes = params["classes"] or ["key"]
    data = {
        "period": f"2024Q{params['quarter']}", "reason": "随机场景", "participants": {"hj-eeb": [items[params["index"] % len(items)]]},
        "scope": {"supervision_classes": classes}, "rules": [{"supervision_class": c, "full": True} for c in classes],
        "options": {"exclude_inspected_this_year": params["exclude"]}}
    try:
        done = rt.task_opening.open_task(PLANNER, data)
    except OverlapError as exc:  # overlapping tasks are part of the scenario: declared
        done = rt.task_opening.open_task(PLANNER, {**data, "overlaps": [f.id for f in exc.undeclared],
                                                   "overlap_reason": "随机场景"})
    world.tasks.append(uuid.UUID(done.id))


def _task_step(step: str) -> Callable[[World, dict[str, Any]], None]:
    """The next step of an existing task: commit, freeze, draw, teams, redraw."""

    def run(world: World, params: dict[str, Any]) -> None:
        if not world.tasks:
            return
        tid, draws = world.tasks[params["index"] % len(world.tasks)], world.runtime.target_draws
        if step == "draw":  # a value for the source the commitment declared
            draws.draw_targets(PLANNER, tid, "值" + params.get("entropy", ""), "测试熵源")
        elif step == "commit":
            draws.commit(PLANNER, tid, "测试熵源")
        elif step == "teams":
            world.runtime.teams.draw_inspectors(PLANNER, tid, "hj-eeb")
        elif step == "redraw":
            draws.withdraw(PLANNER, tid, "重抽")
        else:
            getattr(draws, step)(PLANNER, tid)
    return run


def _inspect(world: World, params: dict[str, Any]) -> None:
    """A team member records findings on a visit, submits; a reviewer approves; maybe publishes."""
    from domain.tasks.assignment import assignment_id

    if not world.tasks:
        return
    rt = world.runtime
    task = rt.task_opening.task(world.tasks[params["index"] % len(world.tasks)])
    if not task.teams:
        return
    target = task.selected[params["index"] % len(task.selected)]
    visit = rt.teams.assignment(assignment_id(task.id, task.round, target))
    member = visit.teams["hj-eeb"]["members"][0]
    inspector = CommandContext(Actor(member, "hj-eeb", ("inspector",)))
    reviewer = CommandContext(Actor("rev-1", "hj-eeb", ("reviewer",)))
    findings = {i: {"result": params["result"], "description": "排污口不规范", "confidential": params["secret"]}
                for i in visit.items["hj-eeb"]}
    done = rt.inspections.record_findings(inspector, visit.id, "hj-eeb", {
        "inspected_on": "2024-09-10", "methods": params["methods"], "findings": findings})
    iid = uuid.UUID(done.id)
    rt.inspections.submit(inspector, iid)
    rt.inspections.approve(reviewer, iid, "2024-09-20")
    if params["publish"]:
        rt.inspections.publish(reviewer, iid, "2024-10-08")


text = st.text(st.sampled_from("获嘉县亢村镇化工企业有限公司abc-"), min_size=1, max_size=12)
risk = st.sampled_from("ABCD")
TAGS = st.lists(st.sampled_from(["radiation", "positive_list", "涉VOCs", "重点排污单位"]), unique=True, max_size=3)
index = st.integers(0, 1000)

# (name, strategy of parameters, what it does). Add a read model's commands here and the property covers it.
COMMANDS: list[tuple[str, st.SearchStrategy[dict[str, Any]], Callable[[World, dict[str, Any]], None]]] = [
    ("register target", st.fixed_dictionaries({"risk_class": risk, "name": text, "tags": TAGS,
                                               "supervision_class": st.sampled_from(["general", "key", "special"])}),
     _register("target", a_target)),
    ("update target", st.fixed_dictionaries({"index": index}, optional={
        "risk_class": risk, "tags": TAGS, "supervision_class": st.sampled_from(["general", "key", "special"]),
        "status": st.sampled_from(["active", "closed", "deregistered"]), "name": text, "address": text}),
     _update("target")),
    ("import targets", st.fixed_dictionaries({"changes": st.lists(st.tuples(index, risk), max_size=4),
                                              "new": st.lists(risk, max_size=4)}), _import_targets),
    ("register inspector", st.fixed_dictionaries({"name": text, "specialties": st.lists(text, max_size=2, unique=True)}),
     _register("inspector", an_inspector)),
    ("update inspector", st.fixed_dictionaries({"index": index}, optional={
        "active": st.booleans(), "region": text, "specialties": st.lists(text, max_size=2, unique=True)}),
     _update("inspector")),
    ("register item", st.fixed_dictionaries({"name": text, "needs_expert": st.booleans()}), _register("item", an_item)),
    ("update item", st.fixed_dictionaries({"index": index}, optional={
        "legal_basis": text, "methods": st.lists(st.sampled_from(["on_site", "documentary", "testing"]), unique=True)}),
     _update("item")),
    ("register expert", st.fixed_dictionaries({"name": text}), _register("expert", an_expert)),
    ("update expert", st.fixed_dictionaries({"index": index}, optional={"organisation": text, "field": text}),
     _update("expert")),
    ("register department", st.fixed_dictionaries({"code": st.from_regex(r"\Ahj-[a-z]{2,8}\Z"), "name": text}),
     _register("department", a_department)),
    ("update department", st.fixed_dictionaries({"index": index}, optional={"name": text}), _update("department")),
    ("open task", st.fixed_dictionaries({"index": index, "quarter": st.integers(1, 4), "exclude": st.booleans(),
                                         "classes": st.lists(st.sampled_from(["key", "general", "special"]),
                                                             unique=True, max_size=2)}), _open_task),
    ("commit", st.fixed_dictionaries({"index": index}), _task_step("commit")),
    ("freeze", st.fixed_dictionaries({"index": index}), _task_step("freeze")),
    ("draw", st.fixed_dictionaries({"index": index, "entropy": text}), _task_step("draw")),
    ("teams", st.fixed_dictionaries({"index": index}), _task_step("teams")),
    ("redraw", st.fixed_dictionaries({"index": index}), _task_step("redraw")),
    ("inspect", st.fixed_dictionaries({
        "index": index, "publish": st.booleans(), "secret": st.lists(st.just("description"), max_size=1),
        "result": st.sampled_from(["no_problem", "corrected", "follow_up_pending"]),
        "methods": st.lists(st.sampled_from(["on_site", "online_monitoring", "drone"]), min_size=1, unique=True)}),
     _inspect),
    ("live batch", st.fixed_dictionaries({"size": st.integers(1, 7), "times": st.integers(1, 3)}), _live_batch),
    ("rebuild", st.fixed_dictionaries({"names": st.lists(st.sampled_from(NAMES), unique=True, max_size=1),
                                       "size": st.integers(2, 50)}), _rebuild),
]

command = st.one_of(*[st.tuples(st.just(i), params) for i, (_, params, _) in enumerate(COMMANDS)])


def _run(world: World, steps: list[tuple[int, dict[str, Any]]]) -> None:
    from domain.errors import DomainError
    from services.application import ConflictError

    for i, params in steps:
        try:
            COMMANDS[i][2](world, dict(params))
            event(f"done: {COMMANDS[i][0]}")
        except (ConflictError, DomainError):
            pass  # a refused command stores nothing; the property is about what was stored


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(command, min_size=20, max_size=100))
def test_any_sequence_of_commands_rebuilds_to_the_live_read_models(runtime: Runtime, steps) -> None:
    # One store for every example: the history only grows, and each example checks the whole of it.
    world = World(runtime)
    _run(world, steps)
    runtime.runner.batch_size = 1000
    runtime.runner.catch_up()
    for name in NAMES:
        assert assert_rebuild_equals_live(runtime, name) == runtime.runner.head()


def test_a_failed_rebuild_leaves_the_live_read_model_alone_and_no_copy_behind(runtime: Runtime, monkeypatch) -> None:
    from projections.directory.projection import DirectoryProjection

    for _ in range(5):
        runtime.app.register("target", a_target(), PLANNER)
    runtime.runner.catch_up()
    tables = _table_names(runtime.engine)
    applied = DirectoryProjection.apply_batch

    def broken(self, conn, events):
        if self.suffix:
            raise RuntimeError("disk full")
        applied(self, conn, events)

    monkeypatch.setattr(DirectoryProjection, "apply_batch", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        runtime.runner.rebuild()
    assert _table_names(runtime.engine) == tables and set(runtime.runner.positions()) == set(NAMES)
    assert list_entries(runtime.engine, "target", {}).total == 5


def test_an_index_that_cannot_be_built_fails_the_rebuild_and_leaves_the_live_read_model_alone(
    runtime: Runtime, monkeypatch
) -> None:
    """On PostgreSQL a copy's indexes are built side by side, each in a transaction of its own: one that fails
    still fails the rebuild (the others end or are not started), and nothing of the copy is left."""
    from projections.directory.projection import DirectoryProjection

    for _ in range(5):
        runtime.app.register("target", a_target(), PLANNER)
    runtime.runner.catch_up()
    tables, indexes = _table_names(runtime.engine), schema_wide_names(runtime.engine)
    statements = DirectoryProjection.index_statements

    def with_a_bad_one(self, conn):
        return ["CREATE INDEX ix_bench_broken ON rm_target__rebuild (no_such_column)", *statements(self, conn)]

    monkeypatch.setattr(DirectoryProjection, "index_statements", with_a_bad_one)
    with pytest.raises(sa.exc.DBAPIError, match="no_such_column"):  # SQLite: in the copy's one transaction
        runtime.runner.rebuild(["directory"])
    assert _table_names(runtime.engine) == tables and schema_wide_names(runtime.engine) == indexes
    assert set(runtime.runner.positions()) == set(NAMES)
    assert list_entries(runtime.engine, "target", {}).total == 5


def test_a_rebuild_reads_the_log_by_aggregate_with_fresh_statistics(runtime: Runtime) -> None:
    """A log without statistics (just imported or restored, autovacuum off or not there yet) made PostgreSQL plan
    each by-aggregate batch as a scan and sort of the whole log: the rebuild analyses the columns it reads by."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's statistics")
    for _ in range(3):
        runtime.app.register("target", a_target(), PLANNER)
    runtime.runner.catch_up()
    columns = sa.text("SELECT a.attname FROM pg_statistic s JOIN pg_attribute a ON a.attrelid = s.starelid "
                      "AND a.attnum = s.staattnum WHERE s.starelid = to_regclass('dualrandom_events')")
    with runtime.engine.begin() as conn:
        try:
            with conn.begin_nested():
                conn.execute(sa.text("DELETE FROM pg_statistic WHERE starelid = to_regclass('dualrandom_events')"))
        except sa.exc.DBAPIError:
            pytest.skip("deleting statistics needs a superuser")
        assert conn.execute(columns).scalars().all() == []
    runtime.runner.rebuild(["directory"])
    with runtime.engine.connect() as conn:
        assert {"originator_id", "originator_version", "id", "topic"} <= set(conn.execute(columns).scalars())


def test_one_rebuild_of_a_read_model_at_a_time(runtime: Runtime) -> None:
    from projections.runner import RebuildInProgressError

    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: no guard")
    other = ProjectionRunner(runtime.app, runtime.engine, all_projections())  # as another process
    with other.rebuild_lock(["directory"]):
        with pytest.raises(RebuildInProgressError, match="directory"):
            runtime.runner.rebuild(["directory"])
        runtime.runner.rebuild(["audit"])  # another read model may be rebuilt meanwhile
    runtime.runner.rebuild(["directory"])


def test_names_read_from_stored_states_are_those_of_the_decoded_events(runtime: Runtime, monkeypatch) -> None:
    """The execution read model reads directory names from the stored state (``stored_topics``) unless an event
    must be decoded (an escape, an upcast): both ways give the same rows, and a live run of either equals the other.
    Enterprises' names are not kept there: they are the directory read model's, as they are now."""
    from projections.execution.projection import TABLES as EXEC
    from projections.execution.queries import names as names_of

    runtime.app.register("department", a_department(code="hj-amr", name="获嘉县市场监督管理局"), ADMIN)
    targets = []
    for i in range(12):
        if i % 3:
            item_id = runtime.app.register("item", an_item(name=f"事项{i}"), PLANNER).id
        else:  # a name whose stored state has a \u escape: decoded, not read from the stored state
            item_id = registered_before_the_text_rule(runtime.app, PLANNER, "item", an_item(name=f"事项\u0007{i}"))
        if i % 2 == 0:
            runtime.app.update("item", uuid.UUID(item_id), {"name": f"改名事项{i}"}, PLANNER)
        t = runtime.app.register("target", a_target(name=f"企业{i}"), PLANNER)
        if i % 2 == 0:
            runtime.app.update("target", uuid.UUID(t.id), {"name": f"改名企业{i}", "risk_class": "D"}, PLANNER)
        targets.append(t.id)
    runtime.runner.catch_up()
    with runtime.engine.connect() as conn:
        names = {(r.kind, r.name) for r in conn.execute(sa.select(EXEC["name"]))}
        target_names = names_of(conn, "target", targets)
    assert ("item", "改名事项0") in names and ("item", "事项1") in names and ("item", "事项\u00073") in names
    assert ("department", "获嘉县市场监督管理局") in names
    assert len([n for n in names if n[0] == "item"]) == 12
    # Targets' names are the directory read model's (not kept twice), as they are now.
    assert not [n for n in names if n[0] == "target"]
    assert [target_names[t]["name"] for t in targets[:2]] == ["改名企业0", "企业1"]

    assert_rebuild_equals_live(runtime, "execution")  # stored states where it can (the control character: decoded)
    monkeypatch.setattr("projections.runner.plain_state_check", lambda mapper: lambda n: False)
    runtime.runner._to_event = None  # the checks are made again: every event decoded now
    assert_rebuild_equals_live(runtime, "execution")


_REBUILD_ELSEWHERE = """
import json, sys
from projections.runner import ProjectionRunner
from services.cli import projections as cli_projections
from services.application import DualRandom
from services.runtime import all_projections
from services.infra.store import create_engine

url = sys.argv[1]
runner = ProjectionRunner(DualRandom(url), create_engine(url), all_projections())
method = cli_projections._start_method()
print(json.dumps([method, cli_projections.rebuild(runner, url, processes=2, batch_size=7)]))
"""


@pytest.mark.parametrize("start", ["forked", "spawned"])
def test_a_rebuild_in_two_build_processes_equals_the_live_read_models(
    runtime: Runtime, database_url: str, start: str
) -> None:
    """``dualrandom projections rebuild`` on PostgreSQL: copies built in two processes, forked when the calling
    process runs no other thread (here: a fresh interpreter) and spawned when it does (here: this test process,
    with one more thread); see ``services.cli.projections._start_method``."""
    import json
    import subprocess
    import sys

    from services.cli import projections as cli_projections

    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("the copies are built in other processes on PostgreSQL only")
    for i in range(30):
        w = runtime.app.register("target", a_target(name=f"分进程{i}"), PLANNER)
        if i % 3 == 0:
            runtime.app.update("target", uuid.UUID(w.id), {"risk_class": "D"}, PLANNER)
    runtime.runner.catch_up()
    head = runtime.runner.head()
    if start == "forked":
        done = subprocess.run([sys.executable, "-c", _REBUILD_ELSEWHERE, database_url], capture_output=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        method, positions = json.loads(done.stdout.decode().splitlines()[-1])
    else:
        idle = threading.Event()
        other = threading.Thread(target=idle.wait)
        other.start()
        try:
            method = cli_projections._start_method()
            positions = cli_projections.rebuild(runtime.runner, database_url, processes=2, batch_size=7)
        finally:
            idle.set()
            other.join()
    assert method == ("fork" if start == "forked" else "spawn")
    assert positions == dict.fromkeys(NAMES, head)
    assert set(runtime.runner.positions()) == set(NAMES)  # no copy's row left behind
    for name in NAMES:
        assert assert_rebuild_equals_live(runtime, name) == head
    assert list_entries(runtime.engine, "target", {"name": "分进程"}).total == 30
