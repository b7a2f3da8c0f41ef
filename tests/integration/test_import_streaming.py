"""Large imports insert chunk k while chunk k+1 is made, in one transaction: the same result as a small import,
and still all or nothing (SQLite file and PostgreSQL). The chunk is made small so that a few hundred rows
take the streaming path (and, on PostgreSQL, the COPY insert imports use)."""

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

import services.application as application
import services.infra.recorder as recorder_module
from domain.access import SYSTEM, Actor
from domain.directory import Target, entry_id
from domain.errors import FieldProblem, InvalidInputError
from services.application import CommandContext, ConflictError, DualRandom
from tests.support.builders import credit_code

ADMIN = Actor("root", "hj-eeb", ("admin",))


@pytest.fixture
def app(database_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(application, "_PIPELINE_CHUNK", 40)
    monkeypatch.setattr(recorder_module, "COPY_MIN", 10)  # chunks go by COPY on PostgreSQL, as imports do
    application_ = DualRandom(database_url)
    application_.recorder.max_notification_id()
    yield application_
    application_.close()


def rows(codes: list[str], **over: str) -> list[tuple[int, dict[str, Any]]]:
    return [
        (i + 2, {"credit_code": c, "name": f"获嘉县示例企业{i}有限公司", "county": "获嘉县", "industry": "化工",
                 "supervision_class": "general", "risk_class": "B", "tags": "", **over})
        for i, c in enumerate(codes)
    ]


def problem_rows(problems: list[FieldProblem]) -> list[int]:
    """The rows the problems name, in order; every problem must name its row."""
    rows = [p.row for p in problems]
    assert None not in rows, problems
    return sorted(r for r in rows if r is not None)


def count_events(database_url: str) -> int:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM dualrandom_events")).scalar_one())
    finally:
        engine.dispose()


def test_a_large_import_stores_what_a_small_one_does(app: DualRandom, database_url: str) -> None:
    codes = [credit_code() for _ in range(150)]
    first = app.import_entries("target", rows(codes[:60]), CommandContext(SYSTEM, correlation_id="imp-1"))
    assert (first.created, first.events) == (60, 60)
    changed = rows(codes)
    for _, r in changed[:30]:
        r["risk_class"] = "D"  # 30 updates, 30 unchanged, 90 new
    result = app.import_entries("target", changed, CommandContext(SYSTEM, correlation_id="imp-2"))
    assert (result.created, result.updated, result.unchanged, result.events) == (90, 30, 30, 120)
    assert count_events(database_url) == 180
    assert result.position == app.recorder.max_notification_id()
    histories = [app.history("target", entry_id("target", c), ADMIN) for c in codes]
    second = [h for hist in histories for h in hist if h["meta"]["correlation_id"] == "imp-2"]
    assert len(second) == 120
    assert len({h["meta"]["causation_id"] for h in second}) == 1  # one command, one causation id
    assert {h["meta"]["command"] for h in second} == {"import_target"}
    assert {(h["meta"]["aggregate"], h["meta"]["owner"]) for h in second} == {("target", "shared")}
    # positions follow the file's order
    order = [h["position"] for hist in histories for h in hist if h["meta"]["correlation_id"] == "imp-2"]
    assert order == sorted(order)
    assert app.load("target", entry_id("target", codes[0])).data["risk_class"] == "D"


def test_a_bad_row_in_a_late_chunk_stores_nothing_and_every_bad_row_is_listed(
    app: DualRandom, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    codes = [credit_code() for _ in range(200)]
    app.import_entries("target", rows(codes[100:]), CommandContext(SYSTEM))
    before = count_events(database_url)
    change = Target.change
    bad = {codes[150], codes[190]}  # rows in the third and fourth chunk of the streaming import

    def failing(self: Target, data: dict[str, Any], row: int | None = None) -> dict[str, Any]:
        if self.data["credit_code"] in bad:
            raise InvalidInputError([FieldProblem("name", "test", "refused by the test", row)])
        return change(self, data, row)

    monkeypatch.setattr(Target, "change", failing)
    with pytest.raises(InvalidInputError) as caught:
        app.import_entries("target", rows(codes, risk_class="C"), CommandContext(SYSTEM))
    assert problem_rows(caught.value.problems) == [152, 192]
    assert count_events(database_url) == before  # the first chunks were inserted, then rolled back
    # the table lock is gone and the store takes writes
    monkeypatch.setattr(Target, "change", change)
    assert app.import_entries("target", rows(codes[:10]), CommandContext(SYSTEM)).created == 10


def test_an_entry_stored_meanwhile_makes_the_import_a_conflict(
    app: DualRandom, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    codes = [credit_code() for _ in range(120)]
    app.import_entries("target", rows(codes[100:101]), CommandContext(SYSTEM))  # registered "meanwhile"
    before = count_events(database_url)
    monkeypatch.setattr(app, "_load_many", lambda cls, ids, replayed=None: {})  # as if read before that
    with pytest.raises(ConflictError):
        app.import_entries("target", rows(codes), CommandContext(SYSTEM))
    assert count_events(database_url) == before
    monkeypatch.undo()
    assert app.import_entries("target", rows(codes), CommandContext(SYSTEM)).created == 119


def test_entry_id_is_uuid5_of_kind_and_key() -> None:
    from domain.directory import NAMESPACE

    for kind, key in (("target", credit_code()), ("inspector", "hj-eeb/EEB0001"), ("item", "部门/编码"), ("x", "")):
        assert entry_id(kind, key) == uuid.uuid5(NAMESPACE, f"{kind}:{key}")


def inspector_rows(n: int, department: str = "hj-eeb", first: int = 0) -> list[tuple[int, dict[str, Any]]]:
    return [
        (i + 2, {"department": department, "staff_id": f"S{first + i:05d}", "name": "张伟", "certificate_no": "豫环001",
                 "certificate_expiry": "2030-01-01"})
        for i in range(n)
    ]


def test_bad_rows_after_inserted_chunks_are_all_listed_and_nothing_is_stored(
    app: DualRandom, database_url: str
) -> None:
    codes = [credit_code() for _ in range(200)]
    file = rows(codes)
    file[150][1]["credit_code"] = codes[150][:-1] + ("0" if codes[150][-1] != "0" else "1")  # wrong check digit
    file[190][1]["credit_code"] = codes[3]  # repeats row 5
    file[195][1]["risk_class"] = "Z"
    with pytest.raises(InvalidInputError) as caught:
        app.import_entries("target", file, CommandContext(SYSTEM))
    assert sorted((p.row, p.rule) for p in caught.value.problems) == [
        (152, "check_digit"), (192, "duplicate"), (197, "choice")]
    assert count_events(database_url) == 0


def test_a_forbidden_row_late_in_the_file_is_403_before_bad_rows_and_nothing_is_stored(
    app: DualRandom, database_url: str
) -> None:
    planner = CommandContext(Actor("p", "hj-eeb", ("planner",)))
    file = inspector_rows(100) + inspector_rows(20, department="hj-amr", first=100)
    file = [(i + 2, r) for i, (_, r) in enumerate(file)]
    file[10][1]["certificate_expiry"] = "not a date"
    with pytest.raises(application.PermissionDeniedError) as caught:
        app.import_entries("inspector", file, planner)
    assert problem_rows(caught.value.problems) == list(range(102, 122))
    assert count_events(database_url) == 0
    assert app.import_entries("inspector", inspector_rows(100), planner).created == 100
