"""No single insider steers a follow-up draw (执法回访): the round declares its entropy source when it is planned,
the draw takes only that source's value, and it waits for a published checkpoint covering the round's pool, as a
task's draw does; rounds planned before sources were declared still load, draw and verify. Over HTTP, on SQLite
and PostgreSQL."""

import json
import uuid
from typing import Any

import sqlalchemy as sa

from services.infra.nats_embedded import EmbeddedNats
from services.runtime import Runtime
from tests.e2e.test_http_execution import _enter, _one_department
from tests.integration.test_draw_checkpoint_gate import _publish
from tests.support.nats import nats_server  # noqa: F401 - fixture

SOURCE = "福彩3D 2024年第150期开奖号码"


def _ok(r: Any, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()


def _inspected(client: Any, auth: Any, n: int = 11) -> None:
    """``n`` visits of hj-eeb inspected in 2024Q2: the pool of a follow-up round for the quarter."""
    _, visits, items = _one_department(client, auth, period="2024Q2")
    for v in visits[:n]:
        _enter(client, auth, v, items[0], result="no_problem", day="2024-05-10")


def _version(client: Any, h: dict[str, str], rid: str) -> int:
    return int(_ok(client.get(f"/api/v1/follow-ups/{rid}", headers=h))["version"])


def test_a_follow_up_draw_takes_only_the_declared_sources_value(demo, client, auth) -> None:
    _inspected(client, auth)
    eeb = auth("hj-eeb", "planner")
    for source, status in (("福彩3D\u0000", 422), ("号" * 201, 422), (["福彩3D"], 400)):
        r = client.post("/api/v1/follow-ups", json={"period": "2024Q2", "entropy_source": source}, headers=eeb)
        assert r.status_code == status, r.text
        assert r.json()["errors"][0]["field"] == "entropy_source", r.text
    assert _ok(client.get("/api/v1/follow-ups", headers=eeb))["items"] == []  # nothing recorded

    planned = _ok(client.post("/api/v1/follow-ups", json={"period": "2024Q2", "entropy_source": f" {SOURCE} "},
                              headers=eeb), 201)
    assert planned["entropy_source"] == SOURCE  # declared with the commitment, before anyone knows the value
    rid = planned["id"]
    view = _ok(client.get(f"/api/v1/follow-ups/{rid}", headers=auth("hj-audit", "auditor")))
    assert view["entropy_source"] == SOURCE and view["draw"] is None and view["position"] < planned["position"]

    before = _version(client, eeb, rid)
    for body, field, rule in (
        ({"external_entropy": "159", "entropy_source": "福彩3D 2024年第151期开奖号码"}, "entropy_source", "declared_source"),
        ({"external_entropy": "159"}, "entropy_source", "declared_source"),
        ({"external_entropy": "1 5 9", "entropy_source": SOURCE}, "external_entropy", "source_format"),
        ({"external_entropy": "159\n", "entropy_source": SOURCE}, "external_entropy", "source_format"),
        ({"external_entropy": "", "entropy_source": SOURCE}, "external_entropy", "required"),
    ):
        r = client.post(f"/api/v1/follow-ups/{rid}/draw", json=body, headers=eeb)
        assert r.status_code == 422, r.text
        assert (r.json()["errors"][0]["field"], r.json()["errors"][0]["rule"]) == (field, rule)
    r = client.post(f"/api/v1/follow-ups/{rid}/draw", json={"external_entropy": "159", "entropy_source": SOURCE},
                    headers=auth("hj-amr", "planner"))
    assert r.status_code == 403  # another department's planner
    assert _version(client, eeb, rid) == before  # nothing recorded, the seed still secret

    drawn = _ok(client.post(f"/api/v1/follow-ups/{rid}/draw", json={"external_entropy": "159", "entropy_source": SOURCE},
                            headers=eeb))
    assert len(drawn["selected"]) == 2
    record = _ok(client.get(f"/api/v1/follow-ups/{rid}", headers=eeb))["draw"]
    assert record["entropy_source"] == SOURCE and record["external_entropy"] == "159"
    assert _ok(client.get(f"/api/v1/follow-ups/{rid}/verification", headers=auth("hj-audit", "auditor")))["match"]
    # The printed record (执法回访记录) shows the declared source and the value it published.
    page = client.get(f"/api/v1/follow-ups/{rid}/documents/record", params={"format": "html"}, headers=eeb)
    assert page.status_code == 200, page.text
    assert "公共随机源" in page.text and SOURCE in page.text and "随机源公布值" in page.text and "159" in page.text


def test_a_round_that_declared_no_source_takes_no_external_entropy(demo, client, auth) -> None:
    _inspected(client, auth, 3)
    eeb = auth("hj-eeb", "planner")
    rid = _ok(client.post("/api/v1/follow-ups", json={"period": "2024Q2"}, headers=eeb), 201)["id"]
    r = client.post(f"/api/v1/follow-ups/{rid}/draw", json={"external_entropy": "whatever suits me"}, headers=eeb)
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "no_declared_source"
    _ok(client.post(f"/api/v1/follow-ups/{rid}/draw", json={}, headers=eeb))
    view = _ok(client.get(f"/api/v1/follow-ups/{rid}", headers=eeb))
    assert view["entropy_source"] == "" and view["draw"]["external_entropy"] == ""


def test_the_follow_up_draw_waits_for_a_published_checkpoint_covering_its_pool(
    demo: Runtime, client: Any, auth: Any, nats_server: EmbeddedNats,  # noqa: F811
) -> None:
    _inspected(client, auth, 3)
    demo.follow_ups.gate.enabled = True  # the production default (this test runtime publishes nothing yet)
    assert demo.target_draws.gate is demo.follow_ups.gate  # one gate, one setting, for every draw
    eeb = auth("hj-eeb", "planner")
    planned = _ok(client.post("/api/v1/follow-ups", json={"period": "2024Q2", "entropy_source": SOURCE},
                              headers=eeb), 201)
    rid = planned["id"]
    # Planning asked for a checkpoint: one is signed already, covering the Planned event, but not yet published.
    pending = demo.checkpointer.pending()
    assert pending and pending[-1].position >= planned["position"]
    before = _version(client, eeb, rid)
    body = {"external_entropy": "159", "entropy_source": SOURCE}
    r = client.post(f"/api/v1/follow-ups/{rid}/draw", json={**body, "external_entropy": "1 5 9"}, headers=eeb)
    assert r.status_code == 422  # a wrong value is refused as such, before the gate
    r = client.post(f"/api/v1/follow-ups/{rid}/draw", json=body, headers=eeb)
    assert r.status_code == 409 and int(r.headers["retry-after"]) > 0, r.text
    assert r.json()["errors"][0]["field"] == "checkpoint" and f"log position {planned['position']}" in r.text
    assert _version(client, eeb, rid) == before

    published, msg = _publish(demo, nats_server.url)
    assert published >= 1 and msg.subject == "dualrandom.audit.checkpoints"
    drawn = _ok(client.post(f"/api/v1/follow-ups/{rid}/draw", json=body, headers=eeb))
    assert len(drawn["selected"]) == 1
    assert _ok(client.get(f"/api/v1/follow-ups/{rid}/verification", headers=eeb))["match"] is True


def test_a_round_planned_before_sources_were_declared_still_loads_draws_and_verifies(demo, client, auth) -> None:
    """Events are forever: a ``FollowUpRound.Planned`` of version 2 (no ``entropy_source``) is upcast with the
    source ``None``: its draw takes any text, as it did then, its record names no source, and it verifies."""
    _inspected(client, auth, 3)
    eeb = auth("hj-eeb", "planner")
    rid = _ok(client.post("/api/v1/follow-ups", json={"period": "2024Q2"}, headers=eeb), 201)["id"]
    table = demo.app.recorder.events_record_cls.__table__
    with demo.engine.begin() as conn:
        row = conn.execute(sa.select(table.c.id, table.c.state).where(
            table.c.originator_id == uuid.UUID(rid), table.c.topic.like("%FollowUpRound.Planned"))).one()
        state = json.loads(bytes(row.state))
        assert state.pop("class_version") == 3 and state.pop("entropy_source") == ""
        state["class_version"] = 2
        conn.execute(table.update().where(table.c.id == row.id).values(state=json.dumps(state).encode()))
    view = _ok(client.get(f"/api/v1/follow-ups/{rid}", headers=eeb))
    assert view["entropy_source"] is None
    _ok(client.post(f"/api/v1/follow-ups/{rid}/draw", json={"external_entropy": "福彩3D-2024150"}, headers=eeb))
    record = _ok(client.get(f"/api/v1/follow-ups/{rid}", headers=eeb))["draw"]
    assert record["external_entropy"] == "福彩3D-2024150" and "entropy_source" not in record
    assert _ok(client.get(f"/api/v1/follow-ups/{rid}/verification", headers=eeb))["match"] is True


def test_a_second_plan_of_the_period_changes_nothing_and_the_round_still_draws(demo, client, auth) -> None:
    """A double click on 'plan' (or a retry) answers 409 and keeps the recorded round drawable: seeds are kept under
    their commitment, so neither a refused second plan nor a racing one can replace the seed of the recorded one."""
    import secrets

    _inspected(client, auth, 3)
    eeb = auth("hj-eeb", "planner")
    body = {"period": "2024Q2", "entropy_source": SOURCE}
    rid = _ok(client.post("/api/v1/follow-ups", json=body, headers=eeb), 201)["id"]
    before = _version(client, eeb, rid)
    for _ in range(3):
        r = client.post("/api/v1/follow-ups", json=body, headers=eeb)
        assert r.status_code == 409 and rid in r.text, r.text
        assert (r.json()["errors"][0]["field"], r.json()["errors"][0]["rule"]) == ("period", "exists")
    assert client.post("/api/v1/follow-ups", json=body, headers=auth("hj-eeb", "inspector")).status_code == 403
    # a racing plan that lost at the store had kept its own seed first: it is an orphan nothing reads
    demo.follow_ups.seeds.keep(uuid.UUID(rid), secrets.token_bytes(32))
    assert _version(client, eeb, rid) == before
    _ok(client.post(f"/api/v1/follow-ups/{rid}/draw", json={"external_entropy": "159", "entropy_source": SOURCE},
                    headers=eeb))
    assert _ok(client.get(f"/api/v1/follow-ups/{rid}/verification", headers=eeb))["match"] is True
    # the draw forgot every seed kept for the round
    assert demo.follow_ups.seeds.seed(uuid.UUID(rid), _ok(client.get(f"/api/v1/follow-ups/{rid}", headers=eeb))
                                      ["commitment"]) is None


def test_a_racing_commitments_seed_does_not_replace_the_recorded_one(demo, client, auth) -> None:
    """The task's commitment keeps its seed the same way (two commits racing: one is recorded)."""
    import secrets

    eeb = auth("hj-eeb", "planner")
    items = [i["id"] for i in _ok(client.get("/api/v1/items", params={"department": "hj-eeb", "limit": 5},
                                             headers=eeb))["items"]]
    tid = _ok(client.post("/api/v1/tasks", headers=eeb, json={
        "period": "2024Q4", "reason": "专项", "scope": {"county": "获嘉县", "supervision_classes": ["key"]},
        "rules": [{"supervision_class": "key", "full": True}], "participants": {"hj-eeb": items[:1]}}), 201)["id"]
    _ok(client.post(f"/api/v1/tasks/{tid}/commitment", json={"entropy_source": SOURCE}, headers=eeb))
    demo.target_draws.seeds.keep(uuid.UUID(tid), secrets.token_bytes(32))  # the loser's seed, kept first
    _ok(client.post(f"/api/v1/tasks/{tid}/freeze", json={}, headers=eeb))
    _ok(client.post(f"/api/v1/tasks/{tid}/draw", json={"external_entropy": "159", "entropy_source": SOURCE},
                    headers=eeb))
    assert _ok(client.get(f"/api/v1/tasks/{tid}/draw/verification", headers=eeb))["match"] is True


def test_an_inspector_reads_only_the_selected_targets_they_did_not_inspect(demo, client, auth) -> None:
    """Who inspected a firm does not learn that it will be called back: the round's pool, draw record (with the
    seed) and the selected targets they inspected are hidden from inspectors, and they cannot verify the draw."""
    _, visits, items = _one_department(client, auth, period="2024Q2")
    inspected_by: dict[str, str] = {}
    for v in visits[:11]:
        _enter(client, auth, v, items[0], result="no_problem", day="2024-05-10")
        inspected_by[v["target_id"]] = v["teams"]["hj-eeb"]["members"][0]
    eeb = auth("hj-eeb", "planner")
    rid = _ok(client.post("/api/v1/follow-ups", json={"period": "2024Q2", "entropy_source": SOURCE},
                          headers=eeb), 201)["id"]
    _ok(client.post(f"/api/v1/follow-ups/{rid}/draw", json={"external_entropy": "159", "entropy_source": SOURCE},
                    headers=eeb))
    whole = _ok(client.get(f"/api/v1/follow-ups/{rid}", headers=eeb))
    assert whole["whole_round"] is True and whole["draw"] is not None and len(whole["selected"]) == 2
    for reader in (auth("hj-eeb", "reviewer"), auth("hj-audit", "auditor")):
        assert _ok(client.get(f"/api/v1/follow-ups/{rid}", headers=reader))["selected"] == whole["selected"]
    target = whole["selected"][0]
    who = inspected_by[target]
    mine = {t for t, m in inspected_by.items() if m == who}
    seen = _ok(client.get(f"/api/v1/follow-ups/{rid}", headers=auth("hj-eeb", "inspector", subject=who)))
    assert seen["whole_round"] is False and seen["draw"] is None and seen["pool"] is None
    assert target not in seen["selected"] and set(seen["selected"]) == set(whole["selected"]) - mine
    r = client.get(f"/api/v1/follow-ups/{rid}/verification", headers=auth("hj-eeb", "inspector", subject=who))
    assert r.status_code == 403
