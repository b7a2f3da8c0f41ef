"""``GET /follow-ups/{id}/verification`` checks what the standalone verifier checks (docs/verifying-a-draw.md
section 17), on real inspections and a real draw made through the API (SQLite and PostgreSQL): each stored event
edited as an insider could (the round's ``Planned``, an inspection's findings day) is the same first difference
for the server and for ``docs/verifier/verify_draws.py`` run on the audit export."""

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.runtime import Runtime
from tests.e2e.test_draw_verifier import FUCAI_150, _export, _run, county  # noqa: F401 (the fixture)
from tests.e2e.test_http_draws import _ok
from tests.e2e.test_http_execution import _enter, _one_department

PLANNED = "domain.execution.followup:FollowUpRound.Planned"
FINDINGS = "domain.execution.inspection:Inspection.FindingsRecorded"


@contextmanager
def edited(rt: Runtime, where: Any, change: Any) -> Iterator[None]:
    """The stored event matching ``where`` with its state changed by ``change`` (in place), restored after."""
    table = rt.app.recorder.events_record_cls.__table__  # type: ignore[attr-defined]
    with rt.engine.begin() as conn:
        row = conn.execute(sa.select(table.c.id, table.c.state).where(where(table)).order_by(table.c.id.desc())
                           ).first()
        assert row is not None
        state = json.loads(bytes(row.state))
        change(state)
        conn.execute(table.update().where(table.c.id == row.id).values(state=json.dumps(state).encode()))
    try:
        yield
    finally:
        with rt.engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == row.id).values(state=bytes(row.state)))


@pytest.fixture
def drawn_round(county: Runtime, client: Any, auth: Any) -> dict[str, Any]:  # noqa: F811
    _, visits, items = _one_department(client, auth, period="2024Q2")
    for v in visits[:4]:
        _enter(client, auth, v, items[0], result="no_problem", day="2024-05-10")
    moved = _enter(client, auth, visits[4], items[0], result="no_problem", day="2024-07-02")  # after the period
    eeb = auth("hj-eeb", "planner")
    planned = _ok(client.post("/api/v1/follow-ups", json={"period": "2024Q2", "ratio": "0.5",
                                                          "entropy_source": FUCAI_150}, headers=eeb), 201)
    _ok(client.post(f"/api/v1/follow-ups/{planned['id']}/draw",
                    json={"external_entropy": "159", "entropy_source": FUCAI_150}, headers=eeb))
    view = _ok(client.get(f"/api/v1/follow-ups/{planned['id']}", headers=eeb))
    return {"id": planned["id"], "pool": view["pool"], "quota": view["quota"], "moved": moved,
            "moved_target": visits[4]["target_id"]}


def _server(client: Any, auth: Any, rid: str) -> dict[str, Any]:
    return _ok(client.get(f"/api/v1/follow-ups/{rid}/verification", headers=auth("hj-audit", "auditor")))


def _verifier(client: Any, auth: Any, tmp_path: Path, rid: str) -> str:
    _export(client, auth, tmp_path)
    out = _run(tmp_path / "export.ndjson").stdout
    [line] = [x for x in out.splitlines() if rid in x]
    return line


def _planned(rid: str) -> Any:
    return lambda t: sa.and_(t.c.originator_id == uuid.UUID(rid), t.c.topic == PLANNED)


def test_the_server_reproduces_the_round_as_the_verifier_does(county, client, auth, tmp_path,  # noqa: F811
                                                              drawn_round) -> None:
    rid = drawn_round["id"]
    assert len(drawn_round["pool"]) == 4 and drawn_round["moved_target"] not in drawn_round["pool"]
    assert _server(client, auth, rid) == {"id": rid, "match": True, "first_difference": None, "skipped": False}
    assert _verifier(client, auth, tmp_path, rid) == f"OK        follow-up {rid} round 1"


def _quota(state: dict[str, Any]) -> None:
    state["quota"] = 1


def _pool(state: dict[str, Any]) -> None:
    state["pool"] = state["pool"][1:]


def _downgraded(state: dict[str, Any]) -> None:  # as if planned before sources were declared (version 2)
    del state["entropy_source"]
    state["class_version"] = 2


def _source_dropped(state: dict[str, Any]) -> None:  # the field removed, the version left as it was
    del state["entropy_source"]


def _text_position(state: dict[str, Any]) -> None:
    state["position"] = str(state["position"])


@pytest.mark.parametrize(("change", "expected"), [
    (_quota, "quota: planned 1, recomputed 2"),
    (_pool, "pool: recorded 3 ids, recomputed 4; first difference at [0]: recorded {p[1]!r}, recomputed {p[0]!r}"),
    (_downgraded, f"entropy_source: the draw names '{FUCAI_150}', the round declared none (planned before sources "
                  "were declared)"),
    (_source_dropped, f"entropy_source: the draw names '{FUCAI_150}', the round declared none (planned before "
                      "sources were declared)"),
    (_text_position, "position: '{position}' is not an integer"),
])
def test_an_edited_planned_event_is_the_same_difference_for_both(county, client, auth, tmp_path,  # noqa: F811
                                                                 drawn_round, change, expected) -> None:
    rid = drawn_round["id"]
    positions: list[int] = []

    def edit(state: dict[str, Any]) -> None:
        positions.append(state["position"])
        change(state)
    with edited(county, _planned(rid), edit):
        text = expected.format(p=drawn_round["pool"], position=positions[0])
        assert _server(client, auth, rid) == {"id": rid, "match": False, "first_difference": text, "skipped": False}
        assert _verifier(client, auth, tmp_path, rid) == f"MISMATCH  follow-up {rid} round 1: {text}"
    assert _server(client, auth, rid)["match"] is True


def test_an_inspection_day_edited_before_the_read_is_a_pool_difference(county, client, auth, tmp_path,  # noqa: F811
                                                                        drawn_round) -> None:
    """The server re-derives the pool from the inspection events, not from its read model or the recorded pool:
    the inspection dated after the period, re-dated inside it, joins the recomputed pool."""
    rid = drawn_round["id"]
    inside = sorted([*drawn_round["pool"], drawn_round["moved_target"]], key=str.encode)
    at = inside.index(drawn_round["moved_target"])
    shown = [repr(x[at]) if at < len(x) else "nothing" for x in (drawn_round["pool"], inside)]
    text = f"pool: recorded 4 ids, recomputed 5; first difference at [{at}]: recorded {shown[0]}, recomputed {shown[1]}"
    where = lambda t: sa.and_(t.c.originator_id == uuid.UUID(drawn_round["moved"]),  # noqa: E731
                              t.c.topic == FINDINGS)
    with edited(county, where, lambda s: s.update(inspected_on="2024-06-30")):
        assert _server(client, auth, rid)["first_difference"] == text
        assert _verifier(client, auth, tmp_path, rid) == f"MISMATCH  follow-up {rid} round 1: {text}"
