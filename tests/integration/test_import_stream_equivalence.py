"""A file imported as a stream (``iter_file``, chunk after chunk) stores exactly what the same file imported as a
list (``parse_file``, the small path) stores: the same events in the same order, the same answer, the same
problems; random small files with bad rows, repeated keys, unchanged and changed rows (SQLite files)."""

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import services.application as application
from domain.access import SYSTEM
from domain.errors import DomainError
from services.application import CommandContext, DualRandom
from services.infra.imports import iter_file, parse_file
from tests.support.builders import credit_code

CODES = [credit_code(900_000 + i) for i in range(60)]
HEADER = ["统一社会信用代码", "企业名称", "县区", "行业", "监管类别", "信用风险等级"]
BASE = [[c, f"获嘉县示例企业{i}有限公司", "获嘉县", "化工", "一般", "A"] for i, c in enumerate(CODES[:6])]

row = st.tuples(
    # mostly keys of the base (unchanged or changed rows) or new ones; now and then a bad check digit or none
    st.integers(0, 39).map(lambda i: CODES[i] if i < 38 else ("91410724MA0000000X", "")[i - 38]),
    st.integers(0, 19).map(lambda i: "Z" if i == 0 else "" if i == 1 else "AB"[i % 2]),  # Z: not a risk class
    st.booleans(),  # the base row's name, or another one
)


def csv_bytes(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows([HEADER, *rows])
    return buf.getvalue().encode("utf-8")


def outcome(app: DualRandom, rows: Any) -> tuple[Any, ...]:
    ctx = CommandContext(SYSTEM, correlation_id="imp", causation_id="cause")
    try:
        r = app.import_entries("target", rows, ctx)
    except DomainError as exc:
        return type(exc).__name__, exc.message, [p.as_dict() for p in exc.problems]
    return "ok", r.created, r.updated, r.unchanged, r.events, r.position


def events(url: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text(
                "SELECT id, originator_id, originator_version, topic, state FROM dualrandom_events ORDER BY id"
            )).all()
    finally:
        engine.dispose()
    out = []
    for position, oid, version, topic, state in found:
        data = json.loads(bytes(state))
        data.pop("timestamp", None)
        out.append((position, str(oid), version, topic, data))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    # half the files without repeated keys (so that more of them store), half with whatever comes
    file=st.one_of(st.lists(row, min_size=1, max_size=14, unique_by=lambda r: r[0]),
                   st.lists(row, min_size=1, max_size=14)),
    base=st.booleans(),
)
def test_a_streamed_import_stores_what_the_list_import_stores(
    file: list[tuple[str, str, bool]], base: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = csv_bytes(
        [[code, f"获嘉县示例企业{CODES.index(code) if same and code in CODES else 'X'}有限公司", "获嘉县", "化工",
          "一般", risk] for code, risk, same in file]
    )
    answers: list[tuple[Any, ...]] = []
    stored: list[list[tuple[Any, ...]]] = []
    for name, chunk, rows in (
        ("list", 10**6, lambda: parse_file("target", content, "t.csv")),
        ("stream", 3, lambda: iter_file("target", io.BytesIO(content), "t.csv")),
    ):
        url = f"sqlite:///{tmp_path / f'{name}-{len(answers)}-{id(file)}.db'}"
        app = DualRandom(url)
        try:
            if base:
                app.import_entries("target", parse_file("target", csv_bytes(BASE), "b.csv"),
                                   CommandContext(SYSTEM, correlation_id="base", causation_id="base"))
            monkeypatch.setattr(application, "_PIPELINE_CHUNK", chunk)
            answers.append(outcome(app, rows()))
            monkeypatch.undo()
        finally:
            app.close()
        stored.append(events(url))
        Path(url.removeprefix("sqlite:///")).unlink()
    assert answers[0] == answers[1]
    assert stored[0] == stored[1]
