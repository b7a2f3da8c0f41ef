"""What a client sends is bounded: a JSON body beyond ``DUALRANDOM_MAX_JSON_KB`` is 413 before the handler (by its
Content-Length, or while a chunked body is read), a reason beyond 1,000 characters is 422 naming the field, and
nothing is stored; uploads (multipart) keep their own, larger limit. (An outside tester stored a 10 MB
``overlap_reason``: one event larger than NATS takes, which partners could not receive.)"""

from collections.abc import Iterator
from typing import Any

from domain.text import MAX_REASON


def _ok(r: Any, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()


def _count_tasks(client: Any, h: dict[str, str]) -> int:
    return len(_ok(client.get("/api/v1/tasks", params={"limit": 100}, headers=h))["items"])


def test_a_json_body_beyond_the_limit_is_413_and_stores_nothing(demo, client, auth) -> None:
    eeb = auth("hj-eeb", "planner")
    before = _count_tasks(client, eeb)
    big = {"period": "2024Q4", "reason": "专项", "overlap_reason": "r" * (1024 * 1024 + 1)}
    r = client.post("/api/v1/tasks", json=big, headers=eeb)
    assert r.status_code == 413 and r.headers["content-type"].startswith("application/problem+json"), r.text
    assert r.json()["errors"] == [{"field": "body", "rule": "max_size", "message": "must be at most 1048576 bytes"}]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while the body is read
        yield b'{"period": "2024Q4", "reason": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    r = client.post("/api/v1/tasks", content=chunks(), headers={**eeb, "Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["errors"][0]["field"] == "body" and r.json()["errors"][0]["rule"] == "max_size"
    assert _count_tasks(client, eeb) == before
    # a multipart upload is not a JSON body: its own limit (DUALRANDOM_MAX_UPLOAD_MB) applies, and this one is
    # read and refused for what it is (not a spreadsheet), not for its size
    r = client.post("/api/v1/targets/import", files={"file": ("big.csv", b"\xff" * (1536 * 1024), "text/csv")},
                    headers=eeb)
    assert r.status_code == 422, r.text


def test_a_reason_beyond_1000_characters_is_422_naming_the_field(demo, client, auth) -> None:
    eeb = auth("hj-eeb", "planner")
    items = [i["id"] for i in _ok(client.get("/api/v1/items", params={"department": "hj-eeb", "limit": 5},
                                             headers=eeb))["items"]]
    task = {"period": "2024Q4", "scope": {"county": "获嘉县", "supervision_classes": ["key"]},
            "rules": [{"supervision_class": "key", "full": True}], "participants": {"hj-eeb": items[:1]}}
    before = _count_tasks(client, eeb)
    r = client.post("/api/v1/tasks", json={**task, "reason": "专" * (MAX_REASON + 1)}, headers=eeb)
    assert r.status_code == 422 and {(e["field"], e["rule"]) for e in r.json()["errors"]} == {("reason", "max_length")}
    assert _count_tasks(client, eeb) == before
    first = _ok(client.post("/api/v1/tasks", json={**task, "reason": "专" * MAX_REASON}, headers=eeb), 201)
    r = client.post("/api/v1/tasks", json={**task, "reason": "复查", "overlaps": [first["id"]],
                                           "overlap_reason": "因" * (MAX_REASON + 1)}, headers=eeb)
    assert r.status_code == 422 and ("overlap_reason", "max_length") in {(e["field"], e["rule"]) for e in r.json()["errors"]}
    assert _count_tasks(client, eeb) == before + 1
    _ok(client.post(f"/api/v1/tasks/{first['id']}/commitment", json={}, headers=eeb))
    r = client.post(f"/api/v1/tasks/{first['id']}/redraw", json={"reason": "撤" * (MAX_REASON + 1)}, headers=eeb)
    assert r.status_code == 422 and r.json()["errors"][0]["rule"] == "max_length", r.text
