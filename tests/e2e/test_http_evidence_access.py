"""Who downloads an evidence file (GET /api/v1/evidence/{sha256}), on both databases: a finding's file is read by
the department's team on that visit, the department's reviewers and auditors; a document shared on a visit by the
staff of the visit's departments; a file no record names yet by its uploader and auditors. Everyone else gets the
404 of a file that does not exist; partners 403. Also: file names with a path separator are refused."""

import hashlib
from typing import Any

import pytest

from tests.e2e.test_http_execution import _enter, _one_department, _task, _upload, _visits
from tests.support.projections import assert_rebuild_equals_live

PNG = b"\x89PNG\r\n\x1a\n"


def _png(tag: str) -> bytes:
    """A PNG whose bytes (so SHA-256) are the test's own: content-addressed files are shared otherwise."""
    return PNG + hashlib.sha256(tag.encode()).digest()


def _status(client: Any, sha: str, h: dict[str, str]) -> int:
    return int(client.get(f"/api/v1/evidence/{sha}", headers=h).status_code)


def test_a_findings_file_is_read_by_the_team_the_departments_reviewers_and_auditors_only(demo, client, auth) -> None:
    task, items = _task(client, auth, {"hj-eeb": 1, "hj-amr": 1})
    visit = _visits(client, auth, task)[0]
    aid = visit["id"]
    eeb_team, amr_team = visit["teams"]["hj-eeb"]["members"], visit["teams"]["hj-amr"]["members"]
    author, colleague = auth("hj-eeb", "inspector", subject=eeb_team[0]), auth("hj-eeb", "inspector",
                                                                               subject=eeb_team[1])
    content = _png("finding")
    ref = client.post("/api/v1/evidence", files={"file": ("现场照片.png", content, "image/png")}, headers=author).json()
    sha = ref["sha256"]
    strangers = {
        "an hj-wr planner": auth("hj-wr", "planner"),
        "the visit's hj-amr inspector": auth("hj-amr", "inspector", subject=amr_team[0]),
        "an hj-amr reviewer": auth("hj-amr", "reviewer", subject="amr-rev"),
        "the hj-eeb planner": auth("hj-eeb", "planner"),
        "an hj-eeb inspector not on the team": auth("hj-eeb", "inspector", subject="not-on-the-team"),
        "an hj-eeb admin": auth("hj-eeb", "admin"),
        "an hj-eeb reviewer of another department's account": auth("hj-amr", "reviewer", subject="eeb-rev"),
    }
    reviewer, auditor = auth("hj-eeb", "reviewer", subject="eeb-rev"), auth("hj-audit", "auditor")
    missing = "0" * 64
    assert _status(client, missing, author) == 404

    # Not yet named by any record: its uploader and auditors only.
    assert client.get(f"/api/v1/evidence/{sha}", headers=author).content == content
    assert _status(client, sha, auditor) == 200
    for who, h in {**strangers, "a team colleague": colleague, "the hj-eeb reviewer": reviewer}.items():
        assert _status(client, sha, h) == 404, who
    assert _status(client, sha, auth("hj-eeb", "partner")) == 403

    # Named by the team's finding: the team, the department's reviewers and auditors; nobody else.
    item = items["hj-eeb"][0]["id"]
    r = client.post(f"/api/v1/assignments/{aid}/inspections/hj-eeb/findings", headers=author, json={
        "inspected_on": "2024-09-18", "methods": ["on_site"],
        "findings": {item: {"result": "corrected", "description": "废水排放口未规范设置", "evidence": [ref],
                            "measures": [{"kind": "order_correction", "deadline": "2024-10-18"}]}}})
    assert r.status_code == 200, r.text
    for h in (author, colleague, reviewer, auditor):
        assert client.get(f"/api/v1/evidence/{sha}", headers=h).content == content
    for who, h in strangers.items():
        r = client.get(f"/api/v1/evidence/{sha}", headers=h)
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json"), who
        assert content not in r.content
    assert _status(client, sha, auth("hj-eeb", "partner")) == 403


def test_a_shared_document_is_read_by_the_visits_departments_only(demo, client, auth) -> None:
    task, _ = _task(client, auth, {"hj-eeb": 1, "hj-amr": 1})
    visit = _visits(client, auth, task)[0]
    amr_plan = auth("hj-amr", "planner")
    ref = _upload(client, amr_plan, _png("shared"), "营业执照副本.png").json()
    r = client.post(f"/api/v1/assignments/{visit['id']}/documents", json={"documents": [ref]}, headers=amr_plan)
    assert r.status_code == 200, r.text
    eeb_insp = auth("hj-eeb", "inspector", subject=visit["teams"]["hj-eeb"]["members"][0])
    for h in (amr_plan, eeb_insp, auth("hj-eeb", "reviewer", subject="eeb-rev"), auth("hj-audit", "auditor")):
        assert _status(client, ref["sha256"], h) == 200
    for h in (auth("hj-wr", "planner"), auth("hj-em", "inspector", subject="em-1")):
        assert _status(client, ref["sha256"], h) == 404


def test_a_referrals_document_is_read_by_the_referring_and_receiving_departments(demo, client, auth) -> None:
    _, visits, items = _one_department(client, auth)
    iid = _enter(client, auth, visits[0], items[0])
    eeb, amr = auth("hj-eeb", "planner"), auth("hj-amr", "planner")
    ref = _upload(client, eeb, _png("referral"), "移送材料.png").json()
    assert _status(client, ref["sha256"], amr) == 404  # not yet named: the uploader's only
    r = client.post("/api/v1/referrals", headers=eeb, json={
        "inspection_id": iid, "item": items[0], "reason": "涉及特种设备安全", "transferred_on": "2024-09-11",
        "kind": "department", "to": "hj-amr", "documents": [ref]})
    assert r.status_code == 201, r.text
    for h in (eeb, amr, auth("hj-amr", "reviewer", subject="amr-rev"), auth("hj-audit", "auditor")):
        assert _status(client, ref["sha256"], h) == 200
    for h in (auth("hj-em", "planner"), auth("hj-wr", "reviewer", subject="wr-rev")):
        assert _status(client, ref["sha256"], h) == 404
    demo.runner.catch_up()
    assert_rebuild_equals_live(demo, "execution")


@pytest.mark.parametrize("name", ["a/b.txt", "a\\b.txt", "../b.txt"])
def test_a_file_name_with_a_path_separator_is_refused_and_nothing_is_stored(demo, client, auth, name) -> None:
    h = auth("hj-eeb", "planner")
    content = b"text " + name.encode()
    r = client.post("/api/v1/evidence", files={"file": (name, content, "text/plain")}, headers=h)
    assert r.status_code == 422, r.text
    assert [(e["field"], e["rule"]) for e in r.json()["errors"]] == [("file.name", "format")]
    assert not demo.evidence.store.exists(hashlib.sha256(content).hexdigest())
