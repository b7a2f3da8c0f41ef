"""No single insider steers a draw: the declared entropy source and the joint task's seed shares, over HTTP."""

import hashlib
from typing import Any

from domain.draw.sampler import draw_seed
from tests.support.draws import share_for

SOURCE = "福彩3D 2024年第059期开奖号码"


def _ok(r: Any, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()


def _items(client: Any, h: dict[str, str], department: str) -> list[str]:
    r = client.get("/api/v1/items", params={"department": department, "limit": 100}, headers=h)
    return [i["id"] for i in _ok(r)["items"]]


def _version(client: Any, h: dict[str, str], tid: str) -> int:
    return int(_ok(client.get(f"/api/v1/tasks/{tid}", headers=h))["version"])


def test_a_joint_draw_takes_every_departments_share_and_only_the_declared_sources_value(demo, client, auth) -> None:
    eeb, amr = auth("hj-eeb", "planner"), auth("hj-amr", "planner")
    task = _ok(client.post("/api/v1/tasks", headers=eeb, json={
        "period": "2024Q3", "reason": "联合专项", "scope": {"county": "获嘉县", "supervision_classes": ["key"]},
        "rules": [{"supervision_class": "key", "min_ratio": "50%"}],
        "participants": {"hj-eeb": _items(client, eeb, "hj-eeb")[:1], "hj-amr": _items(client, amr, "hj-amr")[:1]}}),
        201)
    tid = task["id"]
    commit = _ok(client.post(f"/api/v1/tasks/{tid}/commitment", json={"entropy_source": SOURCE}, headers=eeb))
    assert commit["shares_needed"] == ["hj-amr", "hj-eeb"]
    shares = {d: share_for(tid, d) for d in ("hj-amr", "hj-eeb")}

    # The freeze waits for every department's share commitment: 409, nothing recorded.
    before = _version(client, eeb, tid)
    r = client.post(f"/api/v1/tasks/{tid}/freeze", json={}, headers=eeb)
    assert r.status_code == 409 and "hj-amr" in r.json()["detail"]
    # Each department commits its own share only; the lead cannot commit the partner's.
    r = client.post(f"/api/v1/tasks/{tid}/shares/hj-amr", headers=eeb,
                    json={"commitment": hashlib.sha256(shares["hj-amr"]).hexdigest()})
    assert r.status_code == 403
    r = client.post(f"/api/v1/tasks/{tid}/shares/hj-em", headers=auth("hj-em", "planner"),
                    json={"commitment": "00" * 32})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "department"
    assert _version(client, eeb, tid) == before
    for d, share in shares.items():
        _ok(client.post(f"/api/v1/tasks/{tid}/shares/{d}", headers=auth(d, "planner"),
                        json={"commitment": hashlib.sha256(share).hexdigest()}))
    r = client.post(f"/api/v1/tasks/{tid}/shares/hj-amr/reveal", headers=amr, json={"share": shares["hj-amr"].hex()})
    assert r.status_code == 422  # not before the freeze
    _ok(client.post(f"/api/v1/tasks/{tid}/freeze", json={}, headers=eeb))

    # The draw waits for every share (409); a share that is not the committed one is refused.
    r = client.post(f"/api/v1/tasks/{tid}/draw", json={"external_entropy": "581", "entropy_source": SOURCE}, headers=eeb)
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "shares"
    r = client.post(f"/api/v1/tasks/{tid}/shares/hj-amr/reveal", headers=amr, json={"share": "11" * 32})
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "commitment"
    for d, share in shares.items():
        _ok(client.post(f"/api/v1/tasks/{tid}/shares/{d}/reveal", headers=auth(d, "planner"), json={"share": share.hex()}))

    # Only a value for the declared source, in its one form; the source repeated exactly.
    before = _version(client, eeb, tid)
    for body, field, rule in (
        ({"external_entropy": "581", "entropy_source": "福彩3D 2024年第060期开奖号码"}, "entropy_source", "declared_source"),
        ({"external_entropy": "5 8 1", "entropy_source": SOURCE}, "external_entropy", "source_format"),
        ({"external_entropy": "", "entropy_source": SOURCE}, "external_entropy", "required"),
    ):
        r = client.post(f"/api/v1/tasks/{tid}/draw", json=body, headers=eeb)
        assert r.status_code == 422 and (r.json()["errors"][0]["field"], r.json()["errors"][0]["rule"]) == (field, rule)
    assert _version(client, eeb, tid) == before

    _ok(client.post(f"/api/v1/tasks/{tid}/draw", json={"external_entropy": "581", "entropy_source": SOURCE}, headers=eeb))
    record = _ok(client.get(f"/api/v1/tasks/{tid}/draw", headers=eeb))
    rec = record.get("record", record)
    assert rec["algorithm_version"] == 2 and rec["entropy_source"] == SOURCE and rec["external_entropy"] == "581"
    assert rec["seed_shares"] == {d: s.hex() for d, s in shares.items()}
    assert rec["share_commitments"] == {d: hashlib.sha256(s).hexdigest() for d, s in shares.items()}
    # the key's seed is draw_seed(server seed, shares): the server alone never knew it
    assert draw_seed(bytes.fromhex(rec["seed"]), shares) != bytes.fromhex(rec["seed"])
    assert _ok(client.get(f"/api/v1/tasks/{tid}/draw/verification", headers=auth("hj-audit", "auditor")))["match"]


def test_without_a_declared_source_the_draw_takes_no_external_entropy(demo, client, auth) -> None:
    eeb = auth("hj-eeb", "planner")
    task = _ok(client.post("/api/v1/tasks", headers=eeb, json={
        "period": "2024Q4", "reason": "专项", "scope": {"county": "获嘉县", "supervision_classes": ["key"]},
        "rules": [{"supervision_class": "key", "full": True}], "participants": {"hj-eeb": _items(client, eeb, "hj-eeb")[:1]}}),
        201)
    tid = task["id"]
    _ok(client.post(f"/api/v1/tasks/{tid}/commitment", headers=eeb))
    _ok(client.post(f"/api/v1/tasks/{tid}/freeze", json={}, headers=eeb))
    r = client.post(f"/api/v1/tasks/{tid}/draw", json={"external_entropy": "whatever suits me"}, headers=eeb)
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "no_declared_source"
    r = client.post(f"/api/v1/tasks/{tid}/shares/hj-eeb", headers=eeb, json={"commitment": "00" * 32})
    assert r.status_code == 422  # a single-department task takes no shares
    _ok(client.post(f"/api/v1/tasks/{tid}/draw", json={}, headers=eeb))
    assert _ok(client.get(f"/api/v1/tasks/{tid}", headers=eeb))["entropy_source"] == ""


def test_the_draw_answers_409_with_retry_after_until_the_freeze_is_witnessed(demo, client, auth) -> None:
    demo.target_draws.checkpoint_gate = True  # the production default (this test runtime has no NATS)
    eeb = auth("hj-eeb", "planner")
    task = _ok(client.post("/api/v1/tasks", headers=eeb, json={
        "period": "2024Q4", "reason": "专项", "scope": {"county": "获嘉县", "supervision_classes": ["key"]},
        "rules": [{"supervision_class": "key", "full": True}], "participants": {"hj-eeb": _items(client, eeb, "hj-eeb")[:1]}}),
        201)
    tid = task["id"]
    _ok(client.post(f"/api/v1/tasks/{tid}/commitment", json={"entropy_source": SOURCE}, headers=eeb))
    _ok(client.post(f"/api/v1/tasks/{tid}/freeze", json={}, headers=eeb))
    r = client.post(f"/api/v1/tasks/{tid}/draw", json={"external_entropy": "581", "entropy_source": SOURCE}, headers=eeb)
    assert r.status_code == 409 and int(r.headers["retry-after"]) > 0
    assert r.json()["errors"][0]["field"] == "checkpoint"
    assert _ok(client.get(f"/api/v1/tasks/{tid}", headers=eeb))["state"] == "frozen"
