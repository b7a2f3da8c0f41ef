"""The standalone verifier (docs/verifier/verify_draws.py, standard library only) run as a subprocess on the
audit export of real draws made through the API (SQLite and PostgreSQL): every round reproduces, and a
tampered export is rejected with the first difference."""

import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from domain.access import SYSTEM
from domain.execution.followup import FollowUpRound
from services.api.app import create_app
from services.application import CommandContext
from services.cli.demo import load_demo
from services.runtime import Runtime
from tests.e2e.test_http_draws import _items, _ok, _small_task

VERIFIER = Path(__file__).resolve().parents[2] / "docs" / "verifier" / "verify_draws.py"


@pytest.fixture
def county(runtime: Runtime) -> Runtime:
    load_demo(runtime.app, CommandContext(actor=SYSTEM))
    runtime.runner.catch_up()
    return runtime


def _run(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-I", str(VERIFIER), str(path), *args], capture_output=True, text=True,
                          timeout=120, check=False)


def _export(client: Any, auth: Any, tmp_path: Path, name: str = "export.ndjson") -> list[dict[str, Any]]:
    r = client.get("/api/v1/audit/export", headers=auth("hj-audit", "auditor"))
    assert r.status_code == 200, r.text
    (tmp_path / name).write_text(r.text, encoding="utf-8")
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def _write(tmp_path: Path, items: list[dict[str, Any]], name: str) -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
    return path


SOURCE = "福彩3D 2024年第059期开奖号码"
FUCAI_150 = "福彩3D 2024年第150期开奖号码"


def _frozen(items: list[dict[str, Any]], task_id: str) -> dict[str, Any]:
    return [i for i in items if i["topic"] == "domain.tasks.task:Task.PoolFrozen" and i["aggregate_id"] == task_id
            ][-1]["data"]


def _task(client: Any, auth: Any, **body: Any) -> dict[str, Any]:
    """One hj-eeb task of its own, drawn through the API with a declared entropy source."""
    eeb = auth("hj-eeb", "planner")
    task = _ok(client.post("/api/v1/tasks", headers=eeb, json={
        "reason": "专项整治", "scope": {"county": "获嘉县", "supervision_classes": ["key"]}, **body}), 201)
    for step, data in (("commitment", {"entropy_source": SOURCE}), ("freeze", {}),
                       ("draw", {"external_entropy": "271", "entropy_source": SOURCE})):
        _ok(client.post(f"/api/v1/tasks/{task['id']}/{step}", json=data, headers=eeb))
    return task


def _draws(county: Any, client: Any, auth: Any) -> dict[str, Any]:
    eeb = auth("hj-eeb", "planner")
    targets = _ok(client.get("/api/v1/targets", params={"limit": 4}, headers=eeb))["items"]
    # A county and an industry change before the freeze (DetailsUpdated), a reclassification, a tag, a closing.
    admin = CommandContext(actor=SYSTEM)
    county.app.update("target", uuid.UUID(targets[0]["id"]), {"county": "辉县市", "industry": "食品"}, admin)
    county.app.update("target", uuid.UUID(targets[1]["id"]), {"supervision_class": "key", "tags": ["危化品"]}, admin)
    county.app.update("target", uuid.UUID(targets[2]["id"]), {"status": "closed"}, admin)
    first = _small_task(client, auth, "hj-eeb")  # round 1, then withdrawn and drawn again: round 2
    _ok(client.post(f"/api/v1/tasks/{first['id']}/redraw", json={"reason": "名录库未及时更新"}, headers=eeb))
    for step, body in (("commitment", {"entropy_source": SOURCE}), ("freeze", {}),
                       ("draw", {"external_entropy": "314", "entropy_source": SOURCE})):
        _ok(client.post(f"/api/v1/tasks/{first['id']}/{step}", json=body, headers=eeb))
    items = list(_items(client, eeb, "hj-eeb").values())
    case = _ok(client.post("/api/v1/tasks", headers=eeb, json={
        "period": "2024Q3", "origin": "case", "reason": "在线监测数据异常", "participants": {"hj-eeb": items[:1]}}), 201)
    _ok(client.post(f"/api/v1/tasks/{case['id']}/targets", json={"targets": [targets[3]["id"]]}, headers=eeb))
    _small_task(client, auth, "hj-eeb", period="2024Q3",  # weighted, excluding what the others drew
                scope={"county": "获嘉县"}, rules=[{"supervision_class": c, "min_ratio": "20%"}
                                                  for c in ("key", "general", "special")],
                options={"weighted": True, "risk_weights": {"A": 8, "B": 4, "C": 2, "D": 1}})
    # A joint task led by hj-amr, hj-eeb bringing one item (items[1]): seed shares, algorithm version 2.
    amr = list(_items(client, auth("hj-amr", "planner"), "hj-amr").values())
    joint = _small_task(client, auth, "hj-amr", participants={"hj-eeb": [items[1]]}, period="2024Q4")
    assert amr
    # Per visit: hj-eeb's own task on items[1] and items[2]: the joint task drew its targets for items[1] only,
    # so the rest of the visit is to be done and they stay in the pool (the old rule excluded them).
    visit = _task(client, auth, period="2024Q1", participants={"hj-eeb": items[1:3]},
                  rules=[{"supervision_class": "key", "min_ratio": "50%"}])
    # Full wins: items[0] again, key 100%: what the first task drew for items[0] stays in, kept by the rule.
    full = _small_task(client, auth, "hj-eeb", period="2024Q1")
    return {"first": first, "joint": joint, "visit": visit, "full": full}


def test_the_verifier_reproduces_every_round_and_rejects_a_tampered_export(county, client, auth, tmp_path) -> None:
    tasks = _draws(county, client, auth)
    items = _export(client, auth, tmp_path)
    ok = _run(tmp_path / "export.ndjson")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("OK ") == 6 and "6 checks, 6 reproduce, 0 do not" in ok.stdout
    assert _run(tmp_path / "export.ndjson", "--year", "2023").stdout.startswith("0 checks")
    # The rounds exercise each pool rule: per-visit exclusion, full-rule keep, weighted strata, seed shares.
    visit, full = _frozen(items, tasks["visit"]["id"]), _frozen(items, tasks["full"]["id"])
    assert visit["excluded"]["inspected_this_year"] == 0 and visit["excluded"]["kept_by_full_rule"] == 0
    assert full["excluded"]["kept_by_full_rule"] > 0 and full["excluded"]["inspected_this_year"] == 0
    drawn = [i for i in items if i["topic"] == "domain.tasks.task:Task.TargetsDrawn"]
    records = {i["aggregate_id"]: i["data"]["record"] for i in drawn}
    joint = records[tasks["joint"]["id"]]
    assert joint["algorithm_version"] == 2 and sorted(joint["seed_shares"]) == ["hj-amr", "hj-eeb"]
    weighted = next(r for r in records.values() if r["weighted"])
    assert weighted["strata"] and all("/" not in name for name in weighted["strata"])  # by supervision class

    # 0. The option told apart: the per-visit task read as one opened before the option no longer verifies.
    tampered = json.loads(json.dumps(items))
    opened = next(i for i in tampered if i["topic"] == "domain.tasks.task:Task.Opened"
                  and i["aggregate_id"] == tasks["full"]["id"])
    del opened["data"]["options"]["exclusion_per_visit"]
    bad = _run(_write(tmp_path, tampered, "old_rule.ndjson"))
    assert bad.returncode == 1 and f"MISMATCH  task {tasks['full']['id']} round 1: strata['key/A'].pool_size: " \
        "frozen" in bad.stdout, bad.stdout
    # 0b. A quota the rules do not give (key 50%: one more than the minimum, not set by a planner).
    tampered = json.loads(json.dumps(items))
    frozen = [i for i in tampered if i["topic"] == "domain.tasks.task:Task.PoolFrozen"
              and i["aggregate_id"] == tasks["visit"]["id"]][-1]["data"]
    name = next(n for n, v in sorted(frozen["strata"].items()) if v["quota"] < v["pool_size"])
    frozen["strata"][name]["quota"] += 1
    bad = _run(_write(tmp_path, tampered, "quota.ndjson"))
    assert bad.returncode == 1 and f"MISMATCH  task {tasks['visit']['id']} round 1: strata[{name!r}].quota: " \
        "frozen" in bad.stdout, bad.stdout
    # 1. One selected id replaced in the weighted draw's record.
    tampered = json.loads(json.dumps(items))
    record = next(i for i in tampered if i["topic"] == "domain.tasks.task:Task.TargetsDrawn"
                  and i["data"]["record"]["weighted"])["data"]["record"]
    stratum = next(s for s, v in sorted(record["strata"].items()) if v["selected"] and not v["took_all"])
    record["strata"][stratum]["selected"][0] = str(uuid.uuid4())
    bad = _run(_write(tmp_path, tampered, "selection.ndjson"))
    assert bad.returncode == 1 and f"strata[{stratum!r}].selected[0]" in bad.stdout, bad.stdout
    # 2. A DetailsUpdated before the freezes removed from the log: a target comes back into the pools.
    details = next(i for i in items if i["topic"] == "domain.directory:DirectoryEntry.DetailsUpdated"
                   and i["data"]["changes"].get("county") == "辉县市")
    bad = _run(_write(tmp_path, [i for i in items if i is not details], "details.ndjson"))
    assert bad.returncode == 1 and "pool_size: frozen" in bad.stdout, bad.stdout
    # 3. Another seed revealed than the one committed.
    tampered = json.loads(json.dumps(items))
    next(i for i in tampered if i["position"] == drawn[0]["position"])["data"]["record"]["seed"] = "00" * 32
    bad = _run(_write(tmp_path, tampered, "seed.ndjson"))
    assert bad.returncode == 1 and "commitment" in bad.stdout and bad.stdout.count("OK ") == 5
    # 4. Not an export at all.
    (tmp_path / "junk.ndjson").write_text("[1, 2]\n", encoding="utf-8")
    assert _run(tmp_path / "junk.ndjson").returncode == 2
    # 5. The chain: what was recorded before the freeze changed, the draw record left as it was.
    joint_id = tasks["joint"]["id"]
    for topic, field, expected in (
            ("SeedCommitted", "commitment", f"task {joint_id} round 1: commitment: the draw record's "),
            ("SeedCommitted", "entropy_source", f"task {joint_id} round 1: entropy_source: the draw record's "),
            ("ShareCommitted", "commitment", f"task {joint_id} round 1: share_commitments['hj-eeb']: the draw "),
            ("ShareRevealed", "share", f"task {joint_id} round 1: seed_shares['hj-eeb']: the share revealed at ")):
        tampered = json.loads(json.dumps(items))
        event = next(i for i in tampered if i["topic"] == f"domain.tasks.task:Task.{topic}"
                     and i["aggregate_id"] == joint_id and i["data"].get("department", "hj-eeb") == "hj-eeb")
        event["data"][field] = "福彩3D 另一期" if field == "entropy_source" else hashlib.sha256(b"other").hexdigest()
        bad = _run(_write(tmp_path, tampered, f"chain-{topic}-{field}.ndjson"))
        assert bad.returncode == 1 and f"MISMATCH  {expected}" in bad.stdout and \
            "6 checks, 5 reproduce, 1 do not" in bad.stdout, (topic, field, bad.stdout)


def test_input_that_is_not_an_export_exits_2_with_one_line(tmp_path) -> None:
    """Exit status 2 and one line on standard error, nothing checked: a missing file, a directory, an empty
    file, blank lines only, text, JSON that is not an export item, positions out of order."""
    cases = {"empty.ndjson": "", "blank.ndjson": "\n\n", "text.ndjson": "not json\n",
             "array.ndjson": "[1, 2]\n", "object.ndjson": '{"position": 1}\n',
             "types.ndjson": '{"position": "1", "aggregate_id": "a", "topic": "t", "data": {}}\n',
             "order.ndjson": '{"position": 2, "aggregate_id": "a", "topic": "t", "data": {}}\n'
                             '{"position": 1, "aggregate_id": "a", "topic": "t", "data": {}}\n'}
    for name, text in cases.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "latin1.ndjson").write_bytes(b"\xff\xfe\n")
    for path in [tmp_path / "missing.ndjson", tmp_path, *(tmp_path / n for n in [*cases, "latin1.ndjson"])]:
        out = _run(path)
        assert out.returncode == 2 and out.stdout == "" and "Traceback" not in out.stderr, (path, out)
        assert out.stderr.count("\n") == 1 and out.stderr.startswith(f"not an export: {path}: "), (path, out.stderr)
    # An export of events without any draw is an export: nothing to check, exit 0.
    (tmp_path / "none.ndjson").write_text('{"position": 1, "aggregate_id": "a", "topic": "t", "data": {}}\n',
                                          encoding="utf-8")
    assert _run(tmp_path / "none.ndjson").stdout == "0 checks, 0 reproduce, 0 do not\n"


def test_the_verifier_rederives_a_follow_up_pool_and_rejects_a_changed_one(county, client, auth, tmp_path) -> None:
    """Section 17 on real inspections: the pool is the targets whose last findings day lies in the period (a
    re-entry after it takes a target out), the server's and the verifier's; a changed pool or findings day is a
    mismatch naming the first differing id."""
    from tests.e2e.test_http_execution import _enter, _one_department

    _, visits, items = _one_department(client, auth, period="2024Q2")
    for v in visits[:9]:
        _enter(client, auth, v, items[0], result="no_problem", day="2024-05-10")
    _enter(client, auth, visits[9], items[0], result="no_problem", day="2024-06-30")  # the period's last day
    moved = _enter(client, auth, visits[10], items[0], result="no_problem", day="2024-05-10")
    _enter(client, auth, visits[10], items[0], result="no_problem", day="2024-07-01")  # re-entered: after it
    eeb = auth("hj-eeb", "planner")
    planned = _ok(client.post("/api/v1/follow-ups", json={"period": "2024Q2", "entropy_source": FUCAI_150},
                              headers=eeb), 201)
    inside = sorted({v["target_id"] for v in visits[:10]} - {visits[10]["target_id"]})
    assert planned["pool_size"] == len(inside) and planned["quota"] == -(-len(inside) // 10)
    _ok(client.post(f"/api/v1/follow-ups/{planned['id']}/draw",
                    json={"external_entropy": "159", "entropy_source": FUCAI_150}, headers=eeb))
    items_ = _export(client, auth, tmp_path)
    plan = next(i for i in items_ if i["topic"] == "domain.execution.followup:FollowUpRound.Planned")
    assert plan["data"]["pool"] == inside and plan["data"]["position"] < plan["position"]
    ok = _run(tmp_path / "export.ndjson", "--year", "2024")
    assert ok.returncode == 0 and f"OK        follow-up {planned['id']} round 1\n" in ok.stdout, ok.stdout
    tampered = json.loads(json.dumps(items_))
    plan = next(i for i in tampered if i["topic"] == "domain.execution.followup:FollowUpRound.Planned")
    plan["data"]["pool"] = plan["data"]["pool"][1:]  # one inspected target left out of the pool
    bad = _run(_write(tmp_path, tampered, "follow_up.ndjson"))
    assert bad.returncode == 1 and f"MISMATCH  follow-up {planned['id']} round 1: pool: recorded " \
        f"{len(inside) - 1} ids, recomputed {len(inside)}; first difference at [0]: recorded '{inside[1]}', " \
        f"recomputed '{inside[0]}'" in bad.stdout, bad.stdout
    tampered = json.loads(json.dumps(items_))  # the re-entry dated inside the period: its target joins the pool
    last = [i for i in tampered if i["aggregate_id"] == moved
            and i["topic"] == "domain.execution.inspection:Inspection.FindingsRecorded"][-1]
    last["data"]["inspected_on"] = "2024-06-01"
    bad = _run(_write(tmp_path, tampered, "moved.ndjson"))
    assert bad.returncode == 1 and f"MISMATCH  follow-up {planned['id']} round 1: pool: recorded " \
        f"{len(inside)} ids, recomputed {len(inside) + 1}" in bad.stdout, bad.stdout


def test_a_version_1_follow_up_round_reads_with_no_position_and_still_verifies(county, client, auth,
                                                                             tmp_path) -> None:
    """Events are forever: a ``FollowUpRound.Planned`` stored before version 2 (no ``position``) is upcast with
    ``position`` None; the server still verifies it, and the verifier re-derives its pool just before the event."""
    import sqlalchemy as sa

    from tests.e2e.test_http_execution import _enter, _one_department

    _, visits, items = _one_department(client, auth, period="2024Q2")
    for v in visits[:3]:
        _enter(client, auth, v, items[0], result="no_problem", day="2024-05-10")
    eeb = auth("hj-eeb", "planner")
    planned = _ok(client.post("/api/v1/follow-ups", json={"period": "2024Q2"}, headers=eeb), 201)
    _ok(client.post(f"/api/v1/follow-ups/{planned['id']}/draw", json={}, headers=eeb))
    table = county.app.recorder.events_record_cls.__table__
    with county.engine.begin() as conn:
        row = conn.execute(sa.select(table.c.id, table.c.state).where(
            table.c.originator_id == uuid.UUID(planned["id"]), table.c.topic.like("%FollowUpRound.Planned"))).one()
        state = json.loads(bytes(row.state))
        assert state.pop("class_version") == 3 and state.pop("position") > 0 and state.pop("entropy_source") == ""
        conn.execute(table.update().where(table.c.id == row.id).values(state=json.dumps(state).encode()))
        # a draw of that time named no source either (one that does is a downgraded Planned: a mismatch)
        row = conn.execute(sa.select(table.c.id, table.c.state).where(
            table.c.originator_id == uuid.UUID(planned["id"]), table.c.topic.like("%FollowUpRound.Drawn"))).one()
        state = json.loads(bytes(row.state))
        assert state["record"].pop("entropy_source") == ""
        conn.execute(table.update().where(table.c.id == row.id).values(state=json.dumps(state).encode()))
    assert county.follow_ups.load(FollowUpRound, uuid.UUID(planned["id"]), "round").position is None
    assert _ok(client.get(f"/api/v1/follow-ups/{planned['id']}/verification", headers=eeb))["match"] is True
    _export(client, auth, tmp_path)
    ok = _run(tmp_path / "export.ndjson")
    assert ok.returncode == 0 and f"OK        follow-up {planned['id']} (version 1) round 1\n" in ok.stdout, ok.stdout


def _teams_and_a_redraw(county: Any, client: Any, auth: Any) -> dict[str, Any]:
    """Teams over real draws: a 2024Q1 task (its inspectors, a recusal's replacement included, become the
    "previous inspectors" of 2024Q2), an inspector deactivated, then a joint 2024Q2 task whose two departments
    draw their own teams."""
    eeb = auth("hj-eeb", "planner")
    amr_items = list(_items(client, auth("hj-amr", "planner"), "hj-amr").values())
    early = _small_task(client, auth, "hj-eeb", period="2024Q1")
    _ok(client.post(f"/api/v1/tasks/{early['id']}/teams/hj-eeb", json={"visit_date": "2024-02-20"}, headers=eeb))
    redrawn: dict[str, Any] = {}
    for visit in _ok(client.get(f"/api/v1/tasks/{early['id']}/draw", headers=eeb))["visits"]:
        team = _ok(client.get(f"/api/v1/assignments/{visit['assignment_id']}", headers=eeb))["teams"]["hj-eeb"]
        leaving = team["members"][0]
        r = client.post(f"/api/v1/assignments/{visit['assignment_id']}/recusals",
                        json={"inspector_id": leaving, "reason": "亲属关系"},
                        headers=auth("hj-eeb", "inspector", subject=leaving))
        if r.status_code == 200:  # 422 (and nothing recorded) when every other inspector is at the workload cap
            redrawn = {"assignment": visit["assignment_id"], "new": r.json()["new"]}
            break
    assert redrawn, "no visit of the draw could replace its leader"
    people = _ok(client.get("/api/v1/inspectors", params={"department": "hj-eeb", "limit": 100}, headers=eeb))["items"]
    off = next(p["id"] for p in people if p.get("active", True))  # one inspector leaves: no longer eligible
    _ok(client.patch(f"/api/v1/inspectors/{off}", json={"active": False}, headers=eeb))
    joint = _small_task(client, auth, "hj-eeb", participants={"hj-amr": amr_items[:1]}, period="2024Q2",
                        options={"exclude_inspected_this_year": False})
    for dept in ("hj-eeb", "hj-amr"):
        _ok(client.post(f"/api/v1/tasks/{joint['id']}/teams/{dept}", json={}, headers=auth(dept, "planner")))
    return {"early": early, "joint": joint, "off": off, **redrawn}


def test_the_verifier_rederives_every_team_and_redraw_and_reports_a_changed_one(county, client, auth,
                                                                               tmp_path) -> None:
    drawn = _teams_and_a_redraw(county, client, auth)
    items = _export(client, auth, tmp_path)
    ok = _run(tmp_path / "export.ndjson")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    joint, early, aid = drawn["joint"]["id"], drawn["early"]["id"], drawn["assignment"]
    for line in (f"OK        teams {early} hj-eeb round 1", f"OK        teams {joint} hj-eeb round 1",
                 f"OK        teams {joint} hj-amr round 1", f"OK        redraw {aid} hj-eeb redraw 1"):
        assert line in ok.stdout, ok.stdout
    assert "6 checks, 6 reproduce, 0 do not" in ok.stdout, ok.stdout  # and the two target draws
    teams = [i for i in items if i["topic"] == "domain.tasks.task:Task.InspectorsDrawn"]
    assert all(i["data"]["class_version"] == 2 and i["data"]["position"] < i["position"] for i in teams)

    def joint_teams(tampered: list[dict[str, Any]]) -> dict[str, Any]:
        return next(i for i in tampered if i["topic"] == "domain.tasks.task:Task.InspectorsDrawn"
                    and i["aggregate_id"] == joint and i["data"]["department"] == "hj-eeb")["data"]

    # 1. A changed team: two members of one visit swapped (a different leader).
    tampered = json.loads(json.dumps(items))
    target, team = sorted(joint_teams(tampered)["teams"].items())[0]
    team["members"].reverse()
    team["leader"] = team["members"][0]
    bad = _run(_write(tmp_path, tampered, "team.ndjson"))
    assert bad.returncode == 1 and f"MISMATCH  teams {joint} hj-eeb round 1: teams[{target!r}].leader: recorded" \
        in bad.stdout, bad.stdout
    # 2. A changed eligibility: without the deactivation the inspector counts again, the staff differs.
    off = next(i for i in items if i["aggregate_id"] == drawn["off"] and i["topic"].endswith(".Deactivated"))
    bad = _run(_write(tmp_path, [i for i in items if i is not off], "eligibility.ndjson"))
    assert bad.returncode == 1 and f"MISMATCH  teams {joint} hj-eeb round 1: inspectors_digest: recorded" \
        in bad.stdout, bad.stdout
    assert f"OK        teams {early} hj-eeb round 1" in bad.stdout  # drawn before the deactivation
    # 3. A changed digest.
    tampered = json.loads(json.dumps(items))
    joint_teams(tampered)["inspectors_digest"] = "0" * 64
    bad = _run(_write(tmp_path, tampered, "digest.ndjson"))
    assert bad.returncode == 1 and f"MISMATCH  teams {joint} hj-eeb round 1: inspectors_digest: recorded {'0' * 64}" \
        in bad.stdout, bad.stdout
    # 4. Another replacement than the redraw gives.
    tampered = json.loads(json.dumps(items))
    redraw = next(i for i in tampered if i["topic"] == "domain.tasks.assignment:Assignment.MemberRedrawn")
    removed = redraw["data"]["new"] = redraw["data"]["removed"]
    bad = _run(_write(tmp_path, tampered, "redraw.ndjson"))
    assert bad.returncode == 1 and f"MISMATCH  redraw {aid} hj-eeb redraw 1: new: recorded {removed}, " \
        f"recomputed {drawn['new']}" in bad.stdout, bad.stdout
    # 5. Records from before version 2 (no position, the json.dumps digest): re-run with the inputs just before
    # the command, they reproduce here; with another digest they are not re-derivable (SKIPPED), not a match.
    tampered = json.loads(json.dumps(items))
    for item in tampered:
        if item["topic"] in ("domain.tasks.task:Task.InspectorsDrawn",
                             "domain.tasks.assignment:Assignment.MemberRedrawn"):
            del item["data"]["position"], item["data"]["class_version"]
    old = _run(_write(tmp_path, tampered, "v1.ndjson"))
    assert old.returncode == 0 and f"OK        teams {joint} hj-eeb (version 1) round 1" in old.stdout and \
        f"OK        redraw {aid} hj-eeb (version 1) redraw 1" in old.stdout, old.stdout
    joint_teams(tampered)["inspectors_digest"] = "0" * 64
    skipped = _run(_write(tmp_path, tampered, "v1-digest.ndjson"))
    assert skipped.returncode == 0 and f"SKIPPED   teams {joint} hj-eeb (version 1) round 1: version 1 (no position)" \
        in skipped.stdout and "6 checks, 5 reproduce, 0 do not, 1 skipped" in skipped.stdout, skipped.stdout


README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_says_exactly_who_may_rerun_a_draw(county, client, auth, tmp_path) -> None:
    """README "Who may re-run a draw": each row's callers are let in, and the others are refused."""
    text = README.read_text(encoding="utf-8")
    rows = text.split("Who may re-run a draw", 1)[1].split("\n\n", 2)[1].splitlines()[2:]
    assert [r.split(" | ")[0] for r in rows] == [
        "| anyone, without a token", "| the planners of the task's departments, admins and auditors",
        "| auditors and admins"], rows
    assert "`/public/tasks/{id}/draw`" in rows[0] and "`GET /api/v1/tasks/{id}/draw/verification`" in rows[1] \
        and "`GET /api/v1/tasks/{id}/draws/{round}/verification`" in rows[1] and "anyone else `403`, no token `401`" \
        in rows[1] and "`GET /api/v1/audit/export`" in rows[2] and "Anyone can re-run the draw" not in text
    tid = _small_task(client, auth, "hj-eeb")["id"]
    with TestClient(create_app(county)) as pages:  # the page is not an API operation: outside the contract check
        page = pages.get(f"/public/tasks/{tid}/draw")  # no token
    assert page.status_code == 200 and "一致：按日志重算" in page.text, page.text
    allowed = [auth("hj-eeb", "planner"), auth("hj-admin", "admin"), auth("hj-audit", "auditor")]
    refused = [auth("hj-amr", "planner"), auth("hj-eeb", "inspector"), auth("hj-eeb", "reviewer"),
               auth("hj-eeb", "partner")]
    for path in (f"/api/v1/tasks/{tid}/draw/verification", f"/api/v1/tasks/{tid}/draws/1/verification"):
        for headers in allowed:
            assert _ok(client.get(path, headers=headers))["match"] is True
        for headers in refused:
            r = client.get(path, headers=headers)
            assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json"), r.text
        assert client.get(path).status_code == 401
    for headers in (auth("hj-admin", "admin"), auth("hj-audit", "auditor")):
        assert client.get("/api/v1/audit/export", headers=headers).status_code == 200
    for headers in (auth("hj-eeb", "planner"), auth("hj-eeb", "inspector")):
        assert client.get("/api/v1/audit/export", headers=headers).status_code == 403
