"""Seed shares of joint tasks in tests: every participating department's planner commits a share before the
freeze and reveals it after. The shares are derived from the task and the department (tests only: a real
planner draws 32 random bytes, e.g. ``openssl rand -hex 32``)."""

import hashlib
import re
import uuid
from typing import Any

from domain.access import Actor
from services.application import CommandContext

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def share_for(task_id: object, department: str) -> bytes:
    return hashlib.sha256(f"test-share|{task_id}|{department}".encode()).digest()


def planner_of(department: str) -> CommandContext:
    return CommandContext(actor=Actor(f"{department}-planner", department, ("planner",)))


def commit_shares(rt: Any, tid: uuid.UUID) -> None:
    """Every missing share commitment of the task's current round (nothing for a single-department task)."""
    for department in rt.task_opening.task(tid).missing_share_commitments():
        share = share_for(tid, department)
        rt.target_draws.commit_share(planner_of(department), tid, department, hashlib.sha256(share).hexdigest())


def reveal_shares(rt: Any, tid: uuid.UUID) -> None:
    """Every missing share of the task's current round, revealed (after the freeze)."""
    task = rt.task_opening.task(tid)
    for department in task.missing_shares():
        if department in task.share_commitments:
            rt.target_draws.reveal_share(planner_of(department), tid, department, share_for(tid, department).hex())


def http_commit_shares(client: Any, auth: Any, task_id: str, departments: list[str]) -> None:
    for department in departments:
        share = share_for(task_id, department)
        r = client.post(f"/api/v1/tasks/{task_id}/shares/{department}", headers=auth(department, "planner"),
                        json={"commitment": hashlib.sha256(share).hexdigest()})
        assert r.status_code == 200, r.text


def http_reveal_shares(client: Any, auth: Any, task_id: str, departments: list[str]) -> None:
    for department in departments:
        r = client.post(f"/api/v1/tasks/{task_id}/shares/{department}/reveal", headers=auth(department, "planner"),
                        json={"share": share_for(task_id, department).hex()})
        assert r.status_code == 200, r.text


def http_open_declaring_overlaps(client: Any, headers: dict[str, str], body: dict[str, Any]) -> Any:
    """Open a task; when it is refused only for undeclared overlaps, open it again naming them (with a reason),
    as a planner who means a second task over the same targets does. Returns the last response."""
    r = client.post("/api/v1/tasks", json=body, headers=headers)
    if r.status_code == 409 and all(e.get("rule") == "undeclared_overlap" for e in r.json().get("errors", [])):
        named = [m for e in r.json()["errors"] for m in _UUID.findall(e["message"])]
        r = client.post("/api/v1/tasks", headers=headers,
                        json={**body, "overlaps": named, "overlap_reason": "同一年度不同事项的专项检查（测试）"})
    return r
